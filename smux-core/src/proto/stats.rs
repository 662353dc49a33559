//! The session's counters.

/// Counters of a session, from [`Engine::stats`](super::Engine::stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Streams open now (opened or accepted, not yet finished both ways or closed).
    pub open_streams: usize,
    /// Stream payload bytes received.
    pub bytes_in: u64,
    /// Stream payload bytes sent.
    pub bytes_out: u64,
    /// Inbound bytes buffered and not yet read.
    pub buffered_in: usize,
    /// Outbound bytes buffered and not yet framed.
    pub buffered_out: usize,
    /// Stream payload bytes received and dropped: for streams the application let go of or
    /// stopped reading (still granted window, so the peer's writer never waits forever),
    /// refused or unknown.
    pub discarded_bytes: u64,
    /// Streams the peer opened that were refused (backlog full, stream limit, shutting down).
    pub refused_streams: u64,
    /// Protocol errors seen (0 or 1: the first one closes the session).
    pub protocol_errors: u64,
}
