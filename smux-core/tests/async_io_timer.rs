//! `runtime::AsyncIoTimer` (feature `async-io`): it fires at its deadline, a reset moves the
//! deadline earlier or later, and dropping it cancels it. Polled by hand with a waker that
//! signals a channel; async-io's own fallback thread runs the reactor. Real time, so only
//! lower bounds on when a timer fires (the upper bounds are only there to fail, not hang).

use smux_core::runtime::{AsyncIoTimer, Timer};
use std::pin::Pin;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// Long enough that a timer that should not fire would have.
const LONG: Duration = Duration::from_secs(10);

/// A waker that sends on a channel.
struct Signal(Mutex<Sender<()>>);

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        let _ = self.0.lock().unwrap().send(());
    }
}

struct Probe {
    timer: Pin<Box<dyn Timer>>,
    waker: Waker,
    woken: Receiver<()>,
}

impl Probe {
    fn at(deadline: Instant) -> Self {
        let (tx, woken) = mpsc::channel();
        Self {
            timer: Box::pin(AsyncIoTimer::at(deadline)),
            waker: Waker::from(Arc::new(Signal(Mutex::new(tx)))),
            woken,
        }
    }

    fn poll(&mut self) -> Poll<()> {
        self.timer
            .as_mut()
            .poll_expired(&mut Context::from_waker(&self.waker))
    }

    fn reset(&mut self, deadline: Instant) {
        self.timer.as_mut().reset(deadline);
    }

    /// Polls until the timer fires, waiting for a wake-up between polls; the instant it was
    /// seen fired, or `None` if it did not fire within `limit`.
    fn wait(&mut self, limit: Duration) -> Option<Instant> {
        let give_up = Instant::now() + limit;
        loop {
            if self.poll().is_ready() {
                return Some(Instant::now());
            }
            let left = give_up.checked_duration_since(Instant::now())?;
            match self.woken.recv_timeout(left) {
                Ok(()) => {}
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => unreachable!("the probe holds the waker"),
            }
        }
    }
}

#[test]
fn fires_at_its_deadline() {
    let start = Instant::now();
    let mut probe = Probe::at(start + Duration::from_millis(30));
    let fired = probe.wait(LONG).expect("the timer fires");
    assert!(fired >= start + Duration::from_millis(30));
}

#[test]
fn a_deadline_that_has_passed_fires_at_the_first_poll() {
    let mut probe = Probe::at(Instant::now());
    assert!(probe.poll().is_ready());
}

#[test]
fn reset_moves_the_deadline_later() {
    let start = Instant::now();
    let mut probe = Probe::at(start + Duration::from_millis(20));
    assert!(probe.poll().is_pending());
    probe.reset(start + Duration::from_millis(300));
    let fired = probe
        .wait(LONG)
        .expect("the timer fires at the new deadline");
    assert!(
        fired >= start + Duration::from_millis(300),
        "fired at the old deadline: {:?} after start",
        fired - start
    );
}

#[test]
fn reset_moves_the_deadline_earlier_and_wakes_the_last_poll() {
    let start = Instant::now();
    let mut probe = Probe::at(start + Duration::from_secs(3600));
    assert!(probe.poll().is_pending());
    probe.reset(start + Duration::from_millis(30));
    // No poll in between: the waker of the poll before the reset is woken at the new one.
    probe
        .woken
        .recv_timeout(LONG)
        .expect("woken at the new, earlier deadline");
    assert!(Instant::now() >= start + Duration::from_millis(30));
    assert!(probe.poll().is_ready());
}

#[test]
fn a_fired_timer_stays_pending_until_reset_and_then_fires_again() {
    let mut probe = Probe::at(Instant::now());
    assert!(probe.poll().is_ready());
    assert!(probe.poll().is_pending());
    let again = Instant::now() + Duration::from_millis(30);
    probe.reset(again);
    let fired = probe.wait(LONG).expect("the timer fires again");
    assert!(fired >= again);
}

#[test]
fn a_dropped_timer_never_wakes() {
    let mut probe = Probe::at(Instant::now() + Duration::from_millis(20));
    assert!(probe.poll().is_pending());
    // The waker stays alive (the channel open): only the timer goes.
    let Probe {
        timer,
        waker: _waker,
        woken,
    } = probe;
    drop(timer);
    assert_eq!(
        woken.recv_timeout(Duration::from_millis(300)),
        Err(RecvTimeoutError::Timeout)
    );
}
