//! The async driver: one future per session that moves bytes between the connection and
//! the [`Engine`](crate::proto::Engine), and the [`Session`] and [`Stream`] handles that
//! share the engine with it behind one short-held lock. No task and no channel per stream.
//! The connection's write side has a lock of its own (`conn.rs`), so that a writer outside
//! the runtime's tasks can write its frames itself when the connection is idle.

mod conn;
mod session;
mod shared;
mod stream;
#[cfg(test)]
mod tests;

pub use session::{Incoming, Session};
pub use stream::{OwnedReadHalf, OwnedWriteHalf, ReuniteError, Stream};

pub(crate) use shared::{next_session_id, Shared, State};
use shared::{store, store_in};

use crate::error::CloseReason;
use crate::proto::Engine;
use crate::runtime::Timer;
use crate::sync::Arc;
use conn::{Conn, ConnCell, WRITE_BATCH};
use futures_io::{AsyncRead, AsyncWrite};
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// Bytes read from the connection per call: also the most input held outside the engine.
const READ_BUFFER: usize = 128 * 1024;
/// Rounds of work before the driver yields to other tasks.
const ROUNDS_PER_POLL: usize = 16;

/// The future that runs a session: it reads the connection, writes queued frames, and
/// keeps time. Spawn it once (the adapters' `client()`/`server()` do); it completes when
/// the session has ended and the connection is closed, which happens at the latest when
/// every [`Session`] and [`Stream`] handle is dropped.
#[must_use = "the session makes no progress unless its driver is polled"]
pub struct Driver<T> {
    shared: Arc<Shared>,
    /// The connection and the frames queued for it, shared with writers (see `conn.rs`).
    conn: std::sync::Arc<ConnCell<T>>,
    read_buf: Box<[u8]>,
    /// Unconsumed input is `read_buf[start..end]`.
    start: usize,
    end: usize,
    eof: bool,
    timer: Option<Pin<Box<dyn Timer>>>,
    timer_deadline: Option<Instant>,
    wakes: Vec<Waker>,
    done: bool,
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl<T> fmt::Debug for Driver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("buffered_input", &(self.end - self.start))
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<T> Driver<T>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    pub(crate) fn new(shared: Arc<Shared>, io: T) -> Self {
        #[cfg(feature = "tracing")]
        let span = {
            let role = shared.lock().engine.role();
            let span = tracing::debug_span!("smux_session", id = shared.id, role = ?role);
            span.in_scope(|| tracing::debug!("session started"));
            span
        };
        let conn = {
            let st = shared.lock();
            let config = st.engine.config();
            Conn::new(
                io,
                config.max_write_size(),
                config.max_write_size_is_set(),
                config.vectored_writes(),
            )
        };
        Self {
            #[cfg(feature = "tracing")]
            span,
            shared,
            conn: std::sync::Arc::new(ConnCell::new(conn)),
            read_buf: vec![0; READ_BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            timer: None,
            timer_deadline: None,
            wakes: Vec::new(),
            done: false,
        }
    }

    /// Lets writers that find the connection idle write their frames themselves (see
    /// `conn.rs`): for a driver the session spawns, whose connection is `Send`.
    pub(crate) fn share_write_side(&self)
    where
        T: Send + 'static,
    {
        let side: std::sync::Arc<dyn conn::WriteSide> = self.conn.clone();
        let _ = self.shared.write_side.set(side);
    }

    fn fail(&mut self, err: &io::Error) {
        let mut st = self.shared.lock();
        st.engine.handle_io_error(err);
        st.collect_wakes(&mut self.wakes);
    }

    /// Writing failed. A peer that closed often makes the write fail before its last
    /// frames (data, FINs) are read: take in what is already readable first, so that
    /// readers get it, then end the session.
    fn fail_write(&mut self, conn: &mut Conn<T>, cx: &mut Context<'_>, err: &io::Error) {
        loop {
            let now = self.shared.runtime.now();
            {
                let mut st = self.shared.lock();
                feed(
                    &mut st.engine,
                    now,
                    &self.read_buf,
                    &mut self.start,
                    &mut self.end,
                );
                if self.eof {
                    st.engine.handle_eof(self.end - self.start);
                }
                if st.engine.is_closed() || !st.engine.wants_input() {
                    break;
                }
            }
            match self.poll_read_in(conn, cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) | Poll::Pending => break,
            }
        }
        self.fail(err);
    }

