//! Gemini `generateContent` / `streamGenerateContent?alt=sse`: the model is in the path
//! (`.../models/{model}:generateContent`), turns are `contents[].parts[]`, the system prompt is
//! `systemInstruction`. A stream is a series of `data:` events, each a GenerateContentResponse;
//! it is complete when the candidate carries a `finishReason`.

use serde_json::{json, Map, Value};

use super::{body_object, canonical_value, split_turns, stored_object, Turn};
use crate::core::capture::{NotStored, StoreRules};
use crate::core::entry::{pieces, EntryError, PIECE_CHARS};
use crate::core::request::{ChatRequest, RequestError};
use crate::core::sse::SseEvent;

/// `generationConfig` fields that only change how an answer is sampled (the rest, e.g.
/// `maxOutputTokens`, `stopSequences`, `responseSchema`, `seed`, go into the context).
const SAMPLING: &[&str] = &["temperature", "topP", "topK", "top_p", "top_k"];

/// Top-level fields that change the answer besides `contents`, in both JSON spellings.
const ANSWER_PARAMS: &[(&str, &str)] = &[
    ("tools", "tools"),
    ("toolConfig", "tool_config"),
    ("safetySettings", "safety_settings"),
    ("cachedContent", "cached_content"),
];

const STORABLE_FINISH: &[&str] = &["STOP", "MAX_TOKENS"];

/// `(model, streaming)` of a `.../models/{model}:generateContent` or `:streamGenerateContent` path.
pub fn model_of(path: &str) -> Option<(&str, bool)> {
    let path = path.split('?').next().unwrap_or(path);
    let (_, rest) = path.rsplit_once("/models/")?;
    let (model, method) = rest.split_once(':')?;
    let stream = match method {
        "generateContent" => false,
        "streamGenerateContent" => true,
        _ => return None,
    };
    (!model.is_empty() && !model.contains('/')).then_some((model, stream))
}

fn get<'a>(obj: &'a Map<String, Value>, camel: &str, snake: &str) -> Option<&'a Value> {
    obj.get(camel).or_else(|| obj.get(snake)).filter(|v| !v.is_null())
}

/// Text of a content's parts; `None` when a part is anything but text.
fn parts_text(content: &Value) -> Option<String> {
    let parts = content.get("parts")?.as_array()?;
    let mut texts = Vec::with_capacity(parts.len());
    for p in parts {
        texts.push(p.get("text")?.as_str()?);
        if p.as_object().is_some_and(|o| o.len() != 1) {
            return None;
        }
    }
    Some(texts.join("\n"))
}

