//! Readiness: who waits on a stream, and the events that tell the driver to wake them.
//!
//! The engine never holds an unbounded event queue: a stream is in the event queue at most
//! once (its [`Readiness`] says what to report when it comes out), plus one flag for an
//! incoming stream and one for the session's end.

use super::queue::Queue;
use super::store::Store;
use super::stream::Stream;
use super::StreamId;

/// A readiness change reported by [`Engine::poll_event`](super::Engine::poll_event).
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
    /// A stream opened by the peer is ready for [`Engine::accept`](super::Engine::accept).
    Incoming,
    /// The session ended; see [`Engine::close_reason`](super::Engine::close_reason).
    /// Reported once.
    Closed,
}

/// One stream's waiters, and what the next event reports for it.
#[derive(Debug, Default)]
pub(super) struct Readiness {
    /// A reader found nothing and waits.
    read_waiting: bool,
    /// A writer found the send buffer full and waits.
    write_waiting: bool,
    /// A flush waits for the send buffer to empty.
    flush_waiting: bool,
    /// To report in the next event.
    wake_read: bool,
    wake_write: bool,
}

impl Readiness {
    pub(super) fn reader_waits(&mut self) {
        self.read_waiting = true;
    }

    pub(super) fn writer_waits(&mut self) {
        self.write_waiting = true;
    }

    pub(super) fn flush_waits(&mut self) {
        self.flush_waiting = true;
    }

    /// Something arrived for the reader; returns whether an event is due.
    fn readable(&mut self) -> bool {
        if std::mem::take(&mut self.read_waiting) {
            self.wake_read = true;
        }
        self.wake_read
    }

    /// Room in the session's send budget: wakes a writer that waits; returns whether it
    /// did (a writer woken already, or that never waited, needs no share of the room).
    fn room(&mut self) -> bool {
        let waited = std::mem::take(&mut self.write_waiting);
        self.wake_write |= waited;
        waited
    }

    /// Data was framed and `buffered` bytes of at most `limit` are left; returns whether an
    /// event is due. A blocked writer wakes once half the buffer is free, not per frame: it
    /// then refills it in one write while the other half keeps the flow going.
    fn framed(&mut self, buffered: usize, limit: usize) -> bool {
        if self.write_waiting && buffered <= limit / 2 {
            self.write_waiting = false;
            self.wake_write = true;
        }
        if buffered == 0 && std::mem::take(&mut self.flush_waiting) {
            self.wake_write = true;
        }
        self.wake_write
    }
}

/// Marks the event queue's membership in a [`Stream`].
#[derive(Debug)]
pub(super) struct StreamEvents;

/// The session's pending events.
#[derive(Debug, Default)]
pub(super) struct Events {
    streams: Queue<StreamEvents>,
    incoming: bool,
    closed_reported: bool,
}

impl Events {
    /// Wakes the stream's reader, if one waits.
    pub(super) fn readable(&mut self, sid: u32, stream: &mut Stream) {
        if stream.ready.readable() {
            self.streams.push(sid, stream);
        }
    }

    /// Data of the stream was framed: wakes a writer or flush that can now go on.
    pub(super) fn framed(&mut self, sid: u32, stream: &mut Stream, limit: usize) {
        if stream.ready.framed(stream.send.len(), limit) {
            self.streams.push(sid, stream);
        }
    }

    /// The session's send budget has room again: wakes the stream's writer, if it waits;
    /// returns whether it did.
    pub(super) fn room(&mut self, sid: u32, stream: &mut Stream) -> bool {
        let woke = stream.ready.room();
        if woke {
            self.streams.push(sid, stream);
        }
        woke
    }

    /// A stream waits to be accepted.
    pub(super) fn incoming(&mut self) {
        self.incoming = true;
    }

    /// The next event; `closed` says whether the session has ended.
    pub(super) fn poll(&mut self, store: &mut Store, closed: bool) -> Option<Event> {
        if closed && !self.closed_reported {
            self.closed_reported = true;
            return Some(Event::Closed);
        }
        if std::mem::take(&mut self.incoming) {
            return Some(Event::Incoming);
        }
        while let Some(mut entry) = self.streams.pop(store) {
            let id = StreamId(entry.sid());
            let ready = &mut entry.stream().ready;
            let readable = std::mem::take(&mut ready.wake_read);
            let writable = std::mem::take(&mut ready.wake_write);
            if readable || writable {
                return Some(Event::Stream {
                    id,
                    readable,
                    writable,
                });
            }
        }
        None
    }
}
