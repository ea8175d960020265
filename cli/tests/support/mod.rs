//! Helpers for the end-to-end tests of the `glance-presence` command: run it with a clean
//! environment (every `GLANCE_*` variable removed, then set explicitly), bound every run and
//! every wait, read a long-running child's stdout line by line on a thread, send it SIGINT
//! with the `kill` command, and kill it if a test fails first.
//!
//! The bounds are guards against hangs, not timing assertions.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use glance_presence_blocking::{BlockingVisitor, TransportConfig};
use glance_presence_protocol::visitor::{VisitorConfig, VisitorEvent};
use glance_presence_protocol::{GroupId, PartnerUserId, PresenceData};
use glance_presence_service::config::{DEMO_API_KEY, DEMO_GROUP_ID};
use glance_presence_service::{ServiceConfig, ServiceHandle};
use serde_json::Value;

pub const API_KEY: &str = DEMO_API_KEY;
pub const GROUP: &str = "12345";

/// Bound on a one-shot command.
pub const RUN_LIMIT: Duration = Duration::from_secs(30);
/// Bound on waiting for one line or event.
pub const WAIT: Duration = Duration::from_secs(20);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_glance-presence")
}

/// The command with every inherited `GLANCE_*` variable removed.
pub fn cmd<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut command = Command::new(bin());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("GLANCE_") {
            command.env_remove(&name);
        }
    }
    command.args(args).stdin(Stdio::null());
    command
}

