//! Receiving: the input parser, payload assembly, and the keepalive receive clock.
//!
//! The [`Receiver`] turns the connection's bytes into [`Input`]s, one at a time; the engine
//! decides what each means for its streams. A payload of at least [`PACK_BELOW`] bytes is
//! assembled whole, in one exactly sized buffer, before its stream sees it; smaller ones
//! are handed on piece by piece to be packed.

use super::events::Events;
use super::flow::{self, Budget};
use super::pool::{keep_pools, RecvPool};
use super::recv_buf::PACK_BELOW;
use super::send::{Sender, MAX_PENDING_REFUSALS};
use super::store::Store;
use super::stream::{Sending, Stream};
use super::timer::{Timer, Timers};
use super::Stats;
use crate::config::Config;
use crate::error::{CloseReason, ProtocolError};
use crate::frame::{Cmd, Header, Version, WindowUpdate, HEADER_LEN, UPD_PAYLOAD_LEN};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::time::Instant;

/// What the first 8 bytes from a peer that sent no valid smux header look like, if they
/// look like another protocol's.
fn not_smux(head: &[u8; HEADER_LEN]) -> Option<ProtocolError> {
    let looks_like = match head {
        [b'H', b'T', b'T', b'P', b'/', ..] => "an HTTP response",
        [b'G', b'E', b'T', b' ', ..]
        | [b'P', b'O', b'S', b'T', ..]
        | [b'P', b'U', b'T', b' ', ..]
        | [b'H', b'E', b'A', b'D', ..] => "an HTTP request",
        [b'S', b'S', b'H', b'-', ..] => "an SSH banner",
        [0x16 | 0x15, 0x03, 0x00..=0x04, ..] => "a TLS record",
        [b'P', b'R', b'I', b' ', b'*', ..] => "an HTTP/2 preface",
        _ => return None,
    };
    Some(ProtocolError::NotSmux {
        first_bytes: *head,
        looks_like,
    })
}

/// Where the parser is.
#[derive(Debug, Clone, Copy)]
enum State {
    Header,
    /// Inside a PSH payload: `remaining` bytes for `sid`, handed on if `keep`.
    Payload {
        sid: u32,
        remaining: usize,
        keep: bool,
    },
}

/// One step of the input.
#[derive(Debug)]
pub(super) enum Input<'a> {
    /// A SYN, FIN, NOP or PSH header (a PSH's payload follows as [`Input::Payload`] once
    /// [`Receiver::expect_payload`] was told whether to keep it).
    Header(Header),
    /// A UPD with its payload.
    Upd { sid: u32, update: WindowUpdate },
    /// Payload bytes of a kept PSH.
    Payload { sid: u32, data: Received<'a> },
    /// Payload bytes of a PSH for a stream that takes no data (let go, refused, unknown):
    /// dropped, but a let-go stream still grants window for them.
    Discarded { sid: u32, len: usize },
}

/// Payload bytes on their way into a stream.
#[derive(Debug)]
pub(super) enum Received<'a> {
    /// A piece of a small payload, to be packed with its neighbours.
    Packed(&'a [u8]),
    /// A whole large payload.
    Whole(Bytes),
}

impl Received<'_> {
    pub(super) fn len(&self) -> usize {
        match self {
            Received::Packed(p) => p.len(),
            Received::Whole(p) => p.len(),
        }
    }
}

/// The input parser's state.
#[derive(Debug)]
pub(super) struct Receiver {
    state: State,
    /// A large payload arriving in pieces.
    assembling: BytesMut,
    /// A valid frame header has arrived: the peer speaks smux, in our version.
    seen_frame: bool,
}

impl Default for Receiver {
    fn default() -> Self {
        Self {
            state: State::Header,
            assembling: BytesMut::new(),
            seen_frame: false,
        }
    }
}

