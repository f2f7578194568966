//! Miss-path response capture: buffers the upstream answer (up to a cap) and decides whether it
//! may be stored. What gets stored is always one complete non-streaming answer in the request's
//! API format (a `chat.completion` JSON here; the other shapes in `api/`): SSE streams are
//! reassembled first, so a hit can be replayed as JSON or as SSE.

use crate::core::api::{self, ApiShape};
use crate::core::sse::{SseParser, StreamAssembler, StreamError};
use serde_json::Value;
use thiserror::Error;

/// Operator choices that affect what is cacheable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreRules {
    pub allow_tool_calls: bool,
}

/// A response that may be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBody {
    /// A `chat.completion` JSON document.
    pub body: Vec<u8>,
    /// Always `application/json`.
    pub content_type: String,
    pub model: String,
}

pub const STORED_CONTENT_TYPE: &str = "application/json";

/// Why a response was not stored.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NotStored {
    /// Only `200` is stored: errors must not be replayed and other 2xx codes are not plain answers.
    #[error("status {0} is not cacheable")]
    Status(u16),
    #[error("response exceeded the capture limit")]
    Truncated,
    /// Stream without `[DONE]` or `finish_reason`, or a body that does not parse.
    #[error("response is incomplete or malformed")]
    Incomplete,
    #[error("response is neither JSON nor an event stream")]
    NotJson,
    #[error("response contains tool calls")]
    ToolCalls,
    #[error("response has more than one choice")]
    MultipleChoices,
    #[error("response is not a chat completion")]
    NotChatCompletion,
    #[error("response has no content")]
    Empty,
    /// `content_filter`, Mistral's `error`, or a reason we do not know: not a normal answer.
    #[error("finish_reason `{0}` is not cacheable")]
    FinishReason(String),
}

impl NotStored {
    /// Short stable code for logs and metrics tags.
    pub fn code(&self) -> &'static str {
        match self {
            NotStored::Status(_) => "status",
            NotStored::Truncated => "truncated",
            NotStored::Incomplete => "incomplete",
            NotStored::NotJson => "not-json",
            NotStored::ToolCalls => "tool-calls",
            NotStored::MultipleChoices => "multiple-choices",
            NotStored::NotChatCompletion => "not-chat-completion",
            NotStored::Empty => "empty",
            NotStored::FinishReason(_) => "finish-reason",
        }
    }
}

/// Finish reasons of complete, normal answers. `length` (and Mistral's `model_length`) is stored:
/// the same request with the same `max_tokens` would be cut at the same place, and the reason is
/// replayed so the client sees the truncation exactly as the upstream reported it.
const STORABLE_FINISH: &[&str] = &["stop", "length", "model_length", "tool_calls", "function_call"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Json,
    Sse,
}

