//! The bytes the engine wants on the connection, ready for one vectored write.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::collections::VecDeque;
use std::io::IoSlice;

/// Payloads shorter than this are copied next to their header instead of being referenced:
/// one fewer `iovec` costs less than the copy.
const COALESCE_BELOW: usize = 512;
/// The packing buffer grows by at least this much at a time: its pieces are split off as
/// they are sealed, so growing it by the few bytes of one header would allocate per frame.
const SCRATCH_BLOCK: usize = 4096;

/// Encoded frames waiting to be written, in order. Headers and small payloads are packed
/// into one contiguous buffer; large payloads are referenced without copying.
///
/// It implements [`Buf`]: write [`Buf::chunks_vectored`] to the connection and
/// [`Buf::advance`] by what was written.
#[derive(Debug, Default)]
pub struct Transmit {
    /// Sealed pieces, oldest first.
    segments: VecDeque<Bytes>,
    /// The open piece being packed; it comes after every sealed one.
    scratch: BytesMut,
    len: usize,
    /// Copy every payload into the packed buffer, for connections without vectored writes.
    pack_everything: bool,
    /// Buffers whose every frame has been written, for the engine to reuse.
    spent: Vec<BytesMut>,
}

/// The most written-out buffers a [`Transmit`] keeps for the engine.
const MAX_SPENT: usize = 4;
/// The smallest written-out buffer worth keeping.
const MIN_SPENT: usize = 16 * 1024;

impl Transmit {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends a frame header, or a small payload that goes with one (a UPD's), packed.
    pub(crate) fn push_header(&mut self, header: &[u8]) {
        self.pack(header);
    }

    /// From now on, copies payloads next to their headers too, so that the queue is one
    /// contiguous buffer: for a connection that cannot write vectors (its
    /// `poll_write_vectored` takes only the first buffer), where referencing payloads would
    /// cost a write call per header.
    pub fn pack_everything(&mut self) {
        self.pack_everything = true;
    }

    /// Whether [`pack_everything`](Self::pack_everything) was called.
    pub fn packs_everything(&self) -> bool {
        self.pack_everything
    }

    pub(crate) fn push_payload(&mut self, payload: Bytes) {
        if payload.len() < COALESCE_BELOW || self.pack_everything {
            self.pack(&payload);
        } else {
            self.len += payload.len();
            self.seal();
            self.segments.push_back(payload);
        }
    }

    fn pack(&mut self, bytes: &[u8]) {
        if self.scratch.capacity() - self.scratch.len() < bytes.len() {
            self.scratch.reserve(SCRATCH_BLOCK.max(bytes.len()));
        }
        self.scratch.put_slice(bytes);
        self.len += bytes.len();
    }

    fn seal(&mut self) {
        if !self.scratch.is_empty() {
            self.segments.push_back(self.scratch.split().freeze());
        }
    }

    /// Keeps a written piece's buffer if nothing else holds it any more: the last frame of
    /// a stream's old send buffer gives that buffer back.
    fn recycle(&mut self, done: Bytes) {
        if self.spent.len() < MAX_SPENT {
            if let Ok(mut buf) = done.try_into_mut() {
                buf.clear();
                // Only buffers worth a stream's next write; header blocks are too small.
                if buf.try_reclaim(MIN_SPENT) {
                    self.spent.push(buf);
                }
            }
        }
    }

    /// Takes the buffers kept by [`recycle`](Self::recycle).
    pub(crate) fn take_spent(&mut self) -> Option<BytesMut> {
        self.spent.pop()
    }

    /// Fills `dst` with the waiting pieces, in order; returns how many were filled.
    pub fn io_slices<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        self.chunks_vectored(dst)
    }

    /// Like [`io_slices`](Self::io_slices), but with at most `max_bytes` in all: the last
    /// piece is cut to fit (for a connection that refuses larger writes).
    pub fn io_slices_capped<'a>(&'a self, dst: &mut [IoSlice<'a>], max_bytes: usize) -> usize {
        let mut n = 0;
        let mut left = max_bytes;
        for piece in self.pieces() {
            if n == dst.len() || left == 0 {
                break;
            }
            let take = piece.len().min(left);
            dst[n] = IoSlice::new(&piece[..take]);
            left -= take;
            n += 1;
        }
        n
    }

