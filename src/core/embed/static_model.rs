//! Static embedding model (provider `local` in the default build): a BERT WordPiece tokenizer plus a table with
//! one vector per token, distilled offline from all-MiniLM-L6-v2 by scripts/models/distill_static.py.
//! Sentence vector = L2-normalised sum of the rows of its tokens (the distillation bakes the frequency weights
//! into the rows, so no weights here; [CLS]/[SEP] are not added). A 128-token prompt costs microseconds, so
//! embedding on the worker thread blocks nothing, and the code is small, so V8 compiles it at once.
//!
//! `model.bin` (little endian): `b"SEMSTAT1"`, u32 vocab size, u32 dims, f32 scale[vocab], i8 rows[vocab][dims]
//! (row value = i8 * scale). `vocab.txt`: line i is the token of id i.
//!
//! The table embedded at build time (feature `static-model`) comes from `SEMCACHE_STATIC_DIR` (default
//! `.local/models/static-default`, a link made by scripts/build-static.sh); build.rs sets
//! `cfg(semcache_static_model)` when `model.bin` + `vocab.txt` are there. Host-free.

use std::fmt;

use super::bert_tokenizer::{BertTokenizer, TokenizerError, MAX_CHARS_PER_WORD};

const MAGIC: &[u8; 8] = b"SEMSTAT1";
const HEADER: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaticEmbedError {
    /// This build has no table (feature `static-model` off, or no files at build time).
    NoEmbeddedModel,
    /// model.bin is malformed.
    Format(String),
    /// vocab.txt is unusable or does not match the table.
    Vocab(String),
    /// The text has no token with a non-zero vector (empty, or only unknown characters).
    Degenerate,
}

impl fmt::Display for StaticEmbedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoEmbeddedModel => write!(f, "no static model embedded in this build (scripts/build-static.sh)"),
            Self::Format(e) => write!(f, "model.bin: {e}"),
            Self::Vocab(e) => write!(f, "vocab.txt: {e}"),
            Self::Degenerate => write!(f, "text has no token with a vector"),
        }
    }
}

impl std::error::Error for StaticEmbedError {}

impl From<TokenizerError> for StaticEmbedError {
    fn from(e: TokenizerError) -> Self {
        Self::Vocab(e.to_string())
    }
}

/// A loaded static model. Borrows the table bytes (the embedded ones are `'static`).
pub struct StaticEmbedder<'a> {
    tokenizer: BertTokenizer<'a>,
    scales: Vec<f32>,
    rows: &'a [u8],
    dims: usize,
    max_tokens: usize,
    name: String,
}

impl fmt::Debug for StaticEmbedder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticEmbedder")
            .field("name", &self.name)
            .field("vocab", &self.scales.len())
            .field("dims", &self.dims)
            .field("max_tokens", &self.max_tokens)
            .finish()
    }
}

fn read_u32(b: &[u8], at: usize) -> Result<u32, StaticEmbedError> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| StaticEmbedError::Format("truncated header".into()))
}

impl<'a> StaticEmbedder<'a> {
    /// Loads a table and its vocabulary; `max_tokens` caps the tokens embedded per text (at least 1).
    pub fn from_bytes(
        model_bin: &'a [u8],
        vocab_txt: &'a str,
        max_tokens: usize,
        name: &str,
    ) -> Result<Self, StaticEmbedError> {
        if model_bin.len() < HEADER || &model_bin[..8] != MAGIC {
            return Err(StaticEmbedError::Format("not a SEMSTAT1 file".into()));
        }
        let vocab = read_u32(model_bin, 8)? as usize;
        let dims = read_u32(model_bin, 12)? as usize;
        if vocab == 0 || dims == 0 {
            return Err(StaticEmbedError::Format(format!("empty table ({vocab} x {dims})")));
        }
        let scales_end = vocab.checked_mul(4).and_then(|s| s.checked_add(HEADER));
        let end = vocab.checked_mul(dims).and_then(|r| r.checked_add(scales_end?));
        let (Some(scales_end), Some(end)) = (scales_end, end) else {
            return Err(StaticEmbedError::Format("size overflows".into()));
        };
        if model_bin.len() != end {
            return Err(StaticEmbedError::Format(format!(
                "{} bytes, expected {end} for {vocab} x {dims}",
                model_bin.len()
            )));
        }
        let scales: Vec<f32> = model_bin[HEADER..scales_end]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if scales.iter().any(|s| !s.is_finite()) {
            return Err(StaticEmbedError::Format("non-finite scale".into()));
        }
        let tokenizer = BertTokenizer::from_vocab_txt(vocab_txt)?;
        if tokenizer.vocab_size() != vocab {
            return Err(StaticEmbedError::Vocab(format!(
                "{} tokens, the table has {vocab} rows",
                tokenizer.vocab_size()
            )));
        }
        Ok(Self {
            tokenizer,
            scales,
            rows: &model_bin[scales_end..],
            dims,
            max_tokens: max_tokens.max(1),
            name: name.to_string(),
        })
    }

