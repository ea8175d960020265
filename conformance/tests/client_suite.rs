//! The client suite against both Rust agents, blocking and async on tokio, over loopback:
//! every scenario passes with Glance's settings (credentials, `serverclose` stops) and short
//! timers on both sides; and against a misbehaving agent, which fails the requirement it
//! breaks. (The verdicts of the timed scenarios are also checked on recorded bad logs, in the
//! suite's own unit tests.)

use std::sync::mpsc;
use std::time::Duration;

use glance_presence_async::AsyncAgent;
use glance_presence_blocking::{BlockingAgent, TransportConfig};
use glance_presence_conformance::client::{
    ClientSettings, ClientSetup, ClientSuite, ClientUnderTest,
};
use glance_presence_conformance::{Report, Status};
use glance_presence_protocol::agent::{AgentConfig, AgentEvent, AgentTimers};
use glance_presence_protocol::backoff::ReconnectPolicy;

fn settings() -> ClientSettings {
    ClientSettings {
        keepalive_secs: 1,
        reconnect_within: Duration::from_secs(1),
        immediate_within: Duration::from_secs(2),
        wait_for_client: Duration::from_secs(10),
        quiet_after_serverclose: Duration::from_secs(2),
        // Below the agents' request timeout (2 s).
        slow_answer: Duration::from_secs(1),
        ..ClientSettings::default()
    }
}

/// Short timers, the dead-link ones left at the rule's 15 s and 10 s.
fn timers() -> AgentTimers {
    AgentTimers {
        request_timeout: Duration::from_secs(2),
        link_stable_after: Duration::from_millis(300),
        ..AgentTimers::default()
    }
}

fn config(setup: &ClientSetup) -> AgentConfig {
    config_with(setup, timers())
}

fn config_with(setup: &ClientSetup, timers: AgentTimers) -> AgentConfig {
    AgentConfig::builder()
        .group_id(setup.group)
        .visitor_id(setup.visitor.clone())
        .credentials(setup.partner_user_id.clone(), setup.api_key.clone())
        .web_server(setup.web_server.clone())
        .presence_server(setup.server.clone())
        .reconnect_policy(ReconnectPolicy::full_jitter(
            Duration::from_millis(200),
            Duration::from_secs(1),
        ))
        .timers(timers)
        .build()
        .expect("agent config")
}

fn check(report: &Report) {
    let not_passed: Vec<_> = report
        .outcomes
        .iter()
        .filter(|o| o.status != Status::Pass)
        .collect();
    assert!(not_passed.is_empty(), "{}", report.to_table());
    assert!(report.required_passed());
}

/// Asks the agent's own thread to signal and waits for the failure reason.
struct Asks(mpsc::Sender<mpsc::Sender<String>>);

impl ClientUnderTest for Asks {
    fn signal(&mut self) -> Option<String> {
        let (tx, rx) = mpsc::channel();
        self.0.send(tx).ok()?;
        rx.recv_timeout(Duration::from_secs(10)).ok()
    }
}

#[test]
fn blocking_agent_passes_the_client_suite() {
    let suite = ClientSuite::start(settings()).expect("service");
    let config = config(suite.setup());
    check(&run_blocking(&suite, config));
}

/// A misbehaving client: the blocking agent with its dead-link detection off (it never pings
/// a silent link, so it never gives one up). The suite fails it on AGT-LINK-1, and on nothing
/// else: the silent socket is dropped for it and the later scenarios play as usual.
#[test]
fn a_client_that_never_gives_up_a_silent_link_fails_agt_link_1() {
    let suite = ClientSuite::start(settings()).expect("service");
    let config = config_with(
        suite.setup(),
        AgentTimers {
            idle_ping_after: Duration::from_secs(3600),
            ..timers()
        },
    );
    let report = run_blocking(&suite, config);
    assert_eq!(report.failed_ids(), ["AGT-LINK-1"], "{}", report.to_table());
}

/// Runs the client suite against a blocking agent with this configuration.
fn run_blocking(suite: &ClientSuite, config: AgentConfig) -> Report {
    let (ask, asked) = mpsc::channel::<mpsc::Sender<String>>();
    let driver = std::thread::spawn(move || {
        let mut agent = BlockingAgent::new(config, TransportConfig::default()).expect("agent");
        agent.connect().expect("connect");
        loop {
            if let Ok(reply) = asked.try_recv() {
                let reason = match agent.signal(serde_json::json!({"gpclient": 1})) {
                    Ok(delivery) => format!("delivered: {delivery:?}"),
                    Err(e) => e.reason().to_owned(),
                };
                let _ = reply.send(reason);
            }
            if let Some(AgentEvent::Stopped { .. }) =
                agent.next_event(Some(Duration::from_millis(50)))
            {
                return;
            }
        }
    });
    let report = suite.run(&mut Asks(ask));
    driver.join().expect("the agent's thread");
    report
}

#[test]
fn async_agent_passes_the_client_suite() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let suite = ClientSuite::start(settings()).expect("service");
    let config = config(suite.setup());
    let (ask, mut asked) = tokio::sync::mpsc::unbounded_channel::<mpsc::Sender<String>>();
    let driver = runtime.spawn(async move {
        let mut agent = AsyncAgent::start(config, TransportConfig::default()).expect("agent");
        agent.connect().await.expect("connect");
        let handle = agent.handle();
        loop {
            tokio::select! {
                Some(reply) = asked.recv() => {
                    let reason = match handle.signal(serde_json::json!({"gpclient": 1})).await {
                        Ok(delivery) => format!("delivered: {delivery:?}"),
                        Err(e) => e.reason().to_owned(),
                    };
                    let _ = reply.send(reason);
                }
                event = agent.next_event() => match event {
                    Some(AgentEvent::Stopped { .. }) | None => return,
                    _ => {}
                },
            }
        }
    });
    struct AsyncAsks(tokio::sync::mpsc::UnboundedSender<mpsc::Sender<String>>);
    impl ClientUnderTest for AsyncAsks {
        fn signal(&mut self) -> Option<String> {
            let (tx, rx) = mpsc::channel();
            self.0.send(tx).ok()?;
            rx.recv_timeout(Duration::from_secs(10)).ok()
        }
    }
    let report = suite.run(&mut AsyncAsks(ask));
    runtime.block_on(driver).expect("the agent's task");
    check(&report);
}
