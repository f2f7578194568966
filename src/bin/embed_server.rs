//! Native OpenAI-compatible embedding sidecar built from the filter's own `LocalEmbedder`.
//!
//! ```text
//! embed_server [--listen 127.0.0.1:8081] [--model-dir DIR] [--max-tokens N] [--threads N]
//!   POST /v1/embeddings  {"input": "text" | ["a", "b"], "model"?: "...", "encoding_format"?: "float"|"base64"}
//!        -> {"object":"list","data":[{"object":"embedding","index":0,"embedding":[...]}],"model":"...",
//!            "usage":{"prompt_tokens":N,"total_tokens":N}}
//!   GET  /health         -> {"status":"ok","model":"...","dimensions":384,"max_tokens":128}
//! ```
//! Without `--model-dir` the model embedded at build time is used (see build.rs).
use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use semantic_cache::core::embed::local::{LocalEmbedError, LocalEmbedder};
use semantic_cache::core::embed::model_meta::model_name;
use serde_json::{json, Value};
use tiny_http::{Header, Method, Response, Server};

const MAX_BODY: usize = 8 << 20;
const MAX_INPUTS: usize = 2048;

struct Args {
    listen: String,
    model_dir: Option<String>,
    max_tokens: Option<usize>,
    threads: usize,
    bench: Option<usize>,
}

fn usage() -> ! {
    eprintln!("usage: embed_server [--listen HOST:PORT] [--model-dir DIR] [--max-tokens N] [--threads N] [--bench N]\n  --bench N: read texts (one a line) from stdin, embed each N times, print one JSON line per text\n             {{tokens, p50_us, p95_us, load_ms}} and exit (no server)");
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args { listen: "127.0.0.1:8081".into(), model_dir: None, max_tokens: None, threads: 2, bench: None };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match k.as_str() {
            "--listen" => a.listen = val(),
            "--model-dir" => a.model_dir = Some(val()),
            "--max-tokens" => a.max_tokens = Some(val().parse().unwrap_or_else(|_| usage())),
            "--threads" => a.threads = val().parse::<usize>().unwrap_or_else(|_| usage()).max(1),
            "--bench" => a.bench = Some(val().parse::<usize>().unwrap_or_else(|_| usage()).max(1)),
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    a
}

fn load(a: &Args) -> Result<LocalEmbedder, String> {
    match &a.model_dir {
        None => match a.max_tokens {
            Some(n) => LocalEmbedder::embedded_with_max_tokens(n),
            None => LocalEmbedder::embedded(),
        }
        .map_err(|e| e.to_string()),
        Some(dir) => {
            let model = std::fs::read(format!("{dir}/model.onnx")).map_err(|e| format!("{dir}/model.onnx: {e}"))?;
            let tok =
                std::fs::read(format!("{dir}/tokenizer.json")).map_err(|e| format!("{dir}/tokenizer.json: {e}"))?;
            let name = model_name(std::path::Path::new(dir));
            LocalEmbedder::from_bytes_named(&model, &tok, a.max_tokens.unwrap_or(128), &name).map_err(|e| e.to_string())
        }
    }
}

fn main() {
    let args = parse_args();
    let t0 = Instant::now();
    let emb = match load(&args) {
        Ok(e) => Arc::new(e),
        Err(e) => {
            eprintln!("embed_server: cannot load model: {e}");
            std::process::exit(1);
        }
    };
    eprintln!(
        "embed_server: model {} ({} dims, max {} tokens) loaded in {} ms",
        emb.model_name(),
        emb.dimensions(),
        emb.max_tokens(),
        t0.elapsed().as_millis()
    );
    if let Some(n) = args.bench {
        bench(&emb, n, t0.elapsed().as_millis());
        return;
    }
    let server = match Server::http(&args.listen) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("embed_server: cannot listen on {}: {e}", args.listen);
            std::process::exit(1);
        }
    };
    eprintln!("embed_server: listening on {}", args.listen);
    let mut handles = Vec::new();
    for _ in 0..args.threads {
        let server = Arc::clone(&server);
        let emb = Arc::clone(&emb);
        handles.push(std::thread::spawn(move || {
            for req in server.incoming_requests() {
                handle(&emb, req);
            }
        }));
    }
    for h in handles {
        let _ = h.join();
    }
}

