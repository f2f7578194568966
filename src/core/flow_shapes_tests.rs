//! The flow with the non-chat API shapes: exact-only embeddings, per-shape capture and replay.

use std::rc::Rc;

use super::*;
use crate::core::headers::STATUS_HEADER;
use crate::core::policy::parse_policy;

fn policy() -> Rc<Policy> {
    let v = serde_json::json!({
        "embedding": {"provider": "openai-compatible", "url": "http://emb:9/v1/embeddings", "model": "e", "dimensions": 2},
        "threshold": 0.2, "ttlSeconds": 60
    });
    Rc::new(parse_policy(v.to_string().as_bytes()).expect("valid policy"))
}

fn start(f: &mut Flow, path: &str, body: serde_json::Value) -> Step {
    let none = |_: &str| None;
    let meta = RequestMeta {
        method: "POST",
        path,
        route_name: None,
        cluster: None,
        end_of_stream: false,
        index_mismatch: false,
        header: &none,
    };
    assert_eq!(f.on_request_headers(&meta).next, Next::Wait);
    f.on_request_body(body.to_string().as_bytes(), path)
}

fn redis(reply: &str) -> Vec<u8> {
    format!("{reply}+OK\r\n").into_bytes()
}

fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

const NIL4: &str = "*4\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n";
const EMBEDDINGS: &str =
    r#"{"object":"list","model":"m","data":[{"object":"embedding","index":0,"embedding":[0.5,0.25]}]}"#;
const MESSAGE: &str = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"Hi there"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":2}}"#;

fn exact_reply(body: &str) -> Vec<u8> {
    redis(&format!("*4\r\n{}{}{}{}", bulk(body), bulk("application/json"), bulk("100"), bulk("m")))
}

#[test]
fn embeddings_are_exact_only() {
    let mut f = Flow::new(policy());
    let Step { cmds, next } = start(&mut f, "/v1/embeddings", serde_json::json!({"model": "m", "input": "Hello"}));
    // Only the exact lookup: no embedding callout even though the policy races them.
    assert_eq!(next, Next::Wait);
    assert!(matches!(cmds.as_slice(), [Command::Redis(p)] if String::from_utf8_lossy(p).contains("HMGET")), "{cmds:?}");
    let step = f.on_redis_reply(Some(&redis(NIL4)), 200);
    assert_eq!(step.next, Next::Continue, "an exact miss goes upstream at once: {:?}", step.cmds);
    assert_eq!(f.status(), "MISS");
    f.on_response_headers(200, "application/json");
    let cmds = f.on_response_body(EMBEDDINGS.as_bytes(), true, 300).cmds;
    let [Command::Store(p)] = cmds.as_slice() else { panic!("expected a store: {cmds:?}") };
    let p = String::from_utf8_lossy(p);
    let hset = p.split("HSET").nth(1).expect("an HSET");
    assert!(!hset.contains("$3\r\nvec\r\n") && hset.contains("$6\r\nprompt\r\n"), "stored without a vector: {p}");

    let mut f = Flow::new(policy());
    start(&mut f, "/v1/embeddings", serde_json::json!({"model": "m", "input": "Hello"}));
    let Step { cmds, .. } = f.on_redis_reply(Some(&exact_reply(EMBEDDINGS)), 200);
    let Some(Command::Respond { headers, body, .. }) = cmds.iter().find(|c| matches!(c, Command::Respond { .. }))
    else {
        panic!("expected a hit: {cmds:?}")
    };
    assert!(headers.iter().any(|(k, v)| k == STATUS_HEADER && v == "HIT"));
    assert_eq!(body.as_slice(), EMBEDDINGS.as_bytes());
}

#[test]
fn anthropic_stream_hit_is_replayed_as_its_events() {
    let mut f = Flow::new(policy());
    let body = serde_json::json!({"model": "claude-x", "max_tokens": 9, "stream": true,
                                  "messages": [{"role": "user", "content": "hello"}]});
    start(&mut f, "/v1/messages", body);
    let Step { cmds, .. } = f.on_redis_reply(Some(&exact_reply(MESSAGE)), 200);
    let Some(Command::Respond { headers, body, .. }) = cmds.iter().find(|c| matches!(c, Command::Respond { .. }))
    else {
        panic!("expected a hit: {cmds:?}")
    };
    assert!(headers.iter().any(|(k, v)| k == "content-type" && v.starts_with("text/event-stream")));
    let text = String::from_utf8_lossy(body);
    assert!(
        text.starts_with("event: message_start\n") && text.trim_end().ends_with("data: {\"type\":\"message_stop\"}")
    );
}

#[test]
fn miss_captures_in_the_shape_format() {
    let mut f = Flow::new(policy());
    start(
        &mut f,
        "/v1/messages",
        serde_json::json!({"model": "claude-x", "max_tokens": 9, "messages": [{"role": "user", "content": "hello"}]}),
    );
    f.on_redis_reply(Some(&redis(NIL4)), 200);
    let step = f.on_embed_reply(Some((200, br#"{"data":[{"embedding":[0.6,0.8]}]}"#)));
    assert!(matches!(step.cmds.as_slice(), [Command::Redis(p)] if String::from_utf8_lossy(p).contains("FT.SEARCH")));
    f.on_redis_reply(Some(&redis("*1\r\n:0\r\n")), 200);
    assert_eq!(f.status(), "MISS");
    f.on_response_headers(200, "application/json");
    let cmds = f.on_response_body(MESSAGE.as_bytes(), true, 300).cmds;
    assert!(
        matches!(cmds.as_slice(), [Command::Store(p)] if String::from_utf8_lossy(p).contains("$3\r\nvec\r\n")),
        "{cmds:?}"
    );
    // A chat completion body on the Anthropic path is not an Anthropic message: not stored.
    let mut f = Flow::new(policy());
    start(
        &mut f,
        "/v1/messages",
        serde_json::json!({"model": "claude-x", "max_tokens": 9, "messages": [{"role": "user", "content": "hello"}]}),
    );
    f.on_redis_reply(Some(&redis(NIL4)), 200);
    f.on_embed_reply(Some((200, br#"{"data":[{"embedding":[0.6,0.8]}]}"#)));
    f.on_redis_reply(Some(&redis("*1\r\n:0\r\n")), 200);
    f.on_response_headers(200, "application/json");
    let chat = r#"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"x"},"finish_reason":"stop"}]}"#;
    let cmds = f.on_response_body(chat.as_bytes(), true, 300).cmds;
    assert!(!cmds.iter().any(|c| matches!(c, Command::Store(_))), "{cmds:?}");
}

#[test]
fn stateful_responses_request_bypasses() {
    let mut f = Flow::new(policy());
    let step = start(
        &mut f,
        "/v1/responses",
        serde_json::json!({"model": "m", "input": "q", "previous_response_id": "resp_1"}),
    );
    assert_eq!(step.next, Next::Continue);
    assert_eq!(f.bypass_reason().map(|r| r.code()), Some("not-cacheable"));
}
