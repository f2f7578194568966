//! Parses an OpenAI / Azure OpenAI / Mistral chat-completions body into what the cache needs:
//! the text to embed, the context that must match exactly, and the knobs that decide storing.

use serde_json::{Map, Value};
use thiserror::Error;
use unicode_normalization::UnicodeNormalization;

use crate::core::api::ApiShape;
use crate::core::bypass::BypassReason;

#[derive(Debug, Error, PartialEq)]
pub enum RequestError {
    #[error("body is not valid JSON")]
    InvalidJson,
    #[error("body is not a chat completion request")]
    NotChat,
    #[error("no user message to embed")]
    NoUserMessage,
    #[error("embedded messages carry non-text content")]
    NonTextContent,
    /// A request whose answer depends on state the cache cannot see, or a mode it cannot replay.
    #[error("request is not cacheable: {0}")]
    Unsupported(&'static str),
}

impl RequestError {
    pub fn reason(&self) -> BypassReason {
        match self {
            RequestError::InvalidJson => BypassReason::InvalidJson,
            RequestError::NotChat => BypassReason::NotChat,
            RequestError::NoUserMessage | RequestError::NonTextContent | RequestError::Unsupported(_) => {
                BypassReason::NotCacheable
            }
        }
    }
}

/// Request fields that change the answer but are not the embedded text. They are hashed into the
/// partition, so two requests share entries only when all of these are equal. Sampling randomness
/// (`temperature`, `top_p`, penalties) is deliberately not here: it changes which answer is drawn,
/// not which answers are right; `store.maxTemperature` keeps very random answers out instead.
pub const ANSWER_PARAMS: &[&str] = &[
    "tools",
    "functions",
    "tool_choice",
    "function_call",
    "parallel_tool_calls",
    "response_format",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "seed",
    "random_seed",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "n",
    "reasoning_effort",
    "modalities",
    "audio",
    "safe_prompt",
    "prediction",
];

#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// Model from the body, or the Azure deployment from the path.
    pub model: String,
    pub stream: bool,
    pub include_usage: bool,
    pub n: u64,
    pub temperature: Option<f64>,
    /// Log-probabilities are not kept by stream reassembly or replay: such answers are not stored.
    pub logprobs: bool,
    /// Normalised text of the last N user messages, joined by newlines.
    pub embed_text: String,
    /// Canonical JSON of everything else that must match: context messages and answer params.
    pub context: String,
    /// The API the request speaks: decides capture and replay, and is part of the context.
    pub shape: ApiShape,
}

/// Azure OpenAI puts the deployment (= model) in the path, and the body usually has no `model`.
pub fn azure_deployment(path: &str) -> Option<&str> {
    let path = path.split('?').next().unwrap_or(path);
    let rest = path.strip_prefix("/openai/deployments/")?;
    let (dep, tail) = rest.split_once('/')?;
    (!dep.is_empty() && tail.starts_with("chat/completions")).then_some(dep)
}

/// Whether the path is a chat-completions endpoint in any of the supported shapes.
pub fn is_chat_path(path: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    path.ends_with("/chat/completions")
}

/// Unicode NFKC, whitespace runs collapsed to one space, trimmed.
pub fn normalize_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.nfkc().collect::<String>().split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Text of a message's `content`: a string, or the text parts of an array. `None` when any part
/// is not text (an image or audio the embedding would not see).
fn content_text(content: &Value) -> Option<String> {
    match content {
        Value::Null => Some(String::new()),
        c => text_parts(c, &["text"]),
    }
}

/// Text of a `content` that is a string or an array of `{"type", "text"}` parts, joined by
/// newlines; `None` when a part's type is not one of `text_types` (every API names its text parts
/// its own way) or the content is neither.
pub(crate) fn text_parts(content: &Value, text_types: &[&str]) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let mut texts = Vec::with_capacity(parts.len());
            for p in parts {
                match (p.get("type").and_then(Value::as_str), p.get("text").and_then(Value::as_str)) {
                    (Some(ty), Some(t)) if text_types.contains(&ty) => texts.push(t),
                    _ => return None,
                }
            }
            Some(texts.join("\n"))
        }
        _ => None,
    }
}

