//! Turning flags into the library's configuration: the agent's config and the transport's TLS
//! trust. Every problem here is a usage error (exit 2).

use std::path::Path;

use glance_presence_blocking::{TlsRoots, TransportConfig};
use glance_presence_protocol::agent::{AgentConfig, AgentConfigBuilder, SignalRoute};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::args::{AgentArgs, TlsArgs};
use crate::failure::Failure;

/// The transport settings for these TLS flags.
pub fn transport(tls: &TlsArgs) -> Result<TransportConfig, Failure> {
    let mut config = TransportConfig::default();
    if let Some(path) = &tls.ca_cert {
        config.tls_roots = TlsRoots::only(read_certificates(path)?);
    }
    Ok(config)
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
    let mut builder = AgentConfig::builder()
        .group_id(args.group)
        .presence_server(args.server.as_str())
        .web_server(args.web_server.as_str())
        .discovery(args.discover);
    if args.socket_route {
        builder = builder.signal_route(SignalRoute::Socket);
    }
    builder = match (&args.visitor, &args.unique) {
        (Some(visitor), _) => builder.visitor_id(visitor.as_str()),
        (None, Some(unique)) => builder.unique_id(unique.as_str()),
        (None, None) => return Err(Failure::usage("give --visitor or --unique")),
    };
    builder = match (&args.token, &args.api_key, &args.partner_user_id) {
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
