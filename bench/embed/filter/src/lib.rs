//! Bench filter: `GET /` with `x-embed-text: <text>` -> 200 with `x-embed-us` (tokenize + inference,
//! microseconds, host clock), `x-embed-tokens`, `x-embed-dims`, `x-embed-model`. The model is loaded once
//! per VM in `on_vm_start`, as the real filter does; its load time is logged.
use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use semantic_cache::core::embed::local::LocalEmbedder;

thread_local! {
    static EMB: RefCell<Option<Rc<LocalEmbedder>>> = const { RefCell::new(None) };
}

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}

fn now_us() -> u128 {
    proxy_wasm::hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

fn load() -> bool {
        let t0 = now_us();
        match LocalEmbedder::embedded() {
            Ok(e) => {
                log::info!(
                    "embed-bench: loaded {} in {} ms, linear memory {} MB",
                    e.model_name(),
                    (now_us() - t0) / 1000,
                    linear_memory_mb()
                );
                EMB.with(|c| *c.borrow_mut() = Some(Rc::new(e)));
                true
            }
            Err(e) => {
                proxy_wasm::hostcalls::log(LogLevel::Critical, &format!("embed-bench: load failed: {e}")).ok();
                false
            }
        }
}

fn linear_memory_mb() -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::memory_size(0) * 65536 / (1 << 20)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

struct Root;
impl Context for Root {}
impl RootContext for Root {
    /// plugin configuration "lazy": load on the first request of each worker instead of at VM start
    /// (the main-thread VM then never loads the model).
    fn on_configure(&mut self, _: usize) -> bool {
        let lazy = self.get_plugin_configuration().is_some_and(|c| c.starts_with(b"lazy"));
        if lazy { true } else { load() }
    }
    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http))
    }
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Http;
impl Context for Http {}
impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        let text = self.get_http_request_header("x-embed-text").unwrap_or_default();
        if EMB.with(|c| c.borrow().is_none()) {
            load();
        }
        let Some(emb) = EMB.with(|c| c.borrow().clone()) else {
            self.send_http_response(503, vec![("x-embed-error", "no model")], None);
            return Action::Pause;
        };
        let t0 = now_us();
        let r = emb.token_ids(&text).and_then(|ids| emb.embed_ids(&ids).map(|v| (ids.len(), v)));
        let us = now_us() - t0;
        match r {
            Ok((n, v)) => {
                let (us, n, d) = (us.to_string(), n.to_string(), v.len().to_string());
                let mem = linear_memory_mb().to_string();
                self.send_http_response(
                    200,
                    vec![("x-embed-us", &us), ("x-embed-tokens", &n), ("x-embed-dims", &d), ("x-embed-model", emb.model_name()), ("x-embed-linear-mb", &mem)],
                    Some(b"ok\n"),
                );
            }
            Err(e) => self.send_http_response(500, vec![("x-embed-error", &e.to_string())], None),
        }
        Action::Pause
    }
}
