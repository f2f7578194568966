//! Root context: parses the policy once, defines metrics, loads the local model, and runs the
//! store jobs that HTTP contexts enqueue (so a store survives the end of its stream).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, MetricType};

use crate::core::flow::{check_store_reply, Level};
use crate::core::index::{self, IndexHealth};
use crate::core::metrics::{Metric, Timing};
use crate::core::policy::{parse_policy, Policy, Provider};
use crate::core::store_job::StoreJob;
use crate::host::calls;
use crate::host::http::Stream;
use crate::host::local;

const STORE_QUEUE: &str = "semantic_cache.store";

/// Shared by the root context and its HTTP contexts (one VM = one thread: `Rc`).
pub struct Shared {
    pub policy: Result<Rc<Policy>, String>,
    counters: Vec<Option<u32>>,
    timings: Vec<Option<u32>>,
    pub store_queue: Option<u32>,
    /// Last index check of this VM's root context.
    pub index: Cell<IndexHealth>,
}

impl Shared {
    pub fn count(&self, m: Metric) {
        if let Some(Some(id)) = self.counters.get(m.index()) {
            calls::increment(*id);
        }
    }

    pub fn time(&self, t: Timing, micros: u64) {
        if let Some(Some(id)) = self.timings.get(t.index()) {
            calls::record(*id, micros);
        }
    }
}

pub struct Root {
    shared: Rc<Shared>,
    /// Store callouts in flight: (token, preamble length of that pipeline).
    stores: RefCell<Vec<(u32, usize)>>,
    /// Index check (`FT.INFO`) or creation (`FT.CREATE`) in flight.
    index_call: Option<(u32, IndexCall)>,
    next_index_check: u64,
}

#[derive(Clone, Copy, PartialEq)]
enum IndexCall {
    Check,
    Create,
}

impl Root {
    pub fn new() -> Self {
        Root {
            shared: Rc::new(Shared {
                policy: Err("not configured".into()),
                counters: vec![],
                timings: vec![],
                store_queue: None,
                index: Cell::new(IndexHealth::Unknown),
            }),
            stores: RefCell::new(Vec::new()),
            index_call: None,
            next_index_check: 0,
        }
    }
}

impl Root {
    fn dispatch_index_call(&mut self, kind: IndexCall) {
        let Ok(policy) = &self.shared.policy else { return };
        let pipeline = match kind {
            IndexCall::Check => index::check_pipeline(policy),
            IndexCall::Create => index::create_pipeline(policy),
        };
        let vs = &policy.vector_store;
        if let Ok(token) = calls::dispatch_redis(&vs.cluster, &pipeline, vs.timeout_ms) {
            self.index_call = Some((token, kind));
        }
    }

    fn on_index_reply(&mut self, kind: IndexCall, reply: Option<&[u8]>) {
        let Ok(policy) = self.shared.policy.clone() else { return };
        if kind == IndexCall::Create {
            // Created (or created meanwhile by a store): check again at once.
            self.next_index_check = 0;
            return;
        }
        let before = self.shared.index.get();
        let now = match index::check_reply(&policy, reply) {
            Ok(h) => h,
            Err(e) => {
                calls::log(Level::Warn, &format!("index check of `{}` failed: {e}", policy.vector_store.index_name));
                IndexHealth::Unknown
            }
        };
        self.shared.index.set(now);
        match now {
            IndexHealth::Missing => self.dispatch_index_call(IndexCall::Create),
            IndexHealth::Mismatch { index_dim } if before != now => calls::log(
                Level::Error,
                &format!(
                    "vector dimension mismatch: index `{}` has DIM {index_dim}, embedding.dimensions={}; requests BYPASS until the index is dropped or vectorStore.indexName changed",
                    policy.vector_store.index_name, policy.embedding.dimensions
                ),
            ),
            _ => {}
        }
    }
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, num_headers: usize, body_size: usize, _trailers: usize) {
        if let Some((t, kind)) = self.index_call {
            if t == token {
                self.index_call = None;
                let reply = calls::call_response(num_headers, body_size);
                self.on_index_reply(kind, reply.as_ref().map(|(_, b)| b.as_slice()));
                return;
            }
        }
        let mut stores = self.stores.borrow_mut();
        let Some(pos) = stores.iter().position(|(t, _)| *t == token) else { return };
        let (_, preamble) = stores.swap_remove(pos);
        let reply = calls::call_response(num_headers, body_size);
        match check_store_reply(preamble, reply.as_ref().map(|(_, b)| b.as_slice())) {
            Ok(()) => self.shared.count(Metric::StoreOk),
            Err(e) => {
                self.shared.count(Metric::StoreError);
                calls::log(Level::Warn, &format!("store failed: {e}"));
            }
        }
    }
}

