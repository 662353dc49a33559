//! Loom model checks of the handoffs between the async driver and the session and stream
//! handles. The code under test is smux-core's own driver, session and stream code, compiled
//! against loom's `Arc` and `Mutex` under `cfg(loom)` (see `src/sync.rs`); loom threads run
//! the driver future, the application and the peer over an in-memory connection, and loom
//! tries every interleaving of their lock operations up to a preemption bound. A lost wake-up
//! leaves every thread parked, which loom reports as a deadlock: the test fails.
//!
//! Without `cfg(loom)` this file is empty. Run it in a target directory of its own (the
//! flag rebuilds every dependency):
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" cargo test -p smux-core --test loom --release --target-dir target/loom
//! ```

#![cfg(loom)]

use loom::future::block_on;
use loom::sync::{Arc, Mutex};
use loom::thread;
use smux_core::frame::{Frame, Version, WindowUpdate};
use smux_core::runtime::{BoxFuture, Runtime, Timer};
use smux_core::{CloseReason, Config, Error, OwnedWriteHalf, Role, Session, Stream, StreamId};
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// Runs `f` under loom with at most two preemptions per interleaving: enough to put any lock
/// holder's critical section between any two of another thread's, which is where a lost
/// wake-up hides, and the whole file runs in seconds. `LOOM_MAX_PREEMPTIONS=3` explores
/// about seventeen times more (90 s here).
fn model(f: impl Fn() + Send + Sync + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound.get_or_insert(2);
    // Counted outside loom (a std atomic), to report how much was explored.
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = runs.clone();
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f();
    });
    eprintln!(
        "explored {} interleavings",
        runs.load(std::sync::atomic::Ordering::Relaxed)
    );
}

/// The driver runs on a loom thread of its own, so nothing is spawned. Timers never fire: no
/// model waits for a deadline (keepalive is off and closing never takes 30 s).
#[derive(Debug)]
struct ModelRuntime;

#[derive(Debug)]
struct NeverTimer;

