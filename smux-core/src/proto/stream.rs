//! One stream's state inside the engine: its receive queue, its send buffer and its
//! version-2 flow-control counters.

use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;

/// The window a version-2 sender assumes before the peer's first UPD (Go's
/// `initialPeerWindow`), whatever the peer's configuration.
pub(crate) const INITIAL_PEER_WINDOW: u32 = 262_144;

/// Received pieces shorter than this are packed together into one buffer, so that a flood
/// of tiny frames costs no more memory per byte than large ones.
pub(crate) const PACK_BELOW: usize = 1024;
/// The most bytes packed together before they are sealed into one piece.
pub(crate) const PACK_BUFFER: usize = 4096;
/// The largest spare piece queue a session keeps (32 bytes an entry).
const SPARE_QUEUE_MAX: usize = 4096;
/// The packing buffer's first size.
const PACK_FIRST: usize = 64;
/// Buffers of payloads the application has read, kept for the next payloads of the same
/// size: a steady flow of full frames then allocates nothing. The engine trims it to the
/// unused part of the receive budget, so buffered data and recycled buffers together stay
/// within the budget, and empties it once no large payload arrived for a while. A buffer
/// that is still shared (a chunk the application holds) is never taken back.
#[derive(Debug, Default)]
pub(crate) struct RecvPool {
    free: Vec<BytesMut>,
    bytes: usize,
    /// One emptied piece queue, the largest lately let go by a drained stream, for the next
    /// stream whose queue must grow.
    queue: VecDeque<Bytes>,
    /// Buffers allocated because none fitted.
    pub(crate) misses: u64,
}

