//! Host calls used by the filter, made through `proxy_wasm::hostcalls` so that a failing call
//! becomes an error we handle (fail open) instead of an SDK unwrap that aborts the VM.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType, MetricType, Status};

use crate::core::flow::Level;

pub fn log(level: Level, msg: &str) {
    let l = match level {
        Level::Debug => LogLevel::Debug,
        Level::Info => LogLevel::Info,
        Level::Warn => LogLevel::Warn,
        Level::Error => LogLevel::Error,
    };
    let _ = hostcalls::log(l, &format!("semantic-cache: {msg}"));
}

pub fn now_secs() -> u64 {
    now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub fn now() -> SystemTime {
    hostcalls::get_current_time().unwrap_or(UNIX_EPOCH)
}

pub fn micros_since(t: SystemTime) -> u64 {
    now().duration_since(t).map(|d| d.as_micros() as u64).unwrap_or(0)
}

pub fn request_header(name: &str) -> Option<String> {
    hostcalls::get_map_value(MapType::HttpRequestHeaders, name).ok().flatten()
}

pub fn response_header(name: &str) -> Option<String> {
    hostcalls::get_map_value(MapType::HttpResponseHeaders, name).ok().flatten()
}

pub fn remove_request_header(name: &str) {
    let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name);
}

pub fn set_response_header(name: &str, value: &str) {
    let _ = hostcalls::set_map_value(MapType::HttpResponseHeaders, name, Some(value));
}

pub fn buffer(kind: BufferType, size: usize) -> Vec<u8> {
    hostcalls::get_buffer(kind, 0, size).ok().flatten().unwrap_or_default()
}

pub fn property_string(path: Vec<&str>) -> Option<String> {
    hostcalls::get_property(path).ok().flatten().and_then(|b| String::from_utf8(b).ok())
}

pub fn dispatch(
    cluster: &str,
    authority: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
    timeout_ms: u64,
) -> Result<u32, Status> {
    let mut h: Vec<(&str, &str)> = vec![(":method", "POST"), (":path", path), (":authority", authority)];
    h.extend(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    hostcalls::dispatch_http_call(cluster, h, Some(body), vec![], Duration::from_millis(timeout_ms))
}

/// POSTs a RESP pipeline to a Redis cluster (`envoy.upstreams.http.tcp`); the path and authority
/// are only there because Envoy requires them.
pub fn dispatch_redis(cluster: &str, pipeline: &[u8], timeout_ms: u64) -> Result<u32, Status> {
    dispatch(cluster, cluster, "/", &[], pipeline, timeout_ms)
}

/// Status and body of the callout response now being delivered; `None` when the call failed
/// (Envoy delivers a failed call as a response without headers).
pub fn call_response(num_headers: usize, body_size: usize) -> Option<(u16, Vec<u8>)> {
    if num_headers == 0 {
        return None;
    }
    let status = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
        .ok()
        .flatten()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Some((status, buffer(BufferType::HttpCallResponseBody, body_size)))
}

pub fn send_response(status: u32, headers: &[(String, String)], body: &[u8]) -> Result<(), Status> {
    let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    hostcalls::send_http_response(status, h, Some(body))
}

pub fn resume_request() {
    let _ = hostcalls::resume_http_request();
}

pub fn define(kind: MetricType, name: &str) -> Option<u32> {
    hostcalls::define_metric(kind, name).ok()
}

pub fn increment(id: u32) {
    let _ = hostcalls::increment_metric(id, 1);
}

pub fn record(id: u32, value: u64) {
    let _ = hostcalls::record_metric(id, value);
}

pub fn set_tick(period: Duration) {
    let _ = hostcalls::set_tick_period(period);
}

pub fn register_queue(name: &str) -> Option<u32> {
    hostcalls::register_shared_queue(name).ok()
}

pub fn enqueue(queue: u32, data: &[u8]) -> Result<(), Status> {
    hostcalls::enqueue_shared_queue(queue, Some(data))
}

pub fn dequeue(queue: u32) -> Option<Vec<u8>> {
    hostcalls::dequeue_shared_queue(queue).ok().flatten()
}
