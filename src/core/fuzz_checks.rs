//! What each fuzz target (fuzz/, `make fuzz`) checks on one input, here so that `cargo test`
//! replays the seed corpora and every input that ever failed (src/core/testdata/fuzz/) through
//! exactly the same code (src/core/fuzz_regressions.rs). Built for tests and with feature
//! `fuzzing` (the fuzz crate's); never part of the filter.
//!
//! A check panics when its property fails: that is how libFuzzer learns of a finding.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::rc::Rc;

use arbitrary::{Arbitrary, Unstructured};
use serde_json::json;

use crate::core::api::{self, ApiShape};
use crate::core::capture::{Capture, StoreRules};
use crate::core::decision::{decide, read_headers};
use crate::core::embed::bert_tokenizer::BertTokenizer;
use crate::core::embed::provider::{parse_response, EmbedError};
use crate::core::entry::{render_json, render_sse};
use crate::core::flow::{Command, Flow, Next, RequestMeta, Step};
use crate::core::key::{entry_key, partition_tag, PartitionInputs};
use crate::core::policy::{parse_policy, Policy};
use crate::core::redis::index::check_reply;
use crate::core::redis::resp::{
    self, parse_ft_info_dim, parse_hmget, parse_replies, parse_search_all, single_reply, RedisConn, Reply,
};
use crate::core::redis::store::check_store_reply;
use crate::core::request::{ChatRequest, RequestError};
use crate::core::sse::{SseEvent, SseParser, StreamAssembler};
use crate::core::verify::{canonical, Query, Strictness};

/// A target's check of one input.
pub type Check = fn(&[u8]);

/// Every target: its name (fuzz/fuzz_targets/<name>.rs, fuzz/seeds/<name>/) and its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("request", request),
    ("embed_response", embed_response),
    ("resp", resp_stream),
    ("sse", sse),
    ("capture", capture),
    ("policy", policy_json),
    ("headers", headers),
    ("entry", entry),
    ("verify", verify),
    ("tokenizer", tokenizer),
    ("flow", flow),
];

// ---------- shared inputs ----------

/// The request paths the filter parses, chosen by the fuzzer's selector byte. When a new API
/// shape (Anthropic, Gemini, Responses, embeddings) lands, add its path here and its parser to
/// [`parse_request`]: the `request` and `flow` targets then cover it.
pub const REQUEST_PATHS: &[&str] = &[
    "/v1/chat/completions",
    "/openai/deployments/gpt4o/chat/completions?api-version=2024-06-01",
    "/v1/chat/completions?x=1",
    "/openai/deployments//chat/completions",
    "/v1/embeddings",
    "/v1/messages",
    "/v1/responses",
    "/v1beta/models/gemini-1.5:generateContent",
    "/v1beta/models/gemini-1.5:streamGenerateContent?alt=sse",
    "/openai/deployments/emb/embeddings?api-version=2024-06-01",
];

pub fn request_path(selector: u8) -> &'static str {
    REQUEST_PATHS[usize::from(selector) % REQUEST_PATHS.len()]
}

/// What the flow does with a request body on `path` (`Flow::on_request_body`): the path's API
/// shape picks the parser.
pub fn parse_request(
    body: &[u8],
    path: &str,
    last_user_messages: usize,
    context_window: Option<usize>,
) -> Result<ChatRequest, RequestError> {
    let shape = ApiShape::detect(path).unwrap_or_default();
    api::parse_request(shape, body, path, last_user_messages, context_window)
}

/// Policies the stateful targets run under: remote provider racing the exact lookup, remote
/// serial, the in-filter provider, Redis with AUTH + SELECT (a preamble) and tenants, a rule with
/// its own settings and tiny body limits.
pub const POLICIES: &[&str] = &[
    r#"{"embedding":{"provider":"openai-compatible","url":"http://emb:9/v1/embeddings","model":"e","dimensions":2},"threshold":0.2}"#,
    r#"{"embedding":{"provider":"openai-compatible","url":"http://emb:9/v1/embeddings","model":"e","dimensions":2,"parallel":false},"threshold":0.3,"verify":"balanced"}"#,
    r#"{"embedding":{"provider":"local","dimensions":2},"threshold":0.5,"verify":"off","topK":3}"#,
    r#"{"embedding":{"provider":"azure-openai","url":"https://a.example/openai/deployments/e/embeddings?api-version=1","apiKey":"k","dimensions":3},"vectorStore":{"username":"u","password":"p","database":2},"partition":{"tenant":true,"route":true,"contextWindow":1},"embed":{"lastUserMessages":2}}"#,
    r#"{"embedding":{"provider":"openai-compatible","url":"http://emb:9/v1/embeddings","model":"e","dimensions":2},"verify":"strict","maxRequestBodyBytes":64,"maxResponseBodyBytes":256,"store":{"toolCalls":true,"maxTemperature":null},"rules":[{"name":"r","match":{"pathPrefix":"/v1/"},"threshold":0.9,"maxThreshold":1.0,"ttlSeconds":5}]}"#,
];

