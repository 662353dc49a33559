//! The engine's deadlines, one table of named timers.

use std::time::{Duration, Instant};

/// A named deadline of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// The next keepalive NOP is due.
    Ping,
    /// Keepalive gives up: no frame arrived for the whole timeout while we were willing to
    /// read. Not armed while reading is paused.
    Idle,
    /// Recycled buffers are let go: no large payload moved for a while.
    PoolRelease,
    /// A local close stops flushing and ends the session.
    Close,
    /// The connection has taken no byte for the write timeout while frames waited.
    WriteStall,
}

impl Timer {
    const COUNT: usize = 5;

    fn index(self) -> usize {
        match self {
            Timer::Ping => 0,
            Timer::Idle => 1,
            Timer::PoolRelease => 2,
            Timer::Close => 3,
            Timer::WriteStall => 4,
        }
    }
}

/// When each [`Timer`] fires, if armed.
#[derive(Debug, Default)]
pub(super) struct Timers {
    at: [Option<Instant>; Timer::COUNT],
}

impl Timers {
    pub(super) fn set(&mut self, timer: Timer, at: Instant) {
        self.at[timer.index()] = Some(at);
    }

    pub(super) fn stop(&mut self, timer: Timer) {
        self.at[timer.index()] = None;
    }

    pub(super) fn get(&self, timer: Timer) -> Option<Instant> {
        self.at[timer.index()]
    }

    pub(super) fn is_armed(&self, timer: Timer) -> bool {
        self.get(timer).is_some()
    }

    /// Whether `timer` is armed and its deadline has come.
    pub(super) fn expired(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|at| now >= at)
    }

    /// If `timer` has expired, re-arms it one `interval` after its deadline and returns
    /// true. A timer far behind (a stalled driver) is re-armed from `now`, so that it does
    /// not fire a burst to catch up.
    pub(super) fn repeat(&mut self, timer: Timer, now: Instant, interval: Duration) -> bool {
        let Some(at) = self.get(timer).filter(|&at| now >= at) else {
            return false;
        };
        let mut next = at + interval;
        if next <= now {
            next = now + interval;
        }
        self.set(timer, next);
        true
    }

    /// The earliest of `timers`' deadlines.
    pub(super) fn next_of(&self, timers: &[Timer]) -> Option<Instant> {
        timers.iter().filter_map(|&t| self.get(t)).min()
    }

    pub(super) fn stop_all(&mut self) {
        self.at = [None; Timer::COUNT];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_armed_deadline_is_next() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        assert_eq!(timers.next_of(&[Timer::Ping, Timer::Idle]), None);
        timers.set(Timer::Idle, t0 + Duration::from_secs(3));
        timers.set(Timer::Ping, t0 + Duration::from_secs(1));
        timers.set(Timer::Close, t0);
        assert_eq!(
            timers.next_of(&[Timer::Ping, Timer::Idle]),
            Some(t0 + Duration::from_secs(1))
        );
        timers.stop(Timer::Ping);
        assert!(!timers.expired(Timer::Idle, t0 + Duration::from_secs(2)));
        assert!(timers.expired(Timer::Idle, t0 + Duration::from_secs(3)));
        assert!(!timers.repeat(Timer::Idle, t0, Duration::from_secs(1)));
        assert!(timers.repeat(
            Timer::Idle,
            t0 + Duration::from_secs(3),
            Duration::from_secs(1)
        ));
        assert_eq!(timers.get(Timer::Idle), Some(t0 + Duration::from_secs(4)));
        assert!(timers.repeat(
            Timer::Idle,
            t0 + Duration::from_secs(60),
            Duration::from_secs(1)
        ));
        assert_eq!(
            timers.get(Timer::Idle),
            Some(t0 + Duration::from_secs(61)),
            "no burst"
        );
        timers.stop_all();
        assert!(!timers.is_armed(Timer::Close));
    }
}