impl Receiver {
    /// Takes bytes from the front of `input` and returns how many it consumed, and the
    /// protocol error that stopped it, if any.
    pub(super) fn handle_input(
        &mut self,
        now: Instant,
        input: &[u8],
        ctx: &mut Ctx<'_>,
    ) -> (usize, Result<(), ProtocolError>) {
        let mut rest = input;
        let result = loop {
            let may_start = ctx.budget.has_room() && ctx.tx.refusals() < MAX_PENDING_REFUSALS;
            let step = match self.next(&mut rest, ctx.version, may_start, ctx.pool) {
                Ok(Some(step)) => step,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            };
            let handled = match step {
                Input::Header(header) => ctx.handle_header(header, self),
                Input::Upd { sid, update } => ctx.handle_upd(sid, update),
                Input::Payload { sid, data } => ctx.deliver(now, sid, data),
                Input::Discarded { sid, len } => {
                    ctx.discard(sid, len);
                    Ok(())
                }
            };
            if handled.is_err() {
                break handled;
            }
        };
        let used = input.len() - rest.len();
        if used > 0 {
            // Any byte is a sign of life, not only a whole header: over a slow link one
            // large frame can take longer than the timeout to arrive.
            Self::bytes_seen(now, ctx.timers, ctx.config);
        }
        (used, result)
    }

    /// Inside a frame's payload (it is read whatever the budget: the header was charged).
    pub(super) fn mid_frame(&self) -> bool {
        matches!(self.state, State::Payload { .. })
    }

    /// Why the session ends at the connection's end, `unconsumed` bytes after the last the
    /// engine took: cleanly at a frame boundary once every stream is finished both ways
    /// (the peer's FIN received and ours sent), else unexpectedly. A connection cut just
    /// after the peer half-closed its streams, while ours could still reply, is no clean
    /// end: it cannot be told from a network fault, and the replies are lost.
    pub(super) fn eof_reason(&self, store: &Store, unconsumed: usize) -> CloseReason {
        let open_streams = store
            .iter()
            .filter(|(_, s)| !s.fin_received() || s.sending() != Sending::FinSent)
            .count();
        let mid_frame = unconsumed > 0 || self.mid_frame();
        if open_streams == 0 && !mid_frame {
            return CloseReason::PeerClosed;
        }
        CloseReason::UnexpectedEof {
            open_streams,
            mid_frame,
            before_first_frame: !self.seen_frame,
        }
    }

    /// Whether a valid frame header ever arrived.
    pub(super) fn seen_frame(&self) -> bool {
        self.seen_frame
    }

