//! The comparison's results: one [`Row`] per system, printed as tables with ratios to raw TCP
//! and to Go smux, as JSON, as an SVG chart, and checked against the project's targets. With
//! `compare --baseline`, smux-rs rows also carry a [`Base`], shown beside them as new/base
//! (paired round by round, with a confidence interval: [`Paired`]) and checked for
//! [`regressions`].

use crate::paired::Paired;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One figure the runner measures.
#[derive(Debug)]
pub struct Metric {
    /// Key in [`Row::values`] and in the JSON.
    pub key: &'static str,
    /// Human title.
    pub title: &'static str,
    /// Unit of the value.
    pub unit: &'static str,
    /// Whether a larger value is better.
    pub higher_is_better: bool,
}

const fn metric(
    key: &'static str,
    title: &'static str,
    unit: &'static str,
    higher_is_better: bool,
) -> Metric {
    Metric {
        key,
        title,
        unit,
        higher_is_better,
    }
}

/// Every metric, in report order.
pub const METRICS: &[Metric] = &[
    metric("bulk1", "bulk, 1 stream", "MB/s", true),
    metric("bulk16", "bulk, 16 streams", "MB/s", true),
    metric("bulk256", "bulk, 256 streams", "MB/s", true),
    metric("bulk8k1", "bulk in 8 KiB writes, 1 stream", "MB/s", true),
    metric("bulk8k16", "bulk in 8 KiB writes, 16 streams", "MB/s", true),
    metric("echo1", "one stream echoing, each way", "MB/s", true),
    metric("rtt_p50", "64-byte round trip, p50", "us", false),
    metric("rtt_p99", "64-byte round trip, p99", "us", false),
    metric(
        "rtt_task_p50",
        "64-byte round trip from a spawned task, p50",
        "us",
        false,
    ),
    metric(
        "rtt_task_p99",
        "64-byte round trip from a spawned task, p99",
        "us",
        false,
    ),
    metric(
        "hol_p50",
        "64-byte round trip beside a bulk stream, p50",
        "us",
        false,
    ),
    metric(
        "hol_p99",
        "64-byte round trip beside a bulk stream, p99",
        "us",
        false,
    ),
    metric(
        "hol_bulk",
        "the bulk stream beside those round trips",
        "MB/s",
        true,
    ),
    metric(
        "open_close",
        "stream open + ping + close",
        "streams/s",
        true,
    ),
    metric(
        "idle_client",
        "memory per idle stream (10 000 open), client",
        "bytes",
        false,
    ),
    metric(
        "idle_server",
        "memory per idle stream (10 000 open), server",
        "bytes",
        false,
    ),
    metric(
        "allocs_send",
        "allocations per 32 KiB of bulk data, sender",
        "allocs",
        false,
    ),
    metric(
        "allocs_recv",
        "allocations per 32 KiB of bulk data, receiver",
        "allocs",
        false,
    ),
];

/// What kind of system a row is, for choosing references and targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Plain TCP, the physical limit.
    Raw,
    /// smux-rs, ours.
    Ours,
    /// Go's xtaci/smux, the reference.
    GoSmux,
    /// Any other multiplexer.
    Other,
}

/// One system's results.
#[derive(Debug, Clone)]
pub struct Row {
    /// Display name.
    pub name: String,
    /// What kind of system it is.
    pub kind: Kind,
    /// smux protocol version, if it speaks smux.
    pub version: Option<u8>,
    /// The configuration it ran with.
    pub config: String,
    /// Measured values by metric key.
    pub values: BTreeMap<&'static str, f64>,
    /// Why a metric has no value, by metric key.
    pub notes: BTreeMap<&'static str, String>,
    /// The same system measured by the baseline binary, for an A/B row.
    pub base: Option<Base>,
}

/// A row's baseline (`compare --baseline`): the same system measured by a `compare` binary
/// built from a base commit, in the same rounds as the row's own figures.
#[derive(Debug, Clone, Default)]
pub struct Base {
    /// Measured values by metric key.
    pub values: BTreeMap<&'static str, f64>,
    /// Why a metric has no value, by metric key.
    pub notes: BTreeMap<&'static str, String>,
    /// The per-round new/base ratios of each figure both sides measured in the same rounds.
    pub paired: BTreeMap<&'static str, Paired>,
}

