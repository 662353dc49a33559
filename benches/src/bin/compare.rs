//! `compare`: smux-rs side by side with raw TCP, Go's xtaci/smux and hashicorp/yamux,
//! rust-yamux and async_smux, on the same workloads in one run, client and server in separate
//! processes. Run `cargo run --release -p benches --bin compare -- --help`.

use benches::report::{self, Kind, Row};
use benches::systems::{self, Rt, Settings, System};
use benches::wire;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Counts allocations, so that the bulk workload can report allocations per frame.
#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

fn allocations() -> u64 {
    GLOBAL.stats().allocations as u64
}

/// smux-rs side by side with raw TCP, Go smux, Go yamux, rust-yamux and async_smux.
#[derive(Debug, Parser)]
#[command(about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    peer: Option<PeerCommand>,
    /// Smaller workloads and one run each: under 30 s.
    #[arg(long)]
    quick: bool,
    /// Run only the systems whose name contains one of these (e.g. `--only tokio --only Go`).
    #[arg(long, value_name = "TEXT")]
    only: Vec<String>,
    /// Exit non-zero if any system could not run or any workload failed (for CI).
    #[arg(long)]
    strict: bool,
    /// Where the JSON and the SVG chart go.
    #[arg(long, default_value = "target/compare")]
    out: PathBuf,
    /// The Go bench peer (built by `interop-tests/go/build.sh` if missing and Go is installed).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../interop-tests/go/bin/go-bench"))]
    go_bench: PathBuf,
}

#[derive(Debug, Subcommand)]
enum PeerCommand {
    /// One side of a measurement (the runner starts these itself).
    #[command(subcommand, hide = true)]
    Peer(Peer),
}

