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
            // A PSH header written without its payload (SYN, FIN and NOP frames are
            // headers only, and may well go alone).
            if buf.len() <= 8 && buf.get(1) == Some(&2) {
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
    // Before the driver notices, a few writes carry a header alone; after it, whole batches
    // (of at most `max_write_size`, 64 KiB: two frames).
    assert!(tiny <= 8, "{tiny} writes of a lone header");
    assert!(
        writes < frames,
        "{writes} writes for {frames} frames: not batched"
    );
}

/// A tokio connection like `tokio_kcp`'s: it writes no vectors (`is_write_vectored` is
/// false) and refuses any single write larger than KCP takes at MTU 576 (127 segments of
/// 552 bytes), as `Kcp::send` does ("user's send buffer is too big").
struct KcpLike {
    inner: tokio::net::TcpStream,
    largest: Arc<AtomicUsize>,
    headers_alone: Arc<AtomicUsize>,
}

/// What `Kcp::send` takes at MTU 576.
const KCP_576_LIMIT: usize = 127 * (576 - 24);

impl tokio::io::AsyncRead for KcpLike {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for KcpLike {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.len() > KCP_576_LIMIT {
            return Poll::Ready(Err(io::Error::other("user's send buffer is too big")));
        }
        self.largest.fetch_max(buf.len(), Ordering::Relaxed);
        // A PSH header written without its payload.
        if buf.len() <= 8 && buf.get(1) == Some(&2) {
            self.headers_alone.fetch_add(1, Ordering::Relaxed);
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// With the default config, every write to such a connection fits (the default
/// `max_write_size` is 64 KiB), and since it declares no vectored writes, frames are packed
/// from the first write: no header ever goes out alone. Before the cap, the first bulk
/// write ended the session with the transport's error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_fit_a_transport_that_refuses_large_ones() {
    for version in [1, 2] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (a, b) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let largest = Arc::new(AtomicUsize::new(0));
        let headers_alone = Arc::new(AtomicUsize::new(0));
        let io = KcpLike {
            inner: a.unwrap(),
            largest: largest.clone(),
            headers_alone: headers_alone.clone(),
        };
        let config = Config::builder().version(version).build().unwrap();
        let client = smux_tokio::client(io, config.clone()).unwrap();
        let server = smux_tokio::server(b.unwrap().0, config).unwrap();
        const TOTAL: usize = 8 << 20;
        let data: Vec<u8> = (0..TOTAL).map(|i| (i % 253) as u8).collect();
        let mut streams = Vec::new();
        for _ in 0..4 {
            let mut s = client.open_stream().await.unwrap();
            let data = data.clone();
            streams.push(tokio::spawn(async move {
                tokio::io::AsyncWriteExt::write_all(&mut s, &data).await?;
                tokio::io::AsyncWriteExt::shutdown(&mut s).await
            }));
        }
        // Read all four at once: in version 1 one stream left unread stalls the session.
        let mut readers = Vec::new();
        for _ in 0..4 {
            let mut s = server.accept_stream().await.unwrap().expect("a stream");
            readers.push(tokio::spawn(async move {
                let mut got = Vec::new();
                s.read_to_end(&mut got).await.map(|_| got)
            }));
        }
        for r in readers {
            let got = r.await.unwrap().unwrap();
            assert!(got == data, "v{version}: every byte arrives in order");
        }
        for w in streams {
            w.await.unwrap().unwrap();
        }
        let largest = largest.load(Ordering::Relaxed);
        assert!(
            largest <= 64 * 1024,
            "v{version}: a write of {largest} bytes"
        );
        assert!(
            largest > 32 * 1024,
            "v{version}: writes are batched ({largest})"
        );
        assert_eq!(
            headers_alone.load(Ordering::Relaxed),
            0,
            "v{version}: a lone header"
        );
        assert!(
            !client.is_closed(),
            "v{version}: {:?}",
            client.close_reason()
        );
    }
}
