//! What the async driver needs from a runtime: spawning a task, a resettable timer, and the
//! time. Object-safe, so a session holds an `Arc<dyn Runtime>`; implement it to run smux-rs
//! on a runtime this project never heard of.

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
///     fn now(&self) -> Instant {
///         Instant::now()
///     }
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

    /// The current time, from the runtime's clock (so that a runtime with a paused or
    /// simulated clock drives keepalive with it).
    fn now(&self) -> Instant;
}

/// A timer that can be moved to a new deadline.
pub trait Timer: Send + fmt::Debug {
    /// Moves the deadline; a fired timer fires again at the new one.
    fn reset(self: Pin<&mut Self>, deadline: Instant);

    /// Ready once the deadline has passed; registers `cx`'s waker otherwise.
    fn poll_expired(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()>;
}
