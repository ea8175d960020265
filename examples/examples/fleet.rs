//! A fleet watching 1,000 visitors from one process (tokio), against the reference service
//! started in process: one shared HTTP client, one token callback for all agents, one merged
//! event stream. Ends once every agent is connected.

use std::time::Duration;

use futures_util::StreamExt;
use glance_presence_async::{token_provider, Fleet};
use glance_presence_protocol::agent::{AgentConfig, AgentEvent};
use glance_presence_protocol::{GroupId, PartnerUserId};
use glance_presence_service::config::DEMO_GROUP_ID;
use glance_presence_service::{Service, ServiceConfig};

const VISITORS: usize = 1_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let service = Service::start(
        ServiceConfig::builder()
            .listen("127.0.0.1:0".parse()?)
            .build()?,
    )
    .await?;
    let token = service
        .issue_token(
            GroupId::new(DEMO_GROUP_ID)?,
            &PartnerUserId::new("fleet")?,
            Duration::from_secs(600),
        )
        .ok_or("no token")?;
    let template = AgentConfig::builder()
        .group_id(DEMO_GROUP_ID)
        .presence_server(service.http_base());
    let tokens = token_provider(move || {
        let token = token.clone();
        async move { Ok(token) }
    });
    let (fleet, mut events) = Fleet::builder(template)
        .token_provider(tokens)
        .build()?
        .into_parts();
    for i in 0..VISITORS {
        fleet.watch(&format!("fleet-{i}")).await?;
    }
    let mut connected = 0;
    let wait = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some((_, event)) = events.next().await {
            if matches!(event, AgentEvent::Connected { .. }) {
                connected += 1;
                if connected == VISITORS {
                    break;
                }
            }
        }
    });
    wait.await
        .map_err(|_| "not every agent connected in time")?;
    let state = fleet.state("fleet-7").await?;
    println!(
        "{connected} agents connected; token callback ran {} time(s); fleet-7: {state:?}",
        fleet.token_fetches()
    );
    fleet.close();
    Ok(())
}
