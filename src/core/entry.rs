//! Rendering a cache hit. The stored body is a complete `chat.completion` JSON (see capture.rs);
//! a hit is replayed either as that JSON or as an OpenAI-style SSE stream built from it.

use serde_json::{json, Map, Value};
use thiserror::Error;

pub const JSON_CONTENT_TYPE: &str = "application/json";
/// With the charset, as OpenAI sends it: clients that default SSE to Latin-1 decode UTF-8 correctly.
pub const SSE_CONTENT_TYPE: &str = "text/event-stream; charset=utf-8";

/// Characters of content per replayed chunk: small enough to look like a stream to clients that
/// render progressively, large enough to keep the replay cheap.
pub(crate) const PIECE_CHARS: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EntryError {
    #[error("stored body is not JSON: {0}")]
    Json(String),
    #[error("stored body is not a chat completion: {0}")]
    Shape(&'static str),
}

/// The stored completion, as-is.
///
/// Kept byte-for-byte, `usage` included: it reports what the original call cost, which is what
/// OpenAI-compatible caches commonly return, and rewriting it would cost a parse and a
/// serialisation per hit. The original `id` and `created` are kept too; the `age` header tells
/// the client how old the answer is.
pub fn render_json(stored_body: &[u8]) -> Vec<u8> {
    stored_body.to_vec()
}

/// Splits on char boundaries into pieces of at most `n` chars (never splits a UTF-8 sequence).
pub(crate) fn pieces(s: &str, n: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut count = 0;
    for (i, _) in s.char_indices() {
        if count == n {
            out.push(&s[start..i]);
            start = i;
            count = 0;
        }
        count += 1;
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

struct Frame<'a> {
    head: &'a Map<String, Value>,
    include_usage: bool,
    out: Vec<u8>,
}

impl Frame<'_> {
    fn chunk(&mut self, choices: Value, usage: Option<&Value>) -> Result<(), EntryError> {
        let mut obj = self.head.clone();
        obj.insert("choices".into(), choices);
        // OpenAI sends `usage: null` on every chunk but the last when include_usage is set.
        if self.include_usage {
            obj.insert("usage".into(), usage.cloned().unwrap_or(Value::Null));
        }
        self.out.extend_from_slice(b"data: ");
        serde_json::to_writer(&mut self.out, &Value::Object(obj)).map_err(|e| EntryError::Json(e.to_string()))?;
        self.out.extend_from_slice(b"\n\n");
        Ok(())
    }

    fn delta(&mut self, index: &Value, delta: Value, finish: &Value) -> Result<(), EntryError> {
        let choice = json!({"index": index, "delta": delta, "logprobs": null, "finish_reason": finish});
        self.chunk(json!([choice]), None)
    }
}

/// Replays a stored `chat.completion` as an OpenAI `chat.completion.chunk` stream:
/// a role chunk, content in ~20-char pieces, tool calls (one chunk each), a chunk with an empty
/// delta and the finish_reason, then, when `include_usage`, a `choices: []` chunk carrying usage
/// (skipped if the stored body has no usage: we do not invent token counts), and `[DONE]`.
pub fn render_sse(stored_body: &[u8], include_usage: bool) -> Result<Vec<u8>, EntryError> {
    let v: Value = serde_json::from_slice(stored_body).map_err(|e| EntryError::Json(e.to_string()))?;
    let obj = v.as_object().ok_or(EntryError::Shape("not an object"))?;
    let choices = obj
        .get("choices")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or(EntryError::Shape("no choices"))?;
    let mut head = Map::new();
    for key in ["id", "created", "model"] {
        let value = obj.get(key).filter(|x| !x.is_null()).ok_or(EntryError::Shape("missing id/created/model"))?;
        head.insert(key.into(), value.clone());
    }
    head.insert("object".into(), json!("chat.completion.chunk"));
    if let Some(fp) = obj.get("system_fingerprint") {
        head.insert("system_fingerprint".into(), fp.clone());
    }
    let mut f = Frame { head: &head, include_usage, out: Vec::with_capacity(stored_body.len() * 3) };
    let null = Value::Null;
    for (pos, choice) in choices.iter().enumerate() {
        let index = choice.get("index").cloned().unwrap_or_else(|| json!(pos));
        let message =
            choice.get("message").and_then(Value::as_object).ok_or(EntryError::Shape("choice without message"))?;
        let finish = choice
            .get("finish_reason")
            .filter(|r| r.is_string())
            .ok_or(EntryError::Shape("choice without finish_reason"))?;
        let role = message.get("role").cloned().unwrap_or_else(|| json!("assistant"));
        let content = message.get("content").and_then(Value::as_str);
        let tool_calls = message.get("tool_calls").and_then(Value::as_array);
        // OpenAI opens tool-call streams with `content: null`, text streams with `content: ""`.
        let opening = if content.is_some() { json!("") } else { Value::Null };
        f.delta(&index, json!({"role": role, "content": opening}), &null)?;
        for piece in pieces(content.unwrap_or(""), PIECE_CHARS) {
            f.delta(&index, json!({"content": piece}), &null)?;
        }
        if let Some(refusal) = message.get("refusal").and_then(Value::as_str) {
            f.delta(&index, json!({"refusal": refusal}), &null)?;
        }
        for (i, call) in tool_calls.into_iter().flatten().enumerate() {
            let mut call = call.as_object().cloned().ok_or(EntryError::Shape("tool call is not an object"))?;
            call.insert("index".into(), json!(i));
            f.delta(&index, json!({"tool_calls": [call]}), &null)?;
        }
        if let Some(fc) = message.get("function_call").filter(|x| x.is_object()) {
            f.delta(&index, json!({"function_call": fc}), &null)?;
        }
        f.delta(&index, json!({}), finish)?;
    }
    if include_usage {
        if let Some(usage) = obj.get("usage").filter(|u| u.is_object()) {
            f.chunk(json!([]), Some(usage))?;
        }
    }
    f.out.extend_from_slice(b"data: [DONE]\n\n");
    Ok(f.out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::sse::{SseParser, StreamAssembler};

    fn stored(content: Value, finish: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "id": "chatcmpl-9", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o",
            "system_fingerprint": "fp_x",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "logprobs": null,
                         "finish_reason": finish}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
        }))
        .unwrap()
    }

    fn chunks(sse: &[u8]) -> Vec<Value> {
        let mut p = SseParser::new();
        let mut evs = p.push(sse);
        evs.extend(p.finish());
        evs.iter().filter(|e| !e.is_done()).map(|e| serde_json::from_slice(&e.data).unwrap()).collect()
    }

    fn reassemble(sse: &[u8]) -> Value {
        let mut p = SseParser::new();
        let mut a = StreamAssembler::new();
        for part in sse.chunks(13) {
            for ev in p.push(part) {
                a.push_event(&ev).unwrap();
            }
        }
        a.finish().unwrap()
    }

    #[test]
    fn json_is_returned_as_is() {
        let body = stored(json!("hi"), "stop");
        assert_eq!(render_json(&body), body);
        assert_eq!(render_json(b""), b"");
    }

    #[test]
    fn pieces_respect_char_boundaries() {
        assert_eq!(pieces("", 20), Vec::<&str>::new());
        assert_eq!(pieces("abc", 2), ["ab", "c"]);
        assert_eq!(pieces("abcd", 2), ["ab", "cd"]);
        assert_eq!(pieces("é😀漢字x", 2), ["é😀", "漢字", "x"]);
        let s = "ü".repeat(45);
        let p = pieces(&s, 20);
        assert_eq!(p.iter().map(|x| x.chars().count()).collect::<Vec<_>>(), [20, 20, 5]);
        assert_eq!(p.concat(), s);
    }

    #[test]
    fn sse_layout_with_usage() {
        let text = "The quick brown fox jumps over the lazy dog — 😀 done.";
        let sse = render_sse(&stored(json!(text), "stop"), true).unwrap();
        assert!(sse.ends_with(b"\n\ndata: [DONE]\n\n"));
        let c = chunks(&sse);
        let n = text.chars().count().div_ceil(PIECE_CHARS);
        assert_eq!(c.len(), 1 + n + 1 + 1);
        for chunk in &c {
            assert_eq!(chunk["object"], "chat.completion.chunk");
            assert_eq!(chunk["id"], "chatcmpl-9");
            assert_eq!(chunk["created"], 1700000000);
            assert_eq!(chunk["model"], "gpt-4o");
            assert_eq!(chunk["system_fingerprint"], "fp_x");
        }
        assert_eq!(c[0]["choices"][0]["delta"], json!({"role": "assistant", "content": ""}));
        assert_eq!(c[0]["usage"], Value::Null);
        assert!(c[0].as_object().unwrap().contains_key("usage"));
        assert_eq!(c[1]["choices"][0]["delta"]["content"], "The quick brown fox ");
        assert_eq!(c[n + 1]["choices"][0]["delta"], json!({}));
        assert_eq!(c[n + 1]["choices"][0]["finish_reason"], "stop");
        assert_eq!(c[n + 2]["choices"], json!([]));
        assert_eq!(c[n + 2]["usage"]["total_tokens"], 12);
    }

    #[test]
    fn sse_without_usage_has_no_usage_keys() {
        let sse = render_sse(&stored(json!("hello"), "length"), false).unwrap();
        let c = chunks(&sse);
        assert_eq!(c.len(), 3);
        assert!(c.iter().all(|x| !x.as_object().unwrap().contains_key("usage")));
    }

    #[test]
    fn round_trips_through_the_assembler() {
        for (text, finish) in [("Hello, world!", "stop"), ("", "stop"), (&*"日本語のテキスト。".repeat(7), "length")]
        {
            for usage in [false, true] {
                let body = stored(json!(text), finish);
                let back = reassemble(&render_sse(&body, usage).unwrap());
                let orig: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(back["choices"][0]["message"]["content"], orig["choices"][0]["message"]["content"]);
                assert_eq!(back["choices"][0]["message"]["role"], "assistant");
                assert_eq!(back["choices"][0]["finish_reason"], finish);
                assert_eq!(back["id"], orig["id"]);
                assert_eq!(back["model"], orig["model"]);
                assert_eq!(back.get("usage"), if usage { orig.get("usage") } else { None });
            }
        }
    }

    #[test]
    fn tool_calls_round_trip() {
        let body = serde_json::to_vec(&json!({
            "id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
                "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}},
                               {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}}]}}]
        }))
        .unwrap();
        let sse = render_sse(&body, false).unwrap();
        let c = chunks(&sse);
        assert_eq!(c[0]["choices"][0]["delta"], json!({"role": "assistant", "content": null}));
        let back = reassemble(&sse);
        let orig: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(back["choices"][0]["message"]["tool_calls"], orig["choices"][0]["message"]["tool_calls"]);
        assert_eq!(back["choices"][0]["message"]["content"], Value::Null);
    }

    #[test]
    fn refusal_and_function_call_are_replayed() {
        let body = serde_json::to_vec(&json!({
            "id": "c", "created": 1, "model": "m",
            "choices": [{"finish_reason": "function_call", "message": {"content": null, "refusal": "no",
                "function_call": {"name": "f", "arguments": "{}"}}}]
        }))
        .unwrap();
        let back = reassemble(&render_sse(&body, true).unwrap());
        assert_eq!(back["choices"][0]["message"]["refusal"], "no");
        assert_eq!(back["choices"][0]["message"]["function_call"]["name"], "f");
        assert!(back.get("usage").is_none());
    }

    #[test]
    fn malformed_stored_bodies() {
        assert!(matches!(render_sse(b"", false), Err(EntryError::Json(_))));
        assert!(matches!(render_sse(b"{\"id\":", false), Err(EntryError::Json(_))));
        assert!(matches!(render_sse(b"[1]", false), Err(EntryError::Shape(_))));
        assert!(matches!(
            render_sse(b"{\"id\":\"x\",\"created\":1,\"model\":\"m\",\"choices\":[]}", false),
            Err(EntryError::Shape(_))
        ));
        let mut v: Value = serde_json::from_slice(&stored(json!("x"), "stop")).unwrap();
        v.as_object_mut().unwrap().remove("model");
        assert!(matches!(render_sse(&serde_json::to_vec(&v).unwrap(), false), Err(EntryError::Shape(_))));
        let mut v: Value = serde_json::from_slice(&stored(json!("x"), "stop")).unwrap();
        v["choices"][0]["finish_reason"] = Value::Null;
        assert!(matches!(render_sse(&serde_json::to_vec(&v).unwrap(), false), Err(EntryError::Shape(_))));
        let mut v: Value = serde_json::from_slice(&stored(json!("x"), "stop")).unwrap();
        v["choices"][0].as_object_mut().unwrap().remove("message");
        assert!(matches!(render_sse(&serde_json::to_vec(&v).unwrap(), false), Err(EntryError::Shape(_))));
        let mut v: Value = serde_json::from_slice(&stored(json!("x"), "stop")).unwrap();
        v["choices"][0]["message"]["tool_calls"] = json!([1]);
        assert!(matches!(render_sse(&serde_json::to_vec(&v).unwrap(), false), Err(EntryError::Shape(_))));
    }
}
