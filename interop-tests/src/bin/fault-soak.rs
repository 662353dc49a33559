//! The soak with faults: a tokio smux-rs client that re-dials after each failure (as kcptun
//! does) talks through toxiproxy to a tokio smux-rs echo server, with random-sized streams
//! checked end to end, while a fault is injected every few seconds (in turn: `reset_peer`,
//! `limit_data`, a latency spike, a slicer, a short black hole, a bandwidth throttle). Now
//! and then the client shuts its session down cleanly while streams are in flight.
//!
//! At the end it checks: no stream open on either side, as many open file descriptors as at
//! the start, resident memory within 10% of its value after 20 s, and no accepted byte lost
//! on a connection that closed cleanly (nor corrupted on any). It prints the figures and
//! exits non-zero on a failure.
//!
//! `cargo run --release -p interop-tests --bin fault-soak -- --seconds 120` (needs
//! `bash interop-tests/toxiproxy/build.sh`).

use clap::Parser;
use interop_tests::toxiproxy::{Direction, Kind, Proxy, Toxic, Toxiproxy};
use smux_tokio::{CloseReason, Config, Error, OpenError, Session, Stream};
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use test_rng::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Soak smux-rs through toxiproxy with a fault every few seconds.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// How long to run.
    #[arg(long, default_value_t = 120)]
    seconds: u64,
    /// Streams in flight at once on the client's session.
    #[arg(long, default_value_t = 16)]
    streams: usize,
    /// Milliseconds between two faults.
    #[arg(long, default_value_t = 3000)]
    fault_every_ms: u64,
    /// Seed of the sizes and the data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

const KA_INTERVAL: Duration = Duration::from_millis(500);
const KA_TIMEOUT: Duration = Duration::from_secs(3);
/// When the memory baseline is taken.
const RSS_BASELINE_AT: Duration = Duration::from_secs(20);

fn config() -> Config {
    Config::builder()
        .version(2)
        .keep_alive_interval(KA_INTERVAL)
        .keep_alive_timeout(KA_TIMEOUT)
        .build()
        .unwrap()
}

/// Resident memory of this process in KiB (VmRSS), or 0 where unknown.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn short(reason: &CloseReason) -> String {
    match reason {
        CloseReason::UnexpectedEof { mid_frame, .. } => {
            format!(
                "UnexpectedEof{}",
                if *mid_frame { "(mid-frame)" } else { "" }
            )
        }
        CloseReason::KeepaliveTimeout(_) => "KeepaliveTimeout".into(),
        CloseReason::WriteTimeout(_) => "WriteTimeout".into(),
        CloseReason::NoFrameFromPeer(_) => "NoFrameFromPeer".into(),
        CloseReason::Io { kind, .. } => format!("Io({kind:?})"),
        CloseReason::Protocol(p) => format!("Protocol({p})"),
        other => format!("{other:?}"),
    }
}

/// Everything counted, shared by the tasks.
#[derive(Default)]
struct Tally {
    sessions: AtomicU64,
    dial_failures: AtomicU64,
    streams_ok: AtomicU64,
    streams_failed: AtomicU64,
    bytes_verified: AtomicU64,
    clean_closes: AtomicU64,
    /// Shutdowns that a fault (or the peer) ended first, by reason.
    shutdowns_cut: Mutex<BTreeMap<String, u64>>,
    server_clean_ends: AtomicU64,
    client_ends: Mutex<BTreeMap<String, u64>>,
    server_ends: Mutex<BTreeMap<String, u64>>,
    stream_errors: Mutex<BTreeMap<String, u64>>,
    faults: Mutex<BTreeMap<&'static str, u64>>,
    /// The workers' buffers between sessions.
    buffers: Mutex<Vec<Buffers>>,
    /// The last fault injected and when.
    last_fault: Mutex<Option<(&'static str, Instant)>>,
    /// What must not happen.
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn fail(&self, what: String) {
        let what = match *self.last_fault.lock().unwrap() {
            Some((fault, at)) => {
                format!("{what} [{} ms after the {fault}]", at.elapsed().as_millis())
            }
            None => format!("{what} [before any fault]"),
        };
        eprintln!("FAILURE: {what}");
        let mut f = self.failures.lock().unwrap();
        if f.len() < 50 {
            f.push(what);
        }
    }

    fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
        *map.lock().unwrap().entry(key).or_default() += 1;
    }
}

