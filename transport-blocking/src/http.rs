//! Carrying out the core's HTTP requests with ureq (rustls for `https://`), with a timeout and
//! a response size limit. Any status is a response; only a failure to get one is an error.

use std::sync::Arc;
use std::time::Duration;

use glance_presence_protocol::rest::{HttpRequest, Method};
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

use crate::tls::TlsRoots;

/// Largest response body read; the core's parsers have their own limit.
pub(crate) const MAX_RESPONSE_BYTES: u64 = 1024 * 1024;

/// A blocking HTTP client for the core's requests (also usable on its own for one-shot
/// requests built with `glance_presence_protocol::rest`).
#[derive(Debug, Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
}

impl HttpClient {
    /// A client trusting `roots`, with a bound on each exchange.
    pub fn new(roots: &TlsRoots, timeout: Duration) -> Self {
        let extra: Vec<Certificate<'static>> = roots
            .extra_roots()
            .iter()
            .map(|der| Certificate::from_der(der.as_ref()).to_owned())
            .collect();
        let root_certs = if roots.trusts_webpki() {
            RootCerts::WebPki
        } else {
            RootCerts::Specific(Arc::new(extra))
        };
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(root_certs)
            .build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            // Per-phase bounds rather than `timeout_global`: with a global timeout ureq runs
            // every host lookup (even of an IP literal) on a new thread. The core's own request
            // timeout bounds the whole exchange.
            .timeout_connect(Some(timeout))
            .timeout_send_request(Some(timeout))
            .timeout_send_body(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_recv_body(Some(timeout))
            .max_redirects(0)
            .build();
        HttpClient {
            agent: config.into(),
        }
    }

    /// Performs the request: `Ok((status, body))` for any HTTP answer, `Err(detail)` when there
    /// was none.
    pub fn execute(&self, request: &HttpRequest) -> Result<(u16, Vec<u8>), String> {
        let result = match request.method {
            Method::Get => {
                let mut builder = self.agent.get(&request.url);
                for (name, value) in &request.headers {
                    builder = builder.header(name.as_str(), value.as_str());
                }
                builder.call()
            }
            Method::Post => {
                let mut builder = self.agent.post(&request.url);
                for (name, value) in &request.headers {
                    builder = builder.header(name.as_str(), value.as_str());
                }
                builder.send(request.body.as_deref().unwrap_or(""))
            }
        };
        let mut response = result.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(|e| e.to_string())?;
        Ok((status, body))
    }
}
