//! The per-request state machine. It makes no host calls: every callback becomes a method call
//! that returns a `Step`: the commands for the host layer to run and whether the request then
//! continues or waits.
//!
//! `Start -> Buffering -> ExactLookup -> Embedding -> Searching -> Answered | Miss -> Capturing`;
//! every failure leads to `Bypass` (the request goes upstream with `x-cache-status: BYPASS`: fail
//! open), a counter and a log line. Each state carries the data it needs, so nothing is kept beside it.

use std::rc::Rc;

use crate::core::api::{self, ApiShape};
use crate::core::bypass::BypassReason;
use crate::core::capture::{Capture, StoreRules};
use crate::core::compat;
use crate::core::decision::{decide, read_headers, Directives};
use crate::core::embed::provider::{self, EmbedCall, EmbedError};
use crate::core::facts;
use crate::core::headers::{bypass_headers, DISTANCE_HEADER, MATCH_HEADER, REFUSED_HEADER, STATUS_HEADER};
use crate::core::key::{entry_key, partition_tag, provider_id, tenant_credential, PartitionInputs};
use crate::core::log::Level;
use crate::core::metrics::Metric;
use crate::core::policy::{Policy, Provider, Settings};
use crate::core::purge::{self, Phase, Purge, Selectors};
use crate::core::redis::resp::{self, RedisConn};
use crate::core::redis::store::conn_of;
use crate::core::request::ChatRequest;
use crate::core::savings::{self, Savings};
use crate::core::verify::{canonical, Query, Refusal, Strictness};

const ENTRY_FIELDS: [&str; 7] =
    ["body", "ctype", "created", "model", savings::FIELDS[0], savings::FIELDS[1], savings::FIELDS[2]];

#[derive(Debug, PartialEq)]
pub enum Command {
    /// POST this RESP pipeline to the vector-store cluster; answer with `on_redis_reply`.
    Redis(Vec<u8>),
    /// Call the remote embedding provider; answer with `on_embed_reply`.
    Embed(EmbedCallout),
    /// Compute the embedding in the filter; answer with `on_embedding`.
    EmbedLocal(String),
    /// Answer the client now (a hit).
    Respond {
        status: u32,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Add this header to the response on its way to the client.
    ResponseHeader(String, String),
    /// Enqueue this RESP pipeline to be written by the root context (survives the stream).
    Store(Vec<u8>),
    Count(Metric),
    /// Add this much to a counter (tokens, milliseconds).
    CountBy(Metric, u64),
    /// A per-request fact for access logs (core/facts.rs).
    Fact(&'static str, String),
    Log(Level, String),
}

/// After a step's commands ran: does the request go on (upstream), or wait (for a callout's
/// answer, or because it was answered locally)?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Continue,
    Wait,
}

/// What every handler returns.
#[derive(Debug, PartialEq)]
pub struct Step {
    pub cmds: Vec<Command>,
    pub next: Next,
}

impl Step {
    pub fn go(cmds: Vec<Command>) -> Step {
        Step { cmds, next: Next::Continue }
    }

    pub fn wait(cmds: Vec<Command>) -> Step {
        Step { cmds, next: Next::Wait }
    }
}

#[derive(Debug, PartialEq)]
pub struct EmbedCallout {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout_ms: u64,
}

/// What the host knows about the request when its headers arrive.
pub struct RequestMeta<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub route_name: Option<&'a str>,
    /// The cluster the matched route sends to (the provider), when the host knows it.
    pub cluster: Option<&'a str>,
    pub end_of_stream: bool,
    /// The root context found the index with another DIM than the policy's.
    pub index_mismatch: bool,
    /// Looks up a request header by lowercase name.
    pub header: &'a dyn Fn(&str) -> Option<String>,
}

