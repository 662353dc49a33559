//! What the async driver needs from a runtime: spawning a task, a resettable timer, and the
//! time. Object-safe, so a session holds an `Arc<dyn Runtime>`; implement it to run smux-rs
//! on a runtime this project never heard of.
//!
//! With the `async-io` feature, `AsyncIoTimer` is a ready-made [`Timer`] for any runtime
//! whose timers are async-io's (smol, async-std).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// A boxed task, as [`Runtime::spawn`] takes it.
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// An async runtime, as the driver sees it.
///
/// ```
/// use smux_core::runtime::{BoxFuture, Runtime, Timer};
/// use std::{pin::Pin, task::{Context, Poll}, time::Instant};
///
/// /// A runtime that runs tasks on threads and has no timers (for illustration only).
/// #[derive(Debug)]
/// struct Threads;
///
/// #[derive(Debug)]
/// struct NeverTimer;
///
/// impl Timer for NeverTimer {
///     fn reset(self: Pin<&mut Self>, _deadline: Instant) {}
///     fn poll_expired(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
///         Poll::Pending
///     }
/// }
///
/// impl Runtime for Threads {
///     fn spawn(&self, task: BoxFuture) {
///         std::thread::spawn(move || futures_executor_block_on(task));
///     }
///     fn timer(&self, _deadline: Instant) -> Pin<Box<dyn Timer>> {
///         Box::pin(NeverTimer)
///     }
///     // `now` keeps its default, `Instant::now()`: this runtime's clock is the real one.
/// }
/// # fn futures_executor_block_on(_: BoxFuture) {}
/// let runtime: std::sync::Arc<dyn Runtime> = std::sync::Arc::new(Threads);
/// # let _ = runtime;
/// ```
pub trait Runtime: Send + Sync + fmt::Debug + 'static {
    /// Runs `task` to completion in the background.
    fn spawn(&self, task: BoxFuture);

    /// A timer that fires at `deadline`.
    fn timer(&self, deadline: Instant) -> Pin<Box<dyn Timer>>;

    /// The current time, from the runtime's clock, which drives keepalive and timeouts.
    ///
    /// The default is [`Instant::now()`]; override it when the runtime has a paused or
    /// simulated clock (tokio's `time::pause`, for one), so that the driver reads that clock.
    fn now(&self) -> Instant {
        Instant::now()
    }

    /// Whether the caller runs as one of this runtime's tasks, where waking the session's
    /// driver is cheap (it runs soon on this thread, and frames the writes of every task
    /// that ran before it in one batch).
    ///
    /// Outside one (a `block_on` on a thread of its own, say), waking the driver is a
    /// thread switch before the bytes move; there a write that finds the connection idle
    /// writes its frames to the connection itself instead. The default, `true`, leaves
    /// every write to the driver: answer `false` only where you can tell.
    fn in_task(&self) -> bool {
        true
    }
}

/// A timer that can be moved to a new deadline.
pub trait Timer: Send + fmt::Debug {
    /// Moves the deadline; a fired timer fires again at the new one.
    fn reset(self: Pin<&mut Self>, deadline: Instant);

    /// Ready once the deadline has passed; registers `cx`'s waker otherwise.
    fn poll_expired(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()>;
}

#[cfg(feature = "async-io")]
pub use async_io_timer::AsyncIoTimer;

#[cfg(feature = "async-io")]
mod async_io_timer {
    use super::Timer;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Instant;

    /// A [`Timer`] on [async-io](https://docs.rs/async-io)'s reactor: an `async_io::Timer`
    /// behind the driver's timer trait (feature `async-io`). It is the timer `smux-smol` and
    /// `smux-async-std` give their sessions; any runtime whose reactor is async-io's can use
    /// it too.
    ///
    /// * It fires once, at its deadline (at the first poll if the deadline has passed), and
    ///   then stays pending until it is reset.
    /// * [`reset`](Timer::reset) moves the deadline either way, earlier or later; the old
    ///   deadline no longer fires. A timer that has fired fires again at the new deadline. A
    ///   pending timer keeps the waker of its last poll: that task is woken at the new
    ///   deadline without polling in between.
    /// * There is no separate cancel: dropping the timer removes it from the reactor, and
    ///   its waker is never woken.
    ///
    /// Its clock is the real one ([`Instant::now()`]); async-io's reactor wakes it, from a
    /// thread in `async_io::block_on` or from async-io's fallback thread.
    ///
    /// ```
    /// use smux_core::runtime::{AsyncIoTimer, Timer};
    /// use std::{pin::Pin, time::{Duration, Instant}};
    ///
    /// let mut timer: Pin<Box<dyn Timer>> = Box::pin(AsyncIoTimer::at(Instant::now()));
    /// timer.as_mut().reset(Instant::now() + Duration::from_millis(5));
    /// async_io::block_on(std::future::poll_fn(|cx| timer.as_mut().poll_expired(cx)));
    /// ```
    #[derive(Debug)]
    pub struct AsyncIoTimer(async_io::Timer);

    impl AsyncIoTimer {
        /// A timer that fires at `deadline`.
        pub fn at(deadline: Instant) -> Self {
            Self(async_io::Timer::at(deadline))
        }
    }

    impl Timer for AsyncIoTimer {
        fn reset(mut self: Pin<&mut Self>, deadline: Instant) {
            self.0.set_at(deadline);
        }

        fn poll_expired(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            Pin::new(&mut self.0).poll(cx).map(drop)
        }
    }
}
