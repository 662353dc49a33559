//! Paired A/B statistics for `compare --baseline`: each round measures both sides back to
//! back, so a round's new/base ratio cancels whatever the machine was doing in that round.
//! The estimate is the median of those ratios, with a confidence interval for it that
//! assumes nothing about their distribution (figures on this machine are bimodal: a
//! process's threads land on the two virtual CPUs well or badly).
//!
//! The interval is the classic sign-test one: with `n` ratios sorted, the `k`-th smallest
//! and the `k`-th largest bound the median with probability `1 - 2 P(B < k)`, where `B` is
//! Binomial(n, 1/2). `k` is the largest that keeps that at 95% or more; with fewer than 6
//! rounds no `k` does, and the interval is the whole range at the coverage it has.

/// The paired ratios of one figure over the rounds of an A/B run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paired {
    /// The median of the per-round new/base ratios.
    pub ratio: f64,
    /// The lower end of the confidence interval for that median.
    pub low: f64,
    /// The upper end of the confidence interval for that median.
    pub high: f64,
    /// How many rounds had a value on both sides.
    pub rounds: usize,
    /// The probability that the interval holds the true median ratio.
    pub coverage: f64,
}

/// The coverage the interval aims for.
pub const CONFIDENCE: f64 = 0.95;

impl Paired {
    /// The paired statistics of `(new, base)` values, one pair per round; `None` if no pair
    /// has a positive base.
    pub fn of(pairs: impl IntoIterator<Item = (f64, f64)>) -> Option<Self> {
        let mut ratios: Vec<f64> = pairs
            .into_iter()
            .filter(|&(new, base)| base > 0.0 && new.is_finite() && base.is_finite())
            .map(|(new, base)| new / base)
            .collect();
        if ratios.is_empty() {
            return None;
        }
        ratios.sort_by(f64::total_cmp);
        let n = ratios.len();
        let median = if n % 2 == 1 {
            ratios[n / 2]
        } else {
            (ratios[n / 2 - 1] + ratios[n / 2]) / 2.0
        };
        let (k, coverage) = order_statistic(n);
        Some(Self {
            ratio: median,
            low: ratios[k - 1],
            high: ratios[n - k],
            rounds: n,
            coverage,
        })
    }

    /// Whether the interval reaches [`CONFIDENCE`]: from 6 rounds on.
    pub fn confident(&self) -> bool {
        self.coverage >= CONFIDENCE
    }

    /// The interval as text, `[0.91, 1.03]`, or why there is none.
    pub fn interval(&self) -> String {
        if self.confident() {
            format!("[{:.2}, {:.2}]", self.low, self.high)
        } else {
            format!("(no interval from {} rounds)", self.rounds)
        }
    }
}

/// The 1-based rank `k` whose `k`-th smallest and `k`-th largest of `n` values bound their
/// median with at least [`CONFIDENCE`], and the coverage it gives; `k = 1` (the whole range)
/// when no rank reaches it.
fn order_statistic(n: usize) -> (usize, f64) {
    // P(B <= j) for B ~ Binomial(n, 1/2), built up term by term.
    let total = 2f64.powi(n as i32);
    let mut below = 0.0; // P(B < k)
    let mut term = 1.0; // C(n, k - 1)
    let mut best = (1, 1.0 - 2.0 / total);
    for k in 1..=n.div_ceil(2) {
        below += term / total;
        term = term * (n - (k - 1)) as f64 / k as f64;
        // `below` is now P(B <= k - 1) = P(B < k).
        let coverage = 1.0 - 2.0 * below;
        if coverage >= CONFIDENCE {
            best = (k, coverage);
        } else {
            break;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ranks match the sign-test tables: 15 values give the 4th from each end at 96.5%,
    /// 6 give the extremes at 96.9%, and 5 cannot reach 95%.
    #[test]
    fn intervals_follow_the_binomial() {
        let (k, c) = order_statistic(15);
        assert_eq!(k, 4);
        assert!((c - 0.9648).abs() < 1e-3, "{c}");
        let (k, c) = order_statistic(6);
        assert_eq!(k, 1);
        assert!((c - 0.96875).abs() < 1e-9, "{c}");
        let (k, c) = order_statistic(5);
        assert_eq!(k, 1);
        assert!((c - 0.9375).abs() < 1e-9, "{c}");
        assert_eq!(order_statistic(31).0, 10);
    }

    /// A shift that every round shares cancels: the base drifts from 100 to 240 over the
    /// run and the new side is always 10% above it, so the paired ratio is exactly 1.1
    /// while a ratio of medians would see only the drift's middle.
    #[test]
    fn a_drift_every_round_shares_cancels() {
        let pairs = (0..15).map(|i| {
            let base = 100.0 + 10.0 * i as f64;
            (base * 1.1, base)
        });
        let p = Paired::of(pairs).unwrap();
        assert!((p.ratio - 1.1).abs() < 1e-12);
        assert!((p.low - 1.1).abs() < 1e-12 && (p.high - 1.1).abs() < 1e-12);
        assert_eq!(p.rounds, 15);
    }

    /// The interval holds the median and is bounded by the ranked ratios.
    #[test]
    fn the_interval_brackets_the_median() {
        let ratios = [0.8, 1.3, 0.9, 1.0, 1.1, 0.95, 1.05, 1.2, 0.85, 1.02, 0.98];
        let p = Paired::of(ratios.iter().map(|&r| (r, 1.0))).unwrap();
        assert_eq!(p.ratio, 1.0);
        // 11 values: k = 2 (coverage 98.8%), so the 2nd smallest and 2nd largest.
        assert_eq!((p.low, p.high), (0.85, 1.2));
        assert_eq!(p.interval(), "[0.85, 1.20]");
        // Too few rounds for a 95% interval: none is claimed.
        let few = Paired::of([(0.8, 1.0), (0.7, 1.0), (0.9, 1.0)]).unwrap();
        assert!(!few.confident());
        assert_eq!(few.interval(), "(no interval from 3 rounds)");
        assert!(Paired::of([(1.0, 0.0)]).is_none());
        let even = Paired::of([(1.0, 1.0), (2.0, 1.0)]).unwrap();
        assert_eq!(even.ratio, 1.5);
    }
}
