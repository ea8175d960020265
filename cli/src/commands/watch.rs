//! `watch`: stream one visitor's events until Ctrl-C. The agent reconnects by itself; a lost
//! link shows up as events, never as the end of the command. When the service closes the
//! session (`serverclose`, e.g. a graceful restart), the agent stops as Glance's clients do,
//! and `watch` starts a new one after a pause: watching goes on until Ctrl-C.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use glance_presence_blocking::BlockingAgent;
use glance_presence_protocol::agent::{AgentEvent, StopReason};

use super::common;
use crate::args::AgentArgs;
use crate::failure::Failure;
use crate::render::Printer;

/// How often the loop looks at the Ctrl-C flag while no event comes.
const INTERRUPT_POLL: Duration = Duration::from_millis(200);
/// Pause before watching again after `serverclose` (Glance's agent reopens after 5 s).
const WATCH_AGAIN_AFTER: Duration = Duration::from_secs(5);

/// How one agent's watch ended.
enum Ended {
    /// Ctrl-C: the command is done.
    Interrupted,
    /// The service closed the session: watch again.
    ServerClosed,
}

/// Runs until Ctrl-C (exit 0), or until the agent stops for a reason watching again cannot
/// fix (authorization, presence disabled: exit 1).
pub fn run(args: &AgentArgs, json: bool) -> Result<(), Failure> {
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupted);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .map_err(|e| Failure::usage(format_args!("cannot handle Ctrl-C: {e}")))?;
    let printer = Printer::new(json);
    loop {
        match watch_once(args, &printer, &interrupted)? {
            Ended::Interrupted => return Ok(()),
            Ended::ServerClosed => {
                printer.note(&format!(
                    "the service closed the session; watching again in {} s",
                    WATCH_AGAIN_AFTER.as_secs()
                ));
                let until = Instant::now() + WATCH_AGAIN_AFTER;
                while Instant::now() < until {
                    if interrupted.load(Ordering::SeqCst) {
                        return Ok(());
                    }
                    std::thread::sleep(INTERRUPT_POLL);
                }
            }
        }
    }
}

/// One agent, from `connect` to its `stopped` event.
fn watch_once(
    args: &AgentArgs,
    printer: &Printer,
    interrupted: &AtomicBool,
) -> Result<Ended, Failure> {
    let config = common::agent_config(args)?;
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
                return Ok(Ended::Interrupted);
            }
            continue;
        };
        printer.agent_event(&event);
        if let AgentEvent::Stopped { why } = event {
            return match why {
                StopReason::Requested => Ok(Ended::Interrupted),
                StopReason::ServerClose if stopping => Ok(Ended::Interrupted),
                StopReason::ServerClose => Ok(Ended::ServerClosed),
                StopReason::Authorization => Err(Failure::refused("authorization refused")),
                StopReason::PresenceDisabled => {
                    Err(Failure::refused("presence is disabled for this group"))
                }
                other => Err(Failure::refused(format_args!("stopped: {other:?}"))),
            };
        }
    }
}
