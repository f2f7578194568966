//! Anthropic Messages (`POST /v1/messages`): request parsing, stream reassembly, store rules and
//! replay as Anthropic's own event stream (message_start, content_block_start/delta/stop,
//! message_delta, message_stop).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::{body_object, canonical_value, named_event, pick, split_turns, stored_object, Turn};
use crate::core::capture::{answer_model, NotStored, StoreRules};
use crate::core::entry::{pieces, EntryError, PIECE_CHARS};
use crate::core::request::{text_parts, ChatRequest, RequestError};
use crate::core::sse::SseEvent;

/// Fields that change the answer besides the messages. Sampling (`temperature`, `top_p`,
/// `top_k`) is left out as for chat; `metadata` and `service_tier` do not change the answer.
const ANSWER_PARAMS: &[&str] = &[
    "max_tokens",
    "stop_sequences",
    "tools",
    "tool_choice",
    "thinking",
    "output_format",
    "output_config",
    "mcp_servers",
    "container",
    "context_management",
];

/// Stop reasons of complete, normal answers (`max_tokens` as chat's `length`).
const STORABLE_STOP: &[&str] = &["end_turn", "max_tokens", "stop_sequence", "tool_use"];

/// Text of a message's `content` (a string or content blocks); `None` when a block is not text.
fn content_text(content: &Value) -> Option<String> {
    text_parts(content, &["text"])
}

pub fn parse(
    body: &[u8],
    last_user_messages: usize,
    context_window: Option<usize>,
) -> Result<ChatRequest, RequestError> {
    let obj = body_object(body)?;
    let messages = obj.get("messages").and_then(Value::as_array).ok_or(RequestError::NotChat)?;
    let model = obj.get("model").and_then(Value::as_str).ok_or(RequestError::NotChat)?.to_string();
    let turns: Vec<Turn> = messages
        .iter()
        .map(|m| Turn {
            user: m.get("role").and_then(Value::as_str) == Some("user"),
            system: false,
            text: m.get("content").and_then(content_text),
            canon: canonical_value(m),
        })
        .collect();
    let system = match obj.get("system") {
        None | Some(Value::Null) => Vec::new(),
        Some(s) => vec![canonical_value(s)],
    };
    let params = pick(&obj, ANSWER_PARAMS);
    let (embed_text, context) = split_turns(&turns, system, params, last_user_messages, context_window)?;
    Ok(ChatRequest {
        model,
        stream: obj.get("stream").and_then(Value::as_bool).unwrap_or(false),
        include_usage: false,
        n: 1,
        temperature: obj.get("temperature").and_then(Value::as_f64),
        logprobs: false,
        embed_text,
        context,
        shape: Default::default(),
    })
}

