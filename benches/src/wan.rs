//! The WAN benchmark (`cargo run --release -p benches --bin wan`): the multiplexers over a
//! long, thin path, where a window rather than the CPU is the limit.
//!
//! Each run puts toxiproxy (`interop_tests::toxiproxy`) between a sender and a sink of the
//! same system: a `bandwidth` toxic of [`LINK_KB`] KB/s each way, then `latency` toxics
//! whose two directions add up to the round trip. The sender opens the streams and writes
//! on each for a fixed time, then closes them; the sink reads every stream to its end,
//! counts what each one delivered to the application every [`SAMPLE_EVERY_MS`] ms, and
//! prints a [`SinkReport`] with its own RSS. Go's sink and sender are
//! `interop-tests/go/benchpeer`'s `wan-sink` and `wan-send`; the Rust ones are the `wan`
//! binary's own `sink` and `send`.
//!
//! [`SinkReport::figures`] turns a report into the figures printed: the steady rate (bytes
//! delivered over the second half of the sending time, so that a window still growing at
//! the start is left out), the whole-run rate (every byte, first to last), the smallest
//! stream's share of the steady rate, and the ramp (from when on the link was first 80%
//! full for half a second). [`table`], [`chart`] and the `wan` binary's JSON show them.

use serde_json::{json, Value};
use std::fmt::Write as _;

/// The link's rate each way, KB (1000 bytes) per second: toxiproxy's unit.
pub const LINK_KB: u64 = 20_000;
/// The link's rate, MB/s.
pub const LINK_MBPS: f64 = LINK_KB as f64 / 1000.0;
/// How often the sinks sample the per-stream counts.
pub const SAMPLE_EVERY_MS: u64 = 20;
/// The window over which [`Figures::ramp_s`] looks for 80% of the link.
const RAMP_SPAN_S: f64 = 0.5;

/// A system the benchmark measures (sender and sink alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum System {
    /// smux-rs on tokio, version 2, defaults (window tuning on).
    SmuxV2,
    /// smux-rs on tokio, version 2, defaults with tuning off: a fixed 64 KiB window.
    SmuxV2Fixed,
    /// smux-rs on tokio, version 1, defaults (no stream window; a 4 MiB session bucket).
    SmuxV1,
    /// rust-yamux 0.14 on tokio, defaults (it tunes its windows).
    RustYamux,
    /// Go's xtaci/smux v1.5.58, version 2, defaults (a fixed 64 KiB window).
    GoSmuxV2,
    /// The same with kcptun's `--streambuf 2097152` (a 2 MiB stream window).
    GoSmuxV2Streambuf,
    /// hashicorp/yamux v0.1.2, defaults (a fixed 256 KiB window).
    GoYamux,
}

impl System {
    /// Every system, in report order.
    pub const ALL: [System; 7] = [
        System::SmuxV2,
        System::SmuxV2Fixed,
        System::SmuxV1,
        System::RustYamux,
        System::GoSmuxV2,
        System::GoSmuxV2Streambuf,
        System::GoYamux,
    ];

