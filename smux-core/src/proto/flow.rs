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
//! * **Version-2 receive window** ([`RecvWindow`]): the UPD rule and window tuning. As
//!   Go's receiver, we report on the first read and whenever half of the window was read
//!   since the last report. Unlike Go, a report also goes out when the wrapping read
//!   counter lands exactly on 0, and the window offered grows to the path (see
//!   [`RecvWindow`]; off with `Config::window_tuning(false)`, which offers
//!   `max_stream_buffer` always, as Go).
//! * **Window policing** ([`police`]): a version-2 peer that buffers more unread bytes on
//!   one stream than the largest window we ever offered it plus one frame ignores flow
//!   control: a protocol error. Windows never shrink, so bytes in flight stay legal.
//!
//! All counters of bytes on the wire are `u32` and wrap, as Go's; differences are read as
//! `i32`, so they stay right across the wrap.

use crate::config::Config;
use crate::error::ProtocolError;
use crate::frame::{WindowUpdate, MAX_PAYLOAD_LEN};
use std::time::Instant;

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

    /// Starts the counters at `n` as if that much had been sent, and consumed in an UPD
    /// that offered `window` (tests of the wrap).
    #[cfg(test)]
    pub(super) fn start_at(&mut self, n: u32, window: u32) {
        self.written = n;
        self.peer_consumed = n;
        self.peer_window = window;
    }

    #[cfg(test)]
    pub(super) fn written(&self) -> u32 {
        self.written
    }
}

/// A version-2 stream's receiving side: what the application read, the UPD rule, and the
/// window it offers.
///
/// # Window tuning
///
/// A stream moves at most one window per round trip, so the window the receiver offers
/// (the UPD's `window`, which Go's sender and ours take as given) decides its speed over a
/// long path. smux has no echoed frame, but one causality stands in for it: a byte beyond
/// the limit an UPD raised can only leave the sender after that UPD reached it. So the time
/// from sending an UPD to the arrival of the first byte beyond the limit it replaced is at
/// least a round trip, and exactly one (plus queueing) when the sender was waiting for it;
/// the smallest such sample is the round-trip estimate. Then, as Linux tunes a socket's
/// receive buffer:
///
/// * Every round trip, the bytes that arrived in it are counted. A window-bound sender
///   delivers about a window per round trip; a link-bound one, a bandwidth-delay product.
/// * Over round trips under [`MIN_TUNED_RTT`] the window stays: there it is no limit.
/// * While the reader keeps up (at most a quarter of the window unread), the window grows
///   to [`TARGET_PER_RTT`] times the bytes of the last round trip when that is larger: it
///   grows quickly while the window is what holds the stream back, and stops between one
///   and two bandwidth-delay products once the link or the sender's application does. A
///   slow reader's window never grows.
/// * The window starts at `max_stream_buffer`. Growth beyond it comes only from the session
///   receive budget no other stream was promised (the budget minus the sum of every open
///   stream's window), so one stream's growth never makes the session stop reading for the
///   others; it never passes `max_stream_window` (at most `i32::MAX`: Go reads the window
///   as `int32`).
/// * Windows never shrink, so window policing follows the window offered.
#[derive(Debug)]
pub(super) struct RecvWindow {
    /// Bytes read by the application (wrapping).
    read: u32,
    /// The window offered now.
    window: u32,
    /// The limit the peer heard of last (`consumed + window` of our last UPD; before the
    /// first, Go's assumed initial window). Every UPD raises it (see [`read`](Self::read)),
    /// so it is also the highest.
    limit: u32,
    /// Bytes arrived (wrapping).
    received: u32,
    /// Bytes still to arrive before the stream is worth tuning (a window's worth).
    until_tuned: u32,
    /// The tuner's measurements, boxed once a window's worth arrived: a stream that
    /// carries little never pays for them.
    tuner: Option<Box<Tuner>>,
}

/// What window tuning measures on one stream.
#[derive(Debug, Default)]
struct Tuner {
    /// An UPD sent at this time replaced this limit; the first byte beyond it ends a
    /// round-trip sample.
    sample: Option<(Instant, u32)>,
    /// The smallest round trip seen.
    rtt: Option<std::time::Duration>,
    /// Bytes arrived since this time, in the current round trip.
    epoch: Option<(Instant, u64)>,
    /// The bytes of the last whole round trip.
    per_rtt: u64,
}

/// The window a tuned stream aims at, in bytes of the last round trip.
pub(super) const TARGET_PER_RTT: f64 = 1.75;

/// Round trips shorter than this leave the window alone: there the default window already
/// moves hundreds of MB/s, and a larger one would only queue more of one stream ahead of
/// the others (a round trip beside a bulk stream got several times slower on loopback).
pub(super) const MIN_TUNED_RTT: std::time::Duration = std::time::Duration::from_millis(2);

impl RecvWindow {
    pub(super) fn new(config: &Config) -> Self {
        Self {
            read: 0,
            window: config.max_stream_buffer() as u32,
            limit: INITIAL_PEER_WINDOW,
            received: 0,
            until_tuned: config.max_stream_buffer() as u32,
            tuner: None,
        }
    }

    /// The window offered now.
    pub(super) fn window(&self) -> u32 {
        self.window
    }

