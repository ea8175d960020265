//! `watch`: stream one visitor's events until Ctrl-C. The agent reconnects by itself; a lost
//! link shows up as events, never as the end of the command. When the service closes the
//! session (`serverclose`, e.g. a graceful restart), the agent comes back after its
//! reconnect policy's jittered delay (the core's `AfterServerClose::Reconnect`), so watching
//! goes on until Ctrl-C and many watchers of a restarted service do not return in lockstep.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use glance_presence_blocking::{AgentError, BlockingAgent};
use glance_presence_protocol::agent::{AgentEvent, RequestFailure, StopReason};
use glance_presence_protocol::link::AfterServerClose;

use super::common;
use crate::args::AgentArgs;
use crate::failure::Failure;
use crate::render::Printer;

/// How often the loop looks at the Ctrl-C flag while no event comes.
const INTERRUPT_POLL: Duration = Duration::from_millis(200);

/// Runs until Ctrl-C (exit 0), or until the agent stops for a reason reconnecting cannot fix
/// (authorization, presence disabled: exit 1).
pub fn run(args: &AgentArgs, json: bool) -> Result<(), Failure> {
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupted);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .map_err(|e| Failure::usage(format_args!("cannot handle Ctrl-C: {e}")))?;
    let printer = Printer::new(
        json,
        args.visitor
            .as_deref()
            .or(args.unique.as_deref())
            .unwrap_or_default(),
    );
    let config = common::agent_builder(args)?
        .after_server_close(AfterServerClose::Reconnect)
        .build()
        .map_err(Failure::usage)?;
    let transport = common::transport(&args.tls)?;
    let mut agent = BlockingAgent::new(config, transport).map_err(Failure::usage)?;
    agent
        .connect()
        .map_err(|e| Failure::usage(format_args!("connect: {e}")))?;
    let mut stopping = false;
    loop {
        if !stopping && interrupted.load(Ordering::SeqCst) {
            stopping = true;
            agent.disconnect();
        }
        let Some(event) = agent.next_event(Some(INTERRUPT_POLL)) else {
            if stopping && agent.core().is_stopped() {
                return Ok(());
            }
            continue;
        };
        printer.agent_event(&event);
        if let AgentEvent::Stopped { why } = event {
            return match why {
                StopReason::Requested | StopReason::ServerClose => Ok(()),
                StopReason::Authorization => Err(common::explain(
                    args,
                    AgentError::Failed(RequestFailure::Authorization {
                        status: None,
                        detail: None,
                    }),
                )),
                StopReason::PresenceDisabled => Err(Failure::refused(format_args!(
                    "presence is disabled for group {}",
                    args.group
                ))),
                _ => Err(Failure::refused("the agent stopped")),
            };
        }
    }
}
