//! `smux-echo`: an smux echo server and a load-checking client, for people and for tools
//! (the interop tests drive it against Go's xtaci/smux). Run `smux-echo --help`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use futures_util::io::{AsyncReadExt, AsyncWriteExt};
use futures_util::FutureExt;
use interop_tests::seeded;
use smux_core::runtime::Runtime;
use smux_core::{CloseReason, Config, Role, Session, Stream};
use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
        /// Instead of echoing, read every stream to its end and discard it, print
        /// `sink sid=N bytes=B seconds=S MB/s=X` on stdout for each, and close it.
        #[arg(long)]
        sink: bool,
        /// Instead of echoing, drop each stream's read half at once (what arrives on it is
        /// discarded), keep its write half MS milliseconds, then half-close it; when the
        /// session ends, print `discarded B bytes in the session with ADDR` on stderr.
        #[arg(long, value_name = "MS", conflicts_with = "sink")]
        drop_read_half: Option<u64>,
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
        /// Only send: write the bytes on each stream, half-close, wait for the peer's FIN
        /// (a `server --sink` sends nothing back) and report MB/s over that time.
        #[arg(long, conflicts_with = "half_close")]
        send_only: bool,
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
    /// Fixed version-2 windows (`max_stream_buffer` always, as Go) instead of tuned ones.
    #[arg(long)]
    no_window_tuning: bool,
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
            .window_tuning(!self.no_window_tuning)
            .build()
            .map_err(|e| e.to_string())
    }
}

/// The one runtime-specific part: running a future, spawning, and wrapping a socket.
/// Everything else is written once against smux-core's runtime-neutral API.
enum Rt {
    Tokio(tokio::runtime::Runtime),
    Smol,
    AsyncStd,
}

/// A connection for a session.
trait Io: futures_io::AsyncRead + futures_io::AsyncWrite + Send + Unpin + 'static {}
impl<T: futures_io::AsyncRead + futures_io::AsyncWrite + Send + Unpin + 'static> Io for T {}

impl Rt {
    fn new(name: RuntimeName) -> Result<Self, String> {
        Ok(match name {
            RuntimeName::Tokio => Rt::Tokio(
                tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start tokio: {e}"))?,
            ),
            RuntimeName::Smol => Rt::Smol,
            RuntimeName::AsyncStd => Rt::AsyncStd,
        })
    }

    fn runtime(&self) -> Arc<dyn Runtime> {
        match self {
            Rt::Tokio(rt) => Arc::new(smux_tokio::TokioRuntime::from(rt.handle().clone())),
            Rt::Smol => Arc::new(smux_smol::SmolRuntime),
            Rt::AsyncStd => Arc::new(smux_async_std::AsyncStdRuntime),
        }
    }

    fn block_on<T>(&self, fut: impl Future<Output = T>) -> T {
        match self {
            Rt::Tokio(rt) => rt.block_on(fut),
            Rt::Smol => smol::block_on(fut),
            Rt::AsyncStd => async_std::task::block_on(fut),
        }
    }

    fn wrap(&self, conn: TcpStream) -> Result<Box<dyn Io>, String> {
        let _ = conn.set_nodelay(true);
        Ok(match self {
            Rt::Tokio(rt) => {
                let _context = rt.enter();
                conn.set_nonblocking(true).map_err(|e| e.to_string())?;
                let conn = tokio::net::TcpStream::from_std(conn).map_err(|e| e.to_string())?;
                Box::new(tokio_util::compat::TokioAsyncReadCompatExt::compat(conn))
            }
            Rt::Smol => Box::new(smol::Async::new(conn).map_err(|e| e.to_string())?),
            Rt::AsyncStd => Box::new(async_std::net::TcpStream::from(conn)),
        })
    }
}

/// Spawns `fut` on `rt`; the returned future gives its output.
fn spawn<T: Send + 'static>(
    rt: &Arc<dyn Runtime>,
    fut: impl Future<Output = T> + Send + 'static,
) -> impl Future<Output = T> {
    let (task, handle) = fut.remote_handle();
    rt.spawn(Box::pin(task));
    handle
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Server {
            listen,
            open,
            sink,
            drop_read_half,
            common,
        } => {
            let serve = match (sink, drop_read_half) {
                (true, _) => Serve::Sink,
                (false, Some(ms)) => Serve::DropReadHalf(Duration::from_millis(ms)),
                (false, None) => Serve::Echo,
            };
            server(listen, open, serve, common)
        }
        Command::Client {
            connect,
            streams,
            bytes,
            seed,
            half_close,
            send_only,
            common,
        } => {
            let mode = match (send_only, half_close) {
                (true, _) => Mode::SendOnly,
                (false, true) => Mode::EchoHalfClose,
                (false, false) => Mode::Echo,
            };
            client(connect, streams, bytes, seed, mode, common)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("smux-echo: {message}");
            ExitCode::FAILURE
        }
    }
}

