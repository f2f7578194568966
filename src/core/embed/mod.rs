//! Embedding: remote provider wire formats, and the in-filter model (feature `local-model`).
#[cfg(feature = "local-model")]
pub mod local;
pub mod provider;
