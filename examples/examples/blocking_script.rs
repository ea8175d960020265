//! A blocking script: start the reference service in process, connect a visitor, then an
//! agent with credentials that looks the visitor up and signals it.

use std::time::Duration;

use glance_presence_blocking::{BlockingAgent, BlockingVisitor, TransportConfig};
use glance_presence_protocol::agent::AgentConfig;
use glance_presence_protocol::visitor::{VisitorConfig, VisitorEvent};
use glance_presence_service::config::{DEMO_API_KEY, DEMO_GROUP_ID};
use glance_presence_service::{ServiceConfig, ServiceHandle};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let service = ServiceHandle::spawn(
        ServiceConfig::builder()
            .listen("127.0.0.1:0".parse()?)
            .build()?,
    )?;
    let visitor_config = VisitorConfig::builder()
        .group_id(DEMO_GROUP_ID)
        .visitor_id("script-visitor")
        .presence_server(service.http_base())
        .build()?;
    let mut visitor = BlockingVisitor::new(visitor_config, TransportConfig::default())?;
    visitor.connect()?;
    visitor
        .wait_for(Duration::from_secs(10), |e| {
            matches!(e, VisitorEvent::Connected { .. }).then_some(())
        })
        .ok_or("the visitor did not connect")?;
    let config = AgentConfig::builder()
        .group_id(DEMO_GROUP_ID)
        .visitor_id("script-visitor")
        .presence_server(service.http_base())
        .web_server(service.http_base())
        .credentials("agent1", DEMO_API_KEY)
        .build()?;
    let mut agent = BlockingAgent::new(config, TransportConfig::default())?;
    let snapshot = agent.lookup()?;
    println!("lookup: present = {}", snapshot.is_some());
    let delivery = agent.signal(json!({"hello": "from a script"}))?;
    println!("signal: {delivery:?}");
    visitor.pump(Duration::from_millis(200));
    Ok(())
}
