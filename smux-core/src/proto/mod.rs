// The module docs (the engine, its call order, its memory bound, which file owns what)
// are a file of their own, to be read as one.
#![doc = include_str!("engine.md")]

mod events;
mod flow;
mod id;
#[cfg(any(test, feature = "fuzzing"))]
mod invariants;
mod phase;
mod pool;
mod queue;
mod recv;
mod recv_buf;
mod send;
mod stats;
mod store;
mod stream;
mod timer;
mod transmit;

#[cfg(test)]
mod tests;

pub use events::Event;
pub use id::{Role, StreamId};
pub use send::MAX_PENDING_REFUSALS;
pub use stats::Stats;
pub use transmit::Transmit;

use crate::config::Config;
use crate::error::{CloseReason, OpenError, ProtocolError, StreamError};
use crate::frame::Version;
use bytes::Bytes;
use events::Events;
use flow::Budget;
use id::IdAllocator;
use phase::Phase;
use pool::{RecvPool, SendPool};
use recv::Receiver;
use send::Sender;
use std::collections::VecDeque;
use std::time::Instant;
use store::Store;
use stream::{writable, Life, ReadLen, Stream};
use timer::{Timer, Timers};

/// One end of an smux session, as a state machine. See the [module docs](self).
#[derive(Debug)]
pub struct Engine {
    config: Config,
    version: Version,
    role: Role,
    phase: Phase,
    ids: IdAllocator,
    streams: Store,
    accept_queue: VecDeque<u32>,
    rx: Receiver,
    tx: Sender,
    budget: Budget,
    timers: Timers,
    recv_pool: RecvPool,
    send_pool: SendPool,
    events: Events,
    stats: Stats,
}

impl Engine {
    /// A new session end at time `now`.
    pub fn new(role: Role, config: Config, now: Instant) -> Self {
        let mut timers = Timers::default();
        if config.keep_alive() {
            timers.set(Timer::Ping, now + config.keep_alive_interval());
            timers.set(Timer::Idle, now + config.keep_alive_timeout());
        }
        Self {
            version: config.version(),
            role,
            phase: Phase::Open,
            ids: IdAllocator::new(role, config.first_stream_id()),
            streams: Store::default(),
            accept_queue: VecDeque::new(),
            rx: Receiver::default(),
            tx: Sender::default(),
            budget: Budget::new(&config),
            timers,
            recv_pool: RecvPool::default(),
            send_pool: SendPool::default(),
            events: Events::default(),
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
        if self.is_closed() {
            return 0;
        }
        let mut ctx = recv::Ctx {
            store: &mut self.streams,
            accept_queue: &mut self.accept_queue,
            tx: &mut self.tx,
            events: &mut self.events,
            budget: &mut self.budget,
            pool: &mut self.recv_pool,
            timers: &mut self.timers,
            stats: &mut self.stats,
            config: &self.config,
            version: self.version,
            accepting: self.phase == Phase::Open,
            client: self.role == Role::Client,
        };
        let (used, result) = self.rx.handle_input(now, input, &mut ctx);
        match result {
            Ok(()) => self
                .rx
                .update_clock(now, &mut self.timers, &self.budget, &self.config),
            Err(e) => self.protocol_error(e),
        }
        used
    }

    /// Whether the engine takes more input now. False while the receive budget is spent
    /// (the application must read first), while [`MAX_PENDING_REFUSALS`] refusals wait to be
    /// sent (transmit first), and after the session ended; stop reading the connection then,
    /// and ask again after the application read or frames were transmitted.
    pub fn wants_input(&self) -> bool {
        !self.is_closed()
            && ((self.budget.has_room() && self.tx.refusals() < MAX_PENDING_REFUSALS)
                || self.rx.mid_frame())
    }

    /// Whether [`poll_transmit`](Self::poll_transmit) has something to do: frames to send,
    /// or a closing session to finish.
    pub fn wants_transmit(&self) -> bool {
        match self.phase {
            Phase::Closed(_) => false,
            Phase::Closing => true,
            Phase::Draining if self.drained() => true,
            _ => self.tx.has_frames(),
        }
    }

    /// The connection reached end of file, `unconsumed` bytes after the last ones the
    /// engine took (a partial header can never be completed now). At a frame boundary
    /// with every stream finished by the peer, the session ends cleanly with
    /// [`CloseReason::PeerClosed`]; otherwise with [`CloseReason::UnexpectedEof`].
    pub fn handle_eof(&mut self, unconsumed: usize) {
        let reason = self.rx.eof_reason(&self.streams, unconsumed);
        self.end(reason);
    }

    /// Ends the session at once with `reason`, sending nothing more: for a driver that can
    /// no longer run it (its state was poisoned, its runtime went away).
    pub fn abort(&mut self, reason: CloseReason) {
        self.end(reason);
    }

    /// Reading or writing the connection failed: the session ends with that error.
    pub fn handle_io_error(&mut self, err: &std::io::Error) {
        self.end(CloseReason::io(err));
    }

    /// Reading the connection failed with `err`, `unconsumed` bytes of input left and
    /// `unsent` bytes of frames not yet written. A reset where an end of file would have
    /// been clean (a frame boundary, every stream finished both ways) with every frame of
    /// ours written is a clean end too, [`CloseReason::PeerClosed`]: the peer closed while
    /// a last frame of ours (a keepalive NOP, an UPD) was on its way, and its kernel
    /// answered that frame with a reset. As with an end of file, nothing tells whether the
    /// peer's application read our last bytes. Any other error ends the session with it.
    pub fn handle_read_error(&mut self, err: &std::io::Error, unconsumed: usize, unsent: usize) {
        use std::io::ErrorKind::{ConnectionAborted, ConnectionReset};
        let reset = matches!(err.kind(), ConnectionReset | ConnectionAborted);
        if reset
            && unsent == 0
            && self.rx.eof_reason(&self.streams, unconsumed) == CloseReason::PeerClosed
        {
            self.end(CloseReason::PeerClosed);
            return;
        }
        self.end(CloseReason::io(err));
    }

    /// Reports the connection's writing: `wrote` whether it took any byte since the last
    /// report, `pending` whether bytes still wait to be written. While bytes wait and none
    /// is taken for [`Config::write_timeout`], the session ends with
    /// [`CloseReason::WriteTimeout`].
    pub fn handle_write_progress(&mut self, now: Instant, wrote: bool, pending: bool) {
        if !pending || self.is_closed() {
            self.timers.stop(Timer::WriteStall);
        } else if wrote || !self.timers.is_armed(Timer::WriteStall) {
            self.timers
                .set(Timer::WriteStall, now + self.config.write_timeout());
        }
    }

    /// Call when the deadline from [`poll_timeout`](Self::poll_timeout) has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.clock(now);
        if self.is_closed() {
            return;
        }
        if self.phase == Phase::Closing && self.timers.expired(Timer::Close, now) {
            self.end(CloseReason::Local);
            return;
        }
        if self.timers.expired(Timer::PoolRelease, now) {
            // No large payload moved for a while: give the recycled buffers back.
            self.recv_pool.clear();
            self.send_pool.clear();
            self.timers.stop(Timer::PoolRelease);
        }
        if self.timers.expired(Timer::WriteStall, now) {
            self.end(CloseReason::WriteTimeout(self.config.write_timeout()));
            return;
        }
        if self.timers.expired(Timer::Idle, now) {
            let timeout = self.config.keep_alive_timeout();
            self.end(match self.rx.seen_frame() {
                true => CloseReason::KeepaliveTimeout(timeout),
                false => CloseReason::NoFrameFromPeer(timeout),
            });
            return;
        }
        if self
            .timers
            .repeat(Timer::Ping, now, self.config.keep_alive_interval())
        {
            self.tx.queue_nop();
        }
    }

