//! End-to-end tests of `glance-presence watch`: readable lines and JSON lines, Ctrl-C, and
//! resilience: the service dies in the middle of a watch, watch reports the loss, keeps
//! running, reconnects once the service is back on the same port, and prints every event the
//! visitor sends after that.

mod support;

use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use glance_presence_blocking::{BlockingVisitor, TransportConfig};
use glance_presence_protocol::backoff::ReconnectPolicy;
use glance_presence_protocol::visitor::{VisitorConfig, VisitorEvent};
use glance_presence_protocol::{PresenceData, TermsStatus};
use serde_json::{json, Value};
use support::*;

/// Bound on the agent's reconnect (its backoff: full jitter from 1 s, capped at 60 s).
const RECONNECT_WAIT: Duration = Duration::from_secs(90);

enum Command {
    Presence(PresenceData),
    Terms(TermsStatus),
    SessionStart(Value),
}

/// A visitor driven on its own thread, so that it keeps its link serviced (and reconnects)
/// while the test waits on the command.
struct VisitorThread {
    commands: Option<Sender<Command>>,
    events: Receiver<VisitorEvent>,
    seen: Vec<VisitorEvent>,
    thread: Option<thread::JoinHandle<()>>,
}

impl VisitorThread {
    fn spawn(server: &str, id: &str) -> VisitorThread {
        let config = VisitorConfig::builder()
            .group_id(12345)
            .visitor_id(id)
            .presence_server(server)
            // The test's own visitor reconnects quickly; the agent under test keeps its defaults.
            .reconnect_policy(ReconnectPolicy::full_jitter(
                Duration::from_millis(100),
                Duration::from_millis(500),
            ))
            .build()
            .unwrap();
        let (command_tx, command_rx) = mpsc::channel::<Command>();
        let (event_tx, events) = mpsc::channel();
        let thread = thread::spawn(move || {
            let mut visitor = BlockingVisitor::new(config, TransportConfig::default()).unwrap();
            visitor.connect().unwrap();
            loop {
                loop {
                    match command_rx.try_recv() {
                        Ok(Command::Presence(data)) => {
                            visitor.command(|v, now| v.presence(now, data)).unwrap()
                        }
                        Ok(Command::Terms(status)) => {
                            visitor.command(|v, now| v.terms(now, status)).unwrap()
                        }
                        Ok(Command::SessionStart(data)) => visitor
                            .command(|v, now| v.session_start(now, Some(data)))
                            .unwrap(),
                        Err(mpsc::TryRecvError::Empty) => break,
                        Err(mpsc::TryRecvError::Disconnected) => {
                            visitor.disconnect();
                            return;
                        }
                    }
                }
                if let Some(event) = visitor.next_event(Some(Duration::from_millis(50))) {
                    if event_tx.send(event).is_err() {
                        return;
                    }
                }
            }
        });
        VisitorThread {
            commands: Some(command_tx),
            events,
            seen: Vec::new(),
            thread: Some(thread),
        }
    }

    fn send(&self, command: Command) {
        self.commands.as_ref().unwrap().send(command).unwrap();
    }

    fn wait(&mut self, what: &str, limit: Duration, pick: impl Fn(&VisitorEvent) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => {
                    let hit = pick(&event);
                    self.seen.push(event);
                    if hit {
                        return;
                    }
                }
                Err(_) => panic!(
                    "the visitor saw no {what} within {limit:?}: {:#?}",
                    self.seen
                ),
            }
        }
    }
}

impl Drop for VisitorThread {
    fn drop(&mut self) {
        self.commands = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn connected(e: &VisitorEvent) -> bool {
    matches!(e, VisitorEvent::Connected { .. })
}

fn step(value: &str) -> PresenceData {
    let mut data = PresenceData::new();
    data.insert("step", value);
    data
}

fn is(event: &str) -> impl Fn(&Value) -> bool + '_ {
    move |e| e["event"] == event
}

fn presence_step(value: &str) -> impl Fn(&Value) -> bool + '_ {
    move |e| e["event"] == "presence" && e["data"]["step"] == value
}

