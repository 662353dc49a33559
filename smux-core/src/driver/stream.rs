//! Stream handles: the whole stream and its two owned halves.

use super::{store, Shared};
use crate::error::{Error, StreamError};
use crate::proto::StreamId;
use crate::sync::Arc;
use bytes::Bytes;
use futures_io::{AsyncRead, AsyncWrite};
use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A reference to one stream of a session, holding `refs` of its handle count.
struct Handle {
    shared: Arc<Shared>,
    id: StreamId,
    refs: u8,
}

impl Handle {
    fn new(shared: Arc<Shared>, id: StreamId, refs: u8) -> Self {
        {
            let mut st = shared.lock();
            st.handles += usize::from(refs);
            st.slots.entry(id.0).or_default().refs += refs;
        }
        Self { shared, id, refs }
    }

    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut n = 0;
        self.poll_read_with(cx, buf.len(), &mut |piece| {
            buf[n..n + piece.len()].copy_from_slice(piece);
            n += piece.len();
        })
    }

    fn poll_read_with(
        &self,
        cx: &mut Context<'_>,
        max: usize,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Poll<io::Result<usize>> {
        let mut st = self.shared.lock();
        let stalled = !st.engine.wants_input();
        match st.engine.read_with(self.id, max, sink) {
            Ok(n) => {
                // Reading may have queued an UPD or reopened the session budget.
                if n > 0 && (st.engine.wants_transmit() || (stalled && st.engine.wants_input())) {
                    st.wake_driver();
                }
                Poll::Ready(Ok(n))
            }
            Err(StreamError::Blocked) => {
                let slot = st
                    .slots
                    .get_mut(&self.id.0)
                    .expect("a live handle has a slot");
                store(&mut slot.read, cx.waker());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(map_error(e))),
        }
    }

    fn poll_read_chunk(&self, cx: &mut Context<'_>, max: usize) -> Poll<io::Result<Bytes>> {
        let mut st = self.shared.lock();
        let stalled = !st.engine.wants_input();
        match st.engine.read_chunk(self.id, max) {
            Ok(chunk) => {
                let n = chunk.as_ref().map_or(0, Bytes::len);
                if n > 0 && (st.engine.wants_transmit() || (stalled && st.engine.wants_input())) {
                    st.wake_driver();
                }
                Poll::Ready(Ok(chunk.unwrap_or_default()))
            }
            Err(StreamError::Blocked) => {
                let slot = st
                    .slots
                    .get_mut(&self.id.0)
                    .expect("a live handle has a slot");
                store(&mut slot.read, cx.waker());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(map_error(e))),
        }
    }

    fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let mut st = self.shared.lock();
        match st.engine.write(self.id, data) {
            Ok(n) => {
                if n > 0 {
                    st.wake_driver();
                }
                Poll::Ready(Ok(n))
            }
            Err(StreamError::Blocked) => {
                let slot = st
                    .slots
                    .get_mut(&self.id.0)
                    .expect("a live handle has a slot");
                store(&mut slot.write, cx.waker());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(map_error(e))),
        }
    }

    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut st = self.shared.lock();
        match st.engine.poll_flushed(self.id) {
            Ok(true) => Poll::Ready(Ok(())),
            Ok(false) => {
                let slot = st
                    .slots
                    .get_mut(&self.id.0)
                    .expect("a live handle has a slot");
                store(&mut slot.write, cx.waker());
                st.wake_driver();
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(map_error(e))),
        }
    }

    fn poll_shutdown(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        {
            let mut st = self.shared.lock();
            if let Err(e) = st.engine.finish(self.id) {
                return Poll::Ready(Err(map_error(e)));
            }
            st.wake_driver();
        }
        self.poll_flush(cx)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.handles -= usize::from(self.refs);
        let slot = st
            .slots
            .get_mut(&self.id.0)
            .expect("a live handle has a slot");
        slot.refs -= self.refs;
        if slot.refs == 0 {
            st.slots.remove(&self.id.0);
            // Queued data still goes, then a FIN; unread data is dropped.
            st.engine.close_stream(self.id);
            st.wake_driver();
        } else if st.handles == 0 {
            st.wake_driver();
        }
    }
}

/// Maps an engine error to the `io::Error` a reader or writer sees.
fn map_error(e: StreamError) -> io::Error {
    match e {
        StreamError::SessionClosed(reason) => Error::Closed(reason).into(),
        StreamError::WriteClosed => Error::WriteClosed.into(),
        StreamError::Blocked => io::ErrorKind::WouldBlock.into(),
        StreamError::UnknownStream => {
            io::Error::new(io::ErrorKind::NotConnected, "the stream was closed")
        }
    }
}

/// A full-duplex byte stream inside a session. Implements futures-io
/// [`AsyncRead`] + [`AsyncWrite`]; the runtime adapters add their own ecosystem's traits.
///
/// * `poll_close` (futures-io) is a half-close: a FIN follows the data already written,
///   the stream stays readable, and later writes fail with `BrokenPipe`. It is idempotent.
/// * Reading gives end of stream (`Ok(0)`) once the peer's FIN came and all data before it
///   was read. If the session ends first, buffered data is still read, then the error.
/// * Dropping the stream sends its queued data, then a FIN, and discards unread data.
/// * One task at a time reads and one writes (they may differ: see
///   [`into_split`](Self::into_split)). Each direction keeps one waker, so if two tasks wait
///   on the same direction, only the one that polled last is woken.
pub struct Stream {
    handle: Handle,
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("id", &self.handle.id)
            .finish()
    }
}

