//! The driver's deadlines, driven by hand on a simulated clock (nothing here waits or can
//! hang):
//!
//! * A timer that fires a little before the runtime's clock reaches its deadline (a coarse
//!   timer, or one on another clock than `Runtime::now`) still runs keepalive on time, and
//!   the driver goes idle between deadlines instead of re-arming a timer that fires at
//!   once, again and again, until the clock catches up.
//! * Bytes that move in the poll in which a deadline fires count before the deadline is
//!   judged: a frame that arrived in time keeps a session alive past its keepalive
//!   timeout, and a connection that took our bytes in time is no write stall. That happens
//!   for real when the process was paused longer than a timeout (a suspended laptop, a
//!   stalled virtual machine): on waking, the peer's data and the expired timer are both
//!   there.

use futures_io::{AsyncRead, AsyncWrite};
use smux_core::frame::{Frame, Version};
use smux_core::runtime::{BoxFuture, Runtime, Timer};
use smux_core::{CloseReason, Config, Role, Session};
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// How early the lagging timer fires, by the runtime's clock.
const EARLY: Duration = Duration::from_micros(500);
const INTERVAL: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_secs(3);
/// Driver polls per step before the test gives up on the driver going idle.
const MAX_POLLS: usize = 1000;

#[derive(Debug)]
struct Clock {
    /// What `Runtime::now` returns; the test moves it.
    now: Instant,
    /// How long before its deadline (by `now`) a timer fires.
    early: Duration,
    /// Times a timer was polled and was ready.
    fires: usize,
    /// Timer polls and resets, all told.
    polls: usize,
    resets: usize,
}

/// A runtime on the test's clock, whose timers fire `early` before their deadline.
#[derive(Debug, Clone)]
struct SimRuntime(Arc<Mutex<Clock>>);

impl SimRuntime {
    fn new(now: Instant, early: Duration) -> Self {
        Self(Arc::new(Mutex::new(Clock {
            now,
            early,
            fires: 0,
            polls: 0,
            resets: 0,
        })))
    }

    fn clock(&self) -> MutexGuard<'_, Clock> {
        self.0.lock().unwrap()
    }

    fn advance(&self, by: Duration) {
        self.clock().now += by;
    }
}

#[derive(Debug)]
struct SimTimer {
    clock: Arc<Mutex<Clock>>,
    deadline: Instant,
}

impl Timer for SimTimer {
    fn reset(mut self: Pin<&mut Self>, deadline: Instant) {
        self.clock.lock().unwrap().resets += 1;
        self.deadline = deadline;
    }