#[derive(Debug, Subcommand)]
enum Peer {
    /// Serve every connection, printing `listening on ADDR` first.
    Server {
        #[arg(long)]
        listen: SocketAddr,
        #[command(flatten)]
        common: Common,
    },
    /// Run one workload and print its JSON line.
    Client {
        #[arg(long)]
        connect: SocketAddr,
        #[arg(long, value_enum)]
        workload: Workload,
        #[arg(long, default_value_t = 1)]
        streams: usize,
        #[arg(long, default_value_t = 16 << 20)]
        bytes: u64,
        #[arg(long, default_value_t = 2000)]
        count: usize,
        #[arg(long, default_value_t = 64)]
        size: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Workload {
    Bulk,
    Rtt,
    RttBulk,
    OpenClose,
    Idle,
}

impl Workload {
    fn arg(self) -> &'static str {
        match self {
            Workload::Bulk => "bulk",
            Workload::Rtt => "rtt",
            Workload::RttBulk => "rtt-bulk",
            Workload::OpenClose => "open-close",
            Workload::Idle => "idle",
        }
    }
}

/// The settings both sides take; the Go peer takes the same flags.
#[derive(Debug, Args, Clone)]
struct Common {
    #[arg(long, value_enum)]
    system: System,
    #[arg(long, default_value_t = 1)]
    version: u8,
    #[arg(long, default_value_t = FRAME)]
    frame: usize,
    #[arg(long, default_value_t = WINDOW)]
    window: usize,
    #[arg(long, default_value_t = RECEIVE_BUFFER)]
    receive_buffer: usize,
    #[arg(long, default_value_t = WRITE_SIZE)]
    write_size: usize,
}

const FRAME: usize = 32 * 1024;
const WINDOW: usize = 256 * 1024;
const RECEIVE_BUFFER: usize = 4 << 20;
const WRITE_SIZE: usize = 128 * 1024;
const IDLE_STREAMS: usize = 10_000;

impl Common {
    fn settings(&self) -> Settings {
        Settings {
            version: self.version,
            frame: self.frame,
            window: self.window,
            receive_buffer: self.receive_buffer,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.peer {
        Some(PeerCommand::Peer(peer)) => run_peer(peer),
        None => run_comparison(&cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compare: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_peer(peer: Peer) -> Result<(), String> {
    match peer {
        Peer::Server { listen, common } => {
            let rt = Rt::for_system(common.system).map_err(|e| e.to_string())?;
            let listener = listen_on(listen).map_err(|e| format!("bind {listen}: {e}"))?;
            println!(
                "listening on {}",
                listener.local_addr().map_err(|e| e.to_string())?
            );
            systems::serve(
                &rt,
                common.system,
                &common.settings(),
                listener,
                allocations,
            )
            .map_err(|e| format!("server: {e}"))
        }
        Peer::Client {
            connect,
            workload,
            streams,
            bytes,
            count,
            size,
            concurrency,
            common,
        } => {
            let rt = Rt::for_system(common.system).map_err(|e| e.to_string())?;
            let opener = systems::connect(&rt, common.system, &common.settings(), connect)
                .map_err(|e| format!("connect {connect}: {e}"))?;
            let spawn = rt.spawner();
            let ws = common.write_size;
            let result = rt.block_on(async move {
                match workload {
                    Workload::Bulk => {
                        wire::bulk(opener, spawn, streams, bytes, ws, allocations).await
                    }
                    Workload::Rtt => wire::rtt(opener, count, size).await,
                    Workload::RttBulk => wire::rtt_bulk(opener, spawn, count, size, ws).await,
                    Workload::OpenClose => {
                        wire::open_close(opener, spawn, count, concurrency).await
                    }
                    Workload::Idle => wire::idle(opener, streams).await,
                }
            });
            let value = result.map_err(|e| format!("{}: {e}", workload.arg()))?;
            println!("{value}");
            // Leave at once: background writers (rtt-bulk) need not finish.
            std::process::exit(0);
        }
    }
}

/// A listener with a deep accept queue: raw TCP opens 256 connections at once, and std's
/// default backlog of 128 would make some of them wait for a SYN retry.
fn listen_on(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// The settings every system gets, in smux protocol `version`.
fn settings(version: u8) -> Settings {
    Settings {
        version,
        frame: FRAME,
        window: WINDOW,
        receive_buffer: RECEIVE_BUFFER,
    }
}

/// How big each workload is, and how many rounds of each run.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    bulk_total: u64,
    runs: usize,
    rtt: usize,
    hol: usize,
    open_close: usize,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Sizes {
                bulk_total: 32 << 20,
                runs: 1,
                rtt: 500,
                hol: 200,
                open_close: 500,
            }
        } else {
            Sizes {
                bulk_total: 512 << 20,
                runs: 3,
                rtt: 5000,
                hol: 2000,
                open_close: 5000,
            }
        }
    }
}

/// How to start one side of a system.
#[derive(Debug, Clone)]
enum Launch {
    /// This binary's `peer` subcommand.
    Rust(System),
    /// The Go peer with `--system NAME`.
    Go(&'static str),
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    kind: Kind,
    version: Option<u8>,
    launch: Launch,
    config: String,
}

fn entries() -> Vec<Entry> {
    let mut out = Vec::new();
    let mut rust = |name: String, kind, version: Option<u8>, system| {
        let s = settings(version.unwrap_or(1));
        out.push(Entry {
            name,
            kind,
            version,
            launch: Launch::Rust(system),
            config: systems::describe(system, &s),
        });
    };
    rust("raw TCP".into(), Kind::Raw, None, System::Raw);
    for (rt, system) in [
        ("tokio", System::SmuxTokio),
        ("smol", System::SmuxSmol),
        ("async-std", System::SmuxAsyncStd),
    ] {
        for v in [1, 2] {
            rust(format!("smux-rs {rt} v{v}"), Kind::Ours, Some(v), system);
        }
    }
    rust("rust-yamux".into(), Kind::Other, None, System::Yamux);
    rust("async_smux".into(), Kind::Other, Some(1), System::AsyncSmux);
    for v in [1, 2] {
        let s = settings(v);
        out.push(Entry {
            name: format!("Go smux v{v}"),
            kind: Kind::GoSmux,
            version: Some(v),
            launch: Launch::Go("go-smux"),
            config: format!(
                "xtaci/smux v1.5.57, v{v}, frame {} KiB, stream window {} KiB, receive buffer {} KiB",
                s.frame / 1024,
                s.window / 1024,
                s.receive_buffer / 1024
            ),
        });
    }
    out.push(Entry {
        name: "Go yamux".into(),
        kind: Kind::Other,
        version: None,
        launch: Launch::Go("go-yamux"),
        config: format!(
            "hashicorp/yamux v0.1.2, stream window {} KiB, accept backlog 16384",
            WINDOW / 1024
        ),
    });
    out
}

/// Runs every system through every workload and prints the report.
fn run_comparison(cli: &Cli) -> Result<(), String> {
    let started = Instant::now();
    let sizes = Sizes::new(cli.quick);
    let entries: Vec<Entry> = entries()
        .into_iter()
        .filter(|e| cli.only.is_empty() || cli.only.iter().any(|o| e.name.contains(o.as_str())))
        .collect();
    let self_exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = std::path::absolute(&cli.out).map_err(|e| e.to_string())?;
    let go = go_bench(
        &cli.go_bench,
        entries.iter().any(|e| matches!(e.launch, Launch::Go(_))),
    );
    eprintln!(
        "compare: {} systems, {} mode{}",
        entries.len(),
        if cli.quick { "quick" } else { "full" },
        if cli.quick {
            ""
        } else {
            " (--quick for a 30-second run)"
        }
    );
    let mut rows = Vec::new();
    let mut programs = Vec::new();
    for entry in &entries {
        let mut row = Row::new(&entry.name, entry.kind, entry.version, entry.config.clone());
        let program = match (&entry.launch, &go) {
            (Launch::Rust(system), _) => Some(Program::rust(&self_exe, *system)),
            (Launch::Go(system), Ok(path)) => Some(Program::go(path, system)),
            (Launch::Go(_), Err(why)) => {
                row.fill_missing(why);
                None
            }
        };
        programs.push(program.map(|p| p.with_settings(settings(entry.version.unwrap_or(1)))));
        rows.push(row);
    }
    measure_all(&programs, &sizes, &mut rows);
    println!("{}", report::table(&rows));
    println!("targets (smux-rs rows):\n{}", report::targets(&rows));
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let meta = json!({
        "quick": cli.quick,
        "cores": std::thread::available_parallelism().map_or(0, usize::from),
        "seconds": started.elapsed().as_secs_f64(),
        "bulk_bytes_per_run": sizes.bulk_total,
        "bulk_runs": sizes.runs,
        "write_size": WRITE_SIZE,
    });
    let json_path = out.join("compare.json");
    let svg_path = out.join("compare.svg");
    let text =
        serde_json::to_string_pretty(&report::json(&rows, meta)).map_err(|e| e.to_string())?;
    std::fs::write(&json_path, text).map_err(|e| format!("{}: {e}", json_path.display()))?;
    std::fs::write(&svg_path, report::svg(&rows))
        .map_err(|e| format!("{}: {e}", svg_path.display()))?;
    println!(
        "wrote {} and {} in {:.0} s",
        json_path.display(),
        svg_path.display(),
        started.elapsed().as_secs_f64()
    );
    let failed: Vec<String> = rows
        .iter()
        .flat_map(|r| r.notes.iter().map(move |(k, why)| (r, k, why)))
        .filter(|(_, _, why)| !why.starts_with("n/a"))
        .map(|(r, k, why)| format!("{} {k}: {why}", r.name))
        .collect();
    if cli.strict && !failed.is_empty() {
        return Err(format!(
            "{} figures missing: {}",
            failed.len(),
            failed.join("; ")
        ));
    }
    Ok(())
}

/// Finds the Go peer, building it once if Go is installed; the error says why not.
fn go_bench(path: &Path, wanted: bool) -> Result<PathBuf, String> {
    if !wanted || path.exists() {
        return Ok(path.to_path_buf());
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop-tests/go/build.sh");
    eprintln!("compare: building the Go peer ({})", script.display());
    let built = Command::new("bash")
        .arg(&script)
        .stdout(Stdio::null())
        .status();
    match built {
        Ok(s) if s.success() && path.exists() => Ok(path.to_path_buf()),
        Ok(_) => Err("Go peer not built: interop-tests/go/build.sh failed".into()),
        Err(e) => Err(format!("Go peer not built: cannot run bash: {e}")),
    }
}

/// A peer program and the arguments that select its system and settings.
#[derive(Debug, Clone)]
struct Program {
    path: PathBuf,
    prefix: Vec<String>,
    system: String,
    settings: Vec<String>,
}

impl Program {
    fn rust(exe: &Path, system: System) -> Self {
        let name = system.to_possible_value().map(|v| v.get_name().to_string());
        Program {
            path: exe.to_path_buf(),
            prefix: vec!["peer".into()],
            system: name.unwrap_or_default(),
            settings: Vec::new(),
        }
    }

    fn go(path: &Path, system: &str) -> Self {
        Program {
            path: path.to_path_buf(),
            prefix: Vec::new(),
            system: system.into(),
            settings: Vec::new(),
        }
    }

    fn with_settings(mut self, s: Settings) -> Self {
        self.settings = [
            ("--version", s.version as usize),
            ("--frame", s.frame),
            ("--window", s.window),
            ("--receive-buffer", s.receive_buffer),
            ("--write-size", WRITE_SIZE),
        ]
        .iter()
        .flat_map(|(k, v)| [k.to_string(), v.to_string()])
        .collect();
        self
    }

    fn command(&self, role: &str, extra: &[String]) -> Command {
        let mut c = Command::new(&self.path);
        c.args(&self.prefix)
            .arg(role)
            .args(["--system", &self.system])
            .args(&self.settings)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }
}

/// A running peer: killed when dropped.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    errors: mpsc::Receiver<String>,
}

impl Proc {
    fn start(mut cmd: Command) -> Result<Self, String> {
        let mut child = cmd.spawn().map_err(|e| format!("cannot start peer: {e}"))?;
        let stdin = child.stdin.take();
        let lines = forward(child.stdout.take());
        let errors = forward(child.stderr.take());
        Ok(Proc {
            child,
            stdin,
            lines,
            errors,
        })
    }

    /// The next stdout line, or the peer's own error message.
    fn line(&mut self, timeout: Duration) -> Result<String, String> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => Ok(line),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(format!("no answer in {timeout:?}")),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = self.child.wait();
                let said: Vec<String> = self.errors.try_iter().collect();
                let said = said.join(" ");
                Err(if said.is_empty() {
                    "peer exited".into()
                } else {
                    said
                })
            }
        }
    }

    fn json(&mut self, timeout: Duration) -> Result<Value, String> {
        let line = self.line(timeout)?;
        serde_json::from_str(&line).map_err(|e| format!("bad answer {line:?}: {e}"))
    }

    fn tell(&mut self) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("no stdin")?;
        writeln!(stdin, "go").map_err(|e| e.to_string())
    }

