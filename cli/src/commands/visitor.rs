//! `visitor`: play a visitor for manual testing. It connects, sends its presence, prints what
//! agents send it, and answers a `showTerms` invoke by displaying and accepting the terms,
//! until Ctrl-C.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use glance_presence_blocking::BlockingVisitor;
use glance_presence_protocol::link::AfterServerClose;
use glance_presence_protocol::visitor::{StopReason as VisitorStop, VisitorConfig, VisitorEvent};
use glance_presence_protocol::{PresenceData, TermsStatus};
use serde_json::Value;

use super::common;
use crate::args::VisitorArgs;
use crate::failure::Failure;
use crate::line::Event;
use crate::render;

/// `name=value` pairs as presence fields; values that parse as JSON numbers stay numbers.
pub fn presence_fields(url: &str, fields: &[String]) -> Result<PresenceData, Failure> {
    let mut data = PresenceData::new();
    data.insert("url", url);
    for field in fields {
        let (name, value) = field
            .split_once('=')
            .ok_or_else(|| Failure::usage(format_args!("--field {field:?} is not NAME=VALUE")))?;
        if name.is_empty() {
            return Err(Failure::usage(format_args!(
                "--field {field:?} has no name"
            )));
        }
        match serde_json::from_str::<Value>(value) {
            Ok(Value::Number(n)) => data.insert(name, n),
            _ => data.insert(name, value),
        }
    }
    Ok(data)
}

fn print(event: &VisitorEvent, json: bool, visitor: &str) {
    if json {
        println!("{}", render::event_line(visitor, Event::Visitor(event)));
    } else {
        println!("{}", describe(event));
    }
}

/// One readable line for a visitor event.
pub fn describe(event: &VisitorEvent) -> String {
    match event {
        VisitorEvent::Connecting { .. } => "visitor connecting".to_owned(),
        VisitorEvent::Connected { server, .. } => format!("visitor connected to {server}"),
        VisitorEvent::Disconnected { why } => {
            format!("visitor link down: {}", render::disconnect_reason(why))
        }
        VisitorEvent::Reconnecting { delay_ms, .. } => {
            format!("visitor reconnecting in {}", render::human_delay(*delay_ms))
        }
        VisitorEvent::Stopped { why } => match why {
            VisitorStop::Requested => "visitor stopped".to_owned(),
            VisitorStop::ServerClose => {
                "visitor stopped: the service closed the session".to_owned()
            }
            #[allow(unreachable_patterns)]
            _ => "visitor stopped".to_owned(),
        },
        VisitorEvent::Signal { data } => format!("signal from the agent: {data}"),
        VisitorEvent::Invoke { func, args } => format!("invoke {func}({args})"),
        VisitorEvent::InvokeRefused { func } => format!("invoke of {func} refused"),
        VisitorEvent::Blurred => "another tab took over this visitor id (blur)".to_owned(),
        other => serde_json::to_string(other).unwrap_or_else(|_| "event".to_owned()),
    }
}

/// Runs until Ctrl-C.
pub fn run(args: &VisitorArgs) -> Result<(), Failure> {
    common::check_server("--server", &args.server)?;
    let presence = presence_fields(&args.url, &args.fields)?;
    let config = VisitorConfig::builder()
        .group_id(args.group)
        .visitor_id(args.visitor.as_str())
        .presence_server(args.server.as_str())
        // Until Ctrl-C: a graceful service restart is a pause, not the end.
        .after_server_close(AfterServerClose::Reconnect)
        .build()
        .map_err(Failure::usage)?;
    let transport = common::transport(&args.tls)?;
    let mut visitor = BlockingVisitor::new(config, transport).map_err(Failure::usage)?;
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupted);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .map_err(|e| Failure::usage(format_args!("cannot handle Ctrl-C: {e}")))?;
    visitor.connect().map_err(Failure::usage)?;
    visitor
        .command(|v, now| v.presence(now, presence))
        .map_err(Failure::usage)?;
    loop {
        if interrupted.load(Ordering::SeqCst) {
            visitor.disconnect();
        }
        let Some(event) = visitor.next_event(Some(Duration::from_millis(200))) else {
            if visitor.core().is_stopped() {
                return Ok(());
            }
            continue;
        };
        print(&event, args.json, &args.visitor);
        match event {
            VisitorEvent::Invoke { func, .. } if func.ends_with(".showTerms") => {
                for status in [TermsStatus::Displayed, TermsStatus::Accepted] {
                    visitor
                        .command(|v, now| v.terms(now, status))
                        .map_err(Failure::usage)?;
                }
            }
            VisitorEvent::Stopped { .. } => return Ok(()),
            _ => {}
        }
    }
}
