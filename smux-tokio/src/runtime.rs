//! [`Runtime`] on tokio.

use smux_core::runtime::{BoxFuture, Runtime, Timer};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::runtime::Handle;

/// Runs smux sessions on a tokio runtime: drivers are spawned on it and timers use its
/// clock (so `tokio::time::pause` applies).
#[derive(Debug, Clone)]
pub struct TokioRuntime {
    handle: Handle,
}

impl TokioRuntime {
    /// The runtime this thread is in, or `None` outside one.
    pub fn current() -> Option<Self> {
        Handle::try_current().ok().map(Self::from)
    }
}

impl From<Handle> for TokioRuntime {
    fn from(handle: Handle) -> Self {
        Self { handle }
    }
}

impl Runtime for TokioRuntime {
    fn spawn(&self, task: BoxFuture) {
        drop(self.handle.spawn(task));
    }

    fn timer(&self, deadline: Instant) -> Pin<Box<dyn Timer>> {
        let _guard = self.handle.enter();
        Box::pin(SleepTimer(Box::pin(tokio::time::sleep_until(
            deadline.into(),
        ))))
    }

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    /// Only a task has an id: `block_on`'s future and plain threads have none.
    fn in_task(&self) -> bool {
        tokio::task::try_id().is_some()
    }
}

/// `Sleep` is `!Unpin`; boxing it keeps the projection safe (one allocation per session).
#[derive(Debug)]
struct SleepTimer(Pin<Box<tokio::time::Sleep>>);

impl Timer for SleepTimer {
    fn reset(mut self: Pin<&mut Self>, deadline: Instant) {
        self.0.as_mut().reset(deadline.into());
    }

    fn poll_expired(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}
