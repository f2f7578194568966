//! Drives `Flow` through whole requests with recorded Redis and provider replies.

use std::rc::Rc;

use super::*;
use crate::core::headers::{DISTANCE_HEADER, MATCH_HEADER, REFUSED_HEADER, STATUS_HEADER};
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
    RequestMeta {
        method,
        path,
        route_name: None,
        cluster: None,
        end_of_stream: false,
        index_mismatch: false,
        header: h,
    }
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
    knn_reply(&[(distance, Some("hello"))])
}

/// A KNN reply with one document per (distance, stored prompt), in the given order.
fn knn_reply(docs: &[(&str, Option<&str>)]) -> String {
    let mut out = format!("*{}\r\n:{}\r\n", 1 + 2 * docs.len(), docs.len());
    for (i, (distance, prompt)) in docs.iter().enumerate() {
        let mut fields = vec![
            ("dist", distance.to_string()),
            ("body", COMPLETION.to_string()),
            ("ctype", "application/json".to_string()),
            ("created", "100".to_string()),
            ("model", "gpt".to_string()),
        ];
        if let Some(p) = prompt {
            fields.push(("prompt", p.to_string()));
        }
        out.push_str(&bulk(&format!("semcache:k{i}")));
        out.push_str(&format!("*{}\r\n", 2 * fields.len()));
        for (k, v) in fields {
            out.push_str(&bulk(k));
            out.push_str(&bulk(&v));
        }
    }
    out
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

/// Runs a request to the point after the exact lookup missed and the embedding arrived (a remote
/// provider: both callouts go out together).
fn to_search(f: &mut Flow, prompt: &str, extra: serde_json::Value) -> Step {
    let none = |_: &str| None;
    assert_eq!(f.on_request_headers(&headers("POST", PATH, &none)).next, Next::Wait);
    let Step { cmds, next } = f.on_request_body(&body(prompt, extra), PATH);
    assert_eq!(next, Next::Wait);
    let [Command::Embed(c), Command::Redis(p)] = cmds.as_slice() else {
        panic!("expected the exact lookup and the embedding callout: {cmds:?}")
    };
    assert!(String::from_utf8_lossy(p).contains("HMGET"));
    assert_eq!((c.cluster.as_str(), c.authority.as_str(), c.path.as_str()), ("embedding", "emb:9", "/v1/embeddings"));
    let step = f.on_redis_reply(Some(&redis(NIL4)), 200);
    assert_eq!((step.cmds.len(), step.next), (0, Next::Wait), "the exact miss waits for the embedding");
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
    // The embedding that was sent beside the exact lookup answers late: ignored, nothing resumed.
    let late = f.on_embed_reply(Some((200, EMBED_OK)));
    assert_eq!(late.next, Next::Wait);
    assert!(late.cmds.iter().all(|c| matches!(c, Command::Log(..))));
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
    assert_eq!(f.on_request_headers(&headers("POST", "/v1/completions", &none)).next, Next::Continue);
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
    assert_eq!(f.on_done(1).cmds.first(), Some(&Command::Count(Metric::StoreSkipped)));
    assert!(f.on_response_body(&COMPLETION.as_bytes()[5..], true, 1).cmds.is_empty());
    assert!(f.on_done(1).cmds.is_empty(), "one store outcome per miss");
}

fn stream_miss(f: &mut Flow) {
    to_search(f, "hello", serde_json::json!({"stream": true}));
    f.on_redis_reply(Some(&redis("*1\r\n:0\r\n")), 1);
    f.on_response_headers(200, "text/event-stream");
    assert!(f.is_capturing());
}

const SSE_DONE: &str = concat!(
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt\",",
    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt\",",
    "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: [DONE]\n\n"
);

#[test]
fn stream_complete_before_the_client_left_is_stored_at_done() {
    // The openai SDK closes the connection on `data: [DONE]`, before the upstream's last chunk:
    // the filter never sees end_of_stream, yet the answer is complete and must be stored.
    let mut f = Flow::new(policy(serde_json::json!({})));
    stream_miss(&mut f);
    assert!(f.on_response_body(SSE_DONE.as_bytes(), false, 7).cmds.is_empty());
    let cmds = f.on_done(7).cmds;
    assert!(has(&cmds, |c| matches!(c, Command::Store(_))), "{cmds:?}");
    assert!(f.on_done(7).cmds.is_empty());
}

#[test]
fn stream_cut_before_done_is_skipped_at_done() {
    let mut f = Flow::new(policy(serde_json::json!({})));
    stream_miss(&mut f);
    let cut = &SSE_DONE[..SSE_DONE.find("data: [DONE]").unwrap_or(0)];
    f.on_response_body(cut.as_bytes(), false, 7);
    assert_eq!(f.on_done(7).cmds.first(), Some(&Command::Count(Metric::StoreSkipped)));
}

#[test]
fn client_gone_before_the_upstream_answered_is_a_skipped_store() {
    let mut f = Flow::new(policy(serde_json::json!({})));
    to_search(&mut f, "hello", serde_json::json!({}));
    f.on_redis_reply(Some(&redis("*1\r\n:0\r\n")), 1);
    assert_eq!(f.on_done(1).cmds, vec![Command::Count(Metric::StoreSkipped)]);
    // a bypass or a hit has no store outcome
    let mut f = Flow::new(policy(serde_json::json!({})));
    assert!(f.on_done(1).cmds.is_empty());
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
    // Nothing to resume: the request already went on.
    assert_eq!(step.next, Next::Wait);
    assert!(matches!(step.cmds.as_slice(), [Command::Log(Level::Debug, _)]), "{:?}", step.cmds);
    assert_eq!(reason(&f), Some("not-cacheable"));
    assert!(f.on_embed_reply(Some((200, EMBED_OK))).cmds.iter().all(|c| matches!(c, Command::Log(..))));
}

#[test]
fn verifier_refuses_a_trap_and_the_next_candidate_answers() {
    // top-k: the nearest candidate is a trap (another currency order), the second a paraphrase.
    let mut f = Flow::new(policy(serde_json::json!({"threshold": 0.5})));
    let step = to_search(&mut f, "Convert 100 USD to EUR", serde_json::json!({}));
    let Some(Command::Redis(p)) = step.cmds.first() else { panic!("knn") };
    assert!(String::from_utf8_lossy(p).contains("KNN 5 @vec"), "default top-k is 5");
    let reply =
        knn_reply(&[("0.02", Some("Convert 100 EUR to USD")), ("0.2", Some("Please convert 100 USD into EUR"))]);
    let Step { cmds, next } = f.on_redis_reply(Some(&redis(&reply)), 200);
    assert_eq!(next, Next::Wait);
    assert!(has(&cmds, |c| *c == Command::Count(Metric::Refused(Refusal::Order))), "{cmds:?}");
    let h = respond_headers(&cmds).expect("the paraphrase answers");
    assert_eq!(header(h, DISTANCE_HEADER), Some("0.2000"));
    assert!(cmds.contains(&Command::Fact(crate::core::facts::REFUSED, "order".into())), "{cmds:?}");
}

#[test]
fn all_candidates_refused_is_a_miss_that_says_why() {
    let mut f = Flow::new(policy(serde_json::json!({"threshold": 0.5})));
    to_search(&mut f, "How do I turn on dark mode?", serde_json::json!({}));
    let reply = knn_reply(&[("0.07", Some("How do I turn off dark mode?")), ("0.1", None)]);
    let Step { cmds, next } = f.on_redis_reply(Some(&redis(&reply)), 200);
    assert_eq!(next, Next::Continue);
    assert!(has(&cmds, |c| *c == Command::Count(Metric::Miss)));
    assert!(has(&cmds, |c| *c == Command::Count(Metric::Refused(Refusal::Contrast))));
    // An entry without a stored prompt cannot be verified: refused too.
    assert!(has(&cmds, |c| *c == Command::Count(Metric::Refused(Refusal::Substitution))));
    let h = added_headers(&f.on_response_headers(200, "application/json"));
    assert_eq!(header(&h, STATUS_HEADER), Some("MISS"));
    assert_eq!(header(&h, REFUSED_HEADER), Some("contrast"));
    // The answer is stored with its prompt, for the verifier of later requests.
    let Step { cmds, .. } = f.on_response_body(COMPLETION.as_bytes(), true, 300);
    let Some(Command::Store(p)) = cmds.first() else { panic!("store: {cmds:?}") };
    let p = String::from_utf8_lossy(p);
    assert!(p.contains("$6\r\nprompt\r\n$27\r\nHow do I turn on dark mode?\r\n"), "{p}");
}

#[test]
fn verify_off_and_top_k_from_the_policy() {
    let mut f = Flow::new(policy(serde_json::json!({"threshold": 0.5, "verify": "off", "topK": 2})));
    let step = to_search(&mut f, "How do I turn on dark mode?", serde_json::json!({}));
    let Some(Command::Redis(p)) = step.cmds.first() else { panic!("knn") };
    assert!(String::from_utf8_lossy(p).contains("KNN 2 @vec"));
    let reply = knn_reply(&[("0.07", Some("How do I turn off dark mode?"))]);
    let Step { cmds, .. } = f.on_redis_reply(Some(&redis(&reply)), 200);
    assert!(respond_headers(&cmds).is_some(), "without the verifier the distance alone decides");
}

#[test]
fn candidates_past_the_threshold_are_not_verified() {
    let mut f = Flow::new(policy(serde_json::json!({"threshold": 0.1})));
    to_search(&mut f, "How do I turn on dark mode?", serde_json::json!({}));
    let reply = knn_reply(&[("0.3", Some("How do I turn off dark mode?"))]);
    let Step { cmds, .. } = f.on_redis_reply(Some(&redis(&reply)), 200);
    assert!(!has(&cmds, |c| matches!(c, Command::Count(Metric::Refused(_)))));
    let h = added_headers(&f.on_response_headers(200, "application/json"));
    assert_eq!(header(&h, REFUSED_HEADER), None);
}

#[test]
fn near_repeats_share_the_exact_key() {
    // Case, punctuation and contractions do not change the exact key (canonical form).
    let key_of = |prompt: &str| {
        let mut f = Flow::new(policy(serde_json::json!({})));
        let none = |_: &str| None;
        f.on_request_headers(&headers("POST", PATH, &none));
        let cmds = f.on_request_body(&body(prompt, serde_json::json!({})), PATH).cmds;
        let Some(Command::Redis(p)) = cmds.iter().find(|c| matches!(c, Command::Redis(_))) else {
            panic!("exact lookup")
        };
        p.clone()
    };
    assert_eq!(key_of("What is the capital of France?"), key_of("what's the capital of france"));
    assert_ne!(key_of("What is the capital of France?"), key_of("What is the capital of Spain?"));
}

#[test]
fn exact_reply_after_the_embedding_still_decides() {
    // Racing: the embedding arrives first and waits for the exact reply, which misses.
    let mut f = Flow::new(policy(serde_json::json!({})));
    let none = |_: &str| None;
    f.on_request_headers(&headers("POST", PATH, &none));
    f.on_request_body(&body("hello", serde_json::json!({})), PATH);
    let step = f.on_embed_reply(Some((200, EMBED_OK)));
    assert_eq!((step.cmds.len(), step.next), (0, Next::Wait));
    let step = f.on_redis_reply(Some(&redis(NIL4)), 1);
    assert!(matches!(step.cmds.as_slice(), [Command::Redis(p)] if String::from_utf8_lossy(p).contains("FT.SEARCH")));
    // An embedding failure first: the exact reply still answers a hit.
    let mut f = Flow::new(policy(serde_json::json!({})));
    f.on_request_headers(&headers("POST", PATH, &none));
    f.on_request_body(&body("hello", serde_json::json!({})), PATH);
    assert_eq!(f.on_embed_reply(None).next, Next::Wait);
    let reply = format!("*4\r\n{}{}{}{}", bulk(COMPLETION), bulk("application/json"), bulk("100"), bulk("gpt"));
    let Step { cmds, .. } = f.on_redis_reply(Some(&redis(&reply)), 130);
    assert!(respond_headers(&cmds).is_some());
}

#[test]
fn local_embedding_runs_after_the_exact_miss() {
    let p = policy(serde_json::json!({"embedding": {"provider": "local", "dimensions": 2}}));
    let mut f = Flow::new(p);
    let none = |_: &str| None;
    f.on_request_headers(&headers("POST", PATH, &none));
    let cmds = f.on_request_body(&body("hello", serde_json::json!({})), PATH).cmds;
    assert!(matches!(cmds.as_slice(), [Command::Redis(p)] if String::from_utf8_lossy(p).contains("HMGET")));
    let cmds = f.on_redis_reply(Some(&redis(NIL4)), 1).cmds;
    assert!(matches!(cmds.as_slice(), [Command::EmbedLocal(t)] if t == "hello"), "{cmds:?}");
    let Step { cmds, next } = f.on_embedding(Ok(vec![0.6, 0.8]));
    assert_eq!(next, Next::Wait);
    assert!(matches!(cmds.as_slice(), [Command::Redis(p)] if String::from_utf8_lossy(p).contains("FT.SEARCH")));
    let Step { cmds, .. } = f.on_redis_reply(Some(&redis(&search_reply("0.01"))), 200);
    assert_eq!(header(respond_headers(&cmds).expect("hit"), MATCH_HEADER), Some("semantic"));
}

#[test]
fn serial_lookup_embeds_only_after_the_exact_miss() {
    let p =
        policy(serde_json::json!({"embedding": {"provider": "openai-compatible", "url": "http://emb:9/v1/embeddings",
        "model": "e", "dimensions": 2, "parallel": false}}));
    let mut f = Flow::new(p);
    let none = |_: &str| None;
    f.on_request_headers(&headers("POST", PATH, &none));
    let cmds = f.on_request_body(&body("hello", serde_json::json!({})), PATH).cmds;
    assert!(matches!(cmds.as_slice(), [Command::Redis(p)] if String::from_utf8_lossy(p).contains("HMGET")));
    let cmds = f.on_redis_reply(Some(&redis(NIL4)), 1).cmds;
    assert!(matches!(cmds.as_slice(), [Command::Embed(_)]), "{cmds:?}");
}

#[test]
fn hits_count_what_the_entry_saved_and_every_outcome_sets_its_facts() {
    let fact = |cmds: &[Command], name: &str| {
        cmds.iter().find_map(|c| match c {
            Command::Fact(n, v) if *n == name => Some(v.clone()),
            _ => None,
        })
    };
    // exact hit of an entry stored with its savings
    let mut f = Flow::new(policy(serde_json::json!({})));
    let none = |_: &str| None;
    f.on_request_headers(&headers("POST", PATH, &none));
    f.on_request_body(&body("hello", serde_json::json!({})), PATH);
    let fields = [COMPLETION, "application/json", "100", "gpt", "12", "7", "840"];
    let reply = format!("*7\r\n{}", fields.iter().map(|v| bulk(v)).collect::<String>());
    let Step { cmds, .. } = f.on_redis_reply(Some(&redis(&reply)), 130);
    for m in [(Metric::TokensSavedPrompt, 12), (Metric::TokensSavedCompletion, 7), (Metric::TimeSavedMs, 840)] {
        assert!(cmds.contains(&Command::CountBy(m.0, m.1)), "{m:?} in {cmds:?}");
    }
    assert_eq!(fact(&cmds, crate::core::facts::STATUS).as_deref(), Some("HIT"));
    assert_eq!(fact(&cmds, crate::core::facts::TIER).as_deref(), Some("exact"));
    assert_eq!(fact(&cmds, crate::core::facts::DISTANCE).as_deref(), Some("0.0000"));
    assert_eq!(fact(&cmds, crate::core::facts::PARTITION).map(|p| p.len()), Some(32));
    // semantic hit of an entry without savings fields: nothing added
    let mut f = Flow::new(policy(serde_json::json!({})));
    to_search(&mut f, "hello", serde_json::json!({}));
    let Step { cmds, .. } = f.on_redis_reply(Some(&redis(&search_reply("0.15"))), 200);
    assert!(!cmds.iter().any(|c| matches!(c, Command::CountBy(..))));
    assert_eq!(fact(&cmds, crate::core::facts::TIER).as_deref(), Some("semantic"));
    assert_eq!(fact(&cmds, crate::core::facts::DISTANCE).as_deref(), Some("0.1500"));
    // miss and bypass
    let mut f = Flow::new(policy(serde_json::json!({})));
    to_search(&mut f, "hello", serde_json::json!({}));
    let Step { cmds, .. } = f.on_redis_reply(Some(&redis("*1\r\n:0\r\n")), 200);
    assert_eq!(fact(&cmds, crate::core::facts::STATUS).as_deref(), Some("MISS"));
    let mut f = Flow::new(policy(serde_json::json!({})));
    let Step { cmds, .. } = f.on_request_headers(&headers("GET", PATH, &none));
    assert_eq!(fact(&cmds, crate::core::facts::STATUS).as_deref(), Some("BYPASS"));
    assert_eq!(fact(&cmds, crate::core::facts::BYPASS_REASON).as_deref(), Some("method"));
    assert!(cmds.contains(&Command::Count(Metric::Bypassed(crate::core::bypass::BypassReason::Method))));
}

#[path = "flow_compat_tests.rs"]
mod compat;