thread_local! {
    static PARSED: Vec<Rc<Policy>> = POLICIES
        .iter()
        .map(|p| Rc::new(parse_policy(p.as_bytes()).unwrap_or_else(|e| panic!("seed policy: {e}: {p}"))))
        .collect();
    static TOKENIZER: BertTokenizer<'static> =
        BertTokenizer::from_vocab_txt(include_str!("testdata/bert_uncased_vocab.txt")).expect("test vocabulary");
}

pub fn policy(selector: u8) -> Rc<Policy> {
    PARSED.with(|ps| Rc::clone(&ps[usize::from(selector) % ps.len()]))
}

/// A stream and its split into reads: byte 0 is the number `n` of chunk lengths that follow,
/// the next `n` bytes are the lengths (cycled; 0 = an empty read), the rest is the stream.
pub fn chunked(data: &[u8]) -> (&[u8], Vec<&[u8]>) {
    let Some((&n, rest)) = data.split_first() else { return (data, vec![data]) };
    let (cuts, stream) = rest.split_at(usize::from(n).min(rest.len()));
    let mut chunks = Vec::new();
    let mut left = stream;
    if !cuts.is_empty() {
        for &c in cuts.iter().cycle().take(4 * stream.len() + 8) {
            if left.is_empty() {
                break;
            }
            let (a, b) = left.split_at(usize::from(c).min(left.len()));
            chunks.push(a);
            left = b;
        }
    }
    chunks.push(left);
    (stream, chunks)
}

// ---------- one check per target ----------

/// Request bodies as the flow parses them: byte 0 picks the path ([`REQUEST_PATHS`]), byte 1 the
/// `lastUserMessages` / `contextWindow` settings, the rest is the body.
pub fn request(data: &[u8]) {
    let [sel, knobs, body @ ..] = data else { return };
    let path = request_path(*sel);
    let last_user = usize::from(knobs & 0x3);
    let window = (knobs & 0x4 != 0).then_some(usize::from(knobs >> 3));
    let Ok(chat) = parse_request(body, path, last_user, window) else { return };
    assert!(!chat.embed_text.is_empty(), "an accepted request has text to embed");
    // What the flow does next with an accepted request.
    let tag = partition_tag(&PartitionInputs {
        model: &chat.model,
        tenant: None,
        route: None,
        provider: None,
        user_key: "_default_",
        context: &chat.context,
        custom_key: None,
    });
    let _ = entry_key("semcache:", &tag, &canonical(&chat.embed_text));
}

/// Embedding provider responses (OpenAI / Azure / Mistral shape): bytes 0-1 the HTTP status,
/// byte 2 the expected dimensions, the rest the body.
pub fn embed_response(data: &[u8]) {
    let [s0, s1, dims, body @ ..] = data else { return };
    let status = u16::from_le_bytes([*s0, *s1]) % 600;
    let want = usize::from(*dims % 8);
    if let Ok(v) = parse_response(status, body, want) {
        assert!((200..300).contains(&status));
        assert_eq!(v.len(), want, "a vector of another size must be refused");
        assert!(v.iter().all(|x| x.is_finite()), "a non-finite component must be refused");
    }
}

