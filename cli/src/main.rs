//! # glance-presence (the command)
//!
//! One command for the demo, scripts and the reference service: `demo`, `serve`, `watch`,
//! `lookup`, `query`, `find`, `signal`, `invoke`, `login-key`, `authorize`, `visitor`,
//! `json-schema`. It is a
//! thin shell over the library crates: flags become configuration, events become lines.
//!
//! Exit codes: 0 success; 1 the service refused (visitor not present, authorization, 503);
//! 2 usage or configuration error; 3 connection failure. An error is one line on stderr, then
//! a hint line when there is something to try.
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

mod args;
mod commands;
mod failure;
mod line;
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
        Command::Lookup { agent, .. } => commands::oneshot::run(&agent, Operation::Lookup),
        Command::Query { agent, .. } => commands::oneshot::run(&agent, Operation::Query),
        Command::Find { agent, .. } => commands::oneshot::run(&agent, Operation::Find),
        Command::Signal { agent, data, .. } => {
            commands::oneshot::run(&agent, Operation::Signal { data })
        }
        Command::Invoke {
            agent, func, args, ..
        } => commands::oneshot::run(&agent, Operation::Invoke { func, args }),
        Command::LoginKey {
            creds,
            expires_in,
            json,
        } => commands::auth::login_key(&creds, expires_in, json),
        Command::Authorize {
            creds,
            web_server,
            duration,
            tls,
            ..
        } => commands::auth::authorize(&creds, &web_server, duration, &tls),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "glance-presence",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::JsonSchema => {
            print!("{}", line::schema_text());
            Ok(())
        }
        Command::Visitor(args) => commands::visitor::run(&args),
        Command::Conformance(suite) => commands::conformance::run(&suite),
    }
}

/// Libraries whose trace logs show frames and HTTP exchanges, tokens included: their trace
/// level is never printed, whatever `GLANCE_PRESENCE_LOG` asks.
const NO_TRACE_FROM: [&str; 4] = ["tungstenite", "ureq", "ureq_proto", "rustls"];

fn init_logs() {
    use tracing_subscriber::filter::{filter_fn, FilterExt};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;

    let env = tracing_subscriber::EnvFilter::try_from_env("GLANCE_PRESENCE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let no_wire_traces = filter_fn(|meta| {
        *meta.level() != tracing::Level::TRACE
            || !NO_TRACE_FROM
                .iter()
                .any(|crate_name| meta.target().split("::").next() == Some(*crate_name))
    });
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_writer(std::io::stderr)
                .with_filter(env.and(no_wire_traces)),
        )
        .init();
}

/// Parses the flags; a usage error is one line on stderr (exit 2), help and version print as
/// clap formats them (exit 0).
fn parse() -> Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|error| match error.kind() {
        clap::error::ErrorKind::DisplayHelp
        | clap::error::ErrorKind::DisplayVersion
        | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            if error.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        _ => {
            let text = error.render().to_string();
            let line = text
                .lines()
                .map(str::trim)
                .filter(|l| {
                    !l.is_empty()
                        && !l.starts_with("Usage:")
                        && !l.starts_with("For more information")
                })
                .collect::<Vec<_>>()
                .join(" ");
            let line = line.strip_prefix("error: ").unwrap_or(&line).to_owned();
            eprintln!("{}", Failure::usage(format_args!("{line} (see --help)")));
            ExitCode::from(2)
        }
    })
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    init_logs();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{failure}");
            failure.exit_code()
        }
    }
}
