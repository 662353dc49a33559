//! The driver makes progress when its runtime's timer fires a little before the runtime's
//! clock reaches the deadline (a coarse timer, or a timer on another clock than
//! `Runtime::now`): keepalive still runs on time, and the driver goes idle between deadlines
//! instead of re-arming a timer that fires at once, again and again, until the clock catches
//! up. Driven by hand on a simulated clock, so nothing here waits or can hang.

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

/// How early the timer fires, by the runtime's clock.
const EARLY: Duration = Duration::from_micros(500);
const INTERVAL: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_secs(3);
/// Driver polls per step before the test gives up on the driver going idle.
const MAX_POLLS: usize = 1000;

#[derive(Debug)]
struct Clock {
    /// What `Runtime::now` returns; the test moves it.
    now: Instant,
    /// Times a timer was polled and was ready.
    fires: usize,
    /// Timer polls and resets, all told.
    polls: usize,
    resets: usize,
}

/// A runtime whose timers fire `EARLY` before its clock reaches their deadline.
#[derive(Debug, Clone)]
struct LaggingRuntime(Arc<Mutex<Clock>>);

impl LaggingRuntime {
    fn clock(&self) -> MutexGuard<'_, Clock> {
        self.0.lock().unwrap()
    }
}

#[derive(Debug)]
struct EarlyTimer {
    clock: Arc<Mutex<Clock>>,
    deadline: Instant,
}

impl Timer for EarlyTimer {
    fn reset(mut self: Pin<&mut Self>, deadline: Instant) {
        self.clock.lock().unwrap().resets += 1;
        self.deadline = deadline;
    }

    fn poll_expired(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        let mut clock = self.clock.lock().unwrap();
        clock.polls += 1;
        // The test moves the clock and polls the driver itself, so no waker is kept.
        if clock.now + EARLY >= self.deadline {
            clock.fires += 1;
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Runtime for LaggingRuntime {
    fn spawn(&self, _task: BoxFuture) {
        unreachable!("the test polls the driver itself");
    }
    fn timer(&self, deadline: Instant) -> Pin<Box<dyn Timer>> {
        Box::pin(EarlyTimer {
            clock: self.0.clone(),
            deadline,
        })
    }
    fn now(&self) -> Instant {
        self.clock().now
    }
}

/// A connection that takes every write and never has anything to read.
#[derive(Debug, Clone, Default)]
struct Wire(Arc<Mutex<Vec<u8>>>);

impl Wire {
    fn frames(&self) -> Vec<Frame> {
        let bytes = self.0.lock().unwrap();
        let mut rest = &bytes[..];
        let mut frames = Vec::new();
        while let Some((f, used)) = Frame::decode(rest, Version::V1).unwrap() {
            frames.push(f);
            rest = &rest[used..];
        }
        assert!(rest.is_empty(), "a frame was cut");
        frames
    }
}

impl futures_io::AsyncRead for Wire {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Pending // the peer stays silent (and nothing will ever wake the reader)
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
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut out = self.0.lock().unwrap();
        let before = out.len();
        bufs.iter().for_each(|b| out.extend_from_slice(b));
        Poll::Ready(Ok(out.len() - before))
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
    let runtime = LaggingRuntime(Arc::new(Mutex::new(Clock {
        now: start,
        fires: 0,
        polls: 0,
        resets: 0,
    })));
    let config = Config::builder()
        .version(1)
        .keep_alive_interval(INTERVAL)
        .keep_alive_timeout(TIMEOUT)
        .build()
        .unwrap();
    let wire = Wire::default();
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
