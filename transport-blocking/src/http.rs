//! Carrying out the core's HTTP requests with ureq (rustls for `https://`): [`HttpClient`]
//! performs one exchange, bounded by a deadline (each phase of the exchange gets at most the
//! time left), with a response size limit; any status is a response, only a failure to get
//! one is an error. [`HttpWorker`] runs the exchanges of one driver on one reused thread, so
//! that the driver keeps reading its socket and firing the core's timers meanwhile.

use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use glance_presence_protocol::io::HttpRequestId;
use glance_presence_protocol::rest::{HttpRequest, Method};
use glance_presence_transport::{HttpError, TlsRoots, MAX_RESPONSE_BYTES};
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

/// A blocking HTTP client for the core's requests (also usable on its own for one-shot
/// requests built with `glance_presence_protocol::rest`).
#[derive(Debug, Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
    timeout: Duration,
}

impl HttpClient {
    /// A client trusting `roots`; an exchange without a deadline of its own is bounded by
    /// `timeout`. The public roots alone are ureq's own; any other mix (extra roots on top of
    /// the public ones, the operating system's store) is given as one list of certificates.
    /// An operating system store that cannot be read is logged and left out.
    pub fn new(roots: &TlsRoots, timeout: Duration) -> Self {
        let root_certs =
            if roots.trusts_webpki() && !roots.trusts_native() && roots.extra_roots().is_empty() {
                RootCerts::WebPki
            } else {
                let all = roots.certificates().unwrap_or_else(|err| {
                tracing::warn!(error = %err, "TLS roots: the operating system's store is left out");
                roots.clone().with_native(false).certificates().unwrap_or_default()
            });
                let certs: Vec<Certificate<'static>> = all
                    .iter()
                    .map(|der| Certificate::from_der(der.as_ref()).to_owned())
                    .collect();
                RootCerts::Specific(Arc::new(certs))
            };
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(root_certs)
            .build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(glance_presence_transport::USER_AGENT)
            // Proxies are not used, as on the WebSocket path: every connection goes straight
            // to the server (HTTP_PROXY and ALL_PROXY are ignored).
            .proxy(None)
            .build();
        HttpClient {
            agent: config.into(),
            timeout,
        }
    }

    /// Performs the request within the client's timeout: `Ok((status, body))` for any HTTP
    /// answer.
    pub fn execute(&self, request: &HttpRequest) -> Result<(u16, Vec<u8>), HttpError> {
        self.execute_until(request, Instant::now() + self.timeout)
    }

    /// Performs the request, giving each phase (connect, send, wait for the answer, read the
    /// body) at most the time left until `deadline`. Per-phase bounds rather than one global
    /// timeout: with a global one ureq resolves every host (even an IP literal) on a new
    /// thread.
    pub fn execute_until(
        &self,
        request: &HttpRequest,
        deadline: Instant,
    ) -> Result<(u16, Vec<u8>), HttpError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HttpError::TimedOut(Duration::ZERO));
        }
        let bound = Some(left);
        let result = match request.method {
            Method::Get => {
                let mut builder = self.agent.get(&request.url);
                for (name, value) in &request.headers {
                    builder = builder.header(name.as_str(), value.as_str());
                }
                builder
                    .config()
                    .timeout_connect(bound)
                    .timeout_send_request(bound)
                    .timeout_recv_response(bound)
                    .timeout_recv_body(bound)
                    .build()
                    .call()
            }
            Method::Post => {
                let mut builder = self.agent.post(&request.url);
                for (name, value) in &request.headers {
                    builder = builder.header(name.as_str(), value.as_str());
                }
                builder
                    .config()
                    .timeout_connect(bound)
                    .timeout_send_request(bound)
                    .timeout_send_body(bound)
                    .timeout_recv_response(bound)
                    .timeout_recv_body(bound)
                    .build()
                    .send(request.body.as_deref().unwrap_or(""))
            }
        };
        let mut response = result.map_err(|e| http_error(e, left))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(|e| http_error(e, left))?;
        Ok((status, body))
    }
}

fn http_error(error: ureq::Error, bound: Duration) -> HttpError {
    match error {
        ureq::Error::Timeout(_) => HttpError::TimedOut(bound),
        ureq::Error::BodyExceedsLimit(limit) => HttpError::TooLarge { limit },
        ureq::Error::BadUri(detail) => HttpError::InvalidRequest(detail),
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed | ureq::Error::Tls(_) => {
            HttpError::Connect(error.to_string())
        }
        ureq::Error::Io(ref e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            HttpError::Connect(error.to_string())
        }
        other => HttpError::Exchange(other.to_string()),
    }
}

/// One exchange for the worker: the request, its id and its deadline.
type Job = (HttpRequestId, HttpRequest, Instant);

/// An exchange's result, as the worker hands it back.
pub(crate) type Done = (HttpRequestId, Result<(u16, Vec<u8>), HttpError>);

/// One reused thread that performs a driver's HTTP exchanges in order and hands each result
/// back on a channel, then wakes the driver (see [`crate::wait`]). Started on the first
/// exchange; ends when the driver drops it. An exchange whose deadline passed while it waited
/// for the thread fails at once as timed out.
#[derive(Debug)]
pub(crate) struct HttpWorker {
    jobs: mpsc::Sender<Job>,
    pub(crate) done: mpsc::Receiver<Done>,
    in_flight: usize,
}

impl HttpWorker {
    /// Starts the thread. `wake` is called after each result is queued.
    pub(crate) fn start(
        client: HttpClient,
        wake: impl Fn() + Send + 'static,
    ) -> std::io::Result<Self> {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done) = mpsc::channel();
        thread::Builder::new()
            .name("glance-presence-http".to_owned())
            .spawn(move || {
                for (id, request, deadline) in job_rx {
                    let result = client.execute_until(&request, deadline);
                    if done_tx.send((id, result)).is_err() {
                        return;
                    }
                    wake();
                }
            })?;
        Ok(HttpWorker {
            jobs,
            done,
            in_flight: 0,
        })
    }

    /// Queues an exchange; `false` when the thread is gone.
    pub(crate) fn submit(
        &mut self,
        id: HttpRequestId,
        request: HttpRequest,
        deadline: Instant,
    ) -> bool {
        let sent = self.jobs.send((id, request, deadline)).is_ok();
        if sent {
            self.in_flight += 1;
        }
        sent
    }

    /// Exchanges queued and not yet taken back.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// A finished exchange, if one is ready.
    pub(crate) fn try_take(&mut self) -> Option<Done> {
        let done = self.done.try_recv().ok()?;
        self.in_flight = self.in_flight.saturating_sub(1);
        Some(done)
    }

    /// Waits at most `timeout` for a finished exchange.
    pub(crate) fn take_within(&mut self, timeout: Option<Duration>) -> Option<Done> {
        let done = match timeout {
            Some(timeout) => self.done.recv_timeout(timeout).ok()?,
            None => self.done.recv().ok()?,
        };
        self.in_flight = self.in_flight.saturating_sub(1);
        Some(done)
    }
}