impl Base {
    /// new/base on `key`: the paired median ratio when the rounds gave one, else the ratio
    /// of the two kept values (`None` without both, or with a kept base under 0.01).
    pub fn ratio(&self, key: &str, new: Option<f64>) -> Option<(f64, Option<Paired>)> {
        if let Some(p) = self.paired.get(key) {
            return Some((p.ratio, Some(*p)));
        }
        let base = *self.values.get(key)?;
        (base >= 0.01).then_some((new? / base, None))
    }
}

impl Row {
    /// An empty row.
    pub fn new(name: impl Into<String>, kind: Kind, version: Option<u8>, config: String) -> Self {
        Self {
            name: name.into(),
            kind,
            version,
            config,
            values: BTreeMap::new(),
            notes: BTreeMap::new(),
            base: None,
        }
    }

    /// Marks every metric without a value as not run, for `why`.
    pub fn fill_missing(&mut self, why: &str) {
        for m in METRICS {
            if !self.values.contains_key(m.key) {
                self.notes.entry(m.key).or_insert_with(|| why.to_string());
            }
        }
    }
}

/// The Go smux row a row is compared with: the same protocol version, else version 1.
fn go_reference<'a>(rows: &'a [Row], row: &Row) -> Option<&'a Row> {
    let version = row.version.unwrap_or(1);
    rows.iter()
        .find(|r| r.kind == Kind::GoSmux && r.version == Some(version))
}

fn fmt_value(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// `v` against `reference`, or "-" where a ratio would mean nothing (no reference, or one
/// that rounds to zero, such as 0.004 allocations per frame).
fn ratio(v: f64, reference: Option<f64>) -> String {
    match reference {
        Some(r) if r >= 0.01 => format!("{:.2}x", v / r),
        _ => "-".into(),
    }
}

/// The tables: each metric with every system's value and its ratios, then the configs.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let width = rows
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(10)
        .max(10);
    let raw = rows.iter().find(|r| r.kind == Kind::Raw);
    let ab = rows.iter().any(|r| r.base.is_some());
    for m in METRICS {
        let better = if m.higher_is_better {
            "higher"
        } else {
            "lower"
        };
        let _ = writeln!(out, "\n{} ({}, {} is better)", m.title, m.unit, better);
        let _ = write!(
            out,
            "  {:width$}  {:>10}  {:>10}  {:>10}",
            "system", "value", "vs raw TCP", "vs Go smux"
        );
        let _ = writeln!(
            out,
            "{}",
            if ab {
                "        base    new/base  (the median of each round's own ratio, 95% interval)"
            } else {
                ""
            }
        );
        for row in rows {
            let Some(&v) = row.values.get(m.key) else {
                let why = row.notes.get(m.key).map_or("not run", String::as_str);
                let _ = writeln!(out, "  {:width$}  {why}", row.name);
                continue;
            };
            let raw_v = raw.and_then(|r| r.values.get(m.key).copied());
            let go_v = go_reference(rows, row).and_then(|r| r.values.get(m.key).copied());
            let _ = write!(
                out,
                "  {:width$}  {:>10}  {:>10}  {:>10}",
                row.name,
                fmt_value(v),
                ratio(v, raw_v),
                ratio(v, go_v)
            );
            let _ = writeln!(
                out,
                "{}",
                row.base.as_ref().map_or(String::new(), |b| {
                    match b.values.get(m.key) {
                        Some(&base) => match b.ratio(m.key, Some(v)) {
                            Some((r, Some(p))) => {
                                format!("  {:>10}  {:>9.2}x  {}", fmt_value(base), r, p.interval())
                            }
                            _ => format!("  {:>10}  {:>10}", fmt_value(base), ratio(v, Some(base))),
                        },
                        None => format!(
                            "  base: {}",
                            b.notes.get(m.key).map_or("not run", String::as_str)
                        ),
                    }
                })
            );
        }
    }
    let _ = writeln!(
        out,
        "\nconfigurations (every system writes 128 KiB at a time)"
    );
    for row in rows {
        let _ = writeln!(out, "  {:width$}  {}", row.name, row.config);
    }
    out
}

/// How `a` compares with `b` on metric `m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    Ahead,
    /// Within 2%, or both round to the same hundredth: run-to-run noise decides.
    Level,
    Behind,
}

