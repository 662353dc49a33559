//! The session and stream types with tokio's I/O traits.

use crate::io::TokioIo;
use crate::TokioRuntime;
use smux_core::{CloseReason, Config, Error, Role, Stats};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

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
    Ok(Session(smux_core::Session::spawn(
        TokioIo::new(io),
        role,
        config,
        Arc::new(runtime),
    )))
}

/// One end of an smux session on tokio. Cheap to clone. See [`smux_core::Session`].
#[derive(Debug, Clone)]
pub struct Session(smux_core::Session);

impl Session {
    /// A session and its driver future, for callers who spawn the driver themselves.
    /// Fails with [`Error::NoRuntime`] outside a tokio runtime (its timers need one).
    pub fn new<T>(
        io: T,
        role: Role,
        config: Config,
    ) -> Result<(Self, smux_core::Driver<TokioIo<T>>), Error>
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        let runtime = TokioRuntime::current().ok_or(Error::NoRuntime("tokio"))?;
        let (session, driver) =
            smux_core::Session::new(TokioIo::new(io), role, config, Arc::new(runtime));
        Ok((Self(session), driver))
    }

    /// Opens a stream. Cancel-safe.
    pub async fn open_stream(&self) -> Result<Stream, Error> {
        self.0.open_stream().await.map(Stream)
    }

    /// Waits for the next stream the peer opens. Cancel-safe.
    pub async fn accept_stream(&self) -> Result<Stream, Error> {
        self.0.accept_stream().await.map(Stream)
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
/// and a FIN and discards unread data. See [`smux_core::Stream`].
#[derive(Debug)]
pub struct Stream(smux_core::Stream);

/// Reads into tokio's `ReadBuf` without zeroing it: received bytes are copied straight in,
/// and the buffers they came in are recycled by the session.
fn fill(
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
    read: impl FnOnce(&mut Context<'_>, usize, &mut dyn FnMut(&[u8])) -> Poll<io::Result<usize>>,
) -> Poll<io::Result<()>> {
    if buf.remaining() == 0 {
        return Poll::Ready(Ok(()));
    }
    let max = buf.remaining();
    ready!(read(cx, max, &mut |piece| buf.put_slice(piece)))?;
    Poll::Ready(Ok(()))
}

impl Stream {
    /// The stream id, as on the wire.
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Splits into owned halves with no extra lock.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let (r, w) = self.0.into_split();
        (OwnedReadHalf(r), OwnedWriteHalf(w))
    }

    /// The runtime-neutral stream, which implements futures-io's traits.
    pub fn into_inner(self) -> smux_core::Stream {
        self.0
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        fill(cx, buf, |cx, max, sink| {
            self.0.poll_read_with(cx, max, sink)
        })
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_shutdown(cx)
    }
}

/// The read half of a [`Stream`].
#[derive(Debug)]
pub struct OwnedReadHalf(smux_core::ReadHalf);

/// The write half of a [`Stream`].
#[derive(Debug)]
pub struct OwnedWriteHalf(smux_core::WriteHalf);

impl OwnedReadHalf {
    /// Puts the halves back together; gives them back if they are of different streams.
    pub fn reunite(self, write: OwnedWriteHalf) -> Result<Stream, (OwnedReadHalf, OwnedWriteHalf)> {
        self.0
            .reunite(write.0)
            .map(Stream)
            .map_err(|smux_core::ReuniteError(r, w)| (OwnedReadHalf(r), OwnedWriteHalf(w)))
    }
}

impl AsyncRead for OwnedReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        fill(cx, buf, |cx, max, sink| {
            self.0.poll_read_with(cx, max, sink)
        })
    }
}

impl AsyncWrite for OwnedWriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_shutdown(cx)
    }
}
