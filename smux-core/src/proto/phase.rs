//! The session's lifecycle: open, draining, closing, closed, and what each means for writes.

use crate::error::CloseReason;

/// The session's lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Phase {
    Open,
    /// Refusing new streams; closes once no stream is left.
    Draining,
    /// Flushing queued frames until done or the close deadline (`Timer::Close`).
    Closing,
    Closed(CloseReason),
}

impl Phase {
    /// Why the session ended, once it has.
    pub(super) fn close_reason(&self) -> Option<&CloseReason> {
        match self {
            Phase::Closed(reason) => Some(reason),
            _ => None,
        }
    }

    /// Why writes can no longer be taken: the session ended, or a local close is flushing
    /// (which finished every stream, but not because the application asked).
    pub(super) fn writes_end(&self) -> Option<CloseReason> {
        match self {
            Phase::Closed(reason) => Some(reason.clone()),
            Phase::Closing => Some(CloseReason::Local),
            _ => None,
        }
    }
}