fn standing(m: &Metric, a: f64, b: f64) -> Standing {
    if (a - b).abs() < 0.005 || (a - b).abs() <= 0.02 * a.abs().max(b.abs()) {
        Standing::Level
    } else if (a > b) == m.higher_is_better {
        Standing::Ahead
    } else {
        Standing::Behind
    }
}

/// The project's targets, checked for every smux-rs row: one line per target, met or not.
pub fn targets(rows: &[Row]) -> String {
    let mut out = String::new();
    let raw = rows.iter().find(|r| r.kind == Kind::Raw);
    let get = |r: &Row, k: &str| r.values.get(k).copied();
    for row in rows.iter().filter(|r| r.kind == Kind::Ours) {
        let _ = writeln!(out, "{}:", row.name);
        let mut check = |ok: Option<bool>, what: String| {
            let mark = match ok {
                Some(true) if what.starts_with("level") => "level ",
                Some(true) => "met   ",
                Some(false) => "MISSED",
                None => "n/a   ",
            };
            let _ = writeln!(out, "  {mark} {what}");
        };
        let single = if row.version == Some(2) { 0.8 } else { 0.85 };
        for (key, want) in [("bulk1", single), ("bulk256", 0.8)] {
            let r = raw.and_then(|raw| Some(get(row, key)? / get(raw, key)?));
            check(
                r.map(|r| r >= want),
                format!(
                    "{key} >= {want}x raw TCP ({})",
                    r.map_or("-".into(), |r| format!("{r:.2}x"))
                ),
            );
        }
        let go = go_reference(rows, row);
        let oc = go.and_then(|go| Some(get(row, "open_close")? / get(go, "open_close")?));
        check(
            oc.map(|r| r >= 2.0),
            format!(
                "open+close >= 2x Go smux ({})",
                oc.map_or("-".into(), |r| format!("{r:.2}x"))
            ),
        );
        let idle = get(row, "idle_client").zip(get(row, "idle_server"));
        check(
            idle.map(|(c, s)| c.max(s) <= 1024.0),
            format!(
                "<= 1 KiB per idle stream ({})",
                idle.map_or("-".into(), |(c, s)| format!(
                    "client {c:.0} B, server {s:.0} B"
                ))
            ),
        );
        let allocs = get(row, "allocs_send").zip(get(row, "allocs_recv"));
        check(
            allocs.map(|(s, r)| s.max(r) < 0.05),
            format!(
                "no allocation per frame in steady state ({})",
                allocs.map_or("-".into(), |(s, r)| format!("send {s:.3}, receive {r:.3}"))
            ),
        );
        let rivals: Vec<&Row> = rows
            .iter()
            .filter(|r| matches!(r.kind, Kind::GoSmux | Kind::Other))
            .filter(|r| r.kind != Kind::GoSmux || r.version == row.version)
            .collect();
        for m in METRICS {
            let Some(v) = get(row, m.key) else { continue };
            let against = |want: Standing| -> Vec<String> {
                rivals
                    .iter()
                    .filter_map(|r| {
                        let theirs = get(r, m.key)?;
                        (standing(m, v, theirs) == want)
                            .then(|| format!("{} {}", r.name, fmt_value(theirs)))
                    })
                    .collect()
            };
            let (behind, level) = (against(Standing::Behind), against(Standing::Level));
            let compared = rivals.iter().any(|r| r.values.contains_key(m.key));
            let what = if !behind.is_empty() {
                format!(
                    "ahead on {} ({} vs {})",
                    m.title,
                    fmt_value(v),
                    behind.join(", ")
                )
            } else if !level.is_empty() {
                format!(
                    "level on {} ({} vs {}, within 2%)",
                    m.title,
                    fmt_value(v),
                    level.join(", ")
                )
            } else {
                format!("ahead on {} ({})", m.title, fmt_value(v))
            };
            check(compared.then_some(behind.is_empty()), what);
        }
    }
    out
}

/// How much worse than its baseline a smux-rs figure may be before it is a regression, as a
/// fraction of the baseline: 5% for throughput and p50 round trips, 15% for the noisier p99
/// round trips and open + close. `None` for the figures not judged (memory, allocations).
pub fn tolerance(key: &str) -> Option<f64> {
    match key {
        "bulk1" | "bulk16" | "bulk256" | "bulk8k1" | "bulk8k16" | "echo1" | "rtt_p50"
        | "rtt_task_p50" | "hol_p50" | "hol_bulk" => Some(0.05),
        "rtt_p99" | "rtt_task_p99" | "hol_p99" | "open_close" => Some(0.15),
        _ => None,
    }
}

