//! Embeddings requests (`/v1/embeddings`, Azure `/openai/deployments/{d}/embeddings`, Mistral):
//! exact-match caching only. The whole request except `model` and `user` is the context, so the
//! entry is found only by a byte-identical request (after JSON canonicalisation): the same input
//! and model give the same vectors, anything else does not.

use serde_json::{json, Map, Value};

use super::body_object;
use crate::core::capture::NotStored;
use crate::core::request::{normalize_text, ChatRequest, RequestError};

/// The Azure deployment of an `/openai/deployments/{d}/embeddings` path.
fn azure_deployment(path: &str) -> Option<&str> {
    let path = path.split('?').next().unwrap_or(path);
    let rest = path.strip_prefix("/openai/deployments/")?;
    let (dep, tail) = rest.split_once('/')?;
    (!dep.is_empty() && tail == "embeddings").then_some(dep)
}

pub fn parse(body: &[u8], path: &str) -> Result<ChatRequest, RequestError> {
    let obj = body_object(body)?;
    let input = obj.get("input").filter(|v| !v.is_null()).ok_or(RequestError::NotChat)?;
    let model = match (azure_deployment(path), obj.get("model")) {
        (Some(dep), _) => format!("azure/{dep}"),
        (None, Some(Value::String(m))) => m.clone(),
        (None, None | Some(Value::Null)) => String::new(),
        (None, Some(_)) => return Err(RequestError::NotChat),
    };
    // Stored as the entry's `prompt` (for operators); the exact key comes from the context.
    let embed_text = match input {
        Value::String(s) => normalize_text(s),
        Value::Array(items) => {
            items.iter().filter_map(Value::as_str).map(normalize_text).collect::<Vec<_>>().join("\n")
        }
        _ => String::new(),
    };
    let embed_text = if embed_text.is_empty() { "(token input)".to_string() } else { embed_text };
    // Every other field (`encoding_format`, `dimensions`, `output_dtype`, ...) changes the
    // answer's bytes; `user` is only an end-user id for abuse tracking.
    let params: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "model" | "input" | "user"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let context = json!({"i": input, "p": params}).to_string();
    Ok(ChatRequest {
        model,
        stream: false,
        include_usage: false,
        n: 1,
        temperature: None,
        logprobs: false,
        embed_text,
        context,
        shape: Default::default(),
    })
}

/// An embeddings list with at least one vector (float array or base64 string).
pub fn validate(v: &Value) -> Result<String, NotStored> {
    let obj = v.as_object().ok_or(NotStored::NotChatCompletion)?;
    if obj.get("error").is_some_and(|e| !e.is_null()) {
        return Err(NotStored::NotChatCompletion);
    }
    let data = obj.get("data").and_then(Value::as_array).filter(|d| !d.is_empty()).ok_or(NotStored::Empty)?;
    let vector_ok = |e: &Value| match e.get("embedding") {
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        _ => false,
    };
    if !data.iter().all(vector_ok) {
        return Err(NotStored::NotChatCompletion);
    }
    Ok(obj.get("model").and_then(Value::as_str).unwrap_or("").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: Value, path: &str) -> Result<ChatRequest, RequestError> {
        parse(v.to_string().as_bytes(), path)
    }

    #[test]
    fn exact_context() {
        let a = req(json!({"model": "text-embedding-3-small", "input": "Hello  world"}), "/v1/embeddings").unwrap();
        assert_eq!(
            (a.model.as_str(), a.embed_text.as_str(), a.stream),
            ("text-embedding-3-small", "Hello world", false)
        );
        let ctx = |v: Value| req(v, "/v1/embeddings").unwrap().context;
        let base = json!({"model": "m", "input": "Hello world"});
        // Case and spacing change the vector: they must not share an entry.
        assert_ne!(ctx(base.clone()), ctx(json!({"model": "m", "input": "hello world"})));
        assert_ne!(ctx(base.clone()), ctx(json!({"model": "m", "input": "Hello  world"})));
        assert_ne!(ctx(base.clone()), ctx(json!({"model": "m", "input": ["Hello world"]})));
        assert_ne!(ctx(base.clone()), ctx(json!({"model": "m", "input": "Hello world", "encoding_format": "base64"})));
        assert_ne!(ctx(base.clone()), ctx(json!({"model": "m", "input": "Hello world", "dimensions": 8})));
        assert_eq!(ctx(base.clone()), ctx(json!({"input": "Hello world", "user": "u1", "model": "m"})));
        let az = req(json!({"input": ["a", "b"]}), "/openai/deployments/emb/embeddings?api-version=1").unwrap();
        assert_eq!((az.model.as_str(), az.embed_text.as_str()), ("azure/emb", "a\nb"));
        let tokens = req(json!({"model": "m", "input": [[1, 2, 3]]}), "/v1/embeddings").unwrap();
        assert_eq!(tokens.embed_text, "(token input)");
    }

    #[test]
    fn errors_and_store_rules() {
        assert_eq!(parse(b"x", "/v1/embeddings"), Err(RequestError::InvalidJson));
        assert_eq!(req(json!({"model": "m"}), "/v1/embeddings"), Err(RequestError::NotChat));
        assert_eq!(req(json!({"model": 1, "input": "x"}), "/v1/embeddings"), Err(RequestError::NotChat));
        let ok = json!({"object": "list", "model": "m", "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}]});
        assert_eq!(validate(&ok).unwrap(), "m");
        let b64 = json!({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": "AAAA"}]});
        assert_eq!(validate(&b64).unwrap(), "");
        assert_eq!(validate(&json!({"object": "list", "data": []})), Err(NotStored::Empty));
        assert_eq!(validate(&json!({"data": [{"embedding": null}]})), Err(NotStored::NotChatCompletion));
        assert_eq!(validate(&json!({"error": {"message": "x"}})), Err(NotStored::NotChatCompletion));
    }
}
