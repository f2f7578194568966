//! OpenAI Responses (`POST /v1/responses`): `input` as a string or items, `instructions` as the
//! system prompt. Its stream is named events (response.created ... response.output_text.delta
//! ... response.completed); `response.completed` carries the whole response, so a stream is
//! complete only with it.
//!
//! Stateful requests are not cached: with `previous_response_id` or `conversation` the answer
//! depends on turns stored at OpenAI that the cache cannot see, and `background` answers are
//! fetched later by id. `store` (default true) is not a reason to skip: a hit replays the id of a
//! real response of the same partition (same tenant), which a client may continue from as it
//! could from the original.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{body_object, canonical_value, named_event, pick, split_turns, stored_object, Turn};
use crate::core::capture::{answer_model, NotStored, StoreRules};
use crate::core::entry::{pieces, EntryError, PIECE_CHARS};
use crate::core::request::{text_parts, ChatRequest, RequestError};
use crate::core::sse::SseEvent;

/// Fields that change the answer besides the input. Sampling (`temperature`, `top_p`) is left out
/// as for chat; `metadata`, `user`, `store`, `service_tier` do not change the answer.
const ANSWER_PARAMS: &[&str] = &[
    "tools",
    "tool_choice",
    "text",
    "max_output_tokens",
    "max_tool_calls",
    "reasoning",
    "truncation",
    "parallel_tool_calls",
    "include",
    "prompt",
    "top_logprobs",
];

/// Output item types a hit can replay (server-side tool calls are time-dependent: not stored).
const REPLAYABLE_ITEMS: &[&str] = &["message", "reasoning", "function_call"];

/// Text of an input item's `content`: a string or `input_text`/`output_text` parts.
fn content_text(content: &Value) -> Option<String> {
    text_parts(content, &["input_text", "output_text", "text"])
}

pub fn parse(
    body: &[u8],
    last_user_messages: usize,
    context_window: Option<usize>,
) -> Result<ChatRequest, RequestError> {
    let obj = body_object(body)?;
    let set = |k: &str| obj.get(k).is_some_and(|v| !v.is_null() && v != &Value::Bool(false));
    if set("previous_response_id") || set("conversation") || set("background") {
        return Err(RequestError::Unsupported("stateful responses request"));
    }
    let model = match obj.get("model") {
        Some(Value::String(m)) => m.clone(),
        None | Some(Value::Null) => String::new(),
        Some(_) => return Err(RequestError::NotChat),
    };
    let turns: Vec<Turn> = match obj.get("input") {
        Some(Value::String(s)) => {
            vec![Turn {
                user: true,
                system: false,
                text: Some(s.clone()),
                canon: json!({"role": "user", "content": s}),
            }]
        }
        Some(Value::Array(items)) => items
            .iter()
            .map(|it| {
                let role = it.get("role").and_then(Value::as_str);
                let message = matches!(it.get("type").and_then(Value::as_str), None | Some("message"));
                Turn {
                    user: message && role == Some("user"),
                    system: message && matches!(role, Some("system" | "developer")),
                    text: it.get("content").and_then(content_text),
                    canon: canonical_value(it),
                }
            })
            .collect(),
        _ => return Err(RequestError::NotChat),
    };
    let system = match obj.get("instructions") {
        None | Some(Value::Null) => Vec::new(),
        Some(i) => vec![canonical_value(i)],
    };
    let params = pick(&obj, ANSWER_PARAMS);
    let (embed_text, context) = split_turns(&turns, system, params, last_user_messages, context_window)?;
    let logprobs = obj.get("top_logprobs").and_then(Value::as_u64).is_some_and(|n| n > 0)
        || obj
            .get("include")
            .and_then(Value::as_array)
            .is_some_and(|i| i.iter().any(|x| x.as_str().is_some_and(|s| s.contains("logprobs"))));
    Ok(ChatRequest {
        model,
        stream: obj.get("stream").and_then(Value::as_bool).unwrap_or(false),
        include_usage: false,
        n: 1,
        temperature: obj.get("temperature").and_then(Value::as_f64),
        logprobs,
        embed_text,
        context,
        shape: Default::default(),
    })
}

