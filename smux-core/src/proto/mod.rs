//! The sans-IO smux session: every rule of the protocol, with no I/O, no clock reads, no
//! async and no spawning.
//!
//! An [`Engine`] is one end of one session. It is driven from outside:
//!
//! * **inputs**: [`handle_input`](Engine::handle_input) with bytes read from the connection,
//!   [`handle_eof`](Engine::handle_eof) / [`handle_io_error`](Engine::handle_io_error) when
//!   the connection ends, [`handle_timeout`](Engine::handle_timeout) when
//!   [`poll_timeout`](Engine::poll_timeout)'s deadline passes;
//! * **commands**: [`open`](Engine::open), [`accept`](Engine::accept), [`read`](Engine::read),
//!   [`write`](Engine::write), [`finish`](Engine::finish), [`close_stream`](Engine::close_stream),
//!   [`close`](Engine::close), [`shutdown`](Engine::shutdown);
//! * **outputs**: [`poll_transmit`](Engine::poll_transmit) (frames to write),
//!   [`poll_timeout`](Engine::poll_timeout) (the next deadline),
//!   [`poll_event`](Engine::poll_event) (readiness changes), [`close_reason`](Engine::close_reason).
//!
//! After any input or command, poll the outputs again: transmit until it gives nothing,
//! re-arm the timer, and drain the events.
//!
//! # Where this differs from Go's xtaci/smux, on purpose
//!
//! The wire stays compatible; these are local choices.
//! * **Accept backlog**: Go stops reading the whole connection while its accept queue is
//!   full. Here a SYN past [`Config::accept_backlog`] (or past [`Config::max_streams`]) is
//!   refused with a FIN, that stream's frames are dropped without charging the receive budget,
//!   and [`Stats::refused_streams`] counts it. Reading never stalls on the application.
//! * **Protocol errors** close the session at once and fail every pending call; Go stops
//!   reading but leaves the connection open.
//! * **Half-close**: data received after both FINs crossed stays readable; Go 1.5.54+ drops it.
//! * **Open** registers the stream before its SYN is queued, so a fast reply is never lost.
//! * **UPD at `numRead == 0`** (after the counter wraps) is sent; Go skips it.
//! * **A version-2 peer that ignores our window** (more unread bytes on one stream than
//!   `max(262144, max_stream_buffer)` plus one frame) is a protocol error; Go does not police
//!   windows.
//! * **Local close** flushes queued data and FINs (bounded by [`Config::close_timeout`]); Go
//!   sends nothing.
//! * **Keepalive** closes the session when no frame arrived for exactly the timeout, counted
//!   only while the engine is willing to read; Go checks on a ticker (1x..2x the timeout).
//!
//! # Memory bound
//!
//! Whatever the peer sends, the engine holds at most:
//! * inbound stream data: [`Config::max_receive_buffer`] + 65535 bytes (the budget is checked
//!   before each header, so one frame may overshoot it); data for unknown, refused or
//!   released streams is dropped, not buffered. Payloads are copied out of the caller's input
//!   into exactly sized buffers (pieces of 1 KiB or more) or packed together (smaller pieces,
//!   up to 4 KiB a run) in a per-stream buffer that grows by doubling with what it holds, so
//!   the allocator holds at most that much data, plus the packing buffers' slack (at most as
//!   much again as they hold, and at most 4 KiB per stream), plus about 48 bytes of
//!   bookkeeping per buffered piece (every piece but a packed run holds at least 1 KiB, and
//!   runs alternate with such pieces, so this stays under 10% of the data); a drained stream
//!   keeps no receive memory. A payload of 1 KiB or more is assembled whole before its
//!   stream sees it (and is charged then); buffers of payloads read to their end are kept
//!   for the next payloads of the same size, so that a steady flow of full frames allocates
//!   nothing: they count against the receive budget (buffered data and recycled buffers
//!   together stay within it) and are freed 1 to 2 s after the last large payload, as are
//!   at most 4 written-out send buffers and one emptied piece queue (at most 128 KiB) kept
//!   for the same reason;
//! * outbound stream data: [`Config::max_stream_send_buffer`] per open stream;
//! * control frames: at most one pending NOP, one SYN and one UPD per stream, and at most
//!   [`MAX_PENDING_REFUSALS`] refusal FINs: once that many wait, input is not read until they
//!   are sent (a peer that floods SYNs and never reads our FINs stalls only itself, and
//!   keepalive, which keeps running, ends it);
//! * streams: at most [`Config::max_streams`] plus those refused;
//! * readiness: one flag set and one queue entry per stream, never an unbounded event queue.
//!
//! [`Engine::assert_invariants`] checks these after every step in the tests.

mod stream;
mod transmit;

#[cfg(test)]
mod tests;

pub use transmit::Transmit;

use crate::config::Config;
use crate::error::{CloseReason, OpenError, ProtocolError, StreamError};
use crate::frame::{
    Cmd, Header, Version, WindowUpdate, HEADER_LEN, MAX_PAYLOAD_LEN, UPD_PAYLOAD_LEN,
};
use bytes::{Bytes, BytesMut};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::Instant;
use stream::{RecvPool, StreamState, INITIAL_PEER_WINDOW};

/// The most refusal FINs that may wait to be sent; past it the engine reads no more input
/// until they have gone out.
pub const MAX_PENDING_REFUSALS: usize = 1024;

/// Which end of the connection this is. It decides the stream ids: the client opens odd
/// ids from 3, the server even ids from 2 (from [`Config::first_stream_id`] if set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Opens streams 3, 5, 7, ...
    Client,
    /// Opens streams 2, 4, 6, ...
    Server,
}

