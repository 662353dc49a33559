//! A tokio connection seen through futures-io's traits, as the session driver needs it.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A tokio `AsyncRead + AsyncWrite` connection as futures-io's `AsyncRead + AsyncWrite`.
///
/// Unlike tokio-util's `Compat`, it passes vectored writes through: the driver writes a
/// batch of frames (headers and payloads in separate buffers) with one `writev`, where a
/// plain adapter would write only the first buffer, an 8-byte header, per call.
#[derive(Debug)]
pub struct TokioConn<T>(T);

impl<T> TokioConn<T> {
    /// Wraps a tokio connection.
    pub fn new(io: T) -> Self {
        Self(io)
    }

    /// The wrapped connection.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: AsyncRead + Unpin> futures_io::AsyncRead for TokioConn<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut buf = ReadBuf::new(buf);
        ready!(Pin::new(&mut self.0).poll_read(cx, &mut buf))?;
        Poll::Ready(Ok(buf.filled().len()))
    }
}

impl<T: AsyncWrite + Unpin> futures_io::AsyncWrite for TokioConn<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::io::AsyncWriteExt;

    /// A vectored write reaches the connection as one vectored write, all of it.
    #[tokio::test]
    async fn vectored_writes_pass_through() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (a, b) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let (a, mut b) = (a.unwrap(), b.unwrap().0);
        let mut io = TokioConn::new(a);
        let header = [1u8; 8];
        let payload = [2u8; 1000];
        let n = io
            .write_vectored(&[IoSlice::new(&header), IoSlice::new(&payload)])
            .await
            .unwrap();
        assert_eq!(n, 1008, "both buffers in one call");
        drop(io);
        let mut got = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut b, &mut got)
            .await
            .unwrap();
        assert_eq!(&got[..8], &header);
        assert_eq!(&got[8..], &payload);
    }
}
