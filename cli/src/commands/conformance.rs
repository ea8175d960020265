//! `conformance server` and `conformance client`: thin shells over the conformance crate. The
//! server suite runs against any presence service; the client suite starts the reference
//! service on loopback, says where the agent under test should connect, and plays its
//! scenarios. Both print the outcome table (or `--json`) and exit 0 only when every required
//! requirement passed, 1 otherwise.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use glance_presence_conformance::client::{self, ClientSettings, ClientSuite, ClientUnderTest};
use glance_presence_conformance::probe::Endpoint;
use glance_presence_conformance::server::{self, Auth, ServerTarget};
use glance_presence_conformance::{Level, Report, Status};
use glance_presence_protocol::GroupId;

use crate::args::AuthArgs;
use crate::commands::common::check_server;
use crate::failure::Failure;

/// `conformance server` flags.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The presence server: a host or host:port (https), or a URL (https://…, or http:// for
    /// loopback).
    #[arg(long, env = "GLANCE_PRESENCE_SERVER")]
    pub server: String,
    /// The group id whose visitors the suite plays (ids `gpconf-<run>-<n>` only).
    #[arg(long, env = "GLANCE_GROUP_ID")]
    pub group: u64,
    #[command(flatten)]
    pub auth: AuthArgs,
    /// The service's presence window in seconds (the suite waits a little longer for a leave).
    #[arg(long, default_value_t = 6)]
    pub presence_window: u64,
    /// Seconds to wait for any one answer or frame.
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,
    /// Print the report as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Print what the run would do, and do nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `conformance client` flags.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Where the reference service listens (a loopback address; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// The keepalive interval the service announces, in seconds.
    #[arg(long, default_value_t = 2)]
    pub keepalive: u64,
    /// The longest reconnect delay the client's policy allows, in seconds (after a dropped
    /// socket or a refused request).
    #[arg(long, default_value_t = 70)]
    pub reconnect_within: u64,
    /// Seconds to wait for the client under test to connect.
    #[arg(long, default_value_t = 300)]
    pub wait_for_client: u64,
    /// Print the report as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Print the scenarios, and do nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs a conformance subcommand.
pub fn run(command: &crate::args::ConformanceCommand) -> Result<(), Failure> {
    match command {
        crate::args::ConformanceCommand::Server(args) => run_server(args),
        crate::args::ConformanceCommand::Client(args) => run_client(args),
    }
}

fn endpoint(flag: &str, value: &str) -> Result<Endpoint, Failure> {
    check_server(flag, value)?;
    Endpoint::parse(value.trim()).map_err(|e| Failure::usage(format_args!("{flag}: {e}")))
}

fn target(args: &ServerArgs) -> Result<ServerTarget, Failure> {
    let server = endpoint("--server", &args.server)?;
    let group = GroupId::new(args.group)
        .map_err(|e| Failure::usage(format_args!("--group {}: {e}", args.group)))?;
    let auth = match (
        &args.auth.token,
        &args.auth.api_key,
        &args.auth.partner_user_id,
    ) {
        (Some(token), _, _) if !token.trim().is_empty() => Auth::Token(token.trim().to_owned()),
        (_, Some(key), Some(user)) if !key.trim().is_empty() => Auth::Credentials {
            partner_user_id: user.clone(),
            api_key: key.trim().to_owned(),
        },
        (_, Some(_), None) => {
            return Err(Failure::usage("--api-key needs --partner-user-id")
                .hint("give the agent's partner user id, or a token with --token"))
        }
        _ => {
            return Err(Failure::usage("no token and no credentials")
                .hint("give --token (or GLANCE_TOKEN), or --api-key with --partner-user-id"))
        }
    };
    let web_server = match auth {
        Auth::Credentials { .. } => endpoint("--web-server", &args.auth.web_server)?,
        Auth::Token(_) => server.clone(),
    };
    if args.timeout == 0 {
        return Err(Failure::usage("--timeout must be at least 1 second"));
    }
    Ok(ServerTarget {
        server,
        web_server,
        group,
        auth,
        presence_window: Duration::from_secs(args.presence_window),
        timeout: Duration::from_secs(args.timeout),
    })
}

fn print_report(report: &Report, json: bool) -> Result<(), Failure> {
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    if report.required_passed() {
        Ok(())
    } else {
        let failed = report.failed_ids();
        let message = if failed.is_empty() {
            let skipped: Vec<String> = report
                .outcomes
                .iter()
                .filter(|o| o.level == Level::Required)
                .filter_map(|o| match &o.status {
                    Status::Skipped(why) => Some(format!("{} ({why})", o.id)),
                    _ => None,
                })
                .collect();
            format!("required requirements not observed: {}", skipped.join(", "))
        } else {
            format!("required requirements not met: {}", failed.join(", "))
        };
        Err(Failure::refused(message))
    }
}

fn run_server(args: &ServerArgs) -> Result<(), Failure> {
    let target = target(args)?;
    if args.dry_run {
        for step in server::plan(&target) {
            println!("{step}");
        }
        return Ok(());
    }
    let report = server::run(&target);
    print_report(&report, args.json)
}

/// The client under test runs elsewhere: nothing can be asked of it directly.
struct External;

impl ClientUnderTest for External {}

fn run_client(args: &ClientArgs) -> Result<(), Failure> {
    if !args.listen.ip().is_loopback() {
        return Err(Failure::usage(format_args!(
            "--listen {} is not a loopback address",
            args.listen
        ))
        .hint("the client suite's service has test controls: use 127.0.0.1 or [::1]"));
    }
    if args.keepalive == 0 {
        return Err(Failure::usage("--keepalive must be at least 1 second"));
    }
    let settings = ClientSettings {
        listen: args.listen,
        keepalive_secs: args.keepalive,
        reconnect_within: Duration::from_secs(args.reconnect_within.max(1)),
        wait_for_client: Duration::from_secs(args.wait_for_client.max(1)),
        ..ClientSettings::default()
    };
    if args.dry_run {
        for line in client::plan(&settings) {
            println!("{line}");
        }
        return Ok(());
    }
    let suite = ClientSuite::start(settings)
        .map_err(|e| Failure::usage(format_args!("cannot start the reference service: {e}")))?;
    let setup = suite.setup();
    // On stderr when the report is JSON, so that stdout stays one JSON object.
    let lines = [
        format!("server: {}", setup.server),
        format!("web server (Authorize): {}", setup.web_server),
        format!("group: {}", setup.group),
        format!("visitor: {}", setup.visitor),
        format!("partner user id: {}", setup.partner_user_id),
        format!("API key: {}", setup.api_key),
        format!(
            "connect an agent for this visitor with these credentials; waiting {} s",
            args.wait_for_client
        ),
    ];
    for line in lines {
        if args.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    let report = suite.run(&mut External);
    print_report(&report, args.json)
}