    // ---------------------------------------------------------------- outputs

    /// The next time [`handle_timeout`](Self::handle_timeout) must be called, if any.
    /// Changes after every input and command: ask again each time.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Closed(_) => None,
            Phase::Closing => self.timers.get(Timer::Close),
            _ => self.timers.next_of(&[
                Timer::Ping,
                Timer::Idle,
                Timer::PoolRelease,
                Timer::WriteStall,
            ]),
        }
    }

    /// Appends frames to `out` until it holds at least `max_bytes` or nothing is left to
    /// send; returns the number of frames added. Control frames (SYN, UPD, NOP, refusals)
    /// go first; stream data is served round-robin, one frame per stream per turn, and a
    /// stream's FIN follows its data. Call again after every input or command until it
    /// returns 0.
    #[must_use = "the frames must be written to the connection"]
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Transmit, max_bytes: usize) -> usize {
        self.clock(now);
        if self.is_closed() {
            return 0;
        }
        while let Some(spent) = out.take_spent() {
            if self.send_pool.give(spent) {
                pool::keep_pools(&mut self.timers, now);
            }
        }
        let mut ctx = send::Ctx {
            store: &mut self.streams,
            events: &mut self.events,
            stats: &mut self.stats,
            config: &self.config,
            version: self.version,
            out,
            now,
        };
        let mut frames = 0;
        while ctx.out.len() < max_bytes
            && (self.tx.next_control(&mut ctx) || self.tx.next_data(&mut ctx))
        {
            frames += 1;
        }
        self.tx
            .wake_for_room(&mut self.streams, &mut self.events, &self.config);
        // Streams blocked on a window have data but are not queued.
        if self.phase == Phase::Closing
            && !self.tx.has_control()
            && !self.streams.iter().any(|(_, s)| s.has_pending_send())
        {
            self.end(CloseReason::Local);
        }
        frames
    }

    /// The next readiness change, if any. Drain it after every input and command.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let closed = self.is_closed();
        self.events.poll(&mut self.streams, closed)
    }

    /// Why the session ended, once it has.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.phase.close_reason()
    }

    /// The window a version-2 stream offers its peer now (it grows with window tuning), or
    /// `None` for an unknown stream.
    pub fn stream_window(&self, id: StreamId) -> Option<u32> {
        self.streams.get(id.0).map(|s| s.recv_window.window())
    }

    /// Whether the session is flushing its last frames after [`close`](Self::close) (or a
    /// drained [`shutdown`](Self::shutdown)).
    pub fn is_closing(&self) -> bool {
        self.phase == Phase::Closing
    }

    /// Whether the session ended.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed(_))
    }

    /// The session's counters.
    pub fn stats(&self) -> Stats {
        let mut stats = self.stats;
        stats.open_streams = self.streams.live();
        stats.buffered_in = self.streams.iter().map(|(_, s)| s.recv.len()).sum();
        stats.buffered_out = self.tx.held();
        stats
    }

    // ---------------------------------------------------------------- commands

    /// Opens a stream. Its SYN is queued; data may be written at once.
    pub fn open(&mut self) -> Result<StreamId, OpenError> {
        match &self.phase {
            Phase::Open => {}
            Phase::Closed(reason) => return Err(OpenError::SessionClosed(reason.clone())),
            Phase::Draining | Phase::Closing => return Err(OpenError::ShuttingDown),
        }
        if self.streams.live() >= self.config.max_streams() {
            return Err(OpenError::TooManyStreams {
                limit: self.config.max_streams(),
            });
        }
        let streams = &self.streams;
        let sid = self
            .ids
            .next(|sid| streams.contains(sid))
            .ok_or(OpenError::IdsExhausted)?;
        self.streams.insert(sid, &self.config);
        self.tx.queue_syn(sid);
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
        self.read_by(id, max, 0, |s, pool| {
            let n = s.recv.read_with(max, sink, pool);
            (n > 0).then_some(n)
        })
        .map(|n| n.unwrap_or(0))
    }

    /// Like [`read`](Self::read), but hands over up to `max` bytes of the next buffered
    /// payload without copying. `Ok(None)` is the end of the stream.
    pub fn read_chunk(&mut self, id: StreamId, max: usize) -> Result<Option<Bytes>, StreamError> {
        self.read_by(id, max, Bytes::new(), |s, pool| {
            s.recv.read_chunk(max, pool)
        })
    }

    /// The one read path: `take` takes data from the stream (if it has any); then the
    /// budget, the window and the stream's lifecycle account for it. `empty` is the
    /// answer to a read of 0 bytes.
    fn read_by<T: ReadLen>(
        &mut self,
        id: StreamId,
        max: usize,
        empty: T,
        take: impl FnOnce(&mut Stream, &mut RecvPool) -> Option<T>,
    ) -> Result<Option<T>, StreamError> {
        let Some(mut entry) = self.streams.entry(id.0) else {
            return Err(StreamError::UnknownStream);
        };
        let s = entry.stream();
        if s.life() == Life::Released {
            return Err(StreamError::UnknownStream);
        }
        if s.reader_gone() {
            return Ok(None); // as a socket's read side after `shutdown(SHUT_RD)`
        }
        if max == 0 {
            return Ok(Some(empty));
        }
        if let Some(data) = take(s, &mut self.recv_pool) {
            let n = data.read_len();
            if self.version == Version::V2 {
                self.tx.consumed(id.0, s, n, &self.config);
            }
            self.budget.refund(n);
            self.recv_pool.trim(self.budget.unused());
            entry.settle();
            return Ok(Some(data));
        }
        if s.fin_received() {
            return Ok(None);
        }
        if let Phase::Closed(reason) = &self.phase {
            return Err(StreamError::SessionClosed(reason.clone()));
        }
        s.ready.reader_waits();
        Err(StreamError::Blocked)
    }

    /// Queues `data` for the stream; returns how much fit in its send buffer.
    /// [`StreamError::Blocked`] means none fit: wait for a writable event.
    pub fn write(&mut self, id: StreamId, data: &[u8]) -> Result<usize, StreamError> {
        let closed = self.phase.writes_end();
        let s = writable(self.streams.get_mut(id.0), closed)?;
        if data.is_empty() {
            return Ok(0);
        }
        let limit = self.tx.buffer_limit(s, &self.config);
        let n = s.send.write(data, limit, &mut self.send_pool);
        self.tx.queued(id.0, s, n, &self.config);
        if n == 0 {
            s.ready.writer_waits();
            return Err(StreamError::Blocked);
        }
        self.tx.schedule(id.0, s, self.version == Version::V2);
        Ok(n)
    }

    /// Whether every byte written to the stream, and its FIN once it was finished, has
    /// been framed into a [`Transmit`]. If not, a writable event follows when it has.
    pub fn poll_flushed(&mut self, id: StreamId) -> Result<bool, StreamError> {
        let closed = self.close_reason().cloned();
        let Some(s) = self.streams.get_mut(id.0) else {
            return Ok(true);
        };
        if !s.has_pending_send() {
            return Ok(true);
        }
        if let Some(reason) = closed {
            return Err(StreamError::SessionClosed(reason));
        }
        s.ready.flush_waits();
        Ok(false)
    }

    /// Half-closes the stream: a FIN follows the data already written. The stream stays
    /// readable. Finishing twice is a no-op, also after the session ended.
    pub fn finish(&mut self, id: StreamId) -> Result<(), StreamError> {
        let closed = self.phase.writes_end();
        if let Some(s) = self.streams.get(id.0) {
            if s.life() != Life::Released && s.sending() != stream::Sending::Open {
                // Finished already: a no-op, even once the session has ended (as a second
                // shutdown of a socket).
                return Ok(());
            }
        }
        let s = writable(self.streams.get_mut(id.0), closed)?;
        s.finish();
        self.tx.schedule(id.0, s, self.version == Version::V2);
        Ok(())
    }

    /// Lets go of the stream: unread data is dropped (and its budget refunded), queued data
    /// is still sent, then a FIN if none was sent. The id is forgotten once that FIN is out.
    pub fn close_stream(&mut self, id: StreamId) {
        let Some(mut entry) = self.streams.entry(id.0) else {
            return;
        };
        let Some(dropped) = entry.release() else {
            return;
        };
        self.tx
            .schedule(id.0, entry.stream(), self.version == Version::V2);
        entry.settle();
        self.budget.refund(dropped);
    }

    /// The application will not read the stream again (it dropped the read half and keeps
    /// the write half): unread data is dropped and its budget refunded, and what arrives
    /// later is dropped as it comes. In version 2 the dropped bytes still count as read, so
    /// the peer's writer keeps getting window until its FIN (this wire has no reset). Without
    /// this, bytes nobody reads would stay charged, and in version 1, which has no stream
    /// window, fill the session's receive budget and stop every stream.
    pub fn stop_reading(&mut self, id: StreamId) {
        let Some(mut entry) = self.streams.entry(id.0) else {
            return;
        };
        let s = entry.stream();
        let Some(dropped) = s.stop_reading() else {
            return;
        };
        self.stats.discarded_bytes += dropped as u64;
        if self.version == Version::V2 {
            self.tx.consumed(id.0, s, dropped, &self.config);
        }
        entry.settle();
        self.budget.refund(dropped);
        self.recv_pool.trim(self.budget.unused());
    }

    /// Closes the session: no new streams; queued data and FINs for every open stream are
    /// flushed for at most [`Config::close_timeout`], then the session ends with
    /// [`CloseReason::Local`].
    pub fn close(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Closing | Phase::Closed(_)) {
            return;
        }
        self.phase = Phase::Closing;
        self.timers
            .set(Timer::Close, now + self.config.close_timeout());
        self.tx
            .finish_all(&mut self.streams, self.version == Version::V2);
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

    /// Checks the engine's internal invariants and its memory bound; panics with a message
    /// naming the broken one. For tests and fuzzing: it walks every stream. What the types
    /// guarantee (a stream in a queue at most once, its flag set while queued) needs no
    /// check.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn assert_invariants(&self) {
        invariants::check(self);
    }

    // ---------------------------------------------------------------- internals

    /// Every stream has finished or been let go, and none waits to be accepted.
    fn drained(&self) -> bool {
        self.streams.live() == 0 && self.accept_queue.is_empty()
    }

    /// Notes a clock reading: restarts the keepalive clock if reading resumed, and moves a
    /// draining session whose streams are all gone to closing.
    fn clock(&mut self, now: Instant) {
        if self.phase == Phase::Draining && self.drained() {
            self.close(now);
        }
        Receiver::restart_clock(now, &mut self.timers, &mut self.budget, &self.config);
    }

    fn protocol_error(&mut self, err: ProtocolError) {
        self.stats.protocol_errors += 1;
        self.end(CloseReason::Protocol(err));
    }

    /// Ends the session: no more frames go out, every waiter is woken.
    fn end(&mut self, reason: CloseReason) {
        if self.is_closed() {
            return;
        }
        self.phase = Phase::Closed(reason);
        self.tx.clear(&mut self.streams);
        self.timers.stop_all();
    }
}
