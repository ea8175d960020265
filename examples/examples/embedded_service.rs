//! The reference service embedded in a test: start it on a free loopback port, point an
//! async agent at it, and check what the agent sees. `cargo test --examples` runs the test;
//! `cargo run --example embedded_service` runs the same check.

use std::time::Duration;

use glance_presence_async::{AsyncAgent, TransportConfig};
use glance_presence_protocol::agent::{AgentConfig, AgentEvent};
use glance_presence_service::config::{DEMO_API_KEY, DEMO_GROUP_ID};
use glance_presence_service::{Service, ServiceConfig};

async fn agent_connects_to_an_embedded_service() -> Result<(), Box<dyn std::error::Error>> {
    let service = Service::start(
        ServiceConfig::builder()
            .listen("127.0.0.1:0".parse()?)
            .build()?,
    )
    .await?;
    let config = AgentConfig::builder()
        .group_id(DEMO_GROUP_ID)
        .visitor_id("embedded")
        .presence_server(service.http_base())
        .web_server(service.http_base())
        .credentials("agent1", DEMO_API_KEY)
        .build()?;
    let mut agent = AsyncAgent::start(config, TransportConfig::default())?;
    agent.connect().await?;
    let connected = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(event) = agent.next_event().await {
            if matches!(event, AgentEvent::Connected { .. }) {
                return true;
            }
        }
        false
    })
    .await?;
    if !connected {
        return Err("no Connected event".into());
    }
    assert_eq!(agent.lookup().await?, None, "nobody is there");
    println!("ok: the agent connected to the embedded service");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    agent_connects_to_an_embedded_service().await
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn agent_connects_to_an_embedded_service() {
        super::agent_connects_to_an_embedded_service()
            .await
            .unwrap();
    }
}
