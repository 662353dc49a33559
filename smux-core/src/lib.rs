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
pub use driver::{Driver, Incoming, ReadHalf, ReuniteError, Session, Stream, WriteHalf};
pub use error::{CloseReason, Error, OpenError, ProtocolError, StreamError};
pub use frame::Version;
pub use proto::{Role, Stats};
pub use runtime::Runtime;