    /// Its name in the table, the chart and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            System::SmuxV2 => "smux-rs v2, tuned",
            System::SmuxV2Fixed => "smux-rs v2, fixed 64 KiB",
            System::SmuxV1 => "smux-rs v1",
            System::RustYamux => "rust-yamux",
            System::GoSmuxV2 => "Go smux v2",
            System::GoSmuxV2Streambuf => "Go smux v2, streambuf 2 MiB",
            System::GoYamux => "Go yamux",
        }
    }

    /// Its name on the command line (`wan sink --system ...`).
    pub fn cli_name(self) -> &'static str {
        match self {
            System::SmuxV2 => "smux-v2",
            System::SmuxV2Fixed => "smux-v2-fixed",
            System::SmuxV1 => "smux-v1",
            System::RustYamux => "rust-yamux",
            System::GoSmuxV2 => "go-smux-v2",
            System::GoSmuxV2Streambuf => "go-smux-v2-streambuf",
            System::GoYamux => "go-yamux",
        }
    }

    /// The configuration it runs with, for the report.
    pub fn config(self) -> &'static str {
        match self {
            System::SmuxV2 => {
                "smux-tokio, v2, defaults: window 64 KiB tuned up to 16 MiB, receive buffer 4 MiB, frame 32 KiB"
            }
            System::SmuxV2Fixed => {
                "smux-tokio, v2, defaults with window_tuning(false): window 64 KiB, receive buffer 4 MiB"
            }
            System::SmuxV1 => "smux-tokio, v1, defaults: receive buffer 4 MiB, frame 32 KiB",
            System::RustYamux => {
                "yamux 0.14 on tokio, defaults: window 256 KiB auto-tuned, connection window 1 GiB"
            }
            System::GoSmuxV2 => {
                "xtaci/smux v1.5.58, v2, defaults: MaxStreamBuffer 64 KiB, MaxReceiveBuffer 4 MiB, frame 32 KiB"
            }
            System::GoSmuxV2Streambuf => {
                "xtaci/smux v1.5.58, v2, MaxStreamBuffer 2 MiB (kcptun --streambuf 2097152), MaxReceiveBuffer 4 MiB"
            }
            System::GoYamux => "hashicorp/yamux v0.1.2, defaults: MaxStreamWindowSize 256 KiB",
        }
    }

    /// Its line's colour in the chart: smux-rs in reds and oranges, Go in blues.
    fn colour(self) -> &'static str {
        match self {
            System::SmuxV2 => "#d9480f",
            System::SmuxV2Fixed => "#f59f00",
            System::SmuxV1 => "#a61e4d",
            System::RustYamux => "#2f9e44",
            System::GoSmuxV2 => "#1971c2",
            System::GoSmuxV2Streambuf => "#4dabf7",
            System::GoYamux => "#7048e8",
        }
    }

    /// Whether the Go bench peer runs it.
    pub fn is_go(self) -> bool {
        matches!(
            self,
            System::GoSmuxV2 | System::GoSmuxV2Streambuf | System::GoYamux
        )
    }

    /// The Go peer's flags for it (its `config` flags, set to the library's defaults
    /// where the peer's own defaults, `compare`'s, differ).
    pub fn go_args(self) -> &'static [&'static str] {
        match self {
            System::GoSmuxV2 => &[
                "--system",
                "go-smux",
                "--version",
                "2",
                "--frame",
                "32768",
                "--receive-buffer",
                "4194304",
                "--window",
                "65536",
            ],
            System::GoSmuxV2Streambuf => &[
                "--system",
                "go-smux",
                "--version",
                "2",
                "--frame",
                "32768",
                "--receive-buffer",
                "4194304",
                "--window",
                "2097152",
            ],
            System::GoYamux => &["--system", "go-yamux", "--window", "262144"],
            _ => &[],
        }
    }
}

/// What a sink printed at the end of a run (one JSON line). Times are nanoseconds since the
/// sink started listening.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SinkReport {
    /// Bytes each stream delivered to the application.
    pub bytes: Vec<u64>,
    /// When the first payload byte of any stream was read.
    pub first_ns: u64,
    /// When each stream's end was read.
    pub end_ns: Vec<u64>,
    /// `[t_ns, bytes of stream 0, bytes of stream 1, ...]`, every [`SAMPLE_EVERY_MS`] ms
    /// and once more at the end.
    pub samples: Vec<Vec<u64>>,
    /// The largest window each stream offered, bytes (smux-rs v2's sink only; else empty).
    pub max_window: Vec<u64>,
    /// The sink's `VmRSS` once every stream had ended, bytes.
    pub rss: u64,
    /// Its `VmHWM` (peak RSS) then, bytes.
    pub hwm: u64,
    /// What went wrong, if anything did.
    pub error: Option<String>,
}

