//! The API shapes the cache understands, detected from the request path. Each shape has its own
//! parser (request -> the shape-agnostic `ChatRequest` the flow needs), its own store rules and
//! stream reassembly (a complete upstream answer -> one storable JSON in that API's non-streaming
//! format) and its own replay (stored JSON -> that API's JSON or SSE). OpenAI chat completions
//! live in `request.rs`, `capture.rs`, `sse.rs` and `entry.rs`; the others are here.
//!
//! The shape is part of the partition (its code prefixes the context), so an answer is only ever
//! served to a request of the same API.

pub mod anthropic;
pub mod embeddings;
pub mod gemini;
pub mod responses;

use serde_json::{json, Map, Value};

use crate::core::capture::{NotStored, StoreRules, StoredBody, STORED_CONTENT_TYPE};
use crate::core::entry::{self, EntryError};
use crate::core::request::{normalize_text, parse_chat, ChatRequest, RequestError};
use crate::core::sse::{SseEvent, SseParser};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApiShape {
    /// OpenAI / Azure OpenAI / Mistral `.../chat/completions` (also any path a policy rule matches).
    #[default]
    OpenAiChat,
    /// Anthropic Messages, `POST /v1/messages`.
    Anthropic,
    /// Gemini `.../models/{model}:generateContent` and `:streamGenerateContent?alt=sse`.
    Gemini,
    /// OpenAI Responses, `POST /v1/responses`.
    Responses,
    /// OpenAI / Azure / Mistral embeddings: exact match only.
    Embeddings,
}

impl ApiShape {
    /// The shape a path speaks; `None` when it is none of them.
    pub fn detect(path: &str) -> Option<ApiShape> {
        let path = path.split('?').next().unwrap_or(path);
        if path.ends_with("/chat/completions") {
            Some(ApiShape::OpenAiChat)
        } else if path.ends_with("/v1/messages") {
            Some(ApiShape::Anthropic)
        } else if gemini::model_of(path).is_some() {
            Some(ApiShape::Gemini)
        } else if path.ends_with("/responses") {
            Some(ApiShape::Responses)
        } else if path.ends_with("/embeddings") {
            Some(ApiShape::Embeddings)
        } else {
            None
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            ApiShape::OpenAiChat => "openai-chat",
            ApiShape::Anthropic => "anthropic-messages",
            ApiShape::Gemini => "gemini",
            ApiShape::Responses => "openai-responses",
            ApiShape::Embeddings => "embeddings",
        }
    }

    /// Embeddings are cached by exact request only: the same input and model give the same
    /// vector, a paraphrase does not, so a semantic match would be a wrong answer.
    pub fn exact_only(self) -> bool {
        self == ApiShape::Embeddings
    }
}

/// Parses a request body of the given shape. `path` carries the Azure deployment or the Gemini
/// model and stream mode.
pub fn parse_request(
    shape: ApiShape,
    body: &[u8],
    path: &str,
    last_user_messages: usize,
    context_window: Option<usize>,
) -> Result<ChatRequest, RequestError> {
    let mut req = match shape {
        // The chat context stays exactly as it was, so existing entries keep their partitions.
        ApiShape::OpenAiChat => return parse_chat(body, path, last_user_messages, context_window),
        ApiShape::Anthropic => anthropic::parse(body, last_user_messages, context_window)?,
        ApiShape::Gemini => gemini::parse(body, path, last_user_messages, context_window)?,
        ApiShape::Responses => responses::parse(body, last_user_messages, context_window)?,
        ApiShape::Embeddings => embeddings::parse(body, path)?,
    };
    req.context = format!("api:{}\n{}", shape.code(), req.context);
    req.shape = shape;
    Ok(req)
}

/// Store decision for a captured answer of a non-chat shape (`sse`: the body is an event stream).
pub fn store(shape: ApiShape, buf: &[u8], sse: bool, rules: &StoreRules) -> Result<StoredBody, NotStored> {
    let v = if sse {
        let events = sse_events(buf);
        match shape {
            ApiShape::Anthropic => anthropic::assemble(&events)?,
            ApiShape::Gemini => gemini::assemble(&events)?,
            ApiShape::Responses => responses::assemble(&events)?,
            ApiShape::OpenAiChat | ApiShape::Embeddings => return Err(NotStored::NotJson),
        }
    } else {
        serde_json::from_slice(buf).map_err(|_| NotStored::Incomplete)?
    };
    let model = match shape {
        ApiShape::Anthropic => anthropic::validate(&v, rules)?,
        ApiShape::Gemini => gemini::validate(&v, rules)?,
        ApiShape::Responses => responses::validate(&v, rules)?,
        ApiShape::Embeddings => embeddings::validate(&v)?,
        ApiShape::OpenAiChat => return Err(NotStored::NotChatCompletion),
    };
    // A JSON answer is stored byte for byte; a stream as the reassembled document.
    let body = if sse { serde_json::to_vec(&v).map_err(|_| NotStored::Incomplete)? } else { buf.to_vec() };
    Ok(StoredBody { body, content_type: STORED_CONTENT_TYPE.into(), model })
}

