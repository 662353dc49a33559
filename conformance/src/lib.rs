//! The conformance suite: behaviour every smux-rs runtime adapter must show, written once
//! against `smux-core`'s runtime-neutral [`Session`] and run by each adapter on its own
//! runtime and transports.
//!
//! An adapter implements [`Harness`] and expands [`conformance_tests!`] (and, in a test
//! binary of its own, [`conformance_timing_tests!`]) with a path to a function returning it:
//!
//! ```ignore
//! fn harness() -> std::sync::Arc<dyn conformance::Harness> { /* ... */ }
//! conformance::conformance_tests!(crate::harness);
//! ```

pub mod suite;
pub mod timing;

use futures_io::{AsyncRead, AsyncWrite};
use smux_core::runtime::Runtime;
use smux_core::{Config, Role, Session};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A boxed future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A connection end, as the suite sees it.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A boxed connection end.
pub type BoxIo = Box<dyn Io>;

/// The transports every adapter is tested over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Loopback TCP.
    Tcp,
    /// An in-memory pipe of the runtime's own.
    Memory,
    /// A Unix domain socket pair.
    Unix,
}

/// What the suite needs from a runtime adapter.
pub trait Harness: Send + Sync + 'static {
    /// Runs one test body to completion on a fresh runtime.
    fn block_on(&self, test: BoxFuture<()>);
    /// The adapter's [`Runtime`].
    fn runtime(&self) -> Arc<dyn Runtime>;
    /// Two connected ends of `transport`.
    fn connect(&self, transport: Transport) -> BoxFuture<(BoxIo, BoxIo)>;
    /// Waits for `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<()>;
}

/// A connected pair of loopback TCP sockets (std's, blocking until connected; `TCP_NODELAY`
/// set), for a harness to hand to its runtime's socket type.
pub fn tcp_pair() -> (std::net::TcpStream, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let a = std::net::TcpStream::connect(listener.local_addr().expect("address")).expect("connect");
    let (b, _) = listener.accept().expect("accept");
    for s in [&a, &b] {
        s.set_nodelay(true).expect("nodelay");
    }
    (a, b)
}

/// An in-memory duplex pipe that works on any runtime: two `piper` pipes of `capacity`
/// bytes each, one per direction.
pub fn memory_pipe(capacity: usize) -> (BoxIo, BoxIo) {
    let (r1, w1) = piper::pipe(capacity);
    let (r2, w2) = piper::pipe(capacity);
    (
        Box::new(Duplex {
            read: r1,
            write: w2,
        }),
        Box::new(Duplex {
            read: r2,
            write: w1,
        }),
    )
}

/// One end of [`memory_pipe`].
struct Duplex {
    read: piper::Reader,
    write: piper::Writer,
}

impl std::fmt::Debug for Duplex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Duplex")
    }
}

impl AsyncRead for Duplex {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl AsyncWrite for Duplex {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        Pin::new(&mut self.write).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.write).poll_flush(cx)
    }

    fn poll_close(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.write).poll_close(cx)
    }
}

/// Runs `test` with a harness from `make` over `transport`.
pub fn run<F, Fut>(make: fn() -> Arc<dyn Harness>, transport: Transport, test: F)
where
    F: FnOnce(Arc<dyn Harness>, Transport) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let harness = make();
    let body = test(harness.clone(), transport);
    harness.block_on(Box::pin(body));
}

/// Like [`run`], but one at a time across the test binary, whatever `--test-threads` says:
/// timing-sensitive tests must not compete for the two cores.
pub fn run_serial<F, Fut>(make: fn() -> Arc<dyn Harness>, transport: Transport, test: F)
where
    F: FnOnce(Arc<dyn Harness>, Transport) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    run(make, transport, test);
}

/// A client and a server session over a fresh connection.
pub async fn connect(
    h: &Arc<dyn Harness>,
    transport: Transport,
    client: Config,
    server: Config,
) -> (Session, Session) {
    let (a, b) = h.connect(transport).await;
    let rt = h.runtime();
    (
        Session::spawn(a, Role::Client, client, rt.clone()),
        Session::spawn(b, Role::Server, server, rt),
    )
}

/// Spawns `fut` on the harness's runtime and lets it run on its own.
pub fn detach(h: &Arc<dyn Harness>, fut: impl Future<Output = ()> + Send + 'static) {
    h.runtime().spawn(Box::pin(fut));
}

/// Spawns `fut` on the harness's runtime; the returned future gives its output (dropping
/// it cancels the task).
pub fn spawn<T: Send + 'static>(
    h: &Arc<dyn Harness>,
    fut: impl Future<Output = T> + Send + 'static,
) -> impl Future<Output = T> + Send + 'static {
    let (task, handle) = futures_util::FutureExt::remote_handle(fut);
    h.runtime().spawn(Box::pin(task));
    handle
}

/// Expands to the suite's tests, one module per transport. `$make` is a path, starting
/// with `crate::`, to a `fn() -> Arc<dyn Harness>`.
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        mod tcp {
            $crate::__suite!($make, $crate::Transport::Tcp);
        }
        mod memory {
            $crate::__suite!($make, $crate::Transport::Memory);
        }
        #[cfg(unix)]
        mod unix {
            $crate::__suite!($make, $crate::Transport::Unix);
        }
    };
}

/// Expands to the timing-sensitive tests (keepalive); put them in a test binary of their
/// own, run with `--test-threads=1`.
#[macro_export]
macro_rules! conformance_timing_tests {
    ($make:path) => {
        $crate::__tests!(
            run_serial,
            $make,
            $crate::Transport::Tcp,
            $crate::timing,
            [
                silent_peer_is_dropped_by_keepalive,
                idle_sessions_keep_each_other_alive,
            ]
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __suite {
    ($make:path, $transport:expr) => {
        $crate::__tests!(
            run,
            $make,
            $transport,
            $crate::suite,
            [
                echo_v1,
                echo_v2,
                thousand_streams_hundred_messages,
                random_sizes_64_mib_v1,
                random_sizes_64_mib_v2,
                server_opens_streams,
                half_close_both_ways,
                write_after_shutdown_is_broken_pipe,
                drop_sends_queued_data_then_fin,
                close_flushes_then_ends_the_session,
                shutdown_drains_then_closes,
                session_end_wakes_everything,
                buffered_data_survives_session_end,
                accept_is_cancel_safe,
                open_is_cancel_safe,
                slow_reader_loses_nothing_within_the_bound,
                split_halves_work_concurrently,
                dropping_every_handle_closes_the_connection,
                incoming_yields_streams_and_ends,
                chunk_reads_end_with_none,
                halves_know_their_stream,
                clean_end_is_not_an_error,
                writes_after_close_name_the_session,
                flush_and_shutdown_never_wait_for_the_peer,
                a_dropped_read_half_stalls_nothing,
            ]
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __tests {
    ($runner:ident, $make:path, $transport:expr, $module:path, [$($name:ident),* $(,)?]) => {
        $(
            #[test]
            fn $name() {
                use $module as suite;
                $crate::$runner($make, $transport, suite::$name);
            }
        )*
    };
}
