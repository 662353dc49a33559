//! The bench protocol every peer speaks (the Rust peer here and the Go peer in
//! `interop-tests/go/benchpeer`), and the client workloads written once against it.
//!
//! A client opens a stream and writes a one-byte mode:
//!
//! * `B` (bulk): an 8-byte little-endian length `n` follows, then `n` bytes. The server reads
//!   and discards them, then answers with 8 bytes: how many allocations its process made
//!   meanwhile. `n == u64::MAX` is endless: the server reads until end of stream.
//! * `E` (echo): the server echoes everything until end of stream.
//! * `P` (ping): the server answers one byte `p` and closes the stream.
//! * `I` (idle): the server answers one byte `i` and keeps the stream open until the client
//!   ends it.
//!
//! For raw TCP a "stream" is a TCP connection of its own.

use futures_util::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use serde_json::{json, Value};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Mode byte: bulk transfer toward the server.
pub const BULK: u8 = b'B';
/// Mode byte: echo.
pub const ECHO: u8 = b'E';
/// Mode byte: one-byte ping, then the server closes.
pub const PING: u8 = b'P';
/// Mode byte: answered once, then held open.
pub const IDLE: u8 = b'I';
/// A bulk length meaning "until end of stream".
pub const ENDLESS: u64 = u64::MAX;
/// Round trips made before the timed ones.
const WARMUP: usize = 200;

/// A byte stream of any system, as futures-io.
pub trait Conn: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Conn for T {}

/// A boxed stream.
pub type BoxConn = Box<dyn Conn>;
/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Opens streams on one client session (or, for raw TCP, connections).
pub trait Opener: Send + Sync + 'static {
    /// Opens one stream.
    fn open(&self) -> BoxFuture<io::Result<BoxConn>>;
}

/// Spawns a task on the peer's runtime.
pub type Spawn = Arc<dyn Fn(BoxFuture<()>) + Send + Sync>;

/// The process's allocation count so far (a counting global allocator in the binary).
pub type AllocCount = fn() -> u64;

/// Serves one accepted stream by its mode byte. Errors end only this stream.
pub async fn serve_stream<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    allocs: AllocCount,
) -> io::Result<()> {
    let mut mode = [0u8; 1];
    s.read_exact(&mut mode).await?;
    match mode[0] {
        BULK => {
            let mut len = [0u8; 8];
            s.read_exact(&mut len).await?;
            let n = u64::from_le_bytes(len);
            let mut buf = vec![0u8; 128 * 1024];
            let before = allocs();
            let mut left = n;
            while left > 0 {
                let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let got = s.read(&mut buf[..want]).await?;
                if got == 0 {
                    if n == ENDLESS {
                        return Ok(());
                    }
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                if n != ENDLESS {
                    left -= got as u64;
                }
            }
            let made = allocs() - before;
            s.write_all(&made.to_le_bytes()).await?;
            s.flush().await?;
            while s.read(&mut buf).await? > 0 {}
            s.close().await
        }
        ECHO => {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let got = s.read(&mut buf).await?;
                if got == 0 {
                    return s.close().await;
                }
                s.write_all(&buf[..got]).await?;
            }
        }
        PING => {
            s.write_all(b"p").await?;
            s.close().await
        }
        IDLE => {
            s.write_all(b"i").await?;
            s.flush().await?;
            let mut buf = [0u8; 64];
            while s.read(&mut buf).await? > 0 {}
            s.close().await
        }
        other => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unknown bench mode byte {other:#04x}"),
        )),
    }
}

/// Runs `fut` on `spawn` and returns a future of its output.
fn spawn_with_handle<T: Send + 'static>(
    spawn: &Spawn,
    fut: impl Future<Output = T> + Send + 'static,
) -> impl Future<Output = T> {
    let (task, handle) = futures_util::FutureExt::remote_handle(fut);
    spawn(Box::pin(task));
    handle
}

/// Incompressible, allocation-free payload for bulk writes.
fn payload(len: usize) -> Arc<Vec<u8>> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    Arc::new(
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8 | 1
            })
            .collect(),
    )
}

/// Writes `n` bytes of `data` (cycled) in writes of `data.len()` at most.
async fn write_bulk<W: AsyncWrite + Unpin>(s: &mut W, data: &[u8], n: u64) -> io::Result<()> {
    let mut left = n;
    while left > 0 {
        let take = data.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        s.write_all(&data[..take]).await?;
        left -= take as u64;
    }
    Ok(())
}

