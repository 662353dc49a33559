//! smux-rs against a kcptun-shaped Go peer over KCP: `interop-tests/go/kcppeer`, xtaci/smux
//! on github.com/xtaci/kcp-go/v5 v5.7.5 with kcptun's settings (built by
//! `interop-tests/go/build.sh` as `bin/go-kcp-peer-1.5.58` and `bin/go-kcp-peer-1.5.16`).
//! The Rust side runs smux-tokio over the crate `tokio_kcp` (0.9, on `kcp` 0.5) in this
//! process, configured to match. Both directions (Go client -> Rust server, Rust client ->
//! Go server), smux versions 1 and 2, both Go versions: 50 parallel streams x 1 MiB echoed
//! and checked byte for byte; 2000 short streams opened and closed; idle sessions held by
//! keepalive (1 s interval, 3 s timeout) for 4 s. Without Go the tests skip with a message;
//! with `CI=true` they never skip.
//!
//! kcptun itself is not available from the Go module proxy; the peer reproduces its smux and
//! KCP settings (see the top of `kcppeer/main.go`).

use interop_tests::process::Server;
use interop_tests::seeded;
use smux_tokio::{client, server, Config, Session, Stream};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::time::timeout;
use tokio_kcp::{KcpConfig, KcpListener, KcpNoDelayConfig, KcpStream};

const GO_VERSIONS: [&str; 2] = ["1.5.58", "1.5.16"];

/// Every test ends within this (a hang fails instead of blocking the run).
const LIMIT: Duration = Duration::from_secs(30);

/// The KCP peers, built once per test binary (never concurrently), or `None` to skip.
fn go_dir() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("go");
            let have = |v: &str| dir.join(format!("bin/go-kcp-peer-{v}")).exists();
            if GO_VERSIONS.iter().all(|v| have(v)) {
                return Some(dir);
            }
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            if Command::new("go").arg("version").output().is_err() {
                assert!(
                    !ci,
                    "CI=true but Go is missing: the KCP interop tests must run in CI"
                );
                eprintln!(
                    "SKIPPED: the Go KCP interop tests need Go (https://go.dev/dl or `apt-get \
                     install golang`) and then `interop-tests/go/build.sh`"
                );
                return None;
            }
            let status = Command::new("bash")
                .arg(dir.join("build.sh"))
                .status()
                .expect("run interop-tests/go/build.sh");
            assert!(status.success(), "building the Go peers failed");
            Some(dir)
        })
        .as_deref()
}

fn kcp_peer(version: &str) -> Option<PathBuf> {
    go_dir().map(|d| d.join(format!("bin/go-kcp-peer-{version}")))
}

/// Which end of the KCP connection: kcptun's windows differ.
#[derive(Debug, Clone, Copy)]
enum End {
    Client,
    Server,
}

/// kcptun's KCP settings, as the Go peer applies them: stream mode, MTU 1350, mode "fast"
/// (`SetNoDelay(0, 30, 2, 1)`: nodelay off, a 30 ms update interval, fast resend after 2
/// skipping ACKs, no congestion control), windows (send, receive) of (128, 512) segments on
/// the client and (1024, 1024) on the server. `flush_write` is kcp-go's
/// `SetWriteDelay(false)` (a write is flushed at once, not at the next update);
/// `flush_acks_input` stays off as kcptun's `--acknodelay` does by default (ACKs go out
/// with the next update or with data).
fn kcptun(end: End) -> KcpConfig {
    KcpConfig {
        mtu: 1350,
        nodelay: KcpNoDelayConfig {
            nodelay: false,
            interval: 30,
            resend: 2,
            nc: true,
        },
        wnd_size: match end {
            End::Client => (128, 512),
            End::Server => (1024, 1024),
        },
        stream: true,
        flush_write: true,
        flush_acks_input: false,
        ..KcpConfig::default()
    }
}

