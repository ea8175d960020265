//! `glance-presence conformance server` against the in-process reference service: it passes
//! with exit 0 and prints the table (or one JSON object); `--dry-run` prints the plan and
//! connects nowhere; a missing token is a usage error.

mod support;

use std::time::Duration;

use glance_presence_service::{ServiceConfig, ServiceHandle};
use support::*;

fn quick_service() -> ServiceHandle {
    ServiceHandle::spawn(
        ServiceConfig::builder()
            .listen("127.0.0.1:0".parse().unwrap())
            .presence_window(Duration::from_secs(2))
            .build()
            .unwrap(),
    )
    .unwrap()
}

fn suite_args(server: &str) -> Vec<String> {
    [
        "conformance",
        "server",
        "--server",
        server,
        "--group",
        GROUP,
        "--presence-window",
        "2",
        "--timeout",
        "3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn server_suite_passes_against_the_reference_service() {
    let svc = quick_service();
    let mut args = suite_args(&svc.http_base());
    let web = svc.http_base();
    args.extend(
        [
            "--api-key",
            API_KEY,
            "--partner-user-id",
            "conf",
            "--web-server",
            &web,
        ]
        .map(str::to_owned),
    );
    let out = run(cmd(&args));
    assert_eq!(out.code, Some(0), "{out:#?}");
    for id in [
        "SRV-AUTH-4",
        "SRV-REST-1",
        "SRV-SIGNAL-2",
        "SRV-CLOSE-1",
        "SRV-PRES-3",
    ] {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("no {id} row: {out:#?}"));
        assert!(line.contains(" pass "), "{line}");
    }
    assert!(
        out.stdout
            .lines()
            .last()
            .unwrap_or("")
            .contains(" 0 failed, 0 skipped"),
        "{out:#?}"
    );
    out.assert_no_secret(&[API_KEY]);
}

/// With a bare token `Authorize` cannot be observed: everything else passes, and the run
/// exits 1 naming the requirement it could not check.
#[test]
fn server_suite_json_with_a_token() {
    let svc = quick_service();
    let token = token(&svc);
    let mut args = suite_args(&svc.http_base());
    args.push("--json".to_owned());
    let mut command = cmd(&args);
    command.env("GLANCE_TOKEN", &token);
    let out = run(command);
    assert_eq!(out.code, Some(1), "{out:#?}");
    let report: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("one JSON");
    assert_eq!(report["passed"], false);
    let outcomes = report["outcomes"].as_array().expect("outcomes");
    let not_passed: Vec<_> = outcomes.iter().filter(|o| o["status"] != "pass").collect();
    assert_eq!(not_passed.len(), 1, "{report:#}");
    assert_eq!(not_passed[0]["id"], "SRV-AUTH-4");
    assert_eq!(not_passed[0]["status"], "skipped");
    assert!(
        out.stderr.trim().ends_with(
            "required requirements not observed: SRV-AUTH-4 (a token was given, no credentials)"
        ),
        "{out:#?}"
    );
    out.assert_no_secret(&[&token]);
}

#[test]
fn dry_run_prints_the_plan_and_connects_nowhere() {
    // Port 9 on loopback: nothing listens there, and a dry run must not try.
    let mut args = suite_args("http://127.0.0.1:9");
    args.extend([
        "--token".to_owned(),
        "t0k3n".to_owned(),
        "--dry-run".to_owned(),
    ]);
    let out = run(cmd(&args));
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert!(out.stdout.contains("use the given token"), "{out:#?}");
    assert!(out.stdout.contains("gpconf-"), "{out:#?}");
    assert!(out.stderr.is_empty(), "{out:#?}");
    let client = run(cmd(["conformance", "client", "--dry-run"]));
    assert_eq!(client.code, Some(0), "{client:#?}");
    assert!(client.stdout.contains("CL-9"), "{client:#?}");
}

#[test]
fn no_token_is_a_usage_error() {
    let out = run(cmd(suite_args("http://127.0.0.1:9")));
    let (message, hint) = out.hinted_failure(2, &[]);
    assert!(message.contains("no token"), "{message}");
    assert!(hint.contains("--token"), "{hint}");
}

/// The client suite names where the agent under test connects; with nobody connecting it
/// fails every scenario and exits 1.
#[test]
fn client_suite_prints_the_setup_and_fails_without_a_client() {
    let out = run(cmd([
        "conformance",
        "client",
        "--wait-for-client",
        "1",
        "--keepalive",
        "1",
    ]));
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(out.stdout.contains("server: http://127.0.0.1:"), "{out:#?}");
    assert!(out.stdout.contains("visitor: gpclient-"), "{out:#?}");
    assert!(
        out.stdout
            .contains("no agent socket for the visitor within 1 s"),
        "{out:#?}"
    );
    assert!(out.stderr.contains("AGT-CONNECT-1"), "{out:#?}");
}
