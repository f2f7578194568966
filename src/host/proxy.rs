//! The real host (wasm32 only): `Host` over `proxy_wasm::hostcalls`, and the proxy-wasm context
//! traits as thin wrappers around the generic logic in `root.rs` and `http.rs`. Host calls go
//! through `hostcalls` so a failing call becomes an error we handle (fail open) instead of an
//! SDK unwrap that aborts the VM.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action as WasmAction, BufferType, ContextType, LogLevel, MapType, MetricType, Status};

use crate::core::log::Level;
use crate::core::metrics::{Metric, Timing};
use crate::host::calls::{Action, Buffer, Host, HostError, HttpCall};
use crate::host::http::Stream;
use crate::host::root::Root;

const STORE_QUEUE: &str = "semantic_cache.store";

/// Per root context: the metric ids it defined and its store queue.
#[derive(Default)]
pub struct ProxyHost {
    counters: RefCell<Vec<Option<u32>>>,
    timings: RefCell<Vec<Option<u32>>>,
    queue: Cell<Option<u32>>,
}

fn err(s: Status) -> HostError {
    HostError(format!("{s:?}"))
}

impl Host for ProxyHost {
    fn log(&self, level: Level, msg: &str) {
        let l = match level {
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        let _ = hostcalls::log(l, &format!("semantic-cache: {msg}"));
    }

    fn now(&self) -> SystemTime {
        hostcalls::get_current_time().unwrap_or(UNIX_EPOCH)
    }

    fn request_header(&self, name: &str) -> Option<String> {
        hostcalls::get_map_value(MapType::HttpRequestHeaders, name).ok().flatten()
    }

    fn response_header(&self, name: &str) -> Option<String> {
        hostcalls::get_map_value(MapType::HttpResponseHeaders, name).ok().flatten()
    }

    fn remove_request_header(&self, name: &str) {
        let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name);
    }

    fn set_response_header(&self, name: &str, value: &str) {
        let _ = hostcalls::set_map_value(MapType::HttpResponseHeaders, name, Some(value));
    }

    fn buffer(&self, kind: Buffer, size: usize) -> Vec<u8> {
        let kind = match kind {
            Buffer::RequestBody => BufferType::HttpRequestBody,
            Buffer::ResponseBody => BufferType::HttpResponseBody,
            Buffer::PluginConfiguration => BufferType::PluginConfiguration,
        };
        hostcalls::get_buffer(kind, 0, size).ok().flatten().unwrap_or_default()
    }

    fn property(&self, path: &[&str]) -> Option<String> {
        hostcalls::get_property(path.to_vec()).ok().flatten().and_then(|b| String::from_utf8(b).ok())
    }

    fn dispatch(&self, c: &HttpCall) -> Result<u32, HostError> {
        let mut h: Vec<(&str, &str)> = vec![(":method", "POST"), (":path", c.path), (":authority", c.authority)];
        h.extend(c.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        hostcalls::dispatch_http_call(c.cluster, h, Some(c.body), vec![], Duration::from_millis(c.timeout_ms))
            .map_err(err)
    }

    fn call_response(&self, num_headers: usize, body_size: usize) -> Option<(u16, Vec<u8>)> {
        // Envoy delivers a failed call as a response without headers.
        if num_headers == 0 {
            return None;
        }
        let status = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size).ok().flatten();
        Some((status, body.unwrap_or_default()))
    }

    fn send_response(&self, status: u32, headers: &[(String, String)], body: &[u8]) -> Result<(), HostError> {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        hostcalls::send_http_response(status, h, Some(body)).map_err(err)
    }

    fn resume_request(&self) {
        let _ = hostcalls::resume_http_request();
    }

    fn define_metrics(&self) {
        let define = |kind, name| hostcalls::define_metric(kind, name).ok();
        *self.counters.borrow_mut() = Metric::ALL.iter().map(|m| define(MetricType::Counter, m.name())).collect();
        *self.timings.borrow_mut() = Timing::ALL.iter().map(|t| define(MetricType::Histogram, t.name())).collect();
    }

