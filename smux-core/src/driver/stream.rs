//! Stream handles: a [`Stream`] is its two owned halves, [`OwnedReadHalf`] and
//! [`OwnedWriteHalf`]. Splitting and reuniting move them; nothing is counted per stream.
//! The stream is let go once both halves are dropped.

use super::shared::Locked;
use super::Shared;
use crate::error::{Error, StreamError};
use crate::proto::{Engine, StreamId};
use crate::sync::Arc;
use bytes::Bytes;
use futures_io::{AsyncRead, AsyncWrite};
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Which half a handle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Half {
    Read,
    Write,
}

/// What both halves hold: the session and the stream's id.
struct Handle {
    shared: Arc<Shared>,
    id: StreamId,
    half: Half,
}

impl Handle {
    /// Runs `op` on the engine; on [`StreamError::Blocked`], keeps `cx`'s waker for this
    /// half and reports Pending. On success `then` gets the lock, to hand the driver the
    /// work the operation made (queued data, an UPD, room in the budget) before it is
    /// released.
    fn poll_op<T>(
        &self,
        cx: &mut Context<'_>,
        op: impl FnOnce(&mut Engine, StreamId) -> Result<T, StreamError>,
        then: impl FnOnce(&T, &Shared, Locked<'_>, &mut Context<'_>),
    ) -> Poll<io::Result<T>> {
        let shared = &*self.shared;
        let mut st = shared.lock();
        match op(&mut st.engine, self.id) {
            Ok(value) => {
                then(&value, shared, st, cx);
                Poll::Ready(Ok(value))
            }
            Err(StreamError::Blocked) => {
                st.wait(self.id, self.half, cx.waker());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(map_error(e))),
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.handles -= 1;
        if st.release_half(self.id, self.half) {
            // Both halves are gone: queued data still goes, then a FIN; unread data is
            // dropped.
            st.engine.close_stream(self.id);
            st.wake_driver();
        } else if self.half == Half::Read {
            // Nobody reads it any more: what it holds and what comes is dropped, so that it
            // keeps no budget (and, in version 2, the peer still gets window).
            st.engine.stop_reading(self.id);
            st.wake_driver();
        } else if st.handles == 0 {
            st.wake_driver();
        }
    }
}

/// The read half of a [`Stream`], from [`Stream::into_split`]. Implements futures-io
/// [`AsyncRead`].
///
/// Reading gives end of stream (`Ok(0)`, or `None` from the chunk reads) once the peer's FIN
/// came and every byte before it was read. If the session ends first, buffered data is
/// still read, then the error says why it ended.
///
/// Every read is cancel-safe: a read that returns Pending or is dropped took nothing.
///
/// Dropping the read half while the write half lives on stops reading: unread data and
/// whatever the peer sends later is discarded (counted in `Stats::discarded_bytes`), so a
/// stream nobody reads never holds the session's receive budget, and in version 2 the
/// peer's writer still gets window until it finishes.
pub struct OwnedReadHalf {
    handle: Handle,
}

/// The write half of a [`Stream`], from [`Stream::into_split`]. Implements futures-io
/// [`AsyncWrite`]; `poll_close` half-closes.
///
/// Writes are cancel-safe: a write that returns Pending or is dropped queued nothing.
pub struct OwnedWriteHalf {
    handle: Handle,
}

impl OwnedReadHalf {
    /// The stream's id.
    pub fn id(&self) -> StreamId {
        self.handle.id
    }

    /// Reads into `buf`; `Ok(0)` (with a non-empty `buf`) is the end of the stream.
    pub fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.poll_take(cx, |e, id| e.read(id, buf), |&n| n > 0)
    }

    /// Takes up to `max` bytes of the next received payload without copying it; `None` is
    /// the end of the stream (a `max` of 0 gives an empty chunk, never `None`).
    pub fn poll_read_chunk(
        &mut self,
        cx: &mut Context<'_>,
        max: usize,
    ) -> Poll<io::Result<Option<Bytes>>> {
        self.poll_take(
            cx,
            |e, id| e.read_chunk(id, max),
            |chunk| chunk.as_ref().is_some_and(|c| !c.is_empty()),
        )
    }