/// What a server does with each stream the client opens.
#[derive(Debug, Clone, Copy)]
enum Serve {
    Echo,
    Sink,
    /// Drop the read half, hold the write half this long, then half-close it.
    DropReadHalf(Duration),
}

fn server(
    listen: SocketAddr,
    open: Option<usize>,
    serve: Serve,
    common: Common,
) -> Result<(), String> {
    let config = common.config()?;
    let rt = Rt::new(common.runtime)?;
    let runtime = rt.runtime();
    let listener =
        TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on {addr}");
    loop {
        let (conn, peer) = listener
            .accept()
            .map_err(|e| format!("accept failed: {e}"))?;
        let session = Session::spawn(
            rt.wrap(conn)?,
            Role::Server,
            config.clone(),
            runtime.clone(),
        );
        runtime.spawn(Box::pin(serve_session(
            session.clone(),
            Some(peer),
            runtime.clone(),
            serve,
        )));
        if let Some(n) = open {
            let rt2 = runtime.clone();
            runtime.spawn(Box::pin(async move {
                match open_streams(&session, n, &rt2).await {
                    Ok(()) => eprintln!("open-streams: {n} ok"),
                    Err(e) => eprintln!("open-streams: {e}"),
                }
            }));
        }
    }
}

/// Serves every stream of a session as `serve` says until the session ends; a session that
/// ended badly is reported if `peer` is given (the client reports its session's end in its
/// own summary instead).
async fn serve_session(
    session: Session,
    peer: Option<SocketAddr>,
    rt: Arc<dyn Runtime>,
    serve: Serve,
) {
    while let Ok(Some(stream)) = session.accept_stream().await {
        match serve {
            Serve::Echo => rt.spawn(Box::pin(echo(stream))),
            Serve::Sink => rt.spawn(Box::pin(drain(stream))),
            Serve::DropReadHalf(hold) => {
                rt.spawn(Box::pin(write_half_only(stream, hold, rt.clone())));
            }
        }
    }
    match (session.close_reason(), peer) {
        (Some(CloseReason::PeerClosed | CloseReason::Local) | None, _) | (_, None) => {}
        (Some(reason), Some(peer)) => eprintln!("session with {peer} ended: {reason}"),
    }
    // After the line above, so that a reader that waits for this one has both.
    if let (Serve::DropReadHalf(_), Some(peer)) = (serve, peer) {
        let bytes = session.stats().discarded_bytes;
        eprintln!("discarded {bytes} bytes in the session with {peer}");
    }
}

/// Reads a stream to its end, discarding it, prints one line, and closes the stream.
async fn drain(mut stream: Stream) {
    let sid = stream.id();
    let start = Instant::now();
    let mut bytes = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    let outcome = loop {
        match stream.read(&mut buf).await {
            Ok(0) => break Ok(()),
            Ok(n) => bytes += n,
            Err(e) => break Err(e),
        }
    };
    let secs = start.elapsed().as_secs_f64();
    match outcome {
        Ok(()) => println!(
            "sink sid={sid} bytes={bytes} seconds={secs:.3} MB/s={:.1}",
            bytes as f64 / secs.max(1e-9) / 1e6
        ),
        Err(e) => eprintln!("sink sid={sid}: read failed after {bytes} bytes: {e}"),
    }
    let _ = stream.close().await;
}

/// Drops the stream's read half, holds its write half for `hold`, then half-closes it.
async fn write_half_only(stream: Stream, hold: Duration, rt: Arc<dyn Runtime>) {
    let (read, mut write) = stream.into_split();
    drop(read);
    let mut timer = rt.timer(rt.now() + hold);
    std::future::poll_fn(|cx| timer.as_mut().poll_expired(cx)).await;
    let _ = write.close().await;
}

/// Writes back what arrives; finishes after the echo once the peer half-closes.
async fn echo(stream: Stream) {
    let (r, mut w) = stream.into_split();
    if futures_util::io::copy(r, &mut w).await.is_ok() {
        let _ = w.close().await;
    }
}

/// Opens `n` streams toward the peer, sends a seeded 64 KiB message on each, half-closes
/// and checks the echo.
async fn open_streams(session: &Session, n: usize, rt: &Arc<dyn Runtime>) -> Result<(), String> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let stream = session.open_stream().await.map_err(|e| e.to_string())?;
        tasks.push(spawn(rt, async move {
            let data = seeded(0x5EED, i as u64, 64 * 1024);
            let got = exchange(stream, &data, true).await?;
            check(i, &data, &got)
        }));
    }
    for t in tasks {
        t.await?;
    }
    Ok(())
}

