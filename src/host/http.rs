//! HTTP context logic: turns the host's callbacks into `Flow` calls and runs the commands it
//! returns. Generic over `Host`; the proxy-wasm wrapper lives in `host::proxy`.

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::SystemTime;

use crate::core::bypass::BypassReason;
use crate::core::embed::provider::EmbedError;
use crate::core::facts;
use crate::core::flow::{Command, Flow, Next, RequestMeta, Step};
use crate::core::headers::bypass_headers;
use crate::core::log::Level;
use crate::core::metrics::{Metric, Timing};
use crate::core::redis::index::IndexHealth;
use crate::core::redis::resp;
use crate::core::redis::store::conn_of;
use crate::core::redis::store_job::StoreJob;
use crate::host::calls::{Action, Buffer, Host, HttpCall};
use crate::host::local;
use crate::host::shared::Shared;

/// What a callout in flight will answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Redis,
    Embed,
}

/// A callout in flight.
struct InFlight {
    token: u32,
    kind: CallKind,
    started: SystemTime,
}

pub struct Stream<H: Host> {
    host: Rc<H>,
    shared: Rc<Shared>,
    /// `None` when the policy is invalid: everything passes with BYPASS.
    flow: Option<Flow>,
    /// Callouts in flight (today at most one; a list so lookups may run side by side).
    calls: Vec<InFlight>,
    path: String,
    lookup_started: Option<SystemTime>,
    /// When a miss went upstream (for `origin_us` and the entry's stored origin latency).
    origin_started: Option<SystemTime>,
}

impl<H: Host> Stream<H> {
    pub fn new(host: Rc<H>, shared: Rc<Shared>) -> Self {
        let flow = shared.policy.as_ref().ok().map(|p| Flow::new(p.clone()));
        Stream {
            host,
            shared,
            flow,
            calls: Vec::new(),
            path: String::new(),
            lookup_started: None,
            origin_started: None,
        }
    }

    /// Runs a step's commands (and the steps they lead to, e.g. a failed dispatch) and says
    /// whether the request then continues or waits.
    fn run(&mut self, step: Step) -> Next {
        let Step { cmds, mut next } = step;
        let mut queue: VecDeque<Command> = cmds.into();
        while let Some(cmd) = queue.pop_front() {
            if let Some(follow) = self.exec(cmd) {
                next = follow.next;
                queue.extend(follow.cmds);
            }
        }
        if next == Next::Continue {
            self.finish_lookup();
            if self.origin_started.is_none() && self.flow.as_ref().is_some_and(|f| f.status() == "MISS") {
                self.origin_started = Some(self.host.now());
            }
        }
        next
    }

    /// The response ended: a miss's origin latency goes to `origin_us` and to the flow (stored
    /// with the entry).
    fn finish_origin(&mut self) {
        if let Some(t0) = self.origin_started.take() {
            let micros = self.host.micros_since(t0);
            self.host.time(Timing::OriginMicros, micros);
            if let Some(f) = self.flow.as_mut() {
                f.set_origin_ms(micros / 1000);
            }
        }
    }

    /// Runs one command; returns the flow's next step when the command answered at once.
    fn exec(&mut self, cmd: Command) -> Option<Step> {
        match cmd {
            Command::Count(m) => self.host.count(m),
            Command::CountBy(m, n) => self.host.count_by(m, n),
            Command::Fact(name, value) => self.host.set_fact(name, &value),
            Command::Log(level, msg) => self.host.log(level, &msg),
            Command::ResponseHeader(name, value) => self.host.set_response_header(&name, &value),
            Command::Respond { status, headers, body } => {
                self.finish_lookup();
                if let Err(e) = self.host.send_response(status, &headers, &body) {
                    self.host.log(Level::Warn, &format!("local reply failed: {e}"));
                }
            }
            Command::Redis(pipeline) => return self.dispatch_redis(&pipeline),
            Command::Embed(c) => {
                let call = HttpCall {
                    cluster: &c.cluster,
                    authority: &c.authority,
                    path: &c.path,
                    headers: &c.headers,
                    body: &c.body,
                    timeout_ms: c.timeout_ms,
                };
                match self.host.dispatch(&call) {
                    Ok(token) => self.track(token, CallKind::Embed),
                    Err(e) => {
                        let err = EmbedError::Call(format!("dispatch to cluster `{}` failed: {e}", c.cluster));
                        return Some(self.flow_step(|f| f.on_embedding(Err(err))));
                    }
                }
            }
            Command::EmbedLocal(text) => {
                let t0 = self.host.now();
                let result = match &self.shared.policy {
                    Ok(p) => local::embed(&text, p.embedding.max_tokens, p.embedding.dimensions),
                    Err(e) => Err(e.clone()),
                }
                .map_err(EmbedError::Call);
                self.host.time(Timing::EmbedMicros, self.host.micros_since(t0));
                return Some(self.flow_step(|f| f.on_embedding(result)));
            }
            Command::Store(pipeline) => self.enqueue_store(pipeline),
        }
        None
    }

