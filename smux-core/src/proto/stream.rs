//! One stream's state inside the engine: its lifecycle, its buffers, its version-2 windows,
//! its readiness, and which of the session's queues it is in.

use super::events::{Readiness, StreamEvents};
use super::flow::{RecvWindow, SendWindow};
use super::queue::{Membership, Queued};
use super::recv_buf::RecvBuffer;
use super::send::{RoomQueue, SendBuffer, UpdQueue, WriteQueue};
use crate::error::{CloseReason, StreamError};
use bytes::Bytes;

/// Our sending direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sending {
    /// The application may write.
    Open,
    /// Finished or closed by the application: a FIN follows the queued data.
    Finishing,
    /// Our FIN is on its way.
    FinSent,
}

/// The peer's sending direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Receiving {
    Open,
    /// The peer's FIN arrived: what is buffered is all there will be.
    FinReceived,
}

/// Who still needs the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Life {
    /// In use: it counts against `max_streams`.
    Open,
    /// Both FINs crossed and every byte was read: buffers are freed, only the id stays
    /// reserved until the application lets go.
    Done,
    /// The application let go: inbound data is dropped uncharged, and the state is
    /// forgotten once our FIN is out.
    Released,
}

#[derive(Debug)]
pub(super) struct Stream {
    /// Received data not yet read.
    pub(super) recv: RecvBuffer,
    /// Data written by the application and not yet framed.
    pub(super) send: SendBuffer,
    /// Version 2: what we read, and when the peer hears of it.
    pub(super) recv_window: RecvWindow,
    /// Version 2: how much the peer lets us send.
    pub(super) send_window: SendWindow,
    /// Who waits, and what to report.
    pub(super) ready: Readiness,
    sending: Sending,
    receiving: Receiving,
    life: Life,
    /// The application dropped its read half while the write half lives on: inbound data
    /// is dropped as for a released stream (see [`Stream::stop_reading`]).
    reader_gone: bool,
    /// In the round-robin queue of streams with something to send.
    in_write_queue: Queued,
    /// An UPD for this stream is queued.
    in_upd_queue: Queued,
    /// In the queue of streams whose readiness changed.
    in_event_queue: Queued,
    /// Its writer waits for room in the session's send budget.
    in_room_queue: Queued,
}

impl Stream {
    pub(super) fn new(config: &crate::config::Config) -> Self {
        Self {
            recv: RecvBuffer::default(),
            send: SendBuffer::default(),
            recv_window: RecvWindow::new(config),
            send_window: SendWindow::default(),
            ready: Readiness::default(),
            sending: Sending::Open,
            receiving: Receiving::Open,
            life: Life::Open,
            reader_gone: false,
            in_write_queue: Queued::default(),
            in_upd_queue: Queued::default(),
            in_event_queue: Queued::default(),
            in_room_queue: Queued::default(),
        }
    }

    pub(super) fn life(&self) -> Life {
        self.life
    }

    pub(super) fn sending(&self) -> Sending {
        self.sending
    }

    /// The peer's FIN arrived.
    pub(super) fn fin_received(&self) -> bool {
        self.receiving == Receiving::FinReceived
    }

    /// Inbound data is kept (charged and buffered) rather than dropped.
    pub(super) fn takes_data(&self) -> bool {
        self.life == Life::Open && !self.reader_gone
    }

    /// The application stopped reading the stream (see [`Stream::stop_reading`]).
    pub(super) fn reader_gone(&self) -> bool {
        self.reader_gone
    }

    /// Nobody will read the stream again (its read half was dropped; it still sends):
    /// unread data is dropped, and so is what arrives later. Returns the bytes dropped, or
    /// `None` if the stream took no data already.
    pub(super) fn stop_reading(&mut self) -> Option<usize> {
        if !self.takes_data() {
            return None;
        }
        self.reader_gone = true;
        Some(self.recv.discard())
    }

