//! Starting and stopping the service: one listener (plain or TLS) serving HTTP and WebSockets,
//! the timer task, the async [`RunningService`] and the blocking [`ServiceHandle`].
//!
//! [`Service::start`] binds the listener (port 0 allowed), builds the core and returns once the
//! service accepts connections, reporting the bound address. Connections are accepted and served
//! by [`crate::listener`] (connection cap, header and idle timeouts). [`RunningService::shutdown`]
//! sends `serverclose` to every socket, waits (bounded) for the sockets to close, then stops
//! accepting and closes the HTTP connections. [`ServiceHandle::spawn`] does the same on a
//! runtime of its own, for blocking callers.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand_core::{OsRng, RngCore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::auth::TokenKeys;
use crate::config::{ServiceConfig, TlsConfig};
use crate::core::{CoreSettings, CoreStats, ServiceCore};
use crate::shared::{timer_task, wall_clock, Shared};

/// How long a graceful shutdown waits for sockets to close after `serverclose`.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// The service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The TLS certificate or key could not be read or used.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The runtime of a [`ServiceHandle`] could not be built or stopped early.
    #[error("runtime: {0}")]
    Runtime(String),
}

/// Counters of a running service (the core's plus the server's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceStats {
    /// The core's counters and gauges.
    pub core: CoreStats,
    /// REST calls refused for their token.
    pub rest_auth_failures: u64,
    /// `Authorize` calls refused.
    pub authorize_failures: u64,
    /// Agent requests and sockets refused for their `Origin`.
    pub origin_rejections: u64,
    /// Connections dropped because their send queue was full.
    pub slow_consumers: u64,
    /// Connections refused because the connection limit was reached.
    pub refused_connections: u64,
    /// Open connections (HTTP and WebSocket).
    pub open_connections: usize,
}

/// An agent token for a served group, issued without a LoginKey (`None` for a group the
/// service does not serve).
fn token_of(
    shared: &Shared,
    group: glance_presence_protocol::GroupId,
    user: &glance_presence_protocol::PartnerUserId,
    lifetime: Duration,
) -> Option<glance_presence_protocol::AuthToken> {
    shared.config.api_keys(group)?;
    shared
        .tokens
        .issue_agent(group, user, wall_clock().as_secs(), lifetime.as_secs())
        .ok()
        .map(|(token, _)| token)
}

fn stats_of(shared: &Shared) -> ServiceStats {
    let core = shared.core_stats();
    ServiceStats {
        rest_auth_failures: core.rest_auth_failures,
        authorize_failures: core.authorize_failures,
        origin_rejections: core.origin_rejections,
        slow_consumers: core.slow_consumers,
        refused_connections: core.refused_connections,
        open_connections: usize::try_from(core.open_connections).unwrap_or(usize::MAX),
        core,
    }
}

/// The reference presence service.
#[derive(Debug)]
pub struct Service;

/// The core and the state the server's tasks share, for a service that names itself
/// `host:port` (`port` is the listener's, or the configured one when mounted).
fn build_shared(config: ServiceConfig, ip: IpAddr, port: u16, max_connections: usize) -> Shared {
    let host = match config.advertise_host() {
        Some(host) => host.to_owned(),
        None => default_host(ip),
    };
    let secret = match config.token_secret() {
        Some(secret) => secret.expose_secret().to_vec(),
        None => {
            let mut bytes = vec![0u8; 32];
            OsRng.fill_bytes(&mut bytes);
            bytes
        }
    };
    let tokens = TokenKeys::new(&secret);
    let seed = config.seed().unwrap_or_else(|| OsRng.next_u64());
    let mut settings = CoreSettings::from_config(&config, seed);
    settings.advertised_host = host.clone();
    settings.advertised_port = port;
    settings.max_connections = max_connections;
    let mut core = ServiceCore::new(
        settings,
        tokens.clone(),
        Instant::now(),
        wall_clock().as_secs_f64(),
    );
    if let Some(admin) = config.test_controls() {
        core.enable_controls(admin);
    }
    Shared::new(config, tokens, core, host, port)
}

