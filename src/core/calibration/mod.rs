//! Threshold calibration from labelled pairs (host-free; used by `src/bin/calibrate.rs`).
//!
//! A pair is one cached prompt and one new prompt with a label: should the cached answer be served?
//! Given each pair's measured facts (distance, whether the partitions match, canonical equality, the
//! verifier's verdict) this decides whether the filter would serve it at a threshold, for a given
//! configuration of tiers, and finds the threshold with the most hits for a target false-hit rate.
//! Served sets only grow with the threshold, so hits and false hits are both monotone in it.
//! `pairs` reads the labelled-pair files and turns each side into the filter's parsed request.
pub mod pairs;

/// What the filter would see for one labelled pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub should_hit: bool,
    /// Cosine distance (1 - cos) of the two embedded texts; `None` when the pair can never be served
    /// (different partition context, or a prompt the filter does not cache).
    pub distance: Option<f64>,
    /// The normalised texts are equal: today's exact tier answers it in every configuration.
    pub exact_equal: bool,
    /// `canonical(a) == canonical(b)`: the canonical exact tier answers it with no embedding.
    pub canonical_equal: bool,
    /// The verifier (policy `verify: strict`, the default) accepts the cached prompt for the new one.
    pub verified_strict: bool,
    /// The same with `verify: balanced`.
    pub verified_balanced: bool,
}

/// The policy's `verify` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verifier {
    Off,
    Strict,
    Balanced,
}

impl Verifier {
    /// The value of the policy field `verify`.
    pub fn code(&self) -> &'static str {
        match self {
            Verifier::Off => "off",
            Verifier::Strict => "strict",
            Verifier::Balanced => "balanced",
        }
    }
}

/// Which tiers are on besides the embedding threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub exact_tier: bool,
    pub verifier: Verifier,
}

impl Config {
    pub const ALL: [Config; 5] = [
        Config { exact_tier: false, verifier: Verifier::Off },
        Config { exact_tier: true, verifier: Verifier::Off },
        Config { exact_tier: false, verifier: Verifier::Strict },
        Config { exact_tier: true, verifier: Verifier::Strict },
        Config { exact_tier: true, verifier: Verifier::Balanced },
    ];

    pub fn label(&self) -> &'static str {
        match (self.exact_tier, self.verifier) {
            (false, Verifier::Off) => "threshold",
            (true, Verifier::Off) => "threshold+exact",
            (false, Verifier::Strict) => "threshold+verifier",
            (true, Verifier::Strict) => "threshold+exact+verifier",
            (false, Verifier::Balanced) => "threshold+verifier(balanced)",
            (true, Verifier::Balanced) => "threshold+exact+verifier(balanced)",
        }
    }
}

/// Whether the filter serves the cached answer for this pair at `threshold`.
pub fn served(p: &Scored, c: Config, threshold: f64) -> bool {
    let Some(d) = p.distance else { return false };
    if p.exact_equal || (c.exact_tier && p.canonical_equal) {
        return true;
    }
    let verified = match c.verifier {
        Verifier::Off => true,
        Verifier::Strict => p.verified_strict,
        Verifier::Balanced => p.verified_balanced,
    };
    d <= threshold && verified
}

/// Counts at one threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub threshold: f64,
    pub hits: usize,
    pub positives: usize,
    pub false_hits: usize,
    pub traps: usize,
}

impl Point {
    pub fn hit_rate(&self) -> f64 {
        ratio(self.hits, self.positives)
    }
    pub fn fh_rate(&self) -> f64 {
        ratio(self.false_hits, self.traps)
    }
}

fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

pub fn at(pairs: &[Scored], c: Config, threshold: f64) -> Point {
    let mut pt = Point { threshold, hits: 0, positives: 0, false_hits: 0, traps: 0 };
    for p in pairs {
        let s = served(p, c, threshold);
        if p.should_hit {
            pt.positives += 1;
            pt.hits += usize::from(s);
        } else {
            pt.traps += 1;
            pt.false_hits += usize::from(s);
        }
    }
    pt
}

/// The calibrated choice for one configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    /// Rates at `point.threshold`, the smallest threshold with the most hits within the target.
    pub point: Point,
    /// The first threshold above it at which the false-hit rate exceeds the target (`None`: never):
    /// any threshold in `[point.threshold, limit)` gives the same or more hits within the target.
    pub limit: Option<f64>,
}

/// The smallest threshold with the most hits while the false-hit rate stays <= `target_fh`.
/// Picking the smallest of the equally good thresholds keeps the largest margin to the next trap.
pub fn best_for_target(pairs: &[Scored], c: Config, target_fh: f64) -> Choice {
    let mut cands: Vec<f64> = pairs.iter().filter_map(|p| p.distance).filter(|d| d.is_finite()).collect();
    cands.push(0.0);
    cands.sort_by(f64::total_cmp);
    cands.dedup();
    let within = |pt: &Point| pt.fh_rate() <= target_fh + 1e-12;
    let mut best = at(pairs, c, 0.0);
    let mut limit = None;
    for &t in &cands {
        let pt = at(pairs, c, t);
        if !within(&pt) {
            limit = Some(t);
            break;
        }
        if pt.hits > best.hits || !within(&best) {
            best = pt;
        }
    }
    Choice { point: best, limit }
}