/// RESP2 reply streams from Redis: any garbage, any split. Byte 0 picks the connection (none,
/// AUTH, AUTH + SELECT) and a seed policy, byte 1 a split point. The stream is parsed whole (as
/// the callout delivers it) and every reader of the flow and the root context runs on it; the
/// part before the split must decode to the same first frames or be reported incomplete.
pub fn resp_stream(data: &[u8]) {
    let [sel, split, bytes @ ..] = data else { return };
    let conn = match sel % 3 {
        0 => RedisConn::default(),
        1 => RedisConn { username: None, password: Some("p".into()), database: 0 },
        _ => RedisConn { username: Some("u".into()), password: Some("p".into()), database: 3 },
    };
    if let Ok(replies) = parse_replies(bytes) {
        for r in &replies {
            let _ = parse_search_all(r);
            let _ = parse_ft_info_dim(r);
            let _ = parse_hmget(r);
        }
        let at = usize::from(*split) * bytes.len() / 256;
        if let Ok(first) = parse_replies(&bytes[..at]) {
            assert!(first.len() <= replies.len());
            assert_eq!(&replies[..first.len()], &first[..], "a prefix must decode to the same frames");
        }
    }
    let _ = single_reply(&conn, bytes);
    let _ = check_store_reply(resp::preamble_len(&conn), Some(bytes));
    let _ = check_reply(&policy(*sel), Some(bytes));
}

fn sse_events(chunks: &[&[u8]]) -> Vec<SseEvent> {
    let mut p = SseParser::new();
    let mut out = Vec::new();
    for c in chunks {
        out.extend(p.push(c));
    }
    out.extend(p.finish());
    out
}

/// SSE streams in any chunking ([`chunked`]): pushed read by read they must give the same events
/// as the whole stream at once; reassembly must not panic.
pub fn sse(data: &[u8]) {
    let (stream, chunks) = chunked(data);
    let whole = sse_events(&[stream]);
    assert_eq!(whole, sse_events(&chunks), "chunking changed the events");
    let mut asm = StreamAssembler::new();
    for ev in &whole {
        if asm.push_event(ev).is_err() {
            break;
        }
    }
    let _ = asm.is_done();
    let _ = asm.finish();
}

/// A miss's upstream response captured read by read and judged for storing. Byte 0: flags
/// (stream request, SSE content type, tool calls allowed, status 500, 64-byte limit); then
/// [`chunked`]. What is stored must be a chat completion a hit can replay as JSON and as SSE.
pub fn capture(data: &[u8]) {
    let [flags, rest @ ..] = data else { return };
    let bit = |n: u8| flags & (1 << n) != 0;
    let (body, chunks) = chunked(rest);
    let max = if bit(4) { 64 } else { 1 << 20 };
    let mut cap = Capture::new(max, bit(0));
    for c in &chunks {
        cap.push(c);
    }
    assert_eq!(cap.is_truncated(), body.len() > max);
    let ctype = if bit(1) { "text/event-stream; charset=utf-8" } else { "application/json" };
    let status = if bit(3) { 500 } else { 200 };
    let rules = StoreRules { allow_tool_calls: bit(2) };
    if let Ok(stored) = cap.finish(status, ctype, &rules) {
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_slice(&stored.body).expect("stored body is JSON");
        assert!(v.is_object());
        if let Err(e) = render_sse(&stored.body, true) {
            panic!("stored body cannot be replayed: {e}: {}", String::from_utf8_lossy(&stored.body));
        }
    }
}

/// Policy JSON: refused with an error, or a policy whose lookups give sane settings.
pub fn policy_json(data: &[u8]) {
    let Ok(p) = parse_policy(data) else { return };
    for (method, path) in [("POST", "/v1/chat/completions"), ("GET", "/"), ("POST", "/v1/x/y")] {
        let (s, _rule) = p.settings_for(method, path, Some("route"));
        assert!(s.threshold.is_finite() && s.threshold >= 0.0, "threshold {}", s.threshold);
        assert!(s.threshold <= s.max_threshold, "threshold above maxThreshold");
        assert!(s.top_k >= 1);
    }
    assert!(p.embedding.dimensions > 0);
}

/// The request headers `read_headers` reads (ours, Fastly's and Cloudflare's), fuzzed by index.
const DIRECTIVE_HEADERS: [&str; 11] = [
    "cache-control",
    "x-semantic-distance",
    "x-semantic-threshold",
    "x-semantic-cache-key",
    "x-settings-overrides",
    "x-semantic-cache-skip",
    "cf-aig-skip-cache",
    "cf-skip-cache",
    "cf-aig-cache-ttl",
    "cf-cache-ttl",
    "cf-aig-cache-key",
];

