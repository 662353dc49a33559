//! The session and stream types with tokio's I/O traits.

use crate::conn::TokioConn;
use crate::TokioRuntime;
use smux_core::{CloseReason, Config, Error, Role, Stats, StreamId};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The future that runs a session over the tokio connection `T`, from [`new`].
pub type Driver<T> = smux_core::Driver<TokioConn<T>>;

/// Starts the client end of a session over `io` and spawns its driver on the current tokio
/// runtime. Fails with [`Error::NoRuntime`] outside one.
pub fn client<T>(io: T, config: Config) -> Result<Session, Error>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    start(io, Role::Client, config)
}

/// Starts the server end of a session over `io`; see [`client`].
pub fn server<T>(io: T, config: Config) -> Result<Session, Error>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    start(io, Role::Server, config)
}

fn start<T>(io: T, role: Role, config: Config) -> Result<Session, Error>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let runtime = TokioRuntime::current().ok_or(Error::NoRuntime("tokio"))?;
    let config = declare_vectored(config, &io)?;
    Ok(Session(smux_core::Session::spawn(
        TokioConn::new(io),
        role,
        config,
        Arc::new(runtime),
    )))
}

/// A session and its driver future, for callers who spawn the driver themselves: nothing
/// happens until it is polled. Fails with [`Error::NoRuntime`] outside a tokio runtime (its
/// timers need one).
pub fn new<T>(io: T, role: Role, config: Config) -> Result<(Session, Driver<T>), Error>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let runtime = TokioRuntime::current().ok_or(Error::NoRuntime("tokio"))?;
    let config = declare_vectored(config, &io)?;
    let (session, driver) =
        smux_core::Session::new(TokioConn::new(io), role, config, Arc::new(runtime));
    Ok((Session(session), driver))
}

/// Tells the driver up front whether the connection writes vectors (tokio's
/// `is_write_vectored`), unless the config already says: a connection that does not (most
/// TLS and KCP streams) then gets frames packed into one buffer from the first write.
fn declare_vectored<T: AsyncWrite>(config: Config, io: &T) -> Result<Config, Error> {
    if config.vectored_writes().is_some() {
        return Ok(config);
    }
    Ok(config
        .to_builder()
        .vectored_writes(io.is_write_vectored())
        .build()?)
}

/// One end of an smux session on tokio. Cheap to clone. See [`smux_core::Session`].
#[derive(Debug, Clone)]
pub struct Session(smux_core::Session);

impl Session {
    /// Opens a stream. Cancel-safe; it never waits for the peer.
    pub async fn open_stream(&self) -> Result<Stream, Error> {
        self.0.open_stream().await.map(Stream)
    }

    /// Waits for the next stream the peer opens; `Ok(None)` once the peer ended the
    /// session cleanly. Cancel-safe. See [`smux_core::Session::accept_stream`].
    pub async fn accept_stream(&self) -> Result<Option<Stream>, Error> {
        Ok(self.0.accept_stream().await?.map(Stream))
    }

    /// The incoming streams as a `futures_core::Stream`; taken once.
    pub fn incoming(&self) -> Option<Incoming> {
        self.0.incoming().map(Incoming)
    }

    /// Flushes queued frames (at most [`Config::close_timeout`]) and closes the connection.
    pub async fn close(&self) {
        self.0.close().await
    }

    /// Refuses new streams, lets open ones finish, then closes.
    pub async fn shutdown(&self) {
        self.0.shutdown().await
    }

    /// Waits until the session has ended and its connection is closed.
    pub async fn finished(&self) {
        self.0.finished().await
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    /// Why the session ended, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.0.close_reason()
    }

    /// The session's counters.
    pub fn stats(&self) -> Stats {
        self.0.stats()
    }

    /// The runtime-neutral session.
    pub fn as_core(&self) -> &smux_core::Session {
        &self.0
    }
}

/// Incoming streams, from [`Session::incoming`].
#[derive(Debug)]
pub struct Incoming(smux_core::Incoming);

impl futures_core::Stream for Incoming {
    type Item = Stream;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Stream>> {
        Pin::new(&mut self.0).poll_next(cx).map(|s| s.map(Stream))
    }
}

/// A stream with tokio's `AsyncRead` + `AsyncWrite`. `shutdown()` half-closes (a FIN after
/// the queued data; later writes fail with `BrokenPipe`); dropping it sends the queued data
/// and a FIN and discards unread data. Reads and writes are cancel-safe. See
/// [`smux_core::Stream`].
#[derive(Debug)]
pub struct Stream(smux_core::Stream);

