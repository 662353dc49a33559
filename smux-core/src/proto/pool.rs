//! Buffer pools: allocations kept for reuse so that a steady flow allocates nothing, each
//! bounded and let go once the flow stops (the engine's `PoolRelease` timer).

use super::recv_buf::PACK_BELOW;
use super::timer::{Timer, Timers};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::time::Instant;

/// The most written-out send buffers kept for reuse.
pub(super) const SEND_POOL: usize = 4;

/// How long recycled buffers are kept, at most, once no large payload moves.
pub(super) const POOL_IDLE: std::time::Duration = std::time::Duration::from_secs(2);

/// Recycled buffers were just used: keep them 1 to 2 s more. The deadline moves at most
/// about once a second, so that a driver's timer is not reset per frame.
pub(super) fn keep_pools(timers: &mut Timers, now: Instant) {
    let soon = timers
        .get(Timer::PoolRelease)
        .is_none_or(|at| at < now + POOL_IDLE / 2);
    if soon {
        timers.set(Timer::PoolRelease, now + POOL_IDLE);
    }
}

/// The largest spare piece queue a session keeps (32 bytes an entry).
const SPARE_QUEUE_MAX: usize = 4096;

/// Buffers of payloads the application has read, kept for the next payloads of the same
/// size: a steady flow of full frames then allocates nothing. The engine trims it to the
/// unused part of the receive budget, so buffered data and recycled buffers together stay
/// within the budget, and empties it once no large payload arrived for a while. A buffer
/// that is still shared (a chunk the application holds) is never taken back.
#[derive(Debug, Default)]
pub(super) struct RecvPool {
    free: Vec<BytesMut>,
    bytes: usize,
    /// One emptied piece queue, the largest lately let go by a drained stream, for the next
    /// stream whose queue must grow.
    queue: VecDeque<Bytes>,
    /// Buffers allocated because none fitted.
    misses: u64,
}

impl RecvPool {
    /// An empty buffer of exactly `len` bytes' capacity, so that freezing it full needs no
    /// further allocation.
    pub(super) fn take(&mut self, len: usize) -> BytesMut {
        match self.free.iter().rposition(|b| b.capacity() == len) {
            Some(i) => {
                self.bytes -= len;
                self.free.swap_remove(i)
            }
            None => {
                self.misses += 1;
                BytesMut::with_capacity(len)
            }
        }
    }

    /// Takes back a piece that was read to its end, if nobody else holds it.
    pub(super) fn give(&mut self, piece: Bytes) {
        let Ok(mut buf) = piece.try_into_mut() else {
            return;
        };
        buf.clear();
        // Reclaims the space of the bytes already read; never allocates.
        if buf.try_reclaim(PACK_BELOW) {
            self.bytes += buf.capacity();
            self.free.push(buf);
        }
    }

    /// Drops buffers, oldest first, until at most `limit` bytes are held.
    pub(super) fn trim(&mut self, limit: usize) {
        let mut drop = 0;
        while self.bytes > limit {
            self.bytes -= self.free[drop].capacity();
            drop += 1;
        }
        self.free.drain(..drop);
    }

    /// Bytes held for reuse.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(super) fn held(&self) -> usize {
        self.bytes
    }

    /// Buffers allocated because none fitted, since the session started.
    #[cfg(test)]
    pub(super) fn misses(&self) -> u64 {
        self.misses
    }

    /// Keeps a drained stream's emptied queue if it is the largest so far.
    pub(super) fn keep_queue(&mut self, queue: VecDeque<Bytes>) {
        if queue.capacity() > self.queue.capacity() && queue.capacity() <= SPARE_QUEUE_MAX {
            self.queue = queue;
        }
    }

    /// Makes room for `more` pieces in `queue`, with the spare queue if it is larger.
    pub(super) fn grow_queue(&mut self, queue: &mut VecDeque<Bytes>, more: usize) {
        if queue.capacity() - queue.len() < more && self.queue.capacity() > queue.capacity() {
            let mut spare = std::mem::take(&mut self.queue);
            spare.extend(queue.drain(..));
            self.queue = std::mem::replace(queue, spare);
        }
    }

    /// The capacity of the spare piece queue kept.
    #[cfg(test)]
    pub(super) fn spare_queue_capacity(&self) -> usize {
        self.queue.capacity()
    }

    /// Lets everything go.
    pub(super) fn clear(&mut self) {
        self.trim(0);
        self.queue = VecDeque::new();
    }
}

/// Send buffers whose frames have all been written (handed back by the `Transmit`), kept
/// for streams whose own buffer is still pinned by frames in flight.
#[derive(Debug, Default)]
pub(super) struct SendPool {
    free: Vec<BytesMut>,
}

impl SendPool {
    /// Keeps a written-out buffer if there is room; returns whether it was kept.
    pub(super) fn give(&mut self, buf: BytesMut) -> bool {
        if self.free.len() < SEND_POOL {
            self.free.push(buf);
            return true;
        }
        false
    }

    /// A kept buffer that can hold `need` bytes from its start, if any.
    pub(super) fn take(&mut self, need: usize) -> Option<BytesMut> {
        let i = self.free.iter_mut().position(|b| b.try_reclaim(need))?;
        Some(self.free.swap_remove(i))
    }

    /// Buffers kept.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.free.len()
    }

    /// Lets everything go.
    pub(super) fn clear(&mut self) {
        self.free = Vec::new();
    }

    #[cfg(any(test, feature = "fuzzing"))]
    pub(super) fn assert_invariants(&self) {
        assert!(self.free.len() <= SEND_POOL, "send pool over its bound");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A piece someone else still holds is not taken back, and trimming keeps the newest
    /// buffers within the limit.
    #[test]
    fn shared_pieces_are_not_reused_and_trim_bounds_the_pool() {
        let mut pool = RecvPool::default();
        let piece = Bytes::from(vec![1u8; 2048]);
        let held = piece.clone();
        pool.give(piece);
        assert_eq!(pool.held(), 0);
        drop(held);
        for _ in 0..10 {
            pool.give(Bytes::from(vec![1u8; 32 * 1024]));
        }
        assert_eq!(pool.held(), 10 * 32 * 1024);
        pool.trim(100 * 1024);
        assert_eq!(pool.held(), 3 * 32 * 1024);
        pool.trim(0);
        assert_eq!(pool.held(), 0);
        assert_eq!(pool.take(32 * 1024).capacity(), 32 * 1024);
    }
}