    fn count(&self, m: Metric) {
        if let Some(Some(id)) = self.counters.borrow().get(m.index()) {
            let _ = hostcalls::increment_metric(*id, 1);
        }
    }

    fn count_by(&self, m: Metric, n: u64) {
        if let Some(Some(id)) = self.counters.borrow().get(m.index()) {
            let _ = hostcalls::increment_metric(*id, i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    fn set_fact(&self, name: &str, value: &str) {
        // Envoy keeps a property set by a filter in the stream's filter state as `wasm.<name>`.
        let _ = hostcalls::set_property(vec![name], Some(value.as_bytes()));
    }

    fn time(&self, t: Timing, micros: u64) {
        if let Some(Some(id)) = self.timings.borrow().get(t.index()) {
            let _ = hostcalls::record_metric(*id, micros);
        }
    }

    fn set_tick(&self, period: Duration) {
        let _ = hostcalls::set_tick_period(period);
    }

    fn register_store_queue(&self) -> bool {
        self.queue.set(hostcalls::register_shared_queue(STORE_QUEUE).ok());
        self.queue.get().is_some()
    }

    fn enqueue_store(&self, job: &[u8]) -> Result<(), HostError> {
        let queue = self.queue.get().ok_or_else(|| HostError("store queue not registered".into()))?;
        hostcalls::enqueue_shared_queue(queue, Some(job)).map_err(err)
    }

    fn dequeue_store(&self) -> Option<Vec<u8>> {
        hostcalls::dequeue_shared_queue(self.queue.get()?).ok().flatten()
    }
}

fn action(a: Action) -> WasmAction {
    match a {
        Action::Continue => WasmAction::Continue,
        Action::Pause => WasmAction::Pause,
    }
}

pub struct RootCtx(Root<ProxyHost>);

pub fn root_context() -> RootCtx {
    RootCtx(Root::new(Rc::new(ProxyHost::default())))
}

impl Context for RootCtx {
    fn on_http_call_response(&mut self, token: u32, num_headers: usize, body_size: usize, _trailers: usize) {
        self.0.on_call_response(token, num_headers, body_size);
    }
}

impl RootContext for RootCtx {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        self.0.on_vm_start()
    }

    fn on_configure(&mut self, size: usize) -> bool {
        self.0.on_configure(size)
    }

    fn on_tick(&mut self) {
        self.0.on_tick();
    }

    fn on_queue_ready(&mut self, _queue: u32) {
        // The only queue this root context registered is the store queue.
        self.0.on_queue_ready();
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(StreamCtx(self.0.new_stream())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct StreamCtx(Stream<ProxyHost>);

impl Context for StreamCtx {
    fn on_http_call_response(&mut self, token: u32, num_headers: usize, body_size: usize, _trailers: usize) {
        self.0.on_call_response(token, num_headers, body_size);
    }
}

impl HttpContext for StreamCtx {
    fn on_http_request_headers(&mut self, _n: usize, end_of_stream: bool) -> WasmAction {
        #[cfg(feature = "panic-probe")]
        panic_probe();
        action(self.0.on_request_headers(end_of_stream))
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> WasmAction {
        action(self.0.on_request_body(body_size, end_of_stream))
    }

    fn on_http_request_trailers(&mut self, _n: usize) -> WasmAction {
        action(self.0.on_request_trailers())
    }

    fn on_http_response_headers(&mut self, _n: usize, end_of_stream: bool) -> WasmAction {
        action(self.0.on_response_headers(end_of_stream))
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> WasmAction {
        action(self.0.on_response_body(body_size, end_of_stream))
    }

    fn on_log(&mut self) {
        self.0.on_log();
    }
}

/// Test-only (feature `panic-probe`): panics on a request carrying `x-semantic-cache-panic-probe`.
#[cfg(feature = "panic-probe")]
#[allow(clippy::panic)]
fn panic_probe() {
    if let Ok(Some(v)) = hostcalls::get_map_value(MapType::HttpRequestHeaders, "x-semantic-cache-panic-probe") {
        panic!("panic probe requested ({} bytes)", v.len());
    }
}
