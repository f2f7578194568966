//! The proxy-wasm layer: moves bytes between Envoy and `core`. Only this module uses proxy_wasm.
pub mod calls;
pub mod http;
pub mod local;
pub mod root;
