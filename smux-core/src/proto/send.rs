//! Sending: control frames first, then stream data round-robin, a frame per stream per
//! turn, and a stream's FIN only after its last byte of data.

use super::events::Events;
use super::pool::SendPool;
use super::queue::Queue;
use super::store::Store;
use super::stream::{Life, Sending, Stream};
use super::transmit::Transmit;
use super::Stats;
use crate::config::Config;
use crate::frame::{Cmd, Header, Version, UPD_PAYLOAD_LEN};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;

/// The most refusal FINs that may wait to be sent; past it the engine reads no more input
/// until they have gone out.
pub const MAX_PENDING_REFUSALS: usize = 1024;

/// Marks the round-robin queue's membership in a stream.
#[derive(Debug)]
pub(super) struct WriteQueue;

/// Marks the UPD queue's membership in a stream.
#[derive(Debug)]
pub(super) struct UpdQueue;

/// Marks, in a stream, the queue of writers waiting for room in the session's send budget.
#[derive(Debug)]
pub(super) struct RoomQueue;

/// Bytes written to one stream and not yet framed, at most `max_stream_send_buffer`.
#[derive(Debug, Default)]
pub(super) struct SendBuffer {
    buf: BytesMut,
}

impl SendBuffer {
    pub(super) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Copies as much of `data` as fits under `limit`; returns how much (0 if full).
    pub(super) fn write(&mut self, data: &[u8], limit: usize, pool: &mut SendPool) -> usize {
        let n = limit.saturating_sub(self.buf.len()).min(data.len());
        if n == 0 {
            return 0;
        }
        if !self.buf.try_reclaim(n) {
            // The buffer is full and frames still in flight pin it: move the unsent bytes to
            // a written-out buffer instead of a new allocation.
            if let Some(mut fresh) = pool.take(self.buf.len() + n) {
                fresh.extend_from_slice(&self.buf);
                self.buf = fresh;
            }
        }
        self.buf.extend_from_slice(&data[..n]);
        n
    }

    /// The next `n` bytes, as a frame's payload.
    fn split_frame(&mut self, n: usize) -> Bytes {
        self.buf.split_to(n).freeze()
    }
}

/// What waits to be sent, session-wide.
#[derive(Debug, Default)]
pub(super) struct Sender {
    /// A keepalive NOP is due.
    nop: bool,
    /// SYNs of streams we opened.
    syns: VecDeque<u32>,
    /// FINs refusing streams the peer opened.
    refusals: VecDeque<u32>,
    /// Streams whose UPD is due; its values are taken when it is sent.
    upds: Queue<UpdQueue>,
    /// Streams with something they may send, served round-robin.
    writers: Queue<WriteQueue>,
    /// Bytes in every stream's send buffer together, against `max_send_buffer`.
    held: usize,
    /// Streams whose writer waits for room in that budget, first come first woken.
    room_waiters: Queue<RoomQueue>,
}

impl Sender {
    /// How long the stream's send buffer may grow now: to `max_stream_send_buffer`, within
    /// the session's send budget, but always to one frame's worth, so that streams whose
    /// peer grants no window cannot stall the others.
    pub(super) fn buffer_limit(&self, stream: &Stream, config: &Config) -> usize {
        let own = config.max_stream_send_buffer();
        let floor = config.max_frame_size().min(own);
        let room = config.max_send_buffer().saturating_sub(self.held);
        let len = stream.send.len();
        own.min(len + room.max(floor.saturating_sub(len)))
    }

    /// Bytes queued on every stream together, not framed yet.
    pub(super) fn held(&self) -> usize {
        self.held
    }

    /// `n` bytes were queued on a stream; a writer that got none because the session's
    /// budget is spent (not its own buffer) waits in line for room.
    pub(super) fn queued(&mut self, sid: u32, stream: &mut Stream, n: usize, config: &Config) {
        self.held += n;
        if n == 0 && stream.send.len() < config.max_stream_send_buffer() {
            self.room_waiters.push(sid, stream);
        }
    }