/// A stream's id, as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u32);

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A readiness change reported by [`Engine::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A stream that waited can make progress.
    Stream {
        /// The stream.
        id: StreamId,
        /// Data, end of stream or an error is ready for a reader that waited.
        readable: bool,
        /// Room in the send buffer, or the buffer drained, for a writer or flush that waited.
        writable: bool,
    },
    /// A stream opened by the peer is ready for [`Engine::accept`].
    Incoming,
    /// The session ended; see [`Engine::close_reason`]. Reported once.
    Closed,
}

/// Counters of a session, from [`Engine::stats`].
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
    /// Streams the peer opened that were refused (backlog full, stream limit, shutting down).
    pub refused_streams: u64,
    /// Protocol errors seen (0 or 1: the first one closes the session).
    pub protocol_errors: u64,
}

/// A control frame waiting to go out. Control frames go before data.
#[derive(Debug, Clone, Copy)]
enum Control {
    Syn(u32),
    /// The stream's UPD; its values are taken when it is sent.
    Upd(u32),
    /// A FIN refusing a stream the peer opened.
    Refuse(u32),
    Nop,
}

/// Where the input parser is.
#[derive(Debug, Clone, Copy)]
enum RxState {
    Header,
    /// Inside a PSH payload: `remaining` bytes for `sid`, buffered if `keep`.
    Payload {
        sid: u32,
        remaining: usize,
        keep: bool,
    },
}

/// The most written-out send buffers kept for reuse.
const SEND_POOL: usize = 4;

/// How long recycled buffers are kept, at most, once no large payload moves.
const POOL_IDLE: std::time::Duration = std::time::Duration::from_secs(2);

/// Payload bytes on their way into a stream.
enum Received<'a> {
    /// A piece of a small payload, packed with its neighbours.
    Packed(&'a [u8]),
    /// A whole large payload.
    Whole(Bytes),
}

impl Received<'_> {
    fn len(&self) -> usize {
        match self {
            Received::Packed(p) => p.len(),
            Received::Whole(p) => p.len(),
        }
    }
}

/// The session's lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Open,
    /// Refusing new streams; closes once no stream is left.
    Draining,
    /// Flushing queued frames until done or the deadline.
    Closing {
        deadline: Instant,
    },
    Closed(CloseReason),
}

/// One end of an smux session, as a state machine. See the [module docs](self).
#[derive(Debug)]
pub struct Engine {
    config: Config,
    version: Version,
    role: Role,
    phase: Phase,
    close_reported: bool,

    /// The next id to open; past `u32::MAX` when exhausted.
    next_id: u64,
    streams: HashMap<u32, StreamState>,
    /// Streams counted against `max_streams`: not done and not released-and-flushing.
    live_streams: usize,
    accept_queue: VecDeque<u32>,
    incoming_ready: bool,

    rx: RxState,
    /// A payload of at least `PACK_BELOW` bytes arriving in pieces: it is handed to its
    /// stream once whole, in a buffer of exactly its size.
    assembling: BytesMut,
    /// Read payload buffers kept for reuse, and when to let them go if none is taken.
    pool: RecvPool,
    pool_release: Option<Instant>,
    /// Send buffers whose frames have all been written, kept for streams whose own buffer
    /// is still pinned by frames in flight (at most `SEND_POOL` of them).
    send_pool: Vec<BytesMut>,
    /// The session receive budget (Go's token bucket); may go one frame negative.
    bucket: i64,

    control: VecDeque<Control>,
    nop_queued: bool,
    refusals_queued: usize,
    /// Streams with something to send, served round-robin.
    active: VecDeque<u32>,

    /// Streams whose readiness changed.
    dirty: VecDeque<u32>,

    next_nop: Option<Instant>,
    /// When keepalive gives up if no header arrives; `None` while not reading.
    rx_deadline: Option<Instant>,
    /// Reading resumed since the last clock reading: restart the keepalive clock.
    rx_restart: bool,

    stats: Stats,
}

/// The first id `role` opens: Go's unless the config names one, kept to the role's parity.
fn first_id(role: Role, configured: Option<u32>) -> u64 {
    let odd = role == Role::Client;
    match configured {
        None if odd => 3,
        None => 2,
        Some(id) => u64::from(id) + u64::from((id % 2 == 1) != odd),
    }
}

impl Engine {
    /// A new session end at time `now`.
    pub fn new(role: Role, config: Config, now: Instant) -> Self {
        let keepalive = config.keep_alive();
        Self {
            version: config.version(),
            role,
            phase: Phase::Open,
            close_reported: false,
            next_id: first_id(role, config.first_stream_id()),
            streams: HashMap::new(),
            live_streams: 0,
            accept_queue: VecDeque::new(),
            incoming_ready: false,
            rx: RxState::Header,
            assembling: BytesMut::new(),
            pool: RecvPool::default(),
            pool_release: None,
            send_pool: Vec::new(),
            bucket: config.max_receive_buffer() as i64,
            control: VecDeque::new(),
            nop_queued: false,
            refusals_queued: 0,
            active: VecDeque::new(),
            dirty: VecDeque::new(),
            next_nop: keepalive.then(|| now + config.keep_alive_interval()),
            rx_deadline: keepalive.then(|| now + config.keep_alive_timeout()),
            rx_restart: false,
            stats: Stats::default(),
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.role
    }

    // ---------------------------------------------------------------- inputs

    /// Takes bytes read from the connection from the front of `input` and returns how many
    /// it consumed. What it leaves (a partial header, or anything once the receive budget is
    /// spent) must be offered again, with more bytes after it, once
    /// [`wants_input`](Self::wants_input) is true.
    ///
    /// Stream payloads are copied into the streams' buffers, so `input` can be a reused
    /// read buffer and no received byte keeps a larger allocation alive.
    pub fn handle_input(&mut self, now: Instant, input: &[u8]) -> usize {
        self.clock(now);
        let mut rest = input;
        while !self.is_closed() {
            match self.rx {
                RxState::Header => {
                    if self.bucket <= 0 || self.refusals_queued >= MAX_PENDING_REFUSALS {
                        break;
                    }
                    let Some(head) = rest.first_chunk::<HEADER_LEN>() else {
                        break;
                    };
                    let header = match Header::decode(head, self.version) {
                        Ok(h) => h,
                        Err(e) => {
                            self.protocol_error(e.into());
                            break;
                        }
                    };
                    let body = &rest[HEADER_LEN..];
                    if header.cmd == Cmd::Upd {
                        let Some(payload) = body.first_chunk::<UPD_PAYLOAD_LEN>() else {
                            break;
                        };
                        self.header_seen(now);
                        self.handle_upd(header.sid, WindowUpdate::decode(payload));
                        rest = &body[UPD_PAYLOAD_LEN..];
                    } else {
                        self.header_seen(now);
                        self.handle_header(header);
                        rest = body;
                    }
                }
                RxState::Payload {
                    sid,
                    remaining,
                    keep,
                } => {
                    if rest.is_empty() {
                        break;
                    }
                    let n = remaining.min(rest.len());
                    if keep {
                        self.receive(now, sid, &rest[..n], remaining);
                    }
                    rest = &rest[n..];
                    self.rx = if n == remaining {
                        RxState::Header
                    } else {
                        RxState::Payload {
                            sid,
                            remaining: remaining - n,
                            keep,
                        }
                    };
                }
            }
        }
        self.update_rx_clock(now);
        input.len() - rest.len()
    }

    /// Whether the engine takes more input now. False while the receive budget is spent
    /// (the application must read first), while [`MAX_PENDING_REFUSALS`] refusals wait to be
    /// sent (transmit first), and after the session ended; stop reading the connection then,
    /// and ask again after the application read or frames were transmitted.
    pub fn wants_input(&self) -> bool {
        !self.is_closed()
            && ((self.bucket > 0 && self.refusals_queued < MAX_PENDING_REFUSALS)
                || matches!(self.rx, RxState::Payload { .. }))
    }

    /// Whether [`poll_transmit`](Self::poll_transmit) has something to do: frames to send,
    /// or a closing session to finish.
    pub fn wants_transmit(&self) -> bool {
        match self.phase {
            Phase::Closed(_) => false,
            Phase::Closing { .. } => true,
            Phase::Draining if self.live_streams == 0 && self.accept_queue.is_empty() => true,
            _ => !self.control.is_empty() || !self.active.is_empty(),
        }
    }

    /// The connection reached end of file: the session ends with [`CloseReason::PeerClosed`].
    pub fn handle_eof(&mut self) {
        self.end(CloseReason::PeerClosed);
    }

    /// Reading or writing the connection failed: the session ends with that error.
    pub fn handle_io_error(&mut self, err: &std::io::Error) {
        self.end(CloseReason::io(err));
    }

    /// Call when the deadline from [`poll_timeout`](Self::poll_timeout) has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.clock(now);
        match self.phase {
            Phase::Closed(_) => return,
            Phase::Closing { deadline } if now >= deadline => {
                self.end(CloseReason::Local);
                return;
            }
            _ => {}
        }
        if self.pool_release.is_some_and(|at| now >= at) {
            // No large payload moved for a while: give the recycled buffers back.
            self.pool.clear();
            self.send_pool = Vec::new();
            self.pool_release = None;
        }
        if let Some(deadline) = self.rx_deadline {
            if now >= deadline {
                self.end(CloseReason::KeepaliveTimeout(
                    self.config.keep_alive_timeout(),
                ));
                return;
            }
        }
        if let Some(at) = self.next_nop {
            if now >= at {
                if !self.nop_queued {
                    self.nop_queued = true;
                    self.control.push_back(Control::Nop);
                }
                let interval = self.config.keep_alive_interval();
                let mut next = at + interval;
                if next <= now {
                    // Far behind (a stalled driver): don't fire a burst of catch-up NOPs.
                    next = now + interval;
                }
                self.next_nop = Some(next);
            }
        }
    }

    // ---------------------------------------------------------------- outputs

    /// The next time [`handle_timeout`](Self::handle_timeout) must be called, if any.
    /// Changes after every input and command: ask again each time.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let deadlines = match self.phase {
            Phase::Closed(_) => return None,
            Phase::Closing { deadline } => [Some(deadline), None, None],
            _ => [self.next_nop, self.rx_deadline, self.pool_release],
        };
        deadlines.into_iter().flatten().min()
    }

    /// Appends frames to `out` until it holds at least `max_bytes` or nothing is left to
    /// send; returns the number of frames added. Control frames (SYN, UPD, NOP, refusals)
    /// go first; stream data is served round-robin, one frame per stream per turn, and a
    /// stream's FIN follows its data. Call again after every input or command until it
    /// returns 0.
    #[must_use = "the frames must be written to the connection"]
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Transmit, max_bytes: usize) -> usize {
        self.clock(now);
        if matches!(self.phase, Phase::Closed(_)) {
            return 0;
        }
        while let Some(spent) = out.take_spent() {
            if self.send_pool.len() < SEND_POOL {
                self.send_pool.push(spent);
                self.keep_pools(now);
            }
        }
        let mut frames = 0;
        while out.len() < max_bytes {
            if self.next_control(out) || self.next_data(out) {
                frames += 1;
            } else {
                break;
            }
        }
        if let Phase::Closing { .. } = self.phase {
            // Streams blocked on a window have data but are not in `active`.
            if self.control.is_empty() && !self.streams.values().any(StreamState::has_pending_send)
            {
                self.end(CloseReason::Local);
            }
        }
        frames
    }

    /// The next readiness change, if any. Drain it after every input and command.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        if let Phase::Closed(_) = self.phase {
            if !self.close_reported {
                self.close_reported = true;
                return Some(Event::Closed);
            }
        }
        if self.incoming_ready {
            self.incoming_ready = false;
            return Some(Event::Incoming);
        }
        while let Some(sid) = self.dirty.pop_front() {
            let Some(s) = self.streams.get_mut(&sid) else {
                continue;
            };
            s.dirty = false;
            let (readable, writable) = (s.wake_read, s.wake_write);
            s.wake_read = false;
            s.wake_write = false;
            if readable || writable {
                return Some(Event::Stream {
                    id: StreamId(sid),
                    readable,
                    writable,
                });
            }
        }
        None
    }

    /// Why the session ended, once it has.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        match &self.phase {
            Phase::Closed(reason) => Some(reason),
            _ => None,
        }
    }

    /// Whether the session is flushing its last frames after [`close`](Self::close) (or a
    /// drained [`shutdown`](Self::shutdown)).
    pub fn is_closing(&self) -> bool {
        matches!(self.phase, Phase::Closing { .. })
    }

    /// Whether the session ended.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed(_))
    }

    /// The session's counters.
    pub fn stats(&self) -> Stats {
        let mut stats = self.stats;
        stats.open_streams = self.live_streams;
        stats.buffered_in = self.streams.values().map(|s| s.recv_len).sum();
        stats.buffered_out = self.streams.values().map(|s| s.send.len()).sum();
        stats
    }

    // ---------------------------------------------------------------- commands

    /// Opens a stream. Its SYN is queued; data may be written at once.
    pub fn open(&mut self) -> Result<StreamId, OpenError> {
        match &self.phase {
            Phase::Open => {}
            Phase::Closed(reason) => return Err(OpenError::SessionClosed(reason.clone())),
            Phase::Draining | Phase::Closing { .. } => return Err(OpenError::ShuttingDown),
        }
        if self.live_streams >= self.config.max_streams() {
            return Err(OpenError::TooManyStreams {
                limit: self.config.max_streams(),
            });
        }
        // Skip ids the peer already opened (nothing stops it from using ours; Go would
        // replace its stream, we leave it alone).
        let sid = loop {
            let Ok(sid) = u32::try_from(self.next_id) else {
                return Err(OpenError::IdsExhausted);
            };
            self.next_id += 2;
            if !self.streams.contains_key(&sid) {
                break sid;
            }
        };
        self.streams.insert(sid, StreamState::new());
        self.live_streams += 1;
        self.control.push_back(Control::Syn(sid));
        Ok(StreamId(sid))
    }

    /// Takes the next stream the peer opened, if one waits. After the session ended, the
    /// streams already queued are still handed out, then the close reason.
    pub fn accept(&mut self) -> Result<Option<StreamId>, CloseReason> {
        if let Some(sid) = self.accept_queue.pop_front() {
            return Ok(Some(StreamId(sid)));
        }
        match &self.phase {
            Phase::Closed(reason) => Err(reason.clone()),
            _ => Ok(None),
        }
    }

    /// Reads buffered data into `buf`. `Ok(0)` (with a non-empty `buf`) is the end of the
    /// stream: the peer's FIN arrived and every byte before it was read.
    /// [`StreamError::Blocked`] means no data yet: wait for a readable event. After the
    /// session ended, buffered data is still read, then the error says why it ended.
    pub fn read(&mut self, id: StreamId, buf: &mut [u8]) -> Result<usize, StreamError> {
        let mut n = 0;
        self.read_with(id, buf.len(), &mut |piece| {
            buf[n..n + piece.len()].copy_from_slice(piece);
            n += piece.len();
        })
    }

    /// Like [`read`](Self::read), but hands up to `max` buffered bytes to `sink`, one call
    /// per contiguous piece, instead of into a slice: for callers whose destination is not
    /// a plain initialized slice (tokio's `ReadBuf`). Returns how many bytes `sink` got;
    /// `Ok(0)` (with `max > 0`) is the end of the stream.
    pub fn read_with(
        &mut self,
        id: StreamId,
        max: usize,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<usize, StreamError> {
        self.readable_stream(id)?;
        if max == 0 {
            return Ok(0);
        }
        let s = self.streams.get_mut(&id.0).expect("checked readable");
        let n = s.read_with(max, sink, &mut self.pool);
        if n > 0 {
            self.consumed(id.0, n);
            return Ok(n);
        }
        self.no_data(id.0).map(|()| 0)
    }

    /// Like [`read`](Self::read), but hands over up to `max` bytes of the next buffered
    /// payload without copying. `Ok(None)` is the end of the stream.
    pub fn read_chunk(&mut self, id: StreamId, max: usize) -> Result<Option<Bytes>, StreamError> {
        self.readable_stream(id)?;
        if max == 0 {
            return Ok(Some(Bytes::new()));
        }
        let s = self.streams.get_mut(&id.0).expect("checked readable");
        if let Some(chunk) = s.read_chunk(max, &mut self.pool) {
            self.consumed(id.0, chunk.len());
            return Ok(Some(chunk));
        }
        self.no_data(id.0).map(|()| None)
    }

    fn readable_stream(&mut self, id: StreamId) -> Result<&mut StreamState, StreamError> {
        match self.streams.get_mut(&id.0) {
            Some(s) if !s.released => Ok(s),
            _ => Err(StreamError::UnknownStream),
        }
    }

    /// Accounts for `n` bytes the application read: refunds the budget and, in version 2,
    /// reports the consumption to the peer as Go's receiver does.
    fn consumed(&mut self, sid: u32, n: usize) {
        if self.version == Version::V2 {
            let half = self.config.max_stream_buffer() as u32 / 2;
            let s = self.streams.get_mut(&sid).expect("stream was just read");
            let n32 = n as u32;
            s.num_read = s.num_read.wrapping_add(n32);
            s.incr = s.incr.wrapping_add(n32);
            // On the first read and whenever half the window was consumed. Unlike Go, also
            // when the wrapping counter is exactly 0.
            if s.incr >= half || s.num_read == n32 {
                s.incr = 0;
                // Also after our own FIN: the peer may still be sending.
                if !s.upd_queued {
                    s.upd_queued = true;
                    self.control.push_back(Control::Upd(sid));
                }
            }
        }
        self.refund(n);
        self.trim_pool();
        self.maybe_done(sid);
    }

    /// A read found no data: end of stream (`Ok`), or why not.
    fn no_data(&mut self, sid: u32) -> Result<(), StreamError> {
        let s = self.streams.get_mut(&sid).expect("checked by the caller");
        if s.fin_received {
            return Ok(());
        }
        if let Phase::Closed(reason) = &self.phase {
            return Err(StreamError::SessionClosed(reason.clone()));
        }
        s.read_waiting = true;
        Err(StreamError::Blocked)
    }

    /// Queues `data` for the stream; returns how much fit in its send buffer.
    /// [`StreamError::Blocked`] means none fit: wait for a writable event.
    pub fn write(&mut self, id: StreamId, data: &[u8]) -> Result<usize, StreamError> {
        let limit = self.config.max_stream_send_buffer();
        self.writable_stream(id)?;
        if data.is_empty() {
            return Ok(0);
        }
        let s = self.streams.get_mut(&id.0).expect("checked writable");
        let room = limit.saturating_sub(s.send.len());
        if room == 0 {
            s.write_waiting = true;
            return Err(StreamError::Blocked);
        }
        let n = room.min(data.len());
        if !s.send.try_reclaim(n) {
            // The buffer is full and frames still in flight pin it: move the unsent bytes to
            // a written-out buffer instead of a new allocation.
            let need = s.send.len() + n;
            if let Some(i) = self.send_pool.iter_mut().position(|b| b.try_reclaim(need)) {
                let mut fresh = self.send_pool.swap_remove(i);
                fresh.extend_from_slice(&s.send);
                s.send = fresh;
            }
        }
        s.send.extend_from_slice(&data[..n]);
        self.schedule(id.0);
        Ok(n)
    }

    /// Whether every byte written to the stream has been framed into a
    /// [`Transmit`]. If not, a writable event follows when it has.
    pub fn poll_flushed(&mut self, id: StreamId) -> Result<bool, StreamError> {
        let closed = self.close_reason().cloned();
        let Some(s) = self.streams.get_mut(&id.0) else {
            return Ok(true);
        };
        if s.send.is_empty() {
            return Ok(true);
        }
        if let Some(reason) = closed {
            return Err(StreamError::SessionClosed(reason));
        }
        s.flush_waiting = true;
        Ok(false)
    }

    /// Half-closes the stream: a FIN follows the data already written. The stream stays
    /// readable. Finishing twice is a no-op.
    pub fn finish(&mut self, id: StreamId) -> Result<(), StreamError> {
        let s = match self.writable_stream(id) {
            Ok(s) => s,
            Err(StreamError::WriteClosed) => return Ok(()),
            Err(e) => return Err(e),
        };
        s.fin_queued = true;
        self.schedule(id.0);
        Ok(())
    }

    /// Lets go of the stream: unread data is dropped (and its budget refunded), queued data
    /// is still sent, then a FIN if none was sent. The id is forgotten once that FIN is out.
    pub fn close_stream(&mut self, id: StreamId) {
        let sid = id.0;
        let Some(s) = self.streams.get_mut(&sid) else {
            return;
        };
        if s.released {
            return;
        }
        s.released = true;
        let dropped = s.discard_recv();
        if !s.done {
            s.fin_queued = true;
        }
        if !s.done {
            self.live_streams -= 1;
        }
        self.refund(dropped);
        self.schedule(sid);
        self.maybe_remove(sid);
    }

    /// Closes the session: no new streams; queued data and FINs for every open stream are
    /// flushed for at most [`Config::close_timeout`], then the session ends with
    /// [`CloseReason::Local`].
    pub fn close(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Closing { .. } | Phase::Closed(_)) {
            return;
        }
        self.phase = Phase::Closing {
            deadline: now + self.config.close_timeout(),
        };
        let sids: Vec<u32> = self.streams.keys().copied().collect();
        for sid in sids {
            if let Some(s) = self.streams.get_mut(&sid) {
                if !s.done {
                    s.fin_queued = true;
                    self.schedule(sid);
                }
            }
        }
        for sid in std::mem::take(&mut self.accept_queue) {
            self.close_stream(StreamId(sid));
        }
    }

    /// Graceful drain: new streams are refused from now on (local opens fail with
    /// [`OpenError::ShuttingDown`], the peer's are refused with a FIN); once every open
    /// stream finished both ways or was closed, the session closes as by
    /// [`close`](Self::close).
    pub fn shutdown(&mut self, now: Instant) {
        if self.phase == Phase::Open {
            self.phase = Phase::Draining;
        }
        self.clock(now);
    }

    // ---------------------------------------------------------------- internals

    /// Notes a clock reading: restarts the keepalive clock if reading resumed, and moves a
    /// draining session whose streams are all gone to closing.
    fn clock(&mut self, now: Instant) {
        if self.phase == Phase::Draining && self.live_streams == 0 && self.accept_queue.is_empty() {
            self.close(now);
        }
        if self.rx_restart {
            self.rx_restart = false;
            if self.config.keep_alive() && self.bucket > 0 {
                self.rx_deadline = Some(now + self.config.keep_alive_timeout());
            }
        }
    }

    fn header_seen(&mut self, now: Instant) {
        if self.config.keep_alive() {
            self.rx_deadline = Some(now + self.config.keep_alive_timeout());
        }
    }

    /// The keepalive clock runs only while we are willing to read.
    fn update_rx_clock(&mut self, now: Instant) {
        if self.bucket <= 0 && matches!(self.rx, RxState::Header) {
            self.rx_deadline = None;
        } else if self.rx_deadline.is_none() && self.config.keep_alive() && !self.is_closed() {
            self.rx_deadline = Some(now + self.config.keep_alive_timeout());
        }
    }

    fn refund(&mut self, n: usize) {
        let was_stalled = self.bucket <= 0;
        self.bucket += n as i64;
        if was_stalled && self.bucket > 0 {
            self.rx_restart = true;
        }
    }

    fn handle_header(&mut self, header: Header) {
        let sid = header.sid;
        match header.cmd {
            Cmd::Nop | Cmd::Upd => {}
            Cmd::Syn => self.handle_syn(sid),
            Cmd::Fin => self.handle_fin(sid),
            Cmd::Psh => {
                let remaining = usize::from(header.length);
                if remaining > 0 {
                    let keep = matches!(self.streams.get(&sid), Some(s) if !s.released && !s.done);
                    self.rx = RxState::Payload {
                        sid,
                        remaining,
                        keep,
                    };
                }
            }
        }
    }

    fn handle_syn(&mut self, sid: u32) {
        if self.streams.contains_key(&sid) {
            return; // Go ignores a SYN for a live id.
        }
        let full = self.accept_queue.len() >= self.config.accept_backlog()
            || self.live_streams >= self.config.max_streams();
        if self.phase != Phase::Open || full {
            // Room is guaranteed: input is not read while the refusal queue is full.
            self.stats.refused_streams += 1;
            self.refusals_queued += 1;
            self.control.push_back(Control::Refuse(sid));
            return;
        }
        self.streams.insert(sid, StreamState::new());
        self.live_streams += 1;
        self.accept_queue.push_back(sid);
        self.incoming_ready = true;
    }

    fn handle_fin(&mut self, sid: u32) {
        let Some(s) = self.streams.get_mut(&sid) else {
            return;
        };
        if s.fin_received {
            return;
        }
        s.fin_received = true;
        self.wake_reader(sid);
        self.maybe_done(sid);
        self.maybe_remove(sid);
    }

    fn handle_upd(&mut self, sid: u32, update: WindowUpdate) {
        let Some(s) = self.streams.get_mut(&sid) else {
            return;
        };
        let inflight = s.num_written.wrapping_sub(update.consumed) as i32;
        if inflight < 0 {
            let written = s.num_written;
            self.protocol_error(ProtocolError::ConsumedBeyondWritten {
                sid,
                consumed: update.consumed,
                written,
            });
            return;
        }
        s.peer_consumed = update.consumed;
        s.peer_window = update.window;
        self.schedule(sid);
    }

    /// The recycled buffers were just used: keep them 1 to 2 s more. The deadline moves at
    /// most about once a second, so that a driver's timer is not reset per frame.
    fn keep_pools(&mut self, now: Instant) {
        if self.pool_release.is_none_or(|at| at < now + POOL_IDLE / 2) {
            self.pool_release = Some(now + POOL_IDLE);
        }
    }

    /// Recycled receive buffers and buffered data together stay within the budget.
    fn trim_pool(&mut self) {
        self.pool.trim(self.bucket.max(0) as usize);
    }

    /// Takes `piece` of a payload with `remaining` bytes still to come (the piece included).
    /// Small payloads are packed as they arrive; a large one is assembled whole first, so
    /// that it lands in one exactly sized (and, in a steady flow, recycled) buffer.
    fn receive(&mut self, now: Instant, sid: u32, piece: &[u8], remaining: usize) {
        if self.assembling.is_empty() && remaining < stream::PACK_BELOW {
            self.deliver(sid, Received::Packed(piece));
            return;
        }
        if self.assembling.is_empty() {
            self.assembling = self.pool.take(remaining);
            self.keep_pools(now);
        }
        self.assembling.extend_from_slice(piece);
        if piece.len() == remaining {
            let whole = std::mem::take(&mut self.assembling).freeze();
            self.deliver(sid, Received::Whole(whole));
        }
    }

    /// Appends received data to a live stream and charges the budget.
    fn deliver(&mut self, sid: u32, data: Received<'_>) {
        let n = data.len();
        let Some(s) = self.streams.get_mut(&sid) else {
            return;
        };
        if s.released || s.done {
            // Closed while its frame was arriving: drop it uncharged.
            if let Received::Whole(piece) = data {
                self.pool.give(piece);
                self.trim_pool();
            }
            return;
        }
        match data {
            Received::Packed(piece) => s.push_recv(piece, &mut self.pool),
            Received::Whole(piece) => s.push_piece(piece, &mut self.pool),
        }
        let buffered = s.recv_len;
        self.bucket -= n as i64;
        self.trim_pool();
        self.stats.bytes_in += n as u64;
        self.wake_reader(sid);
        if self.version == Version::V2 {
            let limit = (INITIAL_PEER_WINDOW as usize).max(self.config.max_stream_buffer())
                + MAX_PAYLOAD_LEN;
            if buffered > limit {
                self.protocol_error(ProtocolError::WindowExceeded {
                    sid,
                    buffered,
                    limit,
                });
            }
        }
    }

    fn next_control(&mut self, out: &mut Transmit) -> bool {
        while let Some(c) = self.control.pop_front() {
            let header = |cmd, length, sid| Header { cmd, length, sid }.encode(self.version);
            match c {
                Control::Nop => {
                    self.nop_queued = false;
                    out.push_header(&header(Cmd::Nop, 0, 0));
                }
                Control::Refuse(sid) => {
                    self.refusals_queued -= 1;
                    out.push_header(&header(Cmd::Fin, 0, sid));
                }
                Control::Syn(sid) => out.push_header(&header(Cmd::Syn, 0, sid)),
                Control::Upd(sid) => {
                    let Some(s) = self.streams.get_mut(&sid) else {
                        continue;
                    };
                    s.upd_queued = false;
                    if s.released {
                        // Nobody reads it any more: no report, and it may now be forgotten.
                        self.maybe_remove(sid);
                        continue;
                    }
                    let update = WindowUpdate {
                        consumed: s.num_read,
                        window: self.config.max_stream_buffer() as u32,
                    };
                    out.push_header(&header(Cmd::Upd, UPD_PAYLOAD_LEN as u16, sid));
                    out.push_header(&update.encode());
                }
            }
            return true;
        }
        false
    }

    fn next_data(&mut self, out: &mut Transmit) -> bool {
        while let Some(sid) = self.active.pop_front() {
            let frame_size = self.config.max_frame_size();
            let send_limit = self.config.max_stream_send_buffer();
            let v2 = self.version == Version::V2;
            let Some(s) = self.streams.get_mut(&sid) else {
                continue;
            };
            s.scheduled = false;
            if !s.send.is_empty() {
                let mut n = s.send.len().min(frame_size);
                if v2 {
                    n = n.min(s.window_available());
                }
                if n == 0 {
                    // Blocked on the peer's window; an UPD reschedules it.
                    continue;
                }
                let payload = s.send.split_to(n).freeze();
                if v2 {
                    s.num_written = s.num_written.wrapping_add(n as u32);
                }
                let header = Header {
                    cmd: Cmd::Psh,
                    length: n as u16,
                    sid,
                };
                out.push_header(&header.encode(self.version));
                out.push_payload(payload);
                self.stats.bytes_out += n as u64;
                let s = self.streams.get_mut(&sid).expect("present");
                // A blocked writer wakes once half the buffer is free, not per frame: it
                // then refills it in one write while the other half keeps the flow going.
                if s.write_waiting && s.send.len() <= send_limit / 2 {
                    s.write_waiting = false;
                    s.wake_write = true;
                }
                if s.send.is_empty() && s.flush_waiting {
                    s.flush_waiting = false;
                    s.wake_write = true;
                }
                if s.wake_write {
                    self.mark_dirty(sid);
                }
            } else if s.fin_queued && !s.fin_sent {
                s.fin_sent = true;
                let header = Header {
                    cmd: Cmd::Fin,
                    length: 0,
                    sid,
                };
                out.push_header(&header.encode(self.version));
                self.maybe_done(sid);
                self.maybe_remove(sid);
            } else {
                continue;
            }
            self.schedule(sid);
            return true;
        }
        false
    }

    /// Puts the stream in the round-robin queue if it has something it may send.
    fn schedule(&mut self, sid: u32) {
        let v2 = self.version == Version::V2;
        let Some(s) = self.streams.get_mut(&sid) else {
            return;
        };
        if s.scheduled || !s.has_pending_send() {
            return;
        }
        if v2 && !s.send.is_empty() && s.window_available() == 0 {
            return;
        }
        s.scheduled = true;
        self.active.push_back(sid);
    }

    /// Reports the stream readable if a reader waits.
    fn wake_reader(&mut self, sid: u32) {
        if let Some(s) = self.streams.get_mut(&sid) {
            if s.read_waiting {
                s.read_waiting = false;
                s.wake_read = true;
                self.mark_dirty(sid);
            }
        }
    }

    fn mark_dirty(&mut self, sid: u32) {
        if let Some(s) = self.streams.get_mut(&sid) {
            if !s.dirty {
                s.dirty = true;
                self.dirty.push_back(sid);
            }
        }
    }

    fn writable_stream(&mut self, id: StreamId) -> Result<&mut StreamState, StreamError> {
        let closed = self.close_reason().cloned();
        let Some(s) = self.streams.get_mut(&id.0) else {
            return Err(StreamError::UnknownStream);
        };
        if s.released {
            return Err(StreamError::UnknownStream);
        }
        if s.fin_queued {
            return Err(StreamError::WriteClosed);
        }
        if let Some(reason) = closed {
            return Err(StreamError::SessionClosed(reason));
        }
        Ok(s)
    }

    /// A stream whose FINs crossed and whose data was all read is done: its buffers are
    /// freed and it no longer counts as open.
    fn maybe_done(&mut self, sid: u32) {
        let Some(s) = self.streams.get_mut(&sid) else {
            return;
        };
        if s.done || s.released || !(s.fin_sent && s.fin_received && s.recv_len == 0) {
            return;
        }
        s.done = true;
        s.shrink();
        self.live_streams -= 1;
    }

    /// A released stream whose FIN is out is forgotten.
    fn maybe_remove(&mut self, sid: u32) {
        let Some(s) = self.streams.get(&sid) else {
            return;
        };
        // A queued UPD names the stream: it goes (or is dropped) first, so that the control
        // queue never holds entries for forgotten streams.
        if s.released && (s.fin_sent || s.done) && !s.has_pending_send() && !s.upd_queued {
            self.streams.remove(&sid);
        }
    }

    fn protocol_error(&mut self, err: ProtocolError) {
        self.stats.protocol_errors += 1;
        self.end(CloseReason::Protocol(err));
    }

    /// Checks the engine's internal invariants and its memory bound; panics with a message
    /// naming the broken one. For tests and fuzzing: it walks every stream.
    pub fn assert_invariants(&self) {
        let max_rx = self.config.max_receive_buffer();
        let buffered: usize = self.streams.values().map(|s| s.recv_len).sum();
        assert_eq!(
            self.bucket + buffered as i64,
            max_rx as i64,
            "receive budget out of balance"
        );
        assert!(
            buffered <= max_rx + MAX_PAYLOAD_LEN,
            "inbound bound broken: {buffered} buffered"
        );
        assert!(
            self.pool.held() as i64 <= self.bucket.max(0),
            "recycled buffers beyond the unused budget"
        );
        assert!(
            self.send_pool.len() <= SEND_POOL,
            "send pool over its bound"
        );
        assert!(
            self.assembling.capacity() <= MAX_PAYLOAD_LEN,
            "assembling more than one frame"
        );
        let mut live = 0;
        let mut upd = 0;
        for (sid, s) in &self.streams {
            assert_eq!(
                s.recv_len,
                s.recv.iter().map(Bytes::len).sum::<usize>() + s.recv_tail.len(),
                "sid {sid}: recv_len"
            );
            assert!(
                s.recv_tail.capacity() <= stream::PACK_BUFFER,
                "sid {sid}: packing buffer grew"
            );
            assert!(
                s.send.len() <= self.config.max_stream_send_buffer(),
                "sid {sid}: send buffer over its limit"
            );
            assert!(!s.done || s.recv_len == 0, "sid {sid}: done with data");
            assert!(
                !s.released || s.recv_len == 0,
                "sid {sid}: released with data"
            );
            if !s.done && !s.released {
                live += 1;
            }
            upd += usize::from(s.upd_queued);
        }
        // Each flag set matches exactly one queue entry.
        for (queue, flag, name) in [
            (
                &self.active,
                (|s: &StreamState| s.scheduled) as fn(&StreamState) -> bool,
                "active",
            ),
            (&self.dirty, |s: &StreamState| s.dirty, "dirty"),
        ] {
            let flagged = self.streams.values().filter(|s| flag(s)).count();
            let queued = queue
                .iter()
                .filter(|sid| self.streams.get(sid).is_some_and(flag))
                .count();
            assert_eq!(flagged, queued, "{name} queue and flags disagree");
        }
        assert_eq!(live, self.live_streams, "live stream count");
        assert!(self.live_streams <= self.config.max_streams(), "stream cap");
        assert!(
            self.accept_queue.len() <= self.config.accept_backlog(),
            "backlog"
        );
        assert!(self.refusals_queued <= MAX_PENDING_REFUSALS, "refusals");
        assert!(self.dirty.len() <= self.streams.len(), "dirty queue");
        assert!(self.active.len() <= self.streams.len(), "active queue");
        let syns = self
            .control
            .iter()
            .filter(|c| matches!(c, Control::Syn(_)))
            .count();
        let nops = self
            .control
            .iter()
            .filter(|c| matches!(c, Control::Nop))
            .count();
        let refusals = self
            .control
            .iter()
            .filter(|c| matches!(c, Control::Refuse(_)))
            .count();
        assert!(nops <= 1, "more than one NOP queued");
        assert_eq!(refusals, self.refusals_queued, "refusal count");
        assert!(syns <= self.streams.len(), "SYN queue");
        let upds = self
            .control
            .iter()
            .filter(|c| matches!(c, Control::Upd(_)))
            .count();
        assert_eq!(upds, upd, "UPD queue and flags disagree");
    }

    /// Ends the session: no more frames go out, every waiter is woken.
    fn end(&mut self, reason: CloseReason) {
        if self.is_closed() {
            return;
        }
        self.phase = Phase::Closed(reason);
        self.control.clear();
        self.active.clear();
        self.refusals_queued = 0;
        self.nop_queued = false;
        self.rx_deadline = None;
        self.next_nop = None;
        for s in self.streams.values_mut() {
            s.scheduled = false;
            s.upd_queued = false;
        }
    }
}