/// How much worse a new/base `ratio` is on `m`, as a fraction of base: 0.1 for a throughput
/// 10% lower or a latency 10% higher, negative for better.
fn worse_by(m: &Metric, ratio: f64) -> f64 {
    if m.higher_is_better {
        1.0 - ratio
    } else {
        ratio - 1.0
    }
}

/// A smux-rs figure worse than its baseline by more than its [`tolerance`].
#[derive(Debug, Clone)]
pub struct Regression {
    /// The row's name.
    pub system: String,
    /// The metric.
    pub metric: &'static Metric,
    /// This binary's value.
    pub new: f64,
    /// The baseline's value.
    pub base: f64,
    /// new/base: the paired median ratio when there is one, else `new / base`.
    pub ratio: f64,
    /// The paired statistics it was judged on, if the rounds gave them.
    pub paired: Option<Paired>,
    /// The tolerance it exceeds.
    pub tolerance: f64,
}

impl Regression {
    /// Whether even the best end of the paired 95% interval is beyond the tolerance: a
    /// regression this machine's noise does not explain. Without paired figures, or with
    /// too few rounds for such an interval, `false`.
    pub fn beyond_doubt(&self) -> bool {
        self.paired.filter(Paired::confident).is_some_and(|p| {
            let best = if self.metric.higher_is_better {
                p.high
            } else {
                p.low
            };
            worse_by(self.metric, best) > self.tolerance
        })
    }
}

impl std::fmt::Display for Regression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} {} vs base {} {} ({}{:.2}x, {:.0}% worse, tolerance {:.0}%",
            self.system,
            self.metric.title,
            fmt_value(self.new),
            fmt_value(self.base),
            self.metric.unit,
            if self.paired.is_some() { "paired " } else { "" },
            self.ratio,
            worse_by(self.metric, self.ratio) * 100.0,
            self.tolerance * 100.0
        )?;
        match self.paired {
            Some(p) => write!(
                f,
                "; over {} rounds, interval {}: {})",
                p.rounds,
                p.interval(),
                if self.beyond_doubt() {
                    "beyond doubt"
                } else {
                    "not beyond doubt"
                }
            ),
            None => write!(f, ")"),
        }
    }
}

/// Every smux-rs figure worse than its baseline beyond [`tolerance`], in report order.
pub fn regressions(rows: &[Row]) -> Vec<Regression> {
    let mut out = Vec::new();
    for row in rows.iter().filter(|r| r.kind == Kind::Ours) {
        let Some(b) = &row.base else { continue };
        for m in METRICS {
            let (Some(&new), Some(&base), Some(t)) =
                (row.values.get(m.key), b.values.get(m.key), tolerance(m.key))
            else {
                continue;
            };
            let Some((ratio, paired)) = b.ratio(m.key, Some(new)) else {
                continue;
            };
            if worse_by(m, ratio) > t {
                out.push(Regression {
                    system: row.name.clone(),
                    metric: m,
                    new,
                    base,
                    ratio,
                    paired,
                    tolerance: t,
                });
            }
        }
    }
    out
}

/// The A/B verdict: a summary line, then every [`Regression`] on a line of its own.
pub fn ab_summary(rows: &[Row]) -> String {
    // The judged figures of every A/B row: whether each has both values.
    let judged: Vec<bool> = rows
        .iter()
        .filter(|r| r.kind == Kind::Ours)
        .filter_map(|r| Some((r, r.base.as_ref()?)))
        .flat_map(|(r, b)| {
            METRICS
                .iter()
                .filter(|m| tolerance(m.key).is_some())
                .map(move |m| r.values.contains_key(m.key) && b.values.contains_key(m.key))
        })
        .collect();
    let compared = judged.iter().filter(|&&both| both).count();
    let missing = match judged.len() - compared {
        0 => String::new(),
        n => format!(", {n} without both values"),
    };
    let found = regressions(rows);
    let rule = "throughput and p50 more than 5% worse, p99 and open+close more than 15% worse";
    let doubtless = match found.iter().any(|r| r.paired.is_some()) {
        true => format!(
            " ({} beyond doubt)",
            found.iter().filter(|r| r.beyond_doubt()).count()
        ),
        false => String::new(),
    };
    let mut out = if found.is_empty() {
        format!(
            "A/B against the baseline: no regression in {compared} smux-rs figures{missing} \
             ({rule})"
        )
    } else {
        format!(
            "A/B against the baseline: {} REGRESSIONS{doubtless} in \
             {compared} smux-rs figures{missing} ({rule}):",
            found.len()
        )
    };
    for r in &found {
        let _ = write!(out, "\n  {r}");
    }
    out
}

