//! Root context logic: parses the policy once, defines metrics, checks the index, and runs the
//! store jobs that HTTP contexts enqueue (so a store survives the end of its stream). Generic
//! over `Host`; the proxy-wasm wrapper lives in `host::proxy`.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use crate::core::log::Level;
use crate::core::metrics::Metric;
use crate::core::policy::{parse_policy, Provider};
use crate::core::redis::index::{self, IndexHealth};
use crate::core::redis::store::check_store_reply;
use crate::core::redis::store_job::StoreJob;
use crate::host::calls::{Buffer, Host};
use crate::host::http::Stream;
use crate::host::local;
use crate::host::shared::Shared;

pub struct Root<H: Host> {
    host: Rc<H>,
    shared: Rc<Shared>,
    /// Store callouts in flight: (token, preamble length of that pipeline).
    stores: Vec<(u32, usize)>,
    /// Index check (`FT.INFO`) or creation (`FT.CREATE`) in flight.
    index_call: Option<(u32, IndexCall)>,
    next_index_check: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IndexCall {
    Check,
    Create,
}

impl<H: Host> Root<H> {
    pub fn new(host: Rc<H>) -> Self {
        Root {
            host,
            shared: Rc::new(Shared::unconfigured()),
            stores: Vec::new(),
            index_call: None,
            next_index_check: 0,
        }
    }

    pub fn new_stream(&self) -> Stream<H> {
        Stream::new(self.host.clone(), self.shared.clone())
    }

    fn dispatch_index_call(&mut self, kind: IndexCall) {
        let Ok(policy) = &self.shared.policy else { return };
        let pipeline = match kind {
            IndexCall::Check => index::check_pipeline(policy),
            IndexCall::Create => index::create_pipeline(policy),
        };
        let vs = &policy.vector_store;
        if let Ok(token) = self.host.dispatch_redis(&vs.cluster, &pipeline, vs.timeout_ms) {
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
                self.host.log(Level::Warn, &format!("index check of `{}` failed: {e}", policy.vector_store.index));
                IndexHealth::Unknown
            }
        };
        self.shared.index.set(now);
        match now {
            IndexHealth::Missing => self.dispatch_index_call(IndexCall::Create),
            IndexHealth::Mismatch { index_dim } if before != now => self.host.log(
                Level::Error,
                &format!(
                    "vector dimension mismatch: index `{}` has DIM {index_dim}, embedding.dimensions={}; requests BYPASS until the index is dropped or vectorStore.indexName changed",
                    policy.vector_store.index, policy.embedding.dimensions
                ),
            ),
            _ => {}
        }
    }

    /// The answer of an index or store callout; unknown tokens are ignored.
    pub fn on_call_response(&mut self, token: u32, num_headers: usize, body_size: usize) {
        if let Some((t, kind)) = self.index_call {
            if t == token {
                self.index_call = None;
                let reply = self.host.call_response(num_headers, body_size);
                self.on_index_reply(kind, reply.as_ref().map(|(_, b)| b.as_slice()));
                return;
            }
        }
        let Some(pos) = self.stores.iter().position(|(t, _)| *t == token) else {
            self.host.log(Level::Debug, &format!("ignoring the answer of unknown callout {token}"));
            return;
        };
        let (_, preamble) = self.stores.swap_remove(pos);
        let reply = self.host.call_response(num_headers, body_size);
        match check_store_reply(preamble, reply.as_ref().map(|(_, b)| b.as_slice())) {
            Ok(()) => self.host.count(Metric::StoreOk),
            Err(e) => {
                self.host.count(Metric::StoreError);
                self.host.log(Level::Warn, &format!("store failed: {e}"));
            }
        }
    }

    pub fn on_vm_start(&mut self) -> bool {
        self.host.log(Level::Info, &format!("semantic-cache {} starting", env!("CARGO_PKG_VERSION")));
        true
    }

    pub fn on_configure(&mut self, size: usize) -> bool {
        self.host.define_metrics();
        let raw = self.host.buffer(Buffer::PluginConfiguration, size);
        let policy = parse_policy(&raw).map(Rc::new).map_err(|e| e.to_string());
        let store_queue = self.host.register_store_queue();
        let shared = Shared { policy, store_queue, index: Cell::new(IndexHealth::Unknown) };
        match &shared.policy {
            Ok(p) => {
                if p.embedding.provider == Provider::Local {
                    match local::check() {
                        Ok(name) => self.host.log(
                            Level::Info,
                            &format!("local embedding model `{name}` (loaded on each worker's first request)"),
                        ),
                        Err(e) => self.host.log(
                            Level::Error,
                            &format!("local embedding model unavailable: {e}; requests will BYPASS"),
                        ),
                    }
                }
                self.host.log(
                    Level::Info,
                    &format!(
                        "policy loaded: provider={} dims={} threshold={} ttl={}s rules={} index={} purge={}",
                        p.embedding.provider.as_str(),
                        p.embedding.dimensions,
                        p.defaults.threshold,
                        p.defaults.ttl_secs,
                        p.rules.len(),
                        p.vector_store.index,
                        if p.purge.key.is_some() { p.purge.path.as_str() } else { "off" }
                    ),
                );
            }
            Err(e) => {
                self.host.count(Metric::PolicyError);
                self.host
                    .log(Level::Error, &format!("{e}; caching is off, traffic passes with x-cache-status: BYPASS"));
            }
        }
        let check = shared.policy.is_ok();
        self.shared = Rc::new(shared);
        if check {
            // The first check runs on the first tick (clusters are not usable during configure).
            self.next_index_check = 0;
            self.host.set_tick(Duration::from_secs(1));
        }
        // Returning true even for a broken policy keeps the listener (and traffic) up: fail open.
        true
    }

    pub fn on_tick(&mut self) {
        let now = self.host.now_secs();
        if self.index_call.is_none() && now >= self.next_index_check {
            self.next_index_check = now + index::RECHECK_SECS;
            self.dispatch_index_call(IndexCall::Check);
        }
    }

    pub fn on_queue_ready(&mut self) {
        while let Some(raw) = self.host.dequeue_store() {
            let Some(job) = StoreJob::decode(&raw) else {
                self.host.count(Metric::StoreError);
                continue;
            };
            match self.host.dispatch_redis(&job.cluster, &job.pipeline, u64::from(job.timeout_ms)) {
                Ok(token) => self.stores.push((token, usize::from(job.preamble))),
                Err(e) => {
                    self.host.count(Metric::StoreError);
                    self.host.log(Level::Warn, &format!("store dispatch to cluster `{}` failed: {e}", job.cluster));
                }
            }
        }
    }
}
