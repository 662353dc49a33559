//! `compare`: smux-rs side by side with raw TCP, Go's xtaci/smux and hashicorp/yamux,
//! rust-yamux and async_smux, on the same workloads in one run, client and server in separate
//! processes. Run `cargo run --release -p benches --bin compare -- --help`.
//!
//! With `--baseline PATH`, every smux-rs row is also an A/B: PATH is a `compare` binary built
//! from a base commit, and in every round the runner measures each smux-rs system once with
//! this binary and once with PATH, through the hidden `one-shot` subcommand both of them
//! have (see [`ONE_SHOT_PROTOCOL`]).

use benches::paired::Paired;
use benches::report::{self, Base, Kind, Row};
use benches::systems::{self, Rt, Settings, System};
use benches::wire;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use std::collections::BTreeMap;
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
    /// Rounds of every workload, the median kept (default 3, or 1 with --quick). More rounds
    /// make an A/B with --baseline steadier.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    rounds: Option<u32>,
    /// Run only the systems whose name contains one of these (e.g. `--only tokio --only Go`).
    #[arg(long, value_name = "TEXT")]
    only: Vec<String>,
    /// Exit non-zero if any system could not run or any workload failed (for CI), or with
    /// --baseline if any smux-rs figure is worse than base beyond tolerance.
    #[arg(long)]
    strict: bool,
    /// Where the JSON and the SVG chart go.
    #[arg(long, default_value = "target/compare")]
    out: PathBuf,
    /// The Go bench peer (built by `interop-tests/go/build.sh` if missing and Go is installed).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../interop-tests/go/bin/go-bench"))]
    go_bench: PathBuf,
    /// A/B every smux-rs row against PATH, a `compare` binary built from a base commit
    ///
    /// In every round, each smux-rs system is measured once by this binary and once by PATH
    /// (in alternating order), each run with a fresh server and client of its own binary, so
    /// both sides get the same rounds and the same drift of the machine. The table then shows,
    /// for every smux-rs row, the base value and new/base: the median of the rounds' own
    /// new/base ratios, with a 95% interval for it; compare.json gains the same; a summary
    /// lists every throughput or p50 figure more than 5% worse than base and every p99 or
    /// open + close figure more than 15% worse, each marked beyond doubt when its whole
    /// interval is (with --strict, any of them is an error). Go and the other systems run
    /// once, as without the flag. One round (--quick) is too noisy for a verdict, and fewer
    /// than 6 rounds give no 95% interval: use --rounds 15 or more.
    ///
    /// Build PATH from the base commit with:
    ///   git worktree add /tmp/base REV
    ///   cargo build --release -p benches --bin compare --manifest-path /tmp/base/Cargo.toml
    /// and pass --baseline /tmp/base/target/release/compare. The base must itself have
    /// `compare --baseline` (its hidden `one-shot` subcommand): a binary from an older commit
    /// is refused with an error saying so.
    #[arg(long, value_name = "PATH", verbatim_doc_comment)]
    baseline: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum PeerCommand {
    /// One side of a measurement (the runner starts these itself).
    #[command(subcommand, hide = true)]
    Peer(Peer),
    /// One whole measurement, for a runner with `--baseline` (see [`ONE_SHOT_PROTOCOL`]).
    #[command(subcommand, hide = true)]
    OneShot(OneShot),
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
        #[command(flatten)]
        load: Load,
        #[command(flatten)]
        common: Common,
    },
}

/// The version of the protocol between `compare --baseline` and the baseline binary. The
/// runner first runs `PATH one-shot probe`, which prints `compare one-shot protocol N`, and
/// refuses PATH unless N is this version; then, for every run of a smux-rs system, it runs
/// `PATH one-shot run` with the system, every setting of [`Common`], the workload and the
/// sizes of [`Load`] it uses (so that no default of either binary matters), which starts a
/// server and a client of PATH, and reads the client's JSON answer, the one line PATH prints
/// on stdout. Raise it when any of that changes.
const ONE_SHOT_PROTOCOL: u32 = 1;

/// What `one-shot probe` prints before the protocol version.
const ONE_SHOT_PROBE: &str = "compare one-shot protocol ";

