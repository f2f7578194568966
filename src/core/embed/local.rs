//! In-filter embedding model (provider `local`): a sentence encoder in ONNX run by tract, with a
//! Hugging Face `tokenizer.json`. Host-free: used by the wasm filter and by the native `embed_server`.
//!
//! Pipeline: tokenize (special tokens added, truncated to `max_tokens` *including* [CLS]/[SEP], no padding)
//! -> run the graph on a batch of one -> mean pooling over the tokens (the attention mask is all ones since
//! nothing is padded) -> L2 normalisation. This is what sentence-transformers does for MiniLM-style models.
//!
//! Accepted graphs (found by input/output *names*, so the exports of scripts/models/ and the usual Hugging
//! Face exports both work):
//! - inputs: `input_ids` (required), optional `attention_mask` (fed ones), optional `token_type_ids`
//!   (fed zeros); all int64 `[1, S]`;
//! - output: `last_hidden_state` if present, else the first output; rank 3 `[1, S, D]` is mean-pooled,
//!   rank 2 `[1, D]` is taken as already pooled (static-embedding models pool in the graph).
//!
//! The model embedded at build time (see `embedded()`) comes from the directory named by the build-time
//! environment variable `SEMCACHE_MODEL_DIR` (default `.local/models/default`, a link that
//! scripts/build-local.sh points at the chosen model); build.rs checks the files and sets
//! `cfg(semcache_embedded_model)`. Without them `embedded()` returns `LocalEmbedError::NoEmbeddedModel`.

use std::fmt;

use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::{DimLike, Factoid};

/// Upper bound for `max_tokens` (BERT position table size).
pub const MAX_TOKENS_LIMIT: usize = 512;
/// Lower bound: room for [CLS] and [SEP] plus one token.
pub const MIN_TOKENS: usize = 3;
/// Text beyond `max_tokens * MAX_CHARS_PER_TOKEN` characters is not tokenized at all (it would be truncated
/// away anyway): bounds the tokenizer's cost for huge prompts. 100 is WordPiece's longest word (longer
/// words become one [UNK]), so any text whose first that-many characters already give `max_tokens` tokens
/// gets exactly the same ids.
pub const MAX_CHARS_PER_TOKEN: usize = 100;

/// Errors of the local embedder. `Display` never contains the input text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalEmbedError {
    /// The filter was built without a model (`SEMCACHE_MODEL_DIR` had no model.onnx + tokenizer.json).
    NoEmbeddedModel,
    /// tokenizer.json could not be parsed or configured.
    Tokenizer(String),
    /// Tokenizing one input failed.
    Tokenize(String),
    /// The ONNX graph could not be loaded/optimised, or does not have the expected inputs/outputs.
    Model(String),
    /// Running the graph failed.
    Inference(String),
    /// The graph's output does not have the expected shape.
    Output(String),
    /// The pooled vector has a zero (or non-finite) norm.
    Degenerate,
}

impl fmt::Display for LocalEmbedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoEmbeddedModel => write!(f, "no model embedded in this build (build with scripts/build-local.sh)"),
            Self::Tokenizer(e) => write!(f, "tokenizer.json: {e}"),
            Self::Tokenize(e) => write!(f, "tokenize: {e}"),
            Self::Model(e) => write!(f, "model: {e}"),
            Self::Inference(e) => write!(f, "inference: {e}"),
            Self::Output(e) => write!(f, "model output: {e}"),
            Self::Degenerate => write!(f, "embedding has zero or non-finite norm"),
        }
    }
}

impl std::error::Error for LocalEmbedError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InputKind {
    Ids,
    Mask,
    TypeIds,
}

type Plan = std::sync::Arc<TypedRunnableModel>;

/// A loaded sentence encoder. Immutable after construction; `embed` takes `&self`.
pub struct LocalEmbedder {
    plan: Plan,
    inputs: Vec<InputKind>,
    pooled_output: bool,
    tokenizer: Tokenizer,
    dims: usize,
    max_tokens: usize,
    name: String,
}

impl fmt::Debug for LocalEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalEmbedder")
            .field("name", &self.name)
            .field("dims", &self.dims)
            .field("max_tokens", &self.max_tokens)
            .field("inputs", &self.inputs)
            .field("pooled_output", &self.pooled_output)
            .finish()
    }
}

