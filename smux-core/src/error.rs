//! Typed errors. What the peer did wrong ([`ProtocolError`]) is kept apart from what the
//! caller did wrong ([`StreamError`], [`OpenError`]) and from why a session ended
//! ([`CloseReason`]).

use crate::frame::FrameError;
use std::io;
use std::time::Duration;

/// The peer broke the protocol. The session is closed at once when this happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A malformed frame header.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A version-2 peer sent more unread data on a stream than any window it was given
    /// allows (the initial 262144 bytes or our stream buffer, plus one frame).
    #[error(
        "peer ignored the flow-control window on sid {sid}: {buffered} bytes unread, limit {limit}"
    )]
    WindowExceeded {
        /// The stream.
        sid: u32,
        /// Bytes buffered and unread on it.
        buffered: usize,
        /// The most a well-behaved peer can have sent.
        limit: usize,
    },
    /// An UPD frame reported more bytes consumed than we ever sent on the stream.
    #[error("UPD for sid {sid} reports {consumed} bytes consumed, but only {written} were sent")]
    ConsumedBeyondWritten {
        /// The stream.
        sid: u32,
        /// The `consumed` field of the UPD (wrapping counter).
        consumed: u32,
        /// Our wrapping count of bytes sent on the stream.
        written: u32,
    },
}

/// Why a session ended. Every pending and later operation reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// The application closed the session.
    #[error("session closed locally")]
    Local,
    /// The peer closed the connection (end of file on the transport).
    #[error("peer closed the connection")]
    PeerClosed,
    /// No frame arrived from the peer within the keepalive timeout.
    #[error("keepalive timeout: no frame from the peer for {0:?}")]
    KeepaliveTimeout(Duration),
    /// The peer broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// A panic inside smux-rs while it held the session's lock (a bug: please report it).
    /// The session's state could not be trusted any more, so the session was ended.
    #[error("session state poisoned by a panic inside smux-rs")]
    Poisoned,
    /// Reading or writing the connection failed.
    #[error("connection failed: {message}")]
    Io {
        /// The error's kind.
        kind: io::ErrorKind,
        /// The error's text.
        message: String,
    },
}

impl CloseReason {
    /// A reason for a failed transport read or write.
    pub fn io(err: &io::Error) -> Self {
        CloseReason::Io {
            kind: err.kind(),
            message: err.to_string(),
        }
    }
}

/// A stream operation could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// Not now: no data to read, or no room to write. Try again after the stream's
    /// readiness changes.
    #[error("operation would block")]
    Blocked,
    /// Writing after the stream was finished (half-closed) or closed locally.
    #[error("stream is closed for writing")]
    WriteClosed,
    /// The stream was closed locally, or never existed.
    #[error("unknown or closed stream")]
    UnknownStream,
    /// The session ended.
    #[error("session ended: {0}")]
    SessionClosed(CloseReason),
}

/// A stream could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// [`Config::max_streams`](crate::Config::max_streams) streams are open.
    #[error("too many streams: {limit} are open")]
    TooManyStreams {
        /// The configured limit.
        limit: usize,
    },
    /// Every stream id of this side was used (Go: `ErrGoAway`); open a new session.
    #[error("stream ids exhausted: open a new session")]
    IdsExhausted,
    /// The session is shutting down and takes no new streams.
    #[error("session is shutting down")]
    ShuttingDown,
    /// The session ended.
    #[error("session ended: {0}")]
    SessionClosed(CloseReason),
}

/// The error of the async API. `Clone`, and convertible to [`io::Error`] (from which it can
/// be recovered with `get_ref()` and `downcast_ref::<Error>()`).
///
/// | error | [`io::ErrorKind`] |
/// |---|---|
/// | `Closed(CloseReason::Local)` | `NotConnected` |
/// | `Closed(CloseReason::PeerClosed)` (peer gone without FIN) | `UnexpectedEof` |
/// | `Closed(CloseReason::KeepaliveTimeout(_))` | `TimedOut` |
/// | `Closed(CloseReason::Protocol(_))` | `InvalidData` |
/// | `Closed(CloseReason::Poisoned)` | `Other` |
/// | `Closed(CloseReason::Io { kind, .. })` | `kind` |
/// | `Open(OpenError::TooManyStreams { .. })`, `Open(OpenError::IdsExhausted)` | `Other` |
/// | `Open(OpenError::ShuttingDown)` | `NotConnected` |
/// | `WriteClosed` | `BrokenPipe` |
/// | `Config(_)` | `InvalidInput` |
/// | `NoRuntime` | `Other` |
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The session ended; the reason says whether the peer, the connection, a timeout or
    /// the application ended it.
    #[error("session closed: {0}")]
    Closed(CloseReason),
    /// A stream could not be opened.
    #[error(transparent)]
    Open(OpenError),
    /// Writing after the stream was shut down (half-closed).
    #[error("stream was shut down for writing")]
    WriteClosed,
    /// A bad configuration.
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
    /// A session was started outside the runtime it needs.
    #[error("no {0} runtime is running on this thread")]
    NoRuntime(&'static str),
}

impl Error {
    /// The [`io::ErrorKind`] this error maps to (see the table above).
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Error::Closed(reason) => match reason {
                CloseReason::Local => io::ErrorKind::NotConnected,
                CloseReason::PeerClosed => io::ErrorKind::UnexpectedEof,
                CloseReason::KeepaliveTimeout(_) => io::ErrorKind::TimedOut,
                CloseReason::Protocol(_) => io::ErrorKind::InvalidData,
                CloseReason::Poisoned => io::ErrorKind::Other,
                CloseReason::Io { kind, .. } => *kind,
            },
            Error::Open(OpenError::ShuttingDown) => io::ErrorKind::NotConnected,
            Error::Open(OpenError::SessionClosed(reason)) => Error::Closed(reason.clone()).kind(),
            Error::Open(_) | Error::NoRuntime(_) => io::ErrorKind::Other,
            Error::WriteClosed => io::ErrorKind::BrokenPipe,
            Error::Config(_) => io::ErrorKind::InvalidInput,
        }
    }
}

impl From<OpenError> for Error {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::SessionClosed(reason) => Error::Closed(reason),
            other => Error::Open(other),
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        io::Error::new(e.kind(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_carry_the_typed_error() {
        let cases = [
            (
                Error::Closed(CloseReason::Local),
                io::ErrorKind::NotConnected,
            ),
            (
                Error::Closed(CloseReason::PeerClosed),
                io::ErrorKind::UnexpectedEof,
            ),
            (
                Error::Closed(CloseReason::KeepaliveTimeout(Duration::from_secs(30))),
                io::ErrorKind::TimedOut,
            ),
            (
                Error::Closed(CloseReason::Protocol(ProtocolError::Frame(
                    FrameError::UpdOnV1 { sid: 3 },
                ))),
                io::ErrorKind::InvalidData,
            ),
            (Error::WriteClosed, io::ErrorKind::BrokenPipe),
            (
                Error::from(OpenError::SessionClosed(CloseReason::PeerClosed)),
                io::ErrorKind::UnexpectedEof,
            ),
        ];
        for (err, kind) in cases {
            let io: io::Error = err.clone().into();
            assert_eq!(io.kind(), kind, "{err}");
            let back = io.get_ref().unwrap().downcast_ref::<Error>().unwrap();
            assert_eq!(back, &err);
        }
    }
}