/// `type/subtype` without parameters, lowercased.
fn media_type(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

fn body_kind(content_type: &str, streaming: bool) -> Option<BodyKind> {
    let media = media_type(content_type);
    if media == "text/event-stream" {
        Some(BodyKind::Sse)
    } else if media == "application/json" || media.ends_with("+json") {
        Some(BodyKind::Json)
    } else if media.is_empty() {
        // No Content-Type: trust what the request asked for.
        Some(if streaming { BodyKind::Sse } else { BodyKind::Json })
    } else {
        None
    }
}

/// Buffers one upstream response.
///
/// The raw bytes are kept (bounded by `max_bytes`) and parsed once in [`Capture::finish`]: the
/// upstream's Content-Type, known only then, decides between JSON and SSE, and a stream request
/// may legitimately be answered with plain JSON.
#[derive(Debug)]
pub struct Capture {
    max_bytes: usize,
    streaming: bool,
    /// Decides the store rules and the stream format (see `api`).
    shape: ApiShape,
    buf: Vec<u8>,
    truncated: bool,
}

impl Capture {
    pub fn new(max_bytes: usize, streaming: bool) -> Self {
        Self::for_shape(max_bytes, streaming, ApiShape::OpenAiChat)
    }

    pub fn for_shape(max_bytes: usize, streaming: bool, shape: ApiShape) -> Self {
        Self { max_bytes, streaming, shape, buf: Vec::new(), truncated: false }
    }

    /// Appends a body chunk. Past `max_bytes` the buffer is dropped for good: a partial answer
    /// can never be stored, so there is no point holding its memory.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.truncated {
            return;
        }
        if self.buf.len().saturating_add(chunk.len()) > self.max_bytes {
            self.truncated = true;
            self.buf = Vec::new();
            return;
        }
        self.buf.extend_from_slice(chunk);
    }

    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// Bytes buffered so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Decides whether the finished response may be stored and returns what to store.
    pub fn finish(self, status: u16, content_type: &str, rules: &StoreRules) -> Result<StoredBody, NotStored> {
        if status != 200 {
            return Err(NotStored::Status(status));
        }
        if self.truncated {
            return Err(NotStored::Truncated);
        }
        let kind = body_kind(content_type, self.streaming).ok_or(NotStored::NotJson)?;
        if self.buf.iter().all(u8::is_ascii_whitespace) {
            return Err(NotStored::Empty);
        }
        if self.shape != ApiShape::OpenAiChat {
            return api::store(self.shape, &self.buf, kind == BodyKind::Sse, rules);
        }
        match kind {
            BodyKind::Json => {
                let v: Value = serde_json::from_slice(&self.buf).map_err(|_| NotStored::Incomplete)?;
                let model = validate(&v, rules)?;
                // The upstream's own bytes are a valid chat.completion: store them untouched.
                Ok(StoredBody { body: self.buf, content_type: STORED_CONTENT_TYPE.into(), model })
            }
            BodyKind::Sse => {
                let v = assemble(&self.buf)?;
                let model = validate(&v, rules)?;
                let body = serde_json::to_vec(&v).map_err(|_| NotStored::Incomplete)?;
                Ok(StoredBody { body, content_type: STORED_CONTENT_TYPE.into(), model })
            }
        }
    }
}

fn assemble(raw: &[u8]) -> Result<Value, NotStored> {
    let mut parser = SseParser::new();
    let mut asm = StreamAssembler::new();
    let mut events = parser.push(raw);
    events.extend(parser.finish());
    for ev in &events {
        // The assembler keeps the first error; finish() reports it.
        if asm.push_event(ev).is_err() {
            break;
        }
    }
    asm.finish().map_err(|e| match e {
        StreamError::NotDone | StreamError::MissingFinishReason(_) | StreamError::Json(_) => NotStored::Incomplete,
        StreamError::NoChoices
        | StreamError::MissingField(_)
        | StreamError::Shape(_)
        | StreamError::Upstream
        | StreamError::DataAfterDone => NotStored::NotChatCompletion,
    })
}

/// Only plain string content is stored: content-part arrays (some Mistral models) could not be
/// replayed faithfully as an SSE stream.
fn has_content(content: Option<&Value>) -> bool {
    matches!(content, Some(Value::String(s)) if !s.is_empty())
}

/// Checks a `chat.completion` against the store rules; returns its model.
fn validate(v: &Value, rules: &StoreRules) -> Result<String, NotStored> {
    let obj = v.as_object().ok_or(NotStored::NotChatCompletion)?;
    if obj.get("error").is_some_and(|e| !e.is_null()) {
        return Err(NotStored::NotChatCompletion);
    }
    if let Some(kind) = obj.get("object").and_then(Value::as_str) {
        if kind != "chat.completion" {
            return Err(NotStored::NotChatCompletion);
        }
    }
    let choices = obj.get("choices").and_then(Value::as_array).ok_or(NotStored::NotChatCompletion)?;
    let choice = match choices.as_slice() {
        [] => return Err(NotStored::NotChatCompletion),
        [one] => one,
        _ => return Err(NotStored::MultipleChoices),
    };
    let message = choice.get("message").and_then(Value::as_object).ok_or(NotStored::NotChatCompletion)?;
    let reason =
        choice.get("finish_reason").and_then(Value::as_str).filter(|r| !r.is_empty()).ok_or(NotStored::Incomplete)?;
    if !STORABLE_FINISH.contains(&reason) {
        // Bounded: the reason is upstream text and ends up in logs.
        return Err(NotStored::FinishReason(reason.chars().take(32).collect()));
    }
    let tool_calls = message.get("tool_calls").and_then(Value::as_array).is_some_and(|t| !t.is_empty())
        || message.get("function_call").is_some_and(|f| !f.is_null())
        || reason == "tool_calls"
        || reason == "function_call";
    if tool_calls && !rules.allow_tool_calls {
        return Err(NotStored::ToolCalls);
    }
    // What a hit replays as SSE (entry::render_sse) needs: without it the entry could answer JSON
    // requests only and every stream request would fail on it (found by fuzz target `capture`).
    if ["id", "created"].iter().any(|k| obj.get(*k).is_none_or(Value::is_null))
        || message.get("tool_calls").and_then(Value::as_array).is_some_and(|t| !t.iter().all(Value::is_object))
    {
        return Err(NotStored::NotChatCompletion);
    }
    // A refusal or an empty answer is not worth replaying to other users.
    if !tool_calls && !has_content(message.get("content")) {
        return Err(NotStored::Empty);
    }
    answer_model(obj)
}

