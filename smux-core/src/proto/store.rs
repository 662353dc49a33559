//! The stream store: every stream the session knows, by id, and how many of them are live.
//!
//! A caller looks a stream up once and gets a [`StreamEntry`], a borrowed view that can
//! change the stream's lifecycle (keeping the live count right) and forget the stream, so
//! that no helper looks the same id up again.

use super::stream::{Life, Stream};
use std::collections::hash_map::{self, HashMap};

/// The streams of one session.
#[derive(Debug, Default)]
pub(super) struct Store {
    streams: HashMap<u32, Stream>,
    /// Streams counted against `max_streams`: those whose [`Life`] is `Open`.
    live: usize,
}

impl Store {
    /// Adds a new open stream.
    pub(super) fn insert(&mut self, sid: u32, config: &crate::config::Config) {
        self.streams.insert(sid, Stream::new(config));
        self.live += 1;
    }

    /// The stream's view, if the session knows it.
    pub(super) fn entry(&mut self, sid: u32) -> Option<StreamEntry<'_>> {
        match self.streams.entry(sid) {
            hash_map::Entry::Occupied(entry) => Some(StreamEntry {
                entry,
                live: &mut self.live,
            }),
            hash_map::Entry::Vacant(_) => None,
        }
    }

    pub(super) fn get(&self, sid: u32) -> Option<&Stream> {
        self.streams.get(&sid)
    }

    pub(super) fn get_mut(&mut self, sid: u32) -> Option<&mut Stream> {
        self.streams.get_mut(&sid)
    }

    pub(super) fn contains(&self, sid: u32) -> bool {
        self.streams.contains_key(&sid)
    }

    /// Streams open now (not done and not released).
    pub(super) fn live(&self) -> usize {
        self.live
    }

    /// Streams known, live or not.
    pub(super) fn len(&self) -> usize {
        self.streams.len()
    }

    pub(super) fn ids(&self) -> Vec<u32> {
        self.streams.keys().copied().collect()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (u32, &Stream)> {
        self.streams.iter().map(|(&sid, s)| (sid, s))
    }

    /// The sum of the windows the open streams offer: the part of the session budget
    /// promised to them.
    pub(super) fn promised_windows(&self) -> usize {
        self.streams
            .values()
            .filter(|s| s.life() == Life::Open)
            .map(|s| s.recv_window.window() as usize)
            .sum()
    }

    /// Checks the live count against the streams' lifecycles.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(super) fn assert_invariants(&self) {
        let open = self
            .streams
            .values()
            .filter(|s| s.life() == Life::Open)
            .count();
        assert_eq!(open, self.live, "live stream count");
    }
}

/// One stream, borrowed from the [`Store`] with the session's live count.
pub(super) struct StreamEntry<'a> {
    entry: hash_map::OccupiedEntry<'a, u32, Stream>,
    live: &'a mut usize,
}

impl StreamEntry<'_> {
    pub(super) fn sid(&self) -> u32 {
        *self.entry.key()
    }

    pub(super) fn stream(&mut self) -> &mut Stream {
        self.entry.get_mut()
    }

    /// The application lets go of the stream: it stops counting as live and its unread
    /// data is dropped. Returns how many bytes were dropped, or `None` if it was let go
    /// already.
    pub(super) fn release(&mut self) -> Option<usize> {
        let s = self.entry.get_mut();
        let was = s.life();
        let dropped = s.release()?;
        if was == Life::Open {
            *self.live -= 1;
        }
        Some(dropped)
    }

    /// Moves the stream on after a change: a stream whose FINs crossed and whose data was
    /// all read is done (its buffers freed, no longer live); a released one with nothing
    /// left to send is forgotten.
    pub(super) fn settle(mut self) {
        let s = self.entry.get_mut();
        if s.finish_if_done() {
            *self.live -= 1;
        }
        if s.forgettable() {
            self.entry.remove();
        }
    }
}
