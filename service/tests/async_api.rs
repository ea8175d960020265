//! The async library API on the caller's own tokio runtime: start, connect with a real
//! WebSocket client, shut down from another task through a `ShutdownHandle`.

use futures_util::{SinkExt, StreamExt};
use glance_presence_protocol::ServerFrame;
use glance_presence_service::{Service, ServiceConfig};
use tokio_tungstenite::tungstenite::Message;

async fn next_frame(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
) -> Option<ServerFrame> {
    loop {
        match ws.next().await? {
            Ok(Message::Text(t)) => return ServerFrame::decode(t.as_str(), 1 << 20).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_connect_and_shut_down_from_another_task() {
    let running = Service::start(ServiceConfig::default()).await.unwrap();
    let addr = running.local_addr();
    assert_ne!(addr.port(), 0);
    assert_eq!(
        running.http_base(),
        format!("http://127.0.0.1:{}", addr.port())
    );
    assert_eq!(running.ws_base(), format!("ws://127.0.0.1:{}", addr.port()));
    assert!(!running.is_tls());

    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut ws, _) =
        tokio_tungstenite::client_async(format!("{}/visitorws", running.ws_base()), tcp)
            .await
            .unwrap();
    ws.send(Message::text(
        r#"{"type":"connect","groupid":12345,"visitorid":"v1","version":"6.33.0"}"#,
    ))
    .await
    .unwrap();
    assert_eq!(
        next_frame(&mut ws).await,
        Some(ServerFrame::Connected {
            keepalive: Some(30),
            data: None
        })
    );
    assert_eq!(running.stats().core.visitors_present, 1);
    assert!(running
        .metrics_text()
        .contains("glance_presence_visitors_present 1"));

    let handle = running.shutdown_handle();
    tokio::spawn(async move { handle.shutdown() });
    assert_eq!(next_frame(&mut ws).await, Some(ServerFrame::ServerClose));
    assert_eq!(next_frame(&mut ws).await, None);
    running.stopped().await;
    // The listener is gone.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
