//! Threshold calibration from labelled pairs, with the filter's own embedder, request parsing,
//! canonical form and verifier (so the numbers transfer to the filter).
//!
//! ```text
//! calibrate dump --pairs F.jsonl [--pairs G.jsonl ...] [EMBEDDER] [READING] [--out FILE]
//!     one JSON line per pair: id, category, lang, route, same_answer, distance (1 - cos of the
//!     embedded texts), context_equal (same partition context), exact_equal (same normalised text),
//!     canonical_equal (canonical(a) == canonical(b)), verifier (null or the refusal code with verify:
//!     strict, the default), verifier_balanced (the same with verify: balanced), bypass
//! calibrate --pairs F.jsonl [...] --target-fh 0.01 [--route R] [--json] [EMBEDDER] [READING]
//!     the threshold with the most hits at that false-hit rate, per configuration (embedding threshold
//!     alone, + canonical exact tier, + verifier, + both, + exact tier and verify: balanced), and a policy
//!     rule snippet (`threshold`, `verify`)
//! EMBEDDER: --provider local|minilm|openai|azure|mistral (default local: the static table of the default
//!           build, as envoy/policies/local.json; minilm: the transformer of envoy/policies/local-minilm.json)
//!           --url URL --api-key-env VAR --model M [--dimensions N] [--timeout-ms MS]   (providers)
//!           [--max-tokens N]                                                            (local, minilm)
//! READING:  --last-user-messages N (default 1) --context-window N|all (default all): as the policy's
//!           embed.lastUserMessages and partition.contextWindow, for pairs of whole conversations
//! ```
//! Pairs: JSONL, `a`/`b` (or `prompt_a`/`prompt_b`) as a string or a list of chat messages, `a` the
//! cached request and `b` the new one; `same_answer` (or `should_hit`, also "yes"/"no"); optional
//! `id`, `category`, `route`, `lang`.
#[path = "calibrate/embedders.rs"]
mod embedders;

use std::io::Write;

use embedders::{distance, EmbedArgs, Embedder, Kind};
use semantic_cache::core::calibration::pairs::{as_request, read_pairs, Pair, ReadOpts};
use semantic_cache::core::calibration::{best_for_target, readable_threshold, Choice, Config, Scored, Verifier};
use semantic_cache::core::verify::{canonical, verify_with, Strictness};
use serde_json::{json, Value};

const USAGE: &str = "usage:
  calibrate dump --pairs F.jsonl [--pairs G.jsonl] [--out FILE] [EMBEDDER] [READING]
  calibrate --pairs F.jsonl [--pairs G.jsonl] --target-fh 0.01 [--route R] [--json] [EMBEDDER] [READING]
EMBEDDER: --provider local|minilm|openai|azure|mistral  --url URL --api-key-env VAR --model M
          --dimensions N --timeout-ms MS --max-tokens N (local = static table, minilm)
READING:  --last-user-messages N (default 1)  --context-window N|all (default all)";

struct Args {
    dump: bool,
    pairs: Vec<String>,
    out: Option<String>,
    target_fh: Option<f64>,
    route: Option<String>,
    json: bool,
    kind: Kind,
    embed: EmbedArgs,
    read: ReadOpts,
}