    /// Wakes writers waiting for room in the session's send budget: about one per frame's
    /// worth of room (a woken writer that finds none waits in line again). A stream still
    /// in line whose writer was woken meanwhile (its own frames went out) takes no share.
    pub(super) fn wake_for_room(
        &mut self,
        store: &mut Store,
        events: &mut Events,
        config: &Config,
    ) {
        let mut room = config.max_send_buffer().saturating_sub(self.held);
        while room > 0 {
            let Some(mut entry) = self.room_waiters.pop(store) else {
                break;
            };
            let sid = entry.sid();
            if events.room(sid, entry.stream()) {
                room = room.saturating_sub(config.max_frame_size());
            }
        }
    }

    pub(super) fn queue_nop(&mut self) {
        self.nop = true;
    }

    pub(super) fn queue_syn(&mut self, sid: u32) {
        self.syns.push_back(sid);
    }

    /// Queues a FIN refusing the peer's stream. The caller keeps the count under
    /// [`MAX_PENDING_REFUSALS`] (input is not read while it is reached).
    pub(super) fn queue_refusal(&mut self, sid: u32) {
        self.refusals.push_back(sid);
    }

    /// Refusal FINs waiting.
    pub(super) fn refusals(&self) -> usize {
        self.refusals.len()
    }

    pub(super) fn queue_upd(&mut self, sid: u32, stream: &mut Stream) {
        self.upds.push(sid, stream);
    }

    /// Version 2: `n` bytes of the stream were consumed (read by the application, or
    /// dropped unread); queues its UPD if the window rule says one is due. Also after our
    /// own FIN (the peer may still be sending), never after the peer's (it sends nothing
    /// more, and a late frame can make a peer that closes at once reset the connection).
    pub(super) fn consumed(&mut self, sid: u32, stream: &mut Stream, n: usize, config: &Config) {
        if stream.recv_window.read(n, config.window_tuning()) && !stream.fin_received() {
            self.queue_upd(sid, stream);
        }
    }

    /// Puts the stream in the round-robin queue if it has something it may send now. A
    /// stream blocked on its version-2 window is left out until an UPD reschedules it.
    pub(super) fn schedule(&mut self, sid: u32, stream: &mut Stream, v2: bool) {
        if stream.can_send(v2) {
            self.writers.push(sid, stream);
        }
    }

    /// Queues a FIN after the data of every stream not done yet (the session closes).
    pub(super) fn finish_all(&mut self, store: &mut Store, v2: bool) {
        for sid in store.ids() {
            if let Some(s) = store.get_mut(sid).filter(|s| s.life() != Life::Done) {
                s.finish();
                self.schedule(sid, s, v2);
            }
        }
    }

    /// Frames are waiting.
    pub(super) fn has_frames(&self) -> bool {
        self.nop
            || !self.syns.is_empty()
            || !self.refusals.is_empty()
            || !self.upds.is_empty()
            || !self.writers.is_empty()
    }

    /// Control frames are waiting.
    pub(super) fn has_control(&self) -> bool {
        self.nop || !self.syns.is_empty() || !self.refusals.is_empty() || !self.upds.is_empty()
    }

    /// Forgets everything queued (the session ended).
    pub(super) fn clear(&mut self, store: &mut Store) {
        self.nop = false;
        self.syns.clear();
        self.refusals.clear();
        self.upds.clear(store);
        self.writers.clear(store);
        self.room_waiters.clear(store);
    }

