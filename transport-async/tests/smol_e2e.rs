//! End to end on the smol runtime: an agent on smol connects to the reference service
//! (running on its own thread), sees its visitor through a fleet, and looks it up. Runs
//! with `--features smol`.
#![cfg(feature = "smol")]

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use glance_presence_async::{AsyncAgent, Fleet, SmolRuntime, Transport, TransportConfig};
use glance_presence_protocol::agent::{AgentConfig, AgentEvent};
use glance_presence_service::config::{DEMO_API_KEY, DEMO_GROUP_ID};
use glance_presence_service::{ServiceConfig, ServiceHandle};

const WAIT: Duration = Duration::from_secs(15);

fn service() -> ServiceHandle {
    let config = ServiceConfig::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .build()
        .unwrap();
    ServiceHandle::spawn(config).unwrap()
}

#[test]
fn an_agent_and_a_fleet_on_smol_connect_and_look_up() {
    let svc = service();
    smol::block_on(async {
        let transport =
            Transport::new(Arc::new(SmolRuntime::new()), TransportConfig::default()).unwrap();
        let config = AgentConfig::builder()
            .group_id(DEMO_GROUP_ID)
            .visitor_id("smol-1")
            .presence_server(svc.http_base())
            .web_server(svc.http_base())
            .credentials("agent1", DEMO_API_KEY)
            .build()
            .unwrap();
        let mut agent = AsyncAgent::start_with(&transport, config);
        agent.connect().await.unwrap();
        let connected = async {
            while let Some(event) = agent.next_event().await {
                if matches!(event, AgentEvent::Connected { .. }) {
                    return true;
                }
            }
            false
        };
        let timer = async {
            smol::Timer::after(WAIT).await;
            false
        };
        assert!(
            futures_util::future::select(Box::pin(connected), Box::pin(timer))
                .await
                .factor_first()
                .0
        );
        assert_eq!(agent.lookup().await.unwrap(), None);
        assert!(!transport.tls_built(), "no TLS configuration for http/ws");

        let template = AgentConfig::builder()
            .group_id(DEMO_GROUP_ID)
            .presence_server(svc.http_base())
            .web_server(svc.http_base())
            .credentials("agent1", DEMO_API_KEY);
        let (fleet, mut events) = Fleet::builder(template)
            .transport(transport.clone())
            .build()
            .unwrap()
            .into_parts();
        for i in 0..20 {
            fleet.watch(&format!("smol-fleet-{i}")).await.unwrap();
        }
        let mut seen = std::collections::HashSet::new();
        let all = async {
            while let Some((visitor, event)) = events.next().await {
                if matches!(event, AgentEvent::Connected { .. }) {
                    seen.insert(visitor);
                    if seen.len() == 20 {
                        return true;
                    }
                }
            }
            false
        };
        let timer = async {
            smol::Timer::after(WAIT).await;
            false
        };
        assert!(
            futures_util::future::select(Box::pin(all), Box::pin(timer))
                .await
                .factor_first()
                .0
        );
        assert!(fleet.lookup("smol-fleet-3").await.unwrap().is_none());
        assert!(matches!(
            fleet.lookup("nobody").await,
            Err(glance_presence_async::FleetError::NotWatched(_))
        ));
    });
}