#[derive(Debug, Subcommand)]
enum OneShot {
    /// Print `compare one-shot protocol N`.
    Probe,
    /// Measure one run of one workload on one system, with a fresh server and client of this
    /// binary, and print the client's answer as one JSON line (for `idle`: the memory per
    /// stream on each side, `client_bytes` and `server_bytes`).
    Run {
        #[command(flatten)]
        load: Load,
        #[command(flatten)]
        common: Common,
    },
}

/// A workload and its size, as a client runs it.
#[derive(Debug, Args, Clone)]
struct Load {
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
    /// rtt-bulk only: hold the bulk stream to this many MB/s, so that two binaries' round
    /// trips are judged behind the same queue (unpaced, the faster sender fills more of it).
    #[arg(long, value_name = "MBPS", value_parser = positive_rate)]
    pace: Option<f64>,
}

/// A rate for `--pace`: a finite number of MB/s above zero.
fn positive_rate(arg: &str) -> Result<f64, String> {
    match arg.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{arg:?} is not a rate in MB/s above 0")),
    }
}

impl Load {
    /// Every size argument, for a client of this load.
    fn args(&self) -> Vec<(&'static str, String)> {
        let mut args = vec![
            ("streams", self.streams.to_string()),
            ("bytes", self.bytes.to_string()),
            ("count", self.count.to_string()),
            ("size", self.size.to_string()),
            ("concurrency", self.concurrency.to_string()),
        ];
        if let Some(pace) = self.pace {
            args.push(("pace", pace.to_string()));
        }
        args
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Workload {
    Bulk,
    Rtt,
    RttTask,
    RttBulk,
    Echo,
    OpenClose,
    Idle,
}

impl Workload {
    fn arg(self) -> &'static str {
        match self {
            Workload::Bulk => "bulk",
            Workload::Rtt => "rtt",
            Workload::RttTask => "rtt-task",
            Workload::RttBulk => "rtt-bulk",
            Workload::Echo => "echo",
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
        Some(PeerCommand::OneShot(one_shot)) => run_one_shot(one_shot),
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
            load,
            common,
        } => {
            let Load {
                workload,
                streams,
                bytes,
                count,
                size,
                concurrency,
                pace,
            } = load;
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
                    Workload::RttTask => wire::rtt_task(opener, spawn, count, size).await,
                    Workload::RttBulk => wire::rtt_bulk(opener, spawn, count, size, ws, pace).await,
                    Workload::Echo => wire::echo(opener, spawn, bytes, ws).await,
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

/// Runs `one-shot`: the protocol probe, or one measurement with a server and a client of this
/// very binary.
fn run_one_shot(one_shot: OneShot) -> Result<(), String> {
    let (load, common) = match one_shot {
        OneShot::Probe => {
            println!("{ONE_SHOT_PROBE}{ONE_SHOT_PROTOCOL}");
            return Ok(());
        }
        OneShot::Run { load, common } => (load, common),
    };
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let program =
        Program::rust(&exe, common.system).with_settings(common.settings(), common.write_size);
    let answer = if load.workload == Workload::Idle {
        let (c, s) = idle(&program, load.streams)?;
        json!({"workload": "idle", "streams": load.streams, "client_bytes": c, "server_bytes": s})
    } else {
        let (_server, addr) = start_server(&program)?;
        client(&program, &addr, load.workload.arg(), &load.args())?
    };
    println!("{answer}");
    Ok(())
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
                "xtaci/smux v1.5.58, v{v}, frame {} KiB, stream window {} KiB, receive buffer {} KiB",
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
    let mut sizes = Sizes::new(cli.quick);
    if let Some(rounds) = cli.rounds {
        sizes.runs = rounds as usize;
    }
    let entries: Vec<Entry> = entries()
        .into_iter()
        .filter(|e| cli.only.is_empty() || cli.only.iter().any(|o| e.name.contains(o.as_str())))
        .collect();
    let self_exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = std::path::absolute(&cli.out).map_err(|e| e.to_string())?;
    let baseline = cli.baseline.as_deref().map(probe_baseline).transpose()?;
    let go = go_bench(
        &cli.go_bench,
        entries.iter().any(|e| matches!(e.launch, Launch::Go(_))),
    );
    let ab_rows = entries.iter().filter(|e| e.kind == Kind::Ours).count();
    eprintln!(
        "compare: {} systems, {} mode{}{}",
        entries.len(),
        if cli.quick { "quick" } else { "full" },
        if cli.quick {
            ""
        } else {
            " (--quick for a 30-second run)"
        },
        baseline.as_ref().map_or(String::new(), |b| format!(
            ", {ab_rows} smux-rs systems A/B against {}",
            b.display()
        ))
    );
    if baseline.is_some() && ab_rows == 0 {
        eprintln!("compare: --baseline has nothing to compare: no smux-rs system selected");
    }
    let mut rows = Vec::new();
    let mut plans = Vec::new();
    for entry in &entries {
        let mut row = Row::new(&entry.name, entry.kind, entry.version, entry.config.clone());
        let s = settings(entry.version.unwrap_or(1));
        let plan = match (&entry.launch, &go, &baseline) {
            (Launch::Rust(system), _, Some(base)) if entry.kind == Kind::Ours => {
                row.base = Some(Base::default());
                let side = |exe: &Path| Side::OneShot(Program::one_shot(exe, *system));
                Plan {
                    new: Some(side(&self_exe)),
                    base: Some(side(base)),
                }
            }
            (Launch::Rust(system), _, _) => Plan::served(Program::rust(&self_exe, *system)),
            (Launch::Go(system), Ok(path), _) => Plan::served(Program::go(path, system)),
            (Launch::Go(_), Err(why), _) => {
                row.fill_missing(why);
                Plan::default()
            }
        };
        plans.push(plan.with_settings(s));
        rows.push(row);
    }
    measure_all(&plans, &sizes, &mut rows);
    println!("{}", report::table(&rows));
    println!("targets (smux-rs rows):\n{}", report::targets(&rows));
    let regressions = report::regressions(&rows);
    if baseline.is_some() {
        println!("{}", report::ab_summary(&rows));
    }
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let meta = json!({
        "quick": cli.quick,
        "cores": std::thread::available_parallelism().map_or(0, usize::from),
        "seconds": started.elapsed().as_secs_f64(),
        "bulk_bytes_per_run": sizes.bulk_total,
        "bulk_runs": sizes.runs,
        "write_size": WRITE_SIZE,
        "baseline": baseline.as_ref().map(|b| b.display().to_string()),
        "one_shot_protocol": ONE_SHOT_PROTOCOL,
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
    let own = rows
        .iter()
        .flat_map(|r| r.notes.iter().map(move |(k, why)| (r.name.clone(), k, why)));
    let base = rows.iter().flat_map(|r| {
        r.base
            .iter()
            .flat_map(|b| b.notes.iter())
            .map(move |(k, why)| (format!("{} (base)", r.name), k, why))
    });
    let failed: Vec<String> = own
        .chain(base)
        .filter(|(_, _, why)| !why.starts_with("n/a"))
        .map(|(name, k, why)| format!("{name} {k}: {why}"))
        .collect();
    if cli.strict && !failed.is_empty() {
        return Err(format!(
            "{} figures missing: {}",
            failed.len(),
            failed.join("; ")
        ));
    }
    if cli.strict && !regressions.is_empty() {
        return Err(format!(
            "{} smux-rs figures worse than the baseline beyond tolerance",
            regressions.len()
        ));
    }
    Ok(())
}

/// Checks that `path` is a `compare` binary that speaks this runner's [`ONE_SHOT_PROTOCOL`],
/// and returns it made absolute.
fn probe_baseline(path: &Path) -> Result<PathBuf, String> {
    let path = std::path::absolute(path).map_err(|e| e.to_string())?;
    let build = "The base must be a commit that has `compare --baseline`; build its compare \
        with\n  \
        git worktree add /tmp/base <rev>\n  \
        cargo build --release -p benches --bin compare --manifest-path /tmp/base/Cargo.toml\n\
        and pass --baseline /tmp/base/target/release/compare";
    if !path.is_file() {
        return Err(format!(
            "--baseline {}: no such file.\n{build}",
            path.display()
        ));
    }
    let mut probe = Command::new(&path);
    probe
        .args(["one-shot", "probe"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut probe = Proc::start(probe)?;
    let timeout = Duration::from_secs(20);
    // Its first line on stdout, or what went wrong instead.
    let answer = match probe.lines.recv_timeout(timeout) {
        Ok(line) => Ok(line),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!("gave no answer in {timeout:?}")),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(probe
            .last_words()
            .first()
            .map_or("exited without a word".into(), |l| format!("said {l:?}"))),
    };
    let version = answer
        .as_deref()
        .ok()
        .and_then(|line| line.strip_prefix(ONE_SHOT_PROBE)?.parse::<u32>().ok());
    match version {
        Some(ONE_SHOT_PROTOCOL) => Ok(path),
        Some(theirs) => Err(format!(
            "--baseline {} speaks one-shot protocol {theirs}, this runner speaks \
             {ONE_SHOT_PROTOCOL}: build both from commits with the same protocol",
            path.display()
        )),
        _ => Err(format!(
            "--baseline {} does not speak compare's one-shot protocol: `one-shot probe` {}.\n\
             It was probably built from a commit older than `compare --baseline`. {build}",
            path.display(),
            answer.map_or_else(|why| why, |line| format!("printed {line:?}"))
        )),
    }
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

    /// `exe one-shot run` for `system`: one whole measurement by that `compare` binary.
    fn one_shot(exe: &Path, system: System) -> Self {
        Program {
            prefix: vec!["one-shot".into()],
            ..Program::rust(exe, system)
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

    fn with_settings(mut self, s: Settings, write_size: usize) -> Self {
        self.settings = [
            ("--version", s.version as usize),
            ("--frame", s.frame),
            ("--window", s.window),
            ("--receive-buffer", s.receive_buffer),
            ("--write-size", write_size),
        ]
        .iter()
        .flat_map(|(k, v)| [k.to_string(), v.to_string()])
        .collect();
        self
    }

    fn command(&self, role: &str, extra: &[String]) -> Command {
        // A setting the job gives itself (an 8 KiB write size) replaces the program's.
        let settings = self
            .settings
            .chunks(2)
            .filter(|kv| !extra.contains(&kv[0]))
            .flatten();
        let mut c = Command::new(&self.path);
        c.args(&self.prefix)
            .arg(role)
            .args(["--system", &self.system])
            .args(settings)
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
                let said = self.last_words().join(" ");
                Err(if said.is_empty() {
                    "peer exited".into()
                } else {
                    said
                })
            }
        }
    }

    /// Once stdout has closed: waits for the peer and returns the non-empty lines of its
    /// stderr.
    fn last_words(&mut self) -> Vec<String> {
        let _ = self.child.wait();
        // Until its stderr closes too (at once, as it has exited).
        let mut said = Vec::new();
        while let Ok(line) = self.errors.recv_timeout(Duration::from_secs(1)) {
            if !line.trim().is_empty() {
                said.push(line);
            }
        }
        said
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
    let mut extra = vec!["--connect".to_string(), addr.to_string()];
    extra.extend(load_args(workload, args));
    Proc::start(program.command("client", &extra))
}

/// `--workload W` and `args` as command-line arguments.
fn load_args(workload: &str, args: &[(&str, String)]) -> Vec<String> {
    let mut out = vec!["--workload".to_string(), workload.to_string()];
    for (k, v) in args {
        out.push(format!("--{k}"));
        out.push(v.clone());
    }
    out
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

/// Runs one whole measurement with `program`'s `one-shot run` and returns its answer.
fn one_shot(program: &Program, workload: &str, args: &[(&str, String)]) -> Result<Value, String> {
    let mut proc = Proc::start(program.command("run", &load_args(workload, args)))?;
    proc.json(TIMEOUT + Duration::from_secs(30))
}

/// How the runner measures one side of a row.
#[derive(Debug, Clone)]
enum Side {
    /// Clients of the program against one long-lived server of it (memory: a fresh one).
    Served(Program),
    /// The program's `one-shot run` (see [`ONE_SHOT_PROTOCOL`]): a fresh server and client
    /// for every run. Both sides of an A/B row are measured this way, so that they differ
    /// only in the binary.
    OneShot(Program),
}

impl Side {
    fn with_settings(self, s: Settings) -> Self {
        match self {
            Side::Served(p) => Side::Served(p.with_settings(s, WRITE_SIZE)),
            Side::OneShot(p) => Side::OneShot(p.with_settings(s, WRITE_SIZE)),
        }
    }

    /// A long-lived server, for a served side.
    fn start_server(&self) -> Option<Result<(Proc, String), String>> {
        match self {
            Side::Served(p) => Some(start_server(p)),
            Side::OneShot(_) => None,
        }
    }

    /// One run of `job`; `addr` is the address of a served side's server.
    fn run(&self, addr: Option<&str>, job: &Job) -> Result<Value, String> {
        match (self, addr) {
            (Side::Served(p), Some(addr)) => client(p, addr, job.workload, &job.args),
            (Side::Served(_), None) => Err("no server".into()),
            (Side::OneShot(p), _) => one_shot(p, job.workload, &job.args),
        }
    }

    /// Memory per idle stream on each side, against a fresh server.
    fn idle(&self) -> Result<(f64, f64), String> {
        match self {
            Side::Served(p) => idle(p, IDLE_STREAMS),
            Side::OneShot(p) => {
                let v = one_shot(p, "idle", &[("streams", IDLE_STREAMS.to_string())])?;
                Ok((num(&v, "client_bytes")?, num(&v, "server_bytes")?))
            }
        }
    }
}

/// What the runner measures for one row: the row's own system, and with `--baseline` (for
/// a smux-rs row) the same system in the baseline binary.
#[derive(Debug, Clone, Default)]
struct Plan {
    /// This binary's side; `None` when the system cannot run (no Go).
    new: Option<Side>,
    /// The baseline's side, for an A/B row.
    base: Option<Side>,
}

impl Plan {
    fn served(program: Program) -> Self {
        Plan {
            new: Some(Side::Served(program)),
            base: None,
        }
    }

    fn with_settings(self, s: Settings) -> Self {
        Plan {
            new: self.new.map(|side| side.with_settings(s)),
            base: self.base.map(|side| side.with_settings(s)),
        }
    }
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
    // What `tokio::io::copy` issues (Go: io.CopyBuffer with an 8 KiB buffer).
    for (key, streams) in [("bulk8k1", 1usize), ("bulk8k16", 16)] {
        jobs.push(Job {
            label: format!(
                "bulk in 8 KiB writes, {streams} stream{}",
                if streams == 1 { "" } else { "s" }
            ),
            workload: "bulk",
            args: vec![
                ("streams", streams.to_string()),
                ("bytes", (sizes.bulk_total / 4 / streams as u64).to_string()),
                ("write-size", "8192".into()),
            ],
            figures: vec![(key, "mbps")],
        });
    }
    jobs.push(Job {
        label: "one stream echoing".into(),
        workload: "echo",
        args: vec![("bytes", (sizes.bulk_total / 2).to_string())],
        figures: vec![("echo1", "mbps")],
    });
    for (label, workload, count, p50, p99) in [
        (
            "64-byte round trips",
            "rtt",
            sizes.rtt,
            "rtt_p50",
            "rtt_p99",
        ),
        (
            "64-byte round trips from a spawned task",
            "rtt-task",
            sizes.rtt,
            "rtt_task_p50",
            "rtt_task_p99",
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
            figures: if workload == "rtt-bulk" {
                // How fast the bulk stream moved sets how long the queue ahead of a round
                // trip is (in version 1 nothing but the session budget bounds it).
                vec![(p50, "p50_us"), (p99, "p99_us"), ("hol_bulk", "bulk_mbps")]
            } else {
                vec![(p50, "p50_us"), (p99, "p99_us")]
            },
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
/// runs every system once and, with `--baseline`, every smux-rs system's baseline next to
/// it, which of the two first alternating from round to round), so that a drift of the
/// machine over the run hits all systems and both sides of an A/B alike; each figure is the
/// median run. Then memory per idle stream, against fresh servers.
fn measure_all(plans: &[Plan], sizes: &Sizes, rows: &mut [Row]) {
    let mut servers: Vec<Option<(Proc, String)>> = Vec::new();
    let mut runnable = Vec::new();
    for (plan, row) in plans.iter().zip(rows.iter_mut()) {
        let server = plan.new.as_ref().and_then(Side::start_server);
        runnable.push(plan.new.is_some() && !matches!(server, Some(Err(_))));
        servers.push(match server {
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                row.fill_missing(&format!("failed: {e}"));
                None
            }
            None => None,
        });
    }
    for job in jobs(sizes) {
        eprintln!(
            "{} ({} round{})",
            job.label,
            sizes.runs,
            if sizes.runs == 1 { "" } else { "s" }
        );
        // For every row, its own runs and its baseline's, and the rounds where both ran.
        let mut runs: Vec<[Vec<Value>; 2]> = vec![Default::default(); rows.len()];
        let mut failed: Vec<[Option<String>; 2]> = vec![Default::default(); rows.len()];
        let mut pairs: Vec<Vec<(Value, Value)>> = vec![Vec::new(); rows.len()];
        for round in 0..sizes.runs {
            for (i, plan) in plans.iter().enumerate() {
                if !runnable[i] {
                    continue;
                }
                let addr = servers[i].as_ref().map(|(_, addr)| addr.as_str());
                let mut sides = [(0, &plan.new), (1, &plan.base)];
                if round % 2 == 1 {
                    sides.reverse();
                }
                let mut this_round: [Option<Value>; 2] = Default::default();
                for (which, side) in sides {
                    let Some(side) = side else { continue };
                    if failed[i][which].is_some() {
                        continue;
                    }
                    match side.run(addr, &job) {
                        Ok(v) => {
                            this_round[which] = Some(v.clone());
                            runs[i][which].push(v);
                        }
                        Err(e) => failed[i][which] = Some(e),
                    }
                }
                if let [Some(own), Some(base)] = this_round {
                    pairs[i].push((own, base));
                }
            }
        }
        for (i, row) in rows.iter_mut().enumerate() {
            let [own, base_runs] = std::mem::take(&mut runs[i]);
            let [own_failed, base_failed] = std::mem::take(&mut failed[i]);
            let shown = record(&job, own, own_failed, &mut row.values, &mut row.notes);
            let base = row.base.as_mut().map(|b| {
                record_paired(&job, &pairs[i], &mut b.paired);
                record(&job, base_runs, base_failed, &mut b.values, &mut b.notes)
            });
            let Some(shown) = shown else { continue };
            let base = match (base, &row.base) {
                (Some(Some(b)), _) => format!("   base {}", b.join(" / ")),
                (Some(None), Some(b)) => {
                    let why = b.notes.get(job.figures[0].0);
                    format!("   base {}", why.map_or("not run", String::as_str))
                }
                _ => String::new(),
            };
            eprintln!("  {:<22} {}{base}", row.name, shown.join(" / "));
        }
    }
    drop(servers);
    eprintln!("memory per idle stream ({IDLE_STREAMS} streams, fresh servers)");
    for (plan, row) in plans.iter().zip(rows.iter_mut()) {
        let Some(new) = &plan.new else { continue };
        if row.kind == Kind::Raw {
            let why = "n/a: 10 000 idle sockets measure the kernel";
            row.notes.insert("idle_client", why.into());
            row.notes.insert("idle_server", why.into());
            continue;
        }
        let mut line = record_idle(new.idle(), &mut row.values, &mut row.notes);
        if let (Some(side), Some(b)) = (&plan.base, row.base.as_mut()) {
            let base = record_idle(side.idle(), &mut b.values, &mut b.notes);
            line = format!("{line}   base {base}");
        }
        eprintln!("  {:<22} {line}", row.name);
    }
}

/// Keeps, for each of the job's figures, the [`Paired`] statistics of the rounds in `pairs`
/// (this binary's run and the baseline's, measured back to back).
fn record_paired(job: &Job, pairs: &[(Value, Value)], paired: &mut BTreeMap<&'static str, Paired>) {
    for (key, field) in &job.figures {
        let values = pairs
            .iter()
            .filter_map(|(own, base)| Some((num(own, field).ok()?, num(base, field).ok()?)));
        if let Some(p) = Paired::of(values) {
            paired.insert(key, p);
        }
    }
    if job.figures[0].0 == "bulk1" {
        let per_frame: Vec<_> = pairs
            .iter()
            .filter_map(|(own, base)| Some((allocs_per_frame(own)?, allocs_per_frame(base)?)))
            .collect();
        let sender = per_frame.iter().map(|(own, base)| (own.0, base.0));
        let receiver = per_frame.iter().map(|(own, base)| (own.1, base.1));
        for (key, p) in [
            ("allocs_send", Paired::of(sender)),
            ("allocs_recv", Paired::of(receiver)),
        ] {
            if let Some(p) = p {
                paired.insert(key, p);
            }
        }
    }
}

/// A bulk run's allocations per frame, sender and receiver.
fn allocs_per_frame(run: &Value) -> Option<(f64, f64)> {
    let frames = num(run, "bytes").ok()? / FRAME as f64;
    let client = num(run, "client_allocs").ok()?;
    let server = num(run, "server_allocs").ok()?;
    Some((client / frames, server / frames))
}

/// Keeps the median of `runs` (ranked by the job's first figure) as the job's figures in
/// `values`, or `failure` as their note in `notes`. Returns the figures kept, for the
/// progress line, or `None` if there were none.
fn record(
    job: &Job,
    mut runs: Vec<Value>,
    failure: Option<String>,
    values: &mut BTreeMap<&'static str, f64>,
    notes: &mut BTreeMap<&'static str, String>,
) -> Option<Vec<String>> {
    if let Some(e) = failure {
        for (key, _) in &job.figures {
            notes.insert(key, format!("failed: {e}"));
        }
        return None;
    }
    if runs.is_empty() {
        return None;
    }
    let (rank_key, rank_field) = job.figures[0];
    runs.sort_by(|a, b| {
        num(a, rank_field)
            .unwrap_or(0.0)
            .total_cmp(&num(b, rank_field).unwrap_or(0.0))
    });
    let median = &runs[runs.len() / 2];
    let mut shown = Vec::new();
    for (key, field) in &job.figures {
        if let Ok(v) = num(median, field) {
            values.insert(key, v);
            shown.push(format!("{v:.1}"));
        }
    }
    if rank_key == "bulk1" {
        if let Some((send, recv)) = allocs_per_frame(median) {
            values.insert("allocs_send", send);
            values.insert("allocs_recv", recv);
        }
    }
    Some(shown)
}

/// Keeps memory per idle stream on each side in `values`, or why not in `notes`, and returns
/// it as text for the progress line.
fn record_idle(
    measured: Result<(f64, f64), String>,
    values: &mut BTreeMap<&'static str, f64>,
    notes: &mut BTreeMap<&'static str, String>,
) -> String {
    match measured {
        Ok((c, s)) => {
            values.insert("idle_client", c);
            values.insert("idle_server", s);
            format!("client {c:.0} B, server {s:.0} B")
        }
        Err(e) => {
            notes.insert("idle_client", format!("failed: {e}"));
            notes.insert("idle_server", format!("failed: {e}"));
            format!("failed: {e}")
        }
    }
}

/// Memory per idle stream on each side, against a fresh server: RSS growth while `streams`
/// streams are opened and held, divided by their number.
fn idle(program: &Program, streams: usize) -> Result<(f64, f64), String> {
    let (server, addr) = start_server(program)?;
    let args = [("streams", streams.to_string())];
    let mut client = start_client(program, &addr, "idle", &args)?;
    expect_phase(&client.json(TIMEOUT)?, "baseline")?;
    let (c0, s0) = (client.rss()?, server.rss()?);
    client.tell()?;
    expect_phase(&client.json(TIMEOUT)?, "ready")?;
    let (c1, s1) = (client.rss()?, server.rss()?);
    client.tell()?;
    let n = streams as f64;
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
        assert_eq!(METRICS.len(), 18);
    }

    /// What the runner sends a baseline's `one-shot run` is what `one-shot run` takes, for
    /// every job and every smux-rs system, and the probe answers with the protocol.
    #[test]
    fn one_shot_commands_parse() {
        let exe = Path::new("compare");
        for quick in [true, false] {
            for job in jobs(&Sizes::new(quick)) {
                for system in [System::SmuxTokio, System::SmuxSmol, System::SmuxAsyncStd] {
                    let program = Program::one_shot(exe, system).with_settings(settings(2), 4096);
                    let cmd = program.command("run", &load_args(job.workload, &job.args));
                    let args = std::iter::once(cmd.get_program()).chain(cmd.get_args());
                    let cli = Cli::try_parse_from(args).unwrap();
                    let Some(PeerCommand::OneShot(OneShot::Run { load, common })) = cli.peer else {
                        panic!("not a one-shot run: {cli:?}");
                    };
                    assert_eq!(load.workload.arg(), job.workload);
                    assert_eq!((common.system, common.version), (system, 2));
                    // A job's own write size replaces the run's.
                    let write_size = job.args.iter().find(|(k, _)| *k == "write-size");
                    let want = write_size.map_or(4096, |(_, v)| v.parse().unwrap());
                    assert_eq!(common.write_size, want);
                    for (k, v) in job.args.iter().filter(|(k, _)| *k != "write-size") {
                        assert!(load.args().contains(&(k, v.clone())), "{k} {v}: {load:?}");
                    }
                }
            }
        }
        let probe = Cli::try_parse_from(["compare", "one-shot", "probe"]).unwrap();
        assert!(matches!(
            probe.peer,
            Some(PeerCommand::OneShot(OneShot::Probe))
        ));
    }
}
