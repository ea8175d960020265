//! The server suite against the reference service: it passes as configured, and against a
//! deliberately broken configuration exactly the requirements that configuration breaks fail.

use std::time::Duration;

use glance_presence_conformance::probe::{Endpoint, RestProbe};
use glance_presence_conformance::server::{self, Auth, ServerTarget};
use glance_presence_conformance::Status;
use glance_presence_protocol::GroupId;
use glance_presence_service::config::{DEMO_API_KEY, DEMO_GROUP_ID};
use glance_presence_service::{AdminToken, ServiceConfig, ServiceHandle};

const ADMIN: &str = "conformance-admin-token";

fn service() -> ServiceHandle {
    let config = ServiceConfig::builder()
        .presence_window(Duration::from_secs(2))
        .test_controls(AdminToken::new(ADMIN).expect("admin token"))
        .build()
        .expect("config");
    ServiceHandle::spawn(config).expect("service")
}

fn target(service: &ServiceHandle) -> ServerTarget {
    let endpoint = Endpoint::parse(&service.http_base()).expect("endpoint");
    ServerTarget {
        server: endpoint.clone(),
        web_server: endpoint,
        group: GroupId::new(DEMO_GROUP_ID).expect("group"),
        auth: Auth::Credentials {
            partner_user_id: "conformance".into(),
            api_key: DEMO_API_KEY.into(),
        },
        presence_window: Duration::from_secs(2),
        timeout: Duration::from_secs(3),
    }
}

#[test]
fn reference_service_passes_every_server_requirement() {
    let service = service();
    let report = server::run(&target(&service));
    let not_passed: Vec<_> = report
        .outcomes
        .iter()
        .filter(|o| o.status != Status::Pass)
        .collect();
    assert!(not_passed.is_empty(), "{}", report.to_table());
    assert!(report.required_passed());
}

#[test]
fn broken_service_fails_exactly_the_matching_requirements() {
    let service = service();
    let answer = RestProbe::new(Duration::from_secs(3))
        .call(
            "POST",
            &format!("{}/control/break", service.http_base()),
            &[("Authorization", &format!("Bearer {ADMIN}"))],
            Some(r#"{"no_signal_hold":true,"lookup_wrong_shape":true,"no_close_handshake":true}"#),
        )
        .expect("control");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let report = server::run(&target(&service));
    let mut failed = report.failed_ids();
    failed.sort_unstable();
    assert_eq!(
        failed,
        ["SRV-CLOSE-1", "SRV-REST-2", "SRV-SIGNAL-2"],
        "{}",
        report.to_table()
    );
    assert!(!report.required_passed());
}

#[test]
fn controls_are_refused_without_the_admin_token() {
    let service = service();
    let rest = RestProbe::new(Duration::from_secs(3));
    let url = format!("{}/control/reset", service.http_base());
    let answer = rest.call("POST", &url, &[], Some("{}")).expect("call");
    assert_eq!(answer.status, 401);
    let plain = ServiceHandle::spawn(ServiceConfig::default()).expect("service");
    let url = format!("{}/control/reset", plain.http_base());
    let answer = rest
        .call(
            "POST",
            &url,
            &[("Authorization", &format!("Bearer {ADMIN}"))],
            Some("{}"),
        )
        .expect("call");
    assert_eq!(answer.status, 404, "controls are off by default");
}
