//! Command-line flags and environment variables (clap). Parsing only: what the flags mean is
//! decided in the command modules.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Glance Presence from the command line: watch a visitor, signal it, run the reference
/// service, or see the whole thing work in `demo`.
#[derive(Debug, Parser)]
#[command(name = "glance-presence", version, about, long_about = None, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Exit codes, environment, output and network notes, shown under `--help`.
pub const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  the service refused (visitor not present, authorization, unavailable: HTTP 503)
  2  usage or configuration error (bad flags, bad --config file)
  3  the service could not be reached, or did not answer in time

Environment:
  GLANCE_PRESENCE_SERVER   --server       GLANCE_GROUP_ID         --group
  GLANCE_TOKEN             --token        GLANCE_API_KEY          --api-key
  GLANCE_PARTNER_USER_ID   --partner-user-id
  GLANCE_WEB_SERVER        --web-server   GLANCE_TLS_ROOTS        --tls-roots
  GLANCE_PRESENCE_LOG      log filter on stderr, e.g. debug or glance_presence_blocking=trace
                           (default warn; colour only when stderr is a terminal)

Output: --json prints JSON lines, each with time_unix_ms (Unix milliseconds) and visitor_id;
json-schema prints their JSON Schema (cli/events.schema.json in the source). Proxies
(HTTP_PROXY, ALL_PROXY…) are not used: every connection, HTTP and WebSocket, goes straight to
the server.";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the demo: a reference service on loopback, a simulated visitor and an agent that
    /// prints what it sees.
    Demo {
        /// Print the agent's events as JSON lines instead of a timeline.
        #[arg(long)]
        json: bool,
    },
    /// Run the reference presence service.
    Serve(ServeArgs),
    /// Stream one visitor's events until Ctrl-C.
    Watch {
        #[command(flatten)]
        agent: AgentArgs,
        /// Print events as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Look a visitor up (`lookupvisitor`) and print the result as JSON.
    Lookup {
        #[command(flatten)]
        agent: AgentArgs,
        /// JSON lines (the output is always JSON; the flag is accepted for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Ask the visitor's current state (`query`) and print it as JSON.
    Query {
        #[command(flatten)]
        agent: AgentArgs,
        /// JSON lines (the output is always JSON; the flag is accepted for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Find the server a visitor is connected to (`findvisitor`) and print it as JSON.
    Find {
        #[command(flatten)]
        agent: AgentArgs,
        /// JSON lines (the output is always JSON; the flag is accepted for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Send a visitor a signal (a JSON value) and print the service's answer as JSON.
    Signal {
        #[command(flatten)]
        agent: AgentArgs,
        /// The message, as JSON (e.g. '{"text":"hello"}').
        #[arg(long, value_name = "JSON")]
        data: String,
        /// JSON lines (the output is always JSON; the flag is accepted for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Run a GLANCE.* function on the visitor's page and print the service's answer as JSON.
    Invoke {
        #[command(flatten)]
        agent: AgentArgs,
        /// The function, under GLANCE. or GLANCE_COBROWSE.Custom.
        #[arg(long)]
        func: String,
        /// Its arguments, as JSON.
        #[arg(long, value_name = "JSON", default_value = "{}")]
        args: String,
        /// JSON lines (the output is always JSON; the flag is accepted for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Make a LoginKey from an API key and print it.
    LoginKey {
        #[command(flatten)]
        creds: CredentialArgs,
        /// Seconds from now until the key expires (1 to 86400).
        #[arg(long, default_value_t = 300)]
        expires_in: u64,
        /// Print `{"time_unix_ms":…,"login_key":…}` instead of the bare key.
        #[arg(long)]
        json: bool,
    },
    /// Fetch an authorization token with a LoginKey and print it as JSON.
    Authorize {
        #[command(flatten)]
        creds: CredentialArgs,
        /// The Glance web server that runs the Authorization service.
        #[arg(long, env = "GLANCE_WEB_SERVER", default_value = "www.glance.net")]
        web_server: String,
        /// Token lifetime in minutes (1 to 120).
        #[arg(long, default_value_t = 60)]
        duration: u32,
        #[command(flatten)]
        tls: TlsArgs,
        /// JSON lines (the output is always JSON; the flag is accepted for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script, e.g. `glance-presence completions bash >
    /// ~/.local/share/bash-completion/completions/glance-presence`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the JSON Schema of the `--json` lines (the one in the source as
    /// cli/events.schema.json).
    JsonSchema,
    /// Play a visitor: connect, send presence, print signals and invokes until Ctrl-C.
    Visitor(VisitorArgs),
    /// Check a presence server or an agent client against the numbered requirements.
    #[command(subcommand)]
    Conformance(ConformanceCommand),
}

/// The conformance suites (flags in `commands::conformance`).
#[derive(Debug, Subcommand)]
pub enum ConformanceCommand {
    /// Run real visitors and agents against a presence server and check every server
    /// requirement it can observe; exit 0 only when every required one passes.
    Server(crate::commands::conformance::ServerArgs),
    /// Start the reference service on loopback, print where an agent under test should
    /// connect, play the client scenarios and check what the agent does on the wire.
    Client(crate::commands::conformance::ClientArgs),
}

/// How an agent authorizes: a token, or credentials from which it makes a LoginKey and fetches
/// one from the web server. `Debug` shows neither the token nor the API key.
#[derive(Args)]
pub struct AuthArgs {
    /// An authorization token (or use --api-key with --partner-user-id).
    #[arg(long, env = "GLANCE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The group's API key, to make LoginKeys and fetch tokens.
    #[arg(long, env = "GLANCE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// The agent's partner user id (with --api-key).
    #[arg(long, env = "GLANCE_PARTNER_USER_ID")]
    pub partner_user_id: Option<String>,
    /// The web server that runs the Authorization service (with --api-key).
    #[arg(long, env = "GLANCE_WEB_SERVER", default_value = "www.glance.net")]
    pub web_server: String,
}

impl std::fmt::Debug for AuthArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |given: bool| if given { Some("<redacted>") } else { None };
        f.debug_struct("AuthArgs")
            .field("token", &redacted(self.token.is_some()))
            .field("api_key", &redacted(self.api_key.is_some()))
            .field("partner_user_id", &self.partner_user_id)
            .field("web_server", &self.web_server)
            .finish()
    }
}

/// Where the presence service is and which visitor to watch, and how to authenticate.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The presence server: a host or host:port, or a URL (https://…, or http:// for loopback).
    #[arg(
        long,
        env = "GLANCE_PRESENCE_SERVER",
        default_value = "presence.glance.net"
    )]
    pub server: String,
    /// The group id.
    #[arg(long, env = "GLANCE_GROUP_ID")]
    pub group: u64,
    /// The visitor id (or use --unique).
    #[arg(long, required_unless_present = "unique", conflicts_with = "unique")]
    pub visitor: Option<String>,
    /// The unique id of a connectUnique visitor.
    #[arg(long)]
    pub unique: Option<String>,
    #[command(flatten)]
    pub auth: AuthArgs,
    /// Use GetVisitorSettings3 on the web server to find the presence server.
    #[arg(long)]
    pub discover: bool,
    /// Send signals and invokes on the agent socket (load-balanced mode) instead of REST.
    #[arg(long)]
    pub socket_route: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// What makes a LoginKey.
#[derive(Debug, Args)]
pub struct CredentialArgs {
    /// The group id (the partner id).
    #[arg(long, env = "GLANCE_GROUP_ID")]
    pub group: u64,
    /// The agent's partner user id.
    #[arg(long, env = "GLANCE_PARTNER_USER_ID")]
    pub partner_user_id: String,
    /// The group's API key.
    #[arg(long, env = "GLANCE_API_KEY", hide_env_values = true)]
    pub api_key: String,
}

/// Where the trusted roots of https:// and wss:// come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RootSource {
    /// The public web PKI roots built into the command.
    Webpki,
    /// The operating system's trust store.
    Native,
}

/// TLS trust for https:// and wss://: the public roots or the system's, extended with CA
/// certificates of one's own, or those certificates only.
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// The roots to trust: the public web PKI roots built in, or the operating system's
    /// trust store.
    #[arg(long, value_enum, env = "GLANCE_TLS_ROOTS", default_value_t = RootSource::Webpki)]
    pub tls_roots: RootSource,
    /// Also trust the CA certificates of this PEM file (repeatable), e.g. the certificate of a
    /// local `serve --tls-cert`.
    #[arg(long, visible_alias = "ca-file", value_name = "PEM")]
    pub ca_cert: Vec<PathBuf>,
    /// Trust only the --ca-cert certificates, not the --tls-roots ones.
    #[arg(long, requires = "ca_cert")]
    pub ca_only: bool,
}