    fn track(&mut self, token: u32, kind: CallKind) {
        self.calls.push(InFlight { token, kind, started: self.host.now() });
    }

    /// Dispatches a Redis pipeline; on a dispatch failure returns the flow's fallback step.
    fn dispatch_redis(&mut self, pipeline: &[u8]) -> Option<Step> {
        let Ok(policy) = &self.shared.policy else { return Some(Step::go(Vec::new())) };
        let vs = &policy.vector_store;
        match self.host.dispatch_redis(&vs.cluster, pipeline, vs.timeout_ms) {
            Ok(token) => {
                self.track(token, CallKind::Redis);
                None
            }
            Err(e) => {
                self.host.log(Level::Warn, &format!("redis dispatch to cluster `{}` failed: {e}", vs.cluster));
                Some(self.flow_step(|f| f.on_redis_reply(None, 0)))
            }
        }
    }

    fn enqueue_store(&mut self, pipeline: Vec<u8>) {
        let (Ok(policy), true) = (&self.shared.policy, self.shared.store_queue) else {
            self.host.count(Metric::StoreError);
            return;
        };
        let vs = &policy.vector_store;
        let preamble = u8::try_from(resp::preamble_len(&conn_of(policy))).unwrap_or(0);
        let timeout_ms = u32::try_from(vs.timeout_ms).unwrap_or(u32::MAX);
        let job = StoreJob { cluster: vs.cluster.clone(), timeout_ms, preamble, pipeline };
        if let Err(e) = self.host.enqueue_store(&job.encode()) {
            self.host.count(Metric::StoreError);
            self.host.log(Level::Warn, &format!("store enqueue failed: {e}"));
        }
    }

    fn flow_step(&mut self, f: impl FnOnce(&mut Flow) -> Step) -> Step {
        self.flow.as_mut().map_or_else(|| Step::go(Vec::new()), f)
    }

    fn finish_lookup(&mut self) {
        if let Some(t0) = self.lookup_started.take() {
            self.host.time(Timing::LookupMicros, self.host.micros_since(t0));
        }
    }

    fn is_buffering(&self) -> bool {
        self.flow.as_ref().is_some_and(Flow::is_buffering)
    }

    fn max_request_body(&self) -> usize {
        self.flow.as_ref().map_or(0, Flow::max_request_body)
    }

    fn action(next: Next) -> Action {
        match next {
            Next::Continue => Action::Continue,
            Next::Wait => Action::Pause,
        }
    }

    fn on_full_body(&mut self, size: usize) -> Action {
        let body = self.host.buffer(Buffer::RequestBody, size);
        if body.len() > self.max_request_body() {
            let step = self.flow_step(Flow::on_body_too_large);
            self.run(step);
            return Action::Continue;
        }
        if !self.flow.as_ref().is_some_and(Flow::is_purge) {
            self.lookup_started = Some(self.host.now());
        }
        let path = std::mem::take(&mut self.path);
        let step = self.flow_step(|f| f.on_request_body(&body, &path));
        let next = self.run(step);
        Self::action(next)
    }

    /// The answer of a callout. A token we do not know (e.g. a late answer of a call we gave up
    /// on) is ignored and leaves the calls in flight as they are.
    pub fn on_call_response(&mut self, token: u32, num_headers: usize, body_size: usize) {
        let Some(pos) = self.calls.iter().position(|c| c.token == token) else {
            self.host.log(Level::Debug, &format!("ignoring the answer of unknown callout {token}"));
            return;
        };
        let call = self.calls.swap_remove(pos);
        let response = self.host.call_response(num_headers, body_size);
        let step = match call.kind {
            CallKind::Redis => {
                let body = response.as_ref().map(|(_, b)| b.as_slice());
                let now = self.host.now_secs();
                self.flow_step(|f| f.on_redis_reply(body, now))
            }
            CallKind::Embed => {
                self.host.time(Timing::EmbedMicros, self.host.micros_since(call.started));
                self.flow_step(|f| f.on_embed_reply(response.as_ref().map(|(s, b)| (*s, b.as_slice()))))
            }
        };
        if self.run(step) == Next::Continue {
            self.host.resume_request();
        }
    }

