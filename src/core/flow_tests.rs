//! Drives `Flow` through whole requests with recorded Redis and provider replies.

use std::rc::Rc;

use super::*;
use crate::core::headers::{DISTANCE_HEADER, MATCH_HEADER, STATUS_HEADER};
use crate::core::policy::parse_policy;

fn policy(extra: serde_json::Value) -> Rc<Policy> {
    let mut v = serde_json::json!({
        "embedding": {"provider": "openai-compatible", "url": "http://emb:9/v1/embeddings", "model": "e", "dimensions": 2},
        "threshold": 0.2, "ttlSeconds": 60
    });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, val) in e {
            o.insert(k.clone(), val.clone());
        }
    }
    Rc::new(parse_policy(v.to_string().as_bytes()).expect("valid policy"))
}

fn headers<'a>(method: &'a str, path: &'a str, h: &'a dyn Fn(&str) -> Option<String>) -> RequestMeta<'a> {
    RequestMeta { method, path, route_name: None, end_of_stream: false, index_mismatch: false, header: h }
}

const PATH: &str = "/v1/chat/completions";

fn body(prompt: &str, extra: serde_json::Value) -> Vec<u8> {
    let mut v = serde_json::json!({"model": "gpt", "messages": [{"role": "user", "content": prompt}]});
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, val) in e {
            o.insert(k.clone(), val.clone());
        }
    }
    v.to_string().into_bytes()
}

/// Replies as Redis would send them to our pipeline: one reply, then QUIT's +OK.
fn redis(reply: &str) -> Vec<u8> {
    format!("{reply}+OK\r\n").into_bytes()
}

const NIL4: &str = "*4\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n";
const EMBED_OK: &[u8] = br#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.6,0.8]}]}"#;
const COMPLETION: &str = r#"{"id":"c1","object":"chat.completion","created":1,"model":"gpt","choices":[{"index":0,"message":{"role":"assistant","content":"Hi there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#;

fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

fn search_reply(distance: &str) -> String {
    format!(
        "*3\r\n:1\r\n{}*10\r\n{}{}{}{}{}{}{}{}{}{}",
        bulk("semcache:k"),
        bulk("dist"),
        bulk(distance),
        bulk("body"),
        bulk(COMPLETION),
        bulk("ctype"),
        bulk("application/json"),
        bulk("created"),
        bulk("100"),
        bulk("model"),
        bulk("gpt")
    )
}

fn has(cmds: &[Command], pred: impl Fn(&Command) -> bool) -> bool {
    cmds.iter().any(pred)
}

fn respond_headers(cmds: &[Command]) -> Option<&Vec<(String, String)>> {
    cmds.iter().find_map(|c| match c {
        Command::Respond { headers, .. } => Some(headers),
        _ => None,
    })
}

/// The headers a response step adds.
fn added_headers(step: &Step) -> Vec<(String, String)> {
    assert_eq!(step.next, Next::Continue);
    step.cmds
        .iter()
        .filter_map(|c| match c {
            Command::ResponseHeader(k, v) => Some((k.clone(), v.clone())),
            _ => None,
        })
        .collect()
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Runs a request to the point after the exact lookup missed and the embedding arrived.
fn to_search(f: &mut Flow, prompt: &str, extra: serde_json::Value) -> Step {
    let none = |_: &str| None;
    assert_eq!(f.on_request_headers(&headers("POST", PATH, &none)).next, Next::Wait);
    let Step { cmds, next } = f.on_request_body(&body(prompt, extra), PATH);
    assert_eq!(next, Next::Wait);
    assert!(matches!(cmds.as_slice(), [Command::Redis(p)] if String::from_utf8_lossy(p).contains("HMGET")));
    let cmds = f.on_redis_reply(Some(&redis(NIL4)), 200).cmds;
    let Some(Command::Embed(c)) = cmds.first() else { panic!("expected an embedding callout: {cmds:?}") };
    assert_eq!((c.cluster.as_str(), c.authority.as_str(), c.path.as_str()), ("embedding", "emb:9", "/v1/embeddings"));
    let step = f.on_embed_reply(Some((200, EMBED_OK)));
    assert!(matches!(step.cmds.as_slice(), [Command::Redis(p)] if String::from_utf8_lossy(p).contains("FT.SEARCH")));
    assert_eq!(step.next, Next::Wait);
    step
}

fn reason(f: &Flow) -> Option<&'static str> {
    f.bypass_reason().map(|r| r.code())
}

