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
//!         while let Ok(Some(stream)) = session.accept_stream().await {
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
use std::time::Instant;

smux_core::futures_io_adapter!(SmolRuntime, "smol's global executor");

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
