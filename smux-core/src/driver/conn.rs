//! The connection and the frames queued for it, behind a lock of their own: the driver
//! holds it while it runs, and a writer that finds it free writes its frames itself.
//!
//! A writer that wakes the driver to send its frames pays for a task switch (a thread
//! switch when it runs outside the runtime, as under `block_on`) before its bytes move.
//! So when the connection is idle (nothing queued from an earlier write, nothing to flush,
//! the driver not running), a write frames what the engine has and writes it in the
//! writer's own task; whatever the connection does not take at once (it would have to wait)
//! is left queued for the driver, which it wakes. Every frame still comes from the engine's
//! one [`Transmit`] in order, and no I/O happens under the session's lock.
//!
//! Lock order: this lock, then the session's. A writer holds the session's lock when it
//! asks for this one, so it only ever tries (and falls back to waking the driver).

use super::shared::Locked;
use crate::proto::Transmit;
use crate::sync::TryMutex;
use futures_io::AsyncWrite;
use std::io::{self, IoSlice};
use std::ops::DerefMut;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// Frames batched for one vectored write.
pub(super) const WRITE_BATCH: usize = 256 * 1024;
/// Slices per vectored write.
const MAX_IOVECS: usize = 64;
/// Vectored writes in a row that took only their first buffer before the driver decides the
/// connection cannot write vectors (futures-io's default `poll_write_vectored`) and packs
/// frames into one contiguous buffer instead.
const SCALAR_WRITES_TO_PACK: u8 = 4;

/// The connection, and the write state that goes with it.
pub(super) struct Conn<T> {
    pub(super) io: T,
    pub(super) out: Transmit,
    pub(super) need_flush: bool,
    /// Whether the connection was seen to write more than one buffer of a vectored write,
    /// and how many vectored writes in a row took only their first one.
    vectored: bool,
    scalar_writes: u8,
    /// [`Config::max_write_size`](crate::Config::max_write_size), and whether it was set.
    max_write: usize,
    write_cap_set: bool,
    /// The connection took bytes since the engine last heard (for its write timeout).
    pub(super) wrote: bool,
    /// A writer's write failed: the driver ends the session with this.
    pub(super) failed: Option<io::Error>,
    /// The driver's task, for a writer that leaves it work.
    pub(super) driver_waker: Option<Waker>,
}

impl<T> Conn<T> {
    /// `vectored`: [`Config::vectored_writes`](crate::Config::vectored_writes).
    pub(super) fn new(
        io: T,
        max_write: usize,
        write_cap_set: bool,
        vectored: Option<bool>,
    ) -> Self {
        let mut out = Transmit::new();
        if vectored == Some(false) {
            // Declared up front: no learning phase with a write per header.
            out.pack_everything();
        }
        Self {
            io,
            out,
            need_flush: false,
            // Declared either way, there is nothing to learn.
            vectored: vectored.is_some(),
            scalar_writes: 0,
            max_write,
            write_cap_set,
            wrote: false,
            failed: None,
            driver_waker: None,
        }
    }

    /// Whether nothing is queued or unflushed: a writer may then write in its own task.
    fn idle(&self) -> bool {
        self.out.is_empty() && !self.need_flush && self.failed.is_none()
    }

    /// A connection that writes only the first buffer of every vectored write would send
    /// each frame header on its own (a packet, or a KCP segment, per header): after a few
    /// such writes in a row, frames are packed into one contiguous buffer instead.
    fn learn_vectored(&mut self, took_more_than_first: bool) {
        if took_more_than_first {
            self.vectored = true;
            return;
        }
        self.scalar_writes = self.scalar_writes.saturating_add(1);
        if self.scalar_writes == SCALAR_WRITES_TO_PACK {
            self.out.pack_everything();
        }
    }
}

impl<T: AsyncWrite + Unpin> Conn<T> {
    /// Writes queued frames, then flushes once they are out; Ready if anything moved.
    pub(super) fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut moved = false;
        while !self.out.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            // The default cap is for connections without vectored writes (KCP, most TLS);
            // one that writes vectors takes a whole batch, split by its kernel.
            let cap = match (
                self.write_cap_set,
                self.vectored && !self.out.packs_everything(),
            ) {
                (false, true) => usize::MAX,
                _ => self.max_write,
            };
            let n = self.out.io_slices_capped(&mut slices, cap);
            let first = slices[0].len();
            match Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..n]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(written)) => {
                    // A write that took less than the first buffer says nothing (the
                    // connection is just full); exactly the first buffer, again and again,
                    // is a connection without vectored writes.
                    if n > 1 && !self.vectored && written >= first {
                        self.learn_vectored(written > first);
                    }
                    bytes::Buf::advance(&mut self.out, written);
                    self.need_flush = true;
                    self.wrote = true;
                    moved = true;
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => break,
            }
        }
        if self.out.is_empty() && self.need_flush {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.need_flush = false,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        if moved {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }
}

/// The connection behind its lock; `None` once the driver has finished with it (dropping
/// it closes the connection even while handles live on). A panic under this lock left at
/// worst a frame half written, which the peer's parser reports; the session's own lock
/// (poisoned too) says the session is over.
pub(super) struct ConnCell<T>(TryMutex<Option<Conn<T>>>);

impl<T> ConnCell<T> {
    pub(super) fn new(conn: Conn<T>) -> Self {
        Self(TryMutex::new(Some(conn)))
    }

    pub(super) fn lock(&self) -> impl DerefMut<Target = Option<Conn<T>>> + '_ {
        self.0.lock()
    }
}

/// What the session's handles see of the connection: the chance to write now.
pub(crate) trait WriteSide: Send + Sync {
    /// The writer holding `st` gave the engine data: if the connection is idle, frame what
    /// the engine has and write it from this task (`cx`); otherwise, or for what is left,
    /// wake the driver. Never waits.
    fn write_now(&self, st: Locked<'_>, now: Instant, cx: &mut Context<'_>);
}

impl<T: AsyncWrite + Unpin + Send> WriteSide for ConnCell<T> {
    fn write_now(&self, mut st: Locked<'_>, now: Instant, cx: &mut Context<'_>) {
        let Some(mut guard) = self.0.try_lock() else {
            // The driver (or another writer) is at it, and will see the new frames.
            st.wake_driver();
            return;
        };
        let Some(conn) = guard.as_mut().filter(|c| c.idle()) else {
            if guard.is_some() {
                st.wake_driver(); // earlier frames still queued: they go first, by the driver
            }
            return;
        };
        if !st.engine.wants_transmit() {
            return;
        }
        let _ = st.engine.poll_transmit(now, &mut conn.out, WRITE_BATCH);
        st.defer_engine_wakes();
        drop(st); // unlocks, then wakes the streams the frames made writable
        let done = match conn.poll_write_out(cx) {
            Poll::Ready(Ok(())) | Poll::Pending => conn.idle(),
            Poll::Ready(Err(e)) => {
                conn.failed = Some(e);
                false
            }
        };
        // Left over (the connection would wait, or failed): the driver takes it from here,
        // and tells the engine about the write progress, which it also checks for its write
        // timeout. Done: the engine already heard there was nothing pending.
        let driver = if done {
            conn.wrote = false;
            None
        } else {
            conn.driver_waker.clone()
        };
        drop(guard);
        if let Some(w) = driver {
            w.wake();
        }
    }
}