    /// One read: `take` takes data from the engine, `took` says whether it got any. A
    /// read that took data wakes the driver only if that gave it work: an UPD to send, or
    /// a session budget that was spent and now lets it read the connection again.
    fn poll_take<T>(
        &mut self,
        cx: &mut Context<'_>,
        take: impl FnOnce(&mut Engine, StreamId) -> Result<T, StreamError>,
        took: impl FnOnce(&T) -> bool,
    ) -> Poll<io::Result<T>> {
        self.handle
            .poll_op(
                cx,
                |e, id| {
                    let stalled = !e.wants_input();
                    take(e, id).map(|data| (data, stalled))
                },
                |(data, stalled), _, mut st, _| {
                    let e = &st.engine;
                    if took(data) && (e.wants_transmit() || (*stalled && e.wants_input())) {
                        st.wake_driver();
                    }
                },
            )
            .map_ok(|(data, _)| data)
    }

    /// [`poll_read_chunk`](Self::poll_read_chunk) as a future. Cancel-safe.
    pub async fn read_chunk(&mut self, max: usize) -> io::Result<Option<Bytes>> {
        poll_fn(|cx| self.poll_read_chunk(cx, max)).await
    }

    /// The window this end offers the peer on this stream now (version 2; it grows with
    /// window tuning), or `None` once the session forgot the stream.
    pub fn receive_window(&self) -> Option<u32> {
        self.handle
            .shared
            .lock()
            .engine
            .stream_window(self.handle.id)
    }

    /// Puts the halves of one stream back together; hands them back if they are of
    /// different streams.
    pub fn reunite(self, write: OwnedWriteHalf) -> Result<Stream, ReuniteError> {
        if !Arc::ptr_eq(&self.handle.shared, &write.handle.shared)
            || self.handle.id != write.handle.id
        {
            return Err(ReuniteError(self, write));
        }
        Ok(Stream { read: self, write })
    }
}

impl OwnedWriteHalf {
    /// The stream's id.
    pub fn id(&self) -> StreamId {
        self.handle.id
    }

    /// Queues data; Pending while the stream's send buffer is full.
    pub fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.handle.poll_op(
            cx,
            |e, id| e.write(id, data),
            |&n, shared, st, cx| {
                if n > 0 {
                    // The frames go out from here if the connection is idle.
                    shared.write_now(st, cx);
                }
            },
        )
    }

    /// A socket's flush: Ready as soon as the bytes written are the session's to send,
    /// which they are once `poll_write` took them, so this never waits (hyper and
    /// `copy_bidirectional` flush after every write and must not stall on the peer). It
    /// fails only if the session ended with bytes of this stream still unsent. To wait
    /// until they (and the FIN) have gone out, use [`poll_sent`](Self::poll_sent).
    pub fn poll_flush(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut st = self.handle.shared.lock();
        match st.engine.poll_flushed(self.handle.id) {
            Ok(_) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(map_error(e))),
        }
    }

    /// Half-closes: the FIN is committed and follows the data already written; Ready at
    /// once (the FIN goes out after the data, whatever the peer reads). Later writes fail
    /// with `BrokenPipe`; finishing twice is a no-op. Cancel-safe: once called, the FIN is
    /// committed even if the future is dropped.
    pub fn poll_shutdown(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut st = self.handle.shared.lock();
        match st.engine.finish(self.handle.id) {
            Ok(()) => {
                st.wake_driver();
                Poll::Ready(Ok(()))
            }
            Err(e) => Poll::Ready(Err(map_error(e))),
        }
    }

    /// Ready once every byte written so far, and the FIN if the stream was shut down, has
    /// been framed and handed to the connection writer: for the few who must know the data
    /// left (before dropping the session's connection by hand, say). It waits as long as
    /// the peer grants no window; bound it with the runtime's timeout.
    pub fn poll_sent(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let id = self.handle.id;
        let mut st = self.handle.shared.lock();
        match st.engine.poll_flushed(id) {
            Ok(true) => Poll::Ready(Ok(())),
            Ok(false) => {
                st.wait(id, Half::Write, cx.waker());
                st.wake_driver();
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(map_error(e))),
        }
    }

    /// [`poll_sent`](Self::poll_sent) as a future. Cancel-safe.
    pub async fn sent(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_sent(cx)).await
    }
}

impl fmt::Debug for OwnedReadHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedReadHalf")
            .field("id", &self.handle.id)
            .finish()
    }
}

impl fmt::Debug for OwnedWriteHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedWriteHalf")
            .field("id", &self.handle.id)
            .finish()
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

/// [`OwnedReadHalf::reunite`] was given halves of different streams; they are handed back.
/// Generic so that the runtime adapters' own halves come back the same way.
#[derive(Debug)]
pub struct ReuniteError<R = OwnedReadHalf, W = OwnedWriteHalf>(pub R, pub W);