// ---------------------------------------------------------------------------------------
// The server.

/// The server's live sessions.
type Live = Arc<Mutex<Vec<Session>>>;

async fn server(listener: TcpListener, live: Live, tally: Arc<Tally>) {
    while let Ok((conn, _)) = listener.accept().await {
        let _ = conn.set_nodelay(true);
        let session = smux_tokio::server(conn, config()).unwrap();
        live.lock().unwrap().push(session.clone());
        let (live, tally) = (live.clone(), tally.clone());
        tokio::spawn(async move {
            let mut echoes: Vec<JoinHandle<Result<u64, Error>>> = Vec::new();
            let mut failed: Vec<Error> = Vec::new();
            while let Ok(Some(stream)) = session.accept_stream().await {
                echoes.push(tokio::spawn(echo(stream)));
                if echoes.len() > 256 {
                    let (done, pending) = echoes.into_iter().partition(|h| h.is_finished());
                    echoes = pending;
                    collect_echoes(done, &mut failed, &tally).await;
                }
            }
            session.finished().await;
            collect_echoes(echoes, &mut failed, &tally).await;
            let reason = session.close_reason().expect("ended");
            if reason == CloseReason::PeerClosed {
                tally.server_clean_ends.fetch_add(1, Relaxed);
                // A clean end: every stream must have been echoed to its end.
                if let Some(e) = failed.first() {
                    tally.fail(format!(
                        "a server session ended cleanly (PeerClosed), yet {} of its streams failed there: {e:?}",
                        failed.len()
                    ));
                }
            }
            Tally::bump(&tally.server_ends, short(&reason));
            let open = session.stats().open_streams;
            if open != 0 {
                tally.fail(format!(
                    "a server session ended ({reason}) with {open} streams open"
                ));
            }
            live.lock()
                .unwrap()
                .retain(|s| !s.as_core().ptr_eq(session.as_core()));
        });
    }
}

/// Awaits echoes, keeping their errors.
async fn collect_echoes(
    echoes: Vec<JoinHandle<Result<u64, Error>>>,
    failed: &mut Vec<Error>,
    tally: &Tally,
) {
    for h in echoes {
        match h.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => failed.push(e),
            Err(e) => tally.fail(format!("an echo task panicked: {e}")),
        }
    }
}

/// Echoes a stream to its end; the bytes echoed.
async fn echo(stream: Stream) -> Result<u64, Error> {
    let (mut r, mut w) = stream.into_split();
    let mut buf = vec![0u8; 32 * 1024];
    let mut total = 0;
    let result: io::Result<()> = async {
        loop {
            let n = r.read(&mut buf).await?;
            if n == 0 {
                return w.shutdown().await;
            }
            w.write_all(&buf[..n]).await?;
            total += n as u64;
        }
    }
    .await;
    result.map(|()| total).map_err(typed)
}

/// The typed smux error inside an I/O error (every error smux-rs gives has one).
fn typed(e: io::Error) -> Error {
    match e.get_ref().and_then(|r| r.downcast_ref::<Error>()) {
        Some(t) => t.clone(),
        None => Error::Closed(CloseReason::io(&e)),
    }
}

// ---------------------------------------------------------------------------------------
// The client.

/// How one stream ended.
enum StreamEnd {
    /// The echo came back whole.
    Intact(u64),
    /// The session is shutting down (a clean close in progress).
    Refused,
    /// A typed error (a fault).
    Failed(Error),
    /// Bytes missing or wrong in an echo that ended without an error.
    Lost(String),
}

/// A worker's buffers, kept from session to session so that memory stays flat.
type Buffers = (Vec<u8>, Vec<u8>);

const MAX_STREAM: usize = 1 << 20;

