//! The session handle.

use super::{store_in, Driver, Shared, State, Stream};
use crate::error::{CloseReason, Error};
use crate::proto::{Engine, Role, Stats};
use crate::runtime::Runtime;
use crate::sync::{Arc, Mutex};
use crate::Config;
use futures_io::{AsyncRead, AsyncWrite};
use std::collections::HashMap;
use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

/// One end of an smux session: opens and accepts streams. Cheap to clone; every clone
/// is the same session.
///
/// The session ends when [`close`](Self::close) or [`shutdown`](Self::shutdown) finish,
/// when the peer or the connection fails, or when every `Session` and [`Stream`] handle has
/// been dropped.
pub struct Session {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("Session")
            .field("id", &self.shared.id)
            .field("role", &st.engine.role())
            .field("closed", &st.engine.close_reason())
            .finish()
    }
}

impl Session {
    /// A session over `io` and its driver future, for callers who run the driver
    /// themselves. Nothing happens until the driver is polled.
    pub fn new<T>(
        io: T,
        role: Role,
        config: Config,
        runtime: std::sync::Arc<dyn Runtime>,
    ) -> (Self, Driver<T>)
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        let now = runtime.now();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                engine: Engine::new(role, config, now),
                slots: HashMap::new(),
                accept_wakers: Vec::new(),
                end_wakers: Vec::new(),
                driver_waker: None,
                handles: 1,
                incoming_taken: false,
                close_started: None,
                finished: false,
            }),
            runtime,
            id: super::next_session_id(),
            write_side: std::sync::OnceLock::new(),
        });
        let driver = Driver::new(shared.clone(), io);
        (Self { shared }, driver)
    }

    /// A session over `io` whose driver is spawned on `runtime`.
    pub fn spawn<T>(io: T, role: Role, config: Config, runtime: std::sync::Arc<dyn Runtime>) -> Self
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (session, driver) = Self::new(io, role, config, runtime.clone());
        driver.share_write_side();
        runtime.spawn(Box::pin(driver));
        session
    }

    /// Opens a stream. It is usable at once: its SYN and data go out in order. Cancel-safe:
    /// the stream exists only once this returns.
    pub async fn open_stream(&self) -> Result<Stream, Error> {
        let mut st = self.shared.lock();
        let id = st.engine.open()?;
        st.wake_driver();
        drop(st);
        Ok(Stream::register(self.shared.clone(), id))
    }

    /// Waits for the next stream the peer opens. `Ok(None)` is the clean end of the
    /// incoming streams: the peer ended the session cleanly ([`CloseReason::PeerClosed`]:
    /// at a frame boundary, with every stream finished both ways). Any other end is an error with
    /// its reason. After the session ended, streams already queued are still handed out
    /// first. Cancel-safe: a stream is taken only when this returns it.
    pub async fn accept_stream(&self) -> Result<Option<Stream>, Error> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// [`accept_stream`](Self::accept_stream) as a poll function.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<Result<Option<Stream>, Error>> {
        let mut st = self.shared.lock();
        match st.engine.accept() {
            Ok(Some(id)) => {
                drop(st);
                Poll::Ready(Ok(Some(Stream::register(self.shared.clone(), id))))
            }
            Ok(None) => {
                store_in(&mut st.accept_wakers, cx.waker());
                Poll::Pending
            }
            Err(CloseReason::PeerClosed) => Poll::Ready(Ok(None)),
            Err(reason) => Poll::Ready(Err(Error::Closed(reason))),
        }
    }

    /// The incoming streams as a [`futures_core::Stream`]; it ends when the session does.
    /// Can be taken once: later calls return `None`.
    pub fn incoming(&self) -> Option<Incoming> {
        let taken = std::mem::replace(&mut self.shared.lock().incoming_taken, true);
        if taken {
            return None;
        }
        Some(Incoming {
            session: self.clone(),
        })
    }

    /// Closes the session: no new streams; data already written and FINs for open streams
    /// are sent for at most [`Config::close_timeout`], then the connection is closed.
    /// Returns once it is (the driver must be running).
    pub async fn close(&self) {
        {
            let mut st = self.shared.lock();
            let now = self.shared.runtime.now();
            st.close_started.get_or_insert(now);
            st.engine.close(now);
            st.wake_driver();
        }
        self.finished().await;
    }

    /// Graceful drain: new streams are refused from now on, open ones carry on; once they
    /// have all finished both ways or been dropped, the session closes as by
    /// [`close`](Self::close). Returns once the connection is closed.
    pub async fn shutdown(&self) {
        {
            let mut st = self.shared.lock();
            let now = self.shared.runtime.now();
            st.engine.shutdown(now);
            st.wake_driver();
        }
        self.finished().await;
    }

    /// Waits until the driver has finished and the connection is closed.
    pub async fn finished(&self) {
        poll_fn(|cx| {
            let mut st = self.shared.lock();
            if st.finished {
                return Poll::Ready(());
            }
            store_in(&mut st.end_wakers, cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().engine.is_closed()
    }

    /// Why the session ended, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared.lock().engine.close_reason().cloned()
    }

    /// Counters: open streams, bytes in and out, buffered bytes, refused streams, protocol
    /// errors.
    pub fn stats(&self) -> Stats {
        self.shared.lock().engine.stats()
    }

    /// Whether two handles are the same session.
    pub fn ptr_eq(&self, other: &Session) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl Clone for Session {
    fn clone(&self) -> Self {
        self.shared.lock().handles += 1;
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.handles -= 1;
        if st.handles == 0 {
            st.wake_driver();
        }
    }
}

/// Streams the peer opens, as a [`futures_core::Stream`]; from [`Session::incoming`].
#[derive(Debug)]
pub struct Incoming {
    session: Session,
}

impl futures_core::Stream for Incoming {
    type Item = Stream;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Stream>> {
        match self.session.poll_accept(cx) {
            Poll::Ready(Ok(stream)) => Poll::Ready(stream),
            Poll::Ready(Err(_)) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Handles move freely between tasks and threads.
const _: () = {
    const fn check<T: Send + Sync>() {}
    check::<Session>();
    check::<Stream>();
};