pub fn parse_chat(
    body: &[u8],
    path: &str,
    last_user_messages: usize,
    context_window: Option<usize>,
) -> Result<ChatRequest, RequestError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| RequestError::InvalidJson)?;
    let obj = v.as_object().ok_or(RequestError::NotChat)?;
    let messages = obj.get("messages").and_then(Value::as_array).ok_or(RequestError::NotChat)?;
    // Without `model` (and no Azure deployment in the path) the upstream route picks the model; the
    // route and the provider are in the partition, so the empty model cannot mix two models' answers.
    let model = match (azure_deployment(path), obj.get("model")) {
        (Some(dep), _) => format!("azure/{dep}"),
        (None, Some(Value::String(m))) => m.clone(),
        (None, None | Some(Value::Null)) => String::new(),
        (None, Some(_)) => return Err(RequestError::NotChat),
    };
    let role = |m: &Value| m.get("role").and_then(Value::as_str).unwrap_or("").to_string();

    // A prompt sent as the only or last message with a system/developer role (WSO2's sample
    // payload) is embedded itself. Otherwise the last N user messages are embedded and everything
    // else is context.
    let last_role = messages.last().map(role).unwrap_or_default();
    let mut embedded: Vec<usize> = if last_role == "system" || last_role == "developer" {
        vec![messages.len() - 1]
    } else {
        messages
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, m)| role(m) == "user")
            .take(last_user_messages.max(1))
            .map(|(i, _)| i)
            .collect()
    };
    embedded.reverse();
    // The last user message must be the last message: otherwise the request continues a turn
    // (e.g. tool results after it) and the answer depends on what follows.
    let last = *embedded.last().ok_or(RequestError::NoUserMessage)?;
    if last + 1 != messages.len() {
        return Err(RequestError::NoUserMessage);
    }
    let mut texts = Vec::with_capacity(embedded.len());
    for &i in &embedded {
        let t = messages[i].get("content").and_then(content_text).ok_or(RequestError::NonTextContent)?;
        texts.push(normalize_text(&t));
    }
    let embed_text = texts.join("\n");
    if embed_text.is_empty() {
        return Err(RequestError::NoUserMessage);
    }

    // Context: every system/developer message, plus the last `context_window` other messages
    // before the embedded ones (all when None). Strings are normalised so spacing doesn't split.
    let first_embedded = embedded.first().copied().unwrap_or(0);
    let mut others: Vec<Value> = Vec::new();
    let mut system: Vec<Value> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        if embedded.contains(&i) {
            continue;
        }
        let r = role(m);
        let c = canonical_message(m);
        if r == "system" || r == "developer" {
            system.push(c);
        } else if i < first_embedded {
            others.push(c);
        } else {
            // Between embedded user messages (assistant replies): always part of the context.
            system.push(c);
        }
    }
    if let Some(w) = context_window {
        let skip = others.len().saturating_sub(w);
        others.drain(..skip);
    }
    let mut params = Map::new();
    for k in ANSWER_PARAMS {
        if let Some(val) = obj.get(*k) {
            if !val.is_null() {
                params.insert((*k).to_string(), val.clone());
            }
        }
    }
    // serde_json's Map is a BTreeMap (no preserve_order feature), so this is canonical.
    let context = serde_json::json!({"s": system, "h": others, "p": params}).to_string();

    let stream = obj.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage =
        obj.get("stream_options").and_then(|o| o.get("include_usage")).and_then(Value::as_bool).unwrap_or(false);
    let n = obj.get("n").and_then(Value::as_u64).unwrap_or(1);
    let temperature = obj.get("temperature").and_then(Value::as_f64);
    let logprobs = obj.get("logprobs").and_then(Value::as_bool).unwrap_or(false);
    Ok(ChatRequest {
        model,
        stream,
        include_usage,
        n,
        temperature,
        logprobs,
        embed_text,
        context,
        shape: ApiShape::OpenAiChat,
    })
}

