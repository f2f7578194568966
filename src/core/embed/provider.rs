//! Request building and response parsing for remote embedding providers, in each one's real
//! wire format: OpenAI-compatible `/v1/embeddings`, Azure OpenAI (`api-key` header, deployment in
//! the URL) and Mistral (`Authorization: Bearer`, `input` as an array).

use crate::core::policy::{Embedding, Provider};
use serde_json::{json, Value};
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum EmbedError {
    #[error("embedding call failed: {0}")]
    Call(String),
    #[error("embedding provider answered HTTP {0}")]
    Status(u16),
    #[error("embedding response is malformed: {0}")]
    Malformed(&'static str),
    #[error("embedding has {got} dimensions, policy says {want}")]
    Dimensions { got: usize, want: usize },
}

/// Headers (besides the pseudo-headers) and body of the callout.
pub struct EmbedCall {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub fn build_request(cfg: &Embedding, text: &str) -> EmbedCall {
    let body = match cfg.provider {
        // Mistral documents `input` as a list of strings.
        Provider::Mistral => json!({"model": cfg.model, "input": [text]}),
        // Azure selects the model by deployment in the URL; `model` is optional.
        Provider::AzureOpenai => match &cfg.model {
            Some(m) => json!({"input": text, "model": m}),
            None => json!({"input": text}),
        },
        Provider::OpenaiCompatible | Provider::Local => json!({"model": cfg.model, "input": text}),
    };
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if let Some(key) = &cfg.api_key {
        let value = if cfg.auth_header == "authorization" { format!("Bearer {key}") } else { key.clone() };
        headers.push((cfg.auth_header.clone(), value));
    }
    EmbedCall { headers, body: body.to_string().into_bytes() }
}

/// `data[0].embedding` of an OpenAI-shaped response (all three providers use it).
pub fn parse_response(status: u16, body: &[u8], want_dims: usize) -> Result<Vec<f32>, EmbedError> {
    if !(200..300).contains(&status) {
        return Err(EmbedError::Status(status));
    }
    let v: Value = serde_json::from_slice(body).map_err(|_| EmbedError::Malformed("not JSON"))?;
    let arr = v
        .get("data")
        .and_then(|d| d.get(0))
        .and_then(|d| d.get("embedding"))
        .and_then(Value::as_array)
        .ok_or(EmbedError::Malformed("no data[0].embedding"))?;
    let mut out = Vec::with_capacity(arr.len());
    for x in arr {
        let f = x.as_f64().ok_or(EmbedError::Malformed("non-numeric embedding value"))?;
        // Checked after the cast: a finite f64 beyond f32's range (1e39) becomes infinity, and an
        // infinite component makes every cosine distance NaN (found by fuzz target `embed_response`).
        let f = f as f32;
        if !f.is_finite() {
            return Err(EmbedError::Malformed("non-finite embedding value"));
        }
        out.push(f);
    }
    if out.len() != want_dims {
        return Err(EmbedError::Dimensions { got: out.len(), want: want_dims });
    }
    if out.iter().all(|x| *x == 0.0) {
        // Cosine distance to a zero vector is undefined; RediSearch would return NaN.
        return Err(EmbedError::Malformed("zero vector"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::policy::parse_policy;

    fn cfg(provider: &str, key: Option<&str>) -> Embedding {
        let mut v = json!({"embedding": {"provider": provider, "url": "http://e/v1/embeddings", "model": "m", "dimensions": 3}});
        if let Some(k) = key {
            v["embedding"]["apiKey"] = k.into();
        }
        parse_policy(v.to_string().as_bytes()).expect("valid").embedding
    }

    fn header<'a>(c: &'a EmbedCall, name: &str) -> Option<&'a str> {
        c.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn wire_formats() {
        let c = build_request(&cfg("mistral", Some("k")), "hi");
        assert_eq!(header(&c, "authorization"), Some("Bearer k"));
        let b: Value = serde_json::from_slice(&c.body).expect("json");
        assert_eq!(b, json!({"model": "m", "input": ["hi"]}));

        let c = build_request(&cfg("azure-openai", Some("k")), "hi");
        assert_eq!(header(&c, "api-key"), Some("k"));
        assert_eq!(header(&c, "authorization"), None);

        let c = build_request(&cfg("openai-compatible", None), "hi");
        assert_eq!(header(&c, "authorization"), None);
        let b: Value = serde_json::from_slice(&c.body).expect("json");
        assert_eq!(b, json!({"model": "m", "input": "hi"}));
    }

    #[test]
    fn responses() {
        let ok = br#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2,0.3]}]}"#;
        assert_eq!(parse_response(200, ok, 3), Ok(vec![0.1, 0.2, 0.3]));
        assert_eq!(parse_response(200, ok, 4), Err(EmbedError::Dimensions { got: 3, want: 4 }));
        assert_eq!(parse_response(500, ok, 3), Err(EmbedError::Status(500)));
        assert!(matches!(parse_response(200, b"<html>", 3), Err(EmbedError::Malformed(_))));
        assert!(matches!(parse_response(200, br#"{"data":[]}"#, 3), Err(EmbedError::Malformed(_))));
        assert!(matches!(
            parse_response(200, br#"{"data":[{"embedding":[0,0,0]}]}"#, 3),
            Err(EmbedError::Malformed(_))
        ));
        assert!(matches!(
            parse_response(200, br#"{"data":[{"embedding":["a",0,0]}]}"#, 3),
            Err(EmbedError::Malformed(_))
        ));
        // Finite as f64, infinite as f32.
        assert!(matches!(
            parse_response(200, br#"{"data":[{"embedding":[1e39,0,0]}]}"#, 3),
            Err(EmbedError::Malformed("non-finite embedding value"))
        ));
    }
}
