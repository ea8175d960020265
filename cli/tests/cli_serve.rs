//! End-to-end tests of `glance-presence serve` as an operator runs it: SIGTERM (what systemd and
//! containers send) stops it exactly like Ctrl-C, and the listen address follows the documented
//! precedence (a command-line flag, then the `--config` file, then the default).

mod support;

use std::process::Command;

use glance_presence_protocol::visitor::{StopReason as VisitorStop, VisitorEvent};
use support::*;

/// Sends SIGTERM to one process, with the `kill` command.
fn sigterm(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM {pid} failed");
}

/// Starts `serve` with these arguments and returns it past its banner, with its base URL.
fn start(args: &[&str], log: Option<&str>) -> (Running, String) {
    let mut command = cmd(std::iter::once("serve").chain(args.iter().copied()));
    if let Some(filter) = log {
        command.env("GLANCE_PRESENCE_LOG", filter);
    }
    let mut serve = Running::spawn(command);
    let banner = serve.wait_line("the service banner", WAIT, |l| {
        l.starts_with("glance-presence reference service on ")
    });
    let url = banner.rsplit(' ').next().unwrap().to_owned();
    serve.wait_line("the end of the banner", WAIT, |l| l == "Ctrl-C stops it.");
    (serve, url)
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn serve_stops_gracefully_on_sigterm_and_exits_0() {
    let (serve, url) = start(&["--listen", "127.0.0.1:0"], Some("info"));
    let mut visitor = visitor(&url, "termed");

    sigterm(serve.pid());
    let (code, rest, stderr) = serve.finish();
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert_eq!(rest, ["stopped"]);
    assert!(
        stderr.contains("presence service shutting down"),
        "no shutdown log line: {stderr}"
    );
    assert!(stderr.contains("presence service stopped"), "{stderr}");
    // The graceful stop told the visitor `serverclose`.
    let stopped = visitor.wait_for(WAIT, |e| match e {
        VisitorEvent::Stopped { why } => Some(why.clone()),
        _ => None,
    });
    assert_eq!(stopped, Some(VisitorStop::ServerClose));
}

#[test]
fn serve_takes_listen_from_the_config_file_when_no_flag_is_given() {
    let dir = TempDir::new("serve-config");
    let file = dir.0.join("service.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\n").unwrap();
    let (serve, url) = start(&["--config", file.to_str().unwrap()], None);
    let port = port_of(&url);
    // An ephemeral port, not the flag's default 8080.
    assert_ne!(port, 8080, "{url}");
    assert_ne!(port, 0, "{url}");
    sigterm(serve.pid());
    let (code, _, stderr) = serve.finish();
    assert_eq!(code, Some(0), "stderr: {stderr}");
}

#[test]
fn serve_listen_flag_beats_the_config_file() {
    let dir = TempDir::new("serve-flag");
    let file = dir.0.join("service.toml");
    let from_file = dead_port();
    let from_flag = loop {
        let port = dead_port();
        if port != from_file {
            break port;
        }
    };
    std::fs::write(&file, format!("listen = \"127.0.0.1:{from_file}\"\n")).unwrap();
    let flag = format!("127.0.0.1:{from_flag}");
    let (serve, url) = start(
        &["--config", file.to_str().unwrap(), "--listen", &flag],
        None,
    );
    assert_eq!(port_of(&url), from_flag, "{url}");
    sigterm(serve.pid());
    let (code, _, stderr) = serve.finish();
    assert_eq!(code, Some(0), "stderr: {stderr}");
}

#[test]
fn serve_help_states_the_precedence_and_the_default() {
    let out = run(cmd(["serve", "--help"]));
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert!(
        out.stdout
            .contains("a flag given on the command line, then the --config file, then the default"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("127.0.0.1:8080"), "{}", out.stdout);
}
