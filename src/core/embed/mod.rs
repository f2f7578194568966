//! Embedding: remote provider wire formats, the in-filter static table (`static_model`, feature `static-model`
//! embeds the table) and the in-filter transformer (feature `local-model`).
pub mod provider;
pub mod bert_tokenizer;
pub mod static_model;
#[cfg(feature = "local-model")]
pub mod local;