/// Bulk: `streams` concurrent streams, each sending `bytes` toward the server.
pub async fn bulk(
    opener: Arc<dyn Opener>,
    spawn: Spawn,
    streams: usize,
    bytes: u64,
    write_size: usize,
    allocs: AllocCount,
) -> io::Result<Value> {
    let data = payload(write_size);
    let start = Instant::now();
    let before = allocs();
    let tasks: Vec<_> = (0..streams)
        .map(|_| {
            let (opener, data) = (opener.clone(), data.clone());
            spawn_with_handle(&spawn, async move {
                let mut s = opener.open().await?;
                let mut head = [0u8; 9];
                head[0] = BULK;
                head[1..].copy_from_slice(&bytes.to_le_bytes());
                s.write_all(&head).await?;
                write_bulk(&mut s, &data, bytes).await?;
                s.flush().await?;
                let mut ack = [0u8; 8];
                s.read_exact(&mut ack).await?;
                s.close().await?;
                Ok::<u64, io::Error>(u64::from_le_bytes(ack))
            })
        })
        .collect();
    let mut server_allocs = 0;
    for t in tasks {
        server_allocs += t.await?;
    }
    let seconds = start.elapsed().as_secs_f64();
    let client_allocs = allocs() - before;
    let total = bytes * streams as u64;
    Ok(json!({
        "workload": "bulk",
        "streams": streams,
        "bytes": total,
        "seconds": seconds,
        "mbps": total as f64 / seconds / 1e6,
        "client_allocs": client_allocs,
        "server_allocs": server_allocs,
    }))
}

/// Latency figures of a list of samples.
fn percentiles(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    samples.sort_unstable();
    let n = samples.len().max(1);
    let at = |p: usize| samples[(n * p / 100).min(n - 1)].as_secs_f64() * 1e6;
    let mean = samples.iter().map(Duration::as_secs_f64).sum::<f64>() / n as f64 * 1e6;
    (at(50), at(99), mean)
}

/// `count` timed round trips of `size` bytes on an echo stream, after a warm-up.
async fn round_trips(
    opener: &Arc<dyn Opener>,
    count: usize,
    size: usize,
) -> io::Result<Vec<Duration>> {
    let mut s = opener.open().await?;
    s.write_all(&[ECHO]).await?;
    let msg = vec![0x5au8; size];
    let mut back = vec![0u8; size];
    let mut samples = Vec::with_capacity(count);
    for i in 0..WARMUP + count {
        let t = Instant::now();
        s.write_all(&msg).await?;
        s.read_exact(&mut back).await?;
        if i >= WARMUP {
            samples.push(t.elapsed());
        }
    }
    s.close().await?;
    Ok(samples)
}

/// Round trips of small messages on an idle session.
pub async fn rtt(opener: Arc<dyn Opener>, count: usize, size: usize) -> io::Result<Value> {
    Ok(latencies("rtt", round_trips(&opener, count, size).await?))
}

/// A round-trip workload's answer: its latency figures.
fn latencies(workload: &str, samples: Vec<Duration>) -> Value {
    let count = samples.len();
    let (p50, p99, mean) = percentiles(samples);
    json!({"workload": workload, "count": count, "p50_us": p50, "p99_us": p99, "mean_us": mean})
}

/// Round trips of small messages from a task spawned on the client's runtime, as a server
/// or most applications make them (`rtt` makes them from the thread that blocks on the
/// workload, outside the runtime's tasks).
pub async fn rtt_task(
    opener: Arc<dyn Opener>,
    spawn: Spawn,
    count: usize,
    size: usize,
) -> io::Result<Value> {
    let task = spawn_with_handle(
        &spawn,
        async move { round_trips(&opener, count, size).await },
    );
    Ok(latencies("rtt-task", task.await?))
}

/// One stream carrying `bytes` both ways at once, as a tunnel's streams do: a spawned
/// writer sends them in writes of `write_size` and half-closes while this task reads the
/// echo to its end; the rate is `bytes` over the time to the last echoed byte.
pub async fn echo(
    opener: Arc<dyn Opener>,
    spawn: Spawn,
    bytes: u64,
    write_size: usize,
) -> io::Result<Value> {
    let data = payload(write_size);
    let mut s = opener.open().await?;
    s.write_all(&[ECHO]).await?;
    let (mut r, mut w) = s.split();
    let start = Instant::now();
    let writer = spawn_with_handle(&spawn, async move {
        write_bulk(&mut w, &data, bytes).await?;
        w.close().await?;
        Ok::<(), io::Error>(())
    });
    let mut buf = vec![0u8; write_size.max(64 * 1024)];
    let mut got = 0u64;
    while got < bytes {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("echo ended after {got} of {bytes} bytes"),
            ));
        }
        got += n as u64;
    }
    let seconds = start.elapsed().as_secs_f64();
    writer.await?;
    Ok(json!({
        "workload": "echo", "bytes": bytes, "seconds": seconds,
        "mbps": bytes as f64 / seconds / 1e6,
    }))
}

