//! Native tool over the static table compiled into this build (src/core/embed/static_model.rs), for the quality
//! and speed benchmarks:
//!   static_embed --dump [--max-tokens N]    stdin: one text a line (JSON strings); stdout: one JSON line
//!                                           {"ids": [...], "vector": [...]} per text (vector null if degenerate)
//!   static_embed --bench N [--max-tokens N] stdin: one text a line (JSON strings); each embedded N times;
//!                                           stdout: {"tokens", "p50_us", "p95_us", "load_ms"} per text
use std::io::{BufRead, Write};
use std::time::Instant;

use semantic_cache::core::embed::static_model::StaticEmbedder;

fn usage() -> ! {
    eprintln!(
        "usage: static_embed (--dump | --bench N) [--max-tokens N]  (texts as JSON strings, one a line, on stdin)"
    );
    std::process::exit(2)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut dump, mut bench, mut max_tokens) = (false, None, 128usize);
    while let Some(a) = args.next() {
        let mut num = || args.next().and_then(|v| v.parse::<usize>().ok()).unwrap_or_else(|| usage());
        match a.as_str() {
            "--dump" => dump = true,
            "--bench" => bench = Some(num().max(1)),
            "--max-tokens" => max_tokens = num(),
            _ => usage(),
        }
    }
    if !dump && bench.is_none() {
        usage();
    }
    let t0 = Instant::now();
    let emb = match StaticEmbedder::embedded(max_tokens) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("static_embed: {e}");
            std::process::exit(1)
        }
    };
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Ok(text) = serde_json::from_str::<String>(&line) else {
            eprintln!("static_embed: skipping a line that is not a JSON string");
            continue;
        };
        let row = if let Some(n) = bench {
            let mut us: Vec<f64> = (0..n)
                .map(|_| {
                    let t = Instant::now();
                    let v = emb.embed(&text);
                    std::hint::black_box(&v);
                    t.elapsed().as_secs_f64() * 1e6
                })
                .collect();
            us.sort_by(f64::total_cmp);
            let q = |p: f64| us[((us.len() - 1) as f64 * p).round() as usize];
            serde_json::json!({"tokens": emb.token_ids(&text).len(), "p50_us": q(0.5), "p95_us": q(0.95),
                               "load_ms": load_ms})
        } else {
            serde_json::json!({"ids": emb.token_ids(&text), "vector": emb.embed(&text).ok()})
        };
        if writeln!(out, "{row}").is_err() {
            break;
        }
    }
}