fn parse_args(argv: &[String]) -> Result<Args, String> {
    let mut a = Args {
        dump: false,
        pairs: Vec::new(),
        out: None,
        target_fh: None,
        route: None,
        json: false,
        kind: Kind::Static,
        embed: EmbedArgs { timeout_ms: 30_000, ..EmbedArgs::default() },
        read: ReadOpts { last_user_messages: 1, context_window: None },
    };
    let mut it = argv.iter();
    if argv.first().map(String::as_str) == Some("dump") {
        a.dump = true;
        it.next();
    }
    while let Some(k) = it.next() {
        let mut val = || it.next().cloned().ok_or_else(|| format!("{k} needs a value"));
        let num = |s: String| s.parse::<usize>().map_err(|_| format!("{k}: not a number: {s}"));
        match k.as_str() {
            "--pairs" => a.pairs.push(val()?),
            "--out" => a.out = Some(val()?),
            "--target-fh" => {
                let v = val()?;
                let t: f64 = v.parse().map_err(|_| format!("--target-fh: not a number: {v}"))?;
                if !(0.0..=1.0).contains(&t) {
                    return Err("--target-fh is a rate between 0 and 1 (0.01 = 1%)".into());
                }
                a.target_fh = Some(t);
            }
            "--route" => a.route = Some(val()?),
            "--json" => a.json = true,
            "--provider" => {
                let v = val()?;
                a.kind = Kind::parse(&v).ok_or_else(|| format!("unknown provider {v}"))?;
            }
            "--url" => a.embed.url = Some(val()?),
            "--api-key-env" => a.embed.api_key_env = Some(val()?),
            "--model" => a.embed.model = Some(val()?),
            "--dimensions" => a.embed.dimensions = Some(num(val()?)?),
            "--max-tokens" => a.embed.max_tokens = Some(num(val()?)?),
            "--timeout-ms" => a.embed.timeout_ms = num(val()?)? as u64,
            "--last-user-messages" => a.read.last_user_messages = num(val()?)?.max(1),
            "--context-window" => {
                let v = val()?;
                a.read.context_window = if v == "all" { None } else { Some(num(v)?) };
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.pairs.is_empty() {
        return Err("at least one --pairs file is needed".into());
    }
    if !a.dump && a.target_fh.is_none() {
        return Err("--target-fh is needed (or use `calibrate dump`)".into());
    }
    Ok(a)
}

/// Everything measured for one pair.
struct Measured {
    pair: Pair,
    distance: Option<f64>,
    context_equal: bool,
    exact_equal: bool,
    canonical_equal: bool,
    /// Refusal code of the verifier with `verify: strict` (the default), `None` = accepted.
    verifier: Option<&'static str>,
    /// The same with `verify: balanced`.
    verifier_balanced: Option<&'static str>,
    bypass: Option<&'static str>,
}

impl Measured {
    fn scored(&self) -> Scored {
        Scored {
            should_hit: self.pair.should_hit,
            distance: if self.context_equal && self.bypass.is_none() { self.distance } else { None },
            exact_equal: self.exact_equal,
            canonical_equal: self.canonical_equal,
            verified_strict: self.verifier.is_none(),
            verified_balanced: self.verifier_balanced.is_none(),
        }
    }

    fn row(&self) -> Value {
        json!({
            "id": self.pair.id, "category": self.pair.category, "lang": self.pair.lang,
            "route": self.pair.route, "same_answer": self.pair.should_hit,
            "distance": self.distance, "context_equal": self.context_equal, "exact_equal": self.exact_equal,
            "canonical_equal": self.canonical_equal, "verifier": self.verifier,
            "verifier_balanced": self.verifier_balanced, "bypass": self.bypass,
        })
    }
}

fn measure(p: Pair, emb: &mut Embedder, read: ReadOpts) -> Result<Measured, String> {
    let (ra, rb) = match (as_request(&p.a, read), as_request(&p.b, read)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(r), _) | (_, Err(r)) => {
            return Ok(Measured {
                pair: p,
                distance: None,
                context_equal: false,
                exact_equal: false,
                canonical_equal: false,
                verifier: None,
                verifier_balanced: None,
                bypass: Some(r),
            })
        }
    };
    let va = emb.embed(&ra.embed_text).map_err(|e| format!("{}: embedding a: {e}", p.id))?;
    let vb = emb.embed(&rb.embed_text).map_err(|e| format!("{}: embedding b: {e}", p.id))?;
    // `b` is the new request, `a` the cached candidate.
    let check = |s| verify_with(&rb.embed_text, &ra.embed_text, s).err().map(|r| r.code());
    Ok(Measured {
        distance: Some(distance(&va, &vb)),
        context_equal: ra.context == rb.context,
        exact_equal: ra.embed_text == rb.embed_text,
        canonical_equal: canonical(&ra.embed_text) == canonical(&rb.embed_text),
        verifier: check(Strictness::Strict),
        verifier_balanced: check(Strictness::Balanced),
        bypass: None,
        pair: p,
    })
}

fn load(a: &Args) -> Result<Vec<Pair>, String> {
    let mut all = Vec::new();
    for f in &a.pairs {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{f}: {e}"))?;
        all.extend(read_pairs(f, &text).map_err(|e| e.to_string())?);
    }
    if let Some(r) = &a.route {
        all.retain(|p| p.route.as_deref() == Some(r.as_str()));
    }
    if all.is_empty() {
        return Err("no pairs (check --pairs and --route)".into());
    }
    Ok(all)
}

fn pct(n: usize, d: usize) -> String {
    if d == 0 {
        "-".into()
    } else {
        format!("{:.1}% ({n}/{d})", 100.0 * n as f64 / d as f64)
    }
}

fn run(a: Args) -> Result<(), String> {
    let pairs = load(&a)?;
    let mut emb = embedders::open(a.kind, &a.embed)?;
    let mut measured = Vec::with_capacity(pairs.len());
    for p in pairs {
        measured.push(measure(p, &mut emb, a.read)?);
    }
    if a.dump {
        let mut out: Box<dyn Write> = match &a.out {
            Some(f) => Box::new(std::fs::File::create(f).map_err(|e| format!("{f}: {e}"))?),
            None => Box::new(std::io::stdout().lock()),
        };
        for m in &measured {
            writeln!(out, "{}", m.row()).map_err(|e| e.to_string())?;
        }
        eprintln!("calibrate: {} pairs, {} embeddings with {}", measured.len(), emb.calls, emb.name());
        return Ok(());
    }
    let target = a.target_fh.unwrap_or(0.01);
    let scored: Vec<Scored> = measured.iter().map(Measured::scored).collect();
    let rows: Vec<(Config, Choice, f64)> = Config::ALL
        .iter()
        .map(|&c| {
            let ch = best_for_target(&scored, c, target);
            let t = readable_threshold(&scored, c, &ch);
            (c, ch, t)
        })
        .collect();
    // The filter always has the exact tier: choose among the verifier settings the one with the most hits
    // within the target; on a tie the stricter one (it also guards against trap kinds this file lacks).
    let order = [Verifier::Strict, Verifier::Balanced, Verifier::Off];
    let mut chosen: Option<&(Config, Choice, f64)> = None;
    for v in order {
        if let Some(r) = rows.iter().find(|(c, ..)| c.exact_tier && c.verifier == v) {
            let within = r.1.point.fh_rate() <= target + 1e-12;
            let better = match chosen {
                None => true,
                Some(b) => within && (b.1.point.fh_rate() > target + 1e-12 || r.1.point.hits > b.1.point.hits),
            };
            if better {
                chosen = Some(r);
            }
        }
    }
    let Some(chosen) = chosen else { return Err("no configuration".into()) };
    let name = a.route.clone().unwrap_or_else(|| "calibrated".into());
    let matcher = match &a.route {
        Some(r) => json!({"routeName": r}),
        None => json!({"pathPrefix": "/"}),
    };
    let snippet = json!({"rules": [{"name": name, "match": matcher, "threshold": chosen.2,
        "verify": chosen.0.verifier.code()}]});
    let positives = scored.iter().filter(|s| s.should_hit).count();
    if a.json {
        let configs: Vec<Value> = rows
            .iter()
            .map(|(c, ch, t)| {
                json!({"config": c.label(), "exact_tier": c.exact_tier, "verify": c.verifier.code(), "threshold": t,
                    "hits": ch.point.hits, "positives": ch.point.positives, "false_hits": ch.point.false_hits,
                    "traps": ch.point.traps, "hit_rate": ch.point.hit_rate(), "fh_rate": ch.point.fh_rate(),
                    "limit": ch.limit})
            })
            .collect();
        let out = json!({"embedder": emb.name(), "pairs": scored.len(), "positives": positives,
            "traps": scored.len() - positives, "target_fh": target, "route": a.route, "configs": configs,
            "snippet": snippet});
        println!("{out}");
        return Ok(());
    }
    println!(
        "calibrate: {} pairs ({} should-hit, {} must-not-hit), embedder {}, route {}",
        scored.len(),
        positives,
        scored.len() - positives,
        emb.name(),
        a.route.as_deref().unwrap_or("(all)")
    );
    println!("target false-hit rate <= {:.2}%", target * 100.0);
    println!(
        "{:<36} {:>10}  {:<18} {:<18} same result up to",
        "configuration", "threshold", "hit rate", "false-hit rate"
    );
    for (c, ch, t) in &rows {
        let lim = if ch.point.fh_rate() > target + 1e-12 {
            // traps at distance 0 (a bag-of-words embedder cannot see word order): no threshold reaches it
            "target unreachable".to_string()
        } else {
            ch.limit.map_or("(any)".to_string(), |l| format!("< {l:.4}"))
        };
        println!(
            "{:<36} {:>10.4}  {:<18} {:<18} {}",
            c.label(),
            t,
            pct(ch.point.hits, ch.point.positives),
            pct(ch.point.false_hits, ch.point.traps),
            lim
        );
    }
    println!(
        "chosen: {} (threshold {}, hit rate {}, false-hit rate {})",
        chosen.0.label(),
        chosen.2,
        pct(chosen.1.point.hits, chosen.1.point.positives),
        pct(chosen.1.point.false_hits, chosen.1.point.traps)
    );
    println!("policy rule snippet:");
    println!("{snippet}");
    println!("(picked on these pairs: confirm on traffic of your own before you loosen it further)");
    Ok(())
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&argv) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("calibrate: {e}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2)
        }
    };
    if let Err(e) = run(args) {
        eprintln!("calibrate: {e}");
        std::process::exit(1)
    }
}