/// A hit in the request's own format: the stored JSON as it is, or that API's event stream.
pub fn render(
    shape: ApiShape,
    stored: &[u8],
    stream: bool,
    include_usage: bool,
) -> Result<(Vec<u8>, &'static str), EntryError> {
    if !stream {
        return Ok((entry::render_json(stored), entry::JSON_CONTENT_TYPE));
    }
    let body = match shape {
        ApiShape::OpenAiChat => entry::render_sse(stored, include_usage)?,
        ApiShape::Anthropic => anthropic::render_sse(stored)?,
        ApiShape::Gemini => gemini::render_sse(stored)?,
        ApiShape::Responses => responses::render_sse(stored)?,
        ApiShape::Embeddings => return Ok((entry::render_json(stored), entry::JSON_CONTENT_TYPE)),
    };
    Ok((body, entry::SSE_CONTENT_TYPE))
}

/// Every event of a finished stream.
pub(crate) fn sse_events(buf: &[u8]) -> Vec<SseEvent> {
    let mut p = SseParser::new();
    let mut events = p.push(buf);
    events.extend(p.finish());
    events
}

pub(crate) fn body_object(body: &[u8]) -> Result<Map<String, Value>, RequestError> {
    match serde_json::from_slice(body).map_err(|_| RequestError::InvalidJson)? {
        Value::Object(o) => Ok(o),
        _ => Err(RequestError::NotChat),
    }
}

/// The non-null fields of `obj` named in `names`: answer-changing parameters for the context.
pub(crate) fn pick(obj: &Map<String, Value>, names: &[&str]) -> Map<String, Value> {
    names.iter().filter_map(|k| obj.get(*k).filter(|v| !v.is_null()).map(|v| ((*k).to_string(), v.clone()))).collect()
}

/// Canonical form of a context value: strings normalised like the embedded text (so spacing does
/// not split partitions) and `cache_control` markers (Anthropic prompt caching) dropped at any
/// depth: they change what the upstream bills, not what it answers.
pub(crate) fn canonical_value(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter().filter(|(k, _)| *k != "cache_control").map(|(k, v)| (k.clone(), canonical_value(v))).collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(canonical_value).collect()),
        Value::String(s) => Value::String(normalize_text(s)),
        other => other.clone(),
    }
}

/// One turn of a conversation, as the shape-specific parsers see it.
pub(crate) struct Turn {
    /// A user turn (candidate for embedding).
    pub user: bool,
    /// A system/developer turn inside the list (always context).
    pub system: bool,
    /// Its text when it is only text; `None` when it carries anything else.
    pub text: Option<String>,
    /// Its canonical form for the context.
    pub canon: Value,
}

/// The embedded text and the context, with the same rules as chat completions
/// (`request::parse_chat`): the last `last_user_messages` user turns are embedded and the last
/// one must end the list; system turns and turns between embedded ones are always context;
/// earlier turns are context, the last `context_window` of them when set.
pub(crate) fn split_turns(
    turns: &[Turn],
    mut system: Vec<Value>,
    params: Map<String, Value>,
    last_user_messages: usize,
    context_window: Option<usize>,
) -> Result<(String, String), RequestError> {
    let mut embedded: Vec<usize> = turns
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, t)| t.user)
        .take(last_user_messages.max(1))
        .map(|(i, _)| i)
        .collect();
    embedded.reverse();
    let last = *embedded.last().ok_or(RequestError::NoUserMessage)?;
    if last + 1 != turns.len() {
        return Err(RequestError::NoUserMessage);
    }
    let mut texts = Vec::with_capacity(embedded.len());
    for &i in &embedded {
        let t = turns[i].text.as_deref().ok_or(RequestError::NonTextContent)?;
        texts.push(normalize_text(t));
    }
    let embed_text = texts.join("\n");
    if embed_text.is_empty() {
        return Err(RequestError::NoUserMessage);
    }
    let first = embedded.first().copied().unwrap_or(0);
    let mut history = Vec::new();
    for (i, t) in turns.iter().enumerate() {
        if embedded.contains(&i) {
            continue;
        }
        if t.system || i > first {
            system.push(t.canon.clone());
        } else {
            history.push(t.canon.clone());
        }
    }
    if let Some(w) = context_window {
        let skip = history.len().saturating_sub(w);
        history.drain(..skip);
    }
    let context = json!({"s": system, "h": history, "p": params}).to_string();
    Ok((embed_text, context))
}