impl From<smux_core::Stream> for Stream {
    fn from(stream: smux_core::Stream) -> Self {
        Self(stream)
    }
}

impl Stream {
    /// The stream id, as on the wire.
    pub fn id(&self) -> StreamId {
        self.0.id()
    }

    /// Takes up to `max` received bytes without copying them; `None` is the end of the
    /// stream. Cancel-safe.
    pub async fn read_chunk(&mut self, max: usize) -> io::Result<Option<bytes::Bytes>> {
        self.0.read_chunk(max).await
    }

    /// Waits until the data written, and the FIN if shut down, has gone to the connection
    /// writer (`flush` never waits, as a socket's). Cancel-safe.
    pub async fn sent(&mut self) -> io::Result<()> {
        self.0.sent().await
    }

    /// The two halves, to read and write from different tasks (as tokio's
    /// `TcpStream::into_split`); a move, no lock or count added.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let (read, write) = self.0.into_split();
        (OwnedReadHalf(read), OwnedWriteHalf(write))
    }

    /// The runtime-neutral stream, which implements futures-io's traits.
    pub fn into_inner(self) -> smux_core::Stream {
        self.0
    }
}

/// The read half of a [`Stream`], with tokio's `AsyncRead`.
#[derive(Debug)]
pub struct OwnedReadHalf(smux_core::OwnedReadHalf);

/// The write half of a [`Stream`], with tokio's `AsyncWrite`.
#[derive(Debug)]
pub struct OwnedWriteHalf(smux_core::OwnedWriteHalf);

impl OwnedReadHalf {
    /// The stream id.
    pub fn id(&self) -> StreamId {
        self.0.id()
    }

    /// Takes up to `max` received bytes without copying them; `None` is the end of the
    /// stream. Cancel-safe.
    pub async fn read_chunk(&mut self, max: usize) -> io::Result<Option<bytes::Bytes>> {
        self.0.read_chunk(max).await
    }

    /// Puts the halves back together; hands them back if they are of different streams.
    pub fn reunite(self, write: OwnedWriteHalf) -> Result<Stream, ReuniteError> {
        self.0
            .reunite(write.0)
            .map(Stream)
            .map_err(|smux_core::ReuniteError(r, w)| {
                smux_core::ReuniteError(OwnedReadHalf(r), OwnedWriteHalf(w))
            })
    }
}

impl OwnedWriteHalf {
    /// The stream id.
    pub fn id(&self) -> StreamId {
        self.0.id()
    }

    /// Waits until the data written, and the FIN if shut down, has gone to the connection
    /// writer (`flush` never waits, as a socket's). Cancel-safe.
    pub async fn sent(&mut self) -> io::Result<()> {
        self.0.sent().await
    }
}

/// [`OwnedReadHalf::reunite`] was given halves of different streams; they are handed back.
pub type ReuniteError = smux_core::ReuniteError<OwnedReadHalf, OwnedWriteHalf>;

/// tokio's `AsyncRead` for a wrapper of a smux-core reader. Received bytes are copied into
/// the unfilled part of the `ReadBuf`, initialised first: no code but smux-rs's runs while
/// the session is locked.
macro_rules! tokio_read {
    ($($wrapper:ty),*) => {$(
        impl AsyncRead for $wrapper {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                if buf.remaining() == 0 {
                    return Poll::Ready(Ok(()));
                }
                let n = ready!(self.get_mut().0.poll_read(cx, buf.initialize_unfilled()))?;
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
        }
    )*};
}

/// tokio's `AsyncWrite` for a wrapper of a smux-core writer; `shutdown` half-closes.
macro_rules! tokio_write {
    ($($wrapper:ty),*) => {$(
        impl AsyncWrite for $wrapper {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.get_mut().0.poll_write(cx, buf)
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.get_mut().0.poll_flush(cx)
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.get_mut().0.poll_shutdown(cx)
            }
        }
    )*};
}

tokio_read!(Stream, OwnedReadHalf);
tokio_write!(Stream, OwnedWriteHalf);

/// Handles move freely between tasks and threads, and need no pinning.
const _: () = {
    const fn check<T: Send + Sync + Unpin>() {}
    check::<Session>();
    check::<Stream>();
    check::<OwnedReadHalf>();
    check::<OwnedWriteHalf>();
};