fn canonical_message(m: &Value) -> Value {
    let mut m = m.clone();
    if let Some(Value::String(s)) = m.get("content") {
        let n = normalize_text(s);
        m["content"] = Value::String(n);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(v: serde_json::Value) -> Result<ChatRequest, RequestError> {
        parse_chat(v.to_string().as_bytes(), "/v1/chat/completions", 1, None)
    }

    #[test]
    fn last_user_message_is_embedded() {
        let r = chat(serde_json::json!({"model": "gpt-4o", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "  What is\u{00a0}Rust?\n"}]}))
        .expect("ok");
        assert_eq!(r.embed_text, "What is Rust?");
        assert_eq!(r.model, "gpt-4o");
        assert!(r.context.contains("Be brief."));
        assert!(r.context.contains("hello"));
        assert!(!r.stream);
    }

    #[test]
    fn errors() {
        assert_eq!(parse_chat(b"{", "/v1/chat/completions", 1, None), Err(RequestError::InvalidJson));
        assert_eq!(chat(serde_json::json!({"model": "m"})), Err(RequestError::NotChat));
        assert_eq!(
            chat(serde_json::json!({"model": 3, "messages": [{"role": "user", "content": "q"}]})),
            Err(RequestError::NotChat)
        );
        assert_eq!(chat(serde_json::json!({"model": "m", "messages": []})), Err(RequestError::NoUserMessage));
        assert_eq!(
            chat(serde_json::json!({"model": "m", "messages": [{"role": "assistant", "content": "x"}]})),
            Err(RequestError::NoUserMessage)
        );
        let img = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": "x"}}]}]});
        assert_eq!(chat(img), Err(RequestError::NonTextContent));
        let tool_after = serde_json::json!({"model": "m", "messages": [
            {"role": "user", "content": "q"}, {"role": "tool", "content": "r", "tool_call_id": "1"}]});
        assert_eq!(chat(tool_after), Err(RequestError::NoUserMessage));
    }

    #[test]
    fn system_only_prompt_without_model_is_embedded() {
        // WSO2's sample: one system message, Azure deployment path, no model in the body.
        let body = serde_json::json!({"messages": [{"role": "system", "content": " How do I reset my password? "}]});
        let r = parse_chat(body.to_string().as_bytes(), "/openai/deployments/gpt-4o/chat/completions", 1, None)
            .expect("ok");
        assert_eq!((r.embed_text.as_str(), r.model.as_str()), ("How do I reset my password?", "azure/gpt-4o"));
        // A developer message after a system prompt: the last one is embedded, the first is context.
        let r = chat(serde_json::json!({"messages": [{"role": "system", "content": "Be brief."},
            {"role": "developer", "content": "Explain DNS"}]}))
        .expect("ok");
        assert_eq!((r.embed_text.as_str(), r.model.as_str()), ("Explain DNS", ""));
        assert!(r.context.contains("Be brief.") && !r.context.contains("Explain DNS"));
    }

    #[test]
    fn text_parts_are_joined() {
        let r = chat(serde_json::json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}))
        .expect("ok");
        assert_eq!(r.embed_text, "a b");
    }

    #[test]
    fn azure_deployment_is_the_model() {
        let body = serde_json::json!({"messages": [{"role": "user", "content": "q"}]}).to_string();
        let r = parse_chat(body.as_bytes(), "/openai/deployments/gpt4/chat/completions?api-version=2024", 1, None)
            .expect("ok");
        assert_eq!(r.model, "azure/gpt4");
        assert!(is_chat_path("/openai/deployments/gpt4/chat/completions?api-version=2024"));
        assert!(!is_chat_path("/v1/embeddings"));
    }

    #[test]
    fn context_changes_with_answer_params_not_sampling() {
        let base = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "q"}]});
        let mut a = base.clone();
        a["temperature"] = 0.7.into();
        a["stream"] = true.into();
        let mut b = base.clone();
        b["max_tokens"] = 5.into();
        let mut c = base.clone();
        c["response_format"] = serde_json::json!({"type": "json_object"});
        let ctx = |v| chat(v).expect("ok").context;
        assert_eq!(ctx(base.clone()), ctx(a));
        assert_ne!(ctx(base.clone()), ctx(b));
        assert_ne!(ctx(base), ctx(c));
    }

    #[test]
    fn context_window_limits_history() {
        let msgs = serde_json::json!([
            {"role": "system", "content": "S"},
            {"role": "user", "content": "old1"}, {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "old2"}, {"role": "assistant", "content": "a2"},
            {"role": "user", "content": "now"}]);
        let body = serde_json::json!({"model": "m", "messages": msgs}).to_string();
        let all = parse_chat(body.as_bytes(), "/v1/chat/completions", 1, None).expect("ok");
        let two = parse_chat(body.as_bytes(), "/v1/chat/completions", 1, Some(2)).expect("ok");
        assert!(all.context.contains("old1"));
        assert!(!two.context.contains("old1"));
        assert!(two.context.contains("old2") && two.context.contains("\"S\""));
        let last2 = parse_chat(body.as_bytes(), "/v1/chat/completions", 2, None).expect("ok");
        assert_eq!(last2.embed_text, "old2\nnow");
        assert!(last2.context.contains("a2"));
    }

    #[test]
    fn normalisation() {
        assert_eq!(normalize_text(" a \t b\n"), "a b");
        assert_eq!(normalize_text("ｆｕｌｌ"), "full");
    }

    #[test]
    fn stream_flags() {
        let r = chat(serde_json::json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
            "n": 2, "temperature": 1.5, "messages": [{"role": "user", "content": "q"}]}))
        .expect("ok");
        assert!(r.stream && r.include_usage);
        assert_eq!((r.n, r.temperature), (2, Some(1.5)));
    }
}