    /// Token ids embedded for `text` (at most `max_tokens`).
    pub fn token_ids(&self, text: &str) -> Vec<u32> {
        // text past this many characters cannot yield tokens below the cap: bounds the cost of huge prompts
        let cap = self.max_tokens.saturating_mul(MAX_CHARS_PER_WORD + 1);
        let text = match text.char_indices().nth(cap) {
            Some((byte, _)) => &text[..byte],
            None => text,
        };
        self.tokenizer.token_ids(text, self.max_tokens)
    }

    /// Embeds one text: a unit-length vector of `dimensions()` floats.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>, StaticEmbedError> {
        self.embed_ids(&self.token_ids(text))
    }

    /// Embeds token ids (ids outside the table are skipped).
    pub fn embed_ids(&self, ids: &[u32]) -> Result<Vec<f32>, StaticEmbedError> {
        let d = self.dims;
        let mut v = vec![0f32; d];
        for &id in ids {
            let id = id as usize;
            let (Some(&scale), Some(row)) = (self.scales.get(id), self.rows.get(id * d..id * d + d)) else {
                continue;
            };
            for (acc, &q) in v.iter_mut().zip(row) {
                *acc += f32::from(q as i8) * scale;
            }
        }
        if !super::l2_normalize(&mut v) {
            return Err(StaticEmbedError::Degenerate);
        }
        Ok(v)
    }

    pub fn dimensions(&self) -> usize {
        self.dims
    }

    pub fn model_name(&self) -> &str {
        &self.name
    }

    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }
}

impl StaticEmbedder<'static> {
    /// The table embedded at build time, with a token cap (the policy's `embedding.maxTokens`).
    pub fn embedded(max_tokens: usize) -> Result<Self, StaticEmbedError> {
        match (embedded::MODEL, embedded::VOCAB) {
            (Some(m), Some(v)) => Self::from_bytes(m, v, max_tokens, embedded::NAME),
            _ => Err(StaticEmbedError::NoEmbeddedModel),
        }
    }

    /// Name of the embedded table, if this build has one.
    pub fn embedded_model_name() -> Option<&'static str> {
        embedded::MODEL.map(|_| embedded::NAME)
    }
}

#[cfg(semcache_static_model)]
mod embedded {
    pub const MODEL: Option<&[u8]> = Some(include_bytes!(concat!(env!("SEMCACHE_STATIC_DIR"), "/model.bin")));
    pub const VOCAB: Option<&str> = Some(include_str!(concat!(env!("SEMCACHE_STATIC_DIR"), "/vocab.txt")));
    pub const NAME: &str = env!("SEMCACHE_STATIC_NAME");
    #[cfg(test)]
    pub const CHECK: Option<&str> = Some(include_str!(concat!(env!("SEMCACHE_STATIC_DIR"), "/check.json")));
}

#[cfg(not(semcache_static_model))]
mod embedded {
    pub const MODEL: Option<&[u8]> = None;
    pub const VOCAB: Option<&str> = None;
    pub const NAME: &str = "none";
    #[cfg(test)]
    pub const CHECK: Option<&str> = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    const VOCAB: &str = include_str!("../testdata/bert_uncased_vocab.txt");

