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
    /// The first bytes from the peer are not an smux frame header and look like another
    /// protocol's (a client pointed at an HTTP or TLS server, say).
    #[error("the peer does not speak smux: its first bytes {first_bytes:02x?} look like {looks_like} (is the address right?)")]
    NotSmux {
        /// The first 8 bytes received.
        first_bytes: [u8; 8],
        /// What they look like: "an HTTP response", "a TLS record", ...
        looks_like: &'static str,
    },
    /// The peer opened a stream with an id of this end's own parity (clients open odd ids,
    /// servers even ones). Go replaces a live stream then; here it is a protocol error.
    #[error("the peer opened stream {sid}, an id of this end's own parity: are both ends clients, or both servers?")]
    OwnParity {
        /// The stream id the peer opened.
        sid: u32,
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
///
/// | what happened | this end | the other end (smux-rs) |
/// |---|---|---|
/// | `Session::close()` (or the last handle dropped), every stream finished both ways | `Local` | `PeerClosed`: a clean end (also when a last keepalive of ours, crossing the close, makes the peer's kernel answer with a reset) |
/// | `close()` with streams still open on either end, or a Go peer's `Close()` (no FINs) | `Local` | `UnexpectedEof` |
/// | the connection cut (a reset, a crash, a cable) | `Io { .. }` or `UnexpectedEof` | the same |
/// | a silent peer or a black-holed path | `KeepaliveTimeout` | depends on the path |
/// | no smux frame ever arrived (a peer of another version, not an smux peer) | `NoFrameFromPeer`, `UnexpectedEof { before_first_frame: true, .. }` or `Protocol(NotSmux { .. })` | the same or a keepalive timeout |
/// | the peer broke the protocol | `Protocol(..)` | `UnexpectedEof` (we close at once) |
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// The application closed the session.
    #[error("the session was closed locally")]
    Local,
    /// The peer ended the session cleanly: its connection closed at a frame boundary after
    /// every stream was finished both ways (the peer's FIN received, ours sent). A reset
    /// read at that point, with every frame of ours written, counts too: the peer closed
    /// while a frame of ours that carries no data (a keepalive NOP) was on its way.
    /// [`Session::accept_stream`](crate::Session::accept_stream) reports it as the end of
    /// the incoming streams (`Ok(None)`), not as an error.
    #[error("the peer closed the session")]
    PeerClosed,
    /// The connection reached its end in the middle of a frame, or while streams were still
    /// open: without the peer's FIN, or not yet finished by us (the peer
    /// crashed, the path was cut, or the peer closed its session without finishing its
    /// streams or waiting for our replies, as Go's `Session.Close` does).
    #[error("the connection ended unexpectedly{}{}", match open_streams { 0 => String::new(), n => format!(" with {n} streams open") }, if *mid_frame { " in the middle of a frame" } else if *before_first_frame { ", before the peer sent a single smux frame (is it an smux peer, of the same protocol version?)" } else { "" })]
    UnexpectedEof {
        /// Streams open (not finished by the peer) when the connection ended.
        open_streams: usize,
        /// The connection ended inside a frame.
        mid_frame: bool,
        /// The peer never sent a valid frame.
        before_first_frame: bool,
    },
    /// No frame arrived from the peer within the keepalive timeout.
    #[error("keepalive timeout: no frame from the peer for {0:?}")]
    KeepaliveTimeout(Duration),
    /// The keepalive timeout passed before the peer sent a single frame: often a peer of
    /// another protocol version (Go keeps such a connection open, silently) or not an smux
    /// peer at all.
    #[error("keepalive timeout: not a single smux frame from the peer in {0:?} (is it an smux peer, of the same protocol version?)")]
    NoFrameFromPeer(Duration),
    /// The connection took no byte for this long while frames waited to be written: the
    /// peer stopped reading, or the path swallows everything. See
    /// [`Config::write_timeout`](crate::Config::write_timeout).
    #[error("write timeout: the connection took no byte for {0:?} while frames waited")]
    WriteTimeout(Duration),
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
    #[error(transparent)]
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
    #[error(transparent)]
    SessionClosed(CloseReason),
}

/// The error of the async API. `Clone`, and convertible to [`io::Error`] (from which it can
/// be recovered with `get_ref()` and `downcast_ref::<Error>()`).
///
/// | error | [`io::ErrorKind`] |
/// |---|---|
/// | `Closed(CloseReason::Local)` | `NotConnected` |
/// | `Closed(CloseReason::PeerClosed)` (a clean end; seen by writes and opens) | `BrokenPipe` |
/// | `Closed(CloseReason::UnexpectedEof { .. })` | `UnexpectedEof` |
/// | `Closed(CloseReason::KeepaliveTimeout(_))`, `NoFrameFromPeer(_)`, `WriteTimeout(_)` | `TimedOut` |
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
    #[error(transparent)]
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
                CloseReason::PeerClosed => io::ErrorKind::BrokenPipe,
                CloseReason::UnexpectedEof { .. } => io::ErrorKind::UnexpectedEof,
                CloseReason::KeepaliveTimeout(_)
                | CloseReason::NoFrameFromPeer(_)
                | CloseReason::WriteTimeout(_) => io::ErrorKind::TimedOut,
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
                io::ErrorKind::BrokenPipe,
            ),
            (
                Error::Closed(CloseReason::UnexpectedEof {
                    open_streams: 2,
                    mid_frame: false,
                    before_first_frame: false,
                }),
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
                io::ErrorKind::BrokenPipe,
            ),
        ];
        for (err, kind) in cases {
            let io: io::Error = err.clone().into();
            assert_eq!(io.kind(), kind, "{err}");
            let back = io.get_ref().unwrap().downcast_ref::<Error>().unwrap();
            assert_eq!(back, &err);
        }
    }

    /// Each message says what happened once, without a wrapper repeating it.
    #[test]
    fn messages_do_not_repeat_themselves() {
        assert_eq!(
            Error::Closed(CloseReason::Local).to_string(),
            "the session was closed locally"
        );
        assert_eq!(
            StreamError::SessionClosed(CloseReason::PeerClosed).to_string(),
            "the peer closed the session"
        );
        let eof = CloseReason::UnexpectedEof {
            open_streams: 3,
            mid_frame: true,
            before_first_frame: false,
        };
        assert_eq!(
            eof.to_string(),
            "the connection ended unexpectedly with 3 streams open in the middle of a frame"
        );
        let silent = CloseReason::UnexpectedEof {
            open_streams: 0,
            mid_frame: false,
            before_first_frame: true,
        };
        assert!(
            silent.to_string().contains("same protocol version"),
            "{silent}"
        );
    }
}
