//! End-to-end tests of every `glance-presence` subcommand against the reference service on
//! loopback (in-process, or the command's own `serve`): what each prints on success, the
//! documented exit codes (0 ok, 1 refused, 2 usage, 3 connection), one line on stderr for
//! every failure, and no secret (API key, token) in any of it.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use glance_presence_blocking::{BlockingAgent, TransportConfig};
use glance_presence_protocol::agent::{AgentConfig, AgentEvent, VisitorPresence};
use glance_presence_protocol::visitor::{StopReason as VisitorStop, VisitorEvent};
use glance_presence_protocol::{loginkey, ApiKey, GroupId, LoginKey, PartnerUserId, TermsStatus};
use serde_json::{json, Value};
use support::*;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A watching agent on `server` for `visitor`, in this process, past `connected`.
fn watching_agent(server: &str, visitor: &str) -> BlockingAgent {
    let config = AgentConfig::builder()
        .group_id(12345)
        .visitor_id(visitor)
        .presence_server(server)
        .web_server(server)
        .credentials("agent1", API_KEY)
        .build()
        .unwrap();
    let mut agent = BlockingAgent::new(config, TransportConfig::default()).unwrap();
    agent.connect().unwrap();
    wait_agent(&mut agent, "connected", |e| {
        matches!(e, AgentEvent::Connected { .. })
    });
    agent
}

fn wait_agent(
    agent: &mut BlockingAgent,
    what: &str,
    pick: impl Fn(&AgentEvent) -> bool,
) -> (AgentEvent, Vec<AgentEvent>) {
    let deadline = std::time::Instant::now() + WAIT;
    let mut before = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match agent.next_event(Some(left)) {
            Some(event) if pick(&event) => return (event, before),
            Some(event) => before.push(event),
            None => panic!("no {what} within {WAIT:?}; the agent saw {before:#?}"),
        }
    }
}

/// The next signal or invoke a visitor receives.
fn next_message(visitor: &mut glance_presence_blocking::BlockingVisitor) -> VisitorEvent {
    visitor
        .wait_for(WAIT, |e| match e {
            VisitorEvent::Signal { .. } | VisitorEvent::Invoke { .. } => Some(e.clone()),
            _ => None,
        })
        .expect("the visitor received nothing")
}

/// `lookup` and the agent flags.
fn lookup_args(server: &str, visitor: &str) -> Vec<String> {
    let mut args = vec!["lookup".to_owned()];
    args.extend(agent_args(server, visitor));
    args
}

fn with(mut args: Vec<String>, more: &[&str]) -> Vec<String> {
    args.extend(more.iter().map(|s| (*s).to_owned()));
    args
}

// ----- demo -----

/// Checks that each of `needles` is part of a line of `lines`, in this order.
fn in_order(lines: &[&str], needles: &[&str]) {
    let mut from = 0;
    for needle in needles {
        match lines[from..].iter().position(|l| l.contains(needle)) {
            Some(i) => from += i + 1,
            None => panic!(
                "{needle:?} missing (or out of order) in:\n{}",
                lines.join("\n")
            ),
        }
    }
}

