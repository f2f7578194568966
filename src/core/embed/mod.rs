//! Embedding: remote provider wire formats, and the in-filter model (feature `local-model`).
pub mod provider;
#[cfg(feature = "local-model")]
pub mod local;
