//! The smux stream-multiplexing protocol, byte-for-byte compatible with Go's
//! [xtaci/smux](https://github.com/xtaci/smux) in protocol versions 1 and 2.
//!
//! This crate holds everything that is not tied to an async runtime: the frame codec
//! ([`frame`]), the session configuration ([`Config`]), and the protocol engine. Applications
//! normally use it through a runtime adapter (`smux-tokio`, `smux-smol`, `smux-async-std`).
//!
//! ```
//! use bytes::Bytes;
//! use smux_core::frame::{Frame, Version};
//! use smux_core::Config;
//!
//! let config = Config::builder().version(2).build()?;
//! let mut wire = Vec::new();
//! Frame::Psh { sid: 3, data: Bytes::from_static(b"hello") }.encode(config.version(), &mut wire)?;
//! assert_eq!(&wire[..8], &[2, 2, 5, 0, 3, 0, 0, 0]);
//!
//! let (frame, used) = Frame::decode(&wire, config.version())?.expect("a whole frame");
//! assert_eq!(used, wire.len());
//! assert_eq!(frame.sid(), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Timeouts, cancellation and dead peers
//!
//! * **Cancel safety.** `open_stream` never waits for the peer (there is no round trip: the
//!   SYN goes out with the first data), so it never needs a timeout. `accept_stream`,
//!   `read`, `read_chunk` and `write` are cancel-safe: a future dropped before it returns
//!   took or queued nothing. `flush` never waits. `shutdown` commits the FIN when first
//!   polled: a cancelled shutdown has still committed it. `sent()` is cancel-safe.
//! * **Bounding a call.** Wrap it in the runtime's timeout (`tokio::time::timeout`,
//!   `async_io::Timer` with `futures::select`, ...). A read waits for the peer's data, a
//!   write for room in the stream's send buffer: in version 2 that needs the peer's window,
//!   which a Go peer stops granting once it closed its stream (this wire has no reset), so
//!   a write to a Go peer that went away is bounded only by such a timeout or by the
//!   session's end. smux-rs keeps granting window for what a dropped stream discards.
//! * **Dead peers.** Keepalive is what detects them: with it on (the default), a session
//!   whose peer sends no frame for `keep_alive_timeout` ends with
//!   [`CloseReason::KeepaliveTimeout`], and every pending call fails with it. Without
//!   keepalive, a silent peer is only noticed when the transport reports an error.
//! * **A version mismatch.** A version-1 end receiving version-2 frames (or the reverse)
//!   fails with a protocol error that says the peer speaks the other version. The end that
//!   receives nothing (Go keeps such a connection open, silently) ends with
//!   [`CloseReason::NoFrameFromPeer`] at its keepalive timeout, or with
//!   [`CloseReason::UnexpectedEof`] `{ before_first_frame: true, .. }` when the other end
//!   closes; both messages ask whether the peer speaks smux in the same version.
//!
//! # Where smux-rs differs from Go's xtaci/smux, on purpose
//!
//! The wire stays compatible; these are local choices.
//! * **Accept backlog**: Go stops reading the whole connection while its accept queue is
//!   full. Here a SYN past [`Config::accept_backlog`] (or past [`Config::max_streams`]) is
//!   refused with a FIN, that stream's frames are dropped without charging the receive budget,
//!   and [`Stats::refused_streams`] counts it. Reading never stalls on the application.
//! * **Protocol errors** close the session at once and fail every pending call; Go stops
//!   reading but leaves the connection open.
//! * **Half-close**: data received after both FINs crossed stays readable; Go v1.5.54 to
//!   v1.5.57 drop it (v1.5.58 keeps it).
//! * **Open** registers the stream before its SYN is queued, so a fast reply is never lost.
//! * **UPD at `numRead == 0`** (after the counter wraps) is sent; Go skips it.
//! * **A version-2 peer that ignores our window** (more unread bytes on one stream than
//!   `max(262144, max_stream_buffer)` plus one frame) is a protocol error; Go does not police
//!   windows.
//! * **Local close** flushes queued data and FINs (bounded by [`Config::close_timeout`]); Go
//!   sends nothing.
//! * **Keepalive** closes the session when no frame arrived for exactly the timeout, counted
//!   only while the engine is willing to read; Go checks on a ticker (1x..2x the timeout).
//! * **A SYN with this end's own id parity** (both ends made as clients, or both as
//!   servers) is a protocol error; Go replaces its stream and cross-wires the data.
//! * **A stream let go of** keeps granting window for the data it discards until the
//!   peer's FIN (Go discards it without an UPD, so a writer on the other end waits); and
//!   no UPD is sent for a stream after the peer's FIN.

mod adapter;
pub mod config;
mod driver;
pub mod error;
pub mod frame;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod proto;
pub mod runtime;
mod sync;

pub use config::{Config, ConfigBuilder, ConfigError};
pub use driver::{Driver, Incoming, OwnedReadHalf, OwnedWriteHalf, ReuniteError, Session, Stream};
pub use error::{CloseReason, Error, OpenError, ProtocolError, StreamError};
pub use frame::Version;
pub use proto::{Role, Stats, StreamId};
pub use runtime::Runtime;

/// What [`futures_io_adapter!`] needs in the adapter crates, without their naming it.
#[doc(hidden)]
pub mod __private {
    pub use futures_io::{AsyncRead, AsyncWrite};
}
