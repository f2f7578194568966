//! The host layer: moves bytes between Envoy and `core`. The logic (`http`, `root`) is generic
//! over the `Host` trait and unit-tested natively with a recording fake; only `proxy` (wasm32)
//! uses proxy_wasm.
pub mod calls;
pub mod http;
pub mod local;
#[cfg(target_arch = "wasm32")]
pub mod proxy;
pub mod root;
pub mod shared;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;
