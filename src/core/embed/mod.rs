//! Embedding: remote provider wire formats, the in-filter static table (`static_model`, feature `static-model`
//! embeds the table) and the in-filter transformer (feature `local-model`).
pub mod bert_tokenizer;
#[cfg(feature = "local-model")]
pub mod local;
#[cfg(not(target_arch = "wasm32"))]
pub mod model_meta;
pub mod provider;
pub mod static_model;

/// Whether the in-filter embedder of this build costs about as little as a Redis round trip (the
/// static table: microseconds) rather than milliseconds (the transformer, feature `local-model`).
/// A cheap one runs before the exact lookup so that exact and KNN go in one Redis pipeline; an
/// expensive one runs only after the exact tier missed.
pub const LOCAL_EMBED_IS_CHEAP: bool = !cfg!(feature = "local-model");