impl Timer for NeverTimer {
    fn reset(self: Pin<&mut Self>, _deadline: Instant) {}
    fn poll_expired(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl Runtime for ModelRuntime {
    fn spawn(&self, _task: BoxFuture) {
        unreachable!("the models poll the driver on their own thread");
    }
    fn timer(&self, _deadline: Instant) -> Pin<Box<dyn Timer>> {
        Box::pin(NeverTimer)
    }
}

/// The connection as both ends see it, behind one loom lock.
#[derive(Debug, Default)]
struct WireState {
    /// Bytes from the peer the driver has not read yet.
    inbound: Vec<u8>,
    /// Bytes the driver wrote.
    outbound: Vec<u8>,
    /// While set, the driver's writes wait: a peer that does not read.
    stalled: bool,
    /// The peer reset the connection: every read and write fails.
    reset: bool,
    /// The driver's task, waiting to read or write (it is the only one using the wire).
    waker: Option<Waker>,
}

/// The peer's handle and the driver's transport: one shared wire.
#[derive(Debug, Clone)]
struct Wire {
    state: Arc<Mutex<WireState>>,
    version: Version,
}

impl Wire {
    fn new(version: Version) -> Self {
        Self {
            state: Arc::default(),
            version,
        }
    }

    fn lock(&self) -> loom::sync::MutexGuard<'_, WireState> {
        self.state.lock().unwrap()
    }

    /// The peer sends frames.
    fn send(&self, frames: &[Frame]) {
        let mut wire = self.lock();
        for f in frames {
            f.encode(self.version, &mut wire.inbound).unwrap();
        }
        let waker = wire.waker.take();
        drop(wire);
        waker.into_iter().for_each(Waker::wake);
    }

    /// The peer resets the connection.
    fn reset(&self) {
        let mut wire = self.lock();
        wire.reset = true;
        let waker = wire.waker.take();
        drop(wire);
        waker.into_iter().for_each(Waker::wake);
    }

    /// Everything the driver wrote, decoded.
    fn sent(&self) -> Vec<Frame> {
        decode(&self.lock().outbound, self.version)
    }
}

/// Whole frames; written frames are never cut (the wire takes every write whole).
fn decode(mut bytes: &[u8], version: Version) -> Vec<Frame> {
    let mut frames = Vec::new();
    while let Some((f, used)) = Frame::decode(bytes, version).unwrap() {
        frames.push(f);
        bytes = &bytes[used..];
    }
    frames
}

fn reset_error() -> io::Error {
    io::ErrorKind::ConnectionReset.into()
}

impl futures_io::AsyncRead for Wire {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut wire = self.lock();
        if wire.reset {
            return Poll::Ready(Err(reset_error()));
        }
        if wire.inbound.is_empty() {
            wire.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(wire.inbound.len());
        buf[..n].copy_from_slice(&wire.inbound[..n]);
        wire.inbound.drain(..n);
        Poll::Ready(Ok(n))
    }
}

impl futures_io::AsyncWrite for Wire {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    /// Takes every slice at once, as a socket with room would: one lock operation per
    /// driver write keeps the models small.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut wire = self.lock();
        if wire.reset {
            return Poll::Ready(Err(reset_error()));
        }
        if wire.stalled {
            wire.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let mut n = 0;
        for buf in bufs {
            wire.outbound.extend_from_slice(buf);
            n += buf.len();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A session whose driver runs on its own loom thread.
struct Started {
    session: Session,
    wire: Wire,
    driver: thread::JoinHandle<()>,
}

/// Starts a session and runs its driver on a new loom thread.
fn start(role: Role, config: Config) -> Started {
    let wire = Wire::new(config.version());
    let (session, driver) = Session::new(
        wire.clone(),
        role,
        config,
        std::sync::Arc::new(ModelRuntime),
    );
    let driver = thread::spawn(move || block_on(driver));
    Started {
        session,
        wire,
        driver,
    }
}

/// No keepalive: its timer would never fire here anyway.
fn config() -> Config {
    Config::builder().enable_keep_alive(false).build().unwrap()
}

/// Reads until `len` bytes or end of stream.
fn read(stream: &mut Stream, len: usize) -> io::Result<Vec<u8>> {
    block_on(async {
        let mut out = Vec::new();
        while out.len() < len {
            let mut buf = [0u8; 16];
            let n = poll_fn(|cx| stream.poll_read(cx, &mut buf)).await?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        Ok(out)
    })
}

/// Writes all of `data`, then waits until the driver has framed it (flush).
fn write_all(stream: &mut OwnedWriteHalf, mut data: &[u8]) -> io::Result<()> {
    block_on(async {
        while !data.is_empty() {
            let n = poll_fn(|cx| stream.poll_write(cx, data)).await?;
            data = &data[n..];
        }
        poll_fn(|cx| stream.poll_flush(cx)).await
    })
}

/// The payloads of what a client sent on its one stream, checking that it is its SYN,
/// data frames, and its FIN last.
fn one_stream(sent: &[Frame]) -> Vec<Vec<u8>> {
    assert_eq!(sent.first(), Some(&Frame::Syn { sid: 3 }));
    assert_eq!(sent.last(), Some(&Frame::Fin { sid: 3 }));
    sent[1..sent.len() - 1]
        .iter()
        .map(|f| match f {
            Frame::Psh { sid: 3, data } => data.to_vec(),
            f => panic!("unexpected frame {f:?}"),
        })
        .collect()
}

/// The typed error inside an `io::Error` from a stream.
fn typed(err: &io::Error) -> &Error {
    err.get_ref()
        .and_then(|e| e.downcast_ref::<Error>())
        .expect("a stream error carries smux_core::Error")
}

/// An accept and a read that wait while the driver takes in the peer's SYN and then its
/// data are both woken, and see the stream and the bytes.
#[test]
fn accept_and_read_are_woken_by_the_driver_delivering() {
    model(|| {
        let Started {
            session,
            wire,
            driver,
        } = start(Role::Server, config());
        let peer = {
            let wire = wire.clone();
            thread::spawn(move || {
                wire.send(&[Frame::Syn { sid: 3 }]);
                wire.send(&[Frame::Psh {
                    sid: 3,
                    data: "ab".into(),
                }]);
            })
        };
        let mut stream = block_on(session.accept_stream())
            .unwrap()
            .expect("a stream");
        assert_eq!(stream.id(), StreamId(3));
        assert_eq!(read(&mut stream, 2).unwrap(), b"ab");
        peer.join().unwrap();
        // The driver ends once every handle is gone, after sending the stream's FIN.
        drop(stream);
        drop(session);
        driver.join().unwrap();
        assert_eq!(wire.sent(), [Frame::Fin { sid: 3 }]);
    });
}

/// A writer whose send buffer is full waits; the driver framing the buffered bytes wakes
/// it, and so does the buffer draining for a flush. Every byte goes out once, in order.
#[test]
fn a_writer_blocked_on_a_full_buffer_is_woken_when_the_driver_drains_it() {
    model(|| {
        let config = config()
            .to_builder()
            .max_stream_send_buffer(4)
            .build()
            .unwrap();
        let Started {
            session,
            wire,
            driver,
        } = start(Role::Client, config);
        let stream = block_on(session.open_stream()).unwrap();
        drop(session);
        let (read_half, mut write_half) = stream.into_split();
        drop(read_half);
        let writer = thread::spawn(move || write_all(&mut write_half, b"abcdefgh"));
        writer.join().unwrap().unwrap();
        driver.join().unwrap();
        let payloads = one_stream(&wire.sent());
        assert!(
            payloads.iter().all(|d| d.len() <= 4),
            "more than the send buffer in one frame"
        );
        assert_eq!(payloads.concat(), b"abcdefgh");
    });
}

/// `close()` on one thread wakes a read waiting on another with the local close, and
/// returns once the connection is closed, the stream's FIN flushed.
#[test]
fn close_wakes_a_pending_read() {
    model(|| {
        let Started {
            session,
            wire,
            driver,
        } = start(Role::Client, config());
        let mut stream = block_on(session.open_stream()).unwrap();
        let reader = thread::spawn(move || read(&mut stream, 1).map(drop));
        block_on(session.close());
        assert_eq!(session.close_reason(), Some(CloseReason::Local));
        let err = reader.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotConnected);
        assert_eq!(typed(&err), &Error::Closed(CloseReason::Local));
        drop(session);
        driver.join().unwrap();
        assert_eq!(wire.sent(), [Frame::Syn { sid: 3 }, Frame::Fin { sid: 3 }]);
    });
}

/// `close()` on one thread wakes an accept waiting on another with the local close.
#[test]
fn close_wakes_a_pending_accept() {
    model(|| {
        let Started {
            session, driver, ..
        } = start(Role::Server, config());
        let acceptor = {
            let session = session.clone();
            thread::spawn(move || block_on(session.accept_stream()).map(drop))
        };
        block_on(session.close());
        let err = acceptor.join().unwrap().unwrap_err();
        assert_eq!(err, Error::Closed(CloseReason::Local));
        drop(session);
        driver.join().unwrap();
    });
}

/// A peer that stops reading leaves a writer blocked on its full send buffer (the driver's
/// own output batch is full too); the connection being reset wakes it with the connection's
/// error.
#[test]
fn a_reset_connection_wakes_a_blocked_writer() {
    model(|| {
        // One send buffer plus the driver's 256 KiB output batch is less than the writer's
        // 600 000 bytes, so it can only end with the reset.
        let config = config()
            .to_builder()
            .max_frame_size(65535)
            .max_stream_send_buffer(300_000)
            .build()
            .unwrap();
        let Started {
            session,
            wire,
            driver,
        } = start(Role::Client, config);
        wire.lock().stalled = true;
        let stream = block_on(session.open_stream()).unwrap();
        drop(session);
        let (_read_half, mut write_half) = stream.into_split();
        let writer = thread::spawn(move || write_all(&mut write_half, &vec![7u8; 600_000]));
        wire.reset();
        let err = writer.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        let expected = Error::Closed(CloseReason::Io {
            kind: io::ErrorKind::ConnectionReset,
            message: reset_error().to_string(),
        });
        assert_eq!(typed(&err), &expected);
        drop(_read_half);
        driver.join().unwrap();
    });
}

/// Six bytes spend a 4-byte receive budget (one frame may overshoot it), so the driver stops
/// reading the connection; the reader taking them refunds the budget and must restart the
/// driver, or the rest never arrives.
#[test]
fn a_read_that_refunds_the_spent_budget_restarts_the_driver() {
    model(|| {
        let config = config()
            .to_builder()
            .max_receive_buffer(4)
            .max_stream_buffer(4)
            .build()
            .unwrap();
        let Started {
            session,
            wire,
            driver,
        } = start(Role::Client, config);
        let mut stream = block_on(session.open_stream()).unwrap();
        drop(session);
        wire.send(&[
            Frame::Psh {
                sid: 3,
                data: "abcdef".into(),
            },
            Frame::Psh {
                sid: 3,
                data: "gh".into(),
            },
            Frame::Fin { sid: 3 },
        ]);
        assert_eq!(read(&mut stream, 100).unwrap(), b"abcdefgh");
        drop(stream);
        driver.join().unwrap();
    });
}

/// Version 2: a writer whose data waits for the peer's window (and whose send buffer is
/// full behind it) is woken when the driver takes in the peer's UPD and sends the rest.
#[test]
fn a_writer_waiting_for_the_peers_window_is_woken_by_its_update() {
    model(|| {
        let config = config()
            .to_builder()
            .version(2)
            .max_stream_send_buffer(4)
            .build()
            .unwrap();
        let Started {
            session,
            wire,
            driver,
        } = start(Role::Client, config);
        let stream = block_on(session.open_stream()).unwrap();
        drop(session);
        // The peer shrinks the window to 4 bytes: once the driver has taken that in, 4 of the
        // writer's 12 bytes go, 4 wait in the send buffer and the writer waits behind them.
        // (Bytes sent before it is taken in go under Go's initial 256 KiB window.)
        let window = |window| Frame::Upd {
            sid: 3,
            update: WindowUpdate {
                consumed: 0,
                window,
            },
        };
        wire.send(&[window(4)]);
        let (read_half, mut write_half) = stream.into_split();
        drop(read_half);
        let writer = thread::spawn(move || write_all(&mut write_half, b"abcdefghijkl"));
        // Then it opens the window for the rest, at any point of the writer's progress.
        wire.send(&[window(12)]);
        writer.join().unwrap().unwrap();
        driver.join().unwrap();
        let data: Vec<u8> = wire
            .sent()
            .iter()
            .filter_map(|f| match f {
                Frame::Psh { data, .. } => Some(data.to_vec()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(data, b"abcdefghijkl");
        assert_eq!(wire.sent().last(), Some(&Frame::Fin { sid: 3 }));
    });
}

/// `shutdown()` returns once the last open stream has finished both ways, when that
/// happens on another thread (it reads the peer's data and FIN, then half-closes) while
/// the handle itself stays alive.
#[test]
fn shutdown_returns_once_the_last_stream_finishes_on_another_thread() {
    model(|| {
        let Started {
            session,
            wire,
            driver,
        } = start(Role::Client, config());
        let mut stream = block_on(session.open_stream()).unwrap();
        wire.send(&[
            Frame::Psh {
                sid: 3,
                data: "x".into(),
            },
            Frame::Fin { sid: 3 },
        ]);
        let app = thread::spawn(move || {
            let data = read(&mut stream, 100)?;
            block_on(poll_fn(|cx| stream.poll_shutdown(cx)))?;
            io::Result::Ok((stream, data))
        });
        block_on(session.shutdown());
        assert_eq!(session.close_reason(), Some(CloseReason::Local));
        let (stream, data) = app.join().unwrap().unwrap();
        assert_eq!(data, b"x");
        assert_eq!(wire.sent(), [Frame::Syn { sid: 3 }, Frame::Fin { sid: 3 }]);
        drop(stream);
        drop(session);
        driver.join().unwrap();
    });
}

/// The session and its stream dropped at the same time on two threads: the driver sees the
/// last handle go, sends the stream's FIN and ends.
#[test]
fn the_last_handles_dropped_on_two_threads_end_the_driver() {
    model(|| {
        let Started {
            session,
            wire,
            driver,
        } = start(Role::Client, config());
        let stream = block_on(session.open_stream()).unwrap();
        let dropper = thread::spawn(move || drop(stream));
        drop(session);
        dropper.join().unwrap();
        driver.join().unwrap();
        assert_eq!(wire.sent(), [Frame::Syn { sid: 3 }, Frame::Fin { sid: 3 }]);
    });
}

/// A runtime that runs each spawned task (the driver, from `Session::spawn`) on a loom
/// thread of its own, and whose callers are never its tasks, so that writers write the
/// connection themselves whenever they find it idle.
#[derive(Debug, Default)]
struct SpawningRuntime {
    tasks: Mutex<Vec<thread::JoinHandle<()>>>,
}

impl Runtime for SpawningRuntime {
    fn spawn(&self, task: BoxFuture) {
        let handle = thread::spawn(move || block_on(task));
        self.tasks.lock().unwrap().push(handle);
    }
    fn timer(&self, _deadline: Instant) -> Pin<Box<dyn Timer>> {
        Box::pin(NeverTimer)
    }
    fn in_task(&self) -> bool {
        false
    }
}

/// With a spawned driver, a writer that finds the connection idle writes its frames in its
/// own thread, and one that finds the driver at it leaves them to the driver: the two never
/// lose, duplicate or reorder a byte, and the FIN still comes last.
#[test]
fn writers_writing_the_connection_themselves_and_the_driver_keep_the_order() {
    model(|| {
        let wire = Wire::new(Version::V1);
        let runtime = std::sync::Arc::new(SpawningRuntime::default());
        let config = config()
            .to_builder()
            .max_stream_send_buffer(2)
            .build()
            .unwrap();
        let session = Session::spawn(wire.clone(), Role::Client, config, runtime.clone());
        let stream = block_on(session.open_stream()).unwrap();
        drop(session);
        let (read_half, mut write_half) = stream.into_split();
        drop(read_half);
        let writer = thread::spawn(move || write_all(&mut write_half, b"abcd"));
        writer.join().unwrap().unwrap();
        let driver = runtime.tasks.lock().unwrap().pop().expect("the driver");
        driver.join().unwrap();
        assert_eq!(one_stream(&wire.sent()).concat(), b"abcd");
    });
}
