//! HTTP context: turns Envoy callbacks into `Flow` calls and runs the commands it returns.

use std::rc::Rc;
use std::time::SystemTime;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType};

use crate::core::embed::provider::EmbedError;
use crate::core::flow::{bypass_headers, conn_of, Command, Flow, Level, RequestMeta};
use crate::core::index::IndexHealth;
use crate::core::resp;
use crate::core::metrics::{Metric, Timing};
use crate::core::store_job::StoreJob;
use crate::host::calls;
use crate::host::local;
use crate::host::root::Shared;

#[derive(Clone, Copy, PartialEq)]
enum Call {
    Redis,
    Embed,
}

pub struct Stream {
    shared: Rc<Shared>,
    flow: Option<Flow>,
    /// The one callout in flight, if any.
    pending: Option<(u32, Call, SystemTime)>,
    path: String,
    lookup_started: Option<SystemTime>,
}

/// What the callback that ran the commands must return to Envoy.
enum Next {
    /// Keep the request paused (waiting for a callout, or answered locally).
    Wait,
    /// Let the request continue.
    Go,
}

impl Stream {
    pub fn new(shared: Rc<Shared>) -> Self {
        let flow = shared.policy.as_ref().ok().map(|p| Flow::new(p.clone()));
        Stream { shared, flow, pending: None, path: String::new(), lookup_started: None }
    }

    fn run(&mut self, cmds: Vec<Command>) -> Next {
        let mut next = Next::Go;
        let mut queue: std::collections::VecDeque<Command> = cmds.into();
        while let Some(cmd) = queue.pop_front() {
            match cmd {
                Command::Count(m) => self.shared.count(m),
                Command::Log(level, msg) => calls::log(level, &msg),
                Command::Resume => {
                    self.finish_lookup();
                    next = Next::Go;
                }
                Command::Respond { status, headers, body } => {
                    self.finish_lookup();
                    if let Err(e) = calls::send_response(status, &headers, &body) {
                        calls::log(Level::Warn, &format!("local reply failed: {e:?}"));
                    }
                    next = Next::Wait;
                }
                Command::Redis(pipeline) => {
                    let more = self.dispatch_redis(&pipeline);
                    next = if more.is_empty() { Next::Wait } else { Next::Go };
                    queue.extend(more);
                }
                Command::Embed(c) => {
                    match calls::dispatch(&c.cluster, &c.authority, &c.path, &c.headers, &c.body, c.timeout_ms) {
                        Ok(token) => {
                            self.pending = Some((token, Call::Embed, calls::now()));
                            next = Next::Wait;
                        }
                        Err(e) => {
                            let flow_cmds = self.flow_mut(|f| {
                                f.on_embedding(Err(EmbedError::Call(format!("dispatch to cluster `{}` failed: {e:?}", c.cluster))))
                            });
                            queue.extend(flow_cmds);
                        }
                    }
                }
                Command::EmbedLocal(text) => {
                    let t0 = calls::now();
                    let result = match &self.shared.policy {
                        Ok(p) => local::embed(&text, p.embedding.max_tokens, p.embedding.dimensions),
                        Err(e) => Err(e.clone()),
                    }
                    .map_err(EmbedError::Call);
                    self.shared.time(Timing::EmbedMicros, calls::micros_since(t0));
                    queue.extend(self.flow_mut(|f| f.on_embedding(result)));
                }
                Command::Store(pipeline) => self.enqueue_store(pipeline),
            }
        }
        next
    }

    /// Dispatches a Redis pipeline; on a dispatch failure returns the flow's fallback commands.
    fn dispatch_redis(&mut self, pipeline: &[u8]) -> Vec<Command> {
        let Ok(policy) = &self.shared.policy else { return vec![Command::Resume] };
        let vs = &policy.vector_store;
        match calls::dispatch_redis(&vs.cluster, pipeline, vs.timeout_ms) {
            Ok(token) => {
                self.pending = Some((token, Call::Redis, calls::now()));
                Vec::new()
            }
            Err(e) => {
                calls::log(Level::Warn, &format!("redis dispatch to cluster `{}` failed: {e:?}", vs.cluster));
                self.flow_mut(|f| f.on_redis_reply(None, 0))
            }
        }
    }

    fn enqueue_store(&mut self, pipeline: Vec<u8>) {
        let (Ok(policy), Some(queue)) = (&self.shared.policy, self.shared.store_queue) else {
            self.shared.count(Metric::StoreError);
            return;
        };
        let vs = &policy.vector_store;
        let preamble = u8::try_from(resp::preamble_len(&conn_of(policy))).unwrap_or(0);
        let job = StoreJob { cluster: vs.cluster.clone(), timeout_ms: vs.timeout_ms as u32, preamble, pipeline };
        if let Err(e) = calls::enqueue(queue, &job.encode()) {
            self.shared.count(Metric::StoreError);
            calls::log(Level::Warn, &format!("store enqueue failed: {e:?}"));
        }
    }

    fn flow_mut(&mut self, f: impl FnOnce(&mut Flow) -> Vec<Command>) -> Vec<Command> {
        self.flow.as_mut().map(f).unwrap_or_default()
    }