    /// Takes the next step from the front of `rest`, or `None` if it needs more bytes (or
    /// may not start a frame: `may_start` is false while the budget is spent or refusals
    /// back up). Payload of a dropped PSH is skipped without a step.
    fn next<'a>(
        &mut self,
        rest: &mut &'a [u8],
        version: Version,
        may_start: bool,
        pool: &mut RecvPool,
    ) -> Result<Option<Input<'a>>, ProtocolError> {
        loop {
            match self.state {
                State::Header => {
                    if !may_start {
                        return Ok(None);
                    }
                    let Some(head) = rest.first_chunk::<HEADER_LEN>() else {
                        return Ok(None);
                    };
                    let header = match Header::decode(head, version) {
                        Ok(header) => header,
                        Err(e) if !self.seen_frame => {
                            return Err(not_smux(head).unwrap_or(e.into()))
                        }
                        Err(e) => return Err(e.into()),
                    };
                    self.seen_frame = true;
                    let body = &rest[HEADER_LEN..];
                    if header.cmd == Cmd::Upd {
                        let Some(payload) = body.first_chunk::<UPD_PAYLOAD_LEN>() else {
                            return Ok(None);
                        };
                        *rest = &body[UPD_PAYLOAD_LEN..];
                        let update = WindowUpdate::decode(payload);
                        return Ok(Some(Input::Upd {
                            sid: header.sid,
                            update,
                        }));
                    }
                    *rest = body;
                    return Ok(Some(Input::Header(header)));
                }
                State::Payload {
                    sid,
                    remaining,
                    keep,
                } => {
                    if rest.is_empty() {
                        return Ok(None);
                    }
                    let n = remaining.min(rest.len());
                    let (piece, after) = rest.split_at(n);
                    *rest = after;
                    self.state = if n == remaining {
                        State::Header
                    } else {
                        State::Payload {
                            sid,
                            remaining: remaining - n,
                            keep,
                        }
                    };
                    if !keep {
                        return Ok(Some(Input::Discarded { sid, len: n }));
                    }
                    if let Some(data) = self.assemble(piece, remaining, pool) {
                        return Ok(Some(Input::Payload { sid, data }));
                    }
                }
            }
        }
    }

    /// A PSH header of `len` bytes was read: its payload follows, for its stream if `keep`.
    pub(super) fn expect_payload(&mut self, sid: u32, len: usize, keep: bool) {
        if len > 0 {
            self.state = State::Payload {
                sid,
                remaining: len,
                keep,
            };
        }
    }

    /// Takes `piece` of a payload with `remaining` bytes still to come (the piece included).
    /// Small payloads pass as they arrive; a large one is assembled whole first, so that it
    /// lands in one exactly sized (and, in a steady flow, recycled) buffer.
    fn assemble<'a>(
        &mut self,
        piece: &'a [u8],
        remaining: usize,
        pool: &mut RecvPool,
    ) -> Option<Received<'a>> {
        if self.assembling.is_empty() {
            if remaining < PACK_BELOW {
                return Some(Received::Packed(piece));
            }
            self.assembling = pool.take(remaining);
        }
        self.assembling.extend_from_slice(piece);
        (piece.len() == remaining)
            .then(|| Received::Whole(std::mem::take(&mut self.assembling).freeze()))
    }

    // The keepalive receive clock: `Timer::Idle` runs while we are willing to read, and
    // restarts whenever bytes arrive; silence, even in the middle of a frame, ends it.

    /// Bytes arrived: the peer is alive.
    pub(super) fn bytes_seen(now: Instant, timers: &mut Timers, config: &Config) {
        if config.keep_alive() {
            timers.set(Timer::Idle, now + config.keep_alive_timeout());
        }
    }

    /// After input: the clock stops while reading is paused on the budget (the peer is not
    /// silent, we are not listening) and starts again once reading may resume.
    pub(super) fn update_clock(
        &self,
        now: Instant,
        timers: &mut Timers,
        budget: &Budget,
        config: &Config,
    ) {
        if !budget.has_room() && !self.mid_frame() {
            timers.stop(Timer::Idle);
        } else if !timers.is_armed(Timer::Idle) && config.keep_alive() {
            timers.set(Timer::Idle, now + config.keep_alive_timeout());
        }
    }

    /// At a clock reading: reading resumed since the last one, so the peer gets a whole
    /// timeout from now.
    pub(super) fn restart_clock(
        now: Instant,
        timers: &mut Timers,
        budget: &mut Budget,
        config: &Config,
    ) {
        if budget.take_resumed() && config.keep_alive() && budget.has_room() {
            timers.set(Timer::Idle, now + config.keep_alive_timeout());
        }
    }

    #[cfg(any(test, feature = "fuzzing"))]
    pub(super) fn assert_invariants(&self) {
        assert!(
            self.assembling.capacity() <= crate::frame::MAX_PAYLOAD_LEN,
            "assembling more than one frame"
        );
    }
}

/// What received frames act on: the streams and the session's parts.
pub(super) struct Ctx<'a> {
    pub(super) store: &'a mut Store,
    pub(super) accept_queue: &'a mut VecDeque<u32>,
    pub(super) tx: &'a mut Sender,
    pub(super) events: &'a mut Events,
    pub(super) budget: &'a mut Budget,
    pub(super) pool: &'a mut RecvPool,
    pub(super) timers: &'a mut Timers,
    pub(super) stats: &'a mut Stats,
    pub(super) config: &'a Config,
    pub(super) version: Version,
    /// New streams are accepted (the session is neither draining nor closing).
    pub(super) accepting: bool,
    /// This end is the client (it opens odd ids; the peer, even ones).
    pub(super) client: bool,
}