/// `t` rounded up to 4 decimals when that serves the same pairs (a readable policy value), else `t`.
pub fn readable_threshold(pairs: &[Scored], c: Config, choice: &Choice) -> f64 {
    let t = choice.point.threshold;
    let up = (t * 1e4).ceil() / 1e4;
    if at(pairs, c, up) == (Point { threshold: up, ..choice.point }) {
        up
    } else {
        t
    }
}

/// Full sweep (one point per distinct distance), for curves.
pub fn sweep(pairs: &[Scored], c: Config) -> Vec<Point> {
    let mut cands: Vec<f64> = pairs.iter().filter_map(|p| p.distance).filter(|d| d.is_finite()).collect();
    cands.push(0.0);
    cands.sort_by(f64::total_cmp);
    cands.dedup();
    cands.into_iter().map(|t| at(pairs, c, t)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(should_hit: bool, d: f64, canon: bool, verified: bool) -> Scored {
        Scored {
            should_hit,
            distance: Some(d),
            exact_equal: false,
            canonical_equal: canon,
            verified_strict: verified,
            verified_balanced: verified,
        }
    }
    const PLAIN: Config = Config { exact_tier: false, verifier: Verifier::Off };
    const VERIFY: Config = Config { exact_tier: false, verifier: Verifier::Strict };
    const EXACT: Config = Config { exact_tier: true, verifier: Verifier::Off };

    fn sample() -> Vec<Scored> {
        vec![
            p(true, 0.01, false, true),
            p(true, 0.05, false, true),
            p(true, 0.30, true, true),    // near-repeat far in embedding space
            p(false, 0.02, false, false), // trap close by, refused by the verifier
            p(false, 0.10, false, true),  // trap the verifier misses
        ]
    }

    #[test]
    fn threshold_only_stops_before_the_first_trap() {
        let c = best_for_target(&sample(), PLAIN, 0.0);
        assert_eq!(c.point.threshold, 0.01);
        assert_eq!((c.point.hits, c.point.false_hits), (1, 0));
        assert_eq!(c.limit, Some(0.02));
    }

    #[test]
    fn verifier_lets_the_threshold_grow_past_refused_traps() {
        let c = best_for_target(&sample(), VERIFY, 0.0);
        assert_eq!(c.point.threshold, 0.05);
        assert_eq!((c.point.hits, c.point.false_hits), (2, 0));
        assert_eq!(c.limit, Some(0.10));
    }

    #[test]
    fn exact_tier_serves_canonical_equal_at_any_threshold() {
        let c = best_for_target(&sample(), EXACT, 0.0);
        assert_eq!((c.point.hits, c.point.false_hits), (2, 0));
        assert!(served(&sample()[2], EXACT, 0.0));
        assert!(!served(&sample()[2], PLAIN, 0.0));
    }

    #[test]
    fn looser_target_allows_false_hits() {
        let c = best_for_target(&sample(), PLAIN, 0.5);
        assert_eq!(c.point.threshold, 0.05);
        assert_eq!(c.point.false_hits, 1);
        let all = best_for_target(&sample(), PLAIN, 1.0);
        assert_eq!((all.point.hits, all.limit), (3, None));
    }

    #[test]
    fn exact_repeats_hit_in_every_configuration() {
        // float noise: the same text twice is 1e-7 apart, the exact tier serves it without a distance
        let s = Scored {
            should_hit: true,
            distance: Some(3e-7),
            exact_equal: true,
            canonical_equal: true,
            verified_strict: false,
            verified_balanced: false,
        };
        assert!(Config::ALL.iter().all(|&c| served(&s, c, 0.0)));
    }

    #[test]
    fn unservable_pairs_never_hit() {
        let mut s = sample();
        s.push(Scored {
            should_hit: false,
            distance: None,
            exact_equal: true,
            canonical_equal: true,
            verified_strict: true,
            verified_balanced: true,
        });
        assert!(!served(&s[5], EXACT, 2.0));
        assert_eq!(at(&s, EXACT, 2.0).traps, 3);
    }

    #[test]
    fn readable_threshold_rounds_up_only_when_nothing_changes() {
        let s = vec![p(true, 0.012_34, false, true), p(false, 0.012_36, false, true)];
        let c = best_for_target(&s, PLAIN, 0.0);
        assert_eq!(readable_threshold(&s, PLAIN, &c), 0.012_34);
        let s = vec![p(true, 0.012_34, false, true), p(false, 0.02, false, true)];
        let c = best_for_target(&s, PLAIN, 0.0);
        assert_eq!(readable_threshold(&s, PLAIN, &c), 0.0124);
    }

    #[test]
    fn balanced_and_strict_are_separate_verdicts() {
        let mut s = sample();
        s[1].verified_strict = false; // a reworded paraphrase strict refuses, balanced accepts
        let bal = Config { exact_tier: false, verifier: Verifier::Balanced };
        assert!(!served(&s[1], VERIFY, 0.05) && served(&s[1], bal, 0.05));
        assert_eq!(Verifier::Balanced.code(), "balanced");
    }

    #[test]
    fn sweep_is_monotone() {
        let pts = sweep(&sample(), VERIFY);
        for w in pts.windows(2) {
            assert!(w[0].hits <= w[1].hits && w[0].false_hits <= w[1].false_hits);
        }
    }
}