    /// Arms the timer for `deadline` and polls it; the deadline if it fired.
    fn poll_timer(&mut self, cx: &mut Context<'_>, deadline: Option<Instant>) -> Option<Instant> {
        let Some(deadline) = deadline else {
            self.timer_deadline = None;
            return None;
        };
        match &mut self.timer {
            Some(timer) if self.timer_deadline != Some(deadline) => timer.as_mut().reset(deadline),
            Some(_) => {}
            None => self.timer = Some(self.shared.runtime.timer(deadline)),
        }
        self.timer_deadline = Some(deadline);
        let timer = self.timer.as_mut().expect("armed above");
        if timer.as_mut().poll_expired(cx).is_ready() {
            self.timer_deadline = None;
            return Some(deadline);
        }
        None
    }

    /// Reads from the connection into the buffer; returns whether anything moved.
    fn poll_read_in(&mut self, conn: &mut Conn<T>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.end == self.read_buf.len() {
            if self.start == 0 {
                return Poll::Pending; // full of input the engine does not take yet
            }
            self.read_buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        match Pin::new(&mut conn.io).poll_read(cx, &mut self.read_buf[self.end..]) {
            Poll::Ready(Ok(0)) => {
                self.eof = true;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(n)) => {
                self.end += n;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The session ended: flush what a local close left (until its deadline), close the
    /// connection, and tell everyone.
    fn poll_finish(
        &mut self,
        conn: &mut Conn<T>,
        cx: &mut Context<'_>,
        reason: &CloseReason,
    ) -> Poll<()> {
        let (close_started, close_timeout) = {
            let st = self.shared.lock();
            (st.close_started, st.engine.config().close_timeout())
        };
        let deadline = close_started.map(|t| t + close_timeout);
        let now = self.shared.runtime.now();
        let in_time = deadline.is_some_and(|d| now < d);
        if *reason == CloseReason::Local && in_time {
            while !conn.out.is_empty() || conn.need_flush {
                match conn.poll_write_out(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(_)) => break,
                    Poll::Pending => {
                        if self.poll_timer(cx, deadline).is_some() {
                            break;
                        }
                        return Poll::Pending;
                    }
                }
            }
            if Pin::new(&mut conn.io).poll_close(cx).is_pending()
                && self.poll_timer(cx, deadline).is_none()
            {
                return Poll::Pending;
            }
        } else {
            // Best effort, never waiting: the session already failed.
            let _ = Pin::new(&mut conn.io).poll_close(cx);
        }
        self.finish();
        Poll::Ready(())
    }

    fn finish(&mut self) {
        self.done = true;
        let mut st = self.shared.lock();
        #[cfg(feature = "tracing")]
        match st.engine.close_reason() {
            Some(CloseReason::Protocol(e)) => {
                tracing::warn!(error = %e, "session ended: protocol error")
            }
            reason => tracing::debug!(?reason, stats = ?st.engine.stats(), "session ended"),
        }
        st.finished = true;
        st.wake_all(&mut self.wakes);
        self.wakes.append(&mut st.end_wakers);
        drop(st);
        for w in self.wakes.drain(..) {
            w.wake();
        }
    }
}

impl<T> Future for Driver<T>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(());
        }
        #[cfg(feature = "tracing")]
        let _entered = this.span.clone().entered();
        // Held for the whole poll: writers meanwhile leave their frames to this driver.
        let cell = this.conn.clone();
        let mut guard = cell.lock();
        let Some(conn) = guard.as_mut() else {
            return Poll::Ready(());
        };
        store(&mut conn.driver_waker, cx.waker());
        let poll = this.poll_rounds(conn, cx);
        if poll.is_ready() {
            *guard = None; // closes the connection, even while handles live on
        }
        poll
    }
}

