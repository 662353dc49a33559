//! `wan`: the multiplexers over a long, thin path (issue 19). `compare` answers "how fast
//! on loopback"; this answers "how much of a 20 MB/s link at a 1 to 200 ms round trip",
//! where a window, not the CPU, is the limit.
//!
//! ```text
//! cargo run --release -p benches --bin wan             # the full run, about 8 minutes
//! cargo run --release -p benches --bin wan -- --quick  # one round trip, 2 s a run: under a minute
//! ```
//!
//! Every run is a sender and a sink of one system, in processes of their own, joined
//! through toxiproxy: `bandwidth` 20 000 KB/s each way, then `latency` toxics whose two
//! directions add up to the round trip (the odd millisecond goes toward the sink). The
//! sender writes 128 KiB at a time on each stream for a fixed time (3 to 10 s, longer at
//! longer round trips so that a growing window has time to grow), then closes the streams;
//! the sink reads them to their end and reports what each delivered to the application
//! every 20 ms, and its RSS. See `benches::wan` for the figures.
//!
//! Before measuring, the harness is checked, as `interop-tests/tests/windows.rs` does: Go to
//! Go at a 100 ms round trip must move 0.5 to 0.8 MB/s at Go's default 64 KiB window and at
//! least 18 MB/s with a 4 MiB one, or the path is not what it claims and the run stops.
//!
//! Output: the tables on stdout, and `wan.json`, `wan.svg` and `wan.md` in `--out`
//! (`target/compare` by default, beside `compare`'s). A run that fails keeps its row with
//! the reason, and the exit status is then 1; `--strict` makes a missed target an error
//! too. Needs Go (the Go peers, built by `interop-tests/go/build.sh`, which this runs if
//! the Go bench peer is missing or older than its sources) and toxiproxy (built by
//! `interop-tests/toxiproxy/build.sh` if missing).