enum State {
    /// Headers not seen yet.
    Start,
    /// Waiting for the whole request body.
    Buffering(Inspected),
    /// Exact-match `HMGET` in flight.
    ExactLookup(Pending),
    /// Embedding (callout or local) in flight.
    Embedding(Pending),
    /// Remote provider: the exact lookup and the embedding callout in flight side by side.
    Racing(Box<Racing>),
    /// KNN search in flight.
    Searching(Search),
    /// Answered from the cache; the local reply's response callbacks must not store again.
    Answered,
    /// Forwarded upstream on a miss; waiting for the response headers.
    Miss(Search),
    /// A miss whose response is being captured for the store.
    Capturing(Box<Capturing>),
    /// A miss with nothing (more) to store.
    MissDone,
    Bypass(BypassReason),
    /// An authorised purge request: waiting for its body.
    PurgeBody,
    /// A purge round in flight.
    Purging(Box<Purge>),
    /// Answered locally by the purge endpoint (or its refusal).
    Admin,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Start => "start",
            State::Buffering(_) => "buffering",
            State::ExactLookup(_) => "exact-lookup",
            State::Embedding(_) => "embedding",
            State::Racing(_) => "racing",
            State::Searching(_) => "searching",
            State::Answered => "answered",
            State::Miss(_) => "miss",
            State::Capturing(_) => "capturing",
            State::MissDone => "miss-done",
            State::Bypass(_) => "bypass",
            State::PurgeBody => "purge-body",
            State::Purging(_) => "purging",
            State::Admin => "admin",
        }
    }
}

/// Known after the request headers.
struct Inspected {
    settings: Settings,
    directives: Directives,
    tenant: Option<String>,
    route: Option<String>,
    provider: Option<String>,
}

/// Known after the request body.
struct Pending {
    settings: Settings,
    directives: Directives,
    chat: ChatRequest,
    tag: String,
    key: String,
    /// The purge selectors written with the entry.
    sel: Selectors,
}

/// A request with its embedding.
struct Search {
    req: Pending,
    vector: Vec<f32>,
    /// Set on a miss whose candidates within the threshold were all refused by the verifier
    /// (the nearest one's reason), for the `x-cache-refused` response header.
    refused: Option<Refusal>,
}

/// The exact lookup and the embedding callout, both in flight; each slot fills when its reply
/// arrives (the exact one with `false`: it missed; a hit answers at once).
struct Racing {
    req: Pending,
    exact_missed: bool,
    embedding: Option<Result<Vec<f32>, EmbedError>>,
}

struct Capturing {
    search: Search,
    capture: Capture,
    status: u16,
    content_type: String,
}

pub struct Flow {
    policy: Rc<Policy>,
    state: State,
    /// The miss's origin latency, set by the host when the response ends (before the store).
    origin_ms: u64,
}

impl Flow {
    pub fn new(policy: Rc<Policy>) -> Self {
        Flow { policy, state: State::Start, origin_ms: 0 }
    }

    pub fn is_buffering(&self) -> bool {
        matches!(self.state, State::Buffering(_) | State::PurgeBody)
    }

    /// A purge request (not a lookup: no lookup timing).
    pub fn is_purge(&self) -> bool {
        matches!(self.state, State::PurgeBody | State::Purging(_) | State::Admin)
    }

    /// From the request going upstream (a miss) to the end of the response; stored with the entry.
    pub fn set_origin_ms(&mut self, ms: u64) {
        self.origin_ms = ms;
    }

    /// Whether response body chunks are wanted (a miss whose answer may be stored).
    pub fn is_capturing(&self) -> bool {
        matches!(self.state, State::Capturing(_))
    }