#[test]
fn demo_prints_the_timeline_and_exits_0() {
    let out = run(cmd(["demo"]));
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert_eq!(out.stderr, "", "{out:#?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    for line in &lines {
        assert!(line.starts_with('['), "not a timeline line: {line:?}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("waiting for the leave grace")),
        "the demo says what it waits for: {lines:#?}"
    );
    in_order(
        &lines,
        &[
            "reference service on http://127.0.0.1:",
            "agent connected to 127.0.0.1:",
            "visitor PRESENT",
            "url=https://shop.example/ ",
            "visitor socket closed",
            "visitor socket open",
            "presence: url=https://shop.example/products/42",
            "presence: url=https://shop.example/cart",
            "tab hidden",
            "tab visible",
            "signal confirmed: delivered to the visitor",
            "invoke confirmed: delivered to the visitor",
            "terms displayed",
            "terms accepted",
            "cobrowse session started",
            "cobrowse session ended",
            "visitor ABSENT",
            "agent stopped",
            "demo complete",
        ],
    );
    // Present once: three page loads and a hidden tab without a flicker.
    let present = lines
        .iter()
        .filter(|l| l.contains("visitor PRESENT"))
        .count();
    assert_eq!(present, 1, "{}", out.stdout);
}

#[test]
fn demo_json_prints_one_json_event_per_line() {
    let out = run(cmd(["demo", "--json"]));
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert_eq!(out.stderr, "", "{out:#?}");
    let events: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    for event in &events {
        assert!(event["event"].is_string(), "{event}");
    }
    let names: Vec<String> = events
        .iter()
        .map(|e| match e["event"].as_str().unwrap() {
            "visitor_presence" => format!("visitor_presence {}", e["state"].as_str().unwrap()),
            "visibility" => format!("visibility {}", e["visibility"].as_str().unwrap()),
            "terms" => format!("terms {}", e["status"].as_str().unwrap()),
            "presence" => format!("presence {}", e["data"]["url"].as_str().unwrap_or("")),
            other => other.to_owned(),
        })
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    in_order(
        &names,
        &[
            "connected",
            "visitor_presence present",
            "presence https://shop.example/",
            "presence https://shop.example/products/42",
            "presence https://shop.example/cart",
            "visibility hidden",
            "visibility visible",
            "terms displayed",
            "terms accepted",
            "session_start",
            "session_end",
            "visitor_presence absent",
            "stopped",
        ],
    );
    assert_eq!(
        unwrap_line(events.last().unwrap().clone()),
        json!({"event": "stopped", "why": {"kind": "requested"}})
    );
    let present = names
        .iter()
        .filter(|n| **n == "visitor_presence present")
        .count();
    assert_eq!(present, 1, "{names:#?}");
}

// ----- serve -----

#[test]
fn serve_starts_answers_and_stops_cleanly_on_sigint() {
    let (serve, url) = serve("127.0.0.1:0", &[]);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 0);
    let ws = url.replacen("http://", "ws://", 1);
    assert!(
        serve.seen.contains(&format!("  agents:   {ws}/agent")),
        "{:?}",
        serve.seen
    );
    assert!(
        serve.seen.contains(&format!("  visitors: {ws}/visitorws")),
        "{:?}",
        serve.seen
    );
    assert!(
        serve.seen.iter().any(|l| l.contains("demo group 12345")),
        "{:?}",
        serve.seen
    );

    // It answers: a visitor connects, and the command's own lookup sees it.
    let mut visitor = visitor(&url, "served");
    let out = run(cmd(with(
        lookup_args(&url, "served"),
        &[
            "--web-server",
            &url,
            "--partner-user-id",
            "agent1",
            "--api-key",
            API_KEY,
        ],
    )));
    let found = out.json();
    assert_eq!(found["present"], json!(true), "{found}");
    assert_eq!(
        found["visitor"]["direct_server"],
        json!(format!("127.0.0.1:{port}"))
    );

    // Ctrl-C: a graceful shutdown (the visitor is told `serverclose`), then exit 0.
    let (code, rest, stderr) = serve.interrupt();
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert_eq!(rest, ["stopped"]);
    assert_eq!(stderr, "");
    let stopped = visitor.wait_for(WAIT, |e| match e {
        VisitorEvent::Stopped { why } => Some(why.clone()),
        _ => None,
    });
    assert_eq!(stopped, Some(VisitorStop::ServerClose));
    // Nothing listens any more.
    let out = run(cmd(with(lookup_args(&url, "served"), &["--token", "t"])));
    out.failure(3, &[]);
}

#[test]
fn serve_refuses_bad_flags_and_a_busy_port() {
    let out = run(cmd(["serve", "--config", "/nonexistent/glance.toml"]));
    out.failure(2, &[]);
    let out = run(cmd(["serve", "--listen", "not-an-address"]));
    assert_eq!(out.code, Some(2), "{out:#?}");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = run(cmd(["serve", "--listen", &addr]));
    let line = out.failure(3, &[]);
    assert!(line.contains(&addr), "{line}");
}