/// Headers whose mere presence (with some value) may turn the request into a bypass.
const MAY_BYPASS: [&str; 5] =
    ["cache-control", "x-settings-overrides", "x-semantic-cache-skip", "cf-aig-skip-cache", "cf-skip-cache"];

#[derive(Arbitrary, Debug)]
struct HeaderInput<'a> {
    policy: u8,
    values: [Option<&'a str>; 11],
}

/// The request headers the filter interprets (Cache-Control, our distance and skip headers,
/// Fastly's and Cloudflare's) under each seed policy, with the vendor switches of that policy.
pub fn headers(data: &[u8]) {
    let Ok(i) = HeaderInput::arbitrary_take_rest(Unstructured::new(data)) else { return };
    let policy = policy(i.policy);
    let (s, _) = policy.settings_for("POST", "/v1/chat/completions", None);
    let value = |name: &str| DIRECTIVE_HEADERS.iter().position(|h| *h == name).and_then(|n| i.values[n]);
    let h = read_headers(&policy, &|name| value(name).map(str::to_string));
    let Ok(d) = decide(s, &h) else {
        assert!(MAY_BYPASS.iter().any(|n| value(n).is_some()) || !s.enabled, "bypass without a reason: {i:?}");
        return;
    };
    assert!((0.0..=s.max_threshold).contains(&d.threshold), "threshold {} beyond the operator's limit", d.threshold);
    assert!(d.ttl_secs > 0 && d.ttl_secs <= s.max_ttl_secs.max(s.ttl_secs), "ttl {}", d.ttl_secs);
    assert!(!d.user_key.is_empty());
    let tag = partition_tag(&PartitionInputs {
        model: "m",
        tenant: None,
        route: None,
        provider: None,
        user_key: &d.user_key,
        context: "",
        custom_key: d.exact_key.as_deref(),
    });
    assert!(tag.len() == 32 && tag.bytes().all(|b| b.is_ascii_hexdigit()));
}

/// Stored entries rendered for a hit: JSON byte for byte, and the SSE replay well-formed
/// whatever the stored JSON holds: every event one `data:` line of JSON (nothing injected),
/// ending with `[DONE]`. Byte 0 bit 0: include_usage.
pub fn entry(data: &[u8]) {
    let [flags, stored @ ..] = data else { return };
    assert_eq!(render_json(stored), stored);
    let Ok(sse) = render_sse(stored, flags & 1 == 1) else { return };
    let text = std::str::from_utf8(&sse).expect("SSE replay is UTF-8");
    let body = text.strip_suffix("\n\n").expect("ends with a blank line");
    let events: Vec<&str> = body.split("\n\n").collect();
    assert_eq!(events.last(), Some(&"data: [DONE]"));
    for ev in &events[..events.len() - 1] {
        let json = ev.strip_prefix("data: ").expect("every event is one data line");
        assert!(!json.contains('\n') && !json.contains('\r'), "an event spans lines: {ev:?}");
        let v: serde_json::Value = serde_json::from_str(json).expect("every event is JSON");
        assert_eq!(v["object"], "chat.completion.chunk");
    }
}

/// The verifier on arbitrary text: byte 0 bit 0 strict; then the query and candidates separated
/// by NUL. A prompt always agrees with itself.
pub fn verify(data: &[u8]) {
    let [strict, text @ ..] = data else { return };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let mut parts = text.split('\0');
    let query = parts.next().unwrap_or_default();
    let s = if strict & 1 == 1 { Strictness::Strict } else { Strictness::Balanced };
    let q = Query::with_strictness(query, s);
    if let Err(r) = q.verify(query) {
        panic!("prompt refused against itself ({}): {query:?}", r.code());
    }
    for c in parts.take(8) {
        let _ = q.verify(c);
    }
    // Not idempotent (the fuzzer found texts whose canonical form canonicalises further, e.g. a
    // `?` moved next to a contraction's expansion), which is harmless: the exact tier applies it
    // once to every request's text, so equal texts still get equal keys.
    let _ = canonical(query);
}

/// The in-filter model's WordPiece tokenizer on arbitrary prompt text (the unit tests' BERT
/// uncased vocabulary); byte 0 is the token cap.
pub fn tokenizer(data: &[u8]) {
    let [max, text @ ..] = data else { return };
    let Ok(text) = std::str::from_utf8(text) else { return };
    TOKENIZER.with(|t| {
        let ids = t.token_ids(text, usize::from(*max));
        assert!(ids.len() <= usize::from(*max));
        assert!(ids.iter().all(|&i| (i as usize) < t.vocab_size()));
    });
}