    /// A table where row i is (i, 1, 0, ...) scaled by 1/127 (so the sum of rows is easy to predict).
    fn table(vocab: usize, dims: usize) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.extend((vocab as u32).to_le_bytes());
        b.extend((dims as u32).to_le_bytes());
        for _ in 0..vocab {
            b.extend((1.0f32 / 127.0).to_le_bytes());
        }
        for i in 0..vocab {
            let mut row = vec![0u8; dims];
            row[0] = (i % 100) as i8 as u8;
            row[1] = 1;
            b.extend(row);
        }
        b
    }

    #[test]
    fn mean_of_rows_then_unit_length() {
        let n = VOCAB.lines().count();
        let bin = table(n, 4);
        let e = StaticEmbedder::from_bytes(&bin, VOCAB, 128, "t").unwrap();
        let ids = e.token_ids("the the");
        assert_eq!(ids.len(), 2);
        let v = e.embed("the the").unwrap();
        let x = (ids[0] % 100) as f32;
        let norm = (x * x + 1.0).sqrt();
        assert!((v[0] - x / norm).abs() < 1e-6 && (v[1] - 1.0 / norm).abs() < 1e-6, "{v:?}");
        assert_eq!(e.embed(""), Err(StaticEmbedError::Degenerate));
    }

    #[test]
    fn malformed_tables_are_errors() {
        let n = VOCAB.lines().count();
        let good = table(n, 4);
        assert!(matches!(StaticEmbedder::from_bytes(b"nope", VOCAB, 8, "t"), Err(StaticEmbedError::Format(_))));
        assert!(matches!(
            StaticEmbedder::from_bytes(&good[..good.len() - 1], VOCAB, 8, "t"),
            Err(StaticEmbedError::Format(_))
        ));
        let small = table(n - 1, 4);
        assert!(matches!(StaticEmbedder::from_bytes(&small, VOCAB, 8, "t"), Err(StaticEmbedError::Vocab(_))));
        let mut huge = MAGIC.to_vec();
        huge.extend(u32::MAX.to_le_bytes());
        huge.extend(u32::MAX.to_le_bytes());
        assert!(matches!(StaticEmbedder::from_bytes(&huge, VOCAB, 8, "t"), Err(StaticEmbedError::Format(_))));
    }

    #[test]
    fn token_cap_and_huge_input() {
        let n = VOCAB.lines().count();
        let bin = table(n, 4);
        let e = StaticEmbedder::from_bytes(&bin, VOCAB, 16, "t").unwrap();
        let long = "word ".repeat(1_000_000);
        assert_eq!(e.token_ids(&long).len(), 16);
        assert!(e.embed(&long).is_ok());
    }

    /// The embedded table against the vectors distill_static.py computed with its numpy reimplementation
    /// (check.json next to model.bin); skipped when the build has no table.
    #[test]
    fn embedded_matches_numpy_reference() {
        let (Ok(e), Some(check)) = (StaticEmbedder::embedded(100_000), embedded::CHECK) else {
            return;
        };
        let cases: Vec<serde_json::Value> = serde_json::from_str(check).unwrap();
        assert!(!cases.is_empty());
        for c in &cases {
            let text = c["text"].as_str().unwrap();
            let ids: Vec<u32> = c["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
            assert_eq!(e.token_ids(text), ids, "{text:?}");
            let want: Vec<f32> = c["vector"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            match e.embed(text) {
                Ok(got) => {
                    let diff = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                    assert!(diff < 1e-5, "{text:?}: max diff {diff}");
                }
                Err(StaticEmbedError::Degenerate) => assert!(want.iter().all(|x| *x == 0.0), "{text:?}"),
                Err(err) => panic!("{text:?}: {err}"),
            }
        }
        let a = e.embed("How do I reset my password?").unwrap();
        let b = e.embed("how can I change my password").unwrap();
        let c = e.embed("The weather in Paris is sunny today.").unwrap();
        let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
        assert!(dot(&a, &b) > dot(&a, &c));
    }
}