#[test]
fn serve_with_tls_and_clients_that_trust_its_certificate() {
    let dir = TempDir::new("cli-tls");
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let cert = dir.0.join("cert.pem");
    let key = dir.0.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let cert = cert.to_str().unwrap();
    let key = key.to_str().unwrap();
    let (serve, url) = serve("127.0.0.1:0", &["--tls-cert", cert, "--tls-key", key]);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    assert!(serve.seen.iter().any(|l| l.contains("wss://127.0.0.1:")));

    let creds = [
        "--web-server",
        &url,
        "--partner-user-id",
        "agent1",
        "--api-key",
        API_KEY,
    ];
    // The certificate added to the public roots, to the system's (which may be empty here:
    // loading it is what is checked), and alone.
    for trust in [
        &["--ca-cert", cert][..],
        &["--tls-roots", "native", "--ca-file", cert],
        &["--ca-cert", cert, "--ca-only"],
    ] {
        let args = with(with(lookup_args(&url, "tls-v"), &creds), trust);
        assert_eq!(
            run(cmd(&args)).json(),
            json!({"present": false}),
            "{trust:?}"
        );
    }
    // Without the certificate the public roots (or the system's) are used, and they refuse
    // it: exit 3.
    let out = run(cmd(with(lookup_args(&url, "tls-v"), &creds)));
    out.failure(3, &[API_KEY]);
    let native = with(
        with(lookup_args(&url, "tls-v"), &creds),
        &["--tls-roots", "native"],
    );
    run(cmd(&native)).failure(3, &[API_KEY]);
    // --ca-only needs a certificate.
    let only = with(with(lookup_args(&url, "tls-v"), &creds), &["--ca-only"]);
    run(cmd(&only)).failure(2, &[API_KEY]);
    // authorize over https too.
    let out = run(cmd([
        "authorize",
        "--group",
        GROUP,
        "--partner-user-id",
        "agent1",
        "--api-key",
        API_KEY,
        "--web-server",
        &url,
        "--ca-cert",
        cert,
    ]));
    assert!(out.json()["token"].is_string());
    let (code, _, _) = serve.interrupt();
    assert_eq!(code, Some(0));
}

// ----- lookup, query, find -----

#[test]
fn lookup_query_and_find_print_json_for_present_and_absent_visitors() {
    let svc = service();
    let url = svc.http_base();
    let token = token(&svc);
    let mut visitor = visitor(&url, "shopper");
    visitor
        .command(|v, now| {
            v.presence(
                now,
                presence(&[
                    ("url", json!("https://shop.example/cart")),
                    ("plan", json!("gold")),
                    ("cart", json!(42)),
                ]),
            )
        })
        .unwrap();
    // The service has the presence once the agent sees it (no race with the lookups below).
    let mut agent = watching_agent(&url, "shopper");
    wait_agent(
        &mut agent,
        "the page",
        |e| matches!(e, AgentEvent::Presence { data, .. } if data.get("cart") == Some(&json!(42))),
    );

    // lookup, with credentials from flags.
    let creds = [
        "--web-server",
        url.as_str(),
        "--partner-user-id",
        "agent1",
        "--api-key",
        API_KEY,
    ];
    let mut lookup = vec!["lookup".to_owned()];
    lookup.extend(with(agent_args(&url, "shopper"), &creds));
    let out = run(cmd(&lookup));
    out.assert_no_secret(&[API_KEY]);
    let found = out.json();
    assert_eq!(found["present"], json!(true));
    assert_eq!(found["visitor"]["direct_server"], json!(svc.authority()));
    assert!(
        found["visitor"]["visitor_present_since_unix_ms"].is_u64(),
        "{found}"
    );
    assert_eq!(
        found["visitor"]["presence"],
        json!({"url": "https://shop.example/cart", "plan": "gold", "cart": 42})
    );
    let mut lookup = vec!["lookup".to_owned()];
    lookup.extend(with(agent_args(&url, "nobody"), &creds));
    assert_eq!(run(cmd(&lookup)).json(), json!({"present": false}));

    // query, with the token from the environment.
    let mut query = cmd(std::iter::once("query".to_owned()).chain(agent_args(&url, "shopper")));
    query.env("GLANCE_TOKEN", &token);
    let out = run(query);
    out.assert_no_secret(&[&token]);
    let state = out.json();
    assert_eq!(state["present"], json!(true), "{state}");
    assert_eq!(state["visitor"]["present"], json!(true));
    assert_eq!(state["visitor"]["sockets"], json!(1));
    assert_eq!(state["visitor"]["presence"]["plan"], json!("gold"));
    let mut query = cmd(std::iter::once("query".to_owned()).chain(agent_args(&url, "nobody")));
    query.env("GLANCE_TOKEN", &token);
    assert_eq!(run(query).json(), json!({"present": false}));

    // find, with everything from the environment.
    let env_find = |visitor: &str| {
        let mut find = cmd(["find", "--visitor", visitor]);
        find.env("GLANCE_PRESENCE_SERVER", &url)
            .env("GLANCE_GROUP_ID", GROUP)
            .env("GLANCE_TOKEN", &token);
        run(find).json()
    };
    assert_eq!(
        env_find("shopper"),
        json!({"found": true, "direct_server": svc.authority()})
    );
    assert_eq!(
        env_find("nobody"),
        json!({"found": false, "direct_server": svc.authority()})
    );
}