use benches::wan::{chart, table, Figures, Run, SinkReport, System, LINK_KB, LINK_MBPS};
use clap::{Parser, Subcommand};
use futures_util::AsyncReadExt;
use interop_tests::toxiproxy::{Direction, Kind, Toxic, Toxiproxy};
use serde_json::{json, Value};
use std::io::{self, BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

#[derive(Debug, Parser)]
#[command(about = "Throughput against round trip over a 20 MB/s path (toxiproxy)")]
struct Cli {
    #[command(subcommand)]
    role: Option<Role>,
    /// One round trip (50 ms), 2 s a run: proves that every system runs (CI).
    #[arg(long)]
    quick: bool,
    /// Where `wan.json`, `wan.svg` and `wan.md` go.
    #[arg(long, default_value = "target/compare")]
    out: PathBuf,
    /// The Go bench peer (built by `interop-tests/go/build.sh` if missing or stale and Go
    /// is installed).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../interop-tests/go/bin/go-bench"))]
    go_bench: PathBuf,
    /// Round trips, ms (default 1,10,50,100,200; with --quick 50).
    #[arg(long, value_delimiter = ',')]
    rtt: Vec<u64>,
    /// Systems to measure (default: all).
    #[arg(long, value_delimiter = ',', value_enum)]
    systems: Vec<System>,
    /// Streams in the many-stream runs.
    #[arg(long, default_value_t = 8)]
    streams: usize,
    /// Exit with status 1 when a target is missed.
    #[arg(long)]
    strict: bool,
    /// Seconds each sender writes, at every round trip (default: 3 to 10 s by round trip;
    /// with --quick 2 s).
    #[arg(long)]
    seconds: Option<f64>,
    /// For experiments: the smux-rs systems' `max_receive_buffer` (the session budget that
    /// bounds a v2 stream's tuned window), bytes, instead of the default 4 MiB.
    #[arg(long)]
    receive_buffer: Option<usize>,
    /// Also keep every sink's own report (its 20 ms samples) in `--out`/raw/.
    #[arg(long)]
    raw: bool,
}

#[derive(Debug, Subcommand)]
enum Role {
    /// One sink of a Rust system (the runner starts it).
    #[command(hide = true)]
    Sink {
        #[arg(long, value_enum)]
        system: System,
        #[arg(long)]
        listen: String,
        #[arg(long)]
        streams: usize,
        #[arg(long)]
        receive_buffer: Option<usize>,
    },
    /// One sender of a Rust system (the runner starts it).
    #[command(hide = true)]
    Send {
        #[arg(long, value_enum)]
        system: System,
        #[arg(long)]
        connect: SocketAddr,
        #[arg(long)]
        streams: usize,
        #[arg(long)]
        seconds: f64,
        #[arg(long)]
        receive_buffer: Option<usize>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.role {
        Some(Role::Sink {
            system,
            ref listen,
            streams,
            receive_buffer,
        }) => sink(system, listen, streams, receive_buffer),
        Some(Role::Send {
            system,
            connect,
            streams,
            seconds,
            receive_buffer,
        }) => send(system, connect, streams, seconds, receive_buffer),
        None => return runner(&cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wan: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------
// The runner.

/// How long the sender writes at `rtt_ms`: the steady figure is over the second half, and
/// a tuned window needs about 15 round trips to grow from 64 KiB to a 200 ms path's 4 MB.
fn seconds_for(rtt_ms: u64, quick: bool) -> f64 {
    match (quick, rtt_ms) {
        (true, _) => 2.0,
        (false, ..=10) => 3.0,
        (false, ..=50) => 4.0,
        (false, ..=100) => 6.0,
        (false, _) => 10.0,
    }
}

/// The harness check's path and figures.
const CHECK_RTT_MS: u64 = 100;
const CHECK_SECONDS: f64 = 3.0;
const CHECK_DEFAULT_RANGE: (f64, f64) = (0.5, 0.8);
const CHECK_4MIB_FLOOR: f64 = 18.0;

/// smux-rs v2's memory bound over the sink's idle RSS, as `windows.rs` states it: twice
/// `max_receive_buffer` + 65535 (`proto`'s bound on inbound data, plus as much again for
/// packing slack and bookkeeping), plus 4 MiB for the runtime, the allocator and the
/// sink's buffers.
fn memory_bound(receive_buffer: Option<usize>) -> u64 {
    let c = smux_core::Config::default();
    let budget = receive_buffer.unwrap_or(c.max_receive_buffer()) as u64;
    2 * (budget + 65_535) + (4 << 20)
}

fn runner(cli: &Cli) -> ExitCode {
    let started = Instant::now();
    let rtts = if !cli.rtt.is_empty() {
        cli.rtt.clone()
    } else if cli.quick {
        vec![50]
    } else {
        vec![1, 10, 50, 100, 200]
    };
    let systems = if cli.systems.is_empty() {
        System::ALL.to_vec()
    } else {
        cli.systems.clone()
    };
    let many = cli.streams;
    let go = match go_bench(&cli.go_bench) {
        Ok(go) => go,
        Err(e) => {
            eprintln!("wan: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(tp) = Toxiproxy::start() else {
        eprintln!("wan: needs toxiproxy: run `bash interop-tests/toxiproxy/build.sh` (needs Go)");
        return ExitCode::FAILURE;
    };
    let me = match std::env::current_exe() {
        Ok(me) => me,
        Err(e) => {
            eprintln!("wan: cannot find its own binary: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut proxies = 0usize;

    println!(
        "wan: {LINK_MBPS} MB/s each way (toxiproxy bandwidth {LINK_KB} KB/s), round trips {rtts:?} ms, \
         1 and {many} streams, {} mode",
        if cli.quick { "quick" } else { "full" }
    );
    for s in &systems {
        println!("  {:<28} {}", s.name(), s.config());
    }
    if let Some(bytes) = cli.receive_buffer {
        println!("  (smux-rs systems with max_receive_buffer {bytes}, not the default)");
    }
    // The harness check: Go to Go, where the answer is known.
    let mut controls = Vec::new();
    let mut check_failed = Vec::new();
    for (label, window, want) in [
        (
            "Go smux v2, 64 KiB window (defaults)",
            "65536",
            CHECK_DEFAULT_RANGE,
        ),
        (
            "Go smux v2, 4 MiB window",
            "4194304",
            (CHECK_4MIB_FLOOR, f64::INFINITY),
        ),
    ] {
        let args = [
            "--system",
            "go-smux",
            "--version",
            "2",
            "--receive-buffer",
            "4194304",
            "--window",
            window,
        ];
        let ends = Ends::go(&go, &args);
        proxies += 1;
        let outcome = measure(&tp, proxies, &ends, CHECK_RTT_MS, 1, CHECK_SECONDS);
        let (ok, figure) = match &outcome {
            Ok((report, _)) => {
                let f = report.figures(CHECK_SECONDS);
                (
                    (want.0..=want.1).contains(&f.steady_mbps),
                    format!(
                        "{:.2} MB/s steady ({:.2} whole run)",
                        f.steady_mbps, f.whole_mbps
                    ),
                )
            }
            Err(e) => (false, format!("failed: {e}")),
        };
        let want_text = if want.1.is_finite() {
            format!("{} to {} MB/s", want.0, want.1)
        } else {
            format!("at least {} MB/s", want.0)
        };
        println!(
            "harness check, {label} at {CHECK_RTT_MS} ms: {figure}, want {want_text}: {}",
            if ok { "ok" } else { "FAILED" }
        );
        if !ok {
            check_failed.push(format!("{label}: {figure}, want {want_text}"));
        }
        controls.push(json!({
            "label": label, "rtt_ms": CHECK_RTT_MS, "seconds": CHECK_SECONDS,
            "result": figure, "want": want_text, "ok": ok,
        }));
    }
    if !check_failed.is_empty() {
        eprintln!(
            "\nwan: HARNESS CHECK FAILED: the path is not {LINK_MBPS} MB/s at a {CHECK_RTT_MS} ms \
             round trip, so nothing measured over it would mean anything:\n  {}\n\
             (a loaded machine, a toxiproxy other than interop-tests/toxiproxy's, or a Go peer \
             out of date: rebuild with interop-tests/go/build.sh)",
            check_failed.join("\n  ")
        );
        return ExitCode::from(2);
    }

    let total = rtts.len() * 2 * systems.len();
    let mut runs = Vec::new();
    for &rtt in &rtts {
        let seconds = cli.seconds.unwrap_or_else(|| seconds_for(rtt, cli.quick));
        for streams in [1, many] {
            for &system in &systems {
                let ends = if system.is_go() {
                    Ends::go(&go, system.go_args())
                } else {
                    Ends::rust(&me, system, cli.receive_buffer)
                };
                proxies += 1;
                let t = Instant::now();
                let outcome = measure(&tp, proxies, &ends, rtt, streams, seconds);
                if let (true, Ok((report, _))) = (cli.raw, &outcome) {
                    let dir = cli.out.join("raw");
                    let name = format!("{}-{rtt}ms-{streams}.json", system.cli_name());
                    let saved = std::fs::create_dir_all(&dir).and_then(|()| {
                        std::fs::write(dir.join(name), report.to_json().to_string())
                    });
                    if let Err(e) = saved {
                        eprintln!("wan: keeping the raw report: {e}");
                    }
                }
                let run = match outcome {
                    Ok((report, rss_idle)) => Run {
                        system,
                        rtt_ms: rtt,
                        streams,
                        seconds,
                        figures: Ok(report.figures(seconds)),
                        rss_idle,
                        rss_end: report.rss,
                        rss_peak: report.hwm,
                    },
                    Err(e) => Run {
                        system,
                        rtt_ms: rtt,
                        streams,
                        seconds,
                        figures: Err(e),
                        rss_idle: 0,
                        rss_end: 0,
                        rss_peak: 0,
                    },
                };
                println!(
                    "[{}/{total}] {}, {rtt} ms, {streams} stream{}: {} ({:.1} s)",
                    runs.len() + 1,
                    system.name(),
                    if streams == 1 { "" } else { "s" },
                    describe(&run),
                    t.elapsed().as_secs_f64()
                );
                runs.push(run);
            }
        }
    }

    let tables = table(&runs, &rtts, many);
    let bound = memory_bound(cli.receive_buffer);
    let verdicts = targets(&runs, &rtts, many, bound);
    println!("\n{tables}");
    println!(
        "Targets (smux-rs v2, tuned; steady figures){}:",
        if cli.quick {
            ", quick mode: one round trip, 2 s runs, not a verdict"
        } else {
            ""
        }
    );
    for (ok, text) in &verdicts {
        println!("  {} {text}", if *ok { "met   " } else { "MISSED" });
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "wan: {} runs in {elapsed:.0} s",
        runs.len() + controls.len()
    );

    let failed: Vec<&Run> = runs.iter().filter(|r| r.figures.is_err()).collect();
    let doc = json!({
        "benchmark": "wan",
        "mode": if cli.quick { "quick" } else { "full" },
        "commit": commit(),
        "link": {
            "mbps": LINK_MBPS,
            "toxics": format!(
                "toxiproxy bandwidth {LINK_KB} KB/s each way, then latency: ceil(RTT/2) ms toward the sink, floor(RTT/2) ms back"
            ),
        },
        "method": {
            "steady_mbps": "bytes delivered to the sink's application over the second half of the sending time (from the first byte), all streams together, per second",
            "whole_mbps": "every byte delivered, from the first byte to the last stream's end",
            "min_share": "the smallest stream's steady rate over an equal split of the total",
            "ramp_s": "seconds from the first byte until the start of the first 0.5 s in which the streams together moved 80% of the link",
            "rss": "the sink's VmRSS before the connection (idle), VmRSS once every stream ended (end), VmHWM (peak)",
            "write_size": 131072,
            "sample_ms": benches::wan::SAMPLE_EVERY_MS,
        },
        "rtts_ms": rtts,
        "streams": [1, many],
        "seconds_per_rtt": rtts.iter().map(|&r| json!({"rtt_ms": r, "seconds": cli.seconds.unwrap_or_else(|| seconds_for(r, cli.quick))})).collect::<Vec<_>>(),
        "systems": systems.iter().map(|s| json!({"name": s.name(), "cli_name": s.cli_name(), "config": s.config()})).collect::<Vec<_>>(),
        "harness_check": controls,
        "runs": runs.iter().map(Run::to_json).collect::<Vec<_>>(),
        "memory_bound_bytes": bound,
        "smux_receive_buffer": cli.receive_buffer.unwrap_or(smux_core::Config::default().max_receive_buffer()),
        "targets": verdicts.iter().map(|(ok, text)| json!({"met": ok, "text": text})).collect::<Vec<_>>(),
        "elapsed_s": (elapsed * 10.0).round() / 10.0,
    });
    if let Err(e) = write_outputs(&cli.out, &doc, &chart(&runs, &rtts, many), &tables) {
        eprintln!("wan: writing {}: {e}", cli.out.display());
        return ExitCode::FAILURE;
    }
    println!(
        "wrote {0}/wan.json, {0}/wan.svg and {0}/wan.md",
        cli.out.display()
    );
    if !failed.is_empty() {
        eprintln!("wan: {} run(s) failed", failed.len());
        return ExitCode::FAILURE;
    }
    if cli.strict && verdicts.iter().any(|(ok, _)| !ok) {
        eprintln!("wan: a target was missed (--strict)");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn describe(run: &Run) -> String {
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    match &run.figures {
        Ok(Figures {
            steady_mbps,
            whole_mbps,
            min_share,
            ramp_s,
            max_window,
            ..
        }) => format!(
            "{steady_mbps:.2} MB/s steady ({whole_mbps:.2} whole run){}, 80% of the link {}{}, sink RSS {:.1} -> {:.1} (peak {:.1}) MiB",
            if run.streams > 1 {
                format!(", smallest stream {min_share:.2} of its share")
            } else {
                String::new()
            },
            ramp_s.map_or("never".into(), |s| format!("from {s:.1} s on")),
            max_window.map_or(String::new(), |w| format!(
                ", largest window {} KiB",
                w / 1024
            )),
            mib(run.rss_idle),
            mib(run.rss_end),
            mib(run.rss_peak)
        ),
        Err(e) => format!("FAILED: {e}"),
    }
}

/// The issue's targets, over smux-rs v2 (tuned) at defaults.
fn targets(runs: &[Run], rtts: &[u64], many: usize, bound: u64) -> Vec<(bool, String)> {
    let ours = |rtt: u64, n: usize| {
        runs.iter()
            .find(|r| r.system == System::SmuxV2 && r.rtt_ms == rtt && r.streams == n)
    };
    let floor = 0.8 * LINK_MBPS;
    let mut out = Vec::new();
    for n in [1, many] {
        let mut misses = Vec::new();
        let mut lowest: Option<(f64, u64)> = None;
        let mut share_misses = Vec::new();
        let mut lowest_share: Option<(f64, u64)> = None;
        for &rtt in rtts {
            match ours(rtt, n).map(|r| &r.figures) {
                Some(Ok(f)) => {
                    if lowest.is_none_or(|(v, _)| f.steady_mbps < v) {
                        lowest = Some((f.steady_mbps, rtt));
                    }
                    if f.steady_mbps < floor {
                        misses.push(format!("{:.1} at {rtt} ms", f.steady_mbps));
                    }
                    if n > 1 {
                        if lowest_share.is_none_or(|(v, _)| f.min_share < v) {
                            lowest_share = Some((f.min_share, rtt));
                        }
                        if f.min_share < 0.5 {
                            share_misses.push(format!("{:.2} at {rtt} ms", f.min_share));
                        }
                    }
                }
                Some(Err(e)) => misses.push(format!("failed at {rtt} ms: {e}")),
                None => misses.push(format!("not run at {rtt} ms")),
            }
        }
        let what = if n == 1 {
            "1 stream".to_string()
        } else {
            format!("{n} streams together")
        };
        let lowest = lowest.map_or(String::new(), |(v, r)| format!("lowest {v:.1} at {r} ms"));
        out.push(if misses.is_empty() {
            (
                true,
                format!("{what} >= {floor:.0} MB/s (0.8x the link) at every round trip ({lowest})"),
            )
        } else {
            (
                false,
                format!(
                    "{what} >= {floor:.0} MB/s at every round trip: {}",
                    misses.join(", ")
                ),
            )
        });
        if n > 1 {
            let lowest =
                lowest_share.map_or(String::new(), |(v, r)| format!("lowest {v:.2} at {r} ms"));
            out.push((
                share_misses.is_empty(),
                if share_misses.is_empty() {
                    format!("no stream under half its share at {n} streams ({lowest})")
                } else {
                    format!(
                        "no stream under half its share at {n} streams: {}",
                        share_misses.join(", ")
                    )
                },
            ));
        }
    }
    // Nobody more than 5% ahead.
    let mut ahead = Vec::new();
    let mut closest: Option<(f64, String)> = None;
    for r in runs.iter().filter(|r| r.system != System::SmuxV2) {
        let (Some(theirs), Some(mine)) =
            (r.steady(), ours(r.rtt_ms, r.streams).and_then(Run::steady))
        else {
            continue;
        };
        let ratio = theirs / mine.max(1e-9);
        let at = format!(
            "{} at {} ms, {} stream{}: {theirs:.1} vs {mine:.1} MB/s ({ratio:.2}x)",
            r.system.name(),
            r.rtt_ms,
            r.streams,
            if r.streams == 1 { "" } else { "s" }
        );
        if ratio > 1.05 {
            ahead.push(at.clone());
        }
        if closest.as_ref().is_none_or(|(c, _)| ratio > *c) {
            closest = Some((ratio, at));
        }
    }
    out.push(if ahead.is_empty() {
        (
            true,
            format!(
                "no other system more than 5% ahead at any round trip (closest: {})",
                closest.map_or("none measured".into(), |(_, at)| at)
            ),
        )
    } else {
        (
            false,
            format!("no other system more than 5% ahead: {}", ahead.join("; ")),
        )
    });
    // The memory bound.
    let mut over = Vec::new();
    let mut largest: Option<(u64, String)> = None;
    for r in runs
        .iter()
        .filter(|r| r.system == System::SmuxV2 && r.figures.is_ok())
    {
        let grew = r.rss_peak.saturating_sub(r.rss_idle);
        let at = format!(
            "+{:.1} MiB at {} ms, {} stream{}",
            grew as f64 / (1 << 20) as f64,
            r.rtt_ms,
            r.streams,
            if r.streams == 1 { "" } else { "s" }
        );
        if grew > bound {
            over.push(at.clone());
        }
        if largest.as_ref().is_none_or(|(g, _)| grew > *g) {
            largest = Some((grew, at));
        }
    }
    let bound_text = format!(
        "the sink's peak RSS within idle + {:.1} MiB (2 x (max_receive_buffer + 65535) + 4 MiB)",
        bound as f64 / (1 << 20) as f64
    );
    out.push(if over.is_empty() {
        (
            true,
            format!(
                "{bound_text} (largest {})",
                largest.map_or("none measured".into(), |(_, at)| at)
            ),
        )
    } else {
        (false, format!("{bound_text}: {}", over.join(", ")))
    });
    out
}

fn write_outputs(dir: &Path, doc: &Value, svg: &str, tables: &str) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(doc).map_err(io::Error::other)?;
    std::fs::write(dir.join("wan.json"), json + "\n")?;
    std::fs::write(dir.join("wan.svg"), svg)?;
    std::fs::write(dir.join("wan.md"), tables)
}

/// `git describe` of the tree measured, if git is there.
fn commit() -> Option<String> {
    let out = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The Go bench peer, rebuilt by `build.sh` if it is missing or older than its sources
/// (an older one has no `wan-sink`) and Go is installed.
fn go_bench(path: &Path) -> Result<PathBuf, String> {
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop-tests/go/benchpeer");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let newest_source = std::fs::read_dir(&sources)
        .into_iter()
        .flatten()
        .filter_map(|e| modified(&e.ok()?.path()))
        .max();
    let stale = match (modified(path), newest_source) {
        (None, _) => true,
        (Some(built), Some(source)) => source > built,
        (Some(_), None) => false,
    };
    if !stale {
        return Ok(path.to_path_buf());
    }
    let script = sources.join("../build.sh");
    let have_go = Command::new("go").arg("version").output().is_ok();
    if have_go {
        eprintln!("wan: building the Go peers ({})", script.display());
        let built = Command::new("bash")
            .arg(&script)
            .stdout(Stdio::null())
            .status();
        if !matches!(built, Ok(s) if s.success()) {
            return Err(format!("{} failed", script.display()));
        }
    }
    if path.exists() {
        Ok(path.to_path_buf())
    } else {
        Err(format!(
            "the Go bench peer {} is missing: install Go and run `bash {}`",
            path.display(),
            script.display()
        ))
    }
}

// ---------------------------------------------------------------------------------------
// One run.

/// The program and arguments of a system's two ends.
struct Ends {
    program: PathBuf,
    sink: Vec<String>,
    send: Vec<String>,
}

impl Ends {
    fn go(go: &Path, config: &[&str]) -> Self {
        let with = |role: &str| {
            std::iter::once(role)
                .chain(config.iter().copied())
                .map(String::from)
                .collect()
        };
        Self {
            program: go.to_path_buf(),
            sink: with("wan-sink"),
            send: with("wan-send"),
        }
    }

    fn rust(me: &Path, system: System, receive_buffer: Option<usize>) -> Self {
        let with = |role: &str| {
            let mut args: Vec<String> = [role, "--system", system.cli_name()]
                .into_iter()
                .map(String::from)
                .collect();
            if let Some(b) = receive_buffer {
                args.extend(["--receive-buffer".to_string(), b.to_string()]);
            }
            args
        };
        Self {
            program: me.to_path_buf(),
            sink: with("sink"),
            send: with("send"),
        }
    }
}

/// A child process, killed on drop.
struct Proc(Child);

impl Proc {
    fn spawn(program: &Path, args: &[String], stdin: Stdio) -> Result<Self, String> {
        Command::new(program)
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map(Proc)
            .map_err(|e| format!("start {}: {e}", program.display()))
    }

    /// Ends it and returns what it wrote on stderr.
    fn finish(mut self) -> String {
        drop(self.0.stdin.take());
        let _ = self.0.kill();
        let _ = self.0.wait();
        let mut err = String::new();
        if let Some(mut e) = self.0.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        err.trim().to_string()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines of a child's stdout, on a channel.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = BufReader::new(child.stdout.take().expect("piped"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A `/proc/PID/status` figure (`VmRSS`, `VmHWM`) in bytes, or 0.
fn proc_bytes(pid: &str, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// One run through a fresh proxy: the sink's report and its idle RSS.
fn measure(
    tp: &Toxiproxy,
    n: usize,
    ends: &Ends,
    rtt_ms: u64,
    streams: usize,
    seconds: f64,
) -> Result<(SinkReport, u64), String> {
    let n_streams = streams.to_string();
    let mut args = ends.sink.clone();
    args.extend(["--listen", "127.0.0.1:0", "--streams", &n_streams].map(String::from));
    let mut sink = Proc::spawn(&ends.program, &args, Stdio::null())?;
    let lines = lines_of(&mut sink.0);
    let Ok(first) = lines.recv_timeout(Duration::from_secs(10)) else {
        return Err(format!("the sink did not start: {}", sink.finish()));
    };
    let addr: SocketAddr = first
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("the sink said {first:?}"))?;
    let rss_idle = proc_bytes(&sink.0.id().to_string(), "VmRSS");

    let proxy = tp
        .proxy(&format!("wan{n}"), addr)
        .map_err(|e| format!("create the proxy: {e}"))?;
    let toward_sink = rtt_ms.div_ceil(2);
    let mut toxics = vec![
        Toxic::new(
            "rate-up",
            Kind::Bandwidth { rate_kb: LINK_KB },
            Direction::Upstream,
        ),
        Toxic::new(
            "rate-down",
            Kind::Bandwidth { rate_kb: LINK_KB },
            Direction::Downstream,
        ),
    ];
    // The rate first: toxiproxy then reads from the sender only as fast as the rate lets
    // it, so the queue builds in the sender's socket, as at a router, before the delay.
    for (name, ms, dir) in [
        ("delay-up", toward_sink, Direction::Upstream),
        ("delay-down", rtt_ms - toward_sink, Direction::Downstream),
    ] {
        if ms > 0 {
            toxics.push(Toxic::new(
                name,
                Kind::Latency {
                    latency_ms: ms,
                    jitter_ms: 0,
                },
                dir,
            ));
        }
    }
    for t in &toxics {
        proxy
            .add(t)
            .map_err(|e| format!("add toxic {}: {e}", t.name))?;
    }

    let mut args = ends.send.clone();
    args.extend(
        [
            "--connect",
            &proxy.listen.to_string(),
            "--streams",
            &n_streams,
            "--seconds",
            &seconds.to_string(),
        ]
        .map(String::from),
    );
    // Its stdin stays open: it keeps the session up until the report is in.
    let sender = Proc::spawn(&ends.program, &args, Stdio::piped())?;
    let limit = Duration::from_secs_f64(seconds) + Duration::from_secs(30);
    let line = lines.recv_timeout(limit);
    let sender_said = sender.finish();
    let sink_said = sink.finish();
    let _ = proxy.delete();
    let line = line.map_err(|e| {
        let what = match e {
            mpsc::RecvTimeoutError::Timeout => format!("no report within {limit:?}"),
            mpsc::RecvTimeoutError::Disconnected => "the sink ended without a report".into(),
        };
        format!("{what}; sender: {sender_said:?}; sink: {sink_said:?}")
    })?;
    let report = SinkReport::from_json(&line)?;
    if let Some(e) = &report.error {
        return Err(format!("the sink: {e}"));
    }
    let want = streams;
    if report.bytes.len() != want || report.bytes.contains(&0) {
        return Err(format!(
            "the sink read {:?} bytes on {want} streams",
            report.bytes
        ));
    }
    Ok((report, rss_idle))
}

// ---------------------------------------------------------------------------------------
// The Rust ends.

fn smux_config(system: System, receive_buffer: Option<usize>) -> io::Result<smux_core::Config> {
    let mut b = smux_core::Config::builder();
    if let Some(bytes) = receive_buffer {
        b = b.max_receive_buffer(bytes);
    }
    let b = match system {
        System::SmuxV2 => b.version(2),
        System::SmuxV2Fixed => b.version(2).window_tuning(false),
        System::SmuxV1 => b.version(1),
        other => {
            return Err(io::Error::other(format!(
                "{} is not a smux-rs system",
                other.name()
            )))
        }
    };
    b.build()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

fn nanos_since(base: Instant) -> u64 {
    base.elapsed().as_nanos() as u64
}

/// What the sink's readers count, shared with its sampler.
struct Counts {
    base: Instant,
    bytes: Vec<AtomicU64>,
    ends: Vec<AtomicU64>,
    /// The largest window each stream offered (smux-rs v2; else 0).
    windows: Vec<AtomicU64>,
    /// Nanoseconds + 1 of the first payload byte; 0 until then.
    first: AtomicU64,
}

impl Counts {
    fn sample(&self) -> Vec<u64> {
        std::iter::once(nanos_since(self.base))
            .chain(self.bytes.iter().map(|b| b.load(Ordering::Relaxed)))
            .collect()
    }
}

/// `wan sink`: accepts one session and `streams` streams, reads each to its end, prints a
/// [`SinkReport`].
fn sink(
    system: System,
    listen: &str,
    streams: usize,
    receive_buffer: Option<usize>,
) -> io::Result<()> {
    // The runtime first, so that the idle RSS the runner reads includes it.
    let rt = runtime()?;
    let listener = std::net::TcpListener::bind(listen)?;
    let counts = Arc::new(Counts {
        base: Instant::now(),
        bytes: (0..streams).map(|_| AtomicU64::new(0)).collect(),
        ends: (0..streams).map(|_| AtomicU64::new(0)).collect(),
        windows: (0..streams).map(|_| AtomicU64::new(0)).collect(),
        first: AtomicU64::new(0),
    });
    println!("listening on {}", listener.local_addr()?);
    let (conn, _) = listener.accept()?;
    drop(listener);
    conn.set_nodelay(true)?;
    conn.set_nonblocking(true)?;

    // A thread of its own samples the counts, whatever the runtime's workers are doing.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (counts, stop) = (counts.clone(), stop.clone());
        std::thread::spawn(move || {
            let every = Duration::from_millis(benches::wan::SAMPLE_EVERY_MS);
            let mut rows = Vec::new();
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                rows.push(counts.sample());
                next += every;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            rows
        })
    };
    let read = counts.clone();
    let result: io::Result<(io::Result<()>, Option<smux_tokio::Session>)> =
        rt.block_on(async move {
            let tcp = tokio::net::TcpStream::from_std(conn)?;
            let mut readers = Vec::new();
            match system {
                System::RustYamux => {
                    let conn = yamux::Connection::new(
                        tcp.compat(),
                        yamux::Config::default(),
                        yamux::Mode::Server,
                    );
                    let (tx, mut rx) = futures_channel::mpsc::unbounded();
                    tokio::spawn(yamux_serve(conn, tx));
                    for i in 0..streams {
                        let s = futures_util::StreamExt::next(&mut rx)
                            .await
                            .ok_or_else(|| io::Error::other("the yamux session ended"))?;
                        readers.push(tokio::spawn(read_to_end(s, i, read.clone(), |_| None)));
                    }
                    // The connection's task still runs: the RSS below includes the session.
                    Ok((join(readers).await, None))
                }
                _ => {
                    let session = smux_tokio::server(tcp, smux_config(system, receive_buffer)?)?;
                    for i in 0..streams {
                        let s = session
                            .accept_stream()
                            .await?
                            .ok_or_else(|| io::Error::other("the session ended"))?;
                        // Version 1 has no window (it reports the configured one).
                        let window: fn(&smux_core::Stream) -> Option<u32> =
                            if system == System::SmuxV1 {
                                |_| None
                            } else {
                                smux_core::Stream::receive_window
                            };
                        readers.push(tokio::spawn(read_to_end(
                            s.into_inner(),
                            i,
                            read.clone(),
                            window,
                        )));
                    }
                    // The session lives until every stream has been read to its end, and
                    // until the RSS is read below.
                    let done = join(readers).await;
                    Ok((done, Some(session)))
                }
            }
        });
    // The RSS once every stream has ended, with the session still open (as Go's sink).
    let (rss, hwm) = (proc_bytes("self", "VmRSS"), proc_bytes("self", "VmHWM"));
    let result = result.and_then(|(done, session)| {
        drop(session);
        done
    });
    stop.store(true, Ordering::Relaxed);
    let mut samples = sampler.join().expect("the sampler");
    samples.push(counts.sample());
    let report = SinkReport {
        bytes: counts
            .bytes
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect(),
        first_ns: counts.first.load(Ordering::Relaxed).saturating_sub(1),
        end_ns: counts
            .ends
            .iter()
            .map(|e| e.load(Ordering::Relaxed))
            .collect(),
        samples,
        max_window: counts
            .windows
            .iter()
            .map(|w| w.load(Ordering::Relaxed))
            .filter(|&w| w > 0)
            .collect(),
        rss,
        hwm,
        error: result.err().map(|e| e.to_string()),
    };
    println!("{}", report.to_json());
    Ok(())
}

async fn join(handles: Vec<tokio::task::JoinHandle<io::Result<()>>>) -> io::Result<()> {
    let mut first = Ok(());
    for h in handles {
        let r = h.await.map_err(io::Error::other).and_then(|r| r);
        if first.is_ok() {
            first = r;
        }
    }
    first
}

/// Reads stream `i` to its end, counting its bytes, and the largest window it offered
/// (`window`, smux-rs v2 only).
async fn read_to_end<R>(
    mut r: R,
    i: usize,
    counts: Arc<Counts>,
    window: fn(&R) -> Option<u32>,
) -> io::Result<()>
where
    R: futures_util::AsyncRead + Unpin,
{
    let mut buf = vec![0u8; 128 * 1024];
    let result = loop {
        match r.read(&mut buf).await {
            Ok(0) => break Ok(()),
            Ok(n) => {
                let _ = counts.first.compare_exchange(
                    0,
                    nanos_since(counts.base) + 1,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                counts.bytes[i].fetch_add(n as u64, Ordering::Relaxed);
                if let Some(w) = window(&r) {
                    counts.windows[i].fetch_max(u64::from(w), Ordering::Relaxed);
                }
            }
            Err(e) => break Err(e),
        }
    };
    counts.ends[i].store(nanos_since(counts.base), Ordering::Relaxed);
    result
}

/// Drives a server-side rust-yamux connection (it must be polled from one task), handing
/// inbound streams on.
async fn yamux_serve<T>(
    mut conn: yamux::Connection<T>,
    tx: futures_channel::mpsc::UnboundedSender<yamux::Stream>,
) where
    T: futures_util::AsyncRead + futures_util::AsyncWrite + Unpin,
{
    std::future::poll_fn(|cx| loop {
        match conn.poll_next_inbound(cx) {
            Poll::Ready(Some(Ok(s))) => drop(tx.unbounded_send(s)),
            Poll::Ready(_) => return Poll::Ready(()),
            Poll::Pending => return Poll::Pending,
        }
    })
    .await;
}

/// Opens `n` streams on a client-side rust-yamux connection, and drives it from a task of
/// its own from then on.
async fn yamux_open<T>(mut conn: yamux::Connection<T>, n: usize) -> io::Result<Vec<yamux::Stream>>
where
    T: futures_util::AsyncRead + futures_util::AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = futures_channel::oneshot::channel::<io::Result<Vec<yamux::Stream>>>();
    tokio::spawn(async move {
        let mut opened = Vec::with_capacity(n);
        let mut tx = Some(tx);
        std::future::poll_fn(|cx| {
            while tx.is_some() && opened.len() < n {
                match conn.poll_new_outbound(cx) {
                    Poll::Ready(Ok(s)) => opened.push(s),
                    Poll::Ready(Err(e)) => {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(Err(io::Error::other(e)));
                        }
                        return Poll::Ready(());
                    }
                    Poll::Pending => break,
                }
            }
            if opened.len() == n {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(Ok(std::mem::take(&mut opened)));
                }
            }
            loop {
                match conn.poll_next_inbound(cx) {
                    Poll::Ready(Some(Ok(_unexpected))) => {}
                    Poll::Ready(_) => return Poll::Ready(()),
                    Poll::Pending => return Poll::Pending,
                }
            }
        })
        .await;
    });
    rx.await
        .map_err(|_| io::Error::other("the yamux connection ended"))?
}

type Writer = Box<dyn tokio::io::AsyncWrite + Unpin + Send>;

/// `wan send`: opens `streams` streams and writes on each for `seconds`, then closes them
/// and keeps the session up until stdin ends.
fn send(
    system: System,
    connect: SocketAddr,
    streams: usize,
    seconds: f64,
    receive_buffer: Option<usize>,
) -> io::Result<()> {
    let rt = runtime()?;
    rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(connect).await?;
        tcp.set_nodelay(true)?;
        let mut session = None;
        let writers: Vec<Writer> = match system {
            System::RustYamux => {
                let conn = yamux::Connection::new(
                    tcp.compat(),
                    yamux::Config::default(),
                    yamux::Mode::Client,
                );
                yamux_open(conn, streams)
                    .await?
                    .into_iter()
                    .map(|s| Box::new(s.compat()) as Writer)
                    .collect()
            }
            _ => {
                let s = session.insert(smux_tokio::client(
                    tcp,
                    smux_config(system, receive_buffer)?,
                )?);
                let mut w = Vec::new();
                for _ in 0..streams {
                    w.push(Box::new(s.open_stream().await?) as Writer);
                }
                w
            }
        };
        let data: Arc<[u8]> = (0..128 * 1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(seconds);
        let handles: Vec<_> = writers
            .into_iter()
            .map(|mut w| {
                let data = data.clone();
                tokio::spawn(async move {
                    let mut sent = 0u64;
                    while tokio::time::Instant::now() < deadline {
                        w.write_all(&data).await?;
                        sent += data.len() as u64;
                    }
                    // The FIN, after the data.
                    w.shutdown().await?;
                    io::Result::Ok((sent, w))
                })
            })
            .collect();
        let mut sent = Vec::new();
        let mut keep = Vec::new();
        for h in handles {
            let (n, w) = h.await.map_err(io::Error::other)??;
            sent.push(n);
            keep.push(w);
        }
        println!("{}", json!({ "sent": sent }));
        // Closing now would reset the connection with the sink's window updates unread,
        // losing what is still in flight: wait for the runner.
        tokio::task::spawn_blocking(|| io::copy(&mut io::stdin(), &mut io::sink()))
            .await
            .map_err(io::Error::other)??;
        drop((keep, session));
        Ok(())
    })
}