impl Stream {
    pub(crate) fn register(shared: Arc<Shared>, id: StreamId) -> Self {
        Self {
            handle: Handle::new(shared, id, 2),
        }
    }

    /// The stream id, as on the wire.
    pub fn id(&self) -> u32 {
        self.handle.id.0
    }

    /// Reads into `buf`; `Ok(0)` is end of stream.
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.handle.poll_read(cx, buf)
    }

    /// Takes up to `max` bytes of received data without copying; empty is end of stream.
    pub fn poll_read_chunk(&self, cx: &mut Context<'_>, max: usize) -> Poll<io::Result<Bytes>> {
        self.handle.poll_read_chunk(cx, max)
    }

    /// Reads up to `max` bytes by handing them to `sink`, one call per contiguous piece,
    /// while the session's lock is held: for a destination that is not an initialized
    /// slice, such as tokio's `ReadBuf`, without zeroing it or copying twice. `Ok(0)` with
    /// `max > 0` is the end of the stream. Keep `sink` short: it runs under the lock.
    pub fn poll_read_with(
        &self,
        cx: &mut Context<'_>,
        max: usize,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Poll<io::Result<usize>> {
        self.handle.poll_read_with(cx, max, sink)
    }

    /// Queues data; Pending while the stream's send buffer is full.
    pub fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.handle.poll_write(cx, data)
    }

    /// Ready once every byte written so far was handed to the connection writer.
    pub fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.handle.poll_flush(cx)
    }

    /// Half-closes: a FIN follows the data written; ready once it is handed over.
    pub fn poll_shutdown(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.handle.poll_shutdown(cx)
    }

    /// Splits into an owned read half and write half, with no extra lock. The stream is
    /// closed when both are dropped; [`ReadHalf::reunite`] puts them back together.
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        let shared = self.handle.shared.clone();
        let id = self.handle.id;
        let read = ReadHalf {
            handle: Handle::new(shared.clone(), id, 1),
        };
        let write = WriteHalf {
            handle: Handle::new(shared, id, 1),
        };
        (read, write)
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.handle.poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.handle.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.handle.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.handle.poll_shutdown(cx)
    }
}

/// The read half of a [`Stream`], from [`Stream::into_split`].
pub struct ReadHalf {
    handle: Handle,
}

/// The write half of a [`Stream`], from [`Stream::into_split`].
pub struct WriteHalf {
    handle: Handle,
}

impl fmt::Debug for ReadHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadHalf")
            .field("id", &self.handle.id)
            .finish()
    }
}

impl fmt::Debug for WriteHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteHalf")
            .field("id", &self.handle.id)
            .finish()
    }
}

/// [`ReadHalf::reunite`] was given halves of different streams; they are handed back.
#[derive(Debug)]
pub struct ReuniteError(pub ReadHalf, pub WriteHalf);

impl fmt::Display for ReuniteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the halves belong to different streams")
    }
}

impl std::error::Error for ReuniteError {}

impl ReadHalf {
    /// The stream id.
    pub fn id(&self) -> u32 {
        self.handle.id.0
    }

    /// Reads into `buf`; `Ok(0)` is end of stream.
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.handle.poll_read(cx, buf)
    }

    /// Takes up to `max` bytes without copying; empty is end of stream.
    pub fn poll_read_chunk(&self, cx: &mut Context<'_>, max: usize) -> Poll<io::Result<Bytes>> {
        self.handle.poll_read_chunk(cx, max)
    }

    /// Reads up to `max` bytes by handing them to `sink`, one call per contiguous piece,
    /// while the session's lock is held: for a destination that is not an initialized
    /// slice, such as tokio's `ReadBuf`, without zeroing it or copying twice. `Ok(0)` with
    /// `max > 0` is the end of the stream. Keep `sink` short: it runs under the lock.
    pub fn poll_read_with(
        &self,
        cx: &mut Context<'_>,
        max: usize,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Poll<io::Result<usize>> {
        self.handle.poll_read_with(cx, max, sink)
    }

    /// Puts the halves of one stream back together.
    pub fn reunite(self, write: WriteHalf) -> Result<Stream, ReuniteError> {
        if !Arc::ptr_eq(&self.handle.shared, &write.handle.shared)
            || self.handle.id != write.handle.id
        {
            return Err(ReuniteError(self, write));
        }
        Ok(Stream::register(self.handle.shared.clone(), self.handle.id))
    }
}

impl WriteHalf {
    /// The stream id.
    pub fn id(&self) -> u32 {
        self.handle.id.0
    }

    /// Queues data; Pending while the stream's send buffer is full.
    pub fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.handle.poll_write(cx, data)
    }

    /// Ready once every byte written so far was handed to the connection writer.
    pub fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.handle.poll_flush(cx)
    }

    /// Half-closes the stream.
    pub fn poll_shutdown(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.handle.poll_shutdown(cx)
    }
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.handle.poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.handle.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.handle.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.handle.poll_shutdown(cx)
    }
}