impl Service {
    /// Binds the listener and starts serving. Returns once connections are accepted.
    pub async fn start(config: ServiceConfig) -> Result<RunningService, StartError> {
        let listener =
            TcpListener::bind(config.listen())
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen(),
                    source,
                })?;
        Service::serve_on(listener, config).await
    }

    /// Serves on a listener the caller bound (the configured listen address is not used; the
    /// service names itself with the listener's port). Everything else is as with
    /// [`Service::start`]: TLS when configured, the connection cap, the HTTP timeouts and the
    /// graceful [`RunningService::shutdown`].
    ///
    /// ```no_run
    /// use glance_presence_service::{Service, ServiceConfig};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let service = Service::serve_on(listener, ServiceConfig::default()).await?;
    /// println!("presence service at {}", service.http_base());
    /// service.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn serve_on(
        listener: TcpListener,
        config: ServiceConfig,
    ) -> Result<RunningService, StartError> {
        let tls = match config.tls() {
            Some(tls) => Some(TlsAcceptor::from(Arc::new(server_tls_config(tls)?))),
            None => None,
        };
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen(),
            source,
        })?;
        let max_connections = crate::listener::connection_budget(config.limits().max_connections);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = Arc::new(build_shared(
            config,
            addr.ip(),
            addr.port(),
            max_connections,
        ));
        let app = crate::http::router(shared.clone());
        let (stop_tx, stop_rx) = watch::channel(false);
        let tasks = vec![tokio::spawn(timer_task(shared.clone()))];
        let server = tokio::spawn(crate::listener::accept_loop(
            listener,
            tls,
            app,
            shared.clone(),
            stop_rx,
        ));
        tracing::info!(%addr, scheme, max_connections, "presence service listening");
        let (request_tx, mut request_rx) = watch::channel(false);
        let (done_tx, done_rx) = watch::channel(false);
        let supervisor = {
            let shared = shared.clone();
            tokio::spawn(async move {
                let _ = request_rx.wait_for(|requested| *requested).await;
                graceful_stop(&shared, stop_tx, server, tasks).await;
                let _ = done_tx.send(true);
            })
        };
        Ok(RunningService {
            addr,
            scheme,
            shared,
            request: Arc::new(request_tx),
            done: done_rx,
            _supervisor: supervisor,
        })
    }

    /// The service as routes to merge into an existing axum application, which owns the
    /// listener and the connections. Call it within a tokio runtime (the core's timer task is
    /// spawned on it). The routes are the service's fixed paths (`/agent`, `/visitorws`, the
    /// REST endpoints and `/metrics`) with no fallback, so merge them at the root with
    /// [`axum::Router::merge`]; the application's other routes and fallback stay its own.
    ///
    /// The service names itself (`direct`, `presenceUrl`) with the configured advertised host
    /// and the port of the configured listen address: set them to where the application is
    /// reached. TLS, the connection cap and the HTTP timeouts are the application's server's
    /// business here; the core still decides every answer. Serve the application with
    /// `into_make_service_with_connect_info::<SocketAddr>()` to have the peer address in the
    /// service's logs.
    ///
    /// ```no_run
    /// use axum::routing::get;
    /// use glance_presence_service::{Service, ServiceConfig};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    /// let config = ServiceConfig::builder().listen("127.0.0.1:8080".parse()?).build()?;
    /// let presence = Service::router(config)?;
    /// let app = axum::Router::new()
    ///     .route("/health", get(|| async { "ok" }))
    ///     .merge(presence.router());
    /// axum::serve(listener, app).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn router(config: ServiceConfig) -> Result<MountedService, StartError> {
        if config.tls().is_some() {
            return Err(StartError::Tls(
                "a mounted service does not terminate TLS: configure it on the application's server"
                    .into(),
            ));
        }
        let listen = config.listen();
        let max_connections = config.limits().max_connections;
        let shared = Arc::new(build_shared(
            config,
            listen.ip(),
            listen.port(),
            max_connections,
        ));
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| StartError::Runtime(format!("no tokio runtime to mount on: {e}")))?;
        let timer = runtime.spawn(timer_task(shared.clone()));
        Ok(MountedService { shared, timer })
    }
}

/// The service mounted in an application's router (see [`Service::router`]). Dropping it stops
/// the core's timers; [`MountedService::shutdown`] first says `serverclose` to every socket.
#[derive(Debug)]
pub struct MountedService {
    shared: Arc<Shared>,
    timer: JoinHandle<()>,
}

