//! What the filter needs from its host, as a trait: the proxy-wasm host implements it on wasm32
//! (`host::proxy`), a recording fake in the tests (`host::fake`). The host logic in `http.rs` and
//! `root.rs` only talks to this trait, so it runs natively under `cargo test`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;

use crate::core::log::Level;
use crate::core::metrics::{Metric, Timing};

/// A host call that failed (the proxy-wasm status, as text).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct HostError(pub String);

/// What a callback tells the host: go on with the stream, or hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    Pause,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Buffer {
    RequestBody,
    ResponseBody,
    PluginConfiguration,
}

/// An HTTP callout (always a POST).
#[derive(Debug, Clone, Copy)]
pub struct HttpCall<'a> {
    pub cluster: &'a str,
    pub authority: &'a str,
    pub path: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    pub timeout_ms: u64,
}

pub trait Host {
    fn log(&self, level: Level, msg: &str);
    fn now(&self) -> SystemTime;

    fn request_header(&self, name: &str) -> Option<String>;
    fn response_header(&self, name: &str) -> Option<String>;
    fn remove_request_header(&self, name: &str);
    fn set_response_header(&self, name: &str, value: &str);
    /// Up to `size` bytes of a buffer (empty when it cannot be read).
    fn buffer(&self, kind: Buffer, size: usize) -> Vec<u8>;
    fn property(&self, path: &[&str]) -> Option<String>;

    /// Starts a callout; its answer arrives as a call response with the returned token.
    fn dispatch(&self, call: &HttpCall) -> Result<u32, HostError>;
    /// Status and body of the callout response now being delivered; `None` when the call failed.
    fn call_response(&self, num_headers: usize, body_size: usize) -> Option<(u16, Vec<u8>)>;
    fn send_response(&self, status: u32, headers: &[(String, String)], body: &[u8]) -> Result<(), HostError>;
    fn resume_request(&self);

    /// Defines the counters and histograms (once per root context, at configure time).
    fn define_metrics(&self);
    fn count(&self, m: Metric);
    fn count_by(&self, m: Metric, n: u64);
    /// Records a per-request fact for access logs (core/facts.rs).
    fn set_fact(&self, name: &str, value: &str);
    fn time(&self, t: Timing, micros: u64);
    fn set_tick(&self, period: Duration);

    /// Registers the queue that carries store jobs to the root context; `false` when it failed.
    fn register_store_queue(&self) -> bool;
    fn enqueue_store(&self, job: &[u8]) -> Result<(), HostError>;
    fn dequeue_store(&self) -> Option<Vec<u8>>;

    fn now_secs(&self) -> u64 {
        self.now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }

    fn micros_since(&self, t: SystemTime) -> u64 {
        self.now().duration_since(t).map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)).unwrap_or(0)
    }

    /// POSTs a RESP pipeline to a Redis cluster (`envoy.upstreams.http.tcp`); the path and
    /// authority are only there because Envoy requires them.
    fn dispatch_redis(&self, cluster: &str, pipeline: &[u8], timeout_ms: u64) -> Result<u32, HostError> {
        self.dispatch(&HttpCall { cluster, authority: cluster, path: "/", headers: &[], body: pipeline, timeout_ms })
    }
}