impl SinkReport {
    /// Reads a sink's line.
    pub fn from_json(line: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("{e}: {line:.200}"))?;
        let num = |v: &Value| v.as_i64().map(|n| n.max(0) as u64);
        let list = |key: &str| -> Result<Vec<u64>, String> {
            v[key]
                .as_array()
                .ok_or_else(|| format!("no {key} in the sink's report"))?
                .iter()
                .map(|n| num(n).ok_or_else(|| format!("{key}: not a number")))
                .collect()
        };
        let samples = v["samples"]
            .as_array()
            .ok_or("no samples in the sink's report")?
            .iter()
            .map(|row| {
                row.as_array()
                    .ok_or("a sample is not a list")?
                    .iter()
                    .map(|n| num(n).ok_or("a sample holds a non-number"))
                    .collect::<Result<Vec<u64>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            bytes: list("bytes")?,
            first_ns: num(&v["first_ns"]).unwrap_or(0),
            end_ns: list("end_ns")?,
            samples,
            max_window: v["max_window"]
                .as_array()
                .map(|a| a.iter().filter_map(num).collect())
                .unwrap_or_default(),
            rss: num(&v["rss"]).unwrap_or(0),
            hwm: num(&v["hwm"]).unwrap_or(0),
            error: v["error"].as_str().map(String::from),
        })
    }

    /// As the JSON line a sink prints.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "streams": self.bytes.len(),
            "bytes": self.bytes,
            "first_ns": self.first_ns,
            "end_ns": self.end_ns,
            "samples": self.samples,
            "rss": self.rss,
            "hwm": self.hwm,
        });
        if !self.max_window.is_empty() {
            v["max_window"] = json!(self.max_window);
        }
        if let Some(e) = &self.error {
            v["error"] = json!(e);
        }
        v
    }

    /// Bytes stream `i` had delivered at `t_ns` (linear between samples).
    fn delivered(&self, i: usize, t_ns: f64) -> f64 {
        let at = |row: &Vec<u64>| row.get(i + 1).copied().unwrap_or(0) as f64;
        let Some(last) = self.samples.last() else {
            return 0.0;
        };
        let after = self.samples.partition_point(|row| (row[0] as f64) < t_ns);
        if after == 0 {
            return at(&self.samples[0]);
        }
        if after == self.samples.len() {
            return at(last);
        }
        let (a, b) = (&self.samples[after - 1], &self.samples[after]);
        let span = (b[0] - a[0]) as f64;
        let f = if span > 0.0 {
            (t_ns - a[0] as f64) / span
        } else {
            1.0
        };
        at(a) + (at(b) - at(a)) * f
    }

    /// The figures of a run whose sender wrote for `seconds`.
    pub fn figures(&self, seconds: f64) -> Figures {
        let n = self.bytes.len().max(1);
        let t0 = self.first_ns as f64;
        let (from, to) = (t0 + seconds / 2.0 * 1e9, t0 + seconds * 1e9);
        let per_stream: Vec<f64> = (0..self.bytes.len())
            .map(|i| (self.delivered(i, to) - self.delivered(i, from)) / (seconds / 2.0) / 1e6)
            .collect();
        let steady: f64 = per_stream.iter().sum();
        let fair = steady / n as f64;
        let min_share = if fair > 0.0 {
            per_stream.iter().copied().fold(f64::INFINITY, f64::min) / fair
        } else {
            0.0
        };
        let total: u64 = self.bytes.iter().sum();
        let last = self.end_ns.iter().copied().max().unwrap_or(0) as f64;
        let whole = if last > t0 {
            total as f64 / ((last - t0) / 1e9) / 1e6
        } else {
            0.0
        };
        Figures {
            steady_mbps: steady,
            whole_mbps: whole,
            min_share,
            bytes: total,
            ramp_s: self.ramp(0.8 * LINK_MBPS),
            max_window: self.max_window.iter().copied().max(),
        }
    }

    /// Seconds from the first byte until the start of the first [`RAMP_SPAN_S`] over
    /// which the streams together moved `mbps`.
    fn ramp(&self, mbps: f64) -> Option<f64> {
        let total = |row: &Vec<u64>| row[1..].iter().sum::<u64>() as f64;
        let span = RAMP_SPAN_S * 1e9;
        let mut lo = 0;
        for (j, row) in self.samples.iter().enumerate() {
            let t = row[0] as f64;
            while lo + 1 < j && (self.samples[lo + 1][0] as f64) <= t - span {
                lo += 1;
            }
            let dt = t - self.samples[lo][0] as f64;
            if dt >= span * 0.99
                && (total(row) - total(&self.samples[lo])) / (dt / 1e9) / 1e6 >= mbps
            {
                // From the start of that half second.
                let from = self.samples[lo][0] as f64 - self.first_ns as f64;
                return Some((from / 1e9).max(0.0));
            }
        }
        None
    }
}

/// A run's figures (MB = 10^6 bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    /// All streams together over the second half of the sending time, MB/s.
    pub steady_mbps: f64,
    /// Every byte delivered, from the first to the last, MB/s.
    pub whole_mbps: f64,
    /// The smallest stream's steady rate over its fair share (1.0: an equal split).
    pub min_share: f64,
    /// Bytes delivered in all.
    pub bytes: u64,
    /// Seconds from the first byte until the start of the first half second in which the
    /// streams together moved 80% of the link; `None` if they never did.
    pub ramp_s: Option<f64>,
    /// The largest window any stream offered, bytes (smux-rs v2 only).
    pub max_window: Option<u64>,
}