impl<R, W> fmt::Display for ReuniteError<R, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the halves belong to different streams")
    }
}

impl<R: fmt::Debug, W: fmt::Debug> std::error::Error for ReuniteError<R, W> {}

/// A full-duplex byte stream inside a session: its [`OwnedReadHalf`] and
/// [`OwnedWriteHalf`] together. Implements futures-io [`AsyncRead`] + [`AsyncWrite`]; the
/// runtime adapters add their own ecosystem's traits.
///
/// * `poll_close` (futures-io) is a half-close: a FIN follows the data already written,
///   the stream stays readable, and later writes fail with `BrokenPipe`. It is idempotent.
/// * Reading gives end of stream (`Ok(0)`) once the peer's FIN came and all data before it
///   was read. If the session ends first, buffered data is still read, then the error.
/// * Dropping the stream (both halves) sends its queued data, then a FIN, and discards
///   unread data.
/// * Poll methods take `&mut self`: one task reads and one writes at a time (split the
///   stream to read and write from different tasks).
pub struct Stream {
    read: OwnedReadHalf,
    write: OwnedWriteHalf,
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream").field("id", &self.id()).finish()
    }
}

impl Stream {
    /// A handle for a stream the engine just opened or accepted.
    pub(crate) fn register(shared: Arc<Shared>, id: StreamId) -> Self {
        shared.lock().register(id);
        let half = |half| Handle {
            shared: shared.clone(),
            id,
            half,
        };
        Self {
            read: OwnedReadHalf {
                handle: half(Half::Read),
            },
            write: OwnedWriteHalf {
                handle: half(Half::Write),
            },
        }
    }

    /// The stream's id, as on the wire.
    pub fn id(&self) -> StreamId {
        self.read.id()
    }

    /// The window this end offers the peer now. See [`OwnedReadHalf::receive_window`].
    pub fn receive_window(&self) -> Option<u32> {
        self.read.receive_window()
    }

    /// Reads into `buf`; `Ok(0)` is end of stream. See [`OwnedReadHalf::poll_read`].
    pub fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.read.poll_read(cx, buf)
    }

    /// Takes received data without copying; `None` is end of stream. See
    /// [`OwnedReadHalf::poll_read_chunk`].
    pub fn poll_read_chunk(
        &mut self,
        cx: &mut Context<'_>,
        max: usize,
    ) -> Poll<io::Result<Option<Bytes>>> {
        self.read.poll_read_chunk(cx, max)
    }

    /// [`poll_read_chunk`](Self::poll_read_chunk) as a future. Cancel-safe.
    pub async fn read_chunk(&mut self, max: usize) -> io::Result<Option<Bytes>> {
        self.read.read_chunk(max).await
    }

    /// Queues data; Pending while the send buffer is full. See
    /// [`OwnedWriteHalf::poll_write`].
    pub fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.write.poll_write(cx, data)
    }

    /// A socket's flush: never waits. See [`OwnedWriteHalf::poll_flush`].
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.write.poll_flush(cx)
    }

    /// Ready once the data written, and the FIN if shut down, has gone to the connection
    /// writer. See [`OwnedWriteHalf::poll_sent`].
    pub fn poll_sent(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.write.poll_sent(cx)
    }

    /// [`poll_sent`](Self::poll_sent) as a future. Cancel-safe.
    pub async fn sent(&mut self) -> io::Result<()> {
        self.write.sent().await
    }

    /// Half-closes. See [`OwnedWriteHalf::poll_shutdown`].
    pub fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.write.poll_shutdown(cx)
    }

    /// The two halves, to read and write from different tasks; a move, with no lock or
    /// count added. [`OwnedReadHalf::reunite`] puts them back together.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        (self.read, self.write)
    }
}

impl AsyncRead for OwnedReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        OwnedReadHalf::poll_read(self.get_mut(), cx, buf)
    }
}

impl AsyncWrite for OwnedWriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        OwnedWriteHalf::poll_write(self.get_mut(), cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        OwnedWriteHalf::poll_flush(self.get_mut(), cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        OwnedWriteHalf::poll_shutdown(self.get_mut(), cx)
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().read).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().write).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().write).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().write).poll_close(cx)
    }
}

/// Handles move freely between tasks and threads, and need no pinning.
const _: () = {
    const fn check<T: Send + Sync + Unpin>() {}
    check::<Stream>();
    check::<OwnedReadHalf>();
    check::<OwnedWriteHalf>();
};