async fn one_stream(
    session: &Session,
    n: u64,
    rng: &mut Rng,
    seed: u64,
    (data, got): &mut Buffers,
) -> StreamEnd {
    let stream = match session.open_stream().await {
        Ok(s) => s,
        // Shutting down, or shut down already: the last stream of a shutdown may finish,
        // and the session close, before its worker asks for the next one.
        Err(Error::Open(OpenError::ShuttingDown) | Error::Closed(CloseReason::Local)) => {
            return StreamEnd::Refused
        }
        Err(e) => return StreamEnd::Failed(e),
    };
    // Mostly small, some large.
    let len = match rng.range(0, 99) {
        0..=69 => rng.range(1, 4096),
        70..=94 => rng.range(4097, 64 * 1024),
        _ => rng.range(64 * 1024, MAX_STREAM),
    };
    let data = &mut data[..len];
    Rng::for_stream(seed, n).fill(data);
    let data = &*data;
    let mut pieces = Rng::new(seed ^ n);
    let (mut r, mut w) = stream.into_split();
    let send = async {
        let mut at = 0;
        while at < data.len() {
            let k = pieces.range(1, 64 * 1024).min(data.len() - at);
            w.write_all(&data[at..at + k]).await?;
            at += k;
        }
        w.shutdown().await
    };
    got.clear();
    let (sent, read) = tokio::join!(send, r.read_to_end(got));
    if let Err(e) = sent.and(read) {
        return StreamEnd::Failed(typed(e));
    }
    if got[..] != *data {
        let at = got.iter().zip(data).position(|(a, b)| a != b);
        return StreamEnd::Lost(format!(
            "stream {n}: {} of {} bytes came back without an error, first difference at {at:?}",
            got.len(),
            data.len()
        ));
    }
    StreamEnd::Intact(len as u64)
}

/// One session's worker: streams one after another until one fails or the session shuts
/// down. Returns the failures (typed errors) and the losses.
async fn worker(
    session: Session,
    id: u64,
    seed: u64,
    tally: Arc<Tally>,
) -> (u64, Option<Error>, Vec<String>) {
    let mut rng = Rng::new(seed ^ id.wrapping_mul(0x9E37_79B9));
    let mut failed = 0;
    let mut first_error = None;
    let mut lost = Vec::new();
    let popped = tally.buffers.lock().unwrap().pop();
    let mut buffers =
        popped.unwrap_or_else(|| (vec![0; MAX_STREAM], Vec::with_capacity(MAX_STREAM)));
    for k in 0.. {
        let n = id * 1_000_000 + k;
        match one_stream(&session, n, &mut rng, seed, &mut buffers).await {
            StreamEnd::Intact(bytes) => {
                tally.streams_ok.fetch_add(1, Relaxed);
                tally.bytes_verified.fetch_add(bytes, Relaxed);
            }
            StreamEnd::Refused => break,
            StreamEnd::Failed(e) => {
                tally.streams_failed.fetch_add(1, Relaxed);
                let key = match &e {
                    Error::Closed(r) => short(r),
                    other => format!("{other}"),
                };
                Tally::bump(&tally.stream_errors, key);
                failed += 1;
                first_error = Some(e);
                break;
            }
            StreamEnd::Lost(m) => {
                lost.push(m);
                break;
            }
        }
    }
    tally.buffers.lock().unwrap().push(buffers);
    (failed, first_error, lost)
}