fn model_err(e: impl fmt::Display) -> LocalEmbedError {
    LocalEmbedError::Model(format!("{e:#}"))
}

impl LocalEmbedder {
    /// Loads an ONNX sentence encoder and its tokenizer. `max_tokens` (clamped to
    /// `MIN_TOKENS..=MAX_TOKENS_LIMIT`) counts the special tokens.
    pub fn from_bytes(model_onnx: &[u8], tokenizer_json: &[u8], max_tokens: usize) -> Result<Self, LocalEmbedError> {
        Self::from_bytes_named(model_onnx, tokenizer_json, max_tokens, "local")
    }

    /// As `from_bytes`, with the model name reported by `model_name()`.
    pub fn from_bytes_named(
        model_onnx: &[u8],
        tokenizer_json: &[u8],
        max_tokens: usize,
        name: &str,
    ) -> Result<Self, LocalEmbedError> {
        let max_tokens = max_tokens.clamp(MIN_TOKENS, MAX_TOKENS_LIMIT);
        let tokenizer = load_tokenizer(tokenizer_json, max_tokens)?;

        let mut model = tract_onnx::onnx().model_for_read(&mut std::io::Cursor::new(model_onnx)).map_err(model_err)?;

        // inputs, by name
        let mut inputs = Vec::new();
        for outlet in model.input_outlets().map_err(model_err)?.to_vec() {
            let name = model.node(outlet.node).name.as_str();
            let kind = match name {
                "input_ids" => InputKind::Ids,
                "attention_mask" => InputKind::Mask,
                "token_type_ids" => InputKind::TypeIds,
                other => return Err(LocalEmbedError::Model(format!("unexpected graph input `{other}`"))),
            };
            inputs.push(kind);
        }
        if !inputs.contains(&InputKind::Ids) {
            return Err(LocalEmbedError::Model("graph has no `input_ids` input".into()));
        }
        // output: last_hidden_state, else the first one; drop the others so they are pruned
        let outs = model.output_outlets().map_err(model_err)?.to_vec();
        let chosen = outs
            .iter()
            .copied()
            .find(|o| {
                model.node(o.node).name == "last_hidden_state"
                    || model.outlet_label(*o).is_some_and(|l| l == "last_hidden_state")
            })
            .or_else(|| outs.first().copied())
            .ok_or_else(|| LocalEmbedError::Model("graph has no output".into()))?;
        model.select_output_outlets(&[chosen]).map_err(model_err)?;

        // sequence symbol: reuse the one the graph declares (its intermediate shapes may name it), else "S"
        // (and the batch symbol too, fed 1 at run time), else [1, S]
        let (mut batch, mut seq) = (None, None);
        for ix in 0..inputs.len() {
            let fact = model.input_fact(ix).map_err(model_err)?;
            let dims: Vec<Option<TDim>> = fact.shape.dims().map(|d| d.concretize()).collect();
            if let (Some(Some(b @ TDim::Sym(_))), None) = (dims.first(), &batch) {
                batch = Some(b.clone());
            }
            if let (Some(Some(TDim::Sym(s))), None) = (dims.get(1), &seq) {
                seq = Some(s.clone());
            }
        }
        let seq = seq.unwrap_or_else(|| model.sym("S"));
        let batch = batch.unwrap_or_else(|| 1.to_dim());
        for ix in 0..inputs.len() {
            model = model.with_input_fact(ix, i64::fact(&[batch.clone(), seq.to_dim()]).into()).map_err(model_err)?;
        }
        let typed = model.into_optimized().map_err(model_err)?;
        let out_fact = typed.output_fact(0).map_err(model_err)?.clone();
        let rank = out_fact.rank();
        let pooled_output = match rank {
            2 => true,
            3 => false,
            r => return Err(LocalEmbedError::Model(format!("output rank {r}, expected 2 or 3"))),
        };
        let dims = out_fact.shape[rank - 1]
            .to_usize()
            .map_err(|_| LocalEmbedError::Model("output width is not a constant".into()))?;
        if dims == 0 {
            return Err(LocalEmbedError::Model("output width is 0".into()));
        }
        let plan = typed.into_runnable().map_err(model_err)?;
        Ok(Self { plan, inputs, pooled_output, tokenizer, dims, max_tokens, name: name.to_string() })
    }

