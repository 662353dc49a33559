//! A queue of streams that owns each stream's "is queued" flag.
//!
//! A stream is in a [`Queue`] at most once: [`Queue::push`] is a no-op while the stream's
//! flag is set, and [`Queue::pop`] clears it. The flag is a [`Queued`], whose bit only this
//! module can change, so "flag set" and "entry queued" cannot drift apart by hand.
//! A stream forgotten while queued leaves a stale entry, which `pop` skips.

use super::store::{Store, StreamEntry};
use super::stream::Stream;
use std::collections::VecDeque;
use std::marker::PhantomData;

/// Whether a stream is in one particular [`Queue`]. Only the queue sets or clears it.
#[derive(Debug, Default)]
pub(super) struct Queued(bool);

impl Queued {
    /// The stream is in the queue.
    pub(super) fn is_set(&self) -> bool {
        self.0
    }
}

/// Which of a stream's [`Queued`] flags a queue owns.
pub(super) trait Membership {
    /// The flag, inside the stream.
    fn flag(stream: &mut Stream) -> &mut Queued;
}

/// Stream ids in order, each at most once, with the flag kept in the stream.
pub(super) struct Queue<M> {
    ids: VecDeque<u32>,
    membership: PhantomData<M>,
}

impl<M> std::fmt::Debug for Queue<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.ids).finish()
    }
}

impl<M> Default for Queue<M> {
    fn default() -> Self {
        Self {
            ids: VecDeque::new(),
            membership: PhantomData,
        }
    }
}

impl<M: Membership> Queue<M> {
    /// Queues the stream unless it is queued already; returns whether it was added.
    pub(super) fn push(&mut self, sid: u32, stream: &mut Stream) -> bool {
        let flag = M::flag(stream);
        if flag.0 {
            return false;
        }
        flag.0 = true;
        self.ids.push_back(sid);
        true
    }

    /// Takes the first stream still queued, clearing its flag.
    pub(super) fn pop<'s>(&mut self, store: &'s mut Store) -> Option<StreamEntry<'s>> {
        while let Some(sid) = self.ids.pop_front() {
            // Looked up twice only for a stale id; the borrow checker cannot see that the
            // first lookup's borrow ends when the entry is skipped.
            if !store.get_mut(sid).is_some_and(|s| M::flag(s).0) {
                continue;
            }
            let mut entry = store.entry(sid)?;
            M::flag(entry.stream()).0 = false;
            return Some(entry);
        }
        None
    }

    /// Empties the queue and clears the flags of the streams in it.
    pub(super) fn clear(&mut self, store: &mut Store) {
        for sid in self.ids.drain(..) {
            if let Some(s) = store.get_mut(sid) {
                M::flag(s).0 = false;
            }
        }
    }

    /// Nothing is queued (stale entries aside).
    pub(super) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The queued ids, in order, stale ones included.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(super) fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.ids.iter().copied()
    }
}