impl Ctx<'_> {
    fn handle_header(&mut self, header: Header, rx: &mut Receiver) -> Result<(), ProtocolError> {
        let sid = header.sid;
        match header.cmd {
            Cmd::Nop | Cmd::Upd => {}
            Cmd::Syn => self.handle_syn(sid)?,
            Cmd::Fin => self.handle_fin(sid),
            Cmd::Psh => {
                let keep = self.store.get(sid).is_some_and(Stream::takes_data);
                rx.expect_payload(sid, usize::from(header.length), keep);
            }
        }
        Ok(())
    }

    fn handle_syn(&mut self, sid: u32) -> Result<(), ProtocolError> {
        if self.store.contains(sid) {
            return Ok(()); // Go ignores a SYN for a live id.
        }
        if (sid % 2 == 1) == self.client {
            return Err(ProtocolError::OwnParity { sid });
        }
        // Streams let go of but not yet finished by the peer linger (to grant it window):
        // they count too, so that a peer that never finishes cannot grow the store.
        let full = self.accept_queue.len() >= self.config.accept_backlog()
            || self.store.live() >= self.config.max_streams()
            || self.store.len() >= 2 * self.config.max_streams();
        if !self.accepting || full {
            // Room is guaranteed: input is not read while the refusal queue is full.
            self.stats.refused_streams += 1;
            self.tx.queue_refusal(sid);
            return Ok(());
        }
        self.store.insert(sid, self.config);
        self.accept_queue.push_back(sid);
        self.events.incoming();
        Ok(())
    }

    /// Payload for a stream that takes no data was dropped. A stream the application let go
    /// of still reports it as consumed, so that the peer's writer is never left waiting
    /// for window (this wire has no reset); after the peer's FIN nothing more can come.
    fn discard(&mut self, sid: u32, len: usize) {
        self.stats.discarded_bytes += len as u64;
        if self.version != Version::V2 {
            return;
        }
        if let Some(s) = self.store.get_mut(sid) {
            self.tx.consumed(sid, s, len, self.config);
        }
    }

    fn handle_fin(&mut self, sid: u32) {
        let Some(mut entry) = self.store.entry(sid) else {
            return;
        };
        let s = entry.stream();
        if !s.receive_fin() {
            return;
        }
        self.events.readable(sid, s);
        entry.settle();
    }

    fn handle_upd(&mut self, sid: u32, update: WindowUpdate) -> Result<(), ProtocolError> {
        let Some(s) = self.store.get_mut(sid) else {
            return Ok(());
        };
        s.send_window.update(sid, update)?;
        self.tx.schedule(sid, s, self.version == Version::V2);
        Ok(())
    }

    /// Appends received data to a live stream and charges the budget.
    fn deliver(&mut self, now: Instant, sid: u32, data: Received<'_>) -> Result<(), ProtocolError> {
        let n = data.len();
        if matches!(data, Received::Whole(_)) {
            keep_pools(self.timers, now);
        }
        let Some(s) = self.store.get_mut(sid).filter(|s| s.takes_data()) else {
            // Let go of, or no longer read, while its frame was arriving: dropped
            // uncharged, and still granted window as any discarded payload.
            if let Received::Whole(piece) = data {
                self.pool.give(piece);
                self.pool.trim(self.budget.unused());
            }
            self.discard(sid, n);
            return Ok(());
        };
        match data {
            Received::Packed(piece) => s.recv.push_packed(piece, self.pool),
            Received::Whole(piece) => s.recv.push_whole(piece, self.pool),
        }
        self.budget.charge(n);
        self.pool.trim(self.budget.unused());
        self.stats.bytes_in += n as u64;
        self.events.readable(sid, s);
        if self.version == Version::V2 {
            s.recv_window.arrived(n, now);
            flow::police(sid, s.recv.len(), s.recv_window.window() as usize)?;
        }
        Ok(())
    }
}
