//! Labelled pairs (JSONL) and what the filter makes of each side.
//!
//! One object a line. Field names of fow-cache (`a`, `b`, `same_answer`) or generic ones (`prompt_a`,
//! `prompt_b`, `should_hit`); `should_hit` may also be "yes"/"no". A prompt is a string (one user
//! message) or a list of chat messages (`{role, content}`, the last one from the user). `a` is the
//! cached request, `b` the new one. Optional: `id`, `category`, `route`, `lang`.
use crate::core::request::{parse_chat, ChatRequest};
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct Pair {
    pub id: String,
    pub category: String,
    pub route: Option<String>,
    pub lang: Option<String>,
    pub should_hit: bool,
    pub a: Value,
    pub b: Value,
}

#[derive(Debug)]
pub struct PairError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for PairError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

fn label(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "yes" | "true" | "hit" | "1" => Some(true),
            "no" | "false" | "miss" | "0" => Some(false),
            _ => None,
        },
        Value::Number(n) => n.as_u64().filter(|n| *n <= 1).map(|n| n == 1),
        _ => None,
    }
}

fn prompt(v: &Value) -> Option<Value> {
    match v {
        Value::String(_) => Some(v.clone()),
        Value::Array(msgs) if !msgs.is_empty() => Some(v.clone()),
        _ => None,
    }
}

fn text_field(obj: &Value, k: &str) -> Option<String> {
    obj.get(k).and_then(|v| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

pub fn read_pairs(file: &str, text: &str) -> Result<Vec<Pair>, PairError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let err = |message: String| PairError { file: file.to_string(), line: i + 1, message };
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| err(format!("not JSON: {e}")))?;
        let get = |a: &str, b: &str| v.get(a).or_else(|| v.get(b));
        let a = get("a", "prompt_a").and_then(prompt).ok_or_else(|| err("no prompt a / prompt_a".into()))?;
        let b = get("b", "prompt_b").and_then(prompt).ok_or_else(|| err("no prompt b / prompt_b".into()))?;
        let should_hit = get("same_answer", "should_hit")
            .and_then(label)
            .ok_or_else(|| err("no same_answer / should_hit (true/false or yes/no)".into()))?;
        out.push(Pair {
            id: text_field(&v, "id").unwrap_or_else(|| format!("{file}:{}", i + 1)),
            category: text_field(&v, "category")
                .or_else(|| text_field(&v, "subtype"))
                .unwrap_or_else(|| if should_hit { "should_hit" } else { "must_not_hit" }.into()),
            route: text_field(&v, "route"),
            lang: text_field(&v, "lang"),
            should_hit,
            a,
            b,
        });
    }
    Ok(out)
}

/// How the filter reads a request: which user messages are embedded, how much history is context.
#[derive(Debug, Clone, Copy)]
pub struct ReadOpts {
    pub last_user_messages: usize,
    pub context_window: Option<usize>,
}

/// The filter's own parse of one side: embedded text (normalised) and the context that must match
/// exactly for two requests to share a partition. `Err` carries the filter's bypass reason.
pub fn as_request(prompt: &Value, opts: ReadOpts) -> Result<ChatRequest, &'static str> {
    let messages = match prompt {
        Value::String(s) => json!([{"role": "user", "content": s}]),
        other => other.clone(),
    };
    let body = json!({"model": "calibrate", "messages": messages}).to_string();
    parse_chat(body.as_bytes(), "/v1/chat/completions", opts.last_user_messages, opts.context_window)
        .map_err(|e| e.reason().code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_field_styles() {
        let t = r#"{"id":"x","category":"paraphrase","a":"A","b":"B","same_answer":true}
{"prompt_a":"A","prompt_b":"B","should_hit":"no","route":"faq"}

{"a":[{"role":"user","content":"hi"}],"b":"hi","same_answer":false}"#;
        let p = read_pairs("f", t).expect("ok");
        assert_eq!(p.len(), 3);
        assert!(p[0].should_hit && !p[1].should_hit);
        assert_eq!(p[1].route.as_deref(), Some("faq"));
        assert_eq!(p[1].id, "f:2");
        assert_eq!(p[1].category, "must_not_hit");
        assert!(read_pairs("f", r#"{"a":"A","b":"B"}"#).is_err());
        assert!(read_pairs("f", r#"{"a":"A","b":"B","same_answer":"maybe"}"#).is_err());
    }

    #[test]
    fn request_as_the_filter_sees_it() {
        let o = ReadOpts { last_user_messages: 1, context_window: None };
        let r = as_request(&json!("  What is\u{00a0}Rust? "), o).expect("ok");
        assert_eq!(r.embed_text, "What is Rust?");
        let conv = json!([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"}]);
        let r2 = as_request(&conv, o).expect("ok");
        assert_eq!(r2.embed_text, "c");
        assert_ne!(r2.context, as_request(&json!("c"), o).expect("ok").context);
        let o0 = ReadOpts { last_user_messages: 1, context_window: Some(0) };
        assert_eq!(as_request(&conv, o0).expect("ok").context, as_request(&json!("c"), o0).expect("ok").context);
        // what the filter bypasses stays unservable: a turn that continues after a tool result
        let tool_after =
            json!([{"role": "user", "content": "q"}, {"role": "tool", "content": "r", "tool_call_id": "1"}]);
        assert!(as_request(&tool_after, o).is_err());
    }
}