    /// The waiting pieces, in order, none empty.
    fn pieces(&self) -> impl Iterator<Item = &[u8]> {
        self.segments
            .iter()
            .map(|b| &b[..])
            .chain(std::iter::once(&self.scratch[..]))
            .filter(|p| !p.is_empty())
    }
}

impl Buf for Transmit {
    fn remaining(&self) -> usize {
        self.len
    }

    fn chunk(&self) -> &[u8] {
        match self.segments.front() {
            Some(first) => first,
            None => &self.scratch,
        }
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.len, "advance past the end of a Transmit");
        self.len -= cnt;
        while cnt > 0 {
            match self.segments.front_mut() {
                Some(first) if first.len() <= cnt => {
                    cnt -= first.len();
                    if let Some(done) = self.segments.pop_front() {
                        self.recycle(done);
                    }
                }
                Some(first) => {
                    first.advance(cnt);
                    cnt = 0;
                }
                None => {
                    self.scratch.advance(cnt);
                    cnt = 0;
                }
            }
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        self.io_slices_capped(dst, usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_across_small_and_large_pieces() {
        let mut t = Transmit::new();
        t.push_header(b"H1");
        t.push_payload(Bytes::from_static(b"small"));
        t.push_header(b"H2");
        t.push_payload(Bytes::from(vec![b'x'; 1000]));
        t.push_header(b"H3");
        let mut expected = b"H1smallH2".to_vec();
        expected.extend(vec![b'x'; 1000]);
        expected.extend(b"H3");
        assert_eq!(t.len(), expected.len());
        let mut slices = [IoSlice::new(&[]); 8];
        assert_eq!(t.io_slices(&mut slices), 3);
        // Consume in odd steps.
        let mut out = Vec::new();
        while t.has_remaining() {
            let take = t.chunk().len().min(7);
            out.extend_from_slice(&t.chunk()[..take]);
            t.advance(take);
        }
        assert_eq!(out, expected);
        assert!(t.is_empty());
    }

    /// A capped write never exceeds the cap, cutting the last piece, and the pieces still
    /// come in order.
    #[test]
    fn capped_slices_stay_under_the_cap() {
        let mut t = Transmit::new();
        t.push_header(b"H1");
        t.push_payload(Bytes::from(vec![b'x'; 1000]));
        t.push_header(b"H2");
        t.push_payload(Bytes::from(vec![b'y'; 2000]));
        let mut out = Vec::new();
        while t.has_remaining() {
            let mut slices = [IoSlice::new(&[]); 8];
            let n = t.io_slices_capped(&mut slices, 700);
            let total: usize = slices[..n].iter().map(|s| s.len()).sum();
            assert!(total <= 700 && total > 0);
            for s in &slices[..n] {
                out.extend_from_slice(s);
            }
            t.advance(total);
        }
        let mut expected = b"H1".to_vec();
        expected.extend(vec![b'x'; 1000]);
        expected.extend(b"H2");
        expected.extend(vec![b'y'; 2000]);
        assert_eq!(out, expected);
    }

    /// Packing everything keeps the order and leaves one contiguous piece.
    #[test]
    fn packing_everything_makes_one_piece() {
        let mut t = Transmit::new();
        t.pack_everything();
        t.push_header(b"H1");
        t.push_payload(Bytes::from(vec![b'x'; 1000]));
        t.push_header(b"H2");
        t.push_payload(Bytes::from(vec![b'y'; 2000]));
        let mut slices = [IoSlice::new(&[]); 8];
        assert_eq!(t.io_slices(&mut slices), 1);
        let mut expected = b"H1".to_vec();
        expected.extend(vec![b'x'; 1000]);
        expected.extend(b"H2");
        expected.extend(vec![b'y'; 2000]);
        assert_eq!(t.chunk(), &expected[..]);
    }
}