#[test]
fn watch_survives_the_service_dying_and_loses_no_event_after_it_is_back() {
    let (mut first, url) = serve("127.0.0.1:0", &[]);
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let mut command = cmd([
        "watch",
        "--json",
        "--server",
        &url,
        "--group",
        GROUP,
        "--visitor",
        "w1",
    ]);
    command
        .env("GLANCE_WEB_SERVER", &url)
        .env("GLANCE_PARTNER_USER_ID", "agent1")
        .env("GLANCE_API_KEY", API_KEY);
    let mut watch = Running::spawn(command);
    watch.wait_event("connected", WAIT, is("connected"));

    let mut visitor = VisitorThread::spawn(&url, "w1");
    visitor.wait("connected", WAIT, connected);
    let mut page = step("before");
    page.insert("url", "https://shop.example/");
    visitor.send(Command::Presence(page));
    watch.wait_event("the first presence", WAIT, presence_step("before"));

    // The service dies (no `serverclose`): watch reports the loss and keeps going.
    first.kill();
    let lost = watch.wait_event("the loss", WAIT, is("disconnected"));
    assert!(lost["why"]["kind"].is_string(), "{lost}");
    assert!(watch.is_running(), "watch ended with the service");

    // Back on the same port, with a new token secret: watch reconnects by itself (renewing
    // its token), and so does the visitor.
    let (second, again) = serve(&format!("127.0.0.1:{port}"), &[]);
    assert_eq!(again, url);
    let from = watch.seen.len();
    let back = watch.wait_event("the reconnect", RECONNECT_WAIT, is("connected"));
    assert_eq!(back["server"], json!(format!("127.0.0.1:{port}")));
    let between: Vec<Value> = watch.seen[from..]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        between.iter().any(|e| e["event"] == "reconnecting"),
        "{between:#?}"
    );
    assert!(watch.is_running());
    visitor.wait("its reconnect", RECONNECT_WAIT, connected);

    // Everything the visitor sends from now on is printed, in order.
    visitor.send(Command::Presence(step("after")));
    visitor.send(Command::Terms(TermsStatus::Accepted));
    visitor.send(Command::SessionStart(json!({"sessionkey": "w1"})));
    visitor.send(Command::Presence(step("last")));
    watch.wait_event("presence after the reconnect", WAIT, presence_step("after"));
    let terms = watch.wait_event("terms", WAIT, is("terms"));
    assert_eq!(terms["status"], "accepted");
    let session = watch.wait_event("the session start", WAIT, is("session_start"));
    assert_eq!(session["data"], json!({"sessionkey": "w1"}));
    watch.wait_event("the last presence", WAIT, presence_step("last"));

    // Every line is one JSON event.
    for line in &watch.seen {
        let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(event["event"].is_string(), "{line}");
    }
    let (code, rest, stderr) = watch.interrupt();
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let last: Value = serde_json::from_str(rest.last().expect("a last line")).unwrap();
    assert_eq!(
        unwrap_line(last),
        json!({"event": "stopped", "why": {"kind": "requested"}})
    );
    assert!(!stderr.contains(API_KEY), "{stderr}");
    assert!(!stderr.contains("eyJ"), "{stderr}");
    drop(visitor);
    let (code, _, _) = second.interrupt();
    assert_eq!(code, Some(0));
}

#[test]
fn watch_prints_a_readable_timeline_and_ctrl_c_ends_it() {
    let svc = service();
    let url = svc.http_base();
    let token = token(&svc);
    let mut command = cmd(["watch", "--visitor", "w2"]);
    command
        .env("GLANCE_PRESENCE_SERVER", &url)
        .env("GLANCE_GROUP_ID", GROUP)
        .env("GLANCE_TOKEN", &token);
    let mut watch = Running::spawn(command);
    let line = watch.wait_line("connected", WAIT, |l| l.contains("agent connected to"));
    assert!(
        line.contains(&format!(
            "agent connected to {} (keepalive 30 s)",
            svc.authority()
        )),
        "{line}"
    );
    let mut visitor = visitor(&url, "w2");
    visitor
        .command(|v, now| {
            v.presence(
                now,
                presence(&[
                    ("url", json!("https://shop.example/")),
                    ("plan", json!("gold")),
                ]),
            )
        })
        .unwrap();
    watch.wait_line("present", WAIT, |l| l.ends_with("] visitor PRESENT"));
    // A page reported while the lookup after `connected` is out arrives merged into that
    // snapshot; otherwise as a live change.
    watch.wait_line("the presence", WAIT, |l| {
        l.ends_with("] presence: url=https://shop.example/ plan=gold (changed: url, plan)")
            || l.ends_with("] presence snapshot: url=https://shop.example/ plan=gold")
    });
    let seen = watch.seen.clone();
    let (code, rest, stderr) = watch.interrupt();
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert!(
        rest.last().is_some_and(|l| l.ends_with("] agent stopped")),
        "{rest:#?}"
    );
    for line in seen.iter().chain(&rest) {
        assert!(!line.contains(&token), "{line}");
    }
    assert!(!stderr.contains(&token), "{stderr}");
}