pub fn parse(
    body: &[u8],
    path: &str,
    last_user_messages: usize,
    context_window: Option<usize>,
) -> Result<ChatRequest, RequestError> {
    let (model, stream) = model_of(path).ok_or(RequestError::NotChat)?;
    // Without `alt=sse` the stream is one JSON array written piece by piece: not replayed.
    let query = path.split_once('?').map_or("", |(_, q)| q);
    if stream && !query.split('&').any(|kv| kv == "alt=sse") {
        return Err(RequestError::Unsupported("streamGenerateContent without alt=sse"));
    }
    let obj = body_object(body)?;
    let contents = obj.get("contents").and_then(Value::as_array).ok_or(RequestError::NotChat)?;
    let turns: Vec<Turn> = contents
        .iter()
        .map(|c| Turn {
            // A single-turn request may leave out the role; it then means the user.
            user: matches!(c.get("role").and_then(Value::as_str), None | Some("user")),
            system: false,
            text: parts_text(c),
            canon: canonical_value(c),
        })
        .collect();
    let system = get(&obj, "systemInstruction", "system_instruction").map(canonical_value).into_iter().collect();
    let mut params = Map::new();
    for (camel, snake) in ANSWER_PARAMS {
        if let Some(v) = get(&obj, camel, snake) {
            params.insert((*camel).to_string(), v.clone());
        }
    }
    let config = get(&obj, "generationConfig", "generation_config").and_then(Value::as_object);
    if let Some(cfg) = config {
        let kept: Map<String, Value> = cfg
            .iter()
            .filter(|(k, v)| !SAMPLING.contains(&k.as_str()) && !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        params.insert("generationConfig".into(), Value::Object(kept));
    }
    let (embed_text, context) = split_turns(&turns, system, params, last_user_messages, context_window)?;
    let cfg = |camel: &str, snake: &str| config.and_then(|c| get(c, camel, snake));
    Ok(ChatRequest {
        model: model.to_string(),
        stream,
        include_usage: false,
        n: cfg("candidateCount", "candidate_count").and_then(Value::as_u64).unwrap_or(1),
        temperature: cfg("temperature", "temperature").and_then(Value::as_f64),
        logprobs: cfg("responseLogprobs", "response_logprobs").and_then(Value::as_bool).unwrap_or(false),
        embed_text,
        context,
        shape: Default::default(),
    })
}

/// Merges the streamed GenerateContentResponse chunks into one: consecutive text parts are
/// joined, the last finishReason / usageMetadata / modelVersion win.
pub fn assemble(events: &[SseEvent]) -> Result<Value, NotStored> {
    let mut out = Map::new();
    let mut candidate = Map::new();
    let mut parts: Vec<Value> = Vec::new();
    for ev in events {
        let chunk: Value = serde_json::from_slice(&ev.data).map_err(|_| NotStored::Incomplete)?;
        let obj = chunk.as_object().ok_or(NotStored::NotChatCompletion)?;
        if obj.get("error").is_some() {
            return Err(NotStored::NotChatCompletion);
        }
        for (k, v) in obj.iter().filter(|(k, _)| *k != "candidates") {
            out.insert(k.clone(), v.clone());
        }
        let cands = match obj.get("candidates") {
            None => continue,
            Some(Value::Array(c)) => c,
            Some(_) => return Err(NotStored::NotChatCompletion),
        };
        for c in cands {
            let c = c.as_object().ok_or(NotStored::NotChatCompletion)?;
            if c.get("index").and_then(Value::as_u64).unwrap_or(0) != 0 {
                return Err(NotStored::MultipleChoices);
            }
            for (k, v) in c.iter().filter(|(k, _)| *k != "content") {
                candidate.insert(k.clone(), v.clone());
            }
            let new_parts = c.get("content").and_then(|x| x.get("parts")).and_then(Value::as_array);
            for p in new_parts.into_iter().flatten() {
                merge_part(&mut parts, p);
            }
        }
    }
    if !candidate.contains_key("finishReason") {
        return Err(NotStored::Incomplete);
    }
    candidate.insert("content".into(), json!({"role": "model", "parts": parts}));
    out.insert("candidates".into(), json!([candidate]));
    Ok(Value::Object(out))
}

fn merge_part(parts: &mut Vec<Value>, p: &Value) {
    let text_only =
        |v: &Value| v.as_object().is_some_and(|o| o.len() == 1 && o.get("text").is_some_and(Value::is_string));
    if let (Some(last), true) = (parts.last_mut(), text_only(p)) {
        if text_only(last) {
            let joined = format!("{}{}", last["text"].as_str().unwrap_or(""), p["text"].as_str().unwrap_or(""));
            last["text"] = Value::String(joined);
            return;
        }
    }
    parts.push(p.clone());
}

/// Checks a GenerateContentResponse against the store rules; returns its model version.
pub fn validate(v: &Value, rules: &StoreRules) -> Result<String, NotStored> {
    let obj = v.as_object().ok_or(NotStored::NotChatCompletion)?;
    if obj.get("error").is_some() {
        return Err(NotStored::NotChatCompletion);
    }
    if let Some(r) = obj.get("promptFeedback").and_then(|f| f.get("blockReason")).and_then(Value::as_str) {
        return Err(NotStored::FinishReason(r.chars().take(32).collect()));
    }
    let cands = obj.get("candidates").and_then(Value::as_array).ok_or(NotStored::NotChatCompletion)?;
    let cand = match cands.as_slice() {
        [] => return Err(NotStored::NotChatCompletion),
        [one] => one,
        _ => return Err(NotStored::MultipleChoices),
    };
    let reason = cand.get("finishReason").and_then(Value::as_str).ok_or(NotStored::Incomplete)?;
    if !STORABLE_FINISH.contains(&reason) {
        return Err(NotStored::FinishReason(reason.chars().take(32).collect()));
    }
    let parts = cand.get("content").and_then(|c| c.get("parts")).and_then(Value::as_array);
    let (mut text, mut tools) = (false, false);
    for p in parts.into_iter().flatten() {
        if let Some(t) = p.get("text").and_then(Value::as_str) {
            text |= !t.is_empty() && p.get("thought") != Some(&Value::Bool(true));
        } else if p.get("functionCall").is_some() {
            tools = true;
        } else {
            // Inline data, code execution results: not replayed.
            return Err(NotStored::NotChatCompletion);
        }
    }
    if tools && !rules.allow_tool_calls {
        return Err(NotStored::ToolCalls);
    }
    if !tools && !text {
        return Err(NotStored::Empty);
    }
    Ok(obj.get("modelVersion").and_then(Value::as_str).unwrap_or("").to_string())
}

/// Replays a stored GenerateContentResponse as Gemini's `alt=sse` stream: text in ~20-char
/// chunks, other parts one per chunk; the last chunk carries finishReason and usageMetadata.
pub fn render_sse(stored: &[u8]) -> Result<Vec<u8>, EntryError> {
    let obj = stored_object(stored)?;
    let cand = obj
        .get("candidates")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .and_then(Value::as_object)
        .ok_or(EntryError::Shape("no candidate"))?;
    let parts = cand.get("content").and_then(|c| c.get("parts")).and_then(Value::as_array).cloned().unwrap_or_default();
    let mut chunks: Vec<Value> = Vec::new();
    for p in parts {
        match p.get("text").and_then(Value::as_str) {
            Some(t) if p.as_object().is_some_and(|o| o.len() == 1) => {
                chunks.extend(pieces(t, PIECE_CHARS).into_iter().map(|s| json!({"text": s})));
            }
            _ => chunks.push(p.clone()),
        }
    }
    let n = chunks.len().max(1);
    let mut out = Vec::with_capacity(stored.len() * 3);
    for i in 0..n {
        let last = i + 1 == n;
        let part = chunks.get(i).cloned();
        let mut c = Map::new();
        c.insert("content".into(), json!({"role": "model", "parts": part.into_iter().collect::<Vec<_>>()}));
        if last {
            for (k, v) in cand.iter().filter(|(k, _)| *k != "content") {
                c.insert(k.clone(), v.clone());
            }
        }
        c.insert("index".into(), json!(0));
        let mut chunk = Map::new();
        chunk.insert("candidates".into(), json!([c]));
        for (k, v) in obj.iter().filter(|(k, _)| *k != "candidates" && (last || *k != "usageMetadata")) {
            chunk.insert(k.clone(), v.clone());
        }
        out.extend_from_slice(b"data: ");
        serde_json::to_writer(&mut out, &Value::Object(chunk)).map_err(|e| EntryError::Json(e.to_string()))?;
        out.extend_from_slice(b"\r\n\r\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::api::sse_events;

    const RULES: StoreRules = StoreRules { allow_tool_calls: false };
    const PATH: &str = "/v1beta/models/gemini-2.0-flash:generateContent";
    const SSE_PATH: &str = "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse";

    fn req(v: Value, path: &str) -> Result<ChatRequest, RequestError> {
        parse(v.to_string().as_bytes(), path, 1, None)
    }

    fn response(text: &str, finish: &str) -> Value {
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": finish, "index": 0}],
               "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7},
               "modelVersion": "gemini-2.0-flash", "responseId": "r1"})
    }

    #[test]
    fn model_and_mode_from_the_path() {
        assert_eq!(model_of(PATH), Some(("gemini-2.0-flash", false)));
        assert_eq!(model_of(SSE_PATH), Some(("gemini-2.0-flash", true)));
        assert_eq!(
            model_of("/v1/projects/p/locations/l/publishers/google/models/g:generateContent"),
            Some(("g", false))
        );
        assert_eq!(model_of("/v1beta/models/:generateContent"), None);
        assert_eq!(model_of("/v1beta/models/g:embedContent"), None);
        let body = json!({"contents": [{"parts": [{"text": "q"}]}]});
        let stream_json = "/v1beta/models/g:streamGenerateContent";
        assert!(matches!(req(body.clone(), stream_json), Err(RequestError::Unsupported(_))));
        assert!(req(body, SSE_PATH).unwrap().stream);
    }

    #[test]
    fn parses_contents_system_and_config() {
        let r = req(
            json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}, {"role": "model", "parts": [{"text": "hello"}]},
                                {"role": "user", "parts": [{"text": "What is "}, {"text": "Rust?"}]}],
                   "systemInstruction": {"parts": [{"text": "Be brief."}]},
                   "generationConfig": {"temperature": 0.3, "maxOutputTokens": 50, "candidateCount": 1}}),
            PATH,
        )
        .unwrap();
        assert_eq!((r.embed_text.as_str(), r.model.as_str(), r.stream), ("What is Rust?", "gemini-2.0-flash", false));
        assert_eq!((r.temperature, r.n), (Some(0.3), 1));
        assert!(
            r.context.contains("Be brief.") && r.context.contains("hello") && r.context.contains("maxOutputTokens")
        );
        assert!(!r.context.contains("temperature"));
        let base = json!({"contents": [{"parts": [{"text": "q"}]}]});
        let ctx = |v: Value| req(v, PATH).unwrap().context;
        let mut cfg = base.clone();
        cfg["generationConfig"] = json!({"maxOutputTokens": 5});
        assert_ne!(ctx(base.clone()), ctx(cfg));
        let mut snake = base.clone();
        snake["system_instruction"] = json!({"parts": [{"text": "S"}]});
        let mut camel = base.clone();
        camel["systemInstruction"] = json!({"parts": [{"text": "S"}]});
        assert_eq!(ctx(snake), ctx(camel));
    }

    #[test]
    fn parse_errors() {
        assert_eq!(parse(b"{", PATH, 1, None), Err(RequestError::InvalidJson));
        assert_eq!(req(json!({"prompt": "x"}), PATH), Err(RequestError::NotChat));
        let image =
            json!({"contents": [{"parts": [{"text": "what"}, {"inlineData": {"mimeType": "image/png", "data": ""}}]}]});
        assert_eq!(req(image, PATH), Err(RequestError::NonTextContent));
        let model_last = json!({"contents": [{"role": "user", "parts": [{"text": "q"}]}, {"role": "model", "parts": [{"text": "a"}]}]});
        assert_eq!(req(model_last, PATH), Err(RequestError::NoUserMessage));
    }

    fn stream_of(texts: &[&str], finish: Option<&str>) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, t) in texts.iter().enumerate() {
            let mut c = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": t}]}, "index": 0}],
                               "modelVersion": "gemini-2.0-flash", "responseId": "r1"});
            if i + 1 == texts.len() {
                if let Some(f) = finish {
                    c["candidates"][0]["finishReason"] = json!(f);
                    c["usageMetadata"] = json!({"totalTokenCount": 7});
                }
            }
            out.extend_from_slice(format!("data: {c}\r\n\r\n").as_bytes());
        }
        out
    }

    #[test]
    fn stream_reassembles_at_any_chunking() {
        let raw = stream_of(&["Hé ", "there", "!"], Some("STOP"));
        for split in [1, 3, 50, raw.len()] {
            let mut p = crate::core::sse::SseParser::new();
            let mut evs = Vec::new();
            for part in raw.chunks(split) {
                evs.extend(p.push(part));
            }
            evs.extend(p.finish());
            let v = assemble(&evs).unwrap();
            assert_eq!(v["candidates"][0]["content"]["parts"], json!([{"text": "Hé there!"}]));
            assert_eq!(v["candidates"][0]["finishReason"], "STOP");
            assert_eq!(v["usageMetadata"]["totalTokenCount"], 7);
            assert_eq!(validate(&v, &RULES).unwrap(), "gemini-2.0-flash");
        }
    }

    #[test]
    fn incomplete_streams_are_refused() {
        assert_eq!(assemble(&sse_events(&stream_of(&["a", "b"], None))), Err(NotStored::Incomplete));
        assert_eq!(assemble(&[]), Err(NotStored::Incomplete));
        let mut raw = stream_of(&["a"], None);
        raw.extend_from_slice(b"data: {\"error\":{\"code\":500}}\r\n\r\n");
        assert_eq!(assemble(&sse_events(&raw)), Err(NotStored::NotChatCompletion));
        assert_eq!(assemble(&sse_events(b"data: {\"candidates\":[{\"content\":")), Err(NotStored::Incomplete));
    }

    #[test]
    fn store_rules() {
        assert!(validate(&response("x", "STOP"), &RULES).is_ok());
        assert!(validate(&response("x", "MAX_TOKENS"), &RULES).is_ok());
        assert_eq!(validate(&response("x", "SAFETY"), &RULES), Err(NotStored::FinishReason("SAFETY".into())));
        assert_eq!(validate(&response("", "STOP"), &RULES), Err(NotStored::Empty));
        let mut call = response("x", "STOP");
        call["candidates"][0]["content"]["parts"] = json!([{"functionCall": {"name": "f", "args": {}}}]);
        assert_eq!(validate(&call, &RULES), Err(NotStored::ToolCalls));
        assert!(validate(&call, &StoreRules { allow_tool_calls: true }).is_ok());
        let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"}});
        assert_eq!(validate(&blocked, &RULES), Err(NotStored::FinishReason("SAFETY".into())));
        let mut two = response("x", "STOP");
        two["candidates"] = json!([two["candidates"][0].clone(), two["candidates"][0].clone()]);
        assert_eq!(validate(&two, &RULES), Err(NotStored::MultipleChoices));
    }

    #[test]
    fn replay_round_trips() {
        let stored = response(&"Ünïcode answer text, long enough for pieces. ".repeat(2), "STOP");
        let body = serde_json::to_vec(&stored).unwrap();
        let sse = render_sse(&body).unwrap();
        let evs = sse_events(&sse);
        assert!(evs.len() > 3);
        let first: Value = serde_json::from_slice(&evs[0].data).unwrap();
        assert!(first["candidates"][0].get("finishReason").is_none() && first.get("usageMetadata").is_none());
        assert_eq!(assemble(&evs).unwrap(), stored);
        let mut call = response("x", "STOP");
        call["candidates"][0]["content"]["parts"] =
            json!([{"text": "calling"}, {"functionCall": {"name": "f", "args": {"a": 1}}}]);
        let back = assemble(&sse_events(&render_sse(&serde_json::to_vec(&call).unwrap()).unwrap())).unwrap();
        assert_eq!(back, call);
        assert!(render_sse(b"{}").is_err());
    }
}