#[test]
fn miss_then_store() {
    let mut f = Flow::new(policy(serde_json::json!({})));
    to_search(&mut f, "hello", serde_json::json!({}));
    let Step { cmds, next } = f.on_redis_reply(Some(&redis("*1\r\n:0\r\n")), 200);
    assert!(next == Next::Continue);
    assert!(has(&cmds, |c| *c == Command::Count(Metric::Miss)));
    assert_eq!(f.status(), "MISS");
    let h = added_headers(&f.on_response_headers(200, "application/json"));
    assert_eq!(header(&h, STATUS_HEADER), Some("MISS"));
    assert!(f.is_capturing());
    assert!(f.on_response_body(&COMPLETION.as_bytes()[..10], false, 300).cmds.is_empty());
    let cmds = f.on_response_body(&COMPLETION.as_bytes()[10..], true, 300).cmds;
    let Some(Command::Store(p)) = cmds.first() else { panic!("expected a store: {cmds:?}") };
    let p = String::from_utf8_lossy(p);
    assert!(p.contains("FT.CREATE") && p.contains("HSET") && p.contains("EXPIRE") && p.contains("QUIT"));
    assert!(p.contains("$2\r\n60\r\n"), "ttl 60 in EXPIRE");
}

#[test]
fn exact_hit_needs_no_embedding() {
    let mut f = Flow::new(policy(serde_json::json!({})));
    let none = |_: &str| None;
    f.on_request_headers(&headers("POST", PATH, &none));
    f.on_request_body(&body("hello", serde_json::json!({})), PATH);
    let reply = format!("*4\r\n{}{}{}{}", bulk(COMPLETION), bulk("application/json"), bulk("100"), bulk("gpt"));
    let Step { cmds, .. } = f.on_redis_reply(Some(&redis(&reply)), 130);
    let h = respond_headers(&cmds).expect("respond");
    assert_eq!(header(h, STATUS_HEADER), Some("HIT"));
    assert_eq!(header(h, MATCH_HEADER), Some("exact"));
    assert_eq!(header(h, "age"), Some("30"));
    assert!(!has(&cmds, |c| matches!(c, Command::Embed(_))));
    // The local reply passes through the response callbacks: nothing added, nothing stored.
    assert!(added_headers(&f.on_response_headers(200, "application/json")).is_empty());
    assert!(f.on_response_body(COMPLETION.as_bytes(), true, 131).cmds.is_empty());
}

#[test]
fn semantic_hit_within_threshold_only() {
    let mut f = Flow::new(policy(serde_json::json!({})));
    to_search(&mut f, "hello", serde_json::json!({}));
    let Step { cmds, .. } = f.on_redis_reply(Some(&redis(&search_reply("0.15"))), 200);
    let h = respond_headers(&cmds).expect("hit");
    assert_eq!(header(h, MATCH_HEADER), Some("semantic"));
    assert_eq!(header(h, DISTANCE_HEADER), Some("0.1500"));

    let mut f = Flow::new(policy(serde_json::json!({})));
    to_search(&mut f, "hello", serde_json::json!({}));
    let Step { cmds, .. } = f.on_redis_reply(Some(&redis(&search_reply("0.25"))), 200);
    assert!(respond_headers(&cmds).is_none());
    assert_eq!(f.status(), "MISS");
}