/// A graceful shutdown tells every socket `serverclose`: watch's agent (configured with the
/// core's reconnect-after-serverclose policy) reports the disconnect, keeps running, and
/// reconnects after its jittered backoff once the service is back on the same port; no new
/// agent, no fixed pause in the command.
#[test]
fn watch_goes_on_through_a_graceful_service_restart() {
    let (first, url) = serve("127.0.0.1:0", &[]);
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let mut command = cmd([
        "watch",
        "--json",
        "--server",
        &url,
        "--group",
        GROUP,
        "--visitor",
        "w3",
    ]);
    command
        .env("GLANCE_WEB_SERVER", &url)
        .env("GLANCE_PARTNER_USER_ID", "agent1")
        .env("GLANCE_API_KEY", API_KEY);
    let mut watch = Running::spawn(command);
    watch.wait_event("connected", WAIT, is("connected"));
    let (code, _, _) = first.interrupt();
    assert_eq!(code, Some(0));
    let disconnected = watch.wait_event("disconnected", WAIT, is("disconnected"));
    assert_eq!(disconnected["why"], json!({"kind": "server_close"}));
    assert!(watch.is_running(), "watch ended with the service");

    let (second, again) = serve(&format!("127.0.0.1:{port}"), &[]);
    assert_eq!(again, url);
    watch.wait_event("the new agent's link", RECONNECT_WAIT, is("connected"));
    let mut visitor = VisitorThread::spawn(&url, "w3");
    visitor.wait("connected", WAIT, connected);
    visitor.send(Command::Presence(step("after the restart")));
    watch.wait_event(
        "presence after the restart",
        WAIT,
        presence_step("after the restart"),
    );
    let (code, rest, stderr) = watch.interrupt();
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let last: Value = serde_json::from_str(rest.last().expect("a last line")).unwrap();
    assert_eq!(
        unwrap_line(last),
        json!({"event": "stopped", "why": {"kind": "requested"}})
    );
    drop(visitor);
    let (code, _, _) = second.interrupt();
    assert_eq!(code, Some(0));
}

/// Ctrl-C ends watch without reporting a lost link first: a read interrupted by the signal
/// (EINTR) is not a transport error.
#[test]
fn ctrl_c_reports_no_lost_link() {
    let svc = service();
    let url = svc.http_base();
    let mut command = cmd([
        "watch",
        "--json",
        "--server",
        &url,
        "--group",
        GROUP,
        "--visitor",
        "w4",
    ]);
    command.env("GLANCE_TOKEN", token(&svc));
    let mut watch = Running::spawn(command);
    watch.wait_event("connected", WAIT, is("connected"));
    watch.wait_event("the visitor absent", WAIT, is("visitor_presence"));
    let (code, rest, _) = watch.interrupt();
    assert_eq!(code, Some(0));
    let rest: Vec<Value> = rest
        .iter()
        .map(|l| unwrap_line(serde_json::from_str(l).unwrap()))
        .collect();
    assert_eq!(
        rest,
        [json!({"event": "stopped", "why": {"kind": "requested"}})],
        "only the stop is printed after Ctrl-C"
    );
}

/// The service is killed (no `serverclose`) under ten watchers of one visitor and comes back
/// on the same port 5 s later, knowing nobody: no watcher ever reports the visitor absent
/// (an empty lookup after a reconnect waits for the leave grace, and the visitor reconnects
/// within it), and every watcher sees the visitor present again.
#[test]
fn watchers_never_report_a_visitor_absent_through_a_service_kill_and_restart() {
    const WATCHERS: usize = 10;
    let (mut first, url) = serve("127.0.0.1:0", &[]);
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let mut visitor = VisitorThread::spawn(&url, "w9");
    visitor.wait("connected", WAIT, connected);
    let mut watchers: Vec<Running> = (0..WATCHERS)
        .map(|_| {
            let mut command = cmd([
                "watch",
                "--json",
                "--server",
                &url,
                "--group",
                GROUP,
                "--visitor",
                "w9",
            ]);
            command
                .env("GLANCE_WEB_SERVER", &url)
                .env("GLANCE_PARTNER_USER_ID", "agent1")
                .env("GLANCE_API_KEY", API_KEY);
            Running::spawn(command)
        })
        .collect();
    let present = |e: &Value| e["event"] == "visitor_presence" && e["state"] == "present";
    for watch in &mut watchers {
        watch.wait_event("the visitor present", WAIT, present);
    }
    first.kill();
    thread::sleep(Duration::from_secs(5));
    let (second, again) = serve(&format!("127.0.0.1:{port}"), &[]);
    assert_eq!(again, url);
    visitor.wait("its reconnect", RECONNECT_WAIT, connected);
    let mut from = Vec::new();
    for watch in &mut watchers {
        from.push(watch.seen.len());
        watch.wait_event("the reconnect", RECONNECT_WAIT, is("connected"));
    }
    // The leave grace (6 s) passes after the last reconnect, and more.
    thread::sleep(Duration::from_secs(8));
    for (watch, from) in watchers.iter_mut().zip(from) {
        while watch.next_line(Duration::from_millis(100)).is_some() {}
        let events: Vec<Value> = watch.seen[from..]
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(
            !events
                .iter()
                .any(|e| e["event"] == "visitor_presence" && e["state"] == "absent"),
            "a false absent: {events:#?}"
        );
    }
    for watch in watchers {
        let (code, _, stderr) = watch.interrupt();
        assert_eq!(code, Some(0), "stderr: {stderr}");
    }
    drop(visitor);
    let (code, _, _) = second.interrupt();
    assert_eq!(code, Some(0));
}