    pub fn status(&self) -> &'static str {
        match self.state {
            State::Answered => "HIT",
            State::Miss(_) | State::Capturing(_) | State::MissDone => "MISS",
            _ => "BYPASS",
        }
    }

    pub fn bypass_reason(&self) -> Option<BypassReason> {
        match self.state {
            State::Bypass(r) => Some(r),
            _ => None,
        }
    }

    /// Request headers. Waits when the body must be buffered, continues when the request
    /// bypasses the cache.
    pub fn on_request_headers(&mut self, m: &RequestMeta) -> Step {
        if let Some(key) = &self.policy.purge.key {
            if m.path.split('?').next() == Some(self.policy.purge.path.as_str()) {
                let turn = purge::on_headers(&self.policy, m, key);
                return self.purge_turn(turn);
            }
        }
        let cmds = vec![Command::Count(Metric::Requests)];
        let (settings, rule) = self.policy.settings_for(m.method, m.path, m.route_name);
        let reason = if !m.method.eq_ignore_ascii_case("POST") {
            Some(BypassReason::Method)
        } else if rule.is_none() && ApiShape::detect(m.path).is_none() {
            Some(BypassReason::Path)
        } else if m.end_of_stream {
            Some(BypassReason::NoBody)
        } else if m.index_mismatch {
            Some(BypassReason::DimensionMismatch)
        } else if (m.header)("content-length")
            .and_then(|l| l.trim().parse::<usize>().ok())
            .is_some_and(|l| l > self.policy.max_request_body_bytes)
        {
            Some(BypassReason::BodyTooLarge)
        } else {
            None
        };
        if let Some(r) = reason {
            return self.bypass(r, cmds);
        }
        let directives = match decide(settings, &read_headers(&self.policy, m.header)) {
            Ok(d) => d,
            Err(r) => return self.bypass(r, cmds),
        };
        let tenant = tenant_credential(&settings.partition, m.header, m.path);
        let provider =
            settings.partition.provider.then(|| provider_id(m.cluster, (m.header)(":authority").as_deref())).flatten();
        let route = settings.partition.route.then(|| match rule {
            Some(name) => format!("rule:{name}"),
            None => format!("route:{}", m.route_name.unwrap_or("")),
        });
        self.state = State::Buffering(Inspected { settings: settings.clone(), directives, tenant, route, provider });
        Step::wait(cmds)
    }

    /// Max bytes the host may buffer; past it the host calls `on_body_too_large`.
    pub fn max_request_body(&self) -> usize {
        self.policy.max_request_body_bytes
    }

    pub fn on_body_too_large(&mut self) -> Step {
        match std::mem::replace(&mut self.state, State::Start) {
            State::Buffering(_) => self.bypass(BypassReason::BodyTooLarge, Vec::new()),
            // A purge request is never forwarded, not even a malformed one.
            State::PurgeBody => self.purge_turn(purge::answer(413, "purge body too large")),
            other => self.ignore(other, "body too large"),
        }
    }

    /// The complete request body.
    pub fn on_request_body(&mut self, body: &[u8], path: &str) -> Step {
        let i = match std::mem::replace(&mut self.state, State::Start) {
            State::Buffering(i) => i,
            State::PurgeBody => {
                let turn = purge::on_body(&self.policy, body);
                return self.purge_turn(turn);
            }
            other => return self.ignore(other, "request body"),
        };
        // A path a policy rule matched but no API shape knows is read as chat completions.
        let shape = ApiShape::detect(path).unwrap_or_default();
        let (last_n, window) = (i.settings.embed.last_user_messages, i.settings.partition.context_window);
        let chat = match api::parse_request(shape, body, path, last_n, window) {
            Ok(c) => c,
            Err(e) => return self.bypass(e.reason(), Vec::new()),
        };
        let tag = partition_tag(&PartitionInputs {
            model: &chat.model,
            tenant: i.tenant.as_deref(),
            route: i.route.as_deref(),
            provider: i.provider.as_deref(),
            user_key: &i.directives.user_key,
            context: &chat.context,
            custom_key: i.directives.exact_key.as_deref(),
        });
        // The exact tier keys on the canonical form, so near-repeats (case, punctuation, quotes,
        // contractions) are answered without an embedding; see verify/canon.rs.
        // With a custom key the partition holds one entry: the key's, whatever the prompt.
        let text = if i.directives.exact_key.is_some() { String::new() } else { canonical(&chat.embed_text) };
        let key = entry_key(&self.policy.vector_store.prefix, &tag, &text);
        let sel = Selectors::of_entry(i.tenant.as_deref(), &i.directives.user_key, &chat.model, &text);
        let req = Pending { settings: i.settings, directives: i.directives, chat, tag, key, sel };
        if !req.directives.lookup {
            // `no-cache`: no lookup, but the answer is stored (with its vector, unless custom-keyed).
            return self.after_exact_miss(req);
        }
        let exact = self.pipeline(&[resp::hmget(&req.key, &ENTRY_FIELDS)]);
        match self.policy.embedding.provider {
            // A custom key or an exact-only shape is looked up by the key alone: no embedding, no
            // semantic search.
            _ if req.directives.exact_key.is_some() || req.chat.shape.exact_only() => {
                self.state = State::ExactLookup(req);
                Step::wait(vec![Command::Redis(exact)])
            }
            // The in-filter embedder runs only when the exact tier missed: a miss then costs
            // exact + KNN, which for the static table (microseconds) is max(exact, embed) + KNN,
            // and an exact hit costs one HMGET (putting the KNN in the same pipeline made exact
            // hits pay for it: 32% of plain Envoy's rps at c=16 instead of 85%, bench/load).
            // A remote embedder does the same when the policy says so (no embedding spend on
            // exact hits).
            p if p == Provider::Local || !self.policy.embedding.parallel => {
                self.state = State::ExactLookup(req);
                Step::wait(vec![Command::Redis(exact)])
            }
            // A miss costs max(exact, embedding) + KNN, not their sum. The embedding goes first:
            // if its dispatch fails the result waits in `Racing`, while a failed exact dispatch
            // ends the lookup, and nothing should be sent after that.
            _ => {
                let embed = self.embed_command(&req);
                self.state = State::Racing(Box::new(Racing { req, exact_missed: false, embedding: None }));
                Step::wait(vec![embed, Command::Redis(exact)])
            }
        }
    }

    /// The exact tier missed (or was not asked): embed, or with a custom key go upstream and store
    /// the answer without a vector (it is only ever found by its key).
    fn after_exact_miss(&mut self, req: Pending) -> Step {
        // A custom key or an exact-only shape (embeddings) never searches: no vector is computed or stored.
        if req.directives.exact_key.is_some() || req.chat.shape.exact_only() {
            return self.miss(Search { req, vector: Vec::new(), refused: None });
        }
        self.start_embedding(req)
    }

    fn start_embedding(&mut self, req: Pending) -> Step {
        let cmd = self.embed_command(&req);
        self.state = State::Embedding(req);
        Step::wait(vec![cmd])
    }

    fn embed_command(&self, req: &Pending) -> Command {
        let e = &self.policy.embedding;
        if e.provider == Provider::Local {
            Command::EmbedLocal(req.chat.embed_text.clone())
        } else {
            let EmbedCall { headers, body } = provider::build_request(e, &req.chat.embed_text);
            Command::Embed(EmbedCallout {
                cluster: e.cluster.clone(),
                authority: e.authority.clone(),
                path: e.path.clone(),
                headers,
                body,
                timeout_ms: e.timeout_ms,
            })
        }
    }

    /// Reply of a remote embedding callout: `None` when the call failed (timeout, reset).
    pub fn on_embed_reply(&mut self, reply: Option<(u16, &[u8])>) -> Step {
        let result = match reply {
            None => Err(EmbedError::Call("no response (timeout or connection failure)".into())),
            Some((status, body)) => provider::parse_response(status, body, self.policy.embedding.dimensions),
        };
        self.on_embedding(result)
    }

    pub fn on_embedding(&mut self, result: Result<Vec<f32>, EmbedError>) -> Step {
        let req = match std::mem::replace(&mut self.state, State::Start) {
            State::Embedding(req) => req,
            // The exact reply is still due: keep the result until it arrives (it may be a hit).
            State::Racing(mut r) if !r.exact_missed => {
                r.embedding = Some(result);
                self.state = State::Racing(r);
                return Step::wait(Vec::new());
            }
            State::Racing(r) => r.req,
            other => return self.ignore(other, "embedding"),
        };
        self.embedded(req, result)
    }

    /// The embedding is known and the exact tier missed: search.
    fn embedded(&mut self, req: Pending, result: Result<Vec<f32>, EmbedError>) -> Step {
        let vector = match result {
            Ok(v) => v,
            Err(e) => {
                let reason = if matches!(e, EmbedError::Dimensions { .. }) {
                    BypassReason::DimensionMismatch
                } else {
                    BypassReason::EmbeddingError
                };
                let cmds = vec![
                    Command::Count(Metric::EmbeddingError),
                    Command::Log(
                        Level::Warn,
                        format!("embedding failed ({}): {e}", self.policy.embedding.provider.as_str()),
                    ),
                ];
                return self.bypass(reason, cmds);
            }
        };
        let search = Search { req, vector, refused: None };
        if !search.req.directives.lookup {
            return self.miss(search);
        }
        let vs = &self.policy.vector_store;
        let knn = resp::ft_search_knn(&vs.index, &search.req.tag, &search.vector, search.req.settings.top_k);
        let pipeline = self.pipeline(&[knn]);
        self.state = State::Searching(search);
        Step::wait(vec![Command::Redis(pipeline)])
    }

    /// Reply of a Redis callout: `None` when the call failed.
    pub fn on_redis_reply(&mut self, reply: Option<&[u8]>, now_secs: u64) -> Step {
        match std::mem::replace(&mut self.state, State::Start) {
            State::ExactLookup(req) => self.on_exact_reply(req, reply, now_secs),
            State::Racing(r) => self.on_racing_exact_reply(*r, reply, now_secs),
            State::Searching(search) => self.on_search_reply(search, reply, now_secs),
            State::Purging(p) => {
                let turn = purge::on_reply(&self.policy, *p, reply);
                self.purge_turn(turn)
            }
            other => self.ignore(other, "redis reply"),
        }
    }

    /// An event the current state does not expect (e.g. a callout answering after the response
    /// already started, or the embedding after an exact hit): the state stays. The request was not
    /// paused for this event, so there is nothing to resume (`Wait`): resuming a request that was
    /// answered locally or already continued is not ours to do.
    fn ignore(&mut self, state: State, event: &str) -> Step {
        let msg = format!("{event} ignored in state {}", state.name());
        self.state = state;
        Step::wait(vec![Command::Log(Level::Debug, msg)])
    }

    fn on_exact_reply(&mut self, req: Pending, reply: Option<&[u8]>, now: u64) -> Step {
        match self.exact_result(reply) {
            Ok(Some((body, created, saved))) => self.hit(&req, &body, created, None, saved, now),
            Ok(None) => self.after_exact_miss(req),
            Err(e) => self.redis_failed(&e),
        }
    }

    /// The exact reply while the embedding callout may still be in flight.
    fn on_racing_exact_reply(&mut self, mut r: Racing, reply: Option<&[u8]>, now: u64) -> Step {
        match self.exact_result(reply) {
            Ok(Some((body, created, saved))) => self.hit(&r.req, &body, created, None, saved, now),
            Ok(None) => match r.embedding.take() {
                Some(result) => self.embedded(r.req, result),
                None => {
                    r.exact_missed = true;
                    self.state = State::Racing(Box::new(r));
                    Step::wait(Vec::new())
                }
            },
            Err(e) => self.redis_failed(&e),
        }
    }

    /// The exact lookup's answer: the stored body, its creation time and savings, `None` on a miss.
    fn exact_result(&self, reply: Option<&[u8]>) -> Result<Option<(Vec<u8>, u64, Savings)>, String> {
        match resp::parse_hmget(&self.single_reply(reply)?) {
            Ok(Some(fields)) => exact_hit(fields).map(Some).ok_or_else(|| "exact entry lacks fields".to_string()),
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    fn on_search_reply(&mut self, mut search: Search, reply: Option<&[u8]>, now: u64) -> Step {
        let knn = match self.single_reply(reply) {
            Ok(r) => r,
            Err(e) => return self.redis_failed(&e),
        };
        match resp::parse_search_all(&knn) {
            Ok(hits) => {
                let req = &search.req;
                let (accepted, refusals) =
                    first_accepted(req.settings.verify, &req.chat.embed_text, req.directives.threshold, &hits);
                search.refused = refusals.first().copied();
                let mut step = match accepted {
                    Some(h) => {
                        let mut step = self.hit(&search.req, &h.body, h.created, Some(h.distance), h.savings, now);
                        // A nearer candidate was refused before this one answered: worth a log field.
                        if let Some(r) = search.refused {
                            step.cmds.insert(0, Command::Fact(facts::REFUSED, r.code().into()));
                        }
                        step
                    }
                    None => self.miss(search),
                };
                step.cmds.splice(0..0, refusals.into_iter().map(|r| Command::Count(Metric::Refused(r))));
                step
            }
            Err(resp::RespError::Server(msg)) if resp::is_missing_index(&msg) => self.miss(search),
            Err(resp::RespError::Server(msg)) if resp::is_dimension_mismatch(&msg) => {
                let cmds = vec![
                    Command::Count(Metric::RedisError),
                    Command::Log(
                        Level::Error,
                        format!(
                            "vector dimension mismatch: index `{}` was created with another DIM than embedding.dimensions={} ({msg}); drop the index or use another vectorStore.indexName",
                            self.policy.vector_store.index, self.policy.embedding.dimensions
                        ),
                    ),
                ];
                self.bypass(BypassReason::DimensionMismatch, cmds)
            }
            Err(e) => self.redis_failed(&e.to_string()),
        }
    }

    fn single_reply(&self, reply: Option<&[u8]>) -> Result<resp::Reply, String> {
        let bytes = reply.ok_or("no response (timeout or connection failure)")?;
        resp::single_reply(&self.conn(), bytes).map_err(|e| e.to_string())
    }

    fn redis_failed(&mut self, msg: &str) -> Step {
        let cmds =
            vec![Command::Count(Metric::RedisError), Command::Log(Level::Warn, format!("redis lookup failed: {msg}"))];
        self.bypass(BypassReason::RedisError, cmds)
    }

    fn hit(
        &mut self,
        req: &Pending,
        stored: &[u8],
        created: u64,
        distance: Option<f32>,
        saved: Savings,
        now: u64,
    ) -> Step {
        let (body, ctype) = match api::render(req.chat.shape, stored, req.chat.stream, req.chat.include_usage) {
            Ok(b) => b,
            // An entry we cannot render is treated like a Redis failure: go upstream.
            Err(e) => return self.redis_failed(&format!("stored entry unusable: {e}")),
        };
        let tier = if distance.is_some() { "semantic" } else { "exact" };
        let dist = format!("{:.4}", distance.unwrap_or(0.0).max(0.0));
        let mut headers = vec![
            ("content-type".to_string(), ctype.to_string()),
            (STATUS_HEADER.to_string(), "HIT".to_string()),
            (MATCH_HEADER.to_string(), tier.to_string()),
            (DISTANCE_HEADER.to_string(), dist.clone()),
            ("age".to_string(), now.saturating_sub(created).to_string()),
        ];
        headers.extend(compat::response_headers(self.policy.compat, "HIT"));
        if req.chat.stream {
            headers.push(("cache-control".to_string(), "no-cache".to_string()));
        }
        self.state = State::Answered;
        let mut cmds = vec![
            Command::Count(if distance.is_some() { Metric::HitSemantic } else { Metric::HitExact }),
            Command::Fact(facts::STATUS, "HIT".into()),
            Command::Fact(facts::TIER, tier.into()),
            Command::Fact(facts::DISTANCE, dist),
            Command::Fact(facts::PARTITION, req.tag.clone()),
        ];
        cmds.extend(saved.increments().into_iter().map(|(m, n)| Command::CountBy(m, n)));
        // The request stays paused: the local reply ends it.
        cmds.push(Command::Respond { status: 200, headers, body });
        Step::wait(cmds)
    }

    fn miss(&mut self, search: Search) -> Step {
        let mut cmds = vec![
            Command::Count(Metric::Miss),
            Command::Fact(facts::STATUS, "MISS".into()),
            Command::Fact(facts::PARTITION, search.req.tag.clone()),
        ];
        if let Some(r) = search.refused {
            cmds.push(Command::Fact(facts::REFUSED, r.code().into()));
        }
        self.state = State::Miss(search);
        Step::go(cmds)
    }

    fn bypass(&mut self, reason: BypassReason, mut cmds: Vec<Command>) -> Step {
        self.state = State::Bypass(reason);
        cmds.push(Command::Count(Metric::Bypass));
        cmds.push(Command::Count(Metric::Bypassed(reason)));
        cmds.push(Command::Fact(facts::STATUS, "BYPASS".into()));
        cmds.push(Command::Fact(facts::BYPASS_REASON, reason.code().into()));
        cmds.push(Command::Log(Level::Debug, format!("bypass: {}", reason.code())));
        Step::go(cmds)
    }

    /// The response headers: adds ours (and starts the capture on a miss that may be stored).
    /// The response always continues.
    pub fn on_response_headers(&mut self, status: u16, content_type: &str) -> Step {
        let mut cmds = Vec::new();
        let miss = |refused: Option<Refusal>| {
            let mut h = vec![(STATUS_HEADER.to_string(), "MISS".to_string())];
            if let Some(r) = refused {
                h.push((REFUSED_HEADER.to_string(), r.code().to_string()));
            }
            h
        };
        let mut headers = match std::mem::replace(&mut self.state, State::Start) {
            s @ (State::Answered | State::Admin) => {
                self.state = s;
                Vec::new()
            }
            State::Miss(search) => {
                let refused = search.refused;
                if store_allowed(&search.req) {
                    let (max, stream) = (self.policy.max_response_body_bytes, search.req.chat.stream);
                    let capture = Capture::for_shape(max, stream, search.req.chat.shape);
                    let c = Capturing { search, capture, status, content_type: content_type.to_string() };
                    self.state = State::Capturing(Box::new(c));
                } else {
                    self.state = State::MissDone;
                    cmds.push(Command::Count(Metric::StoreSkipped));
                }
                miss(refused)
            }
            s @ (State::Capturing(_) | State::MissDone) => {
                self.state = s;
                miss(None)
            }
            // Request headers never reached us (e.g. a local reply from an earlier filter).
            State::Start => Vec::new(),
            State::Bypass(reason) => {
                self.state = State::Bypass(reason);
                bypass_headers(reason)
            }
            // The request is still in flight on our side (e.g. the router answered early).
            State::Buffering(_)
            | State::ExactLookup(_)
            | State::Embedding(_)
            | State::Racing(_)
            | State::Searching(_)
            | State::PurgeBody
            | State::Purging(_) => {
                self.state = State::Bypass(BypassReason::NotCacheable);
                bypass_headers(BypassReason::NotCacheable)
            }
        };
        // Ours went out: the vendors' status beside them (a local reply carried its own).
        if !headers.is_empty() {
            headers.extend(compat::response_headers(self.policy.compat, self.status()));
        }
        let mut all: Vec<Command> = headers.into_iter().map(|(k, v)| Command::ResponseHeader(k, v)).collect();
        all.extend(cmds);
        Step::go(all)
    }

    /// A response body chunk as it passes (never held back). At the end of the stream, returns
    /// the store command when the captured answer may be stored.
    pub fn on_response_body(&mut self, chunk: &[u8], end_of_stream: bool, now_secs: u64) -> Step {
        Step::go(self.capture(chunk, end_of_stream, now_secs))
    }

    fn capture(&mut self, chunk: &[u8], end_of_stream: bool, now_secs: u64) -> Vec<Command> {
        let State::Capturing(c) = &mut self.state else { return Vec::new() };
        c.capture.push(chunk);
        if !end_of_stream {
            return Vec::new();
        }
        let State::Capturing(c) = std::mem::replace(&mut self.state, State::MissDone) else { return Vec::new() };
        let Capturing { search: Search { req, vector, .. }, capture, status, content_type } = *c;
        let rules = StoreRules { allow_tool_calls: req.settings.store.tool_calls };
        let stored = match capture.finish(status, &content_type, &rules) {
            Ok(s) => s,
            Err(why) => {
                return vec![
                    Command::Count(Metric::StoreSkipped),
                    Command::Log(Level::Debug, format!("not stored: {why:?}")),
                ]
            }
        };
        let vs = &self.policy.vector_store;
        let created = now_secs.to_string();
        let blob = resp::vector_blob(&vector);
        let saved = Savings::from_body(&stored.body, self.origin_ms).values();
        let mut fields: Vec<(&str, &[u8])> = vec![
            ("partition", req.tag.as_bytes()),
            ("body", &stored.body),
            ("ctype", stored.content_type.as_bytes()),
            ("created", created.as_bytes()),
            ("model", req.chat.model.as_bytes()),
            // What the verifier compares a later candidate with (README: stored data).
            ("prompt", req.chat.embed_text.as_bytes()),
        ];
        fields.extend(savings::FIELDS.iter().zip(&saved).map(|(f, v)| (*f, v.as_bytes())));
        fields.extend(req.sel.fields().into_iter().map(|(f, v)| (f, v.as_bytes())));
        // Custom-key and exact-only (embeddings) entries have no vector: KNN never finds them, the
        // exact key does.
        if !vector.is_empty() {
            fields.insert(1, ("vec", &blob));
        }
        let pipeline = self.pipeline(&[
            resp::ft_create(&vs.index, &vs.prefix, self.policy.embedding.dimensions),
            resp::hset(&req.key, &fields),
            resp::expire(&req.key, req.directives.ttl_secs),
        ]);
        vec![Command::Store(pipeline)]
    }

    /// The stream ended (`on_log`). A miss still capturing never saw the upstream's end of stream:
    /// the client (e.g. the openai SDK, which closes on `data: [DONE]`) or the upstream went away
    /// first. What was captured is judged as if the stream had ended here: a complete answer
    /// (`[DONE]` + `finish_reason`, or a JSON body that parses) is stored, anything else is
    /// skipped. Either way every miss gets exactly one store outcome.
    pub fn on_done(&mut self, now_secs: u64) -> Step {
        match std::mem::replace(&mut self.state, State::MissDone) {
            s @ State::Capturing(_) => {
                self.state = s;
                Step::go(self.capture(&[], true, now_secs))
            }
            State::Miss(_) => Step::go(vec![Command::Count(Metric::StoreSkipped)]),
            s => {
                self.state = s;
                Step::go(Vec::new())
            }
        }
    }

    /// The purge endpoint's states live in core/purge.rs; the flow only keeps its phase.
    fn purge_turn(&mut self, t: purge::Turn) -> Step {
        self.state = match t.phase {
            Phase::AwaitBody => State::PurgeBody,
            Phase::Running(p) => State::Purging(p),
            Phase::Answered => State::Admin,
        };
        Step::wait(t.cmds)
    }

    fn conn(&self) -> RedisConn {
        conn_of(&self.policy)
    }

    fn pipeline(&self, cmds: &[Vec<Vec<u8>>]) -> Vec<u8> {
        resp::pipeline(&self.conn(), cmds)
    }
}

fn store_allowed(p: &Pending) -> bool {
    p.directives.store
        && p.chat.n <= 1
        && !p.chat.logprobs
        && match (p.settings.store.max_temperature, p.chat.temperature) {
            (Some(max), Some(t)) => t <= max,
            _ => true,
        }
}

/// The nearest candidate within the threshold that the verifier accepts (`verify`: `None` when
/// it is off), and the refusals of the nearer ones, in order. `hits` is nearest first. The
/// request's prompt is analysed only once a candidate needs it (most misses have none).
fn first_accepted<'h>(
    verify: Option<Strictness>,
    prompt: &str,
    threshold: f64,
    hits: &'h [resp::SearchHit],
) -> (Option<&'h resp::SearchHit>, Vec<Refusal>) {
    let mut refusals = Vec::new();
    let mut query: Option<Query> = None;
    for hit in hits.iter().filter(|h| f64::from(h.distance) <= threshold) {
        let verdict = match (verify, hit.prompt.as_deref()) {
            (None, _) => Ok(()),
            (Some(s), Some(stored)) => query.get_or_insert_with(|| Query::with_strictness(prompt, s)).verify(stored),
            // Written before prompts were stored: nothing to verify against.
            (Some(_), None) => Err(Refusal::Substitution),
        };
        match verdict {
            Ok(()) => return (Some(hit), refusals),
            Err(r) => refusals.push(r),
        }
    }
    (None, refusals)
}

fn exact_hit(fields: Vec<Option<Vec<u8>>>) -> Option<(Vec<u8>, u64, Savings)> {
    let mut it = fields.into_iter();
    let body = it.next()??;
    let _ctype = it.next()?;
    let created = it.next()?.and_then(|c| String::from_utf8(c).ok()).and_then(|c| c.parse().ok()).unwrap_or(0);
    let _model = it.next();
    let rest: Vec<Option<Vec<u8>>> = it.collect();
    let value = |i: usize| rest.get(i).and_then(|v| v.as_deref());
    Some((body, created, Savings::from_values([value(0), value(1), value(2)])))
}

#[cfg(test)]
#[path = "flow_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "flow_shapes_tests.rs"]
mod shapes_tests;
