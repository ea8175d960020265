//! Driving the sans-IO agent core from a hand-written loop, with no async runtime and no
//! sockets: a scripted peer answers the core's requests, and the loop follows the drain rule
//! (carry out every output, then feed the next input or fire the next deadline).

use std::time::{Duration, Instant};

use glance_presence_protocol::agent::{AgentConfig, AgentEvent, AgentProtocol};
use glance_presence_protocol::io::{Output, SansIo, TransportInput};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let config = AgentConfig::builder()
        .group_id(12345)
        .visitor_id("v1")
        .token("a-token")
        .presence_server("http://127.0.0.1:8080")
        .build()?;
    let mut agent = AgentProtocol::new(config, start, Duration::from_secs(1_700_000_000));
    agent.connect(start)?;
    let mut now = start;
    let mut inbox = Vec::new();
    let mut connected = false;
    for _ in 0..50 {
        while let Some(output) = agent.poll_output() {
            match output {
                Output::Http { id, request } => {
                    let body: &[u8] = if request.url.contains("/findvisitor") {
                        br#"{"visitorfound":true,"directserver":"127.0.0.1","httpsport":8080}"#
                    } else {
                        b"{}"
                    };
                    inbox.push(TransportInput::HttpResponse {
                        id,
                        status: 200,
                        body: body.to_vec(),
                    });
                }
                Output::OpenSocket { socket, url, .. } => {
                    println!("open {url}");
                    inbox.push(TransportInput::SocketOpened { socket });
                }
                Output::SendFrame { socket, text } => {
                    println!("send {text}");
                    if text.contains(r#""type":"connect""#) {
                        let text = r#"{"type":"connected","keepalive":30}"#.to_owned();
                        inbox.push(TransportInput::Frame { socket, text });
                    }
                }
                Output::SendPing { .. } | Output::CloseSocket { .. } => {}
                Output::Event(event) => {
                    println!("event {}", serde_json::to_string(&event)?);
                    connected |= matches!(event, AgentEvent::Connected { .. });
                }
            }
        }
        if let Some(input) = inbox.pop() {
            agent.handle_input(now, input);
        } else if let Some(deadline) = agent.poll_timeout() {
            now = now.max(deadline);
            agent.handle_timeout(now);
        }
    }
    if !connected {
        return Err("the agent never connected".into());
    }
    println!("ok: connected through a hand-written loop");
    Ok(())
}
