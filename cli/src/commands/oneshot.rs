//! One-shot operations (`lookup`, `query`, `signal`, `invoke`): one request through the
//! blocking agent, the result printed as one JSON document.

use glance_presence_blocking::{AgentError, BlockingAgent};
use serde_json::Value;

use super::common;
use crate::args::AgentArgs;
use crate::failure::Failure;
use crate::line::JsonLine;
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
    let visitor_id = args
        .visitor
        .as_deref()
        .or(args.unique.as_deref())
        .unwrap_or_default();
    let line = match (operation, payload) {
        (Operation::Lookup, _) => {
            let visitor = agent.lookup().map_err(failed)?;
            JsonLine::Lookup {
                time_unix_ms: render::unix_ms(),
                visitor_id,
                present: visitor.is_some(),
                visitor: visitor.map(Into::into),
            }
        }
        (Operation::Query, _) => {
            let visitor = agent.query().map_err(failed)?;
            JsonLine::Query {
                time_unix_ms: render::unix_ms(),
                visitor_id,
                present: visitor.is_some(),
                visitor,
            }
        }
        (Operation::Signal { .. }, Some(data)) => {
            let result = agent.signal(data).map_err(failed)?;
            JsonLine::Sent {
                time_unix_ms: render::unix_ms(),
                visitor_id,
                result,
            }
        }
        (Operation::Invoke { func, .. }, Some(invoke_args)) => {
            let result = agent.invoke(&func, invoke_args).map_err(failed)?;
            JsonLine::Sent {
                time_unix_ms: render::unix_ms(),
                visitor_id,
                result,
            }
        }
        (Operation::Find, _) => {
            let (found, direct_server) = agent.find().map_err(failed)?;
            JsonLine::Find {
                time_unix_ms: render::unix_ms(),
                visitor_id,
                found,
                direct_server,
            }
        }
        _ => return Err(Failure::usage("missing payload")),
    };
    agent.disconnect();
    println!("{}", line.to_text());
    Ok(())
}