/// Everything as JSON; with baselines, each A/B row's `base` (values, notes, the ratios of
/// the kept values, and the paired figures) and an `ab` section with the tolerances and the
/// regressions (judged on the paired ratio where there is one).
pub fn json(rows: &[Row], meta: Value) -> Value {
    let systems: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut system = json!({
                "name": r.name,
                "version": r.version,
                "config": r.config,
                "values": r.values,
                "notes": r.notes,
            });
            if let Some(b) = &r.base {
                let ratios: BTreeMap<&str, f64> = b
                    .values
                    .iter()
                    .filter(|(_, &base)| base >= 0.01)
                    .filter_map(|(&k, &base)| Some((k, r.values.get(k)? / base)))
                    .collect();
                let paired: BTreeMap<&str, Value> = b
                    .paired
                    .iter()
                    .map(|(&k, p)| {
                        (
                            k,
                            json!({"ratio": p.ratio, "low": p.low, "high": p.high,
                                   "rounds": p.rounds, "coverage": p.coverage}),
                        )
                    })
                    .collect();
                system["base"] = json!({"values": b.values, "notes": b.notes,
                                        "ratios": ratios, "paired": paired});
            }
            system
        })
        .collect();
    let metrics: Vec<Value> = METRICS
        .iter()
        .map(|m| json!({"key": m.key, "title": m.title, "unit": m.unit, "higher_is_better": m.higher_is_better}))
        .collect();
    let mut out = json!({"meta": meta, "metrics": metrics, "systems": systems});
    if rows.iter().any(|r| r.base.is_some()) {
        let tolerances: BTreeMap<&str, f64> = METRICS
            .iter()
            .filter_map(|m| Some((m.key, tolerance(m.key)?)))
            .collect();
        let found: Vec<Value> = regressions(rows)
            .iter()
            .map(|r| {
                json!({
                    "system": r.system,
                    "metric": r.metric.key,
                    "new": r.new,
                    "base": r.base,
                    "ratio": r.ratio,
                    "paired": r.paired.is_some(),
                    "beyond_doubt": r.beyond_doubt(),
                    "tolerance": r.tolerance,
                })
            })
            .collect();
        out["ab"] = json!({"tolerances": tolerances, "regressions": found});
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A bar chart, one panel per metric, as SVG.
pub fn svg(rows: &[Row]) -> String {
    const WIDTH: usize = 960;
    const LABEL: usize = 230;
    const BAR: usize = 16;
    const VALUE: usize = 110;
    let panel = |n: usize| 34 + n * (BAR + 4);
    let height: usize = METRICS
        .iter()
        .map(|_| panel(rows.len()) + 10)
        .sum::<usize>()
        + 20;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let mut y = 10;
    for m in METRICS {
        let better = if m.higher_is_better {
            "higher"
        } else {
            "lower"
        };
        let _ = writeln!(
            out,
            r#"<text x="10" y="{}" font-weight="bold">{} ({}, {} is better)</text>"#,
            y + 16,
            escape(m.title),
            escape(m.unit),
            better
        );
        let max = rows
            .iter()
            .filter_map(|r| r.values.get(m.key))
            .fold(0.0f64, |a, &b| a.max(b));
        let span = (WIDTH - LABEL - VALUE - 20) as f64;
        for (i, row) in rows.iter().enumerate() {
            let by = y + 28 + i * (BAR + 4);
            let colour = match row.kind {
                Kind::Raw => "#9e9e9e",
                Kind::Ours => "#d9480f",
                Kind::GoSmux => "#1971c2",
                Kind::Other => "#5c940d",
            };
            let _ = writeln!(
                out,
                r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                LABEL - 6,
                by + 12,
                escape(&row.name)
            );
            match row.values.get(m.key) {
                Some(&v) => {
                    let w = if max > 0.0 {
                        (v / max * span).max(1.0)
                    } else {
                        1.0
                    };
                    let _ = writeln!(
                        out,
                        r#"<rect x="{LABEL}" y="{by}" width="{w:.1}" height="{BAR}" fill="{colour}"/><text x="{:.1}" y="{}">{}</text>"#,
                        LABEL as f64 + w + 4.0,
                        by + 12,
                        fmt_value(v)
                    );
                }
                None => {
                    let why = row.notes.get(m.key).map_or("not run", String::as_str);
                    let _ = writeln!(
                        out,
                        r##"<text x="{LABEL}" y="{}" fill="#868e96">{}</text>"##,
                        by + 12,
                        escape(why)
                    );
                }
            }
        }
        y += panel(rows.len()) + 10;
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, kind: Kind, version: Option<u8>, vals: &[(&'static str, f64)]) -> Row {
        let mut r = Row::new(name, kind, version, String::new());
        r.values.extend(vals.iter().copied());
        r
    }

    /// Ratios are taken against raw TCP and against Go smux of the same version.
    #[test]
    fn ratios_use_the_matching_references() {
        let rows = vec![
            row("raw", Kind::Raw, None, &[("bulk1", 1000.0)]),
            row("ours v2", Kind::Ours, Some(2), &[("bulk1", 800.0)]),
            row("go v1", Kind::GoSmux, Some(1), &[("bulk1", 100.0)]),
            row("go v2", Kind::GoSmux, Some(2), &[("bulk1", 400.0)]),
        ];
        let t = table(&rows);
        let line = t.lines().find(|l| l.contains("ours v2")).unwrap();
        assert!(line.contains("0.80x") && line.contains("2.00x"), "{line}");
        let t = targets(&rows);
        assert!(t.contains("met    bulk1 >= 0.8x raw TCP (0.80x)"), "{t}");
        assert!(t.contains("met    ahead on bulk, 1 stream"), "{t}");
    }

    /// An A/B row shows its base value and new/base, and only the figures beyond their
    /// tolerance (in the worse direction) are regressions.
    #[test]
    fn baselines_are_shown_and_judged() {
        let mut ours = row(
            "ours",
            Kind::Ours,
            Some(1),
            &[
                ("bulk1", 940.0),
                ("bulk16", 960.0),
                ("rtt_p50", 11.0),
                ("rtt_p99", 110.0),
                ("open_close", 800.0),
                ("idle_client", 900.0),
            ],
        );
        let mut base = Base::default();
        base.values.extend([
            ("bulk1", 1000.0),
            ("bulk16", 1000.0),
            ("rtt_p50", 12.0),
            ("rtt_p99", 100.0),
            ("open_close", 1000.0),
            ("idle_client", 500.0),
        ]);
        base.notes.insert("bulk256", "failed: boom".into());
        ours.values.insert("bulk256", 1.0);
        ours.base = Some(base);
        let rows = vec![ours, row("go", Kind::GoSmux, Some(1), &[("bulk1", 500.0)])];
        let t = table(&rows);
        let line = t
            .lines()
            .find(|l| l.starts_with("  ours") && l.contains("940"))
            .unwrap();
        assert!(line.contains("1000") && line.contains("0.94x"), "{line}");
        assert!(t.contains("base: failed: boom"), "{t}");
        let found: Vec<&str> = regressions(&rows).iter().map(|r| r.metric.key).collect();
        assert_eq!(found, ["bulk1", "open_close"]);
        let s = ab_summary(&rows);
        assert!(
            s.contains("2 REGRESSIONS in 5 smux-rs figures, 9 without both"),
            "{s}"
        );
        assert!(
            s.contains("ours: bulk, 1 stream 940 vs base 1000 MB/s (0.94x"),
            "{s}"
        );
        let j = json(&rows, json!({}));
        assert_eq!(j["ab"]["regressions"][1]["metric"], "open_close");
        assert_eq!(j["systems"][0]["base"]["ratios"]["bulk16"], 0.96);
        assert!(j["systems"][1].get("base").is_none());
        let plain = vec![row("ours", Kind::Ours, Some(1), &[("bulk1", 1.0)])];
        assert!(!table(&plain).contains("new/base"));
        assert!(json(&plain, json!({})).get("ab").is_none());
    }

    /// With paired figures, the verdict follows the median of the per-round ratios, not the
    /// ratio of the kept values, and says whether its interval clears the tolerance.
    #[test]
    fn paired_ratios_decide_and_say_how_sure_they_are() {
        let mut ours = row(
            "ours",
            Kind::Ours,
            Some(1),
            &[("bulk1", 900.0), ("bulk16", 1000.0), ("rtt_p50", 60.0)],
        );
        let mut base = Base::default();
        base.values
            .extend([("bulk1", 1000.0), ("bulk16", 1000.0), ("rtt_p50", 50.0)]);
        // bulk1: the kept values say 0.90x, but round by round the new side was level.
        let level = (0..15).map(|i| (1.0 + 0.01 * (i % 3) as f64, 1.0));
        base.paired.insert("bulk1", Paired::of(level).unwrap());
        // bulk16: level kept values, but every round 20% behind: beyond doubt.
        let behind = (0..15).map(|i| (0.8 * (100.0 + i as f64), 100.0 + i as f64));
        base.paired.insert("bulk16", Paired::of(behind).unwrap());
        // rtt_p50: 10% worse at the median, but the interval reaches back to level.
        let noisy = [0.9, 0.95, 1.0, 1.02, 1.1, 1.1, 1.1, 1.1, 1.2, 1.3, 1.4];
        let p = Paired::of(noisy.iter().map(|&r| (r, 1.0))).unwrap();
        base.paired.insert("rtt_p50", p);
        ours.base = Some(base);
        let rows = vec![ours];
        let found = regressions(&rows);
        let keys: Vec<&str> = found.iter().map(|r| r.metric.key).collect();
        assert_eq!(keys, ["bulk16", "rtt_p50"]);
        assert!(found[0].beyond_doubt() && !found[1].beyond_doubt());
        let s = ab_summary(&rows);
        assert!(s.contains("2 REGRESSIONS (1 beyond doubt)"), "{s}");
        assert!(s.contains("(paired 0.80x, 20% worse"), "{s}");
        assert!(
            s.contains("over 15 rounds, interval [0.80, 0.80]: beyond doubt"),
            "{s}"
        );
        assert!(s.contains("[0.95, 1.30]: not beyond doubt"), "{s}");
        // Three rounds are too few for a 95% interval: never beyond doubt.
        let mut few = rows.clone();
        let three = Paired::of([(0.5, 1.0), (0.5, 1.0), (0.5, 1.0)]).unwrap();
        few[0].base.as_mut().unwrap().paired.insert("bulk16", three);
        let found = regressions(&few);
        assert!(!found[0].beyond_doubt());
        assert!(
            ab_summary(&few).contains("interval (no interval from 3 rounds): not beyond doubt"),
            "{}",
            ab_summary(&few)
        );
        let t = table(&rows);
        let line = t
            .lines()
            .find(|l| l.starts_with("  ours") && l.contains("900"))
            .unwrap();
        assert!(line.contains("1.01x  [1.00, 1.02]"), "{line}");
        let j = json(&rows, json!({}));
        assert_eq!(j["systems"][0]["base"]["paired"]["bulk16"]["rounds"], 15);
        assert_eq!(j["ab"]["regressions"][0]["beyond_doubt"], true);
    }

    /// A missing value shows its reason in the table and the chart, and a lost comparison is
    /// reported as missed with the rival's figure.
    #[test]
    fn missing_values_and_misses_are_shown() {
        let mut other = row("yamux", Kind::Other, None, &[("rtt_p50", 10.0)]);
        other.fill_missing("cannot run: no Go");
        let rows = vec![
            row("ours", Kind::Ours, Some(1), &[("rtt_p50", 12.0)]),
            other,
        ];
        assert!(table(&rows).contains("cannot run: no Go"));
        assert!(svg(&rows).contains("cannot run: no Go"));
        let t = targets(&rows);
        assert!(
            t.contains("MISSED ahead on 64-byte round trip, p50 (12.0 vs yamux 10.0)"),
            "{t}"
        );
        let rows = vec![
            row("ours", Kind::Ours, Some(1), &[("rtt_p50", 10.1)]),
            row("yamux", Kind::Other, None, &[("rtt_p50", 10.0)]),
        ];
        let t = targets(&rows);
        assert!(
            t.contains("level  level on 64-byte round trip, p50 (10.1 vs yamux 10.0, within 2%)"),
            "{t}"
        );
    }
}