impl MountedService {
    /// The service's routes, to merge into the application's router (clones share the core).
    pub fn router(&self) -> axum::Router {
        crate::http::mountable_router(self.shared.clone())
    }

    /// `host:port` as the service names itself.
    pub fn authority(&self) -> String {
        self.shared.direct()
    }

    /// Issues an agent token for a served group without a LoginKey (see
    /// [`RunningService::issue_token`]).
    pub fn issue_token(
        &self,
        group: glance_presence_protocol::GroupId,
        user: &glance_presence_protocol::PartnerUserId,
        lifetime: Duration,
    ) -> Option<glance_presence_protocol::AuthToken> {
        token_of(&self.shared, group, user, lifetime)
    }

    /// Current counters.
    pub fn stats(&self) -> ServiceStats {
        stats_of(&self.shared)
    }

    /// The `/metrics` text.
    pub fn metrics_text(&self) -> String {
        self.shared.read_core(ServiceCore::metrics_text)
    }

    /// `serverclose` to every socket, then a bounded wait (3 s) for them to close; the REST
    /// endpoints answer 503 from then on. The application's server stops on its own terms.
    pub async fn shutdown(&self) {
        self.shared.begin_shutdown();
        let drained = async {
            while self.shared.open_connections() > 0 {
                let _ =
                    tokio::time::timeout(Duration::from_millis(50), self.shared.drained.notified())
                        .await;
            }
        };
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, drained).await;
    }
}

impl Drop for MountedService {
    fn drop(&mut self) {
        self.timer.abort();
    }
}

/// `serverclose` to every socket (agents first), a bounded wait for them to close, then the
/// listener stops, HTTP connections close after their current request, and every task stops.
async fn graceful_stop(
    shared: &Shared,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    tasks: Vec<JoinHandle<()>>,
) {
    tracing::info!("presence service shutting down");
    shared.begin_shutdown();
    let drained = async {
        while shared.open_connections() > 0 {
            let _ =
                tokio::time::timeout(Duration::from_millis(50), shared.drained.notified()).await;
        }
    };
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, drained).await;
    let _ = stop.send(true);
    let abort = server.abort_handle();
    if tokio::time::timeout(SHUTDOWN_GRACE, server).await.is_err() {
        abort.abort();
    }
    let closed = async {
        while shared.open_tcp_connections() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, closed).await;
    for task in tasks {
        task.abort();
    }
    tracing::info!("presence service stopped");
}

/// Starts the graceful shutdown of a [`RunningService`] from anywhere; cheap to clone.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    request: Arc<watch::Sender<bool>>,
}

impl ShutdownHandle {
    /// Asks the service to shut down (`serverclose` to every socket, then stop). Returns at
    /// once; [`RunningService::stopped`] tells when it is done.
    pub fn shutdown(&self) {
        let _ = self.request.send(true);
    }
}

fn default_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => "127.0.0.1".to_owned(),
        IpAddr::V6(v6) if v6.is_unspecified() => "127.0.0.1".to_owned(),
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