/// One `event: <name>` + `data: <json>` frame (Anthropic and Responses streams name their events).
pub(crate) fn named_event(out: &mut Vec<u8>, name: &str, data: &Value) -> Result<(), EntryError> {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    serde_json::to_writer(&mut *out, data).map_err(|e| EntryError::Json(e.to_string()))?;
    out.extend_from_slice(b"\n\n");
    Ok(())
}

pub(crate) fn stored_object(stored: &[u8]) -> Result<Map<String, Value>, EntryError> {
    match serde_json::from_slice(stored).map_err(|e| EntryError::Json(e.to_string()))? {
        Value::Object(o) => Ok(o),
        _ => Err(EntryError::Shape("not an object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_from_paths() {
        let cases = [
            ("/v1/chat/completions", Some(ApiShape::OpenAiChat)),
            ("/openai/deployments/g/chat/completions?api-version=1", Some(ApiShape::OpenAiChat)),
            ("/v1/messages", Some(ApiShape::Anthropic)),
            ("/v1/messages?beta=true", Some(ApiShape::Anthropic)),
            ("/v1beta/models/gemini-2.0-flash:generateContent", Some(ApiShape::Gemini)),
            ("/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse", Some(ApiShape::Gemini)),
            ("/v1beta/models/gemini-2.0-flash:countTokens", None),
            ("/v1/responses", Some(ApiShape::Responses)),
            ("/v1/responses/resp_1", None),
            ("/v1/embeddings", Some(ApiShape::Embeddings)),
            ("/openai/deployments/e/embeddings?api-version=1", Some(ApiShape::Embeddings)),
            ("/v1/completions", None),
            ("/", None),
        ];
        for (path, shape) in cases {
            assert_eq!(ApiShape::detect(path), shape, "{path}");
        }
    }

    #[test]
    fn shape_is_in_the_context() {
        let q = "What is Rust?";
        let anth = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": q}]});
        let resp = json!({"model": "m", "max_output_tokens": 10, "input": q});
        let a = parse_request(ApiShape::Anthropic, anth.to_string().as_bytes(), "/v1/messages", 1, None).unwrap();
        let r = parse_request(ApiShape::Responses, resp.to_string().as_bytes(), "/v1/responses", 1, None).unwrap();
        assert_eq!((a.embed_text.as_str(), r.embed_text.as_str()), (q, q));
        assert!(a.context.starts_with("api:anthropic-messages\n"));
        assert!(r.context.starts_with("api:openai-responses\n"));
        assert_eq!((a.shape, r.shape), (ApiShape::Anthropic, ApiShape::Responses));
        let chat = json!({"model": "m", "messages": [{"role": "user", "content": q}]});
        let c =
            parse_request(ApiShape::OpenAiChat, chat.to_string().as_bytes(), "/v1/chat/completions", 1, None).unwrap();
        assert_eq!(c, parse_chat(chat.to_string().as_bytes(), "/v1/chat/completions", 1, None).unwrap());
        assert_eq!(c.shape, ApiShape::OpenAiChat);
    }

    #[test]
    fn cache_control_is_dropped() {
        let v = json!([{"type": "text", "text": " a  b ", "cache_control": {"type": "ephemeral"}}]);
        assert_eq!(canonical_value(&v), json!([{"type": "text", "text": "a b"}]));
    }

    #[test]
    fn render_json_is_the_stored_body() {
        for shape in [ApiShape::Anthropic, ApiShape::Gemini, ApiShape::Responses, ApiShape::Embeddings] {
            let (b, ct) = render(shape, b"{\"x\":1}", false, false).unwrap();
            assert_eq!((b.as_slice(), ct), (&b"{\"x\":1}"[..], entry::JSON_CONTENT_TYPE));
        }
    }
}