/// Writes `data` while reading the echo. With `half_close`, finishes after writing and
/// reads to the peer's FIN; otherwise reads exactly `data.len()` bytes.
async fn exchange(stream: Stream, data: &[u8], half_close: bool) -> Result<Vec<u8>, String> {
    let (mut r, mut w) = stream.into_split();
    let write = async {
        w.write_all(data).await?;
        if half_close {
            w.close().await?;
        }
        Ok::<_, std::io::Error>(())
    };
    let mut got = Vec::with_capacity(data.len());
    // On failure, how many bytes of the echo had arrived: where it stopped.
    let read = async {
        if half_close {
            return r.read_to_end(&mut got).await.map(drop).map_err(|e| (0, e));
        }
        got.resize(data.len(), 0);
        let mut n = 0;
        while n < got.len() {
            match r.read(&mut got[n..]).await {
                Ok(0) => return Err((n, std::io::ErrorKind::UnexpectedEof.into())),
                Ok(k) => n += k,
                Err(e) => return Err((n, e)),
            }
        }
        Ok(())
    };
    let (written, read) = futures_util::future::join(write, read).await;
    read.map_err(|(n, e): (usize, std::io::Error)| {
        let n = if half_close { got.len() } else { n };
        format!("read failed after {n} of {} bytes: {e}", data.len())
    })?;
    written.map_err(|e| format!("write failed: {e}"))?;
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

/// What the client does on each stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Write and check the echo.
    Echo,
    /// Write, half-close, check the echo up to the peer's FIN.
    EchoHalfClose,
    /// Write, half-close, wait for the peer's FIN (it sends nothing).
    SendOnly,
}

/// Writes `data`, half-closes and waits for the peer's FIN, expecting no data back.
async fn send_only(stream: Stream, data: &[u8]) -> Result<(), String> {
    let (mut r, mut w) = stream.into_split();
    w.write_all(data)
        .await
        .map_err(|e| format!("write failed: {e}"))?;
    w.close()
        .await
        .map_err(|e| format!("shutdown failed: {e}"))?;
    let mut back = Vec::new();
    r.read_to_end(&mut back)
        .await
        .map_err(|e| format!("waiting for the peer's FIN: {e}"))?;
    match back.len() {
        0 => Ok(()),
        n => Err(format!("the peer sent {n} bytes back")),
    }
}

fn client(
    addr: SocketAddr,
    streams: usize,
    bytes: usize,
    seed: u64,
    mode: Mode,
    common: Common,
) -> Result<(), String> {
    let config = common.config()?;
    let rt = Rt::new(common.runtime)?;
    let runtime = rt.runtime();
    let conn = TcpStream::connect(addr).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let io = rt.wrap(conn)?;
    rt.block_on(async move {
        let session = Session::spawn(io, Role::Client, config, runtime.clone());
        // Echo what the server opens toward us (`server --open`).
        runtime.spawn(Box::pin(serve_session(
            session.clone(),
            None,
            runtime.clone(),
            Serve::Echo,
        )));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..streams {
            let stream = session
                .open_stream()
                .await
                .map_err(|e| format!("cannot open stream {i}: {e}"))?;
            tasks.push(spawn(&runtime, async move {
                let data = seeded(seed, i as u64, bytes);
                if mode == Mode::SendOnly {
                    return send_only(stream, &data)
                        .await
                        .map_err(|e| format!("stream {i}: {e}"));
                }
                let got = exchange(stream, &data, mode == Mode::EchoHalfClose)
                    .await
                    .map_err(|e| format!("stream {i}: {e}"))?;
                check(i, &data, &got)
            }));
        }
        let mut failure = None;
        for t in tasks {
            if let Err(e) = t.await {
                failure.get_or_insert(e);
            }
        }
        if let Some(e) = failure {
            let e = match session.close_reason() {
                // The reason, unless the stream's error already says it.
                Some(reason) if !e.contains(&reason.to_string()) => {
                    format!("{e} (session ended: {reason})")
                }
                _ => e,
            };
            // What the session still held (unread input, unsent output) says which side
            // stopped moving.
            return Err(format!("{e}; {:?}", session.stats()));
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "streams={streams} bytes={} seconds={secs:.3} MB/s={:.1}",
            streams * bytes,
            (streams * bytes) as f64 / secs / 1e6
        );
        session.close().await;
        Ok(())
    })
}