fn server_tls_config(tls: &TlsConfig) -> Result<rustls::ServerConfig, StartError> {
    let (cert_pem, key_pem) = match tls {
        TlsConfig::PemFiles { cert, key } => {
            let read = |path: &std::path::Path| {
                std::fs::read(path)
                    .map_err(|e| StartError::Tls(format!("cannot read {}: {e}", path.display())))
            };
            (read(cert)?, read(key)?)
        }
        TlsConfig::Pem { cert, key } => (cert.clone(), key.clone()),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| StartError::Tls(format!("certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(StartError::Tls("no certificate in the PEM text".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| StartError::Tls(format!("private key PEM: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| StartError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A service running on the caller's tokio runtime.
#[derive(Debug)]
pub struct RunningService {
    addr: SocketAddr,
    scheme: &'static str,
    shared: Arc<Shared>,
    request: Arc<watch::Sender<bool>>,
    done: watch::Receiver<bool>,
    _supervisor: JoinHandle<()>,
}

impl RunningService {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `host:port` as the service names itself in `direct` and `presenceUrl`.
    pub fn authority(&self) -> String {
        self.shared.direct()
    }

    /// Whether the service serves TLS.
    pub fn is_tls(&self) -> bool {
        self.scheme == "https"
    }

    /// `http://host:port` or `https://host:port`.
    pub fn http_base(&self) -> String {
        format!("{}://{}", self.scheme, self.shared.direct())
    }

    /// `ws://host:port` or `wss://host:port`.
    pub fn ws_base(&self) -> String {
        let ws = if self.is_tls() { "wss" } else { "ws" };
        format!("{ws}://{}", self.shared.direct())
    }

    /// The configuration the service runs with.
    pub fn config(&self) -> &ServiceConfig {
        &self.shared.config
    }

    /// Issues an agent token for a served group without a LoginKey (for tests and tools that
    /// hold the service in-process).
    pub fn issue_token(
        &self,
        group: glance_presence_protocol::GroupId,
        user: &glance_presence_protocol::PartnerUserId,
        lifetime: Duration,
    ) -> Option<glance_presence_protocol::AuthToken> {
        token_of(&self.shared, group, user, lifetime)
    }

    /// Current counters.
    pub fn stats(&self) -> ServiceStats {
        stats_of(&self.shared)
    }

    /// The `/metrics` text.
    pub fn metrics_text(&self) -> String {
        self.shared.read_core(ServiceCore::metrics_text)
    }

    /// A handle that starts the graceful shutdown from elsewhere.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            request: self.request.clone(),
        }
    }

    /// Graceful shutdown: `serverclose` to every socket, a bounded wait (3 s) for them to close,
    /// then the listener and every task stop. Returns when the service has stopped.
    pub async fn shutdown(self) {
        let _ = self.request.send(true);
        self.stopped().await;
    }

    /// Waits until the service has stopped (after a shutdown was asked for).
    pub async fn stopped(&self) {
        let mut done = self.done.clone();
        let _ = done.wait_for(|done| *done).await;
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        // Dropped without `shutdown`: shut down gracefully in the background (the runtime must
        // still be running for that to happen).
        let _ = self.request.send(true);
    }
}

/// A service on a runtime thread of its own, for blocking callers (the CLI, blocking tests).
/// Dropping the handle shuts the service down.
#[derive(Debug)]
pub struct ServiceHandle {
    addr: SocketAddr,
    authority: String,
    tls: bool,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl ServiceHandle {
    /// Starts the service on a new runtime thread and returns once it accepts connections.
    pub fn spawn(config: ServiceConfig) -> Result<ServiceHandle, StartError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("glance-presence-service")
            .enable_all()
            .build()
            .map_err(|e| StartError::Runtime(e.to_string()))?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("glance-presence-service".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let running = match Service::start(config).await {
                        Ok(running) => running,
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                            return;
                        }
                    };
                    let info = (
                        running.local_addr(),
                        running.authority(),
                        running.is_tls(),
                        running.shared.clone(),
                    );
                    if ready_tx.send(Ok(info)).is_err() {
                        return;
                    }
                    let _ = stop_rx.await;
                    running.shutdown().await;
                });
            })
            .map_err(|e| StartError::Runtime(e.to_string()))?;
        match ready_rx.recv() {
            Ok(Ok((addr, authority, tls, shared))) => Ok(ServiceHandle {
                addr,
                authority,
                tls,
                stop: Some(stop_tx),
                thread: Some(thread),
                shared,
            }),
            Ok(Err(err)) => {
                let _ = thread.join();
                Err(err)
            }
            Err(_) => {
                let _ = thread.join();
                Err(StartError::Runtime("the service thread ended early".into()))
            }
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `host:port` as the service names itself.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Whether the service serves TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// `http://host:port` or `https://host:port`.
    pub fn http_base(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.authority)
    }

    /// `ws://host:port` or `wss://host:port`.
    pub fn ws_base(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}", self.authority)
    }

    /// Issues an agent token for a served group without a LoginKey (see
    /// [`RunningService::issue_token`]).
    pub fn issue_token(
        &self,
        group: glance_presence_protocol::GroupId,
        user: &glance_presence_protocol::PartnerUserId,
        lifetime: Duration,
    ) -> Option<glance_presence_protocol::AuthToken> {
        token_of(&self.shared, group, user, lifetime)
    }

    /// Current counters.
    pub fn stats(&self) -> ServiceStats {
        stats_of(&self.shared)
    }

    /// Graceful shutdown (see [`RunningService::shutdown`]); returns when the service stopped.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ServiceHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
