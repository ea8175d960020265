//! The accept loop and each HTTP connection: the cap on open connections, the header and idle
//! timeouts, and the back-off on accept errors.
//!
//! Every accepted connection is put to the core ([`crate::core::Admission`]): served, answered
//! with the core's refusal (a 503, written by one of a few refusal tasks), or closed at once. A
//! served connection holds a [`ConnectionPermit`] for its whole life, WebSocket included (the
//! permit travels with the upgraded socket), and tells the core when it ends.
//!
//! HTTP/1.1 is served by hyper, one task per connection. A watchdog closes a connection whose
//! request headers have not all arrived within `http_header_timeout` (counted from the accept for
//! the first request, from the request's first byte for later ones) and a keep-alive connection
//! with no request under way for `http_idle_timeout`.
//!
//! Accept errors (out of file descriptors and the like) back off from 10 ms up to 1 s, doubling,
//! and are logged at most once per 10 s with the count of those left unlogged.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::core::Admission;
use crate::respond::raw_http;
use crate::shared::Shared;

/// How long a TLS handshake may take.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may take to stop after a graceful stop was asked for.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// How long refusing one connection may take.
const REFUSAL_TIME: Duration = Duration::from_secs(2);

/// The peer address of a connection, as handlers see it through `ConnectInfo`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerAddr(pub(crate) SocketAddr);

/// Tells the core that an admitted connection has ended when the last holder lets go.
#[derive(Debug)]
struct Admitted(Arc<Shared>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.connection_ended();
    }
}

/// The connection's permit, shared by its HTTP task and, after an upgrade, its WebSocket task.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionPermit(#[allow(dead_code)] Arc<Admitted>);

/// The header and idle timeouts of HTTP connections.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    header: Duration,
    idle: Duration,
}

/// Accepts connections until `stop` turns true.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let timeouts = Timeouts {
        header: shared.config.http_header_timeout(),
        idle: shared.config.http_idle_timeout(),
    };
    let refusals = Arc::new(AtomicUsize::new(0));
    let mut backoff = AcceptBackoff::default();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stop| *stop) => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff.reset();
                accepted
            }
            Err(err) if is_connection_error(&err) => continue,
            Err(err) => {
                let delay = backoff.next(&err);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.wait_for(|stop| *stop) => return,
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let permit = match shared.admit(refusals.load(Ordering::Acquire)) {
            Admission::Accept => ConnectionPermit(Arc::new(Admitted(shared.clone()))),
            Admission::Refuse(answer) => {
                tracing::debug!(%peer, "connection refused: too many connections");
                let tls = tls.clone();
                let refusals = refusals.clone();
                refusals.fetch_add(1, Ordering::AcqRel);
                tokio::spawn(async move {
                    let bytes = raw_http(&answer);
                    let _ = tokio::time::timeout(REFUSAL_TIME, refuse(stream, tls, &bytes)).await;
                    refusals.fetch_sub(1, Ordering::AcqRel);
                });
                continue;
            }
            Admission::Drop => continue,
        };
        let app = app.clone();
        let stop = stop.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(stream, peer, permit, app, timeouts, stop).await,
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls)) => {
                            serve_connection(tls, peer, permit, app, timeouts, stop).await
                        }
                        Ok(Err(err)) => {
                            tracing::debug!(%peer, error = %err, "TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

/// Errors of one connection that was already gone when accepted: accept the next at once.
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// The delay after an accept error and the rate limit of its log line.
#[derive(Debug, Default)]
struct AcceptBackoff {
    delay: Duration,
    last_log: Option<Instant>,
    unlogged: u64,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);
    const LOG_EVERY: Duration = Duration::from_secs(10);

    fn reset(&mut self) {
        self.delay = Duration::ZERO;
    }

    /// Logs the error (rate-limited) and returns how long to wait before the next accept.
    fn next(&mut self, err: &io::Error) -> Duration {
        self.delay = if self.delay.is_zero() {
            Self::FIRST
        } else {
            (self.delay * 2).min(Self::MAX)
        };
        let now = Instant::now();
        if self
            .last_log
            .is_none_or(|at| now.duration_since(at) >= Self::LOG_EVERY)
        {
            tracing::warn!(
                error = %err,
                retry_in_ms = self.delay.as_millis() as u64,
                unlogged_since_last = self.unlogged,
                "accept failed"
            );
            self.last_log = Some(now);
            self.unlogged = 0;
        } else {
            self.unlogged += 1;
        }
        self.delay
    }
}

/// Answers 503 to a connection over the cap: reads what it sent (so that closing does not reset
/// the connection before the client reads the answer), writes the answer, closes.
async fn refuse(stream: TcpStream, tls: Option<TlsAcceptor>, answer: &[u8]) {
    match tls {
        None => refuse_on(stream, answer).await,
        Some(acceptor) => {
            if let Ok(tls) = acceptor.accept(stream).await {
                refuse_on(tls, answer).await;
            }
        }
    }
}

async fn refuse_on<S: AsyncRead + AsyncWrite + Unpin>(mut io: S, answer: &[u8]) {
    let mut buf = [0u8; 2048];
    let _ = tokio::time::timeout(Duration::from_millis(500), io.read(&mut buf)).await;
    if io.write_all(answer).await.is_err() {
        return;
    }
    let _ = io.shutdown().await;
    while matches!(io.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// Serves HTTP/1.1 on one connection until it ends, times out or the service stops.
async fn serve_connection<S>(
    io: S,
    peer: SocketAddr,
    permit: ConnectionPermit,
    app: Router,
    timeouts: Timeouts,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::default());
    let io = TokioIo::new(Tracked {
        inner: io,
        activity: activity.clone(),
    });
    let app = TowerToHyperService::new(app);
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(PeerAddr(peer)));
            request.extensions_mut().insert(permit.clone());
            let busy = Busy::start(&activity);
            let response = hyper::service::Service::call(&app, request);
            async move {
                let response = response.await;
                drop(busy);
                response
            }
        })
    };
    let connection = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .with_upgrades();
    tokio::pin!(connection);
    let mut watchdog = Watchdog::new(activity, timeouts, Instant::now());
    let mut tick = tokio::time::interval(watchdog.tick());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stop_by: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(err) = ended {
                    tracing::debug!(%peer, error = %err, "HTTP connection ended with an error");
                }
                return;
            }
            _ = tick.tick() => {
                if let Some(why) = watchdog.check(Instant::now()) {
                    tracing::debug!(%peer, why, "HTTP connection closed");
                    return;
                }
            }
            _ = stop.wait_for(|stop| *stop), if stop_by.is_none() => {
                connection.as_mut().graceful_shutdown();
                stop_by = Some(tokio::time::Instant::now() + STOP_GRACE);
            }
            _ = sleep_until(stop_by) => return,
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// What the watchdog reads of a connection: bytes read, requests under way and answered.
#[derive(Debug, Default)]
struct Activity {
    reads: AtomicU64,
    busy: AtomicUsize,
    answered: AtomicU64,
    /// `reads` when the last request was answered: reads after it belong to the next request.
    reads_at_answer: AtomicU64,
}

