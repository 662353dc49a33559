//! What the session handles and the driver share: the engine and the wakers behind one
//! lock, and the guard that wakes them only once the lock is released.

use super::conn::WriteSide;
use super::stream::Half;
use crate::error::CloseReason;
use crate::proto::{Engine, Event, StreamId};
use crate::runtime::Runtime;
use crate::sync::{Mutex, MutexGuard};
use smallvec::SmallVec;
use std::collections::HashMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;
use std::task::Waker;
use std::time::Instant;

/// What the session handles and the driver share.
pub(crate) struct Shared {
    pub(super) state: Mutex<State>,
    /// std's `Arc`, as callers hand it in (loom's cannot hold a `dyn` value).
    pub(crate) runtime: std::sync::Arc<dyn Runtime>,
    /// A process-wide number for logs.
    pub(crate) id: u64,
    /// The connection's write side, for writers that find it idle; unset for a driver that
    /// was not spawned by the session (its connection need not be `Send`): then the driver
    /// does all writing.
    pub(super) write_side: OnceLock<std::sync::Arc<dyn WriteSide>>,
}

/// Numbers sessions for `tracing`.
pub(crate) fn next_session_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    /// Data was given to the engine under `st`: the driver is woken to send it, or, for a
    /// caller outside the runtime's tasks (see [`Runtime::in_task`]), it goes out from here
    /// if the connection is idle.
    pub(crate) fn write_now(&self, mut st: Locked<'_>, cx: &mut std::task::Context<'_>) {
        match self.write_side.get() {
            Some(side) if !self.runtime.in_task() => side.write_now(st, self.runtime.now(), cx),
            _ => st.wake_driver(),
        }
    }

    /// Locks the session's state. Wakers are woken only once the lock is released, so no
    /// code outside this crate ever runs under it. A lock poisoned by a panic (a bug in
    /// smux-rs) ends the session with [`CloseReason::Poisoned`]: its state cannot be
    /// trusted, but every caller gets a typed error instead of a panic of its own.
    pub(crate) fn lock(&self) -> Locked<'_> {
        let (state, poisoned) = match self.state.lock() {
            Ok(state) => (state, false),
            Err(poisoned) => (poisoned.into_inner(), true),
        };
        let mut locked = Locked {
            state,
            wakes: Wakes(SmallVec::new()),
        };
        if poisoned && !locked.engine.is_closed() {
            locked.engine.abort(CloseReason::Poisoned);
            let Locked { state, wakes } = &mut locked;
            state.collect_wakes(&mut wakes.0);
            state.wake_all(&mut wakes.0);
            wakes.0.extend(state.driver_waker.take());
        }
        locked
    }
}

/// The locked state, and the wakers to wake once the lock is released.
pub(crate) struct Locked<'a> {
    // Field order matters: the guard is dropped (unlocking) before the wakers are woken.
    state: MutexGuard<'a, State>,
    wakes: Wakes,
}

/// Wakers woken when dropped. Inline up to four: a handle's lock usually wakes one or two,
/// and one allocation per wake-up was one every few frames of a bulk stream.
struct Wakes(SmallVec<[Waker; 4]>);

impl Drop for Wakes {
    fn drop(&mut self) {
        for w in self.0.drain(..) {
            w.wake();
        }
    }
}

impl Locked<'_> {
    /// Wakes, once the lock is released, the handles the engine's latest events concern.
    pub(crate) fn defer_engine_wakes(&mut self) {
        let Locked { state, wakes } = self;
        state.collect_wakes(&mut wakes.0);
    }

    /// Asks the driver to run again, once the lock is released.
    pub(crate) fn wake_driver(&mut self) {
        if let Some(w) = self.state.driver_waker.take() {
            self.wakes.0.push(w);
        }
    }
}

impl Deref for Locked<'_> {
    type Target = State;

    fn deref(&self) -> &State {
        &self.state
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

/// One stream's wakers, and which of its halves were dropped.
#[derive(Debug, Default)]
pub(super) struct StreamSlot {
    read: Option<Waker>,
    write: Option<Waker>,
    read_dropped: bool,
    write_dropped: bool,
}

/// The state behind the lock.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) engine: Engine,
    pub(super) slots: HashMap<u32, StreamSlot>,
    pub(super) accept_wakers: Vec<Waker>,
    /// Woken when the driver has finished (the connection is closed).
    pub(super) end_wakers: Vec<Waker>,
    pub(super) driver_waker: Option<Waker>,
    /// Session handles plus stream halves held; the session closes when it reaches 0.
    pub(super) handles: usize,
    pub(super) incoming_taken: bool,
    /// When a local close or shutdown began, to bound flushing.
    pub(super) close_started: Option<Instant>,
    pub(super) finished: bool,
}

pub(super) fn store(slot: &mut Option<Waker>, waker: &Waker) {
    if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
        *slot = Some(waker.clone());
    }
}

pub(super) fn store_in(list: &mut Vec<Waker>, waker: &Waker) {
    if !list.iter().any(|w| w.will_wake(waker)) {
        list.push(waker.clone());
    }
}

impl State {
    /// Moves the engine's readiness changes into wakers to wake once the lock is released.
    pub(super) fn collect_wakes(&mut self, out: &mut impl Extend<Waker>) {
        while let Some(event) = self.engine.poll_event() {
            match event {
                Event::Stream {
                    id,
                    readable,
                    writable,
                } => {
                    if let Some(slot) = self.slots.get_mut(&id.0) {
                        if readable {
                            out.extend(slot.read.take());
                        }
                        if writable {
                            out.extend(slot.write.take());
                        }
                    }
                }
                Event::Incoming => out.extend(self.accept_wakers.drain(..)),
                Event::Closed => self.wake_all(out),
            }
        }
    }

    pub(super) fn wake_all(&mut self, out: &mut impl Extend<Waker>) {
        for slot in self.slots.values_mut() {
            out.extend(slot.read.take());
            out.extend(slot.write.take());
        }
        out.extend(self.accept_wakers.drain(..));
    }

    /// Registers a new stream's two halves.
    pub(super) fn register(&mut self, id: StreamId) {
        self.handles += 2;
        self.slots.insert(id.0, StreamSlot::default());
    }

    /// Keeps `waker` to wake when the stream's `half` can make progress.
    pub(super) fn wait(&mut self, id: StreamId, half: Half, waker: &Waker) {
        if let Some(slot) = self.slots.get_mut(&id.0) {
            let slot = match half {
                Half::Read => &mut slot.read,
                Half::Write => &mut slot.write,
            };
            store(slot, waker);
        }
    }

    /// A half was dropped; returns whether it was the stream's last.
    pub(super) fn release_half(&mut self, id: StreamId, half: Half) -> bool {
        let Some(slot) = self.slots.get_mut(&id.0) else {
            return false;
        };
        match half {
            Half::Read => {
                slot.read_dropped = true;
                slot.read = None;
            }
            Half::Write => {
                slot.write_dropped = true;
                slot.write = None;
            }
        }
        if slot.read_dropped && slot.write_dropped {
            self.slots.remove(&id.0);
            return true;
        }
        false
    }
}
