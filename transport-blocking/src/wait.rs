//! Waiting for whichever comes first while an HTTP exchange runs on the worker thread: bytes
//! on the WebSocket's TCP stream, or the worker's word that an exchange finished. On Unix the
//! worker writes a byte to a socket pair and the driver `poll`s both descriptors; elsewhere the
//! driver reads its socket in short slices and looks for finished exchanges between them.
//! This module decides nothing; it only says what is ready.

use std::io;
use std::time::Duration;

/// What is ready after [`Wake::wait`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ready {
    /// The socket may have bytes to read.
    pub(crate) socket: bool,
    /// The worker finished an exchange.
    pub(crate) http: bool,
}

#[cfg(unix)]
mod imp {
    use std::io::{self, Read, Write};
    use std::net::TcpStream;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;
    use std::sync::Arc;
    use std::time::Duration;

    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

    use super::Ready;

    /// The driver's end of the wake-up pair.
    #[derive(Debug)]
    pub(crate) struct Wake {
        rx: UnixStream,
        tx: Arc<UnixStream>,
    }

    impl Wake {
        pub(crate) fn new() -> io::Result<Self> {
            let (tx, rx) = UnixStream::pair()?;
            tx.set_nonblocking(true)?;
            rx.set_nonblocking(true)?;
            Ok(Wake {
                rx,
                tx: Arc::new(tx),
            })
        }

        /// What the worker calls after each result: one byte (a full pair already holds a
        /// wake-up, so a write that would block is dropped).
        pub(crate) fn notifier(&self) -> impl Fn() + Send + 'static {
            let tx = Arc::clone(&self.tx);
            move || {
                let _ = (&*tx).write(&[1]);
            }
        }

        /// Empties the pair after a wake-up.
        pub(crate) fn clear(&self) {
            let mut buf = [0u8; 64];
            while matches!((&self.rx).read(&mut buf), Ok(n) if n == buf.len()) {}
        }

        /// How long to read the socket once [`Wake::wait`] said it is readable.
        pub(crate) fn read_bound(&self, wait: Option<Duration>) -> Option<Duration> {
            wait
        }

        /// Waits until the socket is readable, the worker wrote, or `timeout` (`None`: no
        /// bound) passed.
        pub(crate) fn wait(
            &self,
            socket: &TcpStream,
            timeout: Option<Duration>,
        ) -> io::Result<Ready> {
            let timeout = match timeout {
                // Round up: poll counts whole milliseconds.
                Some(t) => PollTimeout::try_from(t.saturating_add(Duration::from_micros(999)))
                    .unwrap_or(PollTimeout::MAX),
                None => PollTimeout::NONE,
            };
            let mut fds = [
                PollFd::new(socket.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.rx.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => return Ok(Ready::default()),
                Err(e) => return Err(io::Error::from(e)),
            }
            let ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
            Ok(Ready {
                socket: ready(&fds[0]),
                http: ready(&fds[1]),
            })
        }
    }
}

#[cfg(not(unix))]
mod imp {
    use std::io;
    use std::net::TcpStream;
    use std::time::Duration;

    use super::Ready;

    /// Longest slice of socket reading between two looks at the worker's results.
    const SLICE: Duration = Duration::from_millis(2);

    /// No wake-up pair here: the driver reads in slices.
    #[derive(Debug)]
    pub(crate) struct Wake;

    impl Wake {
        pub(crate) fn new() -> io::Result<Self> {
            Ok(Wake)
        }

        pub(crate) fn notifier(&self) -> impl Fn() + Send + 'static {
            || {}
        }

        pub(crate) fn clear(&self) {}

        pub(crate) fn read_bound(&self, wait: Option<Duration>) -> Option<Duration> {
            Some(wait.map_or(SLICE, |t| t.min(SLICE)))
        }

        pub(crate) fn wait(
            &self,
            socket: &TcpStream,
            timeout: Option<Duration>,
        ) -> io::Result<Ready> {
            let _ = (socket, timeout);
            Ok(Ready {
                socket: true,
                http: true,
            })
        }
    }
}

pub(crate) use imp::Wake;

/// Whether a read error only means "nothing yet" (a timeout, a non-blocking read with no
/// data, or a signal interrupting the read), not a lost link.
pub(crate) fn nothing_yet(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// A zero timeout means "block forever" to the OS; wait at least a millisecond.
pub(crate) fn read_timeout(wait: Option<Duration>) -> Option<Duration> {
    wait.map(|w| w.max(Duration::from_millis(1)))
}
