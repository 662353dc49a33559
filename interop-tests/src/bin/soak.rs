//! The soak run: on each runtime, one session over loopback TCP opens and closes thousands
//! of streams with random sizes for a bounded time, checking every echo; afterwards the
//! open-stream count must be back to zero and the process's resident memory flat.
//!
//! `cargo run --release -p interop-tests --bin soak -- --seconds 60`

use clap::Parser;
use futures_util::io::{AsyncReadExt, AsyncWriteExt};
use futures_util::stream::{FuturesUnordered, StreamExt};
use interop_tests::seeded;
use smux_core::runtime::Runtime;
use smux_core::{Config, Role, Session, Stream};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Soak smux-rs on every runtime and report streams, bytes and memory.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// Total seconds, shared equally by the runtimes.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Streams in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
}

/// Resident memory of this process in KiB (Linux), or 0 where unknown.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4)
}

/// Echoes every stream the session accepts, on `rt`.
async fn echo_server(session: Session, rt: Arc<dyn Runtime>) {
    while let Ok(Some(stream)) = session.accept_stream().await {
        rt.spawn(Box::pin(async move {
            let (r, mut w) = stream.into_split();
            if futures_util::io::copy(r, &mut w).await.is_ok() {
                let _ = w.close().await;
            }
        }));
    }
}

/// One stream's life: open, send `len` seeded bytes, half-close, check the echo, drop.
async fn one_stream(stream: Stream, n: u64, len: usize) -> Result<usize, String> {
    let data = seeded(n, n, len);
    let (mut r, mut w) = stream.into_split();
    let send = async {
        w.write_all(&data).await?;
        w.close().await
    };
    let mut got = Vec::with_capacity(len);
    let recv = r.read_to_end(&mut got);
    let (sent, read) = futures_util::future::join(send, recv).await;
    sent.map_err(|e| format!("stream {n}: write: {e}"))?;
    read.map_err(|e| format!("stream {n}: read: {e}"))?;
    if got != data {
        return Err(format!("stream {n}: echo differs"));
    }
    Ok(len)
}

/// Waits `d` on the runtime's own timer.
async fn sleep(rt: &Arc<dyn Runtime>, d: Duration) {
    let mut timer = rt.timer(rt.now() + d);
    std::future::poll_fn(|cx| timer.as_mut().poll_expired(cx)).await
}

/// Runs the soak on one runtime for `duration`; returns a report line.
async fn soak(
    rt: Arc<dyn Runtime>,
    client: Session,
    server: Session,
    duration: Duration,
    concurrency: usize,
) -> Result<String, String> {
    let start = Instant::now();
    let (mut streams, mut bytes, mut n) = (0u64, 0usize, 0u64);
    let mut rss_after_warmup = None;
    let mut in_flight = FuturesUnordered::new();
    loop {
        while in_flight.len() < concurrency && start.elapsed() < duration {
            n += 1;
            // Mostly small, sometimes up to 1 MiB.
            let len = match seeded(n, 0, 1)[0] {
                0..=200 => (seeded(n, 1, 2)[1] as usize) * 16,
                201..=250 => 64 * 1024,
                _ => 1 << 20,
            };
            let stream = client.open_stream().await.map_err(|e| e.to_string())?;
            in_flight.push(one_stream(stream, n, len));
        }
        match in_flight.next().await {
            Some(result) => {
                bytes += result?;
                streams += 1;
                if rss_after_warmup.is_none() && start.elapsed() > duration / 5 {
                    rss_after_warmup = Some(rss_kib());
                }
            }
            None => break,
        }
    }
    // Let the last FINs cross.
    let settle = Instant::now();
    while (client.stats().open_streams > 0 || server.stats().open_streams > 0)
        && settle.elapsed() < Duration::from_secs(5)
    {
        sleep(&rt, Duration::from_millis(10)).await;
    }
    let (c, s) = (client.stats(), server.stats());
    if c.open_streams != 0 || s.open_streams != 0 {
        return Err(format!(
            "streams still open after the run: client {}, server {}",
            c.open_streams, s.open_streams
        ));
    }
    client.close().await;
    Ok(format!(
        "{streams} streams, {:.1} MiB echoed, 0 open after; RSS {} KiB after warm-up, {} KiB at the end",
        bytes as f64 / (1 << 20) as f64,
        rss_after_warmup.unwrap_or(0),
        rss_kib()
    ))
}

fn connected() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (b, _) = listener.accept().unwrap();
    a.set_nodelay(true).unwrap();
    b.set_nodelay(true).unwrap();
    (a, b)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let each = Duration::from_secs(args.seconds) / 3;
    let config = Config::default();
    let mut failed = false;
    for name in ["tokio", "smol", "async-std"] {
        let (a, b) = connected();
        let result = match name {
            "tokio" => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let runtime: Arc<dyn Runtime> =
                    Arc::new(smux_tokio::TokioRuntime::from(rt.handle().clone()));
                rt.block_on(async {
                    a.set_nonblocking(true).unwrap();
                    b.set_nonblocking(true).unwrap();
                    use tokio_util::compat::TokioAsyncReadCompatExt;
                    let a = tokio::net::TcpStream::from_std(a).unwrap().compat();
                    let b = tokio::net::TcpStream::from_std(b).unwrap().compat();
                    let client = Session::spawn(a, Role::Client, config.clone(), runtime.clone());
                    let server = Session::spawn(b, Role::Server, config.clone(), runtime.clone());
                    runtime.spawn(Box::pin(echo_server(server.clone(), runtime.clone())));
                    soak(runtime, client, server, each, args.concurrency).await
                })
            }
            "smol" => smol::block_on(async {
                let runtime: Arc<dyn Runtime> = Arc::new(smux_smol::SmolRuntime);
                let client =
                    smux_smol::client(smol::Async::new(a).unwrap(), config.clone()).unwrap();
                let server =
                    smux_smol::server(smol::Async::new(b).unwrap(), config.clone()).unwrap();
                runtime.spawn(Box::pin(echo_server(server.clone(), runtime.clone())));
                soak(runtime, client, server, each, args.concurrency).await
            }),
            _ => async_std::task::block_on(async {
                let runtime: Arc<dyn Runtime> = Arc::new(smux_async_std::AsyncStdRuntime);
                let client =
                    smux_async_std::client(async_std::net::TcpStream::from(a), config.clone())
                        .unwrap();
                let server =
                    smux_async_std::server(async_std::net::TcpStream::from(b), config.clone())
                        .unwrap();
                runtime.spawn(Box::pin(echo_server(server.clone(), runtime.clone())));
                soak(runtime, client, server, each, args.concurrency).await
            }),
        };
        match result {
            Ok(report) => println!("{name}: {report}"),
            Err(e) => {
                println!("{name}: FAILED: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
