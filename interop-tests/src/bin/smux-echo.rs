//! `smux-echo`: an smux echo server and a load-checking client, for people and for tools
//! (the interop tests drive it against Go's xtaci/smux). Run `smux-echo --help`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use interop_tests::seeded;
use smux_tokio::{Config, Session, Stream};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An smux echo peer, wire-compatible with Go's xtaci/smux.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve every TCP connection as an smux server session that echoes every stream.
    ///
    /// Prints `listening on ADDR` on stdout once bound, then runs until killed. A session
    /// that fails is logged on stderr and does not stop the server.
    Server {
        /// Address to listen on, e.g. 127.0.0.1:9000 (port 0 picks a free one).
        #[arg(long)]
        listen: SocketAddr,
        /// Also open N streams per session toward the client, send a seeded 64 KiB message
        /// on each, half-close, check the echo and print `open-streams: N ok` on stderr.
        #[arg(long, value_name = "N")]
        open: Option<usize>,
        #[command(flatten)]
        common: Common,
    },
    /// Open streams to an echo server, write seeded data on each while reading the echo,
    /// and check it byte for byte. Prints one summary line; exits non-zero on any failure.
    Client {
        /// Server address, e.g. 127.0.0.1:9000.
        #[arg(long)]
        connect: SocketAddr,
        /// Concurrent streams.
        #[arg(long, default_value_t = 1)]
        streams: usize,
        /// Bytes to send (and expect back) on each stream.
        #[arg(long, default_value_t = 1 << 20)]
        bytes: usize,
        /// Seed of the data.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Half-close each stream after writing and expect the echo, then the peer's FIN.
        /// Off by default: Go 1.5.16 in version 2 truncates an echo once it has our FIN.
        #[arg(long)]
        half_close: bool,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RuntimeName {
    Tokio,
    AsyncStd,
    Smol,
}

/// Options both subcommands take.
#[derive(Debug, Args)]
struct Common {
    /// Async runtime to run on.
    #[arg(long, value_enum, default_value_t = RuntimeName::Tokio)]
    runtime: RuntimeName,
    /// Protocol version (1 or 2); both ends must agree.
    #[arg(long, default_value_t = 1)]
    version: u8,
    /// Largest frame payload this side sends (1..=65535).
    #[arg(long, value_name = "N")]
    max_frame_size: Option<usize>,
    /// Session-wide receive buffer in bytes.
    #[arg(long, value_name = "N")]
    max_receive_buffer: Option<usize>,
    /// Per-stream window in bytes (version 2).
    #[arg(long, value_name = "N")]
    max_stream_buffer: Option<usize>,
    /// Keepalive interval in milliseconds.
    #[arg(long, value_name = "N")]
    keepalive_interval_ms: Option<u64>,
    /// Keepalive timeout in milliseconds.
    #[arg(long, value_name = "N")]
    keepalive_timeout_ms: Option<u64>,
    /// Turn keepalive off.
    #[arg(long)]
    no_keepalive: bool,
}

impl Common {
    fn config(&self) -> Result<Config, String> {
        let mut b = Config::builder().version(self.version);
        if let Some(n) = self.max_frame_size {
            b = b.max_frame_size(n);
        }
        if let Some(n) = self.max_receive_buffer {
            b = b.max_receive_buffer(n);
        }
        if let Some(n) = self.max_stream_buffer {
            b = b.max_stream_buffer(n);
        }
        if let Some(ms) = self.keepalive_interval_ms {
            b = b.keep_alive_interval(Duration::from_millis(ms));
        }
        if let Some(ms) = self.keepalive_timeout_ms {
            b = b.keep_alive_timeout(Duration::from_millis(ms));
        }
        b.enable_keep_alive(!self.no_keepalive)
            .build()
            .map_err(|e| e.to_string())
    }

    fn check_runtime(&self) -> Result<(), String> {
        match self.runtime {
            RuntimeName::Tokio => Ok(()),
            other => Err(format!(
                "runtime {other:?} is not available yet: its adapter has not landed; use --runtime tokio"
            )),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
        .and_then(|rt| {
            rt.block_on(async {
                match cli.command {
                    Command::Server {
                        listen,
                        open,
                        common,
                    } => server(listen, open, common).await,
                    Command::Client {
                        connect,
                        streams,
                        bytes,
                        seed,
                        half_close,
                        common,
                    } => client(connect, streams, bytes, seed, half_close, common).await,
                }
            })
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("smux-echo: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn server(listen: SocketAddr, open: Option<usize>, common: Common) -> Result<(), String> {
    common.check_runtime()?;
    let config = common.config()?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on {addr}");
    loop {
        let (conn, peer) = listener
            .accept()
            .await
            .map_err(|e| format!("accept failed: {e}"))?;
        let _ = conn.set_nodelay(true);
        let session = smux_tokio::server(conn, config.clone()).map_err(|e| e.to_string())?;
        tokio::spawn(serve_session(session.clone(), peer));
        if let Some(n) = open {
            tokio::spawn(async move {
                match open_streams(&session, n).await {
                    Ok(()) => eprintln!("open-streams: {n} ok"),
                    Err(e) => eprintln!("open-streams: {e}"),
                }
            });
        }
    }
}

/// Echoes every stream of a session until it ends.
async fn serve_session(session: Session, peer: SocketAddr) {
    while let Ok(stream) = session.accept_stream().await {
        tokio::spawn(echo(stream));
    }
    match session.close_reason() {
        Some(smux_tokio::CloseReason::PeerClosed) | None => {}
        Some(reason) => eprintln!("session from {peer} ended: {reason}"),
    }
}

/// Writes back what arrives; finishes after the echo once the peer half-closes.
async fn echo(stream: Stream) {
    let (mut r, mut w) = stream.into_split();
    if tokio::io::copy(&mut r, &mut w).await.is_ok() {
        let _ = w.shutdown().await;
    }
}

/// Opens `n` streams toward the peer, sends a seeded 64 KiB message on each, half-closes
/// and checks the echo.
async fn open_streams(session: &Session, n: usize) -> Result<(), String> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let stream = session.open_stream().await.map_err(|e| e.to_string())?;
        tasks.push(tokio::spawn(async move {
            let data = seeded(0x5EED, i as u64, 64 * 1024);
            let got = exchange(stream, &data, true).await?;
            check(i, &data, &got)
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// Writes `data` while reading the echo. With `half_close`, finishes after writing and
/// reads to the peer's FIN; otherwise reads exactly `data.len()` bytes.
async fn exchange(stream: Stream, data: &[u8], half_close: bool) -> Result<Vec<u8>, String> {
    let (mut r, mut w) = stream.into_split();
    let to_send = data.to_vec();
    let writer = tokio::spawn(async move {
        w.write_all(&to_send).await?;
        if half_close {
            w.shutdown().await?;
        }
        Ok::<_, std::io::Error>(w)
    });
    let mut got = Vec::with_capacity(data.len());
    let read = if half_close {
        r.read_to_end(&mut got).await.map(|_| ())
    } else {
        got.resize(data.len(), 0);
        r.read_exact(&mut got).await.map(|_| ())
    };
    read.map_err(|e| format!("read failed: {e}"))?;
    let w = writer
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("write failed: {e}"))?;
    drop((r, w));
    Ok(got)
}

fn check(stream: usize, sent: &[u8], got: &[u8]) -> Result<(), String> {
    if got.len() != sent.len() {
        return Err(format!(
            "stream {stream}: echoed {} bytes, sent {}",
            got.len(),
            sent.len()
        ));
    }
    match sent.iter().zip(got).position(|(a, b)| a != b) {
        Some(at) => Err(format!("stream {stream}: echo differs at byte {at}")),
        None => Ok(()),
    }
}

async fn client(
    addr: SocketAddr,
    streams: usize,
    bytes: usize,
    seed: u64,
    half_close: bool,
    common: Common,
) -> Result<(), String> {
    common.check_runtime()?;
    let config = common.config()?;
    let conn = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = conn.set_nodelay(true);
    let session = smux_tokio::client(conn, config).map_err(|e| e.to_string())?;
    // Echo what the server opens toward us (`server --open`).
    tokio::spawn(serve_session(session.clone(), addr));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..streams {
        let stream = session
            .open_stream()
            .await
            .map_err(|e| format!("cannot open stream {i}: {e}"))?;
        tasks.push(tokio::spawn(async move {
            let data = seeded(seed, i as u64, bytes);
            let got = exchange(stream, &data, half_close)
                .await
                .map_err(|e| format!("stream {i}: {e}"))?;
            check(i, &data, &got)
        }));
    }
    let mut failure = None;
    for t in tasks {
        let outcome = t.await.map_err(|e| e.to_string()).and_then(|r| r);
        if let Err(e) = outcome {
            failure.get_or_insert(e);
        }
    }
    if let Some(e) = failure {
        return Err(match session.close_reason() {
            Some(reason) => format!("{e} (session ended: {reason})"),
            None => e,
        });
    }
    let secs = start.elapsed().as_secs_f64();
    let total = (streams * bytes) as f64;
    println!(
        "streams={streams} bytes={} seconds={secs:.3} MB/s={:.1}",
        streams * bytes,
        total / secs / 1e6
    );
    session.close().await;
    Ok(())
}