/// One request under way, from its complete headers to its response.
struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: &Arc<Activity>) -> Busy {
        activity.busy.fetch_add(1, Ordering::AcqRel);
        Busy(activity.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let reads = self.0.reads.load(Ordering::Acquire);
        self.0.reads_at_answer.store(reads, Ordering::Release);
        self.0.answered.fetch_add(1, Ordering::AcqRel);
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Where a connection is, as the watchdog sees it.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// No request under way and no byte of the next one yet, since `since`; `reads` as then.
    Idle { since: Instant, reads: u64 },
    /// Bytes of a request's headers arrived; the first at `since` (or the accept).
    Head { since: Instant },
    /// A request is being answered.
    Busy,
}

/// Closes connections whose headers are late or which sit idle.
#[derive(Debug)]
struct Watchdog {
    activity: Arc<Activity>,
    timeouts: Timeouts,
    phase: Phase,
    answered: u64,
}

impl Watchdog {
    fn new(activity: Arc<Activity>, timeouts: Timeouts, accepted: Instant) -> Watchdog {
        Watchdog {
            activity,
            timeouts,
            // The first request's headers are due a header timeout after the accept.
            phase: Phase::Head { since: accepted },
            answered: 0,
        }
    }

    /// How often to check: a quarter of the shorter timeout, between 10 ms and 1 s.
    fn tick(&self) -> Duration {
        (self.timeouts.header.min(self.timeouts.idle) / 4)
            .clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    /// Why the connection should be closed now, if it should.
    fn check(&mut self, now: Instant) -> Option<&'static str> {
        let reads = self.activity.reads.load(Ordering::Acquire);
        let answered = self.activity.answered.load(Ordering::Acquire);
        if self.activity.busy.load(Ordering::Acquire) > 0 {
            self.phase = Phase::Busy;
            return None;
        }
        if answered != self.answered || matches!(self.phase, Phase::Busy) {
            self.answered = answered;
            let at_answer = self.activity.reads_at_answer.load(Ordering::Acquire);
            self.phase = Phase::Idle {
                since: now,
                reads: at_answer,
            };
        }
        match self.phase {
            Phase::Idle { reads: before, .. } if reads > before => {
                self.phase = Phase::Head { since: now };
                None
            }
            Phase::Idle { since, .. } if now.duration_since(since) >= self.timeouts.idle => {
                Some("idle timeout")
            }
            Phase::Head { since } if now.duration_since(since) >= self.timeouts.header => {
                Some("request headers not received in time")
            }
            _ => None,
        }
    }
}

/// A connection's stream that counts its reads for the watchdog.
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.reads.fetch_add(1, Ordering::AcqRel);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// How many connections the open-file limit allows, raising the limit's soft value towards its
/// hard value when `wanted` needs it: `wanted`, or fewer (logged) when the limit is lower.
/// Descriptors are kept back for the service itself and for refusing connections.
#[cfg(unix)]
pub(crate) fn connection_budget(wanted: usize) -> usize {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    const RESERVED: u64 = 64 + crate::core::DEFAULT_REFUSALS_AT_ONCE as u64;
    let Ok((mut soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return wanted;
    };
    let needed = (wanted as u64).saturating_add(RESERVED);
    if soft < needed && hard > soft {
        let raised = needed.min(hard);
        if setrlimit(Resource::RLIMIT_NOFILE, raised, hard).is_ok() {
            soft = raised;
        }
    }
    let fits = usize::try_from(soft.saturating_sub(RESERVED).max(1)).unwrap_or(usize::MAX);
    if fits < wanted {
        tracing::warn!(
            max_connections = wanted,
            open_file_limit = soft,
            lowered_to = fits,
            "max_connections lowered to fit the open-file limit"
        );
    }
    wanted.min(fits)
}

/// How many connections the open-file limit allows (no limit is read on this platform).
#[cfg(not(unix))]
pub(crate) fn connection_budget(wanted: usize) -> usize {
    wanted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watchdog(header: u64, idle: u64) -> (Arc<Activity>, Watchdog, Instant) {
        let activity = Arc::new(Activity::default());
        let t0 = Instant::now();
        let timeouts = Timeouts {
            header: Duration::from_millis(header),
            idle: Duration::from_millis(idle),
        };
        (activity.clone(), Watchdog::new(activity, timeouts, t0), t0)
    }

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn first_request_headers_are_due_a_header_timeout_after_the_accept() {
        let (activity, mut dog, t0) = watchdog(100, 1000);
        activity.reads.fetch_add(1, Ordering::AcqRel);
        assert_eq!(dog.check(ms(t0, 50)), None);
        assert!(dog.check(ms(t0, 100)).is_some());
    }

    #[test]
    fn idle_keep_alive_closes_after_the_idle_timeout_and_a_late_head_after_the_header_timeout() {
        let (activity, mut dog, t0) = watchdog(100, 300);
        let busy = Busy::start(&activity);
        assert_eq!(dog.check(ms(t0, 50)), None);
        drop(busy);
        assert_eq!(dog.check(ms(t0, 60)), None); // answered: idle from here
        assert_eq!(dog.check(ms(t0, 300)), None);
        assert!(dog.check(ms(t0, 360)).is_some());

        let (activity, mut dog, t0) = watchdog(100, 300);
        drop(Busy::start(&activity));
        assert_eq!(dog.check(ms(t0, 10)), None);
        activity.reads.fetch_add(1, Ordering::AcqRel);
        assert_eq!(dog.check(ms(t0, 200)), None); // the next request's first bytes
        assert_eq!(dog.check(ms(t0, 250)), None);
        assert!(dog.check(ms(t0, 300)).is_some());
    }

    #[test]
    fn a_request_under_way_is_never_timed_out() {
        let (activity, mut dog, t0) = watchdog(100, 100);
        let _busy = Busy::start(&activity);
        assert_eq!(dog.check(ms(t0, 10_000)), None);
    }

    #[test]
    fn the_refusal_is_well_formed() {
        let answer = crate::core::rest::RestResponse::error(503, "serviceunavailable", "full");
        let bytes = raw_http(&answer);
        let text = std::str::from_utf8(&bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["err"], "serviceunavailable");
    }

    #[test]
    fn accept_errors_back_off_doubling_up_to_a_second() {
        let mut backoff = AcceptBackoff::default();
        let err = io::Error::other("too many open files");
        let delays: Vec<u64> = (0..9)
            .map(|_| backoff.next(&err).as_millis() as u64)
            .collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        assert_eq!(backoff.unlogged, 8);
        backoff.reset();
        assert_eq!(backoff.next(&err), Duration::from_millis(10));
    }
}
