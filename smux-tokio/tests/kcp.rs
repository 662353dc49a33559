//! smux over KCP (the crate `tokio_kcp` 0.9, on `kcp` 0.5) on loopback UDP, with the
//! **default smux config** and nothing between the session and the `KcpStream`: every
//! write the session makes goes to one `Kcp::send`, which refuses a buffer needing 128 or
//! more segments. `Config::max_write_size` (64 KiB) keeps each write under that, and
//! `KcpStream::is_write_vectored()` is false, so frames are packed into one buffer per
//! write from the start.
//!
//! KCP settings, the same on both sides (see [`kcptun`]): stream mode (as kcptun sets it),
//! MTU 1350 (kcptun's default), nodelay on with a 10 ms interval, fast resend after 2
//! skipping ACKs and no congestion control (kcptun's `fast3`), windows of 1024 segments
//! (kcptun's server defaults), UDP socket buffers of 4 MiB (kcptun's `--sockbuf`).
//! `message_mode` is the same in KCP's message mode; `tokio_kcp_defaults` takes
//! `tokio_kcp`'s own `KcpConfig::default()`: message mode, MTU 1400, normal (not nodelay)
//! mode with a 40 ms interval and congestion control, windows of 256.
//!
//! Each test runs bulk data on one stream or many streams at once, echoed and checked byte
//! for byte, in both versions; the `lossy_*` tests run the same through a UDP relay that
//! drops 1% and reorders 1% of the datagrams each way (one test there raises the stream
//! window to kcptun's, to show what limits version 2). `write_sizes` measures the writes
//! the session makes to the KCP stream, through a counting adapter that passes every call
//! through unchanged. Each test prints its throughput.

mod echo;

use smux_tokio::{client, server, Config, Session};
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use test_rng::Rng;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UdpSocket;
use tokio::time::timeout;
use tokio_kcp::{KcpConfig, KcpListener, KcpNoDelayConfig, KcpStream};

const LIMIT: Duration = Duration::from_secs(30);

/// kcptun's shape: stream mode, MTU 1350, `fast3` (nodelay, interval 10 ms, resend 2, no
/// congestion control), send and receive windows of 1024 segments.
fn kcptun() -> KcpConfig {
    KcpConfig {
        mtu: 1350,
        nodelay: KcpNoDelayConfig::fastest(),
        wnd_size: (1024, 1024),
        stream: true,
        ..KcpConfig::default()
    }
}

/// kcptun's `--sockbuf` default: the UDP sockets' kernel buffers, 4 MiB. With Linux's
/// default (208 KiB) a window of 1024 segments overflows the receiver's buffer on loopback,
/// and most of a bulk transfer's datagrams are lost there (seen as `RcvbufErrors` in
/// /proc/net/snmp: 11143 in a 4 MiB echo in version 1, at 2 MB/s instead of 120).
const SOCKBUF: usize = 4 << 20;

/// A UDP socket on loopback with [`SOCKBUF`] buffers.
fn udp() -> UdpSocket {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    socket.set_recv_buffer_size(SOCKBUF).unwrap();
    socket.set_send_buffer_size(SOCKBUF).unwrap();
    socket.set_nonblocking(true).unwrap();
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&loopback.into()).unwrap();
    UdpSocket::from_std(socket.into()).unwrap()
}

/// The server end of a KCP connection: it resolves once the client has sent its first
/// datagram (a KCP listener learns of a client only then), with the listener, whose task
/// feeds the connection its datagrams and must live as long as it.
type ServerEnd = Pin<Box<dyn std::future::Future<Output = (KcpStream, KcpListener)> + Send>>;

/// A KCP connection on loopback: the client, the server end and, if `lossy`, the counts of
/// a [`lossy_relay`] between them.
async fn kcp_pair(config: KcpConfig, lossy: bool) -> (KcpStream, ServerEnd, Option<Arc<Counts>>) {
    let mut listener = KcpListener::from_socket(config, udp()).await.unwrap();
    let server_addr = listener.local_addr().unwrap();
    let (target, counts) = if lossy {
        let (relay, counts) = lossy_relay(server_addr).await;
        (relay, Some(counts))
    } else {
        (server_addr, None)
    };
    let client = KcpStream::connect_with_socket(&config, udp(), target)
        .await
        .unwrap();
    let server = Box::pin(async move {
        let (stream, _) = listener.accept().await.unwrap();
        (stream, listener)
    });
    (client, server, counts)
}