/// The response of a finished stream: the one `response.completed` carries. Output items seen in
/// `response.output_item.done` fill in an empty `output`.
pub fn assemble(events: &[SseEvent]) -> Result<Value, NotStored> {
    let mut done_items: BTreeMap<u64, Value> = BTreeMap::new();
    let mut completed: Option<Value> = None;
    for ev in events {
        let data: Value = serde_json::from_slice(&ev.data).map_err(|_| NotStored::Incomplete)?;
        let kind = data.get("type").and_then(Value::as_str).unwrap_or("");
        if completed.is_some() {
            return Err(NotStored::NotChatCompletion);
        }
        match kind {
            "error" | "response.failed" | "response.incomplete" => return Err(NotStored::NotChatCompletion),
            "response.output_item.done" => {
                let i = data.get("output_index").and_then(Value::as_u64).ok_or(NotStored::NotChatCompletion)?;
                done_items.insert(i, data.get("item").cloned().ok_or(NotStored::NotChatCompletion)?);
            }
            "response.completed" => {
                completed =
                    Some(data.get("response").filter(|r| r.is_object()).cloned().ok_or(NotStored::NotChatCompletion)?)
            }
            _ => {}
        }
    }
    let mut response = completed.ok_or(NotStored::Incomplete)?;
    if response.get("output").and_then(Value::as_array).is_none_or(Vec::is_empty) && !done_items.is_empty() {
        response["output"] = Value::Array(done_items.into_values().collect());
    }
    Ok(response)
}