#[test]
fn stream_request_gets_sse_hit() {
    let mut f = Flow::new(policy(serde_json::json!({})));
    to_search(&mut f, "hello", serde_json::json!({"stream": true}));
    let Step { cmds, .. } = f.on_redis_reply(Some(&redis(&search_reply("0.01"))), 200);
    let Some(Command::Respond { headers, body, .. }) = cmds.iter().find(|c| matches!(c, Command::Respond { .. }))
    else {
        panic!("expected a hit")
    };
    assert_eq!(header(headers, "content-type"), Some("text/event-stream; charset=utf-8"));
    let text = String::from_utf8_lossy(body);
    assert!(text.contains("chat.completion.chunk") && text.trim_end().ends_with("data: [DONE]"));
}

#[test]
fn failures_fail_open() {
    // Redis down at the exact lookup.
    let mut f = Flow::new(policy(serde_json::json!({})));
    let none = |_: &str| None;
    f.on_request_headers(&headers("POST", PATH, &none));
    f.on_request_body(&body("hello", serde_json::json!({})), PATH);
    let Step { cmds, next } = f.on_redis_reply(None, 0);
    assert!(next == Next::Continue && has(&cmds, |c| *c == Command::Count(Metric::RedisError)));
    assert_eq!(reason(&f), Some("redis-error"));
    let h = added_headers(&f.on_response_headers(200, "application/json"));
    assert_eq!(header(&h, STATUS_HEADER), Some("BYPASS"));
    assert!(f.on_response_body(COMPLETION.as_bytes(), true, 1).cmds.is_empty());

    // Embedding provider error, then a Redis error reply, then garbage.
    for (embed, why) in [(Some((500u16, &b"oops"[..])), "embedding-error"), (None, "embedding-error")] {
        let mut f = Flow::new(policy(serde_json::json!({})));
        f.on_request_headers(&headers("POST", PATH, &none));
        f.on_request_body(&body("hello", serde_json::json!({})), PATH);
        f.on_redis_reply(Some(&redis(NIL4)), 1);
        let Step { next, .. } = f.on_embed_reply(embed);
        assert!(next == Next::Continue);
        assert_eq!(reason(&f), Some(why));
    }
    for reply in [
        redis("-ERR boom\r\n"),
        b"garbage".to_vec(),
        redis("-Vector blob size does not match index's expected size\r\n"),
    ] {
        let mut f = Flow::new(policy(serde_json::json!({})));
        to_search(&mut f, "hello", serde_json::json!({}));
        let Step { cmds, next } = f.on_redis_reply(Some(&reply), 1);
        assert!(next == Next::Continue, "{cmds:?}");
        assert_eq!(f.status(), "BYPASS");
    }
}

#[test]
fn bypass_reasons_from_headers_and_body() {
    let none = |_: &str| None;
    let mut f = Flow::new(policy(serde_json::json!({})));
    assert_eq!(f.on_request_headers(&headers("GET", PATH, &none)).next, Next::Continue);
    assert_eq!(reason(&f), Some("method"));
    let mut f = Flow::new(policy(serde_json::json!({})));
    assert_eq!(f.on_request_headers(&headers("POST", "/v1/embeddings", &none)).next, Next::Continue);
    assert_eq!(reason(&f), Some("path"));
    let skip = |n: &str| (n == "x-semantic-cache-skip").then(|| "1".to_string());
    let mut f = Flow::new(policy(serde_json::json!({})));
    assert_eq!(f.on_request_headers(&headers("POST", PATH, &skip)).next, Next::Continue);
    assert_eq!(reason(&f), Some("skip-header"));
    let big = |n: &str| (n == "content-length").then(|| "99999999".to_string());
    let mut f = Flow::new(policy(serde_json::json!({})));
    assert_eq!(f.on_request_headers(&headers("POST", PATH, &big)).next, Next::Continue);
    assert_eq!(reason(&f), Some("body-too-large"));
    let mut f = Flow::new(policy(serde_json::json!({})));
    f.on_request_headers(&headers("POST", PATH, &none));
    let Step { next, .. } = f.on_request_body(b"{not json", PATH);
    assert!(next == Next::Continue);
    assert_eq!(reason(&f), Some("invalid-json"));
}