    fn finish_lookup(&mut self) {
        if let Some(t0) = self.lookup_started.take() {
            self.shared.time(Timing::LookupMicros, calls::micros_since(t0));
        }
    }

    fn on_full_body(&mut self, size: usize) -> Action {
        let body = calls::buffer(BufferType::HttpRequestBody, size);
        if body.len() > self.flow.as_ref().map_or(0, Flow::max_request_body) {
            let cmds = self.flow_mut(Flow::on_body_too_large);
            self.run(cmds);
            return Action::Continue;
        }
        self.lookup_started = Some(calls::now());
        let path = std::mem::take(&mut self.path);
        let cmds = self.flow_mut(|f| f.on_request_body(&body, &path));
        match self.run(cmds) {
            Next::Go => Action::Continue,
            Next::Wait => Action::Pause,
        }
    }
}

impl Context for Stream {
    fn on_http_call_response(&mut self, token: u32, num_headers: usize, body_size: usize, _trailers: usize) {
        let Some((expected, kind, t0)) = self.pending.take() else { return };
        if expected != token {
            return;
        }
        let response = calls::call_response(num_headers, body_size);
        let cmds = match kind {
            Call::Redis => {
                let body = response.as_ref().map(|(_, b)| b.as_slice());
                let now = calls::now_secs();
                self.flow_mut(|f| f.on_redis_reply(body, now))
            }
            Call::Embed => {
                self.shared.time(Timing::EmbedMicros, calls::micros_since(t0));
                self.flow_mut(|f| f.on_embed_reply(response.as_ref().map(|(s, b)| (*s, b.as_slice()))))
            }
        };
        if let Next::Go = self.run(cmds) {
            calls::resume_request();
        }
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        let Some(flow) = self.flow.as_mut() else {
            self.shared.count(Metric::Requests);
            self.shared.count(Metric::Bypass);
            return Action::Continue;
        };
        let method = calls::request_header(":method").unwrap_or_default();
        let path = calls::request_header(":path").unwrap_or_default();
        // Envoy 1.40 exposes the route name as `xds.route_name`; older builds as `route_name`.
        let route = calls::property_string(vec!["xds", "route_name"])
            .or_else(|| calls::property_string(vec!["route_name"]))
            .filter(|r| !r.is_empty());
        let header = |name: &str| calls::request_header(name);
        let index_mismatch = matches!(self.shared.index.get(), IndexHealth::Mismatch { .. });
        let meta =
            RequestMeta { method: &method, path: &path, route_name: route.as_deref(), end_of_stream, index_mismatch, header: &header };
        let (buffer, cmds) = flow.on_request_headers(&meta);
        self.path = path;
        self.run(cmds);
        if buffer {
            // The response is captured on a miss: ask for it uncompressed.
            calls::remove_request_header("accept-encoding");
            Action::Pause
        } else {
            Action::Continue
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !self.flow.as_ref().is_some_and(Flow::is_buffering) {
            return Action::Continue;
        }
        if !end_of_stream {
            if body_size > self.flow.as_ref().map_or(0, Flow::max_request_body) {
                let cmds = self.flow_mut(Flow::on_body_too_large);
                self.run(cmds);
                return Action::Continue;
            }
            return Action::Pause;
        }
        self.on_full_body(body_size)
    }

    fn on_http_request_trailers(&mut self, _n: usize) -> Action {
        // Over HTTP/2 a request with trailers may never deliver end_of_stream to the body callback.
        if !self.flow.as_ref().is_some_and(Flow::is_buffering) {
            return Action::Continue;
        }
        let max = self.flow.as_ref().map_or(0, Flow::max_request_body);
        self.on_full_body(max + 1)
    }

    fn on_http_response_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        let Some(flow) = self.flow.as_mut() else {
            for (k, v) in bypass_headers("policy-invalid") {
                calls::set_response_header(&k, &v);
            }
            return Action::Continue;
        };
        let status = calls::response_header(":status").and_then(|s| s.parse().ok()).unwrap_or(0);
        let ctype = calls::response_header("content-type").unwrap_or_default();
        let (headers, cmds) = flow.on_response_headers(status, &ctype);
        for (k, v) in headers {
            calls::set_response_header(&k, &v);
        }
        self.run(cmds);
        if end_of_stream {
            let now = calls::now_secs();
            let cmds = self.flow_mut(|f| f.on_response_body(&[], true, now));
            self.run(cmds);
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !self.flow.as_ref().is_some_and(Flow::is_capturing) {
            return Action::Continue;
        }
        // Each chunk passes on at once; we only copy it (body_size is this chunk when we Continue).
        let chunk = calls::buffer(BufferType::HttpResponseBody, body_size);
        let now = calls::now_secs();
        let cmds = self.flow_mut(|f| f.on_response_body(&chunk, end_of_stream, now));
        self.run(cmds);
        Action::Continue
    }

    fn on_log(&mut self) {
        self.flow_mut(|f| {
            f.on_done();
            Vec::new()
        });
    }
}
