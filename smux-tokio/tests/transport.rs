//! A connection without vectored writes (futures-io's default `poll_write_vectored` writes
//! only the first buffer) still gets whole batches of frames per write, not one write per
//! 8-byte header: the driver notices and packs frames contiguously.

use futures_util::io::{AsyncRead, AsyncWrite};
use smux_core::{Config, Role, Session};
use smux_tokio::{TokioConn, TokioRuntime};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::AsyncReadExt;

/// A futures-io connection with no vectored writes, counting its write calls.
struct Scalar<T> {
    inner: T,
    writes: Arc<AtomicUsize>,
    tiny: Arc<AtomicUsize>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Scalar<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Scalar<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if r.is_ready() {
            self.writes.fetch_add(1, Ordering::Relaxed);
            if buf.len() <= 8 {
                self.tiny.fetch_add(1, Ordering::Relaxed);
            }
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_without_vectored_writes_gets_packed_batches() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (a, b) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
    let (a, b) = (a.unwrap(), b.unwrap().0);
    let writes = Arc::new(AtomicUsize::new(0));
    let tiny = Arc::new(AtomicUsize::new(0));
    let io = Scalar {
        inner: TokioConn::new(a),
        writes: writes.clone(),
        tiny: tiny.clone(),
    };
    let config = Config::builder().max_frame_size(32 * 1024).build().unwrap();
    let runtime = Arc::new(TokioRuntime::current().unwrap());
    let client = Session::spawn(io, Role::Client, config.clone(), runtime);
    let server = smux_tokio::server(b, config).unwrap();

    const TOTAL: usize = 8 << 20;
    let reader = tokio::spawn(async move {
        let mut s = server.accept_stream().await.unwrap().expect("a stream");
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        got
    });
    let data: Vec<u8> = (0..TOTAL).map(|i| (i % 251) as u8).collect();
    let mut s = client.open_stream().await.unwrap();
    futures_util::io::AsyncWriteExt::write_all(&mut s, &data)
        .await
        .unwrap();
    futures_util::io::AsyncWriteExt::close(&mut s)
        .await
        .unwrap();
    assert!(reader.await.unwrap() == data, "every byte arrives in order");

    let frames = TOTAL / (32 * 1024);
    let (writes, tiny) = (writes.load(Ordering::Relaxed), tiny.load(Ordering::Relaxed));
    // Before the driver notices, a few writes carry a header alone; after it, whole batches.
    assert!(tiny <= 8, "{tiny} writes of a lone header");
    assert!(
        writes < frames / 2,
        "{writes} writes for {frames} frames: not batched"
    );
}