    /// The model embedded at build time (`SEMCACHE_MODEL_DIR`), with its default token cap
    /// (`SEMCACHE_MAX_TOKENS` at build time, 128 if unset).
    pub fn embedded() -> Result<Self, LocalEmbedError> {
        Self::embedded_with_max_tokens(embedded::DEFAULT_MAX_TOKENS)
    }

    /// The embedded model with a given token cap (the policy's `embedding.maxTokens`).
    pub fn embedded_with_max_tokens(max_tokens: usize) -> Result<Self, LocalEmbedError> {
        match (embedded::MODEL, embedded::TOKENIZER) {
            (Some(m), Some(t)) => Self::from_bytes_named(m, t, max_tokens, embedded::NAME),
            _ => Err(LocalEmbedError::NoEmbeddedModel),
        }
    }

    /// Name of the embedded model (from `meta.json` or the directory name), if this build has one.
    pub fn embedded_model_name() -> Option<&'static str> {
        embedded::MODEL.map(|_| embedded::NAME)
    }

    /// Token ids fed to the model for `text` (special tokens included, truncated to `max_tokens`).
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>, LocalEmbedError> {
        let cap = self.max_tokens.saturating_mul(MAX_CHARS_PER_TOKEN);
        let text = match text.char_indices().nth(cap) {
            Some((byte, _)) => &text[..byte],
            None => text,
        };
        let enc = self.tokenizer.encode(text, true).map_err(|e| LocalEmbedError::Tokenize(e.to_string()))?;
        let ids = enc.get_ids();
        if ids.is_empty() {
            return Err(LocalEmbedError::Tokenize("no tokens".into()));
        }
        // the tokenizer truncates already; keep a hard cap in case the file's post-processor is unusual
        Ok(ids[..ids.len().min(self.max_tokens)].to_vec())
    }

    /// Embeds one text: a unit-length vector of `dimensions()` floats.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>, LocalEmbedError> {
        let ids = self.token_ids(text)?;
        self.embed_ids(&ids)
    }

    /// Embeds already tokenized ids (as returned by `token_ids`).
    pub fn embed_ids(&self, ids: &[u32]) -> Result<Vec<f32>, LocalEmbedError> {
        let n = ids.len();
        if n == 0 {
            return Err(LocalEmbedError::Tokenize("no tokens".into()));
        }
        let mut feed: TVec<TValue> = tvec!();
        for kind in &self.inputs {
            let data: Vec<i64> = match kind {
                InputKind::Ids => ids.iter().map(|&i| i64::from(i)).collect(),
                InputKind::Mask => vec![1; n],
                InputKind::TypeIds => vec![0; n],
            };
            let t = Tensor::from_shape(&[1, n], &data).map_err(|e| LocalEmbedError::Inference(format!("{e:#}")))?;
            feed.push(t.into());
        }
        let out = self.plan.run(feed).map_err(|e| LocalEmbedError::Inference(format!("{e:#}")))?;
        let first = out.first().ok_or_else(|| LocalEmbedError::Output("no output".into()))?;
        let view = first.to_plain_array_view::<f32>().map_err(|e| LocalEmbedError::Output(format!("{e:#}")))?;
        let shape = view.shape().to_vec();
        let data = view.as_slice().ok_or_else(|| LocalEmbedError::Output("output not contiguous".into()))?;
        let d = self.dims;
        let mut v = vec![0f32; d];
        if self.pooled_output {
            if shape != [1, d] {
                return Err(LocalEmbedError::Output(format!("shape {shape:?}, expected [1, {d}]")));
            }
            v.copy_from_slice(data);
        } else {
            if shape.len() != 3 || shape[0] != 1 || shape[2] != d || shape[1] == 0 {
                return Err(LocalEmbedError::Output(format!("shape {shape:?}, expected [1, S, {d}]")));
            }
            let s = shape[1];
            for row in data.chunks_exact(d) {
                for (acc, x) in v.iter_mut().zip(row) {
                    *acc += *x;
                }
            }
            let inv = 1.0 / s as f32;
            v.iter_mut().for_each(|x| *x *= inv);
        }
        normalize(&mut v)?;
        Ok(v)
    }

    /// Width of the vectors `embed` returns.
    pub fn dimensions(&self) -> usize {
        self.dims
    }

    /// Model name (`meta.json` name or directory name for the embedded model; "local" otherwise).
    pub fn model_name(&self) -> &str {
        &self.name
    }

    /// Token cap in effect (special tokens included).
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }
}