impl RecvPool {
    /// An empty buffer of exactly `len` bytes' capacity, so that freezing it full needs no
    /// further allocation.
    pub(crate) fn take(&mut self, len: usize) -> BytesMut {
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
    pub(crate) fn give(&mut self, piece: Bytes) {
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
    pub(crate) fn trim(&mut self, limit: usize) {
        let mut drop = 0;
        while self.bytes > limit {
            self.bytes -= self.free[drop].capacity();
            drop += 1;
        }
        self.free.drain(..drop);
    }

    /// Bytes held for reuse.
    pub(crate) fn held(&self) -> usize {
        self.bytes
    }

    /// Keeps a drained stream's emptied queue if it is the largest so far.
    fn keep_queue(&mut self, queue: VecDeque<Bytes>) {
        if queue.capacity() > self.queue.capacity() && queue.capacity() <= SPARE_QUEUE_MAX {
            self.queue = queue;
        }
    }

    /// Makes room for `more` pieces in `queue`, with the spare queue if it is larger.
    fn grow_queue(&mut self, queue: &mut VecDeque<Bytes>, more: usize) {
        if queue.capacity() - queue.len() < more && self.queue.capacity() > queue.capacity() {
            let mut spare = std::mem::take(&mut self.queue);
            spare.extend(queue.drain(..));
            self.queue = std::mem::replace(queue, spare);
        }
    }

    /// Lets everything go.
    pub(crate) fn clear(&mut self) {
        self.trim(0);
        self.queue = VecDeque::new();
    }
}

#[derive(Debug)]
pub(crate) struct StreamState {
    /// Received payloads not yet read, in order; then `recv_tail`.
    pub(crate) recv: VecDeque<Bytes>,
    /// Small pieces received after `recv`, packed together.
    pub(crate) recv_tail: BytesMut,
    /// Bytes in `recv` and `recv_tail`.
    pub(crate) recv_len: usize,
    /// Bytes written by the application and not yet framed.
    pub(crate) send: BytesMut,

    /// The peer's FIN arrived.
    pub(crate) fin_received: bool,
    /// The application finished or closed its writing side; a FIN follows the queued data.
    pub(crate) fin_queued: bool,
    /// Our FIN is on its way.
    pub(crate) fin_sent: bool,
    /// The application let go of the stream: inbound data is dropped uncharged and the
    /// state is freed once our FIN is out.
    pub(crate) released: bool,
    /// Both FINs crossed and every byte was read: buffers are freed, only the id stays
    /// reserved until the application lets go.
    pub(crate) done: bool,

    /// Version 2 receiver: bytes read by the application (wrapping), and bytes read since
    /// the last UPD.
    pub(crate) num_read: u32,
    pub(crate) incr: u32,
    /// An UPD for this stream is queued.
    pub(crate) upd_queued: bool,

    /// Version 2 sender: bytes framed (wrapping), the peer's last `consumed`, its window.
    pub(crate) num_written: u32,
    pub(crate) peer_consumed: u32,
    pub(crate) peer_window: u32,

    /// In the round-robin queue of streams with something to send.
    pub(crate) scheduled: bool,
    /// In the engine's queue of streams whose readiness changed.
    pub(crate) dirty: bool,
    /// A reader found nothing and waits.
    pub(crate) read_waiting: bool,
    /// Readiness to report in the next event.
    pub(crate) wake_read: bool,
    pub(crate) wake_write: bool,
    /// A writer blocked on a full buffer, or a flush waits for the buffer to empty.
    pub(crate) write_waiting: bool,
    pub(crate) flush_waiting: bool,
}

impl StreamState {
    pub(crate) fn new() -> Self {
        Self {
            recv: VecDeque::new(),
            recv_tail: BytesMut::new(),
            recv_len: 0,
            send: BytesMut::new(),
            fin_received: false,
            fin_queued: false,
            fin_sent: false,
            released: false,
            done: false,
            num_read: 0,
            incr: 0,
            upd_queued: false,
            num_written: 0,
            peer_consumed: 0,
            peer_window: INITIAL_PEER_WINDOW,
            scheduled: false,
            dirty: false,
            read_waiting: false,
            wake_read: false,
            wake_write: false,
            write_waiting: false,
            flush_waiting: false,
        }
    }

    /// Bytes the version-2 window lets us send now.
    pub(crate) fn window_available(&self) -> usize {
        let inflight = self.num_written.wrapping_sub(self.peer_consumed) as i32;
        (i64::from(self.peer_window) - i64::from(inflight)).max(0) as usize
    }

    /// Stores a received piece, copying it: exactly sized if large, packed if small. The
    /// packing buffer grows with what it holds (doubling, from a few bytes), so a stream that
    /// received a few bytes holds a few dozen, not a whole buffer.
    pub(crate) fn push_recv(&mut self, piece: &[u8], pool: &mut RecvPool) {
        if piece.len() >= PACK_BELOW {
            self.push_piece(Bytes::copy_from_slice(piece), pool);
            return;
        }
        self.recv_len += piece.len();
        if self.recv_tail.len() + piece.len() > PACK_BUFFER {
            pool.grow_queue(&mut self.recv, 1);
            self.seal_tail();
        }
        let need = self.recv_tail.len() + piece.len();
        if need > self.recv_tail.capacity() {
            // Grow by hand: `BytesMut` would keep the space of bytes already read in front of
            // the data and double that too, so partial reads would let the buffer creep past
            // `PACK_BUFFER`.
            let mut grown =
                BytesMut::with_capacity(need.next_power_of_two().clamp(PACK_FIRST, PACK_BUFFER));
            grown.extend_from_slice(&self.recv_tail);
            self.recv_tail = grown;
        }
        self.recv_tail.extend_from_slice(piece);
    }

    /// Stores a whole received payload as it is.
    pub(crate) fn push_piece(&mut self, piece: Bytes, pool: &mut RecvPool) {
        self.recv_len += piece.len();
        pool.grow_queue(&mut self.recv, 2);
        self.seal_tail();
        self.recv.push_back(piece);
    }

    /// Moves the packed small pieces into the queue, as an exact copy so that the packing
    /// buffer is reused rather than pinned.
    fn seal_tail(&mut self) {
        if !self.recv_tail.is_empty() {
            self.recv.push_back(Bytes::copy_from_slice(&self.recv_tail));
            self.recv_tail.clear();
        }
    }

    /// Copies buffered data into `buf`; returns how much. Pieces read to their end go back
    /// to `pool`.
    #[cfg(test)]
    pub(crate) fn read_into(&mut self, buf: &mut [u8], pool: &mut RecvPool) -> usize {
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
    pub(crate) fn read_with(
        &mut self,
        max: usize,
        sink: &mut dyn FnMut(&[u8]),
        pool: &mut RecvPool,
    ) -> usize {
        let mut n = 0;
        while n < max {
            let Some(front) = self.recv.front_mut() else {
                let take = self.recv_tail.len().min(max - n);
                if take > 0 {
                    sink(&self.recv_tail[..take]);
                    self.recv_tail.advance(take);
                }
                n += take;
                break;
            };
            let take = front.len().min(max - n);
            sink(&front[..take]);
            front.advance(take);
            if front.is_empty() {
                if let Some(done) = self.recv.pop_front() {
                    pool.give(done);
                }
            }
            n += take;
        }
        self.recv_len -= n;
        self.release_if_drained(pool);
        n
    }

    /// Takes up to `max` bytes of the next buffered piece without copying it again.
    pub(crate) fn read_chunk(&mut self, max: usize, pool: &mut RecvPool) -> Option<Bytes> {
        if self.recv.is_empty() {
            self.seal_tail();
        }
        let front = self.recv.front_mut()?;
        let chunk = if front.len() <= max {
            self.recv.pop_front()?
        } else {
            front.split_to(max)
        };
        self.recv_len -= chunk.len();
        self.release_if_drained(pool);
        Some(chunk)
    }

    /// An idle stream keeps no receive memory; a large emptied queue goes to the pool.
    fn release_if_drained(&mut self, pool: &mut RecvPool) {
        if self.recv_len == 0 {
            self.recv_tail = BytesMut::new();
            if self.recv.capacity() > 4 {
                pool.keep_queue(std::mem::take(&mut self.recv));
            }
        }
    }

    /// Drops every unread byte; returns how many.
    pub(crate) fn discard_recv(&mut self) -> usize {
        let n = self.recv_len;
        self.recv = VecDeque::new();
        self.recv_tail = BytesMut::new();
        self.recv_len = 0;
        n
    }

    /// Something is waiting to be framed: data, or a FIN after it.
    pub(crate) fn has_pending_send(&self) -> bool {
        !self.send.is_empty() || (self.fin_queued && !self.fin_sent)
    }

    /// Frees what a finished stream no longer needs.
    pub(crate) fn shrink(&mut self) {
        self.recv = VecDeque::new();
        self.recv_tail = BytesMut::new();
        self.send = BytesMut::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small pieces pushed between partial reads never grow the packing buffer past
    /// `PACK_BUFFER` (found by the proptest: `BytesMut` kept the read-off front and doubled it).
    #[test]
    fn packing_buffer_stays_bounded_under_partial_reads() {
        let mut s = StreamState::new();
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
            s.push_recv(&piece, &mut pool);
            assert!(s.recv_tail.capacity() <= PACK_BUFFER, "round {round}");
            let mut buf = vec![0; 1 + (round * 53) % 700];
            let n = s.read_into(&mut buf, &mut pool);
            for b in &buf[..n] {
                assert_eq!(Some(*b), expect.pop_front(), "round {round}");
            }
            assert_eq!(s.recv_len, expect.len());
        }
    }
}

#[cfg(test)]
mod pool_tests {
    use super::*;

    /// A full-frame buffer read to its end comes back and is handed out again for the next
    /// payload of the same size: the steady state allocates nothing.
    #[test]
    fn read_pieces_are_reused_for_the_same_size() {
        let mut pool = RecvPool::default();
        let mut s = StreamState::new();
        let mut first = pool.take(4096);
        first.extend_from_slice(&[7; 4096]);
        let first = first.freeze();
        let addr = first.as_ptr();
        s.push_piece(first, &mut pool);
        let mut out = vec![0; 1000];
        while s.recv_len > 0 {
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
        let mut a = StreamState::new();
        for _ in 0..64 {
            a.push_piece(Bytes::from(vec![1u8; 2048]), &mut pool);
        }
        let grown = a.recv.capacity();
        let mut out = vec![0u8; 1 << 20];
        a.read_into(&mut out, &mut pool);
        assert_eq!(a.recv.capacity(), 0, "a drained stream keeps no queue");
        assert_eq!(pool.queue.capacity(), grown);
        let mut b = StreamState::new();
        for _ in 0..8 {
            b.push_piece(Bytes::from(vec![2u8; 2048]), &mut pool);
        }
        assert_eq!(b.recv.capacity(), grown, "the kept queue was taken");
        assert_eq!(b.recv_len, 8 * 2048);
        pool.clear();
        assert_eq!((pool.held(), pool.queue.capacity()), (0, 0));
    }

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
