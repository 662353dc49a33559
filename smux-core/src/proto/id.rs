//! Stream ids: which end opens which, and the next one to open.

use std::fmt;

/// Which end of the connection this is. It decides the stream ids: the client opens odd
/// ids from 3, the server even ids from 2 (from [`Config::first_stream_id`](crate::Config::first_stream_id) if set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Opens streams 3, 5, 7, ...
    Client,
    /// Opens streams 2, 4, 6, ...
    Server,
}

/// A stream's id, as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u32);

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Hands out the ids this end opens, in order, two apart.
#[derive(Debug)]
pub(super) struct IdAllocator {
    /// The next id to open; past `u32::MAX` when exhausted.
    next: u64,
}

impl IdAllocator {
    /// Starts at Go's first id for `role` unless the config names one, kept to the role's
    /// parity.
    pub(super) fn new(role: Role, configured: Option<u32>) -> Self {
        let odd = role == Role::Client;
        let next = match configured {
            None if odd => 3,
            None => 2,
            Some(id) => u64::from(id) + u64::from((id % 2 == 1) != odd),
        };
        Self { next }
    }

    /// The next id that is not `taken`, or `None` once the ids are exhausted. Ids the peer
    /// already opened are skipped (nothing stops it from using ours; Go would replace its
    /// stream, we leave it alone).
    pub(super) fn next(&mut self, taken: impl Fn(u32) -> bool) -> Option<u32> {
        loop {
            let sid = u32::try_from(self.next).ok()?;
            self.next += 2;
            if !taken(sid) {
                return Some(sid);
            }
        }
    }
}