fn load_tokenizer(json: &[u8], max_tokens: usize) -> Result<Tokenizer, LocalEmbedError> {
    let mut tok = Tokenizer::from_bytes(json).map_err(|e| LocalEmbedError::Tokenizer(e.to_string()))?;
    tok.with_padding(None);
    tok.with_truncation(Some(TruncationParams {
        direction: TruncationDirection::Right,
        max_length: max_tokens,
        strategy: TruncationStrategy::LongestFirst,
        stride: 0,
    }))
    .map_err(|e| LocalEmbedError::Tokenizer(e.to_string()))?;
    Ok(tok)
}

fn normalize(v: &mut [f32]) -> Result<(), LocalEmbedError> {
    super::l2_normalize(v).then_some(()).ok_or(LocalEmbedError::Degenerate)
}

#[cfg(semcache_embedded_model)]
mod embedded {
    pub const MODEL: Option<&[u8]> = Some(include_bytes!(concat!(env!("SEMCACHE_EMBED_DIR"), "/model.onnx")));
    pub const TOKENIZER: Option<&[u8]> = Some(include_bytes!(concat!(env!("SEMCACHE_EMBED_DIR"), "/tokenizer.json")));
    pub const NAME: &str = env!("SEMCACHE_EMBED_NAME");
    pub const DEFAULT_MAX_TOKENS: usize = super::parse_usize(env!("SEMCACHE_EMBED_MAX_TOKENS"), 128);
}

#[cfg(not(semcache_embedded_model))]
mod embedded {
    pub const MODEL: Option<&[u8]> = None;
    pub const TOKENIZER: Option<&[u8]> = None;
    pub const NAME: &str = "none";
    pub const DEFAULT_MAX_TOKENS: usize = 128;
}

#[allow(dead_code)]
const fn parse_usize(s: &str, default: usize) -> usize {
    let b = s.as_bytes();
    if b.is_empty() {
        return default;
    }
    let mut i = 0;
    let mut n = 0usize;
    while i < b.len() {
        if b[i] < b'0' || b[i] > b'9' {
            return default;
        }
        n = n * 10 + (b[i] - b'0') as usize;
        i += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_rejects_zero() {
        let mut v = vec![0.0f32; 4];
        assert_eq!(normalize(&mut v), Err(LocalEmbedError::Degenerate));
        let mut v = vec![3.0f32, 4.0];
        normalize(&mut v).unwrap();
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
    }

    #[test]
    fn parse_usize_const() {
        assert_eq!(parse_usize("64", 1), 64);
        assert_eq!(parse_usize("", 7), 7);
        assert_eq!(parse_usize("x", 7), 7);
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        assert!(matches!(LocalEmbedder::from_bytes(b"garbage", b"{}", 16), Err(LocalEmbedError::Tokenizer(_))));
    }

    /// Runs against the embedded model when the build has one (scripts/build-local.sh).
    #[test]
    fn embedded_model_if_present() {
        let e = match LocalEmbedder::embedded() {
            Ok(e) => e,
            Err(LocalEmbedError::NoEmbeddedModel) => return,
            Err(e) => panic!("{e}"),
        };
        let a = e.embed("How do I reset my password?").unwrap();
        let b = e.embed("how can I change my password").unwrap();
        let c = e.embed("The weather in Paris is sunny today.").unwrap();
        assert_eq!(a.len(), e.dimensions());
        let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
        assert!((dot(&a, &a) - 1.0).abs() < 1e-4);
        assert!(dot(&a, &b) > dot(&a, &c));
        // long input is truncated, not an error
        let long = "word ".repeat(5000);
        assert_eq!(e.token_ids(&long).unwrap().len(), e.max_tokens());
        assert!(e.embed(&long).is_ok());
        assert!(e.embed("").is_ok());
    }
}