/// The `model` a stored answer names (every API's answer does); without one it is not stored.
pub(crate) fn answer_model(obj: &serde_json::Map<String, Value>) -> Result<String, NotStored> {
    obj.get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .ok_or(NotStored::NotChatCompletion)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NO_TOOLS: StoreRules = StoreRules { allow_tool_calls: false };
    const TOOLS: StoreRules = StoreRules { allow_tool_calls: true };

    fn completion(message: Value, finish: Value) -> Value {
        json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o",
               "choices": [{"index": 0, "message": message, "finish_reason": finish}],
               "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
    }

    fn text(s: &str) -> Value {
        completion(json!({"role": "assistant", "content": s}), json!("stop"))
    }

    fn capture_json(v: &Value, rules: &StoreRules) -> Result<StoredBody, NotStored> {
        let mut c = Capture::new(1 << 20, false);
        c.push(&serde_json::to_vec(v).unwrap());
        c.finish(200, "application/json; charset=utf-8", rules)
    }

    const STREAM: &[u8] = b"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n\
: keepalive\n\n\
data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi there\"},\"finish_reason\":null}]}\n\n\
data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
data: [DONE]\n\n";

    #[test]
    fn stores_json_as_is() {
        let raw = br#"{"id":"x","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}]}"#;
        let mut c = Capture::new(1024, false);
        c.push(&raw[..10]);
        c.push(&raw[10..]);
        assert_eq!(c.len(), raw.len());
        assert!(!c.is_empty());
        let s = c.finish(200, "application/json", &NO_TOOLS).unwrap();
        assert_eq!(s.body, raw.to_vec());
        assert_eq!(s.content_type, "application/json");
        assert_eq!(s.model, "gpt-4o");
    }

    #[test]
    fn stores_reassembled_stream() {
        for split in [1, 7, 100, STREAM.len()] {
            let mut c = Capture::new(1 << 20, true);
            for part in STREAM.chunks(split) {
                c.push(part);
            }
            let s = c.finish(200, "text/event-stream; charset=utf-8", &NO_TOOLS).unwrap();
            let v: Value = serde_json::from_slice(&s.body).unwrap();
            assert_eq!(v["object"], "chat.completion");
            assert_eq!(v["choices"][0]["message"]["content"], "Hi there");
            assert_eq!(s.model, "gpt-4o");
            assert_eq!(s.content_type, "application/json");
        }
    }

    #[test]
    fn stream_request_answered_with_json_is_stored() {
        let mut c = Capture::new(1 << 20, true);
        c.push(&serde_json::to_vec(&text("ok")).unwrap());
        assert!(c.finish(200, "application/json", &NO_TOOLS).is_ok());
    }

    #[test]
    fn missing_content_type_follows_request_mode() {
        let mut c = Capture::new(1 << 20, true);
        c.push(STREAM);
        assert!(c.finish(200, "", &NO_TOOLS).is_ok());
        let mut c = Capture::new(1 << 20, false);
        c.push(STREAM);
        assert_eq!(c.finish(200, "", &NO_TOOLS), Err(NotStored::Incomplete));
    }

    #[test]
    fn status_and_content_type() {
        let mut c = Capture::new(1024, false);
        c.push(&serde_json::to_vec(&text("ok")).unwrap());
        assert_eq!(c.finish(500, "application/json", &NO_TOOLS), Err(NotStored::Status(500)));
        let c = Capture::new(1024, false);
        assert_eq!(c.finish(206, "application/json", &NO_TOOLS), Err(NotStored::Status(206)));
        let mut c = Capture::new(1024, false);
        c.push(b"<html>");
        assert_eq!(c.finish(200, "text/html", &NO_TOOLS), Err(NotStored::NotJson));
    }

    #[test]
    fn truncation() {
        let mut c = Capture::new(10, false);
        c.push(b"0123456789");
        assert!(!c.is_truncated());
        c.push(b"a");
        assert!(c.is_truncated());
        assert_eq!(c.len(), 0);
        c.push(b"b");
        assert_eq!(c.finish(200, "application/json", &NO_TOOLS), Err(NotStored::Truncated));
        let mut c = Capture::new(0, false);
        c.push(b"");
        assert!(!c.is_truncated());
    }

    #[test]
    fn empty_and_malformed_bodies() {
        let c = Capture::new(1024, false);
        assert_eq!(c.finish(200, "application/json", &NO_TOOLS), Err(NotStored::Empty));
        let mut c = Capture::new(1024, false);
        c.push(b"{\"id\":");
        assert_eq!(c.finish(200, "application/json", &NO_TOOLS), Err(NotStored::Incomplete));
        assert_eq!(capture_json(&text(""), &NO_TOOLS), Err(NotStored::Empty));
        let refusal = completion(json!({"role": "assistant", "content": null, "refusal": "no"}), json!("stop"));
        assert_eq!(capture_json(&refusal, &NO_TOOLS), Err(NotStored::Empty));
    }

    #[test]
    fn stream_failures() {
        let cut = &STREAM[..STREAM.len() - "data: [DONE]\n\n".len()];
        let mut c = Capture::new(1 << 20, true);
        c.push(cut);
        assert_eq!(c.finish(200, "text/event-stream", &NO_TOOLS), Err(NotStored::Incomplete));
        let no_finish = String::from_utf8_lossy(STREAM).replace("\"finish_reason\":\"stop\"", "\"finish_reason\":null");
        let mut c = Capture::new(1 << 20, true);
        c.push(no_finish.as_bytes());
        assert_eq!(c.finish(200, "text/event-stream", &NO_TOOLS), Err(NotStored::Incomplete));
        let mut c = Capture::new(1 << 20, true);
        c.push(b"data: {oops\n\ndata: [DONE]\n\n");
        assert_eq!(c.finish(200, "text/event-stream", &NO_TOOLS), Err(NotStored::Incomplete));
        let mut c = Capture::new(1 << 20, true);
        c.push(b"data: {\"error\":{\"message\":\"x\"}}\n\ndata: [DONE]\n\n");
        assert_eq!(c.finish(200, "text/event-stream", &NO_TOOLS), Err(NotStored::NotChatCompletion));
        let mut c = Capture::new(1 << 20, true);
        c.push(b"data: [DONE]\n\n");
        assert_eq!(c.finish(200, "text/event-stream", &NO_TOOLS), Err(NotStored::NotChatCompletion));
        let content_filter = String::from_utf8_lossy(STREAM).replace("\"stop\"", "\"content_filter\"");
        let mut c = Capture::new(1 << 20, true);
        c.push(content_filter.as_bytes());
        assert_eq!(
            c.finish(200, "text/event-stream", &NO_TOOLS),
            Err(NotStored::FinishReason("content_filter".into()))
        );
    }

    #[test]
    fn finish_reasons() {
        let msg = json!({"role": "assistant", "content": "x"});
        assert!(capture_json(&completion(msg.clone(), json!("length")), &NO_TOOLS).is_ok());
        assert!(capture_json(&completion(msg.clone(), json!("model_length")), &NO_TOOLS).is_ok());
        assert_eq!(
            capture_json(&completion(msg.clone(), json!("content_filter")), &NO_TOOLS),
            Err(NotStored::FinishReason("content_filter".into()))
        );
        assert_eq!(
            capture_json(&completion(msg.clone(), json!("error")), &NO_TOOLS),
            Err(NotStored::FinishReason("error".into()))
        );
        let long = "x".repeat(100);
        assert_eq!(
            capture_json(&completion(msg.clone(), json!(long)), &NO_TOOLS),
            Err(NotStored::FinishReason("x".repeat(32)))
        );
        assert_eq!(capture_json(&completion(msg.clone(), Value::Null), &NO_TOOLS), Err(NotStored::Incomplete));
        assert_eq!(capture_json(&completion(msg, json!("")), &NO_TOOLS), Err(NotStored::Incomplete));
    }

    #[test]
    fn tool_calls_follow_the_rule() {
        let calls = completion(
            json!({"role": "assistant", "content": null,
                   "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}),
            json!("tool_calls"),
        );
        assert_eq!(capture_json(&calls, &NO_TOOLS), Err(NotStored::ToolCalls));
        assert!(capture_json(&calls, &TOOLS).is_ok());
        let legacy = completion(
            json!({"role": "assistant", "content": null, "function_call": {"name": "f", "arguments": "{}"}}),
            json!("function_call"),
        );
        assert_eq!(capture_json(&legacy, &NO_TOOLS), Err(NotStored::ToolCalls));
        // Tool calls in a message that finished with "stop" still count.
        let mixed =
            completion(json!({"role": "assistant", "content": "x", "tool_calls": [{"id": "c"}]}), json!("stop"));
        assert_eq!(capture_json(&mixed, &NO_TOOLS), Err(NotStored::ToolCalls));
    }

    #[test]
    fn shape_checks() {
        let mut two = text("a");
        two["choices"] = json!([two["choices"][0].clone(), two["choices"][0].clone()]);
        assert_eq!(capture_json(&two, &NO_TOOLS), Err(NotStored::MultipleChoices));
        let mut none = text("a");
        none["choices"] = json!([]);
        assert_eq!(capture_json(&none, &NO_TOOLS), Err(NotStored::NotChatCompletion));
        let mut missing = text("a");
        missing.as_object_mut().unwrap().remove("choices");
        assert_eq!(capture_json(&missing, &NO_TOOLS), Err(NotStored::NotChatCompletion));
        let mut no_msg = text("a");
        no_msg["choices"][0].as_object_mut().unwrap().remove("message");
        assert_eq!(capture_json(&no_msg, &NO_TOOLS), Err(NotStored::NotChatCompletion));
        let mut wrong_object = text("a");
        wrong_object["object"] = json!("text_completion");
        assert_eq!(capture_json(&wrong_object, &NO_TOOLS), Err(NotStored::NotChatCompletion));
        let mut no_model = text("a");
        no_model["model"] = json!("");
        assert_eq!(capture_json(&no_model, &NO_TOOLS), Err(NotStored::NotChatCompletion));
        assert_eq!(capture_json(&json!([1]), &NO_TOOLS), Err(NotStored::NotChatCompletion));
        assert_eq!(capture_json(&json!({"error": {"message": "x"}}), &NO_TOOLS), Err(NotStored::NotChatCompletion));
        let mut parts = text("a");
        parts["choices"][0]["message"]["content"] = json!([{"type": "text", "text": "hi"}]);
        assert_eq!(capture_json(&parts, &NO_TOOLS), Err(NotStored::Empty));
    }

    #[test]
    fn codes_are_stable() {
        assert_eq!(NotStored::Status(500).code(), "status");
        assert_eq!(NotStored::Truncated.code(), "truncated");
        assert_eq!(NotStored::Incomplete.code(), "incomplete");
        assert_eq!(NotStored::NotJson.code(), "not-json");
        assert_eq!(NotStored::ToolCalls.code(), "tool-calls");
        assert_eq!(NotStored::MultipleChoices.code(), "multiple-choices");
        assert_eq!(NotStored::NotChatCompletion.code(), "not-chat-completion");
        assert_eq!(NotStored::Empty.code(), "empty");
        assert_eq!(NotStored::FinishReason("x".into()).code(), "finish-reason");
    }

    #[test]
    fn media_types() {
        assert_eq!(body_kind("Application/JSON ; charset=utf-8", false), Some(BodyKind::Json));
        assert_eq!(body_kind("application/vnd.api+json", true), Some(BodyKind::Json));
        assert_eq!(body_kind("text/event-stream", false), Some(BodyKind::Sse));
        assert_eq!(body_kind("  ", false), Some(BodyKind::Json));
        assert_eq!(body_kind("text/plain", false), None);
    }
}
