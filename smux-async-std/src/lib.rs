//! smux-rs on async-std.
//!
//! **async-std is discontinued upstream** (RUSTSEC-2025-0052; its README points to smol).
//! This adapter keeps working for code still on async-std; new code should use
//! [`smux-smol`](https://docs.rs/smux-smol), which has the same API. Both run the same
//! protocol code from `smux-core`; only spawning and timers live here.
//!
//! ```
//! use async_std::net::{TcpListener, TcpStream};
//! use futures_util::io::{AsyncReadExt, AsyncWriteExt};
//! use smux_async_std::{client, server, Config};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! async_std::task::block_on(async {
//!     let listener = TcpListener::bind("127.0.0.1:0").await?;
//!     let addr = listener.local_addr()?;
//!     // The server echoes every stream.
//!     async_std::task::spawn(async move {
//!         let (conn, _) = listener.accept().await?;
//!         let session = server(conn, Config::default())?;
//!         while let Ok(Some(stream)) = session.accept_stream().await {
//!             async_std::task::spawn(async move {
//!                 let (r, mut w) = stream.into_split();
//!                 futures_util::io::copy(r, &mut w).await?;
//!                 w.close().await
//!             });
//!         }
//!         Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
//!     });
//!
//!     let session = client(TcpStream::connect(addr).await?, Config::default())?;
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

use smux_core::runtime::{AsyncIoTimer, BoxFuture, Runtime, Timer};
use std::pin::Pin;
use std::time::Instant;

smux_core::futures_io_adapter!(AsyncStdRuntime, "async-std");

/// Runs smux drivers as async-std tasks, with `async_io` timers (async-std's own reactor).
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStdRuntime;

impl Runtime for AsyncStdRuntime {
    fn spawn(&self, task: BoxFuture) {
        drop(async_std::task::spawn(task));
    }

    fn timer(&self, deadline: Instant) -> Pin<Box<dyn Timer>> {
        // async-std runs on async-io: the same timer as smol's.
        Box::pin(AsyncIoTimer::at(deadline))
    }
}