/// One measured run (or why it has no figures).
#[derive(Debug, Clone)]
pub struct Run {
    /// The system.
    pub system: System,
    /// Round trip, ms.
    pub rtt_ms: u64,
    /// Streams at once.
    pub streams: usize,
    /// How long the sender wrote.
    pub seconds: f64,
    /// The figures, or why there are none.
    pub figures: Result<Figures, String>,
    /// The sink's RSS before the connection arrived, bytes.
    pub rss_idle: u64,
    /// Its RSS when every stream had ended, bytes.
    pub rss_end: u64,
    /// Its peak RSS, bytes.
    pub rss_peak: u64,
}

impl Run {
    /// The steady rate, if the run has figures.
    pub fn steady(&self) -> Option<f64> {
        self.figures.as_ref().ok().map(|f| f.steady_mbps)
    }

    /// As JSON.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "system": self.system.name(),
            "cli_name": self.system.cli_name(),
            "rtt_ms": self.rtt_ms,
            "streams": self.streams,
            "seconds": self.seconds,
            "rss_idle": self.rss_idle,
            "rss_end": self.rss_end,
            "rss_peak": self.rss_peak,
        });
        match &self.figures {
            Ok(f) => {
                v["steady_mbps"] = json!(round2(f.steady_mbps));
                v["whole_mbps"] = json!(round2(f.whole_mbps));
                v["min_share"] = json!(round2(f.min_share));
                v["bytes"] = json!(f.bytes);
                v["ramp_s"] = json!(f.ramp_s.map(round2));
                if let Some(w) = f.max_window {
                    v["max_window"] = json!(w);
                }
            }
            Err(e) => v["error"] = json!(e),
        }
        v
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

