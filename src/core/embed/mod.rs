//! Embedding: remote provider wire formats, the in-filter static table (`static_model`, feature `static-model`
//! embeds the table) and the in-filter transformer (feature `local-model`).
pub mod bert_tokenizer;
#[cfg(feature = "local-model")]
pub mod local;
#[cfg(not(target_arch = "wasm32"))]
pub mod model_meta;
pub mod provider;
pub mod static_model;