/// The reference service's flags. A flag given on the command line wins over the same setting
/// in the `--config` file, which wins over the default.
#[derive(Debug, Args)]
#[command(
    after_help = "Precedence: a flag given on the command line, then the --config file, then the default."
)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed)
    /// [default: the file's `listen`, else 127.0.0.1:8080].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// A TOML configuration file (groups, API keys, origins, timings, limits).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Leave out the built-in demo group (overrides the file's `demo_group`).
    #[arg(long)]
    pub no_demo_group: bool,
    /// Serve TLS with this certificate chain (PEM); needs --tls-key (overrides the file's
    /// `[tls]`).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Answer GetVisitorSettings3 with isPresenceLoadBalanced: true (overrides the file's
    /// `load_balanced`).
    #[arg(long)]
    pub load_balanced: bool,
}

/// The listen address when neither the flag nor the configuration file names one.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    8080,
));

/// The simulated visitor's flags.
#[derive(Debug, Args)]
pub struct VisitorArgs {
    /// The presence server: a host or host:port, or a URL (https://…, or http:// for loopback).
    #[arg(
        long,
        env = "GLANCE_PRESENCE_SERVER",
        default_value = "presence.glance.net"
    )]
    pub server: String,
    /// The group id.
    #[arg(long, env = "GLANCE_GROUP_ID")]
    pub group: u64,
    /// The visitor id.
    #[arg(long)]
    pub visitor: String,
    /// The page URL reported in presence.
    #[arg(long, default_value = "https://example.com/")]
    pub url: String,
    /// Extra presence fields, `name=value` (numbers stay numbers).
    #[arg(long = "field", value_name = "NAME=VALUE")]
    pub fields: Vec<String>,
    /// Print events as JSON lines.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
}