/// Dials, runs a session until a fault ends it or it is time for a clean close, and again,
/// until `stop`.
async fn client(
    addr: SocketAddr,
    streams: usize,
    seed: u64,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> Option<Session> {
    let mut rng = Rng::new(seed ^ 0xC11E);
    let mut last = None;
    let mut worker_id = 0u64;
    while !stop.load(Relaxed) {
        let conn = match TcpStream::connect(addr).await {
            Ok(c) => c,
            Err(_) => {
                tally.dial_failures.fetch_add(1, Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = conn.set_nodelay(true);
        let session = smux_tokio::client(conn, config()).unwrap();
        tally.sessions.fetch_add(1, Relaxed);
        let workers: Vec<_> = (0..streams)
            .map(|_| {
                worker_id += 1;
                tokio::spawn(worker(session.clone(), worker_id, seed, tally.clone()))
            })
            .collect();
        // A clean close after 2..8 s, unless a fault ends the session first.
        let close_at = Instant::now() + Duration::from_millis(rng.range(2000, 8000) as u64);
        let mut shut_down = false;
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if workers.iter().all(|w| w.is_finished()) || session.is_closed() {
                break;
            }
            if stop.load(Relaxed) || Instant::now() >= close_at {
                // Refuse new streams, let the open ones finish, then close.
                shut_down = true;
                if tokio::time::timeout(Duration::from_secs(20), session.shutdown())
                    .await
                    .is_err()
                {
                    tally.fail("Session::shutdown took over 20 s".into());
                }
                break;
            }
        }
        let (mut failed, mut first_error, mut lost) = (0, None, Vec::new());
        for w in workers {
            let (f, e, l) = w.await.unwrap();
            failed += f;
            first_error = first_error.or(e);
            lost.extend(l);
        }
        if !session.is_closed() {
            session.close().await;
        }
        session.finished().await;
        let reason = session.close_reason().expect("ended");
        Tally::bump(&tally.client_ends, short(&reason));
        let clean = shut_down && reason == CloseReason::Local;
        if shut_down && !clean {
            Tally::bump(&tally.shutdowns_cut, short(&reason));
        }
        if clean {
            tally.clean_closes.fetch_add(1, Relaxed);
            if failed > 0 {
                tally.fail(format!(
                    "a client session closed cleanly (Local, after shutdown), yet {failed} of its streams failed: {}",
                    first_error.map_or(String::new(), |e| format!("{e:?}"))
                ));
            }
        }
        for l in lost {
            tally.fail(format!("{l} (session ended: {reason})"));
        }
        let open = session.stats().open_streams;
        if open != 0 {
            tally.fail(format!(
                "a client session ended ({reason}) with {open} streams open"
            ));
        }
        last = Some(session);
    }
    last
}

// ---------------------------------------------------------------------------------------
// The faults.

const FAULTS: [&str; 6] = [
    "reset_peer",
    "limit_data",
    "latency spike",
    "slicer",
    "black hole",
    "bandwidth",
];

async fn api<T: Send + 'static>(f: impl FnOnce() -> io::Result<T> + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("toxiproxy: {e}"))
}

/// Adds `toxics`, waits `hold`, removes them.
async fn for_a_while(proxy: &Proxy, toxics: Vec<Toxic>, hold: Duration) {
    let names: Vec<String> = toxics.iter().map(|t| t.name.clone()).collect();
    let p = proxy.clone();
    api(move || toxics.iter().try_for_each(|t| p.add(t))).await;
    tokio::time::sleep(hold).await;
    let p = proxy.clone();
    api(move || names.iter().try_for_each(|n| p.remove(n))).await;
}

fn both(name: &str, kind: Kind) -> Vec<Toxic> {
    [Direction::Upstream, Direction::Downstream]
        .into_iter()
        .map(|d| Toxic::new(format!("{name}-{}", d.as_str()), kind, d))
        .collect()
}

async fn inject(proxy: &Proxy, n: usize, rng: &mut Rng, tally: &Tally) {
    let fault = FAULTS[n % FAULTS.len()];
    Tally::bump(&tally.faults, fault);
    *tally.last_fault.lock().unwrap() = Some((fault, Instant::now()));
    match fault {
        "reset_peer" => {
            // Added mid-connection, toxiproxy closes without SO_LINGER 0: a RST where data
            // is unread, else a FIN in the middle of the traffic. (A reset toxic kept in
            // every connection's chain for a real RST would turn every close, the clean
            // ones too, into a RST.)
            let toxic = Toxic::new(
                "reset",
                Kind::ResetPeer { timeout_ms: 0 },
                Direction::Downstream,
            );
            for_a_while(proxy, vec![toxic], Duration::from_millis(100)).await;
        }
        "limit_data" => {
            let bytes = rng.range(1, 256 * 1024) as u64;
            let dir = if rng.range(0, 1) == 0 {
                Direction::Upstream
            } else {
                Direction::Downstream
            };
            let toxic = Toxic::new("limit", Kind::LimitData { bytes }, dir);
            for_a_while(proxy, vec![toxic], Duration::from_secs(1)).await;
        }
        "latency spike" => {
            let kind = Kind::Latency {
                latency_ms: 250,
                jitter_ms: 100,
            };
            for_a_while(proxy, both("latency", kind), Duration::from_secs(2)).await;
        }
        "slicer" => {
            let kind = Kind::Slicer {
                average_size: 16,
                size_variation: 12,
                delay_us: 10,
            };
            for_a_while(proxy, both("slicer", kind), Duration::from_millis(1500)).await;
        }
        "black hole" => {
            // Shorter than the keepalive timeout; toxiproxy closes the connections when it
            // is removed (what it swallowed is gone).
            let kind = Kind::Timeout { timeout_ms: 0 };
            for_a_while(proxy, both("hole", kind), KA_TIMEOUT / 2).await;
        }
        _ => {
            let kind = Kind::Bandwidth { rate_kb: 100 };
            for_a_while(proxy, both("bandwidth", kind), Duration::from_secs(2)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------

fn main() -> ExitCode {
    let args = Args::parse();
    let Some(toxiproxy) = Toxiproxy::start() else {
        eprintln!("fault-soak: toxiproxy is missing (bash interop-tests/toxiproxy/build.sh)");
        return ExitCode::FAILURE;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let report = rt.block_on(run(&args, &toxiproxy));
    drop(rt);
    drop(toxiproxy);
    println!("{}", report.lines.join("\n"));
    if report.failures.is_empty() {
        println!("fault-soak: ok");
        ExitCode::SUCCESS
    } else {
        println!("fault-soak: FAILED:");
        for f in &report.failures {
            println!("  {f}");
        }
        ExitCode::FAILURE
    }
}

struct Report {
    lines: Vec<String>,
    failures: Vec<String>,
}

async fn run(args: &Args, toxiproxy: &Toxiproxy) -> Report {
    let duration = Duration::from_secs(args.seconds);
    let tally = Arc::new(Tally::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    let client_api = toxiproxy.client();
    let proxy = api(move || client_api.proxy("soak", upstream)).await;
    let live: Live = Arc::default();
    let fds_start = open_fds();
    let start = Instant::now();
    let server_task = tokio::spawn(server(listener, live.clone(), tally.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let client_task = tokio::spawn(client(
        proxy.listen,
        args.streams,
        args.seed,
        stop.clone(),
        tally.clone(),
    ));

    // Faults until the end. Memory: the median of the samples of the 2 s after 20 s (or a
    // third of a short run), against that of the last 2 s of traffic.
    let baseline_at = RSS_BASELINE_AT.min(duration / 3);
    let window = Duration::from_secs(2);
    let (mut rss_first, mut rss_last) = (Vec::new(), Vec::new());
    let mut rng = Rng::new(args.seed ^ 0xFA17);
    let mut n = 0;
    let every = Duration::from_millis(args.fault_every_ms);
    let mut next_fault = start + every;
    while start.elapsed() < duration {
        let t = start.elapsed();
        if t >= baseline_at && t < baseline_at + window {
            rss_first.push(rss_kib());
        }
        if t + window >= duration && t > baseline_at + window {
            rss_last.push(rss_kib());
        }
        if Instant::now() >= next_fault && start.elapsed() + every < duration {
            inject(&proxy, n, &mut rng, &tally).await;
            n += 1;
            next_fault = Instant::now() + every;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The end: a last clean close, every server session gone.
    stop.store(true, Relaxed);
    let last = match tokio::time::timeout(Duration::from_secs(30), client_task).await {
        Ok(r) => r.unwrap(),
        Err(_) => {
            tally.fail("the client did not stop within 30 s".into());
            None
        }
    };
    let gone = {
        let deadline = Instant::now() + KA_TIMEOUT * 3;
        loop {
            let n = live.lock().unwrap().len();
            if n == 0 || Instant::now() > deadline {
                break n;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let server_open: usize = live
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.stats().open_streams)
        .sum();
    let client_open = last.as_ref().map_or(0, |s| s.stats().open_streams);
    if gone != 0 {
        tally.fail(format!("{gone} server sessions still live at the end"));
    }
    if client_open != 0 || server_open != 0 {
        tally.fail(format!(
            "streams open at the end: client {client_open}, server {server_open}"
        ));
    }
    drop(last);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The listener is still open, as at the start.
    let fds_end = open_fds();
    let rss_idle = rss_kib();
    server_task.abort();
    let _ = server_task.await;
    {
        let p = proxy.clone();
        api(move || p.delete()).await;
    }
    let median = |v: &mut Vec<u64>| {
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(rss_idle)
    };
    let (rss_baseline, rss_end) = (median(&mut rss_first), median(&mut rss_last));
    if fds_end != fds_start {
        tally.fail(format!(
            "open file descriptors: {fds_start} at the start, {fds_end} at the end"
        ));
    }
    let growth = (rss_end as f64 - rss_baseline as f64) / rss_baseline.max(1) as f64;
    if growth.abs() > 0.10 {
        tally.fail(format!(
            "RSS {rss_end} KiB at the end, {rss_baseline} KiB after {} s ({:+.1}%)",
            baseline_at.as_secs(),
            growth * 100.0
        ));
    }
    if rss_idle as f64 > rss_baseline as f64 * 1.10 {
        tally.fail(format!(
            "RSS {rss_idle} KiB once idle, over {rss_baseline} KiB after {} s + 10%",
            baseline_at.as_secs()
        ));
    }
    if tally.server_clean_ends.load(Relaxed) == 0 || tally.clean_closes.load(Relaxed) == 0 {
        tally.fail("no session closed cleanly: the lost-bytes check checked nothing".into());
    }
    if tally.faults.lock().unwrap().len() < FAULTS.len() && args.seconds >= 30 {
        tally.fail("not every fault was injected".into());
    }

    let map = |m: &Mutex<BTreeMap<String, u64>>| {
        m.lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let faults = tally
        .faults
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let lines = vec![
        format!(
            "fault-soak: {:.1} s, {} streams in flight, a fault every {} ms, keepalive {} ms / {} ms",
            start.elapsed().as_secs_f64(),
            args.streams,
            args.fault_every_ms,
            KA_INTERVAL.as_millis(),
            KA_TIMEOUT.as_millis()
        ),
        format!("faults injected: {faults}"),
        format!(
            "client sessions: {} ({} dial failures); ended: {}",
            tally.sessions.load(Relaxed),
            tally.dial_failures.load(Relaxed),
            map(&tally.client_ends)
        ),
        format!(
            "clean closes (shutdown with streams in flight): {} on the client, {} seen as clean by the server",
            tally.clean_closes.load(Relaxed),
            tally.server_clean_ends.load(Relaxed)
        ),
        format!(
            "shutdowns that a fault ended first: {}",
            map(&tally.shutdowns_cut)
        ),
        format!("server sessions ended: {}", map(&tally.server_ends)),
        format!(
            "streams: {} intact ({:.1} MiB checked end to end), {} failed with a typed error ({})",
            tally.streams_ok.load(Relaxed),
            tally.bytes_verified.load(Relaxed) as f64 / (1 << 20) as f64,
            tally.streams_failed.load(Relaxed),
            map(&tally.stream_errors)
        ),
        format!("open streams at the end: client {client_open}, server {server_open}"),
        format!("open file descriptors: {fds_start} at the start, {fds_end} at the end"),
        format!(
            "RSS (median over 2 s of traffic): {rss_baseline} KiB after {} s, {rss_end} KiB at the end ({:+.1}%); {rss_idle} KiB once idle",
            baseline_at.as_secs(),
            growth * 100.0
        ),
    ];
    let failures = tally.failures.lock().unwrap().clone();
    Report { lines, failures }
}
