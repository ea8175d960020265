//! The one async HTTP client of a process or fleet: HTTP/1.1 over hyper's connection API, on
//! connections opened through the runtime (TLS from the shared configuration for `https://`),
//! with a bounded pool of idle connections per host that are closed after an idle timeout.
//! New connections take a slot of the shared connect bound, so a reconnect storm does not
//! open thousands at once. Every exchange is bounded by a deadline; dropping its future
//! cancels it (the connection is then closed, not reused).

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_lock::Semaphore;
use bytes::Bytes;
use futures_io::{AsyncRead, AsyncWrite};
use glance_presence_protocol::rest::{HttpRequest, Method};
use glance_presence_transport::{
    HttpError, HttpTarget, TlsContext, TransportConfig, MAX_RESPONSE_BYTES,
};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};

use crate::connect;
use crate::runtime::{self, BoxIo, Runtime};

/// Largest read buffer of one pooled connection.
const MAX_BUF: usize = 16 * 1024;

/// Which connections may be reused for a request.
type Key = (bool, String, u16);

/// An idle connection in the pool.
struct Idle {
    sender: SendRequest<Full<Bytes>>,
    since: Instant,
}

struct Pool {
    idle: HashMap<Key, Vec<Idle>>,
    /// Whether a sweeper task is running.
    sweeping: bool,
}

/// The shared async HTTP client. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    runtime: Arc<dyn Runtime>,
    /// Connections open (or opening) at once, per host.
    hosts: Mutex<HashMap<Key, Arc<Semaphore>>>,
    max_per_host: usize,
    tls: TlsContext,
    connects: Arc<Semaphore>,
    max_idle_per_host: usize,
    idle_timeout: Duration,
    timeout: Duration,
    pool: Mutex<Pool>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let idle = self
            .inner
            .pool
            .lock()
            .map(|pool| pool.idle.values().map(Vec::len).sum::<usize>())
            .unwrap_or(0);
        f.debug_struct("HttpClient")
            .field("idle_connections", &idle)
            .field("max_idle_per_host", &self.inner.max_idle_per_host)
            .field("idle_timeout", &self.inner.idle_timeout)
            .finish()
    }
}

impl HttpClient {
    pub(crate) fn new(
        runtime: Arc<dyn Runtime>,
        tls: TlsContext,
        config: &TransportConfig,
        connects: Arc<Semaphore>,
    ) -> Self {
        HttpClient {
            inner: Arc::new(ClientInner {
                runtime,
                hosts: Mutex::new(HashMap::new()),
                max_per_host: config.http_max_connections_per_host.max(1),
                tls,
                connects,
                max_idle_per_host: config.http_max_idle_per_host,
                idle_timeout: config.http_idle_timeout,
                timeout: config.http_timeout,
                pool: Mutex::new(Pool {
                    idle: HashMap::new(),
                    sweeping: false,
                }),
            }),
        }
    }

    /// Idle connections held by the pool now.
    pub fn idle_connections(&self) -> usize {
        self.inner
            .pool
            .lock()
            .map(|pool| pool.idle.values().map(Vec::len).sum())
            .unwrap_or(0)
    }

    /// Performs the request within the transport's HTTP timeout: `Ok((status, body))` for
    /// any HTTP answer.
    pub async fn execute(&self, request: &HttpRequest) -> Result<(u16, Vec<u8>), HttpError> {
        self.execute_until(request, Instant::now() + self.inner.timeout)
            .await
    }

    /// Performs the request, giving up at `deadline` (the exchange is then cancelled).
    pub async fn execute_until(
        &self,
        request: &HttpRequest,
        deadline: Instant,
    ) -> Result<(u16, Vec<u8>), HttpError> {
        let bound = deadline.saturating_duration_since(Instant::now());
        match runtime::until(&self.inner.runtime, deadline, self.exchange(request)).await {
            Some(result) => result,
            None => Err(HttpError::TimedOut(bound)),
        }
    }

    async fn exchange(&self, request: &HttpRequest) -> Result<(u16, Vec<u8>), HttpError> {
        let target = HttpTarget::parse(&request.url)?;
        let key: Key = (target.secure, target.host.clone(), target.port);
        let host = self.host_bound(&key);
        let _connection = host.acquire_arc().await;
        let mut sender = match self.checkout(&key) {
            Some(sender) => sender,
            None => self.connect(&target).await?,
        };
        let method = match request.method {
            Method::Get => hyper::Method::GET,
            Method::Post => hyper::Method::POST,
        };
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(target.path_and_query.as_str())
            .header(hyper::header::HOST, target.authority.as_str())
            .header(
                hyper::header::USER_AGENT,
                glance_presence_transport::USER_AGENT,
            );
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let body = match (&request.body, request.method) {
            (Some(body), _) => Bytes::from(body.clone()),
            (None, Method::Post) => Bytes::new(),
            (None, Method::Get) => Bytes::new(),
        };
        let http_request = builder
            .body(Full::new(body))
            .map_err(|e| HttpError::InvalidRequest(e.to_string()))?;
        std::future::poll_fn(|cx| sender.poll_ready(cx))
            .await
            .map_err(|e| HttpError::Exchange(e.to_string()))?;
        let response = sender
            .send_request(http_request)
            .await
            .map_err(|e| HttpError::Exchange(e.to_string()))?;
        let status = response.status().as_u16();
        let limited = Limited::new(response.into_body(), MAX_RESPONSE_BYTES as usize);
        let body = match limited.collect().await {
            Ok(collected) => collected.to_bytes().to_vec(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(HttpError::TooLarge {
                    limit: MAX_RESPONSE_BYTES,
                })
            }
            Err(e) => return Err(HttpError::Exchange(e.to_string())),
        };
        self.checkin(key, sender);
        Ok((status, body))
    }

