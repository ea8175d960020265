//! The service mounted in an application of its own: as routes merged into an axum router, and
//! on a listener the caller bound. Over real loopback sockets.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use axum::routing::get;
use glance_presence_protocol::{GroupId, PartnerUserId};
use glance_presence_service::config::DEMO_GROUP_ID;
use glance_presence_service::{Service, ServiceConfig};
use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into()
}

/// `(status, body)` of a GET.
fn get_text(base: &str, path: &str) -> (u16, String) {
    let mut response = agent().get(format!("{base}{path}")).call().unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap())
}

type Socket = tungstenite::WebSocket<TcpStream>;

fn socket(addr: SocketAddr, path: &str, connect: Value) -> Socket {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let request = format!("ws://{addr}{path}").into_client_request().unwrap();
    let (mut ws, _) = tungstenite::client(request, tcp).unwrap();
    ws.send(Message::text(connect.to_string())).unwrap();
    assert_eq!(next(&mut ws)["type"], json!("connected"));
    ws
}

fn next(ws: &mut Socket) -> Value {
    loop {
        if let Message::Text(text) = ws.read().unwrap() {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

#[test]
fn the_router_merges_into_an_application_and_serves_sockets_and_rest() {
    let rt = runtime();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let config = ServiceConfig::builder().listen(addr).build().unwrap();
    let presence = rt.block_on(async { Service::router(config) }).unwrap();
    assert_eq!(presence.authority(), addr.to_string());
    let app = axum::Router::new()
        .route("/health", get(|| async { "ok" }))
        .merge(presence.router())
        .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "the application's 404") });
    rt.spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    let base = format!("http://{addr}");

    // The application's routes and fallback stay its own.
    assert_eq!(get_text(&base, "/health"), (200, "ok".to_owned()));
    assert_eq!(
        get_text(&base, "/nowhere"),
        (404, "the application's 404".to_owned())
    );

    // The service's sockets: a visitor's presence reaches the agent.
    let token = presence
        .issue_token(
            GroupId::new(DEMO_GROUP_ID).unwrap(),
            &PartnerUserId::new("agent1").unwrap(),
            Duration::from_secs(600),
        )
        .unwrap();
    let token = token.expose_secret().to_owned();
    let mut agent_ws = socket(
        addr,
        "/agent",
        json!({"type": "connect", "authorization": token, "groupid": DEMO_GROUP_ID.to_string(),
               "visitorid": "m1", "version": "6.25.0"}),
    );
    let mut visitor_ws = socket(
        addr,
        "/visitorws",
        json!({"type": "connect", "groupid": DEMO_GROUP_ID, "visitorid": "m1", "version": "6.33.0"}),
    );
    visitor_ws
        .send(Message::text(
            json!({"type": "presence", "data": {"url": "https://shop.example/mounted"}})
                .to_string(),
        ))
        .unwrap();
    let mut seen = Vec::new();
    while seen.last().map(|f: &Value| f["type"].clone()) != Some(json!("presence")) {
        seen.push(next(&mut agent_ws));
    }
    assert_eq!(
        seen.last().unwrap()["data"]["url"],
        json!("https://shop.example/mounted")
    );

    // The REST side, with Glance's `&&`, and the metrics.
    let mut response = agent()
        .get(format!(
            "{base}/query?groupid={DEMO_GROUP_ID}&visitorid=m1&&ver=6.25.0"
        ))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let q: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(q["present"], json!(true));

    let (status, metrics) = get_text(&base, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("glance_presence_connections{role=\"agent\"} 1"),
        "{metrics}"
    );
    assert!(metrics
        .contains("glance_presence_rest_request_duration_seconds_count{endpoint=\"query\"} 1"));

    // CORS on the mounted REST paths: a preflight answered, a request's origin echoed; the
    // application's own routes get no CORS headers.
    let preflight = agent()
        .options(format!("{base}/query?groupid={DEMO_GROUP_ID}&visitorid=m1"))
        .header("Origin", "https://console.example")
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "authorization")
        .call()
        .unwrap();
    assert!(preflight.status().is_success());
    let header = |response: &ureq::http::Response<ureq::Body>, name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header(&preflight, "access-control-allow-origin").as_deref(),
        Some("https://console.example")
    );
    assert_eq!(
        header(&preflight, "access-control-max-age").as_deref(),
        Some("600")
    );
    let response = agent()
        .get(format!("{base}/query?groupid={DEMO_GROUP_ID}&visitorid=m1"))
        .header("Origin", "https://console.example")
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some("https://console.example")
    );
    let health = agent()
        .get(format!("{base}/health"))
        .header("Origin", "https://console.example")
        .call()
        .unwrap();
    assert_eq!(header(&health, "access-control-allow-origin"), None);
    assert_eq!(presence.stats().core.agent_sockets, 1);

    // Shutting the service down says serverclose to its sockets.
    rt.block_on(presence.shutdown());
    assert_eq!(next(&mut agent_ws)["type"], json!("serverclose"));
    assert_eq!(get_text(&base, "/health"), (200, "ok".to_owned()));
}

#[test]
fn the_service_serves_on_a_listener_the_caller_bound() {
    let rt = runtime();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let running = Service::serve_on(listener, ServiceConfig::default())
            .await
            .unwrap();
        assert_eq!(running.local_addr(), addr);
        assert_eq!(running.http_base(), format!("http://{addr}"));
        let base = running.http_base();
        let (status, body) = tokio::task::spawn_blocking(move || get_text(&base, "/metrics"))
            .await
            .unwrap();
        assert_eq!(status, 200);
        assert!(
            body.contains("glance_presence_rest_requests_total 1"),
            "{body}"
        );
        running.shutdown().await;
    });
}
