//! # glance-presence (the command)
//!
//! One command for the demo, scripts and the reference service: `demo`, `serve`, `watch`,
//! `lookup`, `query`, `find`, `signal`, `invoke`, `login-key`, `authorize`, `visitor`. It is a
//! thin shell over the library crates: flags become configuration, events become lines.
//!
//! Exit codes: 0 success; 1 the service refused (visitor not present, authorization); 2 usage
//! or configuration error; 3 connection failure. Every error is one line on stderr.
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

mod args;
mod commands;
mod failure;
mod render;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};
use commands::oneshot::Operation;
use failure::Failure;

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Demo { json } => commands::demo::run(json),
        Command::Serve(args) => commands::serve::run(&args),
        Command::Watch { agent, json } => commands::watch::run(&agent, json),
        Command::Lookup { agent } => commands::oneshot::run(&agent, Operation::Lookup),
        Command::Query { agent } => commands::oneshot::run(&agent, Operation::Query),
        Command::Find { agent } => commands::oneshot::run(&agent, Operation::Find),
        Command::Signal { agent, data } => {
            commands::oneshot::run(&agent, Operation::Signal { data })
        }
        Command::Invoke { agent, func, args } => {
            commands::oneshot::run(&agent, Operation::Invoke { func, args })
        }
        Command::LoginKey { creds, expires_in } => commands::auth::login_key(&creds, expires_in),
        Command::Authorize {
            creds,
            web_server,
            duration,
            tls,
        } => commands::auth::authorize(&creds, &web_server, duration, &tls),
        Command::Visitor(args) => commands::visitor::run(&args),
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GLANCE_PRESENCE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{failure}");
            failure.exit_code()
        }
    }
}