/// Checks a `response` against the store rules; returns its model.
pub fn validate(v: &Value, rules: &StoreRules) -> Result<String, NotStored> {
    let obj = v.as_object().ok_or(NotStored::NotChatCompletion)?;
    if obj.get("object").and_then(Value::as_str) != Some("response") || obj.get("error").is_some_and(|e| !e.is_null()) {
        return Err(NotStored::NotChatCompletion);
    }
    match obj.get("status").and_then(Value::as_str) {
        Some("completed") => {}
        Some("in_progress" | "queued") | None => return Err(NotStored::Incomplete),
        Some(other) => return Err(NotStored::FinishReason(other.chars().take(32).collect())),
    }
    let output = obj.get("output").and_then(Value::as_array).ok_or(NotStored::NotChatCompletion)?;
    let (mut text, mut tools) = (false, false);
    for item in output {
        let kind = item.get("type").and_then(Value::as_str).unwrap_or("");
        if !REPLAYABLE_ITEMS.contains(&kind) {
            return Err(NotStored::NotChatCompletion);
        }
        tools |= kind == "function_call";
        for part in item.get("content").and_then(Value::as_array).into_iter().flatten().filter(|_| kind == "message") {
            match part.get("type").and_then(Value::as_str) {
                Some("output_text") => text |= part.get("text").and_then(Value::as_str).is_some_and(|t| !t.is_empty()),
                // A refusal is not worth replaying to other users.
                _ => return Err(NotStored::Empty),
            }
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

struct Events {
    out: Vec<u8>,
    seq: u64,
}

impl Events {
    fn emit(&mut self, kind: &str, mut data: Value) -> Result<(), EntryError> {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        named_event(&mut self.out, kind, &data)
    }
}

/// Replays a stored `response` as the Responses event stream: created, in_progress, each output
/// item added/done (message text as ~20-char `output_text.delta`s inside its content part,
/// function-call arguments as one delta), completed.
pub fn render_sse(stored: &[u8]) -> Result<Vec<u8>, EntryError> {
    let resp = stored_object(stored)?;
    let output = resp.get("output").and_then(Value::as_array).ok_or(EntryError::Shape("no output"))?;
    let mut start = resp.clone();
    start.insert("status".into(), json!("in_progress"));
    start.insert("output".into(), json!([]));
    start.insert("usage".into(), Value::Null);
    let mut ev = Events { out: Vec::with_capacity(stored.len() * 4), seq: 0 };
    ev.emit("response.created", json!({"response": start}))?;
    ev.emit("response.in_progress", json!({"response": start}))?;
    for (oi, item) in output.iter().enumerate() {
        let item_obj = item.as_object().ok_or(EntryError::Shape("output item is not an object"))?;
        let id = item_obj.get("id").cloned().unwrap_or(Value::Null);
        let kind = item_obj.get("type").and_then(Value::as_str).unwrap_or("");
        let mut added = item_obj.clone();
        match kind {
            "message" => {
                added.insert("content".into(), json!([]));
                added.insert("status".into(), json!("in_progress"));
            }
            "function_call" => {
                added.insert("arguments".into(), json!(""));
                added.insert("status".into(), json!("in_progress"));
            }
            _ => {}
        }
        ev.emit("response.output_item.added", json!({"output_index": oi, "item": added}))?;
        if kind == "message" {
            let parts = item_obj.get("content").and_then(Value::as_array).cloned().unwrap_or_default();
            for (ci, part) in parts.iter().enumerate() {
                let text = part.get("text").and_then(Value::as_str).unwrap_or("");
                let at = json!({"item_id": id, "output_index": oi, "content_index": ci});
                let with = |extra: Value| {
                    let mut v = at.clone();
                    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                        o.extend(e.clone());
                    }
                    v
                };
                let mut empty = part.clone();
                empty["text"] = json!("");
                ev.emit("response.content_part.added", with(json!({"part": empty})))?;
                for piece in pieces(text, PIECE_CHARS) {
                    ev.emit("response.output_text.delta", with(json!({"delta": piece, "logprobs": []})))?;
                }
                ev.emit("response.output_text.done", with(json!({"text": text, "logprobs": []})))?;
                ev.emit("response.content_part.done", with(json!({"part": part})))?;
            }
        } else if kind == "function_call" {
            let args = item_obj.get("arguments").cloned().unwrap_or_else(|| json!(""));
            let at = json!({"item_id": id, "output_index": oi});
            let mut delta = at.clone();
            delta["delta"] = args.clone();
            ev.emit("response.function_call_arguments.delta", delta)?;
            let mut done = at;
            done["arguments"] = args;
            ev.emit("response.function_call_arguments.done", done)?;
        }
        ev.emit("response.output_item.done", json!({"output_index": oi, "item": item}))?;
    }
    ev.emit("response.completed", json!({"response": resp}))?;
    Ok(ev.out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::api::sse_events;

    const RULES: StoreRules = StoreRules { allow_tool_calls: false };

    fn req(v: Value) -> Result<ChatRequest, RequestError> {
        parse(v.to_string().as_bytes(), 1, None)
    }

    fn response(text: &str, status: &str) -> Value {
        json!({"id": "resp_1", "object": "response", "created_at": 1700000000, "status": status, "model": "gpt-4o",
               "output": [{"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                           "content": [{"type": "output_text", "text": text, "annotations": []}]}],
               "usage": {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}})
    }

    #[test]
    fn parses_string_and_items() {
        let r =
            req(json!({"model": "gpt-4o", "input": " What is  Rust? ", "instructions": "Be brief.", "stream": true}))
                .unwrap();
        assert_eq!((r.embed_text.as_str(), r.model.as_str(), r.stream), ("What is Rust?", "gpt-4o", true));
        assert!(r.context.contains("Be brief."));
        let items = req(json!({"model": "m", "input": [
            {"role": "developer", "content": "Dev note"},
            {"role": "user", "content": "hi"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hello"}]},
            {"role": "user", "content": [{"type": "input_text", "text": "What is Rust?"}]}]}))
        .unwrap();
        assert_eq!(items.embed_text, "What is Rust?");
        assert!(items.context.contains("Dev note") && items.context.contains("hello"));
        let base = json!({"model": "m", "input": "q"});
        let ctx = |v: Value| req(v).unwrap().context;
        let mut capped = base.clone();
        capped["max_output_tokens"] = json!(5);
        assert_ne!(ctx(base.clone()), ctx(capped));
        let mut instr = base.clone();
        instr["instructions"] = json!("x");
        assert_ne!(ctx(base.clone()), ctx(instr));
        let mut sampled = base.clone();
        sampled["temperature"] = json!(0.9);
        sampled["store"] = json!(false);
        sampled["metadata"] = json!({"a": "b"});
        assert_eq!(ctx(base), ctx(sampled));
    }

    #[test]
    fn stateful_and_bad_requests() {
        for stateful in
            [json!({"previous_response_id": "resp_0"}), json!({"conversation": "conv_1"}), json!({"background": true})]
        {
            let mut b = json!({"model": "m", "input": "q"});
            b.as_object_mut().unwrap().extend(stateful.as_object().unwrap().clone());
            assert!(matches!(req(b), Err(RequestError::Unsupported(_))));
        }
        assert!(req(json!({"model": "m", "input": "q", "background": false, "previous_response_id": null})).is_ok());
        assert_eq!(req(json!({"model": "m"})), Err(RequestError::NotChat));
        let tool_out = json!({"model": "m", "input": [{"role": "user", "content": "q"},
            {"type": "function_call_output", "call_id": "c", "output": "42"}]});
        assert_eq!(req(tool_out), Err(RequestError::NoUserMessage));
        let image =
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]});
        assert_eq!(req(image), Err(RequestError::NonTextContent));
        assert!(req(json!({"model": "m", "input": "q", "top_logprobs": 2})).unwrap().logprobs);
    }

    #[test]
    fn stream_reassembles_at_any_chunking() {
        let stored = response("Hé there, a reply long enough to be split.", "completed");
        let sse = render_sse(&serde_json::to_vec(&stored).unwrap()).unwrap();
        let evs = sse_events(&sse);
        let kinds: Vec<&str> = evs.iter().map(|e| e.event.as_deref().unwrap_or("")).collect();
        assert_eq!(
            &kinds[..4],
            ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
        );
        assert_eq!(kinds.last(), Some(&"response.completed"));
        assert!(kinds.iter().filter(|k| **k == "response.output_text.delta").count() >= 2);
        for split in [1, 7, sse.len()] {
            let mut p = crate::core::sse::SseParser::new();
            let mut all = Vec::new();
            for part in sse.chunks(split) {
                all.extend(p.push(part));
            }
            all.extend(p.finish());
            let v = assemble(&all).unwrap();
            assert_eq!(v, stored);
            assert_eq!(validate(&v, &RULES).unwrap(), "gpt-4o");
        }
    }

    #[test]
    fn incomplete_streams_are_refused() {
        let sse = render_sse(&serde_json::to_vec(&response("abc", "completed")).unwrap()).unwrap();
        let cut = &sse[..sse.windows(27).position(|w| w == b"event: response.completed\nd").unwrap()];
        assert_eq!(assemble(&sse_events(cut)), Err(NotStored::Incomplete));
        let failed = b"event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{}}\n\n";
        assert_eq!(assemble(&sse_events(failed)), Err(NotStored::NotChatCompletion));
        assert_eq!(assemble(&[]), Err(NotStored::Incomplete));
    }

    #[test]
    fn output_items_fill_an_empty_output() {
        let item = response("x", "completed")["output"][0].clone();
        let raw = format!(
            "event: response.output_item.done\ndata: {}\n\nevent: response.completed\ndata: {}\n\n",
            json!({"type": "response.output_item.done", "output_index": 0, "item": item}),
            json!({"type": "response.completed", "response": {"object": "response", "status": "completed", "model": "m", "output": []}})
        );
        let v = assemble(&sse_events(raw.as_bytes())).unwrap();
        assert_eq!(v["output"][0], item);
    }

    #[test]
    fn store_rules() {
        assert!(validate(&response("x", "completed"), &RULES).is_ok());
        assert_eq!(validate(&response("x", "incomplete"), &RULES), Err(NotStored::FinishReason("incomplete".into())));
        assert_eq!(validate(&response("x", "in_progress"), &RULES), Err(NotStored::Incomplete));
        assert_eq!(validate(&response("", "completed"), &RULES), Err(NotStored::Empty));
        let mut refusal = response("x", "completed");
        refusal["output"][0]["content"] = json!([{"type": "refusal", "refusal": "no"}]);
        assert_eq!(validate(&refusal, &RULES), Err(NotStored::Empty));
        let mut call = response("x", "completed");
        call["output"] = json!([{"type": "function_call", "id": "fc", "call_id": "c", "name": "f", "arguments": "{}"}]);
        assert_eq!(validate(&call, &RULES), Err(NotStored::ToolCalls));
        let allowed = StoreRules { allow_tool_calls: true };
        assert!(validate(&call, &allowed).is_ok());
        let back = assemble(&sse_events(&render_sse(&serde_json::to_vec(&call).unwrap()).unwrap())).unwrap();
        assert_eq!(back, call);
        let mut search = response("x", "completed");
        search["output"] = json!([{"type": "web_search_call", "id": "ws"}]);
        assert_eq!(validate(&search, &RULES), Err(NotStored::NotChatCompletion));
    }
}