    /// Resident memory in bytes, from /proc.
    fn rss(&self) -> Result<f64, String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .map_err(|e| format!("cannot read RSS: {e}"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kb| kb * 1024.0)
            .ok_or_else(|| "no VmRSS".into())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn forward(out: Option<impl std::io::Read + Send + 'static>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(out) = out {
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    rx
}

const TIMEOUT: Duration = Duration::from_secs(120);

fn start_server(program: &Program) -> Result<(Proc, String), String> {
    let mut server =
        Proc::start(program.command("server", &["--listen".into(), "127.0.0.1:0".into()]))?;
    let line = server.line(Duration::from_secs(20))?;
    let addr = line
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("server said {line:?}"))?
        .to_string();
    Ok((server, addr))
}

/// Starts a client of `program` running `workload` against `addr`.
fn start_client(
    program: &Program,
    addr: &str,
    workload: &str,
    args: &[(&str, String)],
) -> Result<Proc, String> {
    let mut extra = vec![
        "--connect".to_string(),
        addr.to_string(),
        "--workload".into(),
        workload.into(),
    ];
    for (k, v) in args {
        extra.push(format!("--{k}"));
        extra.push(v.clone());
    }
    Proc::start(program.command("client", &extra))
}

/// Runs one workload and returns its answer.
fn client(
    program: &Program,
    addr: &str,
    workload: &str,
    args: &[(&str, String)],
) -> Result<Value, String> {
    start_client(program, addr, workload, args)?.json(TIMEOUT)
}

fn num(v: &Value, key: &str) -> Result<f64, String> {
    v.get(key)
        .and_then(Value::as_f64)
        .ok_or_else(|| format!("answer without {key}: {v}"))
}

/// One client run of a workload: its name, its arguments, and how to read the answer into
/// a row's figures.
struct Job {
    label: String,
    workload: &'static str,
    args: Vec<(&'static str, String)>,
    /// Metric keys and the answer fields they come from; the first one ranks runs.
    figures: Vec<(&'static str, &'static str)>,
}

fn jobs(sizes: &Sizes) -> Vec<Job> {
    let mut jobs = Vec::new();
    for (key, streams) in [("bulk1", 1usize), ("bulk16", 16), ("bulk256", 256)] {
        jobs.push(Job {
            label: format!(
                "bulk, {streams} stream{}",
                if streams == 1 { "" } else { "s" }
            ),
            workload: "bulk",
            args: vec![
                ("streams", streams.to_string()),
                ("bytes", (sizes.bulk_total / streams as u64).to_string()),
            ],
            figures: vec![(key, "mbps")],
        });
    }
    for (label, workload, count, p50, p99) in [
        (
            "64-byte round trips",
            "rtt",
            sizes.rtt,
            "rtt_p50",
            "rtt_p99",
        ),
        (
            "round trips beside bulk",
            "rtt-bulk",
            sizes.hol,
            "hol_p50",
            "hol_p99",
        ),
    ] {
        jobs.push(Job {
            label: label.into(),
            workload,
            args: vec![("count", count.to_string()), ("size", "64".into())],
            figures: vec![(p50, "p50_us"), (p99, "p99_us")],
        });
    }
    jobs.push(Job {
        label: "open + ping + close".into(),
        workload: "open-close",
        args: vec![
            ("count", sizes.open_close.to_string()),
            ("concurrency", "16".into()),
        ],
        figures: vec![("open_close", "per_sec")],
    });
    jobs
}

/// Runs every workload on every system, workload by workload and in rounds (each round
/// runs every system once), so that a drift of the machine over the run hits all systems
/// alike; each figure is the median run. Then memory per idle stream, against fresh servers.
fn measure_all(programs: &[Option<Program>], sizes: &Sizes, rows: &mut [Row]) {
    let mut servers: Vec<Option<(Proc, String)>> = Vec::new();
    for (program, row) in programs.iter().zip(rows.iter_mut()) {
        servers.push(program.as_ref().and_then(|p| match start_server(p) {
            Ok(s) => Some(s),
            Err(e) => {
                row.fill_missing(&format!("failed: {e}"));
                None
            }
        }));
    }
    for job in jobs(sizes) {
        eprintln!(
            "{} ({} round{})",
            job.label,
            sizes.runs,
            if sizes.runs == 1 { "" } else { "s" }
        );
        let mut runs: Vec<Vec<Value>> = vec![Vec::new(); rows.len()];
        let mut failed: Vec<Option<String>> = vec![None; rows.len()];
        for _ in 0..sizes.runs {
            for (i, (program, server)) in programs.iter().zip(&servers).enumerate() {
                let (Some(program), Some((_, addr))) = (program, server) else {
                    continue;
                };
                if failed[i].is_some() {
                    continue;
                }
                match client(program, addr, job.workload, &job.args) {
                    Ok(v) => runs[i].push(v),
                    Err(e) => failed[i] = Some(e),
                }
            }
        }
        for (i, row) in rows.iter_mut().enumerate() {
            if let Some(e) = &failed[i] {
                for (key, _) in &job.figures {
                    row.notes.insert(key, format!("failed: {e}"));
                }
                continue;
            }
            let (rank_key, rank_field) = job.figures[0];
            let mut these = std::mem::take(&mut runs[i]);
            if these.is_empty() {
                continue;
            }
            these.sort_by(|a, b| {
                num(a, rank_field)
                    .unwrap_or(0.0)
                    .total_cmp(&num(b, rank_field).unwrap_or(0.0))
            });
            let median = &these[these.len() / 2];
            let mut shown = Vec::new();
            for (key, field) in &job.figures {
                if let Ok(v) = num(median, field) {
                    row.values.insert(key, v);
                    shown.push(format!("{v:.1}"));
                }
            }
            if rank_key == "bulk1" {
                let frames = |bytes: f64| bytes / FRAME as f64;
                if let (Ok(bytes), Ok(c), Ok(s)) = (
                    num(median, "bytes"),
                    num(median, "client_allocs"),
                    num(median, "server_allocs"),
                ) {
                    row.values.insert("allocs_send", c / frames(bytes));
                    row.values.insert("allocs_recv", s / frames(bytes));
                }
            }
            eprintln!("  {:<22} {}", row.name, shown.join(" / "));
        }
    }
    drop(servers);
    eprintln!("memory per idle stream ({IDLE_STREAMS} streams, fresh servers)");
    for (program, row) in programs.iter().zip(rows.iter_mut()) {
        let Some(program) = program else { continue };
        if row.kind == Kind::Raw {
            let why = "n/a: 10 000 idle sockets measure the kernel";
            row.notes.insert("idle_client", why.into());
            row.notes.insert("idle_server", why.into());
            continue;
        }
        match idle(program) {
            Ok((c, s)) => {
                row.values.insert("idle_client", c);
                row.values.insert("idle_server", s);
                eprintln!("  {:<22} client {c:.0} B, server {s:.0} B", row.name);
            }
            Err(e) => {
                row.notes.insert("idle_client", format!("failed: {e}"));
                row.notes.insert("idle_server", format!("failed: {e}"));
            }
        }
    }
}

/// Memory per idle stream on each side, against a fresh server: RSS growth while
/// 10 000 streams are opened and held, divided by 10 000.
fn idle(program: &Program) -> Result<(f64, f64), String> {
    let (server, addr) = start_server(program)?;
    let streams = [("streams", IDLE_STREAMS.to_string())];
    let mut client = start_client(program, &addr, "idle", &streams)?;
    expect_phase(&client.json(TIMEOUT)?, "baseline")?;
    let (c0, s0) = (client.rss()?, server.rss()?);
    client.tell()?;
    expect_phase(&client.json(TIMEOUT)?, "ready")?;
    let (c1, s1) = (client.rss()?, server.rss()?);
    client.tell()?;
    let n = IDLE_STREAMS as f64;
    Ok(((c1 - c0) / n, (s1 - s0) / n))
}

fn expect_phase(v: &Value, phase: &str) -> Result<(), String> {
    if v.get("phase").and_then(Value::as_str) == Some(phase) {
        Ok(())
    } else {
        Err(format!("expected phase {phase}, got {v}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use benches::report::METRICS;

    /// Every system the issue names has a row, and both smux versions run on every runtime.
    #[test]
    fn every_system_has_a_row() {
        let rows = entries();
        let names: Vec<&str> = rows.iter().map(|e| e.name.as_str()).collect();
        for want in [
            "raw TCP",
            "smux-rs tokio v1",
            "smux-rs tokio v2",
            "smux-rs smol v1",
            "smux-rs smol v2",
            "smux-rs async-std v1",
            "smux-rs async-std v2",
            "Go smux v1",
            "Go smux v2",
            "Go yamux",
            "rust-yamux",
            "async_smux",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        assert_eq!(METRICS.len(), 12);
    }
}
