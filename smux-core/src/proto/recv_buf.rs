//! A stream's received data not yet read: whole payloads and packed small pieces, in order.

use super::pool::RecvPool;
use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;

/// Received pieces shorter than this are packed together into one buffer, so that a flood
/// of tiny frames costs no more memory per byte than large ones.
pub(super) const PACK_BELOW: usize = 1024;
/// The most bytes packed together before they are sealed into one piece.
pub(super) const PACK_BUFFER: usize = 4096;
/// The packing buffer's first size.
const PACK_FIRST: usize = 64;

/// Unread bytes of one stream.
#[derive(Debug, Default)]
pub(super) struct RecvBuffer {
    /// Received payloads not yet read, in order; then `tail`.
    pieces: VecDeque<Bytes>,
    /// Small pieces received after `pieces`, packed together.
    tail: BytesMut,
    /// Bytes in `pieces` and `tail`.
    len: usize,
}

impl RecvBuffer {
    /// Unread bytes.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores a received piece, copying it: exactly sized if large, packed if small. The
    /// packing buffer grows with what it holds (doubling, from a few bytes), so a stream that
    /// received a few bytes holds a few dozen, not a whole buffer.
    pub(super) fn push_packed(&mut self, piece: &[u8], pool: &mut RecvPool) {
        if piece.len() >= PACK_BELOW {
            self.push_whole(Bytes::copy_from_slice(piece), pool);
            return;
        }
        self.len += piece.len();
        if self.tail.len() + piece.len() > PACK_BUFFER {
            pool.grow_queue(&mut self.pieces, 1);
            self.seal_tail();
        }
        let need = self.tail.len() + piece.len();
        if need > self.tail.capacity() {
            // Grow by hand: `BytesMut` would keep the space of bytes already read in front of
            // the data and double that too, so partial reads would let the buffer creep past
            // `PACK_BUFFER`.
            let mut grown =
                BytesMut::with_capacity(need.next_power_of_two().clamp(PACK_FIRST, PACK_BUFFER));
            grown.extend_from_slice(&self.tail);
            self.tail = grown;
        }
        self.tail.extend_from_slice(piece);
    }

    /// Stores a whole received payload as it is.
    pub(super) fn push_whole(&mut self, piece: Bytes, pool: &mut RecvPool) {
        self.len += piece.len();
        pool.grow_queue(&mut self.pieces, 2);
        self.seal_tail();
        self.pieces.push_back(piece);
    }

