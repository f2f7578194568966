//! Server-Sent Events for OpenAI-style `chat.completion.chunk` streams (OpenAI, Azure OpenAI,
//! Mistral and compatible servers): an incremental event parser and a reassembler that turns a
//! finished stream back into one non-streaming `chat.completion`, the only shape the cache stores.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use thiserror::Error;

/// One dispatched event. `data` stays bytes: chunks may split UTF-8 characters, and the JSON
/// decoder validates UTF-8 anyway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub id: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: Vec<u8>,
}

impl SseEvent {
    /// The OpenAI end-of-stream marker `data: [DONE]`.
    pub fn is_done(&self) -> bool {
        self.data.trim_ascii() == b"[DONE]"
    }
}

/// Incremental SSE parser (WHATWG "event stream interpretation"): lines end in `\r\n`, `\n` or
/// `\r`; a blank line dispatches the event; lines starting with `:` are comments.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The previous chunk ended in `\r`; a leading `\n` in the next chunk belongs to it.
    skip_lf: bool,
    /// Only the very first bytes of a stream may carry a BOM.
    started: bool,
    data: Vec<u8>,
    has_data: bool,
    event: Option<String>,
    id: Option<String>,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns the events completed by them.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        let mut rest = chunk;
        if !self.started && !rest.is_empty() {
            self.line.extend_from_slice(rest);
            // Wait until we can tell whether the stream starts with a BOM.
            if self.line.len() < 3 && b"\xEF\xBB\xBF".starts_with(&self.line) {
                return out;
            }
            self.started = true;
            let buffered = std::mem::take(&mut self.line);
            let body = buffered.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&buffered);
            self.scan(body, &mut out);
            return out;
        }
        if self.skip_lf {
            if let Some(r) = rest.strip_prefix(b"\n") {
                rest = r;
            }
            if !chunk.is_empty() {
                self.skip_lf = false;
            }
        }
        self.scan(rest, &mut out);
        out
    }

    fn scan(&mut self, mut rest: &[u8], out: &mut Vec<SseEvent>) {
        while let Some(pos) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&rest[..pos]);
            let is_cr = rest[pos] == b'\r';
            rest = &rest[pos + 1..];
            if is_cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            self.end_line(out);
        }
        self.line.extend_from_slice(rest);
    }

    /// Ends the stream: a last line without terminator and an event without the final blank
    /// line are still dispatched, so `data: [DONE]` at EOF is not lost.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
        }
        if !self.line.is_empty() {
            self.end_line(&mut out);
        }
        self.end_line(&mut out);
        out
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            if self.has_data {
                out.push(SseEvent {
                    event: self.event.take(),
                    id: self.id.take(),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.has_data = false;
            self.data.clear();
            self.event = None;
            self.id = None;
            return;
        }
        if line.first() == Some(&b':') {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(p) => {
                let v = &line[p + 1..];
                (&line[..p], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (&line[..], &[][..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            b"id" => self.id = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {}
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StreamError {
    #[error("stream ended without data: [DONE]")]
    NotDone,
    #[error("choice {0} has no finish_reason")]
    MissingFinishReason(u64),
    #[error("stream has no choices")]
    NoChoices,
    #[error("stream never named its `{0}`")]
    MissingField(&'static str),
    #[error("malformed chunk JSON: {0}")]
    Json(String),
    #[error("chunk has an unexpected shape: {0}")]
    Shape(&'static str),
    /// The upstream reported an error inside the stream (`{"error": ...}` or `event: error`).
    #[error("upstream error in stream")]
    Upstream,
    #[error("data after [DONE]")]
    DataAfterDone,
}

#[derive(Debug, Default)]
struct ToolCallAcc {
    id: Option<String>,
    kind: Option<String>,
    name: String,
    arguments: String,
}

#[derive(Debug, Default)]
struct ChoiceAcc {
    role: Option<String>,
    content: Option<String>,
    refusal: Option<String>,
    tool_calls: BTreeMap<u64, ToolCallAcc>,
    function_call: Option<(String, String)>,
    finish_reason: Option<String>,
}

/// Rebuilds a `chat.completion` from `chat.completion.chunk` events.
///
/// The first error is sticky: `finish` reports it even if the caller ignored `push_*` results.
#[derive(Debug, Default)]
pub struct StreamAssembler {
    id: Option<String>,
    created: Option<u64>,
    model: Option<String>,
    system_fingerprint: Option<String>,
    choices: BTreeMap<u64, ChoiceAcc>,
    usage: Option<Value>,
    done: bool,
    error: Option<StreamError>,
}

fn non_empty_str(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn append(slot: &mut Option<String>, piece: &str) {
    slot.get_or_insert_with(String::new).push_str(piece);
}

impl StreamAssembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// True once `data: [DONE]` was seen.
    pub fn is_done(&self) -> bool {
        self.done
    }

    pub fn push_event(&mut self, ev: &SseEvent) -> Result<(), StreamError> {
        if ev.event.as_deref() == Some("error") {
            return self.fail(StreamError::Upstream);
        }
        self.push_data(&ev.data)
    }

    /// Feeds the payload of one `data:` event (a chunk JSON or `[DONE]`).
    pub fn push_data(&mut self, data: &[u8]) -> Result<(), StreamError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if data.trim_ascii() == b"[DONE]" {
            self.done = true;
            return Ok(());
        }
        if self.done {
            return self.fail(StreamError::DataAfterDone);
        }
        let chunk: Value = match serde_json::from_slice(data) {
            Ok(v) => v,
            Err(e) => return self.fail(StreamError::Json(e.to_string())),
        };
        match self.apply(&chunk) {
            Ok(()) => Ok(()),
            Err(e) => self.fail(e),
        }
    }

    fn fail(&mut self, e: StreamError) -> Result<(), StreamError> {
        if self.error.is_none() {
            self.error = Some(e.clone());
        }
        Err(e)
    }

    fn apply(&mut self, chunk: &Value) -> Result<(), StreamError> {
        let obj = chunk.as_object().ok_or(StreamError::Shape("chunk is not an object"))?;
        if obj.get("error").is_some_and(|e| !e.is_null()) {
            return Err(StreamError::Upstream);
        }
        // Azure sends a leading prompt_filter_results chunk with empty id/model and created 0,
        // so only non-empty values count.
        if self.id.is_none() {
            self.id = non_empty_str(obj.get("id")).map(str::to_string);
        }
        if self.model.is_none() {
            self.model = non_empty_str(obj.get("model")).map(str::to_string);
        }
        if self.created.is_none() {
            self.created = obj.get("created").and_then(Value::as_u64).filter(|c| *c != 0);
        }
        if let Some(fp) = non_empty_str(obj.get("system_fingerprint")) {
            self.system_fingerprint = Some(fp.to_string());
        }
        // OpenAI sends usage on a final choices-less chunk; Mistral on the last content chunk.
        if let Some(u) = obj.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(u.clone());
        }
        let choices = match obj.get("choices") {
            None | Some(Value::Null) => return Ok(()),
            Some(Value::Array(c)) => c,
            Some(_) => return Err(StreamError::Shape("choices is not an array")),
        };
        for (pos, choice) in choices.iter().enumerate() {
            let choice = choice.as_object().ok_or(StreamError::Shape("choice is not an object"))?;
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(pos as u64);
            let acc = self.choices.entry(index).or_default();
            if let Some(reason) = non_empty_str(choice.get("finish_reason")) {
                acc.finish_reason = Some(reason.to_string());
            }
            let delta = match choice.get("delta") {
                None | Some(Value::Null) => continue,
                Some(Value::Object(d)) => d,
                Some(_) => return Err(StreamError::Shape("delta is not an object")),
            };
            apply_delta(acc, delta)?;
        }
        Ok(())
    }

    /// Builds the non-streaming `chat.completion`.
    pub fn finish(self) -> Result<Value, StreamError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if !self.done {
            return Err(StreamError::NotDone);
        }
        if self.choices.is_empty() {
            return Err(StreamError::NoChoices);
        }
        let id = self.id.ok_or(StreamError::MissingField("id"))?;
        let model = self.model.ok_or(StreamError::MissingField("model"))?;
        let created = self.created.ok_or(StreamError::MissingField("created"))?;
        let mut choices = Vec::with_capacity(self.choices.len());
        for (index, c) in self.choices {
            let finish_reason = c.finish_reason.ok_or(StreamError::MissingFinishReason(index))?;
            let mut message = Map::new();
            message.insert("role".into(), json!(c.role.as_deref().unwrap_or("assistant")));
            message.insert("content".into(), c.content.map_or(Value::Null, Value::String));
            if let Some(r) = c.refusal {
                message.insert("refusal".into(), Value::String(r));
            }
            if !c.tool_calls.is_empty() {
                let calls: Vec<Value> = c
                    .tool_calls
                    .into_values()
                    .map(|t| {
                        json!({
                            "id": t.id.unwrap_or_default(),
                            "type": t.kind.unwrap_or_else(|| "function".into()),
                            "function": {"name": t.name, "arguments": t.arguments},
                        })
                    })
                    .collect();
                message.insert("tool_calls".into(), Value::Array(calls));
            }
            if let Some((name, arguments)) = c.function_call {
                message.insert("function_call".into(), json!({"name": name, "arguments": arguments}));
            }
            choices.push(json!({
                "index": index,
                "message": message,
                "logprobs": null,
                "finish_reason": finish_reason,
            }));
        }
        let mut out = Map::new();
        out.insert("id".into(), json!(id));
        out.insert("object".into(), json!("chat.completion"));
        out.insert("created".into(), json!(created));
        out.insert("model".into(), json!(model));
        out.insert("choices".into(), Value::Array(choices));
        if let Some(fp) = self.system_fingerprint {
            out.insert("system_fingerprint".into(), json!(fp));
        }
        if let Some(u) = self.usage {
            out.insert("usage".into(), u);
        }
        Ok(Value::Object(out))
    }
}

fn apply_delta(acc: &mut ChoiceAcc, delta: &Map<String, Value>) -> Result<(), StreamError> {
    if let Some(role) = non_empty_str(delta.get("role")) {
        acc.role = Some(role.to_string());
    }
    if let Some(piece) = delta.get("content").and_then(Value::as_str) {
        append(&mut acc.content, piece);
    }
    if let Some(piece) = delta.get("refusal").and_then(Value::as_str) {
        append(&mut acc.refusal, piece);
    }
    match delta.get("tool_calls") {
        None | Some(Value::Null) => {}
        Some(Value::Array(calls)) => {
            for (pos, call) in calls.iter().enumerate() {
                let call = call.as_object().ok_or(StreamError::Shape("tool call is not an object"))?;
                // Mistral sends whole tool calls, older versions without `index`.
                let index = call.get("index").and_then(Value::as_u64).unwrap_or(pos as u64);
                let t = acc.tool_calls.entry(index).or_default();
                if let Some(id) = non_empty_str(call.get("id")) {
                    t.id = Some(id.to_string());
                }
                if let Some(kind) = non_empty_str(call.get("type")) {
                    t.kind = Some(kind.to_string());
                }
                if let Some(f) = call.get("function").and_then(Value::as_object) {
                    if let Some(n) = f.get("name").and_then(Value::as_str) {
                        t.name.push_str(n);
                    }
                    if let Some(a) = f.get("arguments").and_then(Value::as_str) {
                        t.arguments.push_str(a);
                    }
                }
            }
        }
        Some(_) => return Err(StreamError::Shape("tool_calls is not an array")),
    }
    // Legacy `functions` API.
    if let Some(f) = delta.get("function_call").and_then(Value::as_object) {
        let (name, args) = acc.function_call.get_or_insert_with(Default::default);
        if let Some(n) = f.get("name").and_then(Value::as_str) {
            name.push_str(n);
        }
        if let Some(a) = f.get("arguments").and_then(Value::as_str) {
            args.push_str(a);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(events: &[SseEvent]) -> Vec<String> {
        events.iter().map(|e| String::from_utf8_lossy(&e.data).into_owned()).collect()
    }

    #[test]
    fn parses_lf_and_crlf_events() {
        let mut p = SseParser::new();
        let ev = p.push(b"data: a\n\ndata: b\r\n\r\ndata:c\r\rdata: d\n\n");
        assert_eq!(data(&ev), ["a", "b", "c", "d"]);
    }

    #[test]
    fn events_split_across_chunks_at_every_byte() {
        let stream = b": keepalive\r\n\r\ndata: {\"x\":\"\xC3\xA9\"}\r\n\r\nevent: m\r\ndata: 1\r\ndata: 2\r\n\r\ndata: [DONE]\r\n\r\n";
        for split in 0..stream.len() {
            let mut p = SseParser::new();
            let mut ev = p.push(&stream[..split]);
            ev.extend(p.push(&stream[split..]));
            ev.extend(p.finish());
            assert_eq!(data(&ev), ["{\"x\":\"é\"}", "1\n2", "[DONE]"], "split at {split}");
            assert_eq!(ev[1].event.as_deref(), Some("m"));
            assert!(ev[2].is_done());
        }
        let mut p = SseParser::new();
        let mut ev = Vec::new();
        for b in stream.iter() {
            ev.extend(p.push(std::slice::from_ref(b)));
        }
        assert_eq!(ev.len(), 3);
    }

    #[test]
    fn cr_at_chunk_end_then_lf() {
        let mut p = SseParser::new();
        assert!(p.push(b"data: a\r").is_empty());
        assert!(p.push(b"").is_empty());
        assert_eq!(data(&p.push(b"\n\r\n")), ["a"]);
    }

    #[test]
    fn comments_fields_and_blank_events() {
        let mut p = SseParser::new();
        let ev = p.push(b": ping\n\nretry: 5\nid: 7\nfoo\n\nid: 8\ndata\n\n");
        // An event without data is not dispatched; a bare `data` line is an empty data line.
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].data, b"");
        assert_eq!(ev[0].id.as_deref(), Some("8"));
    }

    #[test]
    fn bom_is_skipped_only_at_start() {
        let mut p = SseParser::new();
        assert!(p.push(b"\xEF").is_empty());
        assert!(p.push(b"\xBB").is_empty());
        assert_eq!(data(&p.push(b"\xBFdata: x\n\n")), ["x"]);
        let mut p = SseParser::new();
        assert_eq!(data(&p.push(b"\xEF\xBB\xBFdata: y\n\n")), ["y"]);
        let mut p = SseParser::new();
        assert_eq!(data(&p.push(b"da")), Vec::<String>::new());
        assert_eq!(data(&p.push(b"ta: z\n\n")), ["z"]);
    }

    #[test]
    fn finish_flushes_unterminated_event() {
        let mut p = SseParser::new();
        assert!(p.push(b"data: [DONE]").is_empty());
        let ev = p.finish();
        assert!(ev[0].is_done());
        assert!(SseParser::new().finish().is_empty());
    }

    #[test]
    fn garbage_is_not_an_event() {
        let mut p = SseParser::new();
        assert!(p.push(b"\x00\xff garbage\n\n").is_empty());
        assert!(!SseEvent { data: b"[DONE] x".to_vec(), ..Default::default() }.is_done());
    }

    fn chunk(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    fn base(choices: Value) -> Value {
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000,
               "model": "gpt-4o-mini", "system_fingerprint": "fp_1", "choices": choices})
    }

    #[test]
    fn assembles_openai_stream_with_usage() {
        let mut a = StreamAssembler::new();
        a.push_data(&chunk(base(
            json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]),
        )))
        .unwrap();
        a.push_data(&chunk(base(json!([{"index": 0, "delta": {"content": "Hel"}, "finish_reason": null}])))).unwrap();
        a.push_data(&chunk(base(json!([{"index": 0, "delta": {"content": "lo"}, "finish_reason": null}])))).unwrap();
        a.push_data(&chunk(base(json!([{"index": 0, "delta": {}, "finish_reason": "stop"}])))).unwrap();
        let mut last = base(json!([]));
        last["usage"] = json!({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5});
        a.push_data(&chunk(last)).unwrap();
        a.push_data(b"[DONE]").unwrap();
        assert!(a.is_done());
        let v = a.finish().unwrap();
        assert_eq!(
            v,
            json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000,
                   "model": "gpt-4o-mini", "system_fingerprint": "fp_1",
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"},
                                "logprobs": null, "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})
        );
    }

    #[test]
    fn assembles_azure_stream_with_filter_prelude() {
        let mut a = StreamAssembler::new();
        a.push_data(br#"{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0}]}"#).unwrap();
        a.push_data(&chunk(base(json!([{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "content_filter_results": {}, "finish_reason": null}])))).unwrap();
        a.push_data(&chunk(base(json!([{"index": 0, "delta": {}, "finish_reason": "length"}])))).unwrap();
        a.push_data(b"[DONE]").unwrap();
        let v = a.finish().unwrap();
        assert_eq!(v["id"], "chatcmpl-1");
        assert_eq!(v["created"], 1700000000);
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert!(v.get("usage").is_none());
    }

    #[test]
    fn assembles_mistral_stream() {
        let mut a = StreamAssembler::new();
        let mk = |delta: Value, fr: Value, usage: Option<Value>| {
            let mut c = json!({"id": "m1", "object": "chat.completion.chunk", "created": 1, "model": "mistral-small",
                               "choices": [{"index": 0, "delta": delta, "finish_reason": fr}]});
            if let Some(u) = usage {
                c["usage"] = u;
            }
            chunk(c)
        };
        a.push_data(&mk(json!({"role": "assistant", "content": ""}), Value::Null, None)).unwrap();
        a.push_data(&mk(json!({"content": "Bonjour"}), Value::Null, None)).unwrap();
        a.push_data(&mk(
            json!({"content": ""}),
            json!("stop"),
            Some(json!({"prompt_tokens": 1, "total_tokens": 2, "completion_tokens": 1})),
        ))
        .unwrap();
        a.push_data(b"[DONE]").unwrap();
        let v = a.finish().unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "Bonjour");
        assert_eq!(v["usage"]["total_tokens"], 2);
        assert!(v.get("system_fingerprint").is_none());
    }

    #[test]
    fn merges_tool_call_deltas() {
        let mut a = StreamAssembler::new();
        a.push_data(&chunk(base(json!([{"index": 0, "delta": {"role": "assistant", "content": null,
            "tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}}])))).unwrap();
        a.push_data(&chunk(base(
            json!([{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}}]),
        )))
        .unwrap();
        a.push_data(&chunk(base(json!([{"index": 0, "delta": {"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "now", "arguments": "{}"}}]}}])))).unwrap();
        a.push_data(&chunk(base(
            json!([{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}}]),
        )))
        .unwrap();
        a.push_data(&chunk(base(json!([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}])))).unwrap();
        a.push_data(b"[DONE]").unwrap();
        let v = a.finish().unwrap();
        let msg = &v["choices"][0]["message"];
        assert_eq!(msg["content"], Value::Null);
        assert_eq!(
            msg["tool_calls"],
            json!([{"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                   {"id": "call_b", "type": "function", "function": {"name": "now", "arguments": "{}"}}])
        );
    }

    #[test]
    fn mistral_tool_calls_without_index_and_legacy_function_call() {
        let mut a = StreamAssembler::new();
        a.push_data(&chunk(base(json!([{"index": 0, "delta": {"tool_calls": [{"id": "x", "function": {"name": "f", "arguments": "{}"}}]}, "finish_reason": "tool_calls"}])))).unwrap();
        a.push_data(&chunk(base(
            json!([{"index": 1, "delta": {"function_call": {"name": "g", "arguments": "{\"a\""}}}]),
        )))
        .unwrap();
        a.push_data(&chunk(base(
            json!([{"index": 1, "delta": {"function_call": {"arguments": ":1}"}}, "finish_reason": "function_call"}]),
        )))
        .unwrap();
        a.push_data(b"[DONE]").unwrap();
        let v = a.finish().unwrap();
        assert_eq!(v["choices"][0]["message"]["tool_calls"][0]["type"], "function");
        assert_eq!(v["choices"][1]["message"]["function_call"], json!({"name": "g", "arguments": "{\"a\":1}"}));
    }

    #[test]
    fn multiple_choices_and_refusal() {
        let mut a = StreamAssembler::new();
        a.push_data(&chunk(base(json!([{"index": 1, "delta": {"content": "B"}, "finish_reason": "stop"},
                                         {"index": 0, "delta": {"refusal": "no"}, "finish_reason": "stop"}]))))
            .unwrap();
        a.push_data(b"[DONE]").unwrap();
        let v = a.finish().unwrap();
        assert_eq!(v["choices"][0]["index"], 0);
        assert_eq!(v["choices"][0]["message"]["refusal"], "no");
        assert_eq!(v["choices"][1]["message"]["content"], "B");
    }

    #[test]
    fn errors() {
        let ok = chunk(base(json!([{"index": 0, "delta": {"content": "x"}, "finish_reason": "stop"}])));
        // No [DONE].
        let mut a = StreamAssembler::new();
        a.push_data(&ok).unwrap();
        assert_eq!(a.finish(), Err(StreamError::NotDone));
        // No finish_reason.
        let mut a = StreamAssembler::new();
        a.push_data(&chunk(base(json!([{"index": 3, "delta": {"content": "x"}}])))).unwrap();
        a.push_data(b"[DONE]").unwrap();
        assert_eq!(a.finish(), Err(StreamError::MissingFinishReason(3)));
        // No choices at all.
        let mut a = StreamAssembler::new();
        a.push_data(b"[DONE]").unwrap();
        assert_eq!(a.finish(), Err(StreamError::NoChoices));
        // Malformed JSON is sticky even when the caller ignores it.
        let mut a = StreamAssembler::new();
        assert!(matches!(a.push_data(b"{not json"), Err(StreamError::Json(_))));
        let _ = a.push_data(&ok);
        let _ = a.push_data(b"[DONE]");
        assert!(matches!(a.finish(), Err(StreamError::Json(_))));
        // Upstream error object / event.
        let mut a = StreamAssembler::new();
        assert_eq!(a.push_data(br#"{"error":{"message":"overloaded"}}"#), Err(StreamError::Upstream));
        let mut a = StreamAssembler::new();
        let ev = SseEvent { event: Some("error".into()), data: b"{}".to_vec(), id: None };
        assert_eq!(a.push_event(&ev), Err(StreamError::Upstream));
        // Data after [DONE].
        let mut a = StreamAssembler::new();
        a.push_data(b"[DONE]").unwrap();
        assert_eq!(a.push_data(&ok), Err(StreamError::DataAfterDone));
        // Missing id / model / created.
        for field in ["id", "model", "created"] {
            let mut c = base(json!([{"index": 0, "delta": {"content": "x"}, "finish_reason": "stop"}]));
            c.as_object_mut().unwrap().remove(field);
            let mut a = StreamAssembler::new();
            a.push_data(&chunk(c)).unwrap();
            a.push_data(b"[DONE]").unwrap();
            assert_eq!(a.finish(), Err(StreamError::MissingField(field)));
        }
    }

    #[test]
    fn shape_errors() {
        for bad in [
            json!([1]),
            json!("x"),
            base(json!({"index": 0})),
            base(json!([1])),
            base(json!([{"delta": "x"}])),
            base(json!([{"delta": {"tool_calls": {}}}])),
            base(json!([{"delta": {"tool_calls": [1]}}])),
        ] {
            let mut a = StreamAssembler::new();
            assert!(matches!(a.push_data(&chunk(bad.clone())), Err(StreamError::Shape(_))), "{bad}");
        }
        let mut a = StreamAssembler::new();
        assert!(matches!(a.push_data(b"\xff"), Err(StreamError::Json(_))));
    }

    #[test]
    fn parser_feeds_assembler() {
        let raw = b"data: {\"id\":\"c\",\"created\":5,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"h\\u00e9\"},\"finish_reason\":\"stop\"}]}\r\n\r\n: keepalive\r\n\r\ndata: [DONE]\r\n\r\n";
        let mut p = SseParser::new();
        let mut a = StreamAssembler::new();
        for part in raw.chunks(7) {
            for ev in p.push(part) {
                a.push_event(&ev).unwrap();
            }
        }
        assert_eq!(a.finish().unwrap()["choices"][0]["message"]["content"], "hé");
    }
}
