//! One-shot operations (`lookup`, `query`, `signal`, `invoke`): one request through the
//! blocking agent, the result printed as one JSON document.

use glance_presence_blocking::{AgentError, BlockingAgent};
use glance_presence_protocol::agent::VisitorSnapshot;
use serde_json::{json, Value};

use super::common;
use crate::args::AgentArgs;
use crate::failure::Failure;
use crate::render;

/// Which operation.
#[derive(Debug)]
pub enum Operation {
    Lookup,
    Query,
    Find,
    Signal { data: String },
    Invoke { func: String, args: String },
}

fn parse_json(flag: &str, text: &str) -> Result<Value, Failure> {
    serde_json::from_str(text)
        .map_err(|e| Failure::usage(format_args!("--{flag} is not valid JSON: {e}")))
}

/// The lookup's whole record (the documented fields and the presence data) with its times in
/// Unix milliseconds, the command's one time unit.
fn snapshot_json(visitor: &VisitorSnapshot) -> Value {
    json!({
        "direct_server": visitor.direct_server,
        "visitor_present_since_unix_ms": visitor
            .visitor_present_since
            .and_then(render::seconds_to_ms),
        "timestamp_unix_ms": visitor.timestamp.and_then(render::seconds_to_ms),
        "visitorid": visitor.visitor_id,
        "groupid": visitor.group_id,
        "ds": visitor.ds,
        "tlsport": visitor.tls_port,
        "httpsport": visitor.https_port,
        "presence": visitor.presence,
    })
}

/// Runs the operation and prints its result.
pub fn run(args: &AgentArgs, operation: Operation) -> Result<(), Failure> {
    // Check the JSON flags before anything touches the network.
    let payload = match &operation {
        Operation::Signal { data } => Some(parse_json("data", data)?),
        Operation::Invoke { args, .. } => Some(parse_json("args", args)?),
        _ => None,
    };
    let config = common::agent_config(args)?;
    let transport = common::transport(&args.tls)?;
    let mut agent = BlockingAgent::new(config, transport).map_err(Failure::usage)?;
    let failed = |error: AgentError| common::explain(args, error);
    if args.socket_route {
        agent.connect().map_err(failed)?;
    }
    let result = match (operation, payload) {
        (Operation::Lookup, _) => match agent.lookup().map_err(failed)? {
            Some(visitor) => json!({ "present": true, "visitor": snapshot_json(&visitor) }),
            None => json!({ "present": false }),
        },
        (Operation::Query, _) => match agent.query().map_err(failed)? {
            Some(visitor) => json!({ "present": true, "visitor": visitor }),
            None => json!({ "present": false }),
        },
        (Operation::Signal { .. }, Some(data)) => {
            json!({ "result": agent.signal(data).map_err(failed)? })
        }
        (Operation::Invoke { func, .. }, Some(invoke_args)) => {
            json!({ "result": agent.invoke(&func, invoke_args).map_err(failed)? })
        }
        (Operation::Find, _) => {
            let (found, direct_server) = agent.find().map_err(failed)?;
            json!({ "found": found, "direct_server": direct_server })
        }
        _ => return Err(Failure::usage("missing payload")),
    };
    agent.disconnect();
    let visitor = args
        .visitor
        .as_deref()
        .or(args.unique.as_deref())
        .unwrap_or_default();
    println!("{}", render::json_line(visitor, result));
    Ok(())
}