    /// Appends the next control frame; false if none waits.
    pub(super) fn next_control(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let header = |cmd, length, sid| Header { cmd, length, sid }.encode(ctx.version);
        if std::mem::take(&mut self.nop) {
            ctx.out.push_header(&header(Cmd::Nop, 0, 0));
            return true;
        }
        if let Some(sid) = self.syns.pop_front() {
            ctx.out.push_header(&header(Cmd::Syn, 0, sid));
            return true;
        }
        if let Some(sid) = self.refusals.pop_front() {
            ctx.out.push_header(&header(Cmd::Fin, 0, sid));
            return true;
        }
        while let Some(mut entry) = self.upds.pop(ctx.store) {
            let sid = entry.sid();
            let s = entry.stream();
            if s.fin_received() {
                // The peer sends nothing more: a report would do no good (and, against a
                // peer that closes its connection at once, could make its kernel reset it).
                entry.settle();
                continue;
            }
            if s.recv_window.wants_growth(s.recv.len(), ctx.config) > 0 {
                // Growth takes only budget no other stream was promised.
                let room = ctx
                    .config
                    .max_receive_buffer()
                    .saturating_sub(ctx.store.promised_windows());
                if let Some(s) = ctx.store.get_mut(sid) {
                    let want = s.recv_window.wants_growth(s.recv.len(), ctx.config);
                    s.recv_window.grow(want.min(room as u32));
                }
            }
            let Some(s) = ctx.store.get_mut(sid) else {
                continue;
            };
            let update = s.recv_window.update(ctx.now, ctx.config.window_tuning());
            ctx.out
                .push_header(&header(Cmd::Upd, UPD_PAYLOAD_LEN as u16, sid));
            ctx.out.push_header(&update.encode());
            return true;
        }
        false
    }

    /// Appends the next stream's next frame (data, or its FIN once the data is out);
    /// false if no stream may send.
    pub(super) fn next_data(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let v2 = ctx.version == Version::V2;
        while let Some(mut entry) = self.writers.pop(ctx.store) {
            let sid = entry.sid();
            let s = entry.stream();
            if !s.send.is_empty() {
                let mut n = s.send.len().min(ctx.config.max_frame_size());
                if v2 {
                    n = n.min(s.send_window.available());
                }
                if n == 0 {
                    // Blocked on the peer's window; an UPD reschedules it.
                    continue;
                }
                let payload = s.send.split_frame(n);
                self.held -= n;
                if v2 {
                    s.send_window.sent(n);
                }
                let header = Header {
                    cmd: Cmd::Psh,
                    length: n as u16,
                    sid,
                };
                ctx.out.push_header(&header.encode(ctx.version));
                ctx.out.push_payload(payload);
                ctx.stats.bytes_out += n as u64;
                ctx.events
                    .framed(sid, s, ctx.config.max_stream_send_buffer());
                self.schedule(sid, s, v2);
                return true;
            }
            if s.sending() == Sending::Finishing {
                s.fin_framed();
                let header = Header {
                    cmd: Cmd::Fin,
                    length: 0,
                    sid,
                };
                ctx.out.push_header(&header.encode(ctx.version));
                // A flush waiting for the FIN to go out can go on.
                ctx.events
                    .framed(sid, s, ctx.config.max_stream_send_buffer());
                entry.settle();
                return true;
            }
        }
        false
    }

    #[cfg(any(test, feature = "fuzzing"))]
    pub(super) fn assert_invariants(&self, store: &Store) {
        assert!(self.refusals.len() <= MAX_PENDING_REFUSALS, "refusals");
        assert!(self.syns.len() <= store.len(), "SYN queue");
        let upds = self
            .upds
            .ids()
            .filter(|&sid| store.get(sid).is_some_and(|s| s.upd_queued()))
            .count();
        let flagged = store.iter().filter(|(_, s)| s.upd_queued()).count();
        assert_eq!(upds, flagged, "UPD queue and flags disagree");
        let held: usize = store.iter().map(|(_, s)| s.send.len()).sum();
        assert_eq!(self.held, held, "send budget out of balance");
    }
}

/// What framing needs besides the queues: the streams, their events, and the session's
/// settings and counters.
pub(super) struct Ctx<'a> {
    pub(super) store: &'a mut Store,
    pub(super) events: &'a mut Events,
    pub(super) stats: &'a mut Stats,
    pub(super) config: &'a Config,
    pub(super) version: Version,
    pub(super) out: &'a mut Transmit,
    pub(super) now: std::time::Instant,
}
