//! Embedding: remote provider wire formats, and the in-filter model (feature `local-model`).
// native tools only: build.rs and embed_server read a model directory's meta.json
#[cfg(not(target_arch = "wasm32"))]
pub mod model_meta;
#[cfg(feature = "local-model")]
pub mod local;
pub mod provider;
