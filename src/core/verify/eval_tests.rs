//! Checks against labelled pair files (JSONL: a, b, category, same_answer). The files are not part of
//! the repository: tests skip when they are absent. `VERIFY_PAIRS` (colon-separated paths) adds files.
//! Dev report: `cargo test --lib verify::eval_tests::report -- --ignored --nocapture`.
use std::collections::BTreeMap;

use super::{canonical, verify, verify_with, Strictness};

const FOW_PAIRS: &str = ".local/venv/lib/python3.11/site-packages/fow_cache/data/pairs.jsonl";

struct Pair {
    a: String,
    b: String,
    category: String,
    same: bool,
}

fn pair_files() -> Vec<String> {
    let mut files = vec![format!("{}/{}", env!("CARGO_MANIFEST_DIR"), FOW_PAIRS)];
    if let Ok(extra) = std::env::var("VERIFY_PAIRS") {
        files.extend(extra.split(':').filter(|s| !s.is_empty()).map(str::to_string));
    }
    files
}

fn load(path: &str) -> Option<Vec<Pair>> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let (Some(a), Some(b)) = (v["a"].as_str(), v["b"].as_str()) else { continue };
        out.push(Pair {
            a: a.to_string(),
            b: b.to_string(),
            category: match v["style"].as_str() {
                Some(style) => format!("{}/{}", v["category"].as_str().unwrap_or("?"), style),
                None => v["category"].as_str().unwrap_or("?").to_string(),
            },
            same: v["same_answer"].as_bool().unwrap_or(false),
        });
    }
    Some(out)
}

#[test]
fn canonical_never_merges_a_must_not_hit_pair() {
    for path in pair_files() {
        let Some(pairs) = load(&path) else { continue };
        for p in pairs.iter().filter(|p| !p.same) {
            assert_ne!(canonical(&p.a), canonical(&p.b), "{path}: {:?} / {:?}", p.a, p.b);
        }
    }
}

#[test]
fn verify_is_symmetric_on_labelled_pairs() {
    for path in pair_files() {
        let Some(pairs) = load(&path) else { continue };
        for p in &pairs {
            for s in Strictness::ALL {
                assert_eq!(
                    verify_with(&p.a, &p.b, s).is_ok(),
                    verify_with(&p.b, &p.a, s).is_ok(),
                    "{:?} / {:?}",
                    p.a,
                    p.b
                );
            }
        }
    }
}

#[test]
#[ignore = "dev report over labelled pair files"]
fn report() {
    let verbose = std::env::var("VERIFY_VERBOSE").is_ok();
    for path in pair_files() {
        let Some(pairs) = load(&path) else {
            println!("(skipped, not found: {path})");
            continue;
        };
        println!("== {path}");
        // category -> (total, served, canonical-equal)
        let mut stats: BTreeMap<(bool, String), (usize, usize, usize)> = BTreeMap::new();
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        let mut misses = Vec::new();
        let strictness =
            std::env::var("VERIFY_STRICTNESS").ok().and_then(|s| Strictness::from_code(&s)).unwrap_or_default();
        println!("  strictness {}", strictness.code());
        for p in &pairs {
            let r = verify_with(&p.a, &p.b, strictness);
            let e = stats.entry((p.same, p.category.clone())).or_default();
            e.0 += 1;
            e.1 += usize::from(r.is_ok());
            e.2 += usize::from(canonical(&p.a) == canonical(&p.b));
            if let Err(x) = r {
                *reasons.entry(x.code()).or_default() += 1;
            }
            if r.is_ok() != p.same {
                misses.push(format!(
                    "  {:<22} {:<13} {:?} | {:?}",
                    p.category,
                    r.err().map_or("PASSED", |x| x.code()),
                    p.a,
                    p.b
                ));
            }
        }
        let (mut pos, mut pos_ok, mut neg, mut neg_ok) = (0, 0, 0, 0);
        for ((same, cat), (n, ok, canon)) in &stats {
            if *same {
                pos += n;
                pos_ok += ok;
                println!(
                    "  should-hit  {cat:<22} served {ok:>3}/{n:<3} ({:.0}%)  canonical-equal {canon}",
                    100.0 * *ok as f64 / *n as f64
                );
            } else {
                neg += n;
                neg_ok += ok;
                println!(
                    "  must-not    {cat:<22} refused {:>3}/{n:<3} ({:.0}%)",
                    n - ok,
                    100.0 * (n - ok) as f64 / *n as f64
                );
            }
        }
        println!(
            "  TOTAL should-hit served {pos_ok}/{pos} ({:.1}%), must-not-hit refused {}/{neg} ({:.1}%)",
            100.0 * pos_ok as f64 / pos.max(1) as f64,
            neg - neg_ok,
            100.0 * (neg - neg_ok) as f64 / neg.max(1) as f64
        );
        println!("  refusals by reason: {reasons:?}");
        if verbose {
            for m in &misses {
                println!("{m}");
            }
        }
    }
}

#[test]
#[ignore = "dev timing over labelled pair files (build with --release for real numbers)"]
fn timing() {
    for path in pair_files() {
        let Some(pairs) = load(&path) else { continue };
        let _ = verify("warm", "up");
        let start = std::time::Instant::now();
        let rounds = 20;
        for _ in 0..rounds {
            for p in &pairs {
                let _ = std::hint::black_box(verify(&p.a, &p.b));
            }
        }
        let per = start.elapsed() / (rounds * pairs.len()) as u32;
        println!("{path}: {per:?} per verify ({} pairs)", pairs.len());
    }
    let body = "please review the following paragraph about the history of the city and its rivers. ".repeat(400);
    let (a, b) =
        (format!("{body} Is it safe to swim there in July?"), format!("{body} Is it OK to swim there in July?"));
    let start = std::time::Instant::now();
    let _ = std::hint::black_box(verify(&a, &b));
    println!("long prompt ({} chars): {:?}", a.len(), start.elapsed());
}

#[test]
#[ignore = "dev: phase timing"]
fn timing_phases() {
    use super::{checks, profile::Profile, tokens::tokenize};
    let body = "please review the following paragraph about the history of the city and its rivers. ".repeat(400);
    let (a, b) =
        (format!("{body} Is it safe to swim there in July?"), format!("{body} Is it OK to swim there in July?"));
    let _ = verify("warm", "up");
    let t = std::time::Instant::now();
    let _ = canonical(&a);
    println!("canonical {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let _ = tokenize(&a);
    println!("tokenize {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let pa = Profile::new(&a);
    let pb = Profile::new(&b);
    println!("profiles {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let _ = checks::hard(&pa, &pb, Strictness::Strict);
    println!("hard {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let _ = checks::order(&pa, &pb);
    println!("order {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let _ = checks::minimal_edit(&pa, &pb, Strictness::Strict);
    println!("minimal {:?}", t.elapsed());
}