/// `streams` streams of `len` bytes each, echoed over one session on `client_io`.
async fn run<T>(
    what: &str,
    config: Config,
    client_io: T,
    server_end: ServerEnd,
    streams: u64,
    len: usize,
) -> Session
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let version = config.version() as u8;
    let session = client(client_io, config.clone()).unwrap();
    // The SYN of the first stream is the client's first datagram: only then can the KCP
    // listener accept.
    let first = session.open_stream().await.unwrap();
    tokio::spawn(async move {
        let (io, _listener) = server_end.await;
        echo::serve(server(io, config).unwrap());
        // The listener carries the server's datagrams: keep it for the test's life.
        std::future::pending::<()>().await;
    });
    let start = Instant::now();
    let mut tasks = Vec::new();
    let mut first = Some(first);
    for i in 0..streams {
        let stream = match first.take() {
            Some(stream) => stream,
            None => session.open_stream().await.unwrap(),
        };
        let data = Rng::for_stream(0x6c9, i).bytes(len);
        tasks.push(tokio::spawn(echo::checked(stream, data)));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "KCP {what} v{version}: {streams} x {} KiB echoed in {:.0} ms: {:.1} MB/s each way",
        len / 1024,
        secs * 1e3,
        (streams as usize * len) as f64 / secs / 1e6
    );
    session
}

/// The default smux config but for the version.
fn smux(version: u8) -> Config {
    Config::builder().version(version).build().unwrap()
}