impl<T> Driver<T>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    /// Rounds of reading, framing, writing and timers until nothing moves (Pending) or
    /// the session has ended and the connection is closed (Ready).
    fn poll_rounds(&mut self, conn: &mut Conn<T>, cx: &mut Context<'_>) -> Poll<()> {
        for _ in 0..ROUNDS_PER_POLL {
            let now = self.shared.runtime.now();
            if let Some(e) = conn.failed.take() {
                // A writer's write failed.
                self.fail_write(conn, cx, &e);
            }
            let (deadline, wants_input, closed) = {
                let mut st = self.shared.lock();
                store(&mut st.driver_waker, cx.waker());
                if st.handles == 0 && !st.engine.is_closed() && st.close_started.is_none() {
                    st.close_started = Some(now);
                    st.engine.close(now);
                }
                if st.engine.is_closing() && st.close_started.is_none() {
                    st.close_started = Some(now); // a shutdown drained into a close
                }
                feed(
                    &mut st.engine,
                    now,
                    &self.read_buf,
                    &mut self.start,
                    &mut self.end,
                );
                // At the end of the input, once the engine took all it will: frames held
                // back by a spent budget are delivered first (the reader's refund wakes us),
                // and only a partial frame is left behind.
                let leftover = self.end - self.start;
                if self.eof && !st.engine.is_closed() && (leftover == 0 || st.engine.wants_input())
                {
                    st.engine.handle_eof(leftover);
                }
                if conn.out.len() < WRITE_BATCH && st.engine.wants_transmit() {
                    let _ = st.engine.poll_transmit(now, &mut conn.out, WRITE_BATCH);
                }
                let wrote = std::mem::take(&mut conn.wrote);
                st.engine
                    .handle_write_progress(now, wrote, !conn.out.is_empty());
                st.collect_wakes(&mut self.wakes);
                (
                    st.engine.poll_timeout(),
                    st.engine.wants_input(),
                    st.engine.close_reason().cloned(),
                )
            };
            for w in self.wakes.drain(..) {
                w.wake();
            }
            if let Some(reason) = closed {
                return self.poll_finish(conn, cx, &reason);
            }

            let mut progress = false;
            match conn.poll_write_out(cx) {
                Poll::Ready(Ok(())) => progress = true,
                Poll::Ready(Err(e)) => {
                    self.fail_write(conn, cx, &e);
                    continue;
                }
                Poll::Pending => {}
            }
            if wants_input && !self.eof {
                match self.poll_read_in(conn, cx) {
                    Poll::Ready(Ok(())) => progress = true,
                    Poll::Ready(Err(e)) => {
                        let mut st = self.shared.lock();
                        let unconsumed = self.end - self.start;
                        st.engine.handle_read_error(&e, unconsumed, conn.out.len());
                        st.collect_wakes(&mut self.wakes);
                        continue;
                    }
                    Poll::Pending => {}
                }
            }
            if let Some(fired) = self.poll_timer(cx, deadline) {
                // The timer says `fired` has passed, even when the runtime's clock is not
                // there yet (a coarse timer, or one on another clock than `now()`): take its
                // word. Handling the timeout at the clock's earlier time would leave the
                // engine's deadline where it is, and the timer, re-armed for it, would fire
                // at once, again and again: a busy loop until the clock caught up.
                let now = self.shared.runtime.now().max(fired);
                let mut st = self.shared.lock();
                // What moved in this round counts first: input read just in time is a
                // sign of life, and a connection that took bytes just in time is no write
                // stall (a process paused past a timeout wakes to both at once).
                feed(
                    &mut st.engine,
                    now,
                    &self.read_buf,
                    &mut self.start,
                    &mut self.end,
                );
                let wrote = std::mem::take(&mut conn.wrote);
                st.engine
                    .handle_write_progress(now, wrote, !conn.out.is_empty());
                st.engine.handle_timeout(now);
                progress = true;
            }
            if !progress {
                return Poll::Pending;
            }
        }
        // Busy: let other tasks run, then continue.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Hands the engine what it takes now of the unconsumed input `buf[start..end]`; an
/// emptied buffer starts over at its front.
fn feed(engine: &mut Engine, now: Instant, buf: &[u8], start: &mut usize, end: &mut usize) {
    if *end > *start && engine.wants_input() {
        *start += engine.handle_input(now, &buf[*start..*end]);
        if *start == *end {
            *start = 0;
            *end = 0;
        }
    }
}

impl<T> Drop for Driver<T> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Dropped before the session ended (e.g. its runtime shut down): nothing can make
        // progress any more, so end the session rather than leave callers waiting, and
        // close the connection.
        *self.conn.lock() = None;
        let mut st = self.shared.lock();
        if !st.engine.is_closed() {
            st.engine
                .handle_io_error(&io::Error::other("the session driver was dropped"));
        }
        st.finished = true;
        let mut wakes = Vec::new();
        st.collect_wakes(&mut wakes);
        st.wake_all(&mut wakes);
        wakes.append(&mut st.end_wakers);
        drop(st);
        for w in wakes {
            w.wake();
        }
    }
}
