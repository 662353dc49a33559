//! The demo: one smux session over loopback TCP carrying a few bulk transfers beside many
//! small request/response streams, all at once, for a few seconds. It shows progress, then
//! reports streams, bytes, per-stream and total throughput, and the latency of the small
//! requests while the bulk transfers ran.
//!
//! `cargo run --release -p smux-tokio --example demo`

use smux_tokio::{client, server, Config};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BULK_STREAMS: usize = 4;
const SMALL_STREAMS: usize = 200;
const RUN_FOR: Duration = Duration::from_secs(6);
const WRITE_SIZE: usize = 128 * 1024;
const REQUEST_SIZE: usize = 64;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::builder().version(2).build()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server_config = config.clone();
    tokio::spawn(async move {
        let (conn, _) = listener.accept().await?;
        conn.set_nodelay(true)?;
        let session = server(conn, server_config)?;
        // Echo every stream: bulk data flows back, requests get their reply.
        while let Ok(Some(stream)) = session.accept_stream().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.into_split();
                tokio::io::copy(&mut r, &mut w).await?;
                w.shutdown().await
            });
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    });

    let conn = TcpStream::connect(addr).await?;
    conn.set_nodelay(true)?;
    let session = client(conn, config)?;
    println!(
        "smux demo: {BULK_STREAMS} bulk streams ({} KiB writes) and {SMALL_STREAMS} request/response \
         streams ({REQUEST_SIZE}-byte requests), version 2, over one TCP connection to {addr}, for {} s",
        WRITE_SIZE / 1024,
        RUN_FOR.as_secs()
    );
    let bulk_bytes = Arc::new(AtomicU64::new(0));
    let requests = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + RUN_FOR;

    let mut bulk = Vec::new();
    for _ in 0..BULK_STREAMS {
        let stream = session.open_stream().await?;
        let counter = bulk_bytes.clone();
        bulk.push(tokio::spawn(async move {
            let (mut r, mut w) = stream.into_split();
            let writer = tokio::spawn(async move {
                let chunk = vec![0x5A; WRITE_SIZE];
                let mut sent = 0u64;
                while Instant::now() < deadline {
                    w.write_all(&chunk).await?;
                    sent += WRITE_SIZE as u64;
                }
                w.shutdown().await?;
                Ok::<_, std::io::Error>(sent)
            });
            let mut buf = vec![0u8; 256 * 1024];
            let mut echoed = 0u64;
            loop {
                let n = r.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                echoed += n as u64;
                counter.fetch_add(n as u64, Relaxed);
            }
            let sent = writer.await??;
            assert_eq!(sent, echoed, "bulk echo lost bytes");
            Ok::<_, std::io::Error>((echoed, start.elapsed()))
        }));
    }

    let mut small = Vec::new();
    for i in 0..SMALL_STREAMS {
        let mut stream = session.open_stream().await?;
        let counter = requests.clone();
        small.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut request = [0u8; REQUEST_SIZE];
            let mut reply = [0u8; REQUEST_SIZE];
            let mut n = 0u64;
            while Instant::now() < deadline {
                request[..8].copy_from_slice(&n.to_le_bytes());
                request[8] = i as u8;
                let sent_at = Instant::now();
                stream.write_all(&request).await?;
                stream.read_exact(&mut reply).await?;
                latencies.push(sent_at.elapsed());
                assert_eq!(request, reply, "request {n} on stream {i}: wrong reply");
                counter.fetch_add(1, Relaxed);
                n += 1;
                // A think time, so that requests are spread over the run.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok::<_, std::io::Error>(latencies)
        }));
    }

    // Progress once a second.
    let progress = {
        let (bulk_bytes, requests) = (bulk_bytes.clone(), requests.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let secs = start.elapsed().as_secs_f64();
                println!(
                    "  {secs:4.1} s: bulk {:8.1} MiB echoed, {:6} requests answered",
                    bulk_bytes.load(Relaxed) as f64 / (1 << 20) as f64,
                    requests.load(Relaxed)
                );
            }
        })
    };

    let mut per_stream = Vec::new();
    for task in bulk {
        per_stream.push(task.await??);
    }
    let mut latencies = Vec::new();
    for task in small {
        latencies.extend(task.await??);
    }
    progress.abort();
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    let total: u64 = per_stream.iter().map(|(b, _)| b).sum();
    let mib = |b: u64| b as f64 / (1 << 20) as f64;

    println!(
        "\nstreams: {} bulk + {} request/response",
        BULK_STREAMS, SMALL_STREAMS
    );
    for (i, (bytes, took)) in per_stream.iter().enumerate() {
        println!(
            "  bulk stream {i}: {:8.1} MiB each way, {:7.1} MiB/s",
            mib(*bytes),
            mib(*bytes) / took.as_secs_f64()
        );
    }
    println!(
        "bulk total: {:.1} MiB each way in {elapsed:.1} s: {:.1} MiB/s each way",
        mib(total),
        mib(total) / elapsed
    );
    println!(
        "requests: {} answered, latency while bulk ran: p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        pct(0.50),
        pct(0.99),
        latencies.last().unwrap()
    );
    let stats = session.stats();
    println!(
        "client session: {:.1} MiB out, {:.1} MiB in, {} streams still open",
        mib(stats.bytes_out),
        mib(stats.bytes_in),
        stats.open_streams
    );
    session.close().await;
    Ok(())
}
