//! Semantic cache for LLM APIs, as an Envoy proxy-wasm HTTP filter.
//! `core` is host-free and unit-tested natively; `host` is the thin proxy-wasm layer.
pub mod core;
#[cfg(target_arch = "wasm32")]
mod host;