// ---------- the state machine ----------

/// A request: its headers and body first (mostly a cacheable chat request, so that the deep states
/// are reached), then any sequence of host events; rare selector values make the odd cases.
#[derive(Arbitrary, Debug)]
struct FlowInput {
    policy: u8,
    headers: Headers,
    body: Body,
    /// After the events, the host events of a plain miss that is stored (exact miss, embedding,
    /// KNN miss, 200 answer): what the flow does not expect by then it ignores.
    then_miss: bool,
    events: Vec<Event>,
}

#[derive(Arbitrary, Debug)]
struct Headers {
    /// 1: GET, 2: end of stream, 3: index DIM mismatch, 4: a path that is no chat endpoint.
    oddity: u8,
    path: u8,
    headers: Vec<(u8, String)>,
}

#[derive(Arbitrary, Debug)]
enum Event {
    RequestHeaders(Headers),
    RequestBody { path: u8, body: Body },
    BodyTooLarge,
    EmbedReply(Option<(u16, EmbedBody)>),
    Embedding(Option<Vector>),
    RedisReply { reply: Option<RedisBody>, now: u32 },
    ResponseHeaders { status: u8, sse: bool },
    ResponseBody { chunk: Chunk, eos: bool, now: u32 },
    Done,
}

#[derive(Arbitrary, Debug)]
enum Body {
    Chat {
        model: Option<String>,
        history: Vec<(u8, String)>,
        /// The last message's text (a user message unless `last_role` says otherwise).
        prompt: String,
        last_role: u8,
        stream: bool,
        include_usage: bool,
        n: Option<u8>,
        temperature: Option<u8>,
    },
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Vector {
    /// The policy's dimensions, from a seed.
    Fit(u8),
    Any(Vec<f32>),
}

#[derive(Arbitrary, Debug)]
enum EmbedBody {
    Vector(Vector),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum RedisBody {
    Hmget(Vec<Option<Value>>),
    Search(Vec<Doc>),
    Error(String),
    Raw(Vec<u8>),
}

/// A stored value: the seed completion (a renderable entry) or any bytes.
#[derive(Arbitrary, Debug)]
enum Value {
    Completion,
    Bytes(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Doc {
    key: String,
    fields: Vec<(u8, Value)>,
    distance: u8,
}

/// An upstream response chunk: all or part of a valid answer (JSON or SSE, as the response
/// headers said), or any bytes.
#[derive(Arbitrary, Debug)]
enum Chunk {
    /// Below 128 the whole answer, else its eighth number `n % 8`.
    Answer(u8),
    Raw(Vec<u8>),
}

const HEADERS: &[&str] = &[
    "content-length",
    "cache-control",
    "x-semantic-threshold",
    "x-semantic-cache-key",
    "x-settings-overrides",
    "x-semantic-cache-skip",
    "authorization",
    "api-key",
];
const ROLES: &[&str] = &["user", "system", "assistant", "developer", "tool", ""];
const FIELDS: &[&str] = &["body", "ctype", "created", "model", "prompt", "dist", "vec"];
const COMPLETION: &str = r#"{"id":"c1","object":"chat.completion","created":1,"model":"gpt","choices":[{"index":0,"message":{"role":"assistant","content":"Hi there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#;
const COMPLETION_SSE: &str = concat!(
    r#"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt","choices":[{"index":0,"delta":{"content":"Hi there"},"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
    "\n\ndata: [DONE]\n\n"
);
const STATUSES: &[u16] = &[200, 200, 200, 200, 500, 429, 201, 304, 0];

fn value(v: &Value) -> &[u8] {
    match v {
        Value::Completion => COMPLETION.as_bytes(),
        Value::Bytes(b) => b,
    }
}

fn vector(v: &Vector, dims: usize) -> Vec<f32> {
    match v {
        Vector::Fit(seed) => (0..dims).map(|i| f32::from(seed.wrapping_add(i as u8)) / 255.0 + 0.01).collect(),
        Vector::Any(v) => v.clone(),
    }
}

fn answer(sse: bool, part: u8) -> &'static [u8] {
    let a = if sse { COMPLETION_SSE } else { COMPLETION }.as_bytes();
    if part < 128 {
        return a;
    }
    let k = usize::from(part % 8);
    &a[k * a.len() / 8..(k + 1) * a.len() / 8]
}

fn bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

fn chat_body(b: &Body) -> Vec<u8> {
    match b {
        Body::Raw(r) => r.clone(),
        Body::Chat { model, history, prompt, last_role, stream, include_usage, n, temperature } => {
            let role = |r: u8| ROLES[usize::from(r) % ROLES.len()];
            let mut msgs: Vec<_> = history.iter().map(|(r, c)| json!({"role": role(*r), "content": c})).collect();
            msgs.push(json!({"role": if *last_role < 200 { "user" } else { role(*last_role) }, "content": prompt}));
            let mut v = json!({"messages": msgs, "stream": stream});
            if let Some(m) = model {
                v["model"] = json!(m);
            }
            if *include_usage {
                v["stream_options"] = json!({"include_usage": true});
            }
            if let Some(n) = n {
                v["n"] = json!(n);
            }
            if let Some(t) = temperature {
                v["temperature"] = json!(f64::from(*t) / 100.0);
            }
            v.to_string().into_bytes()
        }
    }
}

fn plain_miss() -> Vec<Event> {
    vec![
        Event::RedisReply { reply: Some(RedisBody::Hmget(vec![None, None, None, None])), now: 1 },
        Event::EmbedReply(Some((200, EmbedBody::Vector(Vector::Fit(1))))),
        Event::Embedding(Some(Vector::Fit(1))),
        Event::RedisReply { reply: Some(RedisBody::Search(Vec::new())), now: 1 },
        Event::ResponseHeaders { status: 0, sse: false },
        Event::ResponseBody { chunk: Chunk::Answer(0), eos: true, now: 2 },
    ]
}

fn request_headers(flow: &mut Flow, h: &Headers) -> Step {
    let lookup = |name: &str| {
        h.headers.iter().find(|(k, _)| HEADERS[usize::from(*k) % HEADERS.len()] == name).map(|(_, v)| v.clone())
    };
    let path = if h.oddity == 4 { request_path(h.path) } else { REQUEST_PATHS[usize::from(h.path) % 4] };
    let meta = RequestMeta {
        method: if h.oddity == 1 { "GET" } else { "POST" },
        path,
        route_name: Some("r"),
        cluster: Some("llm"),
        end_of_stream: h.oddity == 2,
        index_mismatch: h.oddity == 3,
        header: &lookup,
    };
    flow.on_request_headers(&meta)
}

/// The reply stream to the flow's single command: the preamble's replies, the reply, QUIT's.
fn redis_body(r: &RedisBody, preamble: usize) -> Vec<u8> {
    let mut out = b"+OK\r\n".repeat(preamble);
    match r {
        RedisBody::Raw(raw) => return raw.clone(),
        RedisBody::Error(e) => {
            out.push(b'-');
            out.extend(e.bytes().filter(|b| *b != b'\r' && *b != b'\n'));
            out.extend_from_slice(b"\r\n");
        }
        RedisBody::Hmget(fields) => {
            out.extend_from_slice(format!("*{}\r\n", fields.len()).as_bytes());
            for f in fields {
                match f {
                    Some(v) => bulk(&mut out, value(v)),
                    None => out.extend_from_slice(b"$-1\r\n"),
                }
            }
        }
        RedisBody::Search(docs) => {
            out.extend_from_slice(format!("*{}\r\n:{}\r\n", 1 + 2 * docs.len(), docs.len()).as_bytes());
            for d in docs {
                bulk(&mut out, d.key.as_bytes());
                out.extend_from_slice(format!("*{}\r\n", 2 * (d.fields.len() + 1)).as_bytes());
                bulk(&mut out, b"dist");
                bulk(&mut out, format!("{}", f32::from(d.distance) / 128.0).as_bytes());
                for (name, v) in &d.fields {
                    bulk(&mut out, FIELDS[usize::from(*name) % FIELDS.len()].as_bytes());
                    bulk(&mut out, value(v));
                }
            }
        }
    }
    out.extend_from_slice(b"+OK\r\n");
    out
}

/// Every bulk or simple string anywhere in a reply stream (what a hit may be rendered from).
fn strings(replies: &[Reply], out: &mut Vec<Vec<u8>>) {
    for r in replies {
        match r {
            Reply::Bulk(Some(b)) => out.push(b.clone()),
            Reply::Simple(s) => out.push(s.clone().into_bytes()),
            Reply::Array(Some(items)) => strings(items, out),
            _ => {}
        }
    }
}

/// A pipeline the flow sends: arrays of bulk strings, the last one QUIT.
fn check_pipeline(p: &[u8]) {
    let frames = parse_replies(p).unwrap_or_else(|e| panic!("pipeline is not RESP ({e}): {p:?}"));
    for f in &frames {
        let Reply::Array(Some(args)) = f else { panic!("command is not an array: {f:?}") };
        assert!(args.iter().all(|a| matches!(a, Reply::Bulk(Some(_)))), "command args are not bulk strings");
    }
    assert_eq!(frames.last(), Some(&Reply::Array(Some(vec![Reply::Bulk(Some(b"QUIT".to_vec()))]))));
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// The whole per-request state machine driven by a fuzzer-chosen sequence of host events with
/// fuzzed payloads (raw bytes, or built from structure so that the deep states are reached).
/// Besides never panicking, the flow must:
/// - answer locally only from a Redis reply, at most once, with a body rendered from a string
///   Redis sent (as stored, or its SSE replay): never a body of its own making;
/// - never store after a local answer, store at most once, only at the end of a MISS's response,
///   and store a JSON answer as the upstream sent it;
/// - only send well-formed RESP to Redis (arrays of bulk strings ending with QUIT).
pub fn flow(data: &[u8]) {
    flow_outcome(data);
}

/// [`flow`], telling whether the request was answered from the cache and whether it stored (so
/// that a test can show the corpus reaches both).
pub fn flow_outcome(data: &[u8]) -> (bool, bool) {
    match FlowInput::arbitrary_take_rest(Unstructured::new(data)) {
        Ok(input) => run_flow(input),
        Err(_) => (false, false),
    }
}

fn run_flow(input: FlowInput) -> (bool, bool) {
    let policy = policy(input.policy);
    let preamble = usize::from(policy.vector_store.password.is_some()) + usize::from(policy.vector_store.database != 0);
    let dims = policy.embedding.dimensions;
    let mut flow = Flow::new(policy);
    let mut from_redis: Vec<Vec<u8>> = Vec::new();
    let (mut answered, mut stored) = (false, false);
    let mut captured: Option<Vec<u8>> = None;
    let (mut json_response, mut sse_response) = (false, false);
    let start = [Event::RequestHeaders(input.headers), Event::RequestBody { path: 0, body: input.body }];
    let tail = if input.then_miss { plain_miss() } else { Vec::new() };
    for ev in start.iter().chain(input.events.iter().take(32)).chain(tail.iter()) {
        let mut redis_event = false;
        let mut end_of_miss = false;
        let step: Step = match ev {
            Event::RequestHeaders(h) => request_headers(&mut flow, h),
            Event::RequestBody { path, body } => flow.on_request_body(&chat_body(body), request_path(*path)),
            Event::BodyTooLarge => flow.on_body_too_large(),
            Event::EmbedReply(reply) => {
                let body = reply.as_ref().map(|(status, b)| {
                    let bytes = match b {
                        EmbedBody::Raw(r) => r.clone(),
                        EmbedBody::Vector(v) => {
                            json!({"data": [{"embedding": vector(v, dims)}]}).to_string().into_bytes()
                        }
                    };
                    // Mostly 200: the error statuses are one branch.
                    (if *status < 0xf000 { 200 } else { *status % 600 }, bytes)
                });
                flow.on_embed_reply(body.as_ref().map(|(s, b)| (*s, b.as_slice())))
            }
            Event::Embedding(v) => {
                flow.on_embedding(v.as_ref().map(|v| vector(v, dims)).ok_or_else(|| EmbedError::Call("fuzzed".into())))
            }
            Event::RedisReply { reply, now } => {
                redis_event = true;
                let bytes = reply.as_ref().map(|r| redis_body(r, preamble));
                // The flow reads a reply stream whole: a hit can only come from one that decodes.
                if let Some(Ok(r)) = bytes.as_deref().map(parse_replies) {
                    strings(&r, &mut from_redis);
                }
                flow.on_redis_reply(bytes.as_deref(), u64::from(*now))
            }
            Event::ResponseHeaders { status, sse } => {
                let ctype = if *sse { "text/event-stream" } else { "application/json" };
                let step = flow.on_response_headers(STATUSES[usize::from(*status) % STATUSES.len()], ctype);
                if flow.is_capturing() && captured.is_none() {
                    captured = Some(Vec::new());
                    json_response = !*sse;
                    sse_response = *sse;
                }
                step
            }
            Event::ResponseBody { chunk, eos, now } => {
                let bytes = match chunk {
                    Chunk::Answer(part) => answer(sse_response, *part),
                    Chunk::Raw(r) => r.as_slice(),
                };
                if flow.is_capturing() {
                    if let Some(c) = captured.as_mut() {
                        c.extend_from_slice(bytes);
                    }
                    end_of_miss = *eos && flow.status() == "MISS";
                }
                flow.on_response_body(bytes, *eos, u64::from(*now))
            }
            Event::Done => {
                // The stream ends: a capture still running is judged as it stands (may store).
                end_of_miss = flow.is_capturing() && flow.status() == "MISS";
                flow.on_done(0)
            }
        };
        for cmd in &step.cmds {
            match cmd {
                Command::Respond { status, body, .. } => {
                    assert!(redis_event, "local answer from a non-Redis event: {ev:?}");
                    assert!(!answered, "answered twice");
                    assert_eq!(*status, 200);
                    assert_eq!(step.next, Next::Wait, "a local answer must keep the request paused");
                    let rendered = from_redis.iter().any(|s| {
                        render_json(s) == *body
                            || render_sse(s, true).is_ok_and(|r| r == *body)
                            || render_sse(s, false).is_ok_and(|r| r == *body)
                    });
                    assert!(rendered, "answer not rendered from a stored entry: {:?}", String::from_utf8_lossy(body));
                    answered = true;
                }
                Command::Store(p) => {
                    assert!(!answered, "stored after a local answer");
                    assert!(!stored, "stored twice");
                    assert!(end_of_miss, "store outside the end of a MISS's response: {ev:?}");
                    check_pipeline(p);
                    if json_response {
                        let c = captured.as_deref().unwrap_or_default();
                        assert!(contains(p, c), "a JSON answer is stored other than the upstream sent it");
                    }
                    stored = true;
                }
                Command::Redis(p) => check_pipeline(p),
                _ => {}
            }
        }
    }
    (answered, stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scenarios the flow target must reach: a miss stored, and a hit answered from it.
    #[test]
    fn flow_scenarios_reach_a_store_and_a_hit() {
        let chat = || Body::Chat {
            model: Some("gpt".into()),
            history: Vec::new(),
            prompt: "What is the capital of France?".into(),
            last_role: 0,
            stream: false,
            include_usage: false,
            n: None,
            temperature: None,
        };
        let headers = || Headers { oddity: 0, path: 0, headers: Vec::new() };
        for policy in 0..POLICIES.len() as u8 {
            let tail = FlowInput { policy, headers: headers(), body: chat(), then_miss: true, events: Vec::new() };
            assert_eq!(run_flow(tail), (false, true), "policy {policy}");
        }
        let miss = FlowInput {
            policy: 0,
            headers: headers(),
            body: chat(),
            then_miss: false,
            events: vec![
                Event::RedisReply { reply: Some(RedisBody::Hmget(vec![None, None, None, None])), now: 1 },
                Event::EmbedReply(Some((200, EmbedBody::Vector(Vector::Fit(7))))),
                Event::RedisReply { reply: Some(RedisBody::Search(Vec::new())), now: 1 },
                Event::ResponseHeaders { status: 0, sse: false },
                Event::ResponseBody { chunk: Chunk::Answer(0), eos: true, now: 2 },
            ],
        };
        assert_eq!(run_flow(miss), (false, true));
        let hit = FlowInput {
            policy: 0,
            headers: headers(),
            body: chat(),
            then_miss: false,
            events: vec![Event::RedisReply {
                reply: Some(RedisBody::Hmget(vec![Some(Value::Completion), None, None, None])),
                now: 1,
            }],
        };
        assert_eq!(run_flow(hit), (true, false));
    }
}