/// kcptun's smux settings (its defaults for `--framesize`, `--streambuf`, `--smuxbuf`), the
/// version and keepalive per test.
///
/// `tokio_kcp` hands each write to `Kcp::send` whole, and `Kcp::send` refuses a buffer that
/// needs 128 or more segments ("user's send buffer is too big": 127 x 1326 bytes at MTU
/// 1350), so the session must never write more than that at once: `max_write_size` caps
/// every write to the connection. Its default (64 KiB) already does; it is set here so that
/// the test says what KCP needs.
fn smux(version: u8, keepalive: Keepalive) -> Config {
    Config::builder()
        .version(version)
        .max_frame_size(8192)
        .max_stream_buffer(2 * 1024 * 1024)
        .max_receive_buffer(4 * 1024 * 1024)
        .keep_alive_interval(keepalive.interval)
        .keep_alive_timeout(keepalive.timeout)
        .max_write_size(64 * 1024)
        .build()
        .unwrap()
}

#[derive(Debug, Clone, Copy)]
struct Keepalive {
    interval: Duration,
    timeout: Duration,
}

/// smux's (and kcptun's) default keepalive: 10 s interval, 30 s timeout.
const DEFAULT_KEEPALIVE: Keepalive = Keepalive {
    interval: Duration::from_secs(10),
    timeout: Duration::from_secs(30),
};

/// The idle tests' keepalive: 1 s interval, 3 s timeout, on both sides.
const SHORT_KEEPALIVE: Keepalive = Keepalive {
    interval: Duration::from_secs(1),
    timeout: Duration::from_secs(3),
};

/// The Go peer's flags for a keepalive (whole seconds).
fn go_keepalive(k: Keepalive) -> [String; 4] {
    [
        "-keepalive".into(),
        k.interval.as_secs().to_string(),
        "-keepalive-timeout".into(),
        k.timeout.as_secs().to_string(),
    ]
}

/// kcptun's `--sockbuf` default: UDP socket buffers of 4 MiB, as the Go peer sets. With
/// Linux's default (208 KiB) a window of 1024 segments overflows the receiver's buffer on
/// loopback and KCP spends its time retransmitting.
const SOCKBUF: usize = 4 << 20;

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