/// Rebuilds the `message` from a finished stream. Complete only after `message_stop`, with every
/// content block stopped; an `error` event or an unknown delta means not stored.
pub fn assemble(events: &[SseEvent]) -> Result<Value, NotStored> {
    let mut message: Option<Map<String, Value>> = None;
    let mut blocks: BTreeMap<u64, (Map<String, Value>, String, bool)> = BTreeMap::new();
    let mut stopped = false;
    for ev in events {
        let data: Value = serde_json::from_slice(&ev.data).map_err(|_| NotStored::Incomplete)?;
        let kind = data.get("type").and_then(Value::as_str).unwrap_or("");
        if stopped && kind != "ping" {
            return Err(NotStored::NotChatCompletion);
        }
        let index = data.get("index").and_then(Value::as_u64);
        match kind {
            "ping" => {}
            "message_start" => {
                let m = data.get("message").and_then(Value::as_object).ok_or(NotStored::NotChatCompletion)?;
                message = Some(m.clone());
            }
            "content_block_start" => {
                let b = data.get("content_block").and_then(Value::as_object).ok_or(NotStored::NotChatCompletion)?;
                blocks.insert(index.ok_or(NotStored::NotChatCompletion)?, (b.clone(), String::new(), false));
            }
            "content_block_delta" => {
                let (block, json_buf, _) =
                    index.and_then(|i| blocks.get_mut(&i)).ok_or(NotStored::NotChatCompletion)?;
                let delta = data.get("delta").ok_or(NotStored::NotChatCompletion)?;
                let field = |f: &str| delta.get(f).and_then(Value::as_str).unwrap_or("").to_string();
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => push_str(block, "text", &field("text")),
                    Some("thinking_delta") => push_str(block, "thinking", &field("thinking")),
                    Some("signature_delta") => {
                        block.insert("signature".into(), Value::String(field("signature")));
                    }
                    Some("input_json_delta") => json_buf.push_str(&field("partial_json")),
                    _ => return Err(NotStored::NotChatCompletion),
                }
            }
            "content_block_stop" => {
                let (block, json_buf, done) =
                    index.and_then(|i| blocks.get_mut(&i)).ok_or(NotStored::NotChatCompletion)?;
                if block.get("type").and_then(Value::as_str) == Some("tool_use") && !json_buf.is_empty() {
                    let input: Value = serde_json::from_str(json_buf).map_err(|_| NotStored::Incomplete)?;
                    block.insert("input".into(), input);
                }
                *done = true;
            }
            "message_delta" => {
                let m = message.as_mut().ok_or(NotStored::NotChatCompletion)?;
                if let Some(d) = data.get("delta").and_then(Value::as_object) {
                    for (k, v) in d {
                        m.insert(k.clone(), v.clone());
                    }
                }
                if let Some(u) = data.get("usage").and_then(Value::as_object) {
                    let usage = m.entry("usage").or_insert_with(|| json!({}));
                    if let Some(usage) = usage.as_object_mut() {
                        for (k, v) in u.iter().filter(|(_, v)| !v.is_null()) {
                            usage.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            "message_stop" => stopped = true,
            "error" => return Err(NotStored::NotChatCompletion),
            // Anthropic may add event types; clients are told to ignore the ones they don't know.
            _ => {}
        }
    }
    let mut message = message.ok_or(NotStored::Incomplete)?;
    if !stopped || blocks.values().any(|(_, _, done)| !done) {
        return Err(NotStored::Incomplete);
    }
    let content: Vec<Value> = blocks.into_values().map(|(b, _, _)| Value::Object(b)).collect();
    message.insert("content".into(), Value::Array(content));
    Ok(Value::Object(message))
}

fn push_str(block: &mut Map<String, Value>, field: &str, piece: &str) {
    let mut s = block.get(field).and_then(Value::as_str).unwrap_or("").to_string();
    s.push_str(piece);
    block.insert(field.into(), Value::String(s));
}

/// Checks a `message` against the store rules; returns its model.
pub fn validate(v: &Value, rules: &StoreRules) -> Result<String, NotStored> {
    let obj = v.as_object().ok_or(NotStored::NotChatCompletion)?;
    if obj.get("type").and_then(Value::as_str) != Some("message") {
        return Err(NotStored::NotChatCompletion);
    }
    let content = obj.get("content").and_then(Value::as_array).ok_or(NotStored::NotChatCompletion)?;
    let reason =
        obj.get("stop_reason").and_then(Value::as_str).filter(|r| !r.is_empty()).ok_or(NotStored::Incomplete)?;
    if !STORABLE_STOP.contains(&reason) {
        // `refusal`, `pause_turn` (a server tool continues), or one we do not know.
        return Err(NotStored::FinishReason(reason.chars().take(32).collect()));
    }
    let mut text = false;
    let mut tools = reason == "tool_use";
    for b in content {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text |= b.get("text").and_then(Value::as_str).is_some_and(|t| !t.is_empty()),
            Some("tool_use") => tools = true,
            Some("thinking") => {}
            // Server tool results, redacted thinking, ...: not replayed.
            _ => return Err(NotStored::NotChatCompletion),
        }
    }
    if tools && !rules.allow_tool_calls {
        return Err(NotStored::ToolCalls);
    }
    if !tools && !text {
        return Err(NotStored::Empty);
    }
    answer_model(obj)
}

/// Replays a stored `message` as Anthropic's event stream: text in ~20-char `text_delta`s,
/// thinking as `thinking_delta`s plus its signature, a tool call's input as one
/// `input_json_delta`.
pub fn render_sse(stored: &[u8]) -> Result<Vec<u8>, EntryError> {
    let msg = stored_object(stored)?;
    let content = msg.get("content").and_then(Value::as_array).ok_or(EntryError::Shape("no content"))?;
    let usage = msg.get("usage").cloned().unwrap_or_else(|| json!({}));
    let mut start = msg.clone();
    start.insert("content".into(), json!([]));
    start.insert("stop_reason".into(), Value::Null);
    start.insert("stop_sequence".into(), Value::Null);
    let mut out = Vec::with_capacity(stored.len() * 3);
    named_event(&mut out, "message_start", &json!({"type": "message_start", "message": start}))?;
    for (i, block) in content.iter().enumerate() {
        let kind = block.get("type").and_then(Value::as_str).ok_or(EntryError::Shape("block without type"))?;
        let delta = |d: Value| json!({"type": "content_block_delta", "index": i, "delta": d});
        let mut deltas = Vec::new();
        let opening = match kind {
            "text" => {
                let text = block.get("text").and_then(Value::as_str).unwrap_or("");
                deltas.extend(
                    pieces(text, PIECE_CHARS).into_iter().map(|p| delta(json!({"type": "text_delta", "text": p}))),
                );
                json!({"type": "text", "text": ""})
            }
            "thinking" => {
                let text = block.get("thinking").and_then(Value::as_str).unwrap_or("");
                deltas.extend(
                    pieces(text, PIECE_CHARS)
                        .into_iter()
                        .map(|p| delta(json!({"type": "thinking_delta", "thinking": p}))),
                );
                if let Some(sig) = block.get("signature") {
                    deltas.push(delta(json!({"type": "signature_delta", "signature": sig})));
                }
                json!({"type": "thinking", "thinking": "", "signature": ""})
            }
            "tool_use" => {
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                deltas.push(delta(json!({"type": "input_json_delta", "partial_json": input.to_string()})));
                json!({"type": "tool_use", "id": block.get("id"), "name": block.get("name"), "input": {}})
            }
            _ => return Err(EntryError::Shape("unsupported content block")),
        };
        named_event(
            &mut out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": i, "content_block": opening}),
        )?;
        for d in &deltas {
            named_event(&mut out, "content_block_delta", d)?;
        }
        named_event(&mut out, "content_block_stop", &json!({"type": "content_block_stop", "index": i}))?;
    }
    let delta = json!({"stop_reason": msg.get("stop_reason"), "stop_sequence": msg.get("stop_sequence").unwrap_or(&Value::Null)});
    let out_tokens = usage.get("output_tokens").cloned().unwrap_or(json!(0));
    named_event(
        &mut out,
        "message_delta",
        &json!({"type": "message_delta", "delta": delta, "usage": {"output_tokens": out_tokens}}),
    )?;
    named_event(&mut out, "message_stop", &json!({"type": "message_stop"}))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::api::sse_events;

    const RULES: StoreRules = StoreRules { allow_tool_calls: false };

    fn req(v: Value) -> Result<ChatRequest, RequestError> {
        parse(v.to_string().as_bytes(), 1, None)
    }

    fn message(text: &str, stop: &str) -> Value {
        json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
               "content": [{"type": "text", "text": text}], "stop_reason": stop, "stop_sequence": null,
               "usage": {"input_tokens": 9, "output_tokens": 4}})
    }

    const STREAM: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n\
event: ping\ndata: {\"type\": \"ping\"}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hé \"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"there\"}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":4}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    fn assemble_chunked(raw: &[u8], split: usize) -> Result<Value, NotStored> {
        let mut p = crate::core::sse::SseParser::new();
        let mut evs = Vec::new();
        for part in raw.chunks(split) {
            evs.extend(p.push(part));
        }
        evs.extend(p.finish());
        assemble(&evs)
    }

    #[test]
    fn parses_system_blocks_and_params() {
        let r = req(json!({"model": "claude-x", "max_tokens": 64, "stream": true, "temperature": 0.2,
            "system": [{"type": "text", "text": "Be  brief.", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                         {"role": "user", "content": [{"type": "text", "text": " What is\nRust? "}]}]}))
        .unwrap();
        assert_eq!((r.embed_text.as_str(), r.model.as_str(), r.stream), ("What is Rust?", "claude-x", true));
        assert_eq!(r.temperature, Some(0.2));
        assert!(r.context.contains("Be brief.") && r.context.contains("hello") && !r.context.contains("cache_control"));
        let base = json!({"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "q"}]});
        let ctx = |v: Value| req(v).unwrap().context;
        let mut other = base.clone();
        other["max_tokens"] = json!(65);
        assert_ne!(ctx(base.clone()), ctx(other));
        let mut sys = base.clone();
        sys["system"] = json!("S");
        assert_ne!(ctx(base.clone()), ctx(sys));
        let mut sampled = base.clone();
        sampled["temperature"] = json!(1.0);
        sampled["metadata"] = json!({"user_id": "u"});
        assert_eq!(ctx(base), ctx(sampled));
    }

    #[test]
    fn parse_errors() {
        assert_eq!(parse(b"[", 1, None), Err(RequestError::InvalidJson));
        assert_eq!(req(json!({"model": "m"})), Err(RequestError::NotChat));
        assert_eq!(req(json!({"messages": [{"role": "user", "content": "q"}]})), Err(RequestError::NotChat));
        let tool_result = json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t", "content": "42"}]}]});
        assert_eq!(req(tool_result), Err(RequestError::NonTextContent));
        let prefill = json!({"model": "m", "messages": [{"role": "user", "content": "q"},
            {"role": "assistant", "content": "The answer is"}]});
        assert_eq!(req(prefill), Err(RequestError::NoUserMessage));
    }

    #[test]
    fn stream_reassembles_at_any_chunking() {
        for split in [1, 5, 64, STREAM.len()] {
            let v = assemble_chunked(STREAM.as_bytes(), split).unwrap();
            assert_eq!(v["content"][0]["text"], "Hé there");
            assert_eq!(v["stop_reason"], "end_turn");
            assert_eq!(v["usage"], json!({"input_tokens": 9, "output_tokens": 4}));
            assert_eq!(validate(&v, &RULES).unwrap(), "claude-x");
        }
    }

    #[test]
    fn incomplete_streams_are_refused() {
        let no_stop = STREAM.replace("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", "");
        assert_eq!(assemble(&sse_events(no_stop.as_bytes())), Err(NotStored::Incomplete));
        let cut = &STREAM[..STREAM.find("event: content_block_stop").unwrap()];
        assert_eq!(assemble(&sse_events(cut.as_bytes())), Err(NotStored::Incomplete));
        let error = STREAM.replace(
            "event: ping\ndata: {\"type\": \"ping\"}",
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}",
        );
        assert_eq!(assemble(&sse_events(error.as_bytes())), Err(NotStored::NotChatCompletion));
        assert_eq!(assemble(&[]), Err(NotStored::Incomplete));
        let unknown_delta =
            STREAM.replace("\"type\":\"text_delta\",\"text\":\"there\"", "\"type\":\"citations_delta\"");
        assert_eq!(assemble(&sse_events(unknown_delta.as_bytes())), Err(NotStored::NotChatCompletion));
    }

    #[test]
    fn unknown_events_are_ignored() {
        let extra =
            STREAM.replace("event: ping", "event: future_event\ndata: {\"type\":\"future_event\"}\n\nevent: ping");
        assert_eq!(assemble(&sse_events(extra.as_bytes())).unwrap()["content"][0]["text"], "Hé there");
    }

    #[test]
    fn store_rules() {
        assert_eq!(validate(&message("x", "end_turn"), &RULES).unwrap(), "claude-x");
        assert!(validate(&message("x", "max_tokens"), &RULES).is_ok());
        assert_eq!(validate(&message("x", "refusal"), &RULES), Err(NotStored::FinishReason("refusal".into())));
        assert_eq!(validate(&message("", "end_turn"), &RULES), Err(NotStored::Empty));
        let mut open = message("x", "end_turn");
        open["stop_reason"] = Value::Null;
        assert_eq!(validate(&open, &RULES), Err(NotStored::Incomplete));
        let mut tool = message("x", "tool_use");
        tool["content"] = json!([{"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}}]);
        assert_eq!(validate(&tool, &RULES), Err(NotStored::ToolCalls));
        assert!(validate(&tool, &StoreRules { allow_tool_calls: true }).is_ok());
        assert_eq!(validate(&json!({"type": "error", "error": {}}), &RULES), Err(NotStored::NotChatCompletion));
    }

    #[test]
    fn replay_round_trips() {
        let mut stored = message(&"Ünïcode text that is longer than twenty chars. ".repeat(3), "end_turn");
        stored["content"] = json!([{"type": "thinking", "thinking": "hmm, let me see", "signature": "sig"},
            stored["content"][0].clone(), {"type": "tool_use", "id": "t1", "name": "f", "input": {"q": "x"}}]);
        let body = serde_json::to_vec(&stored).unwrap();
        let sse = render_sse(&body).unwrap();
        let evs = sse_events(&sse);
        assert_eq!(evs[0].event.as_deref(), Some("message_start"));
        assert_eq!(evs.last().unwrap().event.as_deref(), Some("message_stop"));
        assert!(evs.len() > 10);
        for split in [1, 9, sse.len()] {
            assert_eq!(assemble_chunked(&sse, split).unwrap(), stored);
        }
        assert!(render_sse(b"[]").is_err());
        assert!(render_sse(br#"{"content":[{"type":"image"}]}"#).is_err());
    }
}
