//! What every agent and visitor of one process or fleet shares ([`Transport`]): the runtime,
//! one TLS configuration (built on the first `https://`/`wss://` use), one HTTP client with a
//! bounded pool, and the bound on connects running at once. Cloning a [`Transport`] shares
//! them; building a second one makes a second set.

use std::sync::Arc;

use async_lock::Semaphore;
use glance_presence_transport::{TlsContext, TransportConfig, TransportError};

use crate::http::HttpClient;
use crate::runtime::Runtime;

/// The shared resources of a process or fleet. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Transport {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) config: TransportConfig,
    pub(crate) tls: TlsContext,
    pub(crate) http: HttpClient,
    /// Connects (new TCP connections, WebSocket or HTTP) running at once.
    pub(crate) connects: Arc<Semaphore>,
}

impl Transport {
    /// Shared resources on `runtime`. Nothing is opened or built yet (the TLS configuration
    /// waits for the first `https://` or `wss://` URL); extra TLS roots are checked now.
    pub fn new(runtime: Arc<dyn Runtime>, config: TransportConfig) -> Result<Self, TransportError> {
        let tls = TlsContext::new(config.tls_roots.clone())?;
        let connects = Arc::new(Semaphore::new(config.max_concurrent_connects.max(1)));
        let http = HttpClient::new(
            Arc::clone(&runtime),
            tls.clone(),
            &config,
            Arc::clone(&connects),
        );
        Ok(Transport {
            inner: Arc::new(Inner {
                runtime,
                config,
                tls,
                http,
                connects,
            }),
        })
    }

    /// Shared resources on the default runtime (the current tokio runtime with the `tokio`
    /// feature, else smol's).
    ///
    /// # Panics
    ///
    /// With the `tokio` feature, outside a tokio runtime.
    #[cfg(any(feature = "tokio", feature = "smol"))]
    pub fn with_default_runtime(config: TransportConfig) -> Result<Self, TransportError> {
        Transport::new(crate::runtime::default_runtime(), config)
    }

    /// The shared HTTP client (for one-shot requests of your own).
    pub fn http(&self) -> &HttpClient {
        &self.inner.http
    }

    /// The settings.
    pub fn config(&self) -> &TransportConfig {
        &self.inner.config
    }

    /// Whether the shared TLS configuration has been built (an `https://` or `wss://` URL was
    /// used).
    pub fn tls_built(&self) -> bool {
        self.inner.tls.is_built()
    }
}
