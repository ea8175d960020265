//! The runtime glue, kept small (after quinn's `Runtime` trait): spawning a task, a timer
//! that can be re-armed, and a TCP connect. Everything else in this crate (WebSockets, TLS,
//! HTTP, the drivers) is written against `futures-io` and these three calls, so one code path
//! serves every runtime. `TokioRuntime` (feature `tokio`) and `SmolRuntime` (feature
//! `smol`) are provided; an application may implement [`Runtime`] for its own.

use std::fmt::Debug;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};

#[cfg(feature = "smol")]
mod smol;
#[cfg(feature = "tokio")]
mod tokio;

#[cfg(feature = "smol")]
pub use self::smol::SmolRuntime;
#[cfg(feature = "tokio")]
pub use self::tokio::TokioRuntime;

/// A byte stream (TCP, or TLS over TCP) as `futures-io` sees it.
pub trait AsyncIo: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> AsyncIo for T {}

/// A boxed byte stream.
pub type BoxIo = Box<dyn AsyncIo>;

/// A boxed future the runtime runs.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What the transport needs from an async runtime.
pub trait Runtime: Debug + Send + Sync + 'static {
    /// Runs `future` to completion on the runtime, detached.
    fn spawn(&self, future: BoxFuture<()>);

    /// A timer that fires at `deadline` (and can be re-armed).
    fn timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>>;

    /// Connects a TCP stream (with `TCP_NODELAY`) to one address.
    fn connect(&self, addr: SocketAddr) -> BoxFuture<io::Result<BoxIo>>;

    /// The addresses of `host` (a name is resolved the runtime's way, off the event loop).
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<io::Result<Vec<SocketAddr>>>;
}

/// A re-armable timer.
pub trait AsyncTimer: Debug + Send {
    /// Fires at `deadline` instead.
    fn reset(self: Pin<&mut Self>, deadline: Instant);
    /// Ready once the deadline has come.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()>;
}

/// Connects to `host:port`: an IP literal at once, a name through the runtime's resolver,
/// trying each address in turn.
pub(crate) async fn connect_host(
    runtime: &Arc<dyn Runtime>,
    host: &str,
    port: u16,
) -> io::Result<BoxIo> {
    let addrs = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => runtime.resolve(host, port).await?,
    };
    let mut last = None;
    for addr in addrs {
        match runtime.connect(addr).await {
            Ok(io) => return Ok(io),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"))
    }))
}

/// Sleeps until `deadline` on `runtime`'s timer.
pub(crate) async fn sleep_until(runtime: &Arc<dyn Runtime>, deadline: Instant) {
    let mut timer = runtime.timer(deadline);
    std::future::poll_fn(|cx| timer.as_mut().poll(cx)).await
}

/// Runs `future` until `deadline`; `None` when the deadline came first (the future is
/// dropped, which cancels it).
pub(crate) async fn until<T>(
    runtime: &Arc<dyn Runtime>,
    deadline: Instant,
    future: impl Future<Output = T>,
) -> Option<T> {
    let mut future = std::pin::pin!(future);
    let mut timer = runtime.timer(deadline);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(value) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(value));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

/// The runtime used when none is named: tokio when the `tokio` feature is on (the current
/// tokio runtime), else smol.
#[cfg(any(feature = "tokio", feature = "smol"))]
pub fn default_runtime() -> Arc<dyn Runtime> {
    #[cfg(feature = "tokio")]
    {
        Arc::new(TokioRuntime::current())
    }
    #[cfg(not(feature = "tokio"))]
    {
        Arc::new(SmolRuntime::new())
    }
}