async fn direct(what: &str, version: u8, streams: u64, len: usize) {
    let (client_io, server_end, _) = kcp_pair(kcptun(), false).await;
    run(what, smux(version), client_io, server_end, streams, len)
        .await
        .close()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_v1() {
    timeout(LIMIT, direct("bulk", 1, 1, 4 << 20))
        .await
        .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_v2() {
    timeout(LIMIT, direct("bulk", 2, 1, 4 << 20))
        .await
        .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_streams_v1() {
    timeout(LIMIT, direct("many streams", 1, 32, 256 << 10))
        .await
        .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_streams_v2() {
    timeout(LIMIT, direct("many streams", 2, 32, 256 << 10))
        .await
        .expect("timed out");
}

/// Message mode with kcptun's other settings: each write the session makes is one KCP
/// message of up to 64 KiB (50 segments at MTU 1350), reassembled whole at the receiver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_mode() {
    timeout(LIMIT, async {
        let config = KcpConfig {
            stream: false,
            ..kcptun()
        };
        let (client_io, server_end, _) = kcp_pair(config, false).await;
        run(
            "message mode bulk",
            smux(1),
            client_io,
            server_end,
            1,
            4 << 20,
        )
        .await
        .close()
        .await;
    })
    .await
    .expect("timed out");
}

/// tokio_kcp's own defaults (message mode, MTU 1400, normal mode: 40 ms ticks and
/// congestion control from a window of one segment), slow by design, so less data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_kcp_defaults() {
    timeout(LIMIT, async {
        let (client_io, server_end, _) = kcp_pair(KcpConfig::default(), false).await;
        run(
            "tokio_kcp defaults",
            smux(2),
            client_io,
            server_end,
            2,
            64 << 10,
        )
        .await
        .close()
        .await;
    })
    .await
    .expect("timed out");
}

/// The sizes of the writes made to a connection, passed through unchanged.
struct Counted<T> {
    inner: T,
    writes: Arc<Mutex<Vec<usize>>>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            self.writes.lock().unwrap().push(n);
        }
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = poll {
            self.writes.lock().unwrap().push(n);
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The writes the client session makes to its KCP stream during a bulk transfer: none over
/// the default `max_write_size` (64 KiB), so none that `Kcp::send` refuses, and most of
/// them full (frames packed, not one write per 8-byte header).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_sizes() {
    timeout(LIMIT, async {
        let (inner, server_end, _) = kcp_pair(kcptun(), false).await;
        let writes = Arc::new(Mutex::new(Vec::new()));
        let counted = Counted {
            inner,
            writes: writes.clone(),
        };
        run(
            "bulk, writes counted",
            smux(1),
            counted,
            server_end,
            1,
            4 << 20,
        )
        .await
        .close()
        .await;
        let writes = writes.lock().unwrap();
        let total: usize = writes.iter().sum();
        let largest = *writes.iter().max().unwrap();
        let full = writes.iter().filter(|&&n| n == largest).count();
        let small = writes.iter().filter(|&&n| n < 1024).count();
        println!(
            "  {} writes to the KCP stream, {total} bytes, averaging {} (largest {largest}, \
             {full} of them; {small} under 1 KiB)",
            writes.len(),
            total / writes.len()
        );
        assert!(largest <= smux_tokio::Config::default().max_write_size());
        assert!(total / writes.len() >= 16 * 1024, "small writes");
    })
    .await
    .expect("timed out");
}

/// What a relay did, each way: [client to server, server to client].
#[derive(Debug, Default)]
struct Counts {
    forwarded: [AtomicU64; 2],
    dropped: [AtomicU64; 2],
    reordered: [AtomicU64; 2],
}

/// Starts a relay to `server` on loopback and gives its address. Each way, per datagram, a
/// seeded generator decides (1 in 100 each): drop it, or hold it and send it after the next
/// datagram that way (a reordering); else forward it (and then any held one).
async fn lossy_relay(server: SocketAddr) -> (SocketAddr, Arc<Counts>) {
    let socket = udp();
    let addr = socket.local_addr().unwrap();
    let counts = Arc::new(Counts::default());
    let count = counts.clone();
    tokio::spawn(async move {
        let mut rngs = [Rng::new(0x1055), Rng::new(0x1056)];
        let mut held: [Option<Vec<u8>>; 2] = [None, None];
        let mut client = None;
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                continue;
            };
            let (way, to) = if from == server {
                match client {
                    Some(client) => (1, client),
                    None => continue,
                }
            } else {
                client = Some(from);
                (0, server)
            };
            match rngs[way].next_u64() % 100 {
                0 => {
                    count.dropped[way].fetch_add(1, Ordering::Relaxed);
                }
                1 if held[way].is_none() => {
                    count.reordered[way].fetch_add(1, Ordering::Relaxed);
                    held[way] = Some(buf[..n].to_vec());
                }
                _ => {
                    let _ = socket.send_to(&buf[..n], to).await;
                    count.forwarded[way].fetch_add(1, Ordering::Relaxed);
                    if let Some(late) = held[way].take() {
                        let _ = socket.send_to(&late, to).await;
                        count.forwarded[way].fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    });
    (addr, counts)
}

async fn lossy(what: &str, config: Config, streams: u64, len: usize) {
    let (client_io, server_end, counts) = kcp_pair(kcptun(), true).await;
    let counts = counts.unwrap();
    run(what, config, client_io, server_end, streams, len)
        .await
        .close()
        .await;
    let way = |i: usize| {
        format!(
            "{} forwarded, {} dropped, {} reordered",
            counts.forwarded[i].load(Ordering::Relaxed),
            counts.dropped[i].load(Ordering::Relaxed),
            counts.reordered[i].load(Ordering::Relaxed)
        )
    };
    println!(
        "  relay: client to server {}; server to client {}",
        way(0),
        way(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_bulk_v1() {
    timeout(LIMIT, lossy("lossy bulk", smux(1), 1, 4 << 20))
        .await
        .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_bulk_v2() {
    timeout(LIMIT, lossy("lossy bulk", smux(2), 1, 4 << 20))
        .await
        .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_many_streams_v1() {
    timeout(LIMIT, lossy("lossy many streams", smux(1), 32, 256 << 10))
        .await
        .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_many_streams_v2() {
    timeout(LIMIT, lossy("lossy many streams", smux(2), 32, 256 << 10))
        .await
        .expect("timed out");
}

/// Version 2 loses most of its speed to 1% loss with the default stream window (64 KiB):
/// each lost datagram stalls the stream for KCP's recovery time (about 30 ms at a 10 ms
/// tick: two ACK rounds, then the resend), 64 KiB per 30 ms. kcptun's default `--streambuf`
/// (2 MiB) keeps the stream going through a recovery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_bulk_v2_kcptun_streambuf() {
    let config = Config::builder()
        .version(2)
        .max_stream_buffer(2 << 20)
        .build()
        .unwrap();
    timeout(
        LIMIT,
        lossy("lossy bulk, 2 MiB stream window", config, 1, 4 << 20),
    )
    .await
    .expect("timed out");
}