#[test]
fn index_mismatch_bypasses_before_any_lookup() {
    let none = |_: &str| None;
    let mut f = Flow::new(policy(serde_json::json!({})));
    let meta = RequestMeta { index_mismatch: true, ..headers("POST", PATH, &none) };
    assert_eq!(f.on_request_headers(&meta).next, Next::Continue);
    assert_eq!(reason(&f), Some("dimension-mismatch"));
}

#[test]
fn no_cache_skips_lookup_but_stores() {
    let nc = |n: &str| (n == "cache-control").then(|| "no-cache".to_string());
    let mut f = Flow::new(policy(serde_json::json!({})));
    f.on_request_headers(&headers("POST", PATH, &nc));
    let step = f.on_request_body(&body("hello", serde_json::json!({})), PATH);
    assert!(matches!(step.cmds.as_slice(), [Command::Embed(_)]));
    let step = f.on_embed_reply(Some((200, EMBED_OK)));
    assert!(step.next == Next::Continue);
    f.on_response_headers(200, "application/json");
    assert!(has(&f.on_response_body(COMPLETION.as_bytes(), true, 5).cmds, |c| matches!(c, Command::Store(_))));
}

#[test]
fn what_is_never_stored() {
    // n > 1
    let mut f = Flow::new(policy(serde_json::json!({})));
    to_search(&mut f, "hello", serde_json::json!({"n": 2}));
    f.on_redis_reply(Some(&redis("*1\r\n:0\r\n")), 1);
    f.on_response_headers(200, "application/json");
    assert!(!f.is_capturing());
    assert!(!has(&f.on_response_body(COMPLETION.as_bytes(), true, 1).cmds, |c| matches!(c, Command::Store(_))));
    // non-2xx
    let mut f = Flow::new(policy(serde_json::json!({})));
    to_search(&mut f, "hello", serde_json::json!({}));
    f.on_redis_reply(Some(&redis("*1\r\n:0\r\n")), 1);
    f.on_response_headers(500, "application/json");
    assert!(!has(&f.on_response_body(COMPLETION.as_bytes(), true, 1).cmds, |c| matches!(c, Command::Store(_))));
    // too hot
    let mut f = Flow::new(policy(serde_json::json!({"store": {"maxTemperature": 0.5}})));
    to_search(&mut f, "hello", serde_json::json!({"temperature": 0.9}));
    f.on_redis_reply(Some(&redis("*1\r\n:0\r\n")), 1);
    f.on_response_headers(200, "application/json");
    assert!(!f.is_capturing());
    // client went away mid-response
    let mut f = Flow::new(policy(serde_json::json!({})));
    to_search(&mut f, "hello", serde_json::json!({}));
    f.on_redis_reply(Some(&redis("*1\r\n:0\r\n")), 1);
    f.on_response_headers(200, "application/json");
    f.on_response_body(&COMPLETION.as_bytes()[..5], false, 1);
    f.on_done();
    assert!(f.on_response_body(&COMPLETION.as_bytes()[5..], true, 1).cmds.is_empty());
}

#[test]
fn late_callout_answer_is_ignored() {
    // The router answered while the exact lookup was in flight: the lookup's answer changes nothing.
    let mut f = Flow::new(policy(serde_json::json!({})));
    let none = |_: &str| None;
    f.on_request_headers(&headers("POST", PATH, &none));
    f.on_request_body(&body("hello", serde_json::json!({})), PATH);
    let h = added_headers(&f.on_response_headers(503, "text/plain"));
    assert_eq!(header(&h, STATUS_HEADER), Some("BYPASS"));
    assert_eq!(reason(&f), Some("not-cacheable"));
    let step = f.on_redis_reply(Some(&redis(NIL4)), 1);
    assert_eq!(step.next, Next::Continue);
    assert!(matches!(step.cmds.as_slice(), [Command::Log(Level::Debug, _)]), "{:?}", step.cmds);
    assert_eq!(reason(&f), Some("not-cacheable"));
    assert!(f.on_embed_reply(Some((200, EMBED_OK))).cmds.iter().all(|c| matches!(c, Command::Log(..))));
}
