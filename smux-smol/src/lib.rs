//! smux-rs on smol: many full-duplex streams over one connection, byte-for-byte compatible
//! with Go's xtaci/smux (protocol versions 1 and 2).
//!
//! ```
//! use futures_util::io::{AsyncReadExt, AsyncWriteExt};
//! use smux_smol::{client, server, Config};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! smol::block_on(async {
//!     let listener = smol::net::TcpListener::bind("127.0.0.1:0").await?;
//!     let addr = listener.local_addr()?;
//!     // The server echoes every stream.
//!     smol::spawn(async move {
//!         let (conn, _) = listener.accept().await?;
//!         let session = server(conn, Config::default())?;
//!         while let Ok(stream) = session.accept_stream().await {
//!             smol::spawn(async move {
//!                 let (r, mut w) = stream.into_split();
//!                 futures_util::io::copy(r, &mut w).await?;
//!                 w.close().await
//!             })
//!             .detach();
//!         }
//!         Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
//!     })
//!     .detach();
//!
//!     let session = client(smol::net::TcpStream::connect(addr).await?, Config::default())?;
//!     let mut stream = session.open_stream().await?;
//!     stream.write_all(b"hello, smux").await?;
//!     stream.close().await?; // half-close: FIN after the data
//!     let mut reply = Vec::new();
//!     stream.read_to_end(&mut reply).await?;
//!     assert_eq!(reply, b"hello, smux");
//!     Ok(())
//! })
//! # }
//! ```
//!
//! [`Stream`] implements futures-io `AsyncRead` + `AsyncWrite`, which smol uses directly.
//! Drivers run on smol's global executor; timers are `async_io::Timer`s.

use smux_core::runtime::{AsyncIoTimer, BoxFuture, Runtime, Timer};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

pub use smux_core::{
    CloseReason, Config, ConfigBuilder, ConfigError, Driver, Error, Incoming, OpenError,
    OwnedReadHalf, OwnedWriteHalf, ProtocolError, ReuniteError, Role, Session, Stats, Stream,
    StreamError, StreamId, Version,
};

/// Runs smux drivers on smol's global executor with `async_io` timers.
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolRuntime;

impl Runtime for SmolRuntime {
    fn spawn(&self, task: BoxFuture) {
        smol::spawn(task).detach();
    }

    fn timer(&self, deadline: Instant) -> Pin<Box<dyn Timer>> {
        Box::pin(AsyncIoTimer::at(deadline))
    }
}

/// Starts the client end of a session over `io`, its driver on smol's global executor.
pub fn client<T>(io: T, config: Config) -> Result<Session, Error>
where
    T: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin + Send + 'static,
{
    Ok(Session::spawn(
        io,
        Role::Client,
        config,
        Arc::new(SmolRuntime),
    ))
}

/// Starts the server end of a session over `io`; see [`client`].
pub fn server<T>(io: T, config: Config) -> Result<Session, Error>
where
    T: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin + Send + 'static,
{
    Ok(Session::spawn(
        io,
        Role::Server,
        config,
        Arc::new(SmolRuntime),
    ))
}

/// A session and its driver future, for callers who run the driver themselves.
pub fn new<T>(io: T, role: Role, config: Config) -> (Session, Driver<T>)
where
    T: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin,
{
    Session::new(io, role, config, Arc::new(SmolRuntime))
}