// ----- signal, invoke -----

#[test]
fn signal_reaches_the_visitor_and_an_absent_visitor_is_exit_1() {
    let svc = service();
    let url = svc.http_base();
    let token = token(&svc);
    let mut visitor = visitor(&url, "sig-v");
    let signal = |visitor_id: &str, data: &str| {
        let mut args = vec!["signal".to_owned()];
        args.extend(agent_args(&url, visitor_id));
        args.extend([
            "--token".into(),
            token.clone(),
            "--data".into(),
            data.into(),
        ]);
        run(cmd(&args))
    };

    let out = signal("sig-v", r#"{"text":"hello","n":1,"list":[true,null]}"#);
    assert_eq!(out.json(), json!({"result": {"delivery": "delivered"}}));
    match next_message(&mut visitor) {
        VisitorEvent::Signal { data } => assert_eq!(
            serde_json::to_string(&data).unwrap(),
            r#"{"text":"hello","n":1,"list":[true,null]}"#
        ),
        other => panic!("expected a signal, got {other:?}"),
    }

    let out = signal("gone-v", r#"{"text":"anyone?"}"#);
    let line = out.failure(1, &[&token]);
    assert!(line.contains("is not present"), "{line}");
    assert_eq!(svc.stats().core.signals_held, 0);
}

#[test]
fn invoke_reaches_the_visitor_and_a_bad_func_is_exit_2_with_nothing_sent() {
    let svc = service();
    let url = svc.http_base();
    let mut visitor = visitor(&url, "inv-v");
    let invoke = |func: &str, args: Option<&str>| {
        let mut argv = vec!["invoke".to_owned()];
        argv.extend(agent_args(&url, "inv-v"));
        argv.extend(["--func".into(), func.into()]);
        if let Some(args) = args {
            argv.extend(["--args".into(), args.into()]);
        }
        let mut command = cmd(&argv);
        command
            .env("GLANCE_WEB_SERVER", &url)
            .env("GLANCE_PARTNER_USER_ID", "agent1")
            .env("GLANCE_API_KEY", API_KEY);
        run(command)
    };

    let out = invoke(
        "GLANCE.Cobrowse.VisitorUI.showTerms",
        Some(r#"{"sessionKey":"inv-v"}"#),
    );
    assert_eq!(out.json(), json!({"result": {"delivery": "delivered"}}));
    assert_eq!(
        next_message(&mut visitor),
        VisitorEvent::Invoke {
            func: "GLANCE.Cobrowse.VisitorUI.showTerms".into(),
            args: json!({"sessionKey": "inv-v", "remote": true})
        }
    );
    // --args defaults to {}.
    let out = invoke("GLANCE_COBROWSE.Custom.ping", None);
    assert_eq!(out.json(), json!({"result": {"delivery": "delivered"}}));
    assert_eq!(
        next_message(&mut visitor),
        VisitorEvent::Invoke {
            func: "GLANCE_COBROWSE.Custom.ping".into(),
            args: json!({"remote": true})
        }
    );

    let before = svc.stats();
    let out = invoke("window.alert", Some("{}"));
    let line = out.failure(2, &[API_KEY]);
    assert!(line.contains("window.alert"), "{line}");
    let out = invoke("GLANCE.Cobrowse.VisitorUI.showTerms", Some("{not json"));
    let line = out.failure(2, &[API_KEY]);
    assert!(line.contains("--args"), "{line}");
    let after = svc.stats();
    assert_eq!(after.core.signals_delivered, before.core.signals_delivered);
    assert_eq!(after.core.signals_held, before.core.signals_held);
    // Not even a token was asked for.
    assert_eq!(after.authorize_failures, before.authorize_failures);
    // The visitor's next message is the next real one.
    let out = invoke("GLANCE.marker", Some("[1]"));
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert_eq!(
        next_message(&mut visitor),
        VisitorEvent::Invoke {
            func: "GLANCE.marker".into(),
            args: json!([1])
        }
    );
}

// ----- login-key, authorize -----

#[test]
fn login_key_prints_a_key_the_protocol_verifies() {
    let out = run(cmd([
        "login-key",
        "--group",
        GROUP,
        "--partner-user-id",
        "agent7",
        "--api-key",
        API_KEY,
        "--expires-in",
        "600",
    ]));
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert_eq!(out.stderr, "");
    let text = out.stdout.trim();
    assert_eq!(out.stdout.lines().count(), 1);
    assert!(text.starts_with("$1$"), "{text}");
    let key = LoginKey::new(text);
    let group = GroupId::new(12345).unwrap();
    let user = PartnerUserId::new("agent7").unwrap();
    let now = unix_now();
    let expires = loginkey::verify(&key, group, &user, &ApiKey::new(API_KEY), now).unwrap();
    // Made by a command that just ran: ten minutes ahead, give or take the run itself.
    assert!(
        (now + 500..=now + 700).contains(&expires),
        "{expires} vs {now}"
    );
    // Signed with the key given, for the user given.
    assert!(loginkey::verify(&key, group, &user, &ApiKey::new("other-key"), now).is_err());
    let other_user = PartnerUserId::new("agent8").unwrap();
    assert!(loginkey::verify(&key, group, &other_user, &ApiKey::new(API_KEY), now).is_err());

    // From the environment; the key itself is what the command prints.
    let mut command = cmd(["login-key"]);
    command
        .env("GLANCE_GROUP_ID", GROUP)
        .env("GLANCE_PARTNER_USER_ID", "agent7")
        .env("GLANCE_API_KEY", API_KEY);
    let out = run(command);
    assert_eq!(out.code, Some(0), "{out:#?}");
    let key = LoginKey::new(out.stdout.trim());
    loginkey::verify(&key, group, &user, &ApiKey::new(API_KEY), unix_now()).unwrap();

    for bad in ["0", "86401"] {
        let out = run(cmd([
            "login-key",
            "--group",
            GROUP,
            "--partner-user-id",
            "agent7",
            "--api-key",
            API_KEY,
            "--expires-in",
            bad,
        ]));
        out.failure(2, &[API_KEY]);
    }
}

#[test]
fn authorize_prints_a_working_token_and_a_wrong_api_key_is_exit_1() {
    let svc = service();
    let url = svc.http_base();
    let authorize = |api_key: &str, extra: &[&str]| {
        let mut args = vec![
            "authorize",
            "--group",
            GROUP,
            "--partner-user-id",
            "agent1",
            "--web-server",
            url.as_str(),
        ];
        args.extend_from_slice(extra);
        let mut command = cmd(args);
        command.env("GLANCE_API_KEY", api_key);
        run(command)
    };
    let out = authorize(API_KEY, &[]);
    assert_eq!(out.stderr, "");
    let answer = out.json();
    let token = answer["token"].as_str().expect("a token").to_owned();
    assert_eq!(answer.as_object().unwrap().len(), 1);
    // The token works.
    let mut lookup = vec!["lookup".to_owned()];
    lookup.extend(agent_args(&url, "v1"));
    lookup.extend(["--token".into(), token.clone()]);
    let out = run(cmd(&lookup));
    out.assert_no_secret(&[&token]);
    assert_eq!(out.json(), json!({"present": false}));

    let wrong = "wrong-api-key-do-not-print";
    let out = authorize(wrong, &[]);
    let line = out.failure(1, &[wrong, API_KEY]);
    assert!(line.contains("authoriz"), "{line}");
    assert!(svc.stats().authorize_failures >= 1);

    let out = authorize(API_KEY, &["--duration", "121"]);
    out.failure(2, &[API_KEY]);
}

#[test]
fn a_wrong_api_key_or_token_is_exit_1_without_printing_it() {
    let svc = service();
    let url = svc.http_base();
    let wrong_key = "wrong-api-key-do-not-print";
    for op in ["lookup", "query", "find"] {
        let mut args = vec![op.to_owned()];
        args.extend(agent_args(&url, "v1"));
        args.extend([
            "--web-server".into(),
            url.clone(),
            "--partner-user-id".into(),
            "agent1".into(),
        ]);
        let mut command = cmd(&args);
        command.env("GLANCE_API_KEY", wrong_key);
        let out = run(command);
        out.failure(1, &[wrong_key]);
    }
    let bad_token = "bad-token-do-not-print";
    let mut args = vec!["signal".to_owned()];
    args.extend(agent_args(&url, "v1"));
    args.extend([
        "--data".into(),
        "{}".into(),
        "--token".into(),
        bad_token.into(),
    ]);
    let out = run(cmd(&args));
    let line = out.failure(1, &[bad_token]);
    assert!(line.contains("authoriz"), "{line}");
}

// ----- visitor -----

#[test]
fn the_visitor_command_is_seen_by_an_agent_and_answers_signals_and_show_terms() {
    let svc = service();
    let url = svc.http_base();
    let mut agent = watching_agent(&url, "cli-visitor");
    let mut visitor = Running::spawn(cmd([
        "visitor",
        "--server",
        &url,
        "--group",
        GROUP,
        "--visitor",
        "cli-visitor",
        "--url",
        "https://shop.example/x",
        "--field",
        "plan=gold",
        "--field",
        "cart=42",
        "--json",
    ]));
    let (presence, before) = wait_agent(&mut agent, "the visitor's presence", |e| {
        matches!(e, AgentEvent::Presence { .. })
    });
    let AgentEvent::Presence { data, .. } = presence else {
        unreachable!()
    };
    assert_eq!(
        serde_json::to_string(&data).unwrap(),
        r#"{"url":"https://shop.example/x","plan":"gold","cart":42}"#
    );
    assert!(
        before.iter().any(|e| matches!(
            e,
            AgentEvent::VisitorPresence {
                state: VisitorPresence::Present,
                ..
            }
        )),
        "{before:#?}"
    );
    visitor.wait_event("connected", WAIT, |e| e["event"] == "connected");

    // A signal from the command line shows up on the visitor's stdout.
    let token = token(&svc);
    let mut args = vec!["signal".to_owned()];
    args.extend(agent_args(&url, "cli-visitor"));
    args.extend([
        "--token".into(),
        token.clone(),
        "--data".into(),
        r#"{"hi":"there"}"#.into(),
    ]);
    assert_eq!(
        run(cmd(&args)).json()["result"]["delivery"],
        json!("delivered")
    );
    let event = visitor.wait_event("the signal", WAIT, |e| e["event"] == "signal");
    assert_eq!(
        unwrap_line(event),
        json!({"event": "signal", "data": {"hi": "there"}})
    );

    // showTerms: the visitor displays and accepts the terms; the agent sees both.
    let mut args = vec!["invoke".to_owned()];
    args.extend(agent_args(&url, "cli-visitor"));
    args.extend([
        "--token".into(),
        token,
        "--func".into(),
        "GLANCE.Cobrowse.VisitorUI.showTerms".into(),
    ]);
    assert_eq!(run(cmd(&args)).code, Some(0));
    let (_, _) = wait_agent(&mut agent, "terms displayed", |e| {
        *e == AgentEvent::Terms {
            status: TermsStatus::Displayed,
        }
    });
    let (_, _) = wait_agent(&mut agent, "terms accepted", |e| {
        *e == AgentEvent::Terms {
            status: TermsStatus::Accepted,
        }
    });

    // Ctrl-C: the visitor leaves cleanly.
    let (code, rest, stderr) = visitor.interrupt();
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert_eq!(stderr, "");
    let last: Value = serde_json::from_str(rest.last().expect("a last line")).unwrap();
    assert_eq!(
        unwrap_line(last),
        json!({"event": "stopped", "why": {"kind": "requested"}})
    );
    for line in &rest {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    wait_agent(&mut agent, "the visitor's socket closing", |e| {
        matches!(e, AgentEvent::VisitorSocket { connected: false })
    });
}

// ----- usage errors and connection failures -----

#[test]
fn bad_flags_are_exit_2_with_one_line_and_no_secret() {
    // Never contacted: every case fails before any IO.
    let server = "http://127.0.0.1:9";
    let token = "token-do-not-print";
    let key = "key-do-not-print";
    let t = ["--token", token];
    let both = [
        "--token",
        token,
        "--api-key",
        key,
        "--partner-user-id",
        "a1",
    ];
    let k = ["--api-key", key, "--partner-user-id", "a1"];
    // (subcommand, visitor id, more flags, environment, what the error line mentions)
    type Case<'a> = (
        &'a str,
        &'a str,
        Vec<&'a str>,
        Vec<(&'a str, &'a str)>,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "signal",
            "v1",
            [&t[..], &["--data", "{bad json"]].concat(),
            vec![],
            "--data",
        ),
        ("lookup", "bad id", t.to_vec(), vec![], "visitor id"),
        ("lookup", "v1", both.to_vec(), vec![], "not both"),
        // The same conflict, the token from the environment.
        (
            "query",
            "v1",
            k.to_vec(),
            vec![("GLANCE_TOKEN", token)],
            "GLANCE_TOKEN",
        ),
        (
            "find",
            "v1",
            vec!["--api-key", key],
            vec![],
            "--partner-user-id",
        ),
        ("lookup", "v1", vec![], vec![], "credentials"),
        (
            "lookup",
            "v1",
            [&t[..], &["--group", "0"]].concat(),
            vec![],
            "group",
        ),
        (
            "lookup",
            "v1",
            [&t[..], &["--ca-cert", "/nonexistent/ca.pem"]].concat(),
            vec![],
            "/nonexistent/ca.pem",
        ),
        ("watch", "v1", both.to_vec(), vec![], "not both"),
        ("visitor", "bad id", vec![], vec![], "visitor id"),
        (
            "visitor",
            "v1",
            vec!["--field", "nonsense"],
            vec![],
            "--field",
        ),
    ];
    for (op, visitor, more, env, mention) in cases {
        let mut args = vec![op, "--server", server, "--visitor", visitor];
        if !more.contains(&"--group") {
            args.extend(["--group", GROUP]);
        }
        args.extend(more);
        let mut command = cmd(&args);
        for (name, value) in &env {
            command.env(name, value);
        }
        let line = run(command).failure(2, &[token, key]).to_owned();
        assert!(
            line.contains(mention),
            "{args:?}: {line:?} should mention {mention:?}"
        );
    }
    // A plain-text server that is not loopback.
    let out = run(cmd([
        "lookup",
        "--server",
        "http://example.com",
        "--group",
        GROUP,
        "--visitor",
        "v1",
    ]
    .into_iter()
    .chain(t)));
    let line = out.failure(2, &[token]);
    assert!(line.contains("loopback"), "{line}");
}

/// Flags clap itself refuses (a missing required flag, an unknown subcommand or flag): exit 2,
/// nothing on stdout, no secret on stderr.
#[test]
fn missing_or_unknown_flags_are_exit_2() {
    let token = "token-do-not-print";
    for args in [
        vec!["lookup", "--visitor", "v1", "--token", token],
        vec![
            "signal",
            "--group",
            GROUP,
            "--visitor",
            "v1",
            "--token",
            token,
        ],
        vec!["lookup", "--group", GROUP, "--token", token],
        vec!["no-such-command"],
        vec![
            "lookup",
            "--group",
            GROUP,
            "--visitor",
            "v1",
            "--token",
            token,
            "--no-such-flag",
        ],
        vec!["serve", "--tls-cert", "/tmp/cert.pem"],
    ] {
        let out = run(cmd(&args));
        assert_eq!(out.code, Some(2), "{args:?}: {out:#?}");
        assert_eq!(out.stdout, "", "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
        out.assert_no_secret(&[token]);
    }
}

/// Every error is one line on stderr, including those clap reports. Ignored: clap's usage
/// errors are several lines today (`error: …`, the missing flag, `Usage: …`, a hint).
#[test]

fn missing_flags_are_one_line_on_stderr() {
    let out = run(cmd(["lookup", "--visitor", "v1", "--token", "t"]));
    let line = out.failure(2, &[]);
    assert!(line.contains("--group"), "{line}");
}

#[test]
fn an_unreachable_service_is_exit_3() {
    let dead = format!("http://127.0.0.1:{}", dead_port());
    let token = "token-do-not-print";
    for op in [
        vec!["lookup"],
        vec!["query"],
        vec!["find"],
        vec!["signal", "--data", "{}"],
        vec!["invoke", "--func", "GLANCE.x"],
    ] {
        // With a token (the presence server is unreachable) ...
        let mut args: Vec<String> = op.iter().map(|s| (*s).to_owned()).collect();
        args.extend(agent_args(&dead, "v1"));
        let mut command = cmd(&args);
        command.env("GLANCE_TOKEN", token);
        let line = run(command).failure(3, &[token]).to_owned();
        assert!(line.contains("connect"), "{line}");
        // ... and with credentials (the Authorization service is unreachable).
        let mut command = cmd(&args);
        command
            .env("GLANCE_WEB_SERVER", &dead)
            .env("GLANCE_PARTNER_USER_ID", "agent1")
            .env("GLANCE_API_KEY", API_KEY);
        run(command).failure(3, &[API_KEY]);
    }
    let out = run(cmd([
        "authorize",
        "--group",
        GROUP,
        "--partner-user-id",
        "agent1",
        "--api-key",
        API_KEY,
        "--web-server",
        &dead,
    ]));
    out.failure(3, &[API_KEY]);
}

// ----- logs -----

#[test]
fn debug_logs_carry_no_secret() {
    let svc = service();
    let url = svc.http_base();
    let token = token(&svc);
    let _visitor = visitor(&url, "logged");
    let mut args = vec!["signal".to_owned()];
    args.extend(agent_args(&url, "logged"));
    args.extend(["--data".into(), "{}".into()]);
    // With credentials: the LoginKey and the token fetched stay out of the logs.
    let mut command = cmd(&args);
    command
        .env("GLANCE_PRESENCE_LOG", "debug")
        .env("GLANCE_WEB_SERVER", &url)
        .env("GLANCE_PARTNER_USER_ID", "agent1")
        .env("GLANCE_API_KEY", API_KEY);
    let out = run(command);
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert!(!out.stderr.is_empty(), "debug logs expected");
    // Tokens are JWTs (`eyJ…`); LoginKeys start with `$1$`.
    out.assert_no_secret(&[API_KEY, "eyJ", "$1$"]);
    // With a token.
    let mut command = cmd(&args);
    command
        .env("GLANCE_PRESENCE_LOG", "debug")
        .env("GLANCE_TOKEN", &token);
    let out = run(command);
    assert_eq!(out.code, Some(0), "{out:#?}");
    out.assert_no_secret(&[&token, "eyJ"]);
}

/// The same at `trace`. Ignored: tungstenite logs every frame it sends at trace level (the
/// agent's `connect` frame carries the token) and ureq hex-dumps HTTP exchanges.
#[test]

fn trace_logs_carry_no_secret() {
    let svc = service();
    let url = svc.http_base();
    let token = token(&svc);
    let mut args = vec!["watch".to_owned()];
    args.extend(agent_args(&url, "logged"));
    let mut command = cmd(&args);
    command
        .env("GLANCE_PRESENCE_LOG", "trace")
        .env("GLANCE_TOKEN", &token);
    let mut watch = Running::spawn(command);
    watch.wait_line("connected", WAIT, |l| l.contains("agent connected"));
    let (code, _, stderr) = watch.interrupt();
    assert_eq!(code, Some(0));
    assert!(!stderr.contains(&token), "the token is in the trace logs");
}

#[test]
fn help_and_version_exit_0() {
    let out = run(cmd(["--help"]));
    assert_eq!(out.code, Some(0));
    for sub in [
        "demo",
        "serve",
        "watch",
        "lookup",
        "query",
        "find",
        "signal",
        "invoke",
        "login-key",
        "authorize",
        "visitor",
    ] {
        assert!(out.stdout.contains(sub), "{sub} missing from --help");
    }
    let out = run(cmd(["--version"]));
    assert_eq!(out.code, Some(0));
    assert!(out.stdout.starts_with("glance-presence "), "{out:#?}");
}