/// Round trips of small messages while one bulk stream saturates the same session, or, with
/// `pace` (MB/s), moves at that rate at most.
pub async fn rtt_bulk(
    opener: Arc<dyn Opener>,
    spawn: Spawn,
    count: usize,
    size: usize,
    write_size: usize,
    pace: Option<f64>,
) -> io::Result<Value> {
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let (started_tx, started_rx) = futures_channel::oneshot::channel::<io::Result<()>>();
    {
        let (opener, stop, written) = (opener.clone(), stop.clone(), written.clone());
        let data = payload(write_size);
        spawn(Box::pin(async move {
            let mut started = Some(started_tx);
            let run = async {
                let mut s = opener.open().await?;
                let mut head = [0u8; 9];
                head[0] = BULK;
                head[1..].copy_from_slice(&ENDLESS.to_le_bytes());
                s.write_all(&head).await?;
                // Paced: the bytes allowed so far, topped up as time passes. The first MiB
                // (the warm-up the round trips wait for) goes at once, and a sender held up
                // by the session banks at most one more MiB, so the rate holds over every
                // stretch, not only on average since the start.
                let mut allowed = (1u64 << 20) as f64;
                let mut topped_up = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    if let Some(mbps) = pace {
                        let now = Instant::now();
                        let sent = written.load(Ordering::Relaxed) as f64;
                        allowed += mbps * 1e6 * (now - topped_up).as_secs_f64();
                        allowed = allowed.min(sent + (1u64 << 20) as f64);
                        topped_up = now;
                        if sent >= allowed {
                            // async-io's timer runs under any of the runtimes.
                            smol::Timer::after(Duration::from_micros(200)).await;
                            continue;
                        }
                    }
                    s.write_all(&data).await?;
                    let total = written.fetch_add(data.len() as u64, Ordering::Relaxed);
                    if total >= 1 << 20 {
                        if let Some(tx) = started.take() {
                            let _ = tx.send(Ok(()));
                        }
                    }
                }
                Ok::<(), io::Error>(())
            };
            if let Err(e) = run.await {
                if let Some(tx) = started.take() {
                    let _ = tx.send(Err(e));
                }
            }
        }));
    }
    started_rx
        .await
        .map_err(|_| io::Error::other("bulk writer ended early"))??;
    let t = Instant::now();
    let before = written.load(Ordering::Relaxed);
    let samples = round_trips(&opener, count, size).await?;
    let bulk_mbps =
        (written.load(Ordering::Relaxed) - before) as f64 / t.elapsed().as_secs_f64() / 1e6;
    stop.store(true, Ordering::Relaxed);
    let (p50, p99, mean) = percentiles(samples);
    Ok(json!({
        "workload": "rtt-bulk", "count": count, "p50_us": p50, "p99_us": p99, "mean_us": mean,
        "bulk_mbps": bulk_mbps,
    }))
}

/// Stream open + ping + close, `count` times over `concurrency` workers.
pub async fn open_close(
    opener: Arc<dyn Opener>,
    spawn: Spawn,
    count: usize,
    concurrency: usize,
) -> io::Result<Value> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (opener, next) = (opener.clone(), next.clone());
            spawn_with_handle(&spawn, async move {
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    ping(&opener).await?;
                }
                Ok::<(), io::Error>(())
            })
        })
        .collect();
    for w in workers {
        w.await?;
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(json!({
        "workload": "open-close", "count": count, "seconds": seconds,
        "per_sec": count as f64 / seconds,
    }))
}

/// One open, ping, close.
async fn ping(opener: &Arc<dyn Opener>) -> io::Result<()> {
    let mut s = opener.open().await?;
    s.write_all(&[PING]).await?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await?;
    if b[0] != b'p' {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad ping answer",
        ));
    }
    s.close().await
}

/// Waits for one line on standard input (the orchestrator's go-ahead), off the runtime.
async fn stdin_line() -> io::Result<()> {
    let (tx, rx) = futures_channel::oneshot::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = tx.send(std::io::stdin().read_line(&mut line));
    });
    match rx.await {
        Ok(Ok(n)) if n > 0 => Ok(()),
        Ok(Err(e)) => Err(e),
        _ => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "stdin closed")),
    }
}

/// Idle streams: prints `{"phase":"baseline"}`, waits for a line on stdin, opens `streams`
/// idle streams (each answered once), prints `{"phase":"ready",..}` and waits again, so an
/// orchestrator can read both processes' memory at the two points.
pub async fn idle(opener: Arc<dyn Opener>, streams: usize) -> io::Result<Value> {
    ping(&opener).await?;
    println!("{}", json!({"phase": "baseline"}));
    stdin_line().await?;
    // Opened in batches, then their answers collected: a round trip per batch, not per
    // stream, and few enough unanswered at once for any multiplexer's receive queue.
    let mut held: Vec<BoxConn> = Vec::with_capacity(streams);
    while held.len() < streams {
        let start = held.len();
        for _ in start..streams.min(start + 256) {
            let mut s = opener.open().await?;
            s.write_all(&[IDLE]).await?;
            held.push(s);
        }
        for s in &mut held[start..] {
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await?;
        }
    }
    println!("{}", json!({"phase": "ready", "streams": streams}));
    stdin_line().await?;
    drop(held);
    Ok(json!({"workload": "idle", "streams": streams}))
}