impl RootContext for Root {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        calls::log(Level::Info, &format!("semantic-cache {} starting", env!("CARGO_PKG_VERSION")));
        true
    }

    fn on_configure(&mut self, size: usize) -> bool {
        let counters = Metric::ALL.iter().map(|m| calls::define(MetricType::Counter, m.name())).collect();
        let timings = Timing::ALL.iter().map(|t| calls::define(MetricType::Histogram, t.name())).collect();
        let raw = calls::buffer(BufferType::PluginConfiguration, size);
        let policy = parse_policy(&raw).map(Rc::new).map_err(|e| e.to_string());
        let store_queue = calls::register_queue(STORE_QUEUE);
        let shared = Shared { policy, counters, timings, store_queue, index: Cell::new(IndexHealth::Unknown) };
        match &shared.policy {
            Ok(p) => {
                if p.embedding.provider == Provider::Local {
                    match local::check() {
                        Ok(name) => calls::log(Level::Info, &format!("local embedding model `{name}` (loaded on each worker's first request)")),
                        Err(e) => calls::log(Level::Error, &format!("local embedding model unavailable: {e}; requests will BYPASS")),
                    }
                }
                calls::log(
                    Level::Info,
                    &format!(
                        "policy loaded: provider={} dims={} threshold={} ttl={}s rules={}",
                        p.embedding.provider.as_str(),
                        p.embedding.dimensions,
                        p.defaults.threshold,
                        p.defaults.ttl_secs,
                        p.rules.len()
                    ),
                );
            }
            Err(e) => {
                shared.count(Metric::PolicyError);
                calls::log(Level::Error, &format!("{e}; caching is off, traffic passes with x-cache-status: BYPASS"));
            }
        }
        let check = shared.policy.is_ok();
        self.shared = Rc::new(shared);
        if check {
            // The first check runs on the first tick (clusters are not usable during configure).
            self.next_index_check = 0;
            calls::set_tick(Duration::from_secs(1));
        }
        // Returning true even for a broken policy keeps the listener (and traffic) up: fail open.
        true
    }

    fn on_tick(&mut self) {
        let now = calls::now_secs();
        if self.index_call.is_none() && now >= self.next_index_check {
            self.next_index_check = now + index::RECHECK_SECS;
            self.dispatch_index_call(IndexCall::Check);
        }
    }

    fn on_queue_ready(&mut self, queue: u32) {
        while let Some(raw) = calls::dequeue(queue) {
            let Some(job) = StoreJob::decode(&raw) else {
                self.shared.count(Metric::StoreError);
                continue;
            };
            match calls::dispatch_redis(&job.cluster, &job.pipeline, u64::from(job.timeout_ms)) {
                Ok(token) => self.stores.borrow_mut().push((token, usize::from(job.preamble))),
                Err(e) => {
                    self.shared.count(Metric::StoreError);
                    calls::log(Level::Warn, &format!("store dispatch to cluster `{}` failed: {e:?}", job.cluster));
                }
            }
        }
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream::new(self.shared.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