    fn poll_expired(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        let mut clock = self.clock.lock().unwrap();
        clock.polls += 1;
        // The test moves the clock and polls the driver itself, so no waker is kept.
        if clock.now + clock.early >= self.deadline {
            clock.fires += 1;
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Runtime for SimRuntime {
    fn spawn(&self, _task: BoxFuture) {
        unreachable!("the test polls the driver itself");
    }
    fn timer(&self, deadline: Instant) -> Pin<Box<dyn Timer>> {
        Box::pin(SimTimer {
            clock: self.0.clone(),
            deadline,
        })
    }
    fn now(&self) -> Instant {
        self.clock().now
    }
}

/// The connection's two directions, as the test sees them.
#[derive(Debug, Default)]
struct Wire {
    /// What the peer sent and the driver has not read yet.
    input: Vec<u8>,
    /// Everything the driver wrote.
    written: Vec<u8>,
    /// Writes wait (Pending) while set.
    writes_blocked: bool,
}

/// A connection whose input the test supplies and whose writes it can hold back; nothing
/// wakes a driver that waits on it (the test polls the driver again itself).
#[derive(Debug, Clone, Default)]
struct Conn(Arc<Mutex<Wire>>);

impl Conn {
    fn wire(&self) -> MutexGuard<'_, Wire> {
        self.0.lock().unwrap()
    }

    fn frames(&self) -> Vec<Frame> {
        let wire = self.wire();
        let mut rest = &wire.written[..];
        let mut frames = Vec::new();
        while let Some((f, used)) = Frame::decode(rest, Version::V1).unwrap() {
            frames.push(f);
            rest = &rest[used..];
        }
        assert!(rest.is_empty(), "a frame was cut");
        frames
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut wire = self.wire();
        if wire.input.is_empty() {
            return Poll::Pending;
        }
        let n = buf.len().min(wire.input.len());
        buf[..n].copy_from_slice(&wire.input[..n]);
        wire.input.drain(..n);
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut wire = self.wire();
        if wire.writes_blocked {
            return Poll::Pending;
        }
        let before = wire.written.len();
        bufs.iter().for_each(|b| wire.written.extend_from_slice(b));
        Poll::Ready(Ok(wire.written.len() - before))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[derive(Debug, Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Polls `driver` as an executor would, for as long as it wakes itself (at most
/// `MAX_POLLS` times); returns whether it finished and how many polls it took.
fn run(driver: &mut Pin<Box<impl Future<Output = ()>>>) -> (bool, usize) {
    let flag = Arc::new(Flag::default());
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    for polls in 1..=MAX_POLLS {
        flag.0.store(false, Ordering::SeqCst);
        if driver.as_mut().poll(&mut cx).is_ready() {
            return (true, polls);
        }
        if !flag.0.load(Ordering::SeqCst) {
            return (false, polls); // idle until something wakes it
        }
    }
    (false, MAX_POLLS)
}

#[test]
fn an_early_timer_does_not_spin_the_driver() {
    let start = Instant::now();
    let runtime = SimRuntime::new(start, EARLY);
    let config = Config::builder()
        .version(1)
        .keep_alive_interval(INTERVAL)
        .keep_alive_timeout(TIMEOUT)
        .build()
        .unwrap();
    let wire = Conn::default();
    let (session, driver) = Session::new(
        wire.clone(),
        Role::Client,
        config,
        Arc::new(runtime.clone()),
    );
    let mut driver = Box::pin(driver);

    let (done, _) = run(&mut driver);
    assert!(!done);
    assert_eq!(runtime.clock().fires, 0, "no deadline has come yet");
    assert!(wire.frames().is_empty());

    // Each keepalive interval, the timer fires EARLY before the runtime's clock says the
    // deadline has come: the driver must send the NOP, then go idle until the next one.
    for k in 1..=2u32 {
        let before = {
            let mut clock = runtime.clock();
            clock.now = start + INTERVAL * k - EARLY;
            (clock.fires, clock.polls, clock.resets)
        };
        let (done, polls) = run(&mut driver);
        let clock = runtime.clock();
        let (fires, timer_polls, resets) = (
            clock.fires - before.0,
            clock.polls - before.1,
            clock.resets - before.2,
        );
        drop(clock);
        assert!(!done, "interval {k}: the session ended early");
        assert!(
            polls < 10 && fires <= 2 && timer_polls < 20 && resets <= 2,
            "interval {k}: the driver spun on its timer: {polls} driver polls, \
             {fires} timer fires, {timer_polls} timer polls, {resets} resets"
        );
        let nops = wire
            .frames()
            .iter()
            .filter(|f| matches!(f, Frame::Nop { .. }))
            .count();
        assert_eq!(nops, k as usize, "interval {k}: one NOP per interval");
    }

    // The peer has said nothing for TIMEOUT (by the timer): the session ends.
    runtime.clock().now = start + TIMEOUT - EARLY;
    let (done, polls) = run(&mut driver);
    assert!(
        done,
        "the keepalive timeout did not end the session ({polls} driver polls, {} timer fires)",
        runtime.clock().fires
    );
    // The silent peer never sent a frame, which the reason says.
    assert_eq!(
        session.close_reason(),
        Some(CloseReason::NoFrameFromPeer(TIMEOUT))
    );
}

/// A client session on `conn` whose timers fire exactly at their deadlines, polled once.
fn start(config: Config, conn: &Conn) -> (Session, SimRuntime, Pin<Box<impl Future<Output = ()>>>) {
    let clock = SimRuntime::new(Instant::now(), Duration::ZERO);
    let (session, driver) =
        Session::new(conn.clone(), Role::Client, config, Arc::new(clock.clone()));
    let mut driver = Box::pin(driver);
    run(&mut driver);
    (session, clock, driver)
}

#[test]
fn a_frame_that_arrived_in_time_keeps_the_session() {
    let timeout = Duration::from_secs(3);
    let config = Config::builder()
        .version(1)
        .keep_alive_interval(timeout)
        .keep_alive_timeout(timeout)
        .build()
        .unwrap();
    let conn = Conn::default();
    let (session, clock, mut driver) = start(config, &conn);
    // The peer's NOP comes just as the timeout runs out, and the driver gets to run only
    // then: it finds the frame and the expired timer in the same poll.
    clock.advance(timeout);
    Frame::Nop { sid: 0 }
        .encode(Version::V1, &mut conn.wire().input)
        .unwrap();
    run(&mut driver);
    assert_eq!(session.close_reason(), None, "a live peer was timed out");
    // Silence for a whole timeout after that frame still ends the session.
    clock.advance(timeout);
    run(&mut driver);
    assert!(session.close_reason().is_some(), "a silent peer was kept");
}

#[test]
fn a_connection_that_took_our_bytes_in_time_is_no_write_stall() {
    let timeout = Duration::from_secs(5);
    let config = Config::builder()
        .version(1)
        .enable_keep_alive(false)
        .write_timeout(timeout)
        .build()
        .unwrap();
    let conn = Conn::default();
    conn.wire().writes_blocked = true;
    let (session, clock, mut driver) = start(config, &conn);
    let mut stream = match Pin::new(&mut Box::pin(session.open_stream()))
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(stream) => stream.unwrap(),
        Poll::Pending => unreachable!("open never waits"),
    };
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(
        stream.poll_write(&mut cx, &[1u8; 1000]),
        Poll::Ready(Ok(1000))
    ));
    run(&mut driver);
    assert_eq!(conn.wire().written.len(), 0);
    // The connection takes everything just as the write timeout runs out.
    clock.advance(timeout);
    conn.wire().writes_blocked = false;
    run(&mut driver);
    assert!(conn.wire().written.len() > 1000, "the frames went out");
    assert_eq!(
        session.close_reason(),
        None,
        "a connection that wrote was a stall"
    );
}