    /// Whether the round trip is long enough for the window to matter.
    fn long_path(&self) -> bool {
        self.tuner
            .as_ref()
            .is_some_and(|t| t.rtt.is_some_and(|rtt| rtt >= MIN_TUNED_RTT))
    }

    /// `n` payload bytes arrived at `now`.
    pub(super) fn arrived(&mut self, n: usize, now: Instant) {
        self.received = self.received.wrapping_add(n as u32);
        self.until_tuned = self.until_tuned.saturating_sub(n as u32);
        let Some(t) = self.tuner.as_deref_mut() else {
            return;
        };
        if let Some((sent, old_limit)) = t.sample {
            if self.received.wrapping_sub(old_limit) as i32 > 0 {
                let sample = now.saturating_duration_since(sent);
                t.rtt = Some(t.rtt.map_or(sample, |rtt| rtt.min(sample)));
                t.sample = None;
            }
        }
        let Some(rtt) = t.rtt.filter(|rtt| !rtt.is_zero()) else {
            return;
        };
        let (start, bytes) = t.epoch.get_or_insert((now, 0));
        if now.saturating_duration_since(*start) >= rtt {
            t.per_rtt = *bytes;
            t.epoch = Some((now, n as u64));
        } else {
            *bytes += n as u64;
        }
    }

    /// The application read `n` bytes; returns whether an UPD is due: when it would raise
    /// the limit the peer heard of by half a window (with tuning over a long path, a
    /// sixteenth). A window-bound sender has on average half a step less than the window
    /// in flight; a sixteenth leaves it 97% of the window, so that a window the session
    /// budget caps just above the bandwidth-delay product still fills the path (at 200 ms
    /// and 20 MB/s, one stream moved 15.8 MB/s with quarter-window UPDs, 18.5 with
    /// eighths, 19.7 with sixteenths), for sixteen 20-byte UPDs per window.
    ///
    /// Go's receiver reports on the first read and then every half window read. While the
    /// windows stay what the peer heard of, the two agree: a report raises the limit by
    /// what was read since the last. They differ at the start, where the peer assumes a
    /// window of 256 KiB: a stream that receives less than that (less half our window)
    /// sends no UPD at all. Such a report would tell a sender that is done nothing it can
    /// use, and reaches a Go peer that closes its connection after its last FIN too late:
    /// its kernel answers it with a reset that discards what we had not read yet. A window
    /// of 512 KiB or more is still reported on the first read.
    pub(super) fn read(&mut self, n: usize, tuning: bool) -> bool {
        let tuned = tuning && self.long_path();
        let step = self.window / if tuned { 16 } else { 2 };
        self.read = self.read.wrapping_add(n as u32);
        let raise = self.read.wrapping_add(self.window).wrapping_sub(self.limit) as i32;
        raise > 0 && raise as u32 >= step
    }

    /// How much the window would grow now, given `unread` bytes waiting for the reader:
    /// 0 unless the tuning rule above says grow. The caller grants at most this much (it
    /// knows the session's unpromised budget) with [`grow`](Self::grow).
    pub(super) fn wants_growth(&self, unread: usize, config: &Config) -> u32 {
        if !config.window_tuning() || unread > self.window as usize / 4 {
            return 0;
        }
        let per_rtt = match &self.tuner {
            Some(t) if self.long_path() => t.per_rtt,
            _ => 0,
        };
        let target = (per_rtt as f64 * TARGET_PER_RTT) as u64;
        let target = target.min(config.max_stream_window() as u64) as u32;
        target.saturating_sub(self.window)
    }

    /// Grows the window by `by` bytes (the caller's share of [`wants_growth`]).
    ///
    /// [`wants_growth`]: Self::wants_growth
    pub(super) fn grow(&mut self, by: u32) -> u32 {
        self.window += by;
        by
    }

    /// The UPD to send now, at `now`: its values are taken when it goes out, so a late UPD
    /// carries the latest count.
    pub(super) fn update(&mut self, now: Instant, tuning: bool) -> WindowUpdate {
        // Only an UPD that raises the limit starts a sample: the peer may still be sending
        // under the limit it has.
        let limit = self.read.wrapping_add(self.window);
        if limit.wrapping_sub(self.limit) as i32 > 0 {
            if tuning && self.until_tuned == 0 {
                let t = self.tuner.get_or_insert_with(Box::default);
                if t.sample.is_none() {
                    t.sample = Some((now, self.limit));
                }
            }
            self.limit = limit;
        }
        WindowUpdate {
            consumed: self.read,
            window: self.window,
        }
    }

    /// Starts the counters at `n` as if that much had arrived and been read, and reported
    /// in an UPD (tests of the wrap).
    #[cfg(test)]
    pub(super) fn start_at(&mut self, n: u32) {
        self.read = n;
        self.received = n;
        self.limit = n.wrapping_add(self.window);
    }
}

/// Checks a version-2 stream's unread bytes against the most it could legally hold: the
/// larger of the peer's assumed initial window and the largest window we ever offered it,
/// plus one frame in flight.
pub(super) fn police(
    sid: u32,
    buffered: usize,
    largest_window: usize,
) -> Result<(), ProtocolError> {
    let limit = (INITIAL_PEER_WINDOW as usize).max(largest_window) + MAX_PAYLOAD_LEN;
    if buffered > limit {
        return Err(ProtocolError::WindowExceeded {
            sid,
            buffered,
            limit,
        });
    }
    Ok(())
}