    /// The bound on connections to one host.
    fn host_bound(&self, key: &Key) -> Arc<Semaphore> {
        match self.inner.hosts.lock() {
            Ok(mut hosts) => Arc::clone(
                hosts
                    .entry(key.clone())
                    .or_insert_with(|| Arc::new(Semaphore::new(self.inner.max_per_host))),
            ),
            Err(_) => Arc::new(Semaphore::new(self.inner.max_per_host)),
        }
    }

    /// The newest idle connection to `key` that is still open.
    fn checkout(&self, key: &Key) -> Option<SendRequest<Full<Bytes>>> {
        let mut pool = self.inner.pool.lock().ok()?;
        let idle = pool.idle.get_mut(key)?;
        let now = Instant::now();
        while let Some(entry) = idle.pop() {
            if !entry.sender.is_closed()
                && now.saturating_duration_since(entry.since) < self.inner.idle_timeout
            {
                return Some(entry.sender);
            }
        }
        None
    }

    /// Puts a connection back, if it can carry another request and the pool has room.
    fn checkin(&self, key: Key, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() || self.inner.max_idle_per_host == 0 {
            return;
        }
        let Ok(mut pool) = self.inner.pool.lock() else {
            return;
        };
        let idle = pool.idle.entry(key).or_default();
        if idle.len() >= self.inner.max_idle_per_host {
            return; // dropped: the connection closes
        }
        idle.push(Idle {
            sender,
            since: Instant::now(),
        });
        if !pool.sweeping {
            pool.sweeping = true;
            let weak = Arc::downgrade(&self.inner);
            let runtime = Arc::clone(&self.inner.runtime);
            let every = self.inner.idle_timeout.max(Duration::from_millis(100)) / 2;
            runtime.clone().spawn(Box::pin(sweep(weak, runtime, every)));
        }
    }

    /// A new connection (taking a connect slot while it opens), its driver spawned.
    async fn connect(&self, target: &HttpTarget) -> Result<SendRequest<Full<Bytes>>, HttpError> {
        let io = {
            let _slot = self.inner.connects.acquire().await;
            connect::stream(
                &self.inner.runtime,
                &self.inner.tls,
                &target.host,
                target.port,
                target.secure,
            )
            .await
            .map_err(|e| HttpError::Connect(format!("{}:{}: {e}", target.host, target.port)))?
        };
        let (sender, connection) = http1::Builder::new()
            .max_buf_size(MAX_BUF)
            .handshake(HyperIo(io))
            .await
            .map_err(|e| HttpError::Connect(e.to_string()))?;
        self.inner.runtime.spawn(Box::pin(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "HTTP connection ended");
            }
        }));
        Ok(sender)
    }
}

/// Closes idle connections past the idle timeout, every `every`, until the pool is empty or
/// the client is gone.
async fn sweep(client: Weak<ClientInner>, runtime: Arc<dyn Runtime>, every: Duration) {
    loop {
        runtime::sleep_until(&runtime, Instant::now() + every).await;
        let Some(client) = client.upgrade() else {
            return;
        };
        let Ok(mut pool) = client.pool.lock() else {
            return;
        };
        let now = Instant::now();
        let timeout = client.idle_timeout;
        pool.idle.retain(|_, idle| {
            idle.retain(|entry| {
                !entry.sender.is_closed() && now.saturating_duration_since(entry.since) < timeout
            });
            !idle.is_empty()
        });
        if pool.idle.is_empty() {
            pool.sweeping = false;
            return;
        }
    }
}

/// A `futures-io` stream seen through hyper's IO traits.
struct HyperIo(BoxIo);

impl hyper::rt::Read for HyperIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let mut chunk = [0u8; 4096];
        let room = buf.remaining().min(chunk.len());
        let Some(chunk) = chunk.get_mut(..room) else {
            return Poll::Ready(Ok(()));
        };
        match Pin::new(&mut self.0).poll_read(cx, chunk) {
            Poll::Ready(Ok(n)) => {
                buf.put_slice(chunk.get(..n).unwrap_or_default());
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl hyper::rt::Write for HyperIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}
