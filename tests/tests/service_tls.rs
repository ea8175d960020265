//! The reference service over TLS, with a certificate this test makes: `https` REST and `wss`
//! sockets exercised for real.

mod service_support;

use glance_presence_protocol::rest::{self, Delivery, LookupResult, RestTarget, SignalBody};
use glance_presence_protocol::{AuthToken, ServerFrame, VisitorId};
use glance_presence_service::{ServiceConfig, ServiceHandle, StartError, TlsConfig};
use serde_json::json;
use service_support::{demo_group, Svc};

#[test]
fn https_and_wss_work_end_to_end() {
    let svc = Svc::start_tls(ServiceConfig::builder());
    assert!(svc.handle.is_tls());
    assert!(svc.handle.http_base().starts_with("https://127.0.0.1:"));
    assert!(svc.handle.ws_base().starts_with("wss://127.0.0.1:"));
    let mut agent = svc.agent("secure");
    let mut visitor = svc.visitor("secure");
    assert_eq!(agent.recv(), ServerFrame::VisitorSock { connected: true });
    assert_eq!(agent.recv(), ServerFrame::VisitorConn { connected: true });
    visitor.send_text(r#"{"type":"presence","data":{"url":"https://shop.example.com/"}}"#);
    assert_eq!(
        agent.recv_text(),
        r#"{"type":"presence","data":{"url":"https://shop.example.com/"}}"#
    );

    let server = svc.server_addr();
    assert_eq!(server.http_base(), svc.handle.http_base());
    let token = AuthToken::new(svc.token());
    let visitor_id = VisitorId::new("secure").unwrap();
    let target = RestTarget {
        server: &server,
        group: demo_group(),
        visitor: &visitor_id,
        version: "6.25.0",
        token: Some(&token),
    };
    let r = svc.send(&rest::lookup_visitor(&target));
    let LookupResult::Present(record) = rest::parse_lookup(r.status, r.body.as_bytes()).unwrap()
    else {
        panic!("present expected: {}", r.body)
    };
    assert_eq!(
        record.direct_server().as_deref(),
        Some(svc.handle.authority())
    );
    let r = svc.send(&rest::signal_visitor(
        &target,
        &SignalBody::Signal(json!({"over": "tls"})),
    ));
    assert_eq!(
        rest::parse_signal(r.status, r.body.as_bytes()).unwrap(),
        Delivery::Delivered
    );
    assert_eq!(visitor.recv(), ServerFrame::Signal(json!({"over": "tls"})));
}

#[test]
fn bad_certificates_are_a_start_error() {
    let err = ServiceHandle::spawn(
        ServiceConfig::builder()
            .tls(TlsConfig::from_pem("not a certificate", "not a key"))
            .build()
            .unwrap(),
    )
    .unwrap_err();
    assert!(matches!(err, StartError::Tls(_)), "{err}");
    let err = ServiceHandle::spawn(
        ServiceConfig::builder()
            .tls(TlsConfig::from_pem_files(
                "/nonexistent/cert.pem",
                "/nonexistent/key.pem",
            ))
            .build()
            .unwrap(),
    )
    .unwrap_err();
    assert!(matches!(err, StartError::Tls(_)), "{err}");
}

#[test]
fn a_toml_file_with_pem_files_next_to_it() {
    let dir = std::env::temp_dir().join(format!("glance-presence-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    std::fs::write(dir.join("cert.pem"), certified.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem()).unwrap();
    std::fs::write(
        dir.join("service.toml"),
        "listen = \"127.0.0.1:0\"\nkeepalive_secs = 20\n[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n",
    )
    .unwrap();
    let config = ServiceConfig::from_toml_file(dir.join("service.toml")).unwrap();
    let handle = ServiceHandle::spawn(config).unwrap();
    assert!(handle.is_tls());
    assert_ne!(handle.addr().port(), 0);
    handle.shutdown();
    std::fs::remove_dir_all(&dir).unwrap();
}
