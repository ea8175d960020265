//! The core contract seen from a driver: inbound pings count as activity for the dead-link
//! logic, and inputs fed while outputs are still being drained lose and reorder nothing.

use glance_presence_testkit::support;

use std::time::Duration;

use glance_presence_protocol::agent::{AgentProtocol, ConnectionState};
use glance_presence_protocol::io::{Output, SansIo, TransportInput};
use support::agent::{base_config, Harness, FIND_FOUND};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn an_inbound_ping_is_activity_for_the_dead_link_logic() {
    let mut h = Harness::new(|b| b.idle_ping_after(secs(15)).pong_timeout(secs(10)));
    h.auto_pong = false;
    h.connect_happy("{}");
    let socket = h.last_socket.unwrap();
    h.advance(secs(10));
    h.input(TransportInput::Ping { socket });
    h.advance(secs(10));
    assert_eq!(h.pings_sent(), 0, "20 s after connect, 10 s after the ping");
    h.advance(secs(5));
    assert_eq!(h.pings_sent(), 1, "15 s of silence after the ping");
    // The service pings instead of ponging: still alive.
    h.advance(secs(9));
    h.input(TransportInput::Ping { socket });
    h.advance(secs(5));
    assert_eq!(h.core.connection_state(), ConnectionState::Connected);
    // A ping from a socket the agent gave up on is ignored.
    h.advance(secs(60));
    assert_ne!(h.core.connection_state(), ConnectionState::Connected);
}

/// The answer the scripted service gives to an output, if any.
fn answer(output: &Output<glance_presence_protocol::agent::AgentEvent>) -> Option<TransportInput> {
    match output {
        Output::Http { id, request } if request.url.contains("/findvisitor") => {
            Some(TransportInput::HttpResponse {
                id: *id,
                status: 200,
                body: FIND_FOUND.as_bytes().to_vec(),
            })
        }
        Output::Http { id, .. } => Some(TransportInput::HttpResponse {
            id: *id,
            status: 200,
            body: b"{}".to_vec(),
        }),
        Output::OpenSocket { socket, .. } => Some(TransportInput::SocketOpened { socket: *socket }),
        Output::SendFrame { socket, text } if text.contains(r#""type":"connect""#) => {
            Some(TransportInput::Frame {
                socket: *socket,
                text: r#"{"type":"connected","keepalive":30}"#.to_owned(),
            })
        }
        _ => None,
    }
}

/// Connects an agent with two requests waiting, answering every output the scripted service
/// answers: with `mid_drain`, each answer is fed as soon as its output is taken, before the
/// rest of the queue; without, only once the queue is empty. Returns every output in order.
fn run(mid_drain: bool) -> Vec<Output<glance_presence_protocol::agent::AgentEvent>> {
    let start = std::time::Instant::now();
    let mut agent = AgentProtocol::new(
        base_config().build().unwrap(),
        start,
        Duration::from_secs(support::agent::UNIX_START),
    );
    agent.connect(start).unwrap();
    agent.lookup(start).unwrap();
    agent.query(start).unwrap();
    let mut outputs = Vec::new();
    let mut waiting = Vec::new();
    for _ in 0..1000 {
        match agent.poll_output() {
            Some(output) => {
                if let Some(input) = answer(&output) {
                    if mid_drain {
                        agent.handle_input(start, input);
                    } else {
                        waiting.push(input);
                    }
                }
                outputs.push(output);
            }
            None if waiting.is_empty() => break,
            None => {
                for input in waiting.drain(..) {
                    agent.handle_input(start, input);
                }
            }
        }
    }
    outputs
}

/// An input fed while outputs are still queued appends what it causes after them: the
/// interleaved run produces exactly the outputs, in the order, of the run that drains first.
#[test]
fn inputs_fed_mid_drain_lose_and_reorder_nothing() {
    let drained_first = run(false);
    let mid_drain = run(true);
    let requests = |outputs: &[Output<_>]| {
        outputs
            .iter()
            .filter(|o| matches!(o, Output::Http { .. }))
            .count()
    };
    // findvisitor, the snapshot, the lookup and the query.
    assert_eq!(requests(&drained_first), 4, "{drained_first:#?}");
    assert_eq!(mid_drain, drained_first);
}