fn bench(emb: &LocalEmbedder, n: usize, load_ms: u128) {
    let mut line = String::new();
    while std::io::stdin().read_line(&mut line).map(|r| r > 0).unwrap_or(false) {
        let text = line.trim_end_matches(['\n', '\r']).to_string();
        line.clear();
        let tokens = emb.token_ids(&text).map(|i| i.len()).unwrap_or(0);
        let _ = emb.embed(&text); // warm-up
        let mut us: Vec<u128> = (0..n)
            .map(|_| {
                let t = Instant::now();
                let _ = emb.embed(&text);
                t.elapsed().as_micros()
            })
            .collect();
        us.sort_unstable();
        let pct = |p: usize| us[((us.len() - 1) * p) / 100];
        println!(
            "{}",
            json!({"tokens": tokens, "p50_us": pct(50) as u64, "p95_us": pct(95) as u64, "load_ms": load_ms as u64})
        );
    }
}

fn json_response(status: u16, body: &Value) -> Response<std::io::Cursor<Vec<u8>>> {
    let mut r = Response::from_data(body.to_string().into_bytes()).with_status_code(status);
    if let Ok(h) = Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]) {
        r = r.with_header(h);
    }
    r
}

fn error_body(kind: &str, msg: &str) -> Value {
    json!({"error": {"message": msg, "type": kind}})
}

fn handle(emb: &LocalEmbedder, mut req: tiny_http::Request) {
    let path = req.url().split('?').next().unwrap_or("").to_string();
    let resp = match (req.method(), path.as_str()) {
        (Method::Get, "/health") => json_response(
            200,
            &json!({"status": "ok", "model": emb.model_name(), "dimensions": emb.dimensions(), "max_tokens": emb.max_tokens()}),
        ),
        (Method::Post, "/v1/embeddings") | (Method::Post, "/embeddings") => {
            let mut body = Vec::new();
            let read = req.as_reader().take(MAX_BODY as u64 + 1).read_to_end(&mut body);
            match read {
                Err(e) => json_response(400, &error_body("invalid_request_error", &format!("read body: {e}"))),
                Ok(_) if body.len() > MAX_BODY => {
                    json_response(413, &error_body("invalid_request_error", "body too large"))
                }
                Ok(_) => match embeddings(emb, &body) {
                    Ok(v) => json_response(200, &v),
                    Err((status, msg)) => json_response(status, &error_body("invalid_request_error", &msg)),
                },
            }
        }
        _ => json_response(404, &error_body("not_found", "not found")),
    };
    let _ = req.respond(resp);
}

fn embeddings(emb: &LocalEmbedder, body: &[u8]) -> Result<Value, (u16, String)> {
    let v: Value = serde_json::from_slice(body).map_err(|e| (400, format!("invalid JSON: {e}")))?;
    let inputs: Vec<&str> = match v.get("input") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) if !a.is_empty() && a.len() <= MAX_INPUTS => a
            .iter()
            .map(|x| x.as_str().ok_or((400, "input array must hold strings".to_string())))
            .collect::<Result<_, _>>()?,
        Some(Value::Array(a)) if a.is_empty() => return Err((400, "input is empty".into())),
        Some(Value::Array(_)) => return Err((400, format!("at most {MAX_INPUTS} inputs"))),
        _ => return Err((400, "`input` must be a string or an array of strings".into())),
    };
    let base64 = match v.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => return Err((400, format!("unsupported encoding_format {other}"))),
    };
    if let Some(d) = v.get("dimensions").and_then(Value::as_u64) {
        if d as usize != emb.dimensions() {
            return Err((400, format!("this model has {} dimensions", emb.dimensions())));
        }
    }
    let mut data = Vec::with_capacity(inputs.len());
    let mut tokens = 0usize;
    for (i, text) in inputs.iter().enumerate() {
        let ids = emb.token_ids(text).map_err(err_status)?;
        tokens += ids.len();
        let e = emb.embed_ids(&ids).map_err(err_status)?;
        let embedding = if base64 {
            let bytes: Vec<u8> = e.iter().flat_map(|x| x.to_le_bytes()).collect();
            Value::String(base64::engine::general_purpose::STANDARD.encode(&bytes))
        } else {
            json!(e)
        };
        data.push(json!({"object": "embedding", "index": i, "embedding": embedding}));
    }
    Ok(json!({
        "object": "list",
        "data": data,
        "model": emb.model_name(),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
}

fn err_status(e: LocalEmbedError) -> (u16, String) {
    match e {
        LocalEmbedError::Tokenize(_) => (400, e.to_string()),
        _ => (500, e.to_string()),
    }
}
