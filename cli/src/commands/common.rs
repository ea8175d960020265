//! Turning flags into the library's configuration: the agent's config and the transport's TLS
//! trust, and turning a failed request into a message that names the server and says what to
//! do. Every problem found in the flags is a usage error (exit 2), found before any IO.

use std::net::IpAddr;
use std::path::Path;

use glance_presence_blocking::{AgentError, TlsRoots, TransportConfig};
use glance_presence_protocol::agent::{AgentConfig, AgentConfigBuilder, SignalRoute};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::args::{AgentArgs, RootSource, TlsArgs};
use crate::failure::{self, Failure};

/// Whether `host` is a name or address that is usually a local, plain-HTTP service.
fn is_local_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok()
}

/// Checks a server flag before any IO. A bare `host[:port]` means `https://`, as in Glance's
/// clients; for an IP address or `localhost` that is rarely what was meant (a local `serve`
/// speaks plain HTTP, and TLS to it fails with an obscure message), so the scheme must be
/// written out.
pub fn check_server(flag: &str, value: &str) -> Result<(), Failure> {
    let text = value.trim();
    if text.contains("://") {
        return Ok(());
    }
    let host = match text.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => text.rsplit_once(':').map_or(text, |(host, _)| host),
    };
    if is_local_host(host) {
        return Err(Failure::usage(format_args!(
            "{flag} {text} has no scheme (http:// or https://)"
        ))
        .hint(format_args!(
            "write http://{text} for a plain local service such as `glance-presence serve`, or https://{text} if it serves TLS"
        )));
    }
    Ok(())
}

/// A failed agent request as a message that names the server it was talking to and says what
/// to try next.
pub fn explain(args: &AgentArgs, error: AgentError) -> Failure {
    use glance_presence_protocol::agent::RequestFailure;

    let server = server_url(&args.server);
    let with_key = args.auth.api_key.is_some();
    let web = server_url(&args.auth.web_server);
    let failure = failure::from_reason(error.reason(), &error);
    match &error {
        AgentError::Failed(RequestFailure::Connection { detail }) => {
            let place = if with_key && web != server {
                format!("{server} (or the Authorization service at {web})")
            } else {
                server.clone()
            };
            let why = detail.strip_prefix("cannot connect: ").unwrap_or(detail);
            Failure::connection(format_args!("cannot connect to {place}: {why}")).hint(
                if detail.contains("InvalidContentType") || detail.contains("corrupt message") {
                    format!("{server} does not speak TLS; if it is a plain HTTP service, write http:// in --server")
                } else {
                    "is the service running there? Check --server (GLANCE_PRESENCE_SERVER) and the port".to_owned()
                },
            )
        }
        AgentError::Failed(RequestFailure::TimedOut) => {
            Failure::connection(format_args!("no answer from {server} within 10 s")).hint(
                "is it a Glance presence service, and reachable? Check --server (GLANCE_PRESENCE_SERVER)",
            )
        }
        AgentError::Failed(RequestFailure::Authorization { status, detail }) => {
            let status = status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
            // The service's reason comes cleaned by the library: bounded, token-like words
            // redacted.
            let said = detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            let message = format!("{server} refused the authorization{status}{said}");
            let hint = if with_key {
                format!(
                    "check --api-key (GLANCE_API_KEY) and --partner-user-id for group {}, and the Authorization service at {web}",
                    args.group
                )
            } else {
                format!(
                    "check that --token (GLANCE_TOKEN) is for group {} and not expired; `glance-presence authorize` fetches a new one",
                    args.group
                )
            };
            Failure::refused(message).hint(hint)
        }
        AgentError::Failed(RequestFailure::ServiceUnavailable) => {
            Failure::refused(format_args!("{server} is unavailable (HTTP 503)"))
                .hint("the service is overloaded or restarting; try again in a moment")
        }
        AgentError::Failed(RequestFailure::VisitorNotPresent) => Failure::refused(format_args!(
            "visitor {} is not present in group {} on {server}",
            visitor_name(args),
            args.group
        )),
        AgentError::Failed(RequestFailure::Error { status, detail }) => Failure::refused(
            format_args!("{server} refused the request (HTTP {status}): {detail}"),
        ),
        _ => failure,
    }
}

fn visitor_name(args: &AgentArgs) -> &str {
    args.visitor
        .as_deref()
        .or(args.unique.as_deref())
        .unwrap_or_default()
}

/// The base URL a server flag means (`https://` for a bare host, as the library reads it).
pub fn server_url(value: &str) -> String {
    glance_presence_protocol::rest::ServerAddr::parse(value)
        .map(|s| s.http_base())
        .unwrap_or_else(|_| value.to_owned())
}

/// The transport settings for these TLS flags: the chosen roots extended with the
/// `--ca-cert` certificates, or those certificates only.
pub fn transport(tls: &TlsArgs) -> Result<TransportConfig, Failure> {
    let mut extra = Vec::new();
    for path in &tls.ca_cert {
        extra.extend(read_certificates(path)?);
    }
    let roots = match (tls.ca_only, tls.tls_roots) {
        (true, _) => TlsRoots::only(extra),
        (false, RootSource::Webpki) => TlsRoots::webpki().with_extra_roots(extra),
        (false, RootSource::Native) => TlsRoots::native().with_extra_roots(extra),
    };
    Ok(TransportConfig {
        tls_roots: roots,
        ..TransportConfig::default()
    })
}

/// Every certificate of a PEM file.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, Failure> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| Failure::usage(format_args!("cannot read {}: {e}", path.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| Failure::usage(format_args!("cannot read {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Failure::usage(format_args!(
            "{} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// The agent configuration for these flags.
pub fn agent_config(args: &AgentArgs) -> Result<AgentConfig, Failure> {
    agent_builder(args)?.build().map_err(Failure::usage)
}

/// The agent configuration builder the command-line arguments describe (for commands that
/// set more before building).
pub fn agent_builder(args: &AgentArgs) -> Result<AgentConfigBuilder, Failure> {
    check_server("--server", &args.server)?;
    if args.auth.api_key.is_some() || args.discover {
        check_server("--web-server", &args.auth.web_server)?;
    }
    let mut builder = AgentConfig::builder()
        .group_id(args.group)
        .presence_server(args.server.as_str())
        .web_server(args.auth.web_server.as_str())
        .discovery(args.discover);
    if args.socket_route {
        builder = builder.signal_route(SignalRoute::Socket);
    }
    builder = match (&args.visitor, &args.unique) {
        (Some(visitor), _) => builder.visitor_id(visitor.as_str()),
        (None, Some(unique)) => builder.unique_id(unique.as_str()),
        (None, None) => return Err(Failure::usage("give --visitor or --unique")),
    };
    builder = match (&args.auth.token, &args.auth.api_key, &args.auth.partner_user_id) {
        (Some(token), None, _) => builder.token(token.as_str()),
        (None, Some(key), Some(user)) => builder.credentials(user.as_str(), key.as_str()),
        (None, Some(_), None) => {
            return Err(Failure::usage(
                "--api-key needs --partner-user-id (or GLANCE_PARTNER_USER_ID)",
            ))
        }
        (Some(_), Some(_), _) => {
            return Err(Failure::usage(
                "give either a token or an API key, not both (check GLANCE_TOKEN and GLANCE_API_KEY)",
            ))
        }
        (None, None, _) => {
            return Err(Failure::usage(
                "no credentials: give --token (GLANCE_TOKEN) or --api-key (GLANCE_API_KEY) with --partner-user-id",
            ))
        }
    };
    Ok(builder)
}