    /// Moves the packed small pieces into the queue, as an exact copy so that the packing
    /// buffer is reused rather than pinned.
    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            self.pieces.push_back(Bytes::copy_from_slice(&self.tail));
            self.tail.clear();
        }
    }

    /// Copies buffered data into `buf`; returns how much. Pieces read to their end go back
    /// to `pool`.
    #[cfg(test)]
    pub(super) fn read_into(&mut self, buf: &mut [u8], pool: &mut RecvPool) -> usize {
        let mut n = 0;
        self.read_with(
            buf.len(),
            &mut |piece| {
                buf[n..n + piece.len()].copy_from_slice(piece);
                n += piece.len();
            },
            pool,
        )
    }

    /// Hands up to `max` buffered bytes, in order, to `sink` (one call per contiguous
    /// piece); returns how many. Pieces read to their end go back to `pool`.
    pub(super) fn read_with(
        &mut self,
        max: usize,
        sink: &mut dyn FnMut(&[u8]),
        pool: &mut RecvPool,
    ) -> usize {
        let mut n = 0;
        while n < max {
            let Some(front) = self.pieces.front_mut() else {
                let take = self.tail.len().min(max - n);
                if take > 0 {
                    sink(&self.tail[..take]);
                    self.tail.advance(take);
                }
                n += take;
                break;
            };
            let take = front.len().min(max - n);
            sink(&front[..take]);
            front.advance(take);
            if front.is_empty() {
                if let Some(done) = self.pieces.pop_front() {
                    pool.give(done);
                }
            }
            n += take;
        }
        self.len -= n;
        self.release_if_drained(pool);
        n
    }

    /// Takes up to `max` bytes of the next buffered piece without copying it again.
    pub(super) fn read_chunk(&mut self, max: usize, pool: &mut RecvPool) -> Option<Bytes> {
        if self.pieces.is_empty() {
            self.seal_tail();
        }
        let front = self.pieces.front_mut()?;
        let chunk = if front.len() <= max {
            self.pieces.pop_front()?
        } else {
            front.split_to(max)
        };
        self.len -= chunk.len();
        self.release_if_drained(pool);
        Some(chunk)
    }

    /// An idle stream keeps no receive memory; a large emptied queue goes to the pool.
    fn release_if_drained(&mut self, pool: &mut RecvPool) {
        if self.len == 0 {
            self.tail = BytesMut::new();
            if self.pieces.capacity() > 4 {
                pool.keep_queue(std::mem::take(&mut self.pieces));
            }
        }
    }

    /// Drops every unread byte and the memory that held them; returns how many.
    pub(super) fn discard(&mut self) -> usize {
        std::mem::take(self).len
    }

    /// Checks the byte count and the packing bound.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(super) fn assert_invariants(&self, sid: u32) {
        assert_eq!(
            self.len,
            self.pieces.iter().map(Bytes::len).sum::<usize>() + self.tail.len(),
            "sid {sid}: recv_len"
        );
        assert!(
            self.tail.capacity() <= PACK_BUFFER,
            "sid {sid}: packing buffer grew"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small pieces pushed between partial reads never grow the packing buffer past
    /// `PACK_BUFFER` (found by the proptest: `BytesMut` kept the read-off front and doubled it).
    #[test]
    fn packing_buffer_stays_bounded_under_partial_reads() {
        let mut s = RecvBuffer::default();
        let mut pool = RecvPool::default();
        let mut expect = std::collections::VecDeque::new();
        let mut next = 0u8;
        for round in 0..2000usize {
            let len = 1 + (round * 37) % (PACK_BELOW - 1);
            let piece: Vec<u8> = (0..len)
                .map(|_| {
                    next = next.wrapping_add(1);
                    next
                })
                .collect();
            expect.extend(piece.iter().copied());
            s.push_packed(&piece, &mut pool);
            assert!(s.tail.capacity() <= PACK_BUFFER, "round {round}");
            let mut buf = vec![0; 1 + (round * 53) % 700];
            let n = s.read_into(&mut buf, &mut pool);
            for b in &buf[..n] {
                assert_eq!(Some(*b), expect.pop_front(), "round {round}");
            }
            assert_eq!(s.len, expect.len());
        }
    }

    /// A full-frame buffer read to its end comes back and is handed out again for the next
    /// payload of the same size: the steady state allocates nothing.
    #[test]
    fn read_pieces_are_reused_for_the_same_size() {
        let mut pool = RecvPool::default();
        let mut s = RecvBuffer::default();
        let mut first = pool.take(4096);
        first.extend_from_slice(&[7; 4096]);
        let first = first.freeze();
        let addr = first.as_ptr();
        s.push_whole(first, &mut pool);
        let mut out = vec![0; 1000];
        while s.len > 0 {
            s.read_into(&mut out, &mut pool);
        }
        assert_eq!(pool.held(), 4096);
        assert!(
            pool.take(100).capacity() == 100,
            "other sizes get a new buffer"
        );
        let again = pool.take(4096);
        assert_eq!(again.as_ptr(), addr, "the same allocation");
        assert_eq!((again.len(), again.capacity()), (0, 4096));
        assert_eq!(pool.held(), 0);
    }

    /// A drained stream's grown piece queue is kept by the pool and reused by the next
    /// stream whose queue must grow, instead of growing from nothing again.
    #[test]
    fn emptied_queues_are_reused() {
        let mut pool = RecvPool::default();
        let mut a = RecvBuffer::default();
        for _ in 0..64 {
            a.push_whole(Bytes::from(vec![1u8; 2048]), &mut pool);
        }
        let grown = a.pieces.capacity();
        let mut out = vec![0u8; 1 << 20];
        a.read_into(&mut out, &mut pool);
        assert_eq!(a.pieces.capacity(), 0, "a drained stream keeps no queue");
        assert_eq!(pool.spare_queue_capacity(), grown);
        let mut b = RecvBuffer::default();
        for _ in 0..8 {
            b.push_whole(Bytes::from(vec![2u8; 2048]), &mut pool);
        }
        assert_eq!(b.pieces.capacity(), grown, "the kept queue was taken");
        assert_eq!(b.len, 8 * 2048);
        pool.clear();
        assert_eq!((pool.held(), pool.spare_queue_capacity()), (0, 0));
    }
}