/// What a finished run printed.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Exit 0, and stdout as one JSON document.
    /// The line's `time_unix_ms` (Unix milliseconds) and `visitor_id`, when it has one, are
    /// checked and taken out.
    pub fn json(&self) -> Value {
        assert_eq!(self.code, Some(0), "{self:#?}");
        let mut value: Value = serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:#?}"));
        let map = value.as_object_mut().expect("a JSON object");
        let ms = map.remove("time_unix_ms").and_then(|v| v.as_u64());
        assert!(ms.is_some_and(|ms| ms > 1_600_000_000_000), "{self:#?}");
        map.remove("visitor_id");
        value
    }

    /// Exit `code`, nothing on stdout, one message line on stderr (then only `  hint:` lines),
    /// and none of `secrets` in either. Returns stderr: the message and its hints.
    pub fn failure(&self, code: i32, secrets: &[&str]) -> &str {
        assert_eq!(self.code, Some(code), "{self:#?}");
        assert_eq!(self.stdout, "", "{self:#?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert!(!lines.is_empty(), "nothing on stderr: {self:#?}");
        assert!(
            lines[1..].iter().all(|l| l.starts_with("  hint: ")),
            "one message line then hints expected: {self:#?}"
        );
        assert!(
            lines[0].starts_with("glance-presence: "),
            "{:?} does not name the command",
            lines[0]
        );
        self.assert_no_secret(secrets);
        self.stderr.trim_end()
    }

    /// Like [`Output::failure`], and a hint must be there: returns it.
    pub fn hinted_failure(&self, code: i32, secrets: &[&str]) -> (&str, &str) {
        let text = self.failure(code, secrets);
        let (line, hint) = text
            .split_once("\n  hint: ")
            .unwrap_or_else(|| panic!("no hint: {self:#?}"));
        (line, hint)
    }

    pub fn assert_no_secret(&self, secrets: &[&str]) {
        for secret in secrets {
            assert!(!secret.is_empty());
            assert!(
                !self.stderr.contains(secret) && !self.stdout.contains(secret),
                "a secret was printed: {self:#?}"
            );
        }
    }
}

/// Reads a pipe to the end on a thread.
fn slurp(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// Runs the command to completion (killed and failed after [`RUN_LIMIT`]).
pub fn run(mut command: Command) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn glance-presence");
    let out = slurp(child.stdout.take().unwrap());
    let err = slurp(child.stderr.take().unwrap());
    let status = wait_bounded(&mut child, RUN_LIMIT);
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    let Some(status) = status else {
        panic!("still running after {RUN_LIMIT:?}; stdout {stdout:?} stderr {stderr:?}");
    };
    Output {
        code: status.code(),
        stdout,
        stderr,
    }
}

/// Waits for the child to exit, at most `limit`; kills it (by its pid) and returns `None`
/// when it did not.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGINT (what Ctrl-C sends) to one process, with the `kill` command.
pub fn sigint(pid: u32) {
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -INT {pid} failed");
}

/// A long-running child whose stdout is read line by line on a thread. Killed on drop if it
/// is still running, so a failing test leaves nothing behind.
pub struct Running {
    child: Child,
    lines: Receiver<String>,
    /// Every stdout line taken so far, in order.
    pub seen: Vec<String>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Running {
    pub fn spawn(mut command: Command) -> Running {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn glance-presence");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Some(slurp(child.stderr.take().unwrap()));
        Running {
            child,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next stdout line, waiting at most `limit`; `None` at the end of the output or
    /// when the wait ends.
    pub fn next_line(&mut self, limit: Duration) -> Option<String> {
        match self.lines.recv_timeout(limit) {
            Ok(line) => {
                self.seen.push(line.clone());
                Some(line)
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Takes lines until one satisfies `pick`; fails (showing the lines seen) when none comes
    /// within `limit`.
    pub fn wait_line(
        &mut self,
        what: &str,
        limit: Duration,
        pick: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_line(left) {
                Some(line) if pick(&line) => return line,
                Some(_) => {}
                None => panic!(
                    "no {what} within {limit:?}; still running: {}; stdout so far:\n{}",
                    self.is_running(),
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Takes JSON lines until an event satisfies `pick`.
    pub fn wait_event(
        &mut self,
        what: &str,
        limit: Duration,
        pick: impl Fn(&Value) -> bool,
    ) -> Value {
        let line = self.wait_line(what, limit, |line| {
            serde_json::from_str::<Value>(line).is_ok_and(|v| pick(&v))
        });
        serde_json::from_str(&line).unwrap()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Kills the process (SIGKILL to its pid) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGINT, then waits (bounded) for the exit; returns the exit code, the stdout lines not
    /// taken yet, and stderr.
    pub fn interrupt(self) -> (Option<i32>, Vec<String>, String) {
        sigint(self.pid());
        self.finish()
    }

    /// Waits (bounded) for the exit without signalling.
    pub fn finish(mut self) -> (Option<i32>, Vec<String>, String) {
        let status = wait_bounded(&mut self.child, WAIT);
        let mut rest = Vec::new();
        while let Some(line) = self.next_line(Duration::from_secs(5)) {
            rest.push(line);
        }
        let stderr = self.stderr.take().unwrap().join().unwrap();
        let Some(status) = status else {
            panic!(
                "did not exit within {WAIT:?}; stdout:\n{}\nstderr:\n{stderr}",
                self.seen.join("\n")
            );
        };
        (status.code(), rest, stderr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A `serve` child on `listen`, past its banner. Returns it and its `http://127.0.0.1:PORT`.
pub fn serve(listen: &str, extra: &[&str]) -> (Running, String) {
    let mut args = vec!["serve", "--listen", listen];
    args.extend_from_slice(extra);
    let mut serve = Running::spawn(cmd(args));
    let banner = serve.wait_line("the service banner", WAIT, |l| {
        l.starts_with("glance-presence reference service on ")
    });
    let url = banner.rsplit(' ').next().unwrap().to_owned();
    serve.wait_line("the end of the banner", WAIT, |l| l == "Ctrl-C stops it.");
    (serve, url)
}

/// An in-process reference service on 127.0.0.1, port 0.
pub fn service() -> ServiceHandle {
    ServiceHandle::spawn(
        ServiceConfig::builder()
            .listen("127.0.0.1:0".parse().unwrap())
            .build()
            .unwrap(),
    )
    .unwrap()
}

pub fn token(svc: &ServiceHandle) -> String {
    svc.issue_token(
        GroupId::new(DEMO_GROUP_ID).unwrap(),
        &PartnerUserId::new("agent1").unwrap(),
        Duration::from_secs(3600),
    )
    .unwrap()
    .expose_secret()
    .to_owned()
}

/// Agent flags for `visitor` on `server` (auth not included).
pub fn agent_args(server: &str, visitor: &str) -> Vec<String> {
    vec![
        "--server".into(),
        server.into(),
        "--group".into(),
        GROUP.into(),
        "--visitor".into(),
        visitor.into(),
    ]
}

/// A visitor in this process, connected (past `connected`).
pub fn visitor(server: &str, id: &str) -> BlockingVisitor {
    let config = VisitorConfig::builder()
        .group_id(DEMO_GROUP_ID)
        .visitor_id(id)
        .presence_server(server)
        .build()
        .unwrap();
    let mut visitor = BlockingVisitor::new(config, TransportConfig::default()).unwrap();
    visitor.connect().unwrap();
    let connected = visitor.wait_for(WAIT, |e| {
        matches!(e, VisitorEvent::Connected { .. }).then_some(())
    });
    assert!(connected.is_some(), "the visitor did not connect");
    visitor
}

pub fn presence(pairs: &[(&str, Value)]) -> PresenceData {
    let mut map = serde_json::Map::new();
    for (k, v) in pairs {
        map.insert((*k).to_owned(), v.clone());
    }
    PresenceData::from_map(map)
}

/// A port on 127.0.0.1 that nobody listens on (bound, then released).
pub fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A fresh directory under the system's temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "glance-presence-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A JSON line without its envelope: checks that `time_unix_ms` (Unix milliseconds) and
/// `visitor_id` are there and first, and returns the rest.
pub fn unwrap_line(mut line: Value) -> Value {
    let keys: Vec<&String> = line.as_object().expect("an object").keys().collect();
    assert_eq!(keys[..2], ["time_unix_ms", "visitor_id"], "{line}");
    let map = line.as_object_mut().expect("an object");
    let ms = map
        .remove("time_unix_ms")
        .and_then(|v| v.as_u64())
        .expect("time_unix_ms");
    assert!(ms > 1_600_000_000_000, "{ms} is not Unix milliseconds");
    assert!(map.remove("visitor_id").expect("visitor_id").is_string());
    line
}