    pub fn on_request_headers(&mut self, end_of_stream: bool) -> Action {
        let Some(flow) = self.flow.as_mut() else {
            self.host.count(Metric::Requests);
            self.host.count(Metric::Bypass);
            self.host.count(Metric::Bypassed(BypassReason::PolicyInvalid));
            self.host.set_fact(facts::STATUS, "BYPASS");
            self.host.set_fact(facts::BYPASS_REASON, BypassReason::PolicyInvalid.code());
            return Action::Continue;
        };
        let host = &self.host;
        let method = host.request_header(":method").unwrap_or_default();
        let path = host.request_header(":path").unwrap_or_default();
        // Envoy 1.40 exposes the route name as `xds.route_name`; older builds as `route_name`.
        let route =
            host.property(&["xds", "route_name"]).or_else(|| host.property(&["route_name"])).filter(|r| !r.is_empty());
        // The route's upstream cluster names the provider (`xds.cluster_name` in Envoy 1.40).
        let cluster = host
            .property(&["xds", "cluster_name"])
            .or_else(|| host.property(&["cluster_name"]))
            .filter(|c| !c.is_empty());
        let header = |name: &str| host.request_header(name);
        let index_mismatch = matches!(self.shared.index.get(), IndexHealth::Mismatch { .. });
        let meta = RequestMeta {
            method: &method,
            path: &path,
            route_name: route.as_deref(),
            cluster: cluster.as_deref(),
            end_of_stream,
            index_mismatch,
            header: &header,
        };
        let step = flow.on_request_headers(&meta);
        self.path = path;
        let next = self.run(step);
        if next == Next::Wait {
            // The response is captured on a miss: ask for it uncompressed.
            self.host.remove_request_header("accept-encoding");
        }
        Self::action(next)
    }

    pub fn on_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !self.is_buffering() {
            return Action::Continue;
        }
        if !end_of_stream {
            if body_size > self.max_request_body() {
                let step = self.flow_step(Flow::on_body_too_large);
                self.run(step);
                return Action::Continue;
            }
            return Action::Pause;
        }
        self.on_full_body(body_size)
    }

    pub fn on_request_trailers(&mut self) -> Action {
        // Over HTTP/2 a request with trailers may never deliver end_of_stream to the body callback.
        if !self.is_buffering() {
            return Action::Continue;
        }
        self.on_full_body(self.max_request_body() + 1)
    }

    pub fn on_response_headers(&mut self, end_of_stream: bool) -> Action {
        let Some(flow) = self.flow.as_mut() else {
            for (k, v) in bypass_headers(BypassReason::PolicyInvalid) {
                self.host.set_response_header(&k, &v);
            }
            return Action::Continue;
        };
        let status = self.host.response_header(":status").and_then(|s| s.parse().ok()).unwrap_or(0);
        let ctype = self.host.response_header("content-type").unwrap_or_default();
        let step = flow.on_response_headers(status, &ctype);
        self.run(step);
        if end_of_stream {
            self.finish_origin();
            let now = self.host.now_secs();
            let step = self.flow_step(|f| f.on_response_body(&[], true, now));
            self.run(step);
        }
        Action::Continue
    }

    pub fn on_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if end_of_stream {
            self.finish_origin();
        }
        if !self.flow.as_ref().is_some_and(Flow::is_capturing) {
            return Action::Continue;
        }
        // Each chunk passes on at once; we only copy it (body_size is this chunk when we Continue).
        let chunk = self.host.buffer(Buffer::ResponseBody, body_size);
        let now = self.host.now_secs();
        let step = self.flow_step(|f| f.on_response_body(&chunk, end_of_stream, now));
        self.run(step);
        Action::Continue
    }

    pub fn on_log(&mut self) {
        // A lookup cut short by the client is not a lookup time worth reporting.
        self.lookup_started = None;
        let now = self.host.now_secs();
        let step = self.flow_step(|f| f.on_done(now));
        self.run(step);
    }
}