/// A Rust smux server over a KCP listener, echoing every stream of every session.
struct RustServer {
    addr: String,
    sessions: Arc<Mutex<Vec<Session>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RustServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn rust_server(version: u8, keepalive: Keepalive) -> RustServer {
    let mut listener = KcpListener::from_socket(kcptun(End::Server), udp())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let sessions = Arc::new(Mutex::new(Vec::new()));
    let all = sessions.clone();
    let task = tokio::spawn(async move {
        // The listener's task feeds every connection its datagrams: it lives in here.
        while let Ok((kcp, _)) = listener.accept().await {
            let session = server(kcp, smux(version, keepalive)).unwrap();
            all.lock().unwrap().push(session.clone());
            tokio::spawn(echo(session));
        }
    });
    RustServer {
        addr,
        sessions,
        task,
    }
}

impl RustServer {
    /// The one session a Go client made.
    fn session(&self) -> Session {
        let sessions = self.sessions.lock().unwrap();
        assert_eq!(sessions.len(), 1, "sessions on the Rust server");
        sessions[0].clone()
    }
}

/// Echoes every stream the peer opens, until the session ends.
async fn echo(session: Session) {
    while let Ok(Some(stream)) = session.accept_stream().await {
        tokio::spawn(async move {
            let (mut r, mut w) = stream.into_split();
            tokio::io::copy(&mut r, &mut w).await?;
            w.shutdown().await
        });
    }
}

/// Runs the Go peer's client to completion (off the runtime's threads).
async fn go_client(go: &Path, addr: &str, args: Vec<String>) -> Output {
    let go = go.to_path_buf();
    let addr = addr.to_string();
    tokio::task::spawn_blocking(move || {
        Command::new(go)
            .args(["client", "-connect", &addr])
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn ok(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{what} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Starts the Go peer's KCP server.
fn go_server(go: &Path, version: u8, keepalive: Keepalive) -> Server {
    let v = version.to_string();
    let ka = go_keepalive(keepalive);
    let mut args = vec!["server", "-listen", "127.0.0.1:0", "-version", &v];
    args.extend(ka.iter().map(String::as_str));
    Server::start(go, &args)
}

/// A Rust smux client over a KCP connection to `addr`.
async fn rust_client(addr: &str, version: u8, keepalive: Keepalive) -> Session {
    let addr: SocketAddr = addr.parse().unwrap();
    let kcp = KcpStream::connect_with_socket(&kcptun(End::Client), udp(), addr)
        .await
        .unwrap();
    client(kcp, smux(version, keepalive)).unwrap()
}

/// Writes `data` on `stream`, half-closes, reads the echo to the peer's FIN and checks it
/// byte for byte.
async fn echo_checked(stream: Stream, data: Vec<u8>) -> Result<(), String> {
    let id = stream.id().0;
    let (mut r, mut w) = stream.into_split();
    let len = data.len();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await?;
        w.shutdown().await?;
        Ok::<_, std::io::Error>(data)
    });
    let mut back = Vec::with_capacity(len);
    r.read_to_end(&mut back)
        .await
        .map_err(|e| format!("stream {id}: read: {e}"))?;
    let data = writer
        .await
        .unwrap()
        .map_err(|e| format!("stream {id}: write: {e}"))?;
    if back.len() != len {
        return Err(format!("stream {id}: {} bytes back of {len}", back.len()));
    }
    match back.iter().zip(&data).position(|(a, b)| a != b) {
        Some(at) => Err(format!("stream {id}: the echo differs at byte {at}")),
        None => Ok(()),
    }
}

/// Waits (up to 3 s) until `session` has no stream open: every stream finished both ways.
async fn all_streams_done(session: &Session, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while session.stats().open_streams > 0 {
        assert!(
            Instant::now() < deadline,
            "{what}: {} streams still open",
            session.stats().open_streams
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The Go client ends with a one-byte echo on one more stream before it exits (`settle` in
/// `kcppeer/main.go`): once that is back, every FIN it sent before has arrived here.
const BARRIER: u64 = 1;

const STREAMS: usize = 50;
const BYTES: usize = 1 << 20;
const SHORT: usize = 2000;
const PARALLEL: usize = 20;

fn report_bulk(what: &str, secs: f64) {
    println!(
        "KCP {what}: {STREAMS} x 1 MiB echoed in {:.0} ms: {:.1} MB/s each way",
        secs * 1e3,
        (STREAMS * BYTES) as f64 / secs / 1e6
    );
}

/// Go client -> Rust server: 50 parallel streams x 1 MiB, checked by the Go side.
async fn go_to_rust_bulk(go: &Path, go_version: &str, version: u8) {
    let srv = rust_server(version, DEFAULT_KEEPALIVE).await;
    let what = format!("go {go_version} client -> rust server, v{version}");
    let out = go_client(
        go,
        &srv.addr,
        vec![
            "-version".into(),
            version.to_string(),
            "-streams".into(),
            STREAMS.to_string(),
            "-bytes".into(),
            BYTES.to_string(),
        ],
    )
    .await;
    let stdout = ok(&out, &what);
    assert!(
        stdout.contains(&format!("bytes={}", STREAMS * BYTES)),
        "{stdout}"
    );
    // Go's own clock: from its first stream to the last echo checked (the Go process's
    // start and its linger at the end are outside it).
    println!("KCP {what}: {}", stdout.trim());
    let session = srv.session();
    all_streams_done(&session, &what).await;
    let stats = session.stats();
    let total = (STREAMS * BYTES) as u64 + BARRIER;
    assert_eq!(stats.bytes_in, total, "{what}: {stats:?}");
    assert_eq!(stats.bytes_out, total, "{what}: {stats:?}");
}

/// Rust client -> Go server: the same, checked here.
async fn rust_to_go_bulk(go: &Path, go_version: &str, version: u8) {
    let srv = go_server(go, version, DEFAULT_KEEPALIVE);
    let what = format!("rust client -> go {go_version} server, v{version}");
    let session = rust_client(&srv.addr, version, DEFAULT_KEEPALIVE).await;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..STREAMS {
        let stream = session.open_stream().await.unwrap();
        tasks.push(tokio::spawn(echo_checked(
            stream,
            seeded(7, i as u64, BYTES),
        )));
    }
    for task in tasks {
        task.await
            .unwrap()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
    }
    report_bulk(&what, start.elapsed().as_secs_f64());
    all_streams_done(&session, &what).await;
    assert!(!session.is_closed(), "{what}: {:?}", session.close_reason());
    session.close().await;
}

/// Go client -> Rust server: 2000 short streams (a 64-byte echo each, then closed), 20 at
/// a time; every one is gone from the Rust session afterwards.
async fn go_to_rust_short(go: &Path, go_version: &str, version: u8) {
    let srv = rust_server(version, DEFAULT_KEEPALIVE).await;
    let what = format!("go {go_version} client -> rust server, v{version}, short streams");
    let out = go_client(
        go,
        &srv.addr,
        vec![
            "-version".into(),
            version.to_string(),
            "-short".into(),
            SHORT.to_string(),
            "-parallel".into(),
            PARALLEL.to_string(),
        ],
    )
    .await;
    let stdout = ok(&out, &what);
    assert!(stdout.contains(&format!("short={SHORT}")), "{stdout}");
    println!("KCP {what}: {}", stdout.trim());
    let session = srv.session();
    all_streams_done(&session, &what).await;
    assert_eq!(session.stats().bytes_in, (SHORT * 64) as u64 + BARRIER);
}

/// Rust client -> Go server: 2000 short streams, 20 at a time; each is opened, echoes 64
/// bytes, half-closes, reads the Go side's FIN and is dropped.
async fn rust_to_go_short(go: &Path, go_version: &str, version: u8) {
    let srv = go_server(go, version, DEFAULT_KEEPALIVE);
    let what = format!("rust client -> go {go_version} server, v{version}, short streams");
    let session = rust_client(&srv.addr, version, DEFAULT_KEEPALIVE).await;
    let start = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..PARALLEL {
        let (session, next) = (session.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= SHORT {
                    return Ok::<_, String>(());
                }
                let stream = session.open_stream().await.map_err(|e| e.to_string())?;
                echo_checked(stream, seeded(11, i as u64, 64)).await?;
            }
        }));
    }
    for w in workers {
        w.await.unwrap().unwrap_or_else(|e| panic!("{what}: {e}"));
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "KCP {what}: {SHORT} streams ({PARALLEL} at a time) in {:.0} ms: {:.0} streams/s",
        secs * 1e3,
        SHORT as f64 / secs
    );
    all_streams_done(&session, &what).await;
    assert!(!session.is_closed(), "{what}: {:?}", session.close_reason());
    session.close().await;
}

/// How long the idle tests hold a session idle: past the 3 s keepalive timeout.
const IDLE: Duration = Duration::from_secs(4);

/// Go client -> Rust server, idle: Go holds its new session idle for 4 s from the start,
/// checks that it is still open, then echoes once; the Rust session must be open too. Go
/// closes a session that heard no frame in its first timeout (3 s), so only the Rust
/// server's NOPs keep it (Go learns nothing else: the Rust side sees the KCP connection
/// first with Go's first NOP). Checked the other way round: against a Go server with
/// keepalive at 10 s, this Go client fails with "the session closed while idle".
async fn go_to_rust_idle(go: &Path, go_version: &str, version: u8) {
    let srv = rust_server(version, SHORT_KEEPALIVE).await;
    let what = format!("go {go_version} client -> rust server, v{version}, idle");
    let mut args = vec![
        "-version".into(),
        version.to_string(),
        "-idle".into(),
        IDLE.as_secs().to_string(),
    ];
    args.extend(go_keepalive(SHORT_KEEPALIVE));
    let out = go_client(go, &srv.addr, args).await;
    let stdout = ok(&out, &what);
    assert!(stdout.contains("idle ok"), "{stdout}");
    let session = srv.session();
    assert!(!session.is_closed(), "{what}: {:?}", session.close_reason());
    println!("KCP {what}: {}", stdout.trim());
}

/// Rust client -> Go server, idle: we echo once, idle 4 s, check that our session is still
/// open and echo again. smux-rs closes a session exactly one timeout (3 s) after the last
/// frame, so only the Go server's NOPs keep it (against a Go server with keepalive at 10 s
/// this fails with `KeepaliveTimeout(3s)`). Go's own check runs on a ticker and drops a
/// silent peer 1x..2x the timeout after its last frame, past 4 s: our NOPs are proven by the
/// Go client in `go_to_rust_idle` instead.
async fn rust_to_go_idle(go: &Path, go_version: &str, version: u8) {
    let srv = go_server(go, version, SHORT_KEEPALIVE);
    let what = format!("rust client -> go {go_version} server, v{version}, idle");
    let session = rust_client(&srv.addr, version, SHORT_KEEPALIVE).await;
    let stream = session.open_stream().await.unwrap();
    echo_checked(stream, seeded(13, 0, 1000))
        .await
        .unwrap_or_else(|e| panic!("{what}: before idling: {e}"));
    tokio::time::sleep(IDLE).await;
    assert!(!session.is_closed(), "{what}: {:?}", session.close_reason());
    let stream = session.open_stream().await.unwrap();
    timeout(
        Duration::from_secs(5),
        echo_checked(stream, seeded(13, 1, 1000)),
    )
    .await
    .unwrap_or_else(|_| panic!("{what}: no echo after idling: the Go session is gone"))
    .unwrap_or_else(|e| panic!("{what}: after idling: {e}"));
    println!("KCP {what}: {} s idle, both sessions open", IDLE.as_secs());
    session.close().await;
}

/// The four idle sessions of one Go version (both directions, v1 and v2) at once, so that
/// the 4 s of idling are spent once per Go version.
async fn idle_all(go: &Path, go_version: &str) {
    let start = Instant::now();
    tokio::join!(
        go_to_rust_idle(go, go_version, 1),
        go_to_rust_idle(go, go_version, 2),
        rust_to_go_idle(go, go_version, 1),
        rust_to_go_idle(go, go_version, 2),
    );
    println!(
        "KCP go {go_version}: 4 idle sessions in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

macro_rules! kcp_tests {
    ($($name:ident: $go:expr => $f:ident($($arg:expr),*);)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(go) = kcp_peer($go) else { return };
                let start = Instant::now();
                timeout(LIMIT, $f(&go, $go $(, $arg)*))
                    .await
                    .unwrap_or_else(|_| panic!("{} timed out", stringify!($name)));
                println!("{} took {:.1} s", stringify!($name), start.elapsed().as_secs_f64());
            }
        )*
    };
}

kcp_tests! {
    go_1_5_58_client_to_rust_v1_50x1mib: "1.5.58" => go_to_rust_bulk(1);
    rust_client_to_go_1_5_58_v1_50x1mib: "1.5.58" => rust_to_go_bulk(1);
    go_1_5_58_client_to_rust_v2_50x1mib: "1.5.58" => go_to_rust_bulk(2);
    rust_client_to_go_1_5_58_v2_50x1mib: "1.5.58" => rust_to_go_bulk(2);
    go_1_5_16_client_to_rust_v1_50x1mib: "1.5.16" => go_to_rust_bulk(1);
    rust_client_to_go_1_5_16_v1_50x1mib: "1.5.16" => rust_to_go_bulk(1);
    go_1_5_16_client_to_rust_v2_50x1mib: "1.5.16" => go_to_rust_bulk(2);
    rust_client_to_go_1_5_16_v2_50x1mib: "1.5.16" => rust_to_go_bulk(2);
    go_1_5_58_client_to_rust_v1_2000_short_streams: "1.5.58" => go_to_rust_short(1);
    rust_client_to_go_1_5_58_v1_2000_short_streams: "1.5.58" => rust_to_go_short(1);
    go_1_5_58_client_to_rust_v2_2000_short_streams: "1.5.58" => go_to_rust_short(2);
    rust_client_to_go_1_5_58_v2_2000_short_streams: "1.5.58" => rust_to_go_short(2);
    go_1_5_16_client_to_rust_v1_2000_short_streams: "1.5.16" => go_to_rust_short(1);
    rust_client_to_go_1_5_16_v1_2000_short_streams: "1.5.16" => rust_to_go_short(1);
    go_1_5_16_client_to_rust_v2_2000_short_streams: "1.5.16" => go_to_rust_short(2);
    rust_client_to_go_1_5_16_v2_2000_short_streams: "1.5.16" => rust_to_go_short(2);
    go_1_5_58_idle_sessions_survive_on_keepalive: "1.5.58" => idle_all();
    go_1_5_16_idle_sessions_survive_on_keepalive: "1.5.16" => idle_all();
}
