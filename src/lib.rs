//! Semantic cache for LLM APIs, as an Envoy proxy-wasm HTTP filter.
//! `core` is host-free; `host` drives it through the `Host` trait (proxy-wasm on wasm32, a fake in
//! tests). Both are unit-tested natively.
pub mod core;
pub mod host;

// Without feature `filter` the crate is a library for another filter (bench/embed/filter) that
// has its own entry point.
#[cfg(all(target_arch = "wasm32", feature = "filter"))]
proxy_wasm::main! {{
    // Only warnings from dependencies (tract logs every graph rewrite at debug); our own lines go
    // through hostcalls::log directly.
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Warn);
    // Under `panic = "abort"` a panic kills the VM; log it at Critical so it is not silent. After
    // set_log_level, which installs the SDK's own hook (scripts/panic-probe.py showed ours replaced).
    std::panic::set_hook(Box::new(|info| {
        let _ = proxy_wasm::hostcalls::log(proxy_wasm::types::LogLevel::Critical, &core::panic_log::panic_line(info));
    }));
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> { Box::new(host::proxy::root_context()) });
}}