    /// An UPD for this stream waits in the control queue.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(super) fn upd_queued(&self) -> bool {
        self.in_upd_queue.is_set()
    }

    /// Something waits to be framed: data, or a FIN after it.
    pub(super) fn has_pending_send(&self) -> bool {
        !self.send.is_empty() || self.sending == Sending::Finishing
    }

    /// Whether the stream may frame something now: pending data the window allows (in
    /// version 2), or a FIN.
    pub(super) fn can_send(&self, v2: bool) -> bool {
        if self.send.is_empty() {
            return self.sending == Sending::Finishing;
        }
        !v2 || self.send_window.available() > 0
    }

    /// Records the peer's FIN; false if it had arrived already.
    pub(super) fn receive_fin(&mut self) -> bool {
        let first = self.receiving == Receiving::Open;
        self.receiving = Receiving::FinReceived;
        first
    }

    /// Queues our FIN after the data (a no-op once queued or sent).
    pub(super) fn finish(&mut self) {
        if self.sending == Sending::Open {
            self.sending = Sending::Finishing;
        }
    }

    /// The FIN was framed.
    pub(super) fn fin_framed(&mut self) {
        self.sending = Sending::FinSent;
    }

    /// Lets the stream go (see [`Life::Released`]): unread data is dropped and a FIN is
    /// queued if none was. Returns the bytes dropped, or `None` if let go already.
    pub(super) fn release(&mut self) -> Option<usize> {
        if self.life == Life::Released {
            return None;
        }
        self.life = Life::Released;
        self.finish();
        Some(self.recv.discard())
    }

    /// An open stream whose FINs crossed and whose data was all read becomes done and
    /// frees its buffers; returns whether it just did.
    pub(super) fn finish_if_done(&mut self) -> bool {
        let done = self.life == Life::Open
            && self.sending == Sending::FinSent
            && self.fin_received()
            && self.recv.is_empty();
        if done {
            self.life = Life::Done;
            self.recv = RecvBuffer::default();
            self.send = SendBuffer::default();
        }
        done
    }

    /// A released stream whose FINs crossed and that no queued frame names can be
    /// forgotten. Until the peer's FIN it stays, to grant window for what it discards.
    pub(super) fn forgettable(&self) -> bool {
        self.life == Life::Released
            && self.sending == Sending::FinSent
            && self.fin_received()
            && !self.has_pending_send()
            && !self.in_upd_queue.is_set()
    }

    /// Checks what this stream's own state promises.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(super) fn assert_invariants(&self, sid: u32, send_limit: usize) {
        self.recv.assert_invariants(sid);
        assert!(
            self.send.len() <= send_limit,
            "sid {sid}: send buffer over its limit"
        );
        assert!(
            self.life == Life::Open || self.recv.is_empty(),
            "sid {sid}: {:?} with data",
            self.life
        );
    }
}

impl Membership for WriteQueue {
    fn flag(stream: &mut Stream) -> &mut Queued {
        &mut stream.in_write_queue
    }
}

impl Membership for UpdQueue {
    fn flag(stream: &mut Stream) -> &mut Queued {
        &mut stream.in_upd_queue
    }
}

impl Membership for RoomQueue {
    fn flag(stream: &mut Stream) -> &mut Queued {
        &mut stream.in_room_queue
    }
}

impl Membership for StreamEvents {
    fn flag(stream: &mut Stream) -> &mut Queued {
        &mut stream.in_event_queue
    }
}

/// A stream the application may write to, or why not.
pub(super) fn writable(
    stream: Option<&mut Stream>,
    closed: Option<CloseReason>,
) -> Result<&mut Stream, StreamError> {
    let s = match stream {
        Some(s) if s.life() != Life::Released => s,
        _ => return Err(StreamError::UnknownStream),
    };
    // The session's end first: a local close finishes every stream, and a write after it
    // should say the session closed, not that the stream was shut down.
    if let Some(reason) = closed {
        return Err(StreamError::SessionClosed(reason));
    }
    if s.sending() != Sending::Open {
        return Err(StreamError::WriteClosed);
    }
    Ok(s)
}

/// How many bytes a read handed over.
pub(super) trait ReadLen {
    fn read_len(&self) -> usize;
}

impl ReadLen for usize {
    fn read_len(&self) -> usize {
        *self
    }
}

impl ReadLen for Bytes {
    fn read_len(&self) -> usize {
        self.len()
    }
}