/// The tables: throughput at one stream and at `many` streams (steady, whole run in
/// brackets; at `many` streams also the smallest stream's share), then the sinks' RSS, as
/// Markdown.
pub fn table(runs: &[Run], rtts: &[u64], many: usize) -> String {
    let find = |s: System, rtt: u64, n: usize| {
        runs.iter()
            .find(|r| r.system == s && r.rtt_ms == rtt && r.streams == n)
    };
    let systems: Vec<System> = System::ALL
        .into_iter()
        .filter(|&s| runs.iter().any(|r| r.system == s))
        .collect();
    let head = |out: &mut String, first: &str, cols: &[String]| {
        let _ = writeln!(out, "| {first} | {} |", cols.join(" | "));
        let _ = writeln!(
            out,
            "|---|{}",
            cols.iter().map(|_| "---:|").collect::<String>()
        );
    };
    let rtt_cols: Vec<String> = rtts.iter().map(|r| format!("{r} ms")).collect();
    let mut out = String::new();
    for n in [1, many] {
        let _ = writeln!(
            out,
            "{n} stream{}: MB/s over the second half of the sending time (whole run){}\n",
            if n == 1 { "" } else { "s, all together" },
            if n == 1 {
                ""
            } else {
                ", smallest stream's share of an equal split"
            }
        );
        head(&mut out, "system", &rtt_cols);
        for &s in &systems {
            let cells: Vec<String> = rtts
                .iter()
                .map(|&rtt| match find(s, rtt, n).map(|r| &r.figures) {
                    Some(Ok(f)) if n == 1 => {
                        format!("{:.1} ({:.1})", f.steady_mbps, f.whole_mbps)
                    }
                    Some(Ok(f)) => format!(
                        "{:.1} ({:.1}), {:.2}",
                        f.steady_mbps, f.whole_mbps, f.min_share
                    ),
                    Some(Err(e)) => format!("failed: {}", e.replace('|', "/")),
                    None => "-".into(),
                })
                .collect();
            let _ = writeln!(out, "| {} | {} |", s.name(), cells.join(" | "));
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "The sink's RSS, MiB: idle -> at the end (peak), 1 stream / {many} streams\n"
    );
    head(&mut out, "system", &rtt_cols);
    for &s in &systems {
        let cells: Vec<String> = rtts
            .iter()
            .map(|&rtt| {
                [1, many]
                    .iter()
                    .map(|&n| match find(s, rtt, n) {
                        Some(r) if r.rss_end > 0 => format!(
                            "{:.1} -> {:.1} ({:.1})",
                            mib(r.rss_idle),
                            mib(r.rss_end),
                            mib(r.rss_peak)
                        ),
                        _ => "-".into(),
                    })
                    .collect::<Vec<_>>()
                    .join(" / ")
            })
            .collect();
        let _ = writeln!(out, "| {} | {} |", s.name(), cells.join(" | "));
    }
    out
}

/// Throughput (steady) against round trip, one line per system, one panel per stream
/// count, as SVG.
pub fn chart(runs: &[Run], rtts: &[u64], many: usize) -> String {
    const PANEL_W: f64 = 440.0;
    const PANEL_H: f64 = 300.0;
    const LEFT: f64 = 50.0;
    const TOP: f64 = 40.0;
    const GAP: f64 = 60.0;
    const LEGEND_H: f64 = 20.0;
    let systems: Vec<System> = System::ALL
        .into_iter()
        .filter(|&s| runs.iter().any(|r| r.system == s))
        .collect();
    let top_value = runs
        .iter()
        .filter_map(Run::steady)
        .fold(LINK_MBPS * 1.1, f64::max);
    let y_max = (top_value / 4.0).ceil() * 4.0;
    // Room on the right of each panel for the link's labels.
    let width = LEFT + 2.0 * PANEL_W + GAP + 60.0;
    let height = TOP + PANEL_H + 70.0 + LEGEND_H * systems.len().div_ceil(2) as f64;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let xs = |i: usize| {
        if rtts.len() <= 1 {
            PANEL_W / 2.0
        } else {
            20.0 + i as f64 * (PANEL_W - 40.0) / (rtts.len() - 1) as f64
        }
    };
    let ys = |v: f64| TOP + PANEL_H - v / y_max * PANEL_H;
    for (p, n) in [1, many].into_iter().enumerate() {
        let x0 = LEFT + p as f64 * (PANEL_W + GAP);
        let _ = writeln!(
            out,
            r#"<text x="{x0}" y="24" font-weight="bold">{n} stream{}, MB/s</text>"#,
            if n == 1 { "" } else { "s together" }
        );
        let _ = writeln!(
            out,
            r##"<rect x="{x0}" y="{TOP}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#adb5bd"/>"##
        );
        let mut v = 0.0;
        while v <= y_max + 1e-9 {
            let y = ys(v);
            let _ = writeln!(
                out,
                r##"<line x1="{x0}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e9ecef"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v}</text>"##,
                x0 + PANEL_W,
                x0 - 4.0,
                y + 4.0
            );
            v += 4.0;
        }
        for (frac, label) in [(1.0, "link"), (0.8, "0.8x link")] {
            let y = ys(LINK_MBPS * frac);
            let _ = writeln!(
                out,
                r##"<line x1="{x0}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#868e96" stroke-dasharray="4 3"/><text x="{:.1}" y="{:.1}" fill="#868e96" font-size="10">{label}</text>"##,
                x0 + PANEL_W,
                x0 + PANEL_W + 4.0,
                y + 3.0
            );
        }
        for (i, rtt) in rtts.iter().enumerate() {
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{rtt} ms</text>"#,
                x0 + xs(i),
                TOP + PANEL_H + 16.0
            );
        }
        // smux-rs v2 last, on top of the lines it meets.
        for &s in systems.iter().rev() {
            let points: Vec<(f64, f64)> = rtts
                .iter()
                .enumerate()
                .filter_map(|(i, &rtt)| {
                    let r = runs
                        .iter()
                        .find(|r| r.system == s && r.rtt_ms == rtt && r.streams == n)?;
                    Some((x0 + xs(i), ys(r.steady()?)))
                })
                .collect();
            let colour = s.colour();
            let width = if s == System::SmuxV2 { 3 } else { 2 };
            let dash = if s.is_go() {
                r#" stroke-dasharray="6 3""#
            } else {
                ""
            };
            let path: Vec<String> = points
                .iter()
                .map(|(x, y)| format!("{x:.1},{y:.1}"))
                .collect();
            let _ = writeln!(
                out,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="{width}"{dash}/>"#,
                path.join(" ")
            );
            for (x, y) in points {
                let _ = writeln!(
                    out,
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{colour}"/>"#
                );
            }
        }
    }
    let _ = writeln!(
        out,
        r##"<text x="{LEFT}" y="{:.1}" fill="#495057">Round trip (both directions' latency added), link {LINK_MBPS} MB/s each way (toxiproxy). MB/s over the second half of each run's sending time.</text>"##,
        TOP + PANEL_H + 36.0
    );
    let legend_y = TOP + PANEL_H + 60.0;
    for (k, s) in systems.iter().enumerate() {
        let x = LEFT + (k % 2) as f64 * (PANEL_W + GAP);
        let y = legend_y + (k / 2) as f64 * LEGEND_H;
        let _ = writeln!(
            out,
            r#"<line x1="{x}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-width="3"{}/><text x="{:.1}" y="{:.1}">{}</text>"#,
            y - 4.0,
            x + 24.0,
            y - 4.0,
            s.colour(),
            if s.is_go() {
                r#" stroke-dasharray="6 3""#
            } else {
                ""
            },
            x + 30.0,
            y,
            s.name()
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two streams: stream 0 at 10 MB/s throughout, stream 1 idle for the first second,
    /// then at 5 MB/s; samples every 100 ms, the first byte at 1 s after the listen.
    fn report() -> SinkReport {
        let t0 = 1_000_000_000u64;
        let mut samples = Vec::new();
        for k in 0..=40u64 {
            let t = k as f64 / 10.0;
            let s0 = (10e6 * t) as u64;
            let s1 = (5e6 * (t - 1.0).max(0.0)) as u64;
            samples.push(vec![t0 + k * 100_000_000, s0, s1]);
        }
        let last = samples.last().unwrap().clone();
        SinkReport {
            bytes: vec![last[1], last[2]],
            first_ns: t0,
            end_ns: vec![t0 + 4_000_000_000; 2],
            samples,
            max_window: vec![1 << 20, 2 << 20],
            rss: 5 << 20,
            hwm: 6 << 20,
            error: None,
        }
    }

    #[test]
    fn figures_use_the_second_half_of_the_sending_time() {
        let f = report().figures(4.0);
        assert!((f.steady_mbps - 15.0).abs() < 1e-6, "{f:?}");
        // Stream 1 moved 5 of the 7.5 MB/s fair share.
        assert!((f.min_share - 5.0 / 7.5).abs() < 1e-6, "{f:?}");
        // 40 MB + 15 MB over 4 s.
        assert!((f.whole_mbps - 13.75).abs() < 1e-6, "{f:?}");
        assert_eq!(f.bytes, 55_000_000);
        // 16 MB/s over half a second is first reached once stream 1 adds its 5 MB/s
        // (15 MB/s is not enough): never.
        assert_eq!(f.ramp_s, None);
        // 12.5 MB/s over the half second from 0.8 s to 1.3 s.
        assert_eq!(report().ramp(12.5), Some(0.8));
    }

    #[test]
    fn delivered_interpolates_between_samples() {
        let r = report();
        assert!((r.delivered(0, 1.05e9) - 0.5e6).abs() < 1.0);
        assert_eq!(r.delivered(0, 0.0), 0.0);
        assert_eq!(r.delivered(0, 9e9), 40e6);
    }

    #[test]
    fn reports_round_trip_through_json() {
        let r = report();
        let back = SinkReport::from_json(&r.to_json().to_string()).unwrap();
        assert_eq!(back, r);
        let go = r#"{"streams":1,"bytes":[3],"first_ns":5,"end_ns":[9],"samples":[[1,0],[9,3]],"rss":4096,"hwm":8192,"error":"stream 0: EOF"}"#;
        let g = SinkReport::from_json(go).unwrap();
        assert_eq!(g.samples, vec![vec![1, 0], vec![9, 3]]);
        assert_eq!(g.error.as_deref(), Some("stream 0: EOF"));
        assert!(SinkReport::from_json("{}").is_err());
    }

    #[test]
    fn table_and_chart_show_every_run() {
        let f = report().figures(4.0);
        let run = |system, rtt_ms, streams, figures| Run {
            system,
            rtt_ms,
            streams,
            seconds: 4.0,
            figures,
            rss_idle: 4 << 20,
            rss_end: 5 << 20,
            rss_peak: 6 << 20,
        };
        let runs = vec![
            run(System::SmuxV2, 10, 1, Ok(f)),
            run(System::SmuxV2, 10, 8, Ok(f)),
            run(System::GoYamux, 10, 1, Err("boom".into())),
        ];
        let t = table(&runs, &[10], 8);
        assert!(t.contains("| smux-rs v2, tuned | 15.0 (13.8) |"), "{t}");
        assert!(
            t.contains("| smux-rs v2, tuned | 15.0 (13.8), 0.67 |"),
            "{t}"
        );
        assert!(t.contains("| Go yamux | failed: boom |"), "{t}");
        assert!(t.contains("4.0 -> 5.0 (6.0) / 4.0 -> 5.0 (6.0)"), "{t}");
        let svg = chart(&runs, &[1, 10], 8);
        assert!(svg.starts_with("<svg") && svg.contains("Go yamux"), "{svg}");
        assert_eq!(svg.matches("<polyline").count(), 4);
    }
}
