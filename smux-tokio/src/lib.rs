//! smux-rs on tokio: many full-duplex streams over one connection, byte-for-byte compatible
//! with Go's xtaci/smux (protocol versions 1 and 2).
//!
//! ```
//! use smux_tokio::{client, server, Config};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Any tokio byte stream works: TCP, TLS, a Unix socket; here an in-memory pipe.
//! let (a, b) = tokio::io::duplex(64 * 1024);
//! let client = client(a, Config::default())?;
//! let server = server(b, Config::default())?;
//!
//! tokio::spawn(async move {
//!     // Echo every stream the client opens.
//!     while let Ok(Some(mut stream)) = server.accept_stream().await {
//!         tokio::spawn(async move {
//!             let mut buf = vec![0; 4096];
//!             while let Ok(n @ 1..) = stream.read(&mut buf).await {
//!                 stream.write_all(&buf[..n]).await?;
//!             }
//!             stream.shutdown().await
//!         });
//!     }
//! });
//!
//! let mut stream = client.open_stream().await?;
//! stream.write_all(b"hello, smux").await?;
//! stream.shutdown().await?; // half-close: FIN after the data
//! let mut reply = Vec::new();
//! stream.read_to_end(&mut reply).await?;
//! assert_eq!(reply, b"hello, smux");
//! # Ok(())
//! # }
//! ```
//!
//! [`Stream`] implements tokio's `AsyncRead` + `AsyncWrite`. For futures-io, take the
//! runtime-neutral stream with [`Stream::into_inner`]: [`smux_core::Stream`] implements
//! `futures_io::AsyncRead` + `AsyncWrite`.

mod conn;
mod runtime;
mod session;

pub use conn::TokioConn;
pub use runtime::TokioRuntime;
pub use session::{
    client, new, server, Driver, Incoming, OwnedReadHalf, OwnedWriteHalf, ReuniteError, Session,
    Stream,
};
pub use smux_core::{
    CloseReason, Config, ConfigBuilder, ConfigError, Error, OpenError, ProtocolError, Role, Stats,
    StreamError, StreamId, Version,
};
