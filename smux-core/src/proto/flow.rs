//! Flow control: every rule that decides how much may be sent or buffered.
//!
//! * **Session budget** ([`Budget`], both versions; Go's token bucket): what the peer's
//!   frames may buffer here in total, [`Config::max_receive_buffer`]. Each received payload
//!   byte is charged when it reaches its stream and refunded when the application reads it
//!   (or the stream is let go). The engine reads no frame header while the budget is spent,
//!   which stops the whole connection: version 1 has no other brake.
//! * **Version-2 send window** ([`SendWindow`]): how far ahead of the peer's reader one
//!   stream may send. The peer's UPD says how much it consumed and the window it offers; we
//!   keep `written - consumed <= window`. Until the first UPD, the window is Go's
//!   `initialPeerWindow`, whatever the peer's configuration.
//! * **Version-2 receive window** ([`RecvWindow`]): the UPD rule. As Go's receiver, we
//!   report on the first read and whenever half of `max_stream_buffer` was read since the
//!   last report, and always offer `max_stream_buffer`. Unlike Go, a report also goes out
//!   when the wrapping read counter lands exactly on 0.
//! * **Window policing** ([`police`]): a version-2 peer that buffers more unread bytes on
//!   one stream than any window we could have offered plus one frame ignores flow control:
//!   a protocol error.
//!
//! All counters of bytes on the wire are `u32` and wrap, as Go's; differences are read as
//! `i32`, so they stay right across the wrap.

use crate::config::Config;
use crate::error::ProtocolError;
use crate::frame::{WindowUpdate, MAX_PAYLOAD_LEN};

/// The window a version-2 sender assumes before the peer's first UPD (Go's
/// `initialPeerWindow`), whatever the peer's configuration.
pub(super) const INITIAL_PEER_WINDOW: u32 = 262_144;

/// The session receive budget. It may go up to one frame negative: it is checked before
/// each header, not each byte.
#[derive(Debug)]
pub(super) struct Budget {
    left: i64,
    /// Refunds brought the budget back from spent since the last [`Budget::take_resumed`].
    resumed: bool,
}

impl Budget {
    pub(super) fn new(config: &Config) -> Self {
        Self {
            left: config.max_receive_buffer() as i64,
            resumed: false,
        }
    }

    /// Another frame may be read.
    pub(super) fn has_room(&self) -> bool {
        self.left > 0
    }

    /// Charges `n` bytes that reached a stream.
    pub(super) fn charge(&mut self, n: usize) {
        self.left -= n as i64;
    }

    /// Gives back `n` bytes that were read or dropped.
    pub(super) fn refund(&mut self, n: usize) {
        let was_spent = self.left <= 0;
        self.left += n as i64;
        if was_spent && self.left > 0 {
            self.resumed = true;
        }
    }

    /// Whether reading became possible again since the last call (the keepalive clock
    /// restarts then: the peer was not silent, we were not listening).
    pub(super) fn take_resumed(&mut self) -> bool {
        std::mem::take(&mut self.resumed)
    }

    /// Bytes not spent, for recycled buffers to stay within.
    pub(super) fn unused(&self) -> usize {
        self.left.max(0) as usize
    }

    /// The budget balances against what the streams buffer.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(super) fn assert_balanced(&self, buffered: usize, config: &Config) {
        let max = config.max_receive_buffer();
        assert_eq!(
            self.left + buffered as i64,
            max as i64,
            "receive budget out of balance"
        );
        assert!(
            buffered <= max + MAX_PAYLOAD_LEN,
            "inbound bound broken: {buffered} buffered"
        );
    }
}

/// A version-2 stream's sending side.
#[derive(Debug)]
pub(super) struct SendWindow {
    /// Payload bytes framed (wrapping).
    written: u32,
    /// The peer's last reported `consumed`.
    peer_consumed: u32,
    /// The peer's last offered window.
    peer_window: u32,
}

impl Default for SendWindow {
    fn default() -> Self {
        Self {
            written: 0,
            peer_consumed: 0,
            peer_window: INITIAL_PEER_WINDOW,
        }
    }
}

impl SendWindow {
    /// Bytes the window lets us send now.
    pub(super) fn available(&self) -> usize {
        let inflight = self.written.wrapping_sub(self.peer_consumed) as i32;
        (i64::from(self.peer_window) - i64::from(inflight)).max(0) as usize
    }

    /// `n` more bytes were framed.
    pub(super) fn sent(&mut self, n: usize) {
        self.written = self.written.wrapping_add(n as u32);
    }

    /// Takes the peer's UPD. A peer that claims to have consumed more than we wrote is
    /// broken.
    pub(super) fn update(&mut self, sid: u32, update: WindowUpdate) -> Result<(), ProtocolError> {
        let inflight = self.written.wrapping_sub(update.consumed) as i32;
        if inflight < 0 {
            return Err(ProtocolError::ConsumedBeyondWritten {
                sid,
                consumed: update.consumed,
                written: self.written,
            });
        }
        self.peer_consumed = update.consumed;
        self.peer_window = update.window;
        Ok(())
    }

    /// Starts the counters at `n` as if that much had been sent and consumed (tests of the
    /// wrap).
    #[cfg(test)]
    pub(super) fn start_at(&mut self, n: u32) {
        self.written = n;
        self.peer_consumed = n;
    }

    #[cfg(test)]
    pub(super) fn written(&self) -> u32 {
        self.written
    }
}

/// A version-2 stream's receiving side: what the application read, and the UPD rule.
#[derive(Debug, Default)]
pub(super) struct RecvWindow {
    /// Bytes read by the application (wrapping).
    read: u32,
    /// Bytes read since the last report.
    unreported: u32,
}

impl RecvWindow {
    /// The application read `n` bytes; returns whether an UPD is due.
    pub(super) fn read(&mut self, n: usize, config: &Config) -> bool {
        let half = config.max_stream_buffer() as u32 / 2;
        let n = n as u32;
        self.read = self.read.wrapping_add(n);
        self.unreported = self.unreported.wrapping_add(n);
        // On the first read and whenever half the window was consumed. Unlike Go, also
        // when the wrapping counter is exactly 0.
        if self.unreported >= half || self.read == n {
            self.unreported = 0;
            return true;
        }
        false
    }

    /// The UPD to send now: its values are taken when it goes out, so a late UPD carries
    /// the latest count.
    pub(super) fn update(&self, config: &Config) -> WindowUpdate {
        WindowUpdate {
            consumed: self.read,
            window: config.max_stream_buffer() as u32,
        }
    }

    /// Starts the read counter at `n`, with nothing unreported (tests of the wrap).
    #[cfg(test)]
    pub(super) fn start_at(&mut self, n: u32) {
        self.read = n;
        self.unreported = 0;
    }
}

/// Checks a version-2 stream's unread bytes against the most it could legally hold: the
/// larger of the peer's assumed initial window and ours, plus one frame in flight.
pub(super) fn police(sid: u32, buffered: usize, config: &Config) -> Result<(), ProtocolError> {
    let limit = (INITIAL_PEER_WINDOW as usize).max(config.max_stream_buffer()) + MAX_PAYLOAD_LEN;
    if buffered > limit {
        return Err(ProtocolError::WindowExceeded {
            sid,
            buffered,
            limit,
        });
    }
    Ok(())
}
