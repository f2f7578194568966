//! The embedders calibrate can use: exactly the filter's code paths, so a threshold transfers.
//! - `local` / `static`: the static table of the default build (`StaticEmbedder`, envoy/policies/local.json);
//! - `minilm` / `local-minilm`: the transformer of `make build-local` (`LocalEmbedder`,
//!   envoy/policies/local-minilm.json);
//! - `openai` / `azure` / `mistral`: a provider endpoint, with the filter's request builder and
//!   response parser (`core::embed::provider`), called over blocking HTTPS.
//!
//! A new embedder is one more variant of `Kind` and one arm in `open` and `Embedder::embed_raw`.
use std::collections::HashMap;
use std::time::Duration;

use semantic_cache::core::embed::local::LocalEmbedder;
use semantic_cache::core::embed::provider::{build_request, parse_response, EmbedError};
use semantic_cache::core::embed::static_model::StaticEmbedder;
use semantic_cache::core::policy::{parse_policy, Embedding};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Static,
    Minilm,
    Openai,
    Azure,
    Mistral,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "local" | "static" => Some(Kind::Static),
            "minilm" | "local-minilm" => Some(Kind::Minilm),
            "openai" | "openai-compatible" => Some(Kind::Openai),
            "azure" | "azure-openai" => Some(Kind::Azure),
            "mistral" => Some(Kind::Mistral),
            _ => None,
        }
    }
    fn policy_name(self) -> &'static str {
        match self {
            Kind::Static | Kind::Minilm => "local",
            Kind::Openai => "openai-compatible",
            Kind::Azure => "azure-openai",
            Kind::Mistral => "mistral",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct EmbedArgs {
    pub url: Option<String>,
    pub api_key_env: Option<String>,
    pub model: Option<String>,
    pub dimensions: Option<usize>,
    pub max_tokens: Option<usize>,
    pub timeout_ms: u64,
}

enum Backend {
    Static(StaticEmbedder<'static>),
    // boxed: the transformer is large and there is one Backend per run
    Local(Box<LocalEmbedder>),
    Remote { cfg: Embedding, url: String, agent: ureq::Agent, dims_known: bool },
}

pub struct Embedder {
    backend: Backend,
    name: String,
    memo: HashMap<String, Vec<f32>>,
    pub calls: usize,
}

pub fn open(kind: Kind, a: &EmbedArgs) -> Result<Embedder, String> {
    let (backend, name) = match kind {
        Kind::Static => {
            let e = StaticEmbedder::embedded(a.max_tokens.unwrap_or(128)).map_err(|e| format!("static table: {e}"))?;
            let name = format!("static/{}@{}", e.model_name(), e.max_tokens());
            (Backend::Static(e), name)
        }
        Kind::Minilm => {
            let e = match a.max_tokens {
                Some(n) => LocalEmbedder::embedded_with_max_tokens(n),
                None => LocalEmbedder::embedded(),
            }
            .map_err(|e| format!("local model: {e}"))?;
            let name = format!("local/{}@{}", e.model_name(), e.max_tokens());
            (Backend::Local(Box::new(e)), name)
        }
        _ => {
            let url = a.url.clone().ok_or("--url is required for a provider")?;
            let api_key = match &a.api_key_env {
                Some(var) => Some(std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))?),
                None => None,
            };
            // The filter's own policy parser fills the defaults (auth header per provider, ...).
            let mut emb = json!({"provider": kind.policy_name(), "url": url,
                "dimensions": a.dimensions.unwrap_or(1)});
            if let Some(m) = &a.model {
                emb["model"] = m.clone().into();
            }
            if let Some(k) = api_key {
                emb["apiKey"] = k.into();
            }
            let cfg = parse_policy(json!({"embedding": emb}).to_string().as_bytes())
                .map_err(|e| format!("provider settings: {e:?}"))?
                .embedding;
            let agent = ureq::AgentBuilder::new().timeout(Duration::from_millis(a.timeout_ms)).build();
            let name = format!("{}/{}", kind.policy_name(), a.model.as_deref().unwrap_or("-"));
            (Backend::Remote { cfg, url, agent, dims_known: a.dimensions.is_some() }, name)
        }
    };
    Ok(Embedder { backend, name, memo: HashMap::new(), calls: 0 })
}

impl Embedder {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Unit-length vector of `text` (memoised: pair files repeat prompts).
    pub fn embed(&mut self, text: &str) -> Result<Vec<f32>, String> {
        if let Some(v) = self.memo.get(text) {
            return Ok(v.clone());
        }
        let mut v = self.embed_raw(text)?;
        self.calls += 1;
        // RediSearch's COSINE normalises too; local vectors are unit length already.
        if !semantic_cache::core::embed::l2_normalize(&mut v) {
            return Err("embedding has zero norm".into());
        }
        self.memo.insert(text.to_string(), v.clone());
        Ok(v)
    }

    fn embed_raw(&mut self, text: &str) -> Result<Vec<f32>, String> {
        match &mut self.backend {
            Backend::Static(e) => e.embed(text).map_err(|e| e.to_string()),
            Backend::Local(e) => e.embed(text).map_err(|e| e.to_string()),
            Backend::Remote { cfg, url, agent, dims_known } => {
                let call = build_request(cfg, text);
                let mut attempt = 0;
                loop {
                    let mut req = agent.post(url);
                    for (k, v) in &call.headers {
                        req = req.set(k, v);
                    }
                    let (status, body) = match req.send_bytes(&call.body) {
                        Ok(r) => (r.status(), r.into_string().map_err(|e| format!("read body: {e}"))?),
                        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
                        Err(e) => return Err(format!("embedding call: {e}")),
                    };
                    // Rate limits are normal when a few hundred prompts go out in a row.
                    if (status == 429 || status >= 500) && attempt < 5 {
                        attempt += 1;
                        std::thread::sleep(Duration::from_millis(500 << attempt));
                        continue;
                    }
                    return match parse_response(status, body.as_bytes(), cfg.dimensions) {
                        Err(EmbedError::Dimensions { got, .. }) if !*dims_known => {
                            // No --dimensions: learn the width from the first answer.
                            cfg.dimensions = got;
                            *dims_known = true;
                            parse_response(status, body.as_bytes(), got).map_err(|e| e.to_string())
                        }
                        other => other.map_err(|e| e.to_string()),
                    };
                }
            }
        }
    }
}

/// 1 - cos of two unit vectors, as RediSearch's COSINE distance.
pub fn distance(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    (1.0 - dot).max(0.0)
}
