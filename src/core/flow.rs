//! The per-request state machine. It makes no host calls: every callback becomes a method call
//! that returns `Command`s for the host layer to run.
//!
//! `Inspect -> ExactLookup -> Embed -> Search -> Hit | Forward -> Capture -> Store`; every
//! failure leads to `Forward` with `x-cache-status: BYPASS` (fail open), a counter and a log line.

use std::rc::Rc;

use crate::core::capture::{Capture, StoreRules};
use crate::core::decision::{decide, Directives, RequestHeaders};
use crate::core::embed::provider::{self, EmbedCall, EmbedError};
use crate::core::entry;
use crate::core::key::{entry_key, partition_tag, PartitionInputs};
use crate::core::metrics::Metric;
use crate::core::policy::{Policy, Provider, Settings};
use crate::core::request::{is_chat_path, parse_chat, ChatRequest};
use crate::core::resp::{self, RedisConn, Reply};

pub const STATUS_HEADER: &str = "x-cache-status";
pub const MATCH_HEADER: &str = "x-cache-match";
pub const DISTANCE_HEADER: &str = "x-cache-distance";
pub const REASON_HEADER: &str = "x-cache-bypass-reason";
pub const THRESHOLD_HEADER: &str = "x-semantic-threshold";
pub const KEY_HEADER: &str = "x-semantic-cache-key";
pub const OVERRIDES_HEADER: &str = "x-settings-overrides";

const ENTRY_FIELDS: [&str; 4] = ["body", "ctype", "created", "model"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, PartialEq)]
pub enum Command {
    /// POST this RESP pipeline to the vector-store cluster; answer with `on_redis_reply`.
    Redis(Vec<u8>),
    /// Call the remote embedding provider; answer with `on_embed_reply`.
    Embed(EmbedCallout),
    /// Compute the embedding in the filter; answer with `on_embedding`.
    EmbedLocal(String),
    /// Answer the client now (a hit).
    Respond { status: u32, headers: Vec<(String, String)>, body: Vec<u8> },
    /// Let the request continue upstream.
    Resume,
    /// Enqueue this RESP pipeline to be written by the root context (survives the stream).
    Store(Vec<u8>),
    Count(Metric),
    Log(Level, String),
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
    pub end_of_stream: bool,
    /// The root context found the index with another DIM than the policy's.
    pub index_mismatch: bool,
    /// Looks up a request header by lowercase name.
    pub header: &'a dyn Fn(&str) -> Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    /// Headers not seen yet.
    Start,
    Bypass(&'static str),
    Buffering,
    ExactLookup,
    Embedding,
    Searching,
    /// Answered from the cache; the local reply's response callbacks must not store again.
    Answered,
    /// Forwarded upstream on a miss; the response may be captured.
    Miss,
}

/// Known after the request headers.
struct Inspected {
    settings: Settings,
    directives: Directives,
    tenant: Option<String>,
    route: Option<String>,
}

/// Known after the request body.
struct Pending {
    settings: Settings,
    directives: Directives,
    chat: ChatRequest,
    tag: String,
    key: String,
    vector: Option<Vec<f32>>,
}

pub struct Flow {
    policy: Rc<Policy>,
    state: State,
    inspected: Option<Inspected>,
    pending: Option<Pending>,
    capture: Option<Capture>,
    /// Response-side verdict: whether the captured response may be stored.
    response_status: u16,
    response_ctype: String,
}

impl Flow {
    pub fn new(policy: Rc<Policy>) -> Self {
        Flow { policy, state: State::Start, inspected: None, pending: None, capture: None, response_status: 0, response_ctype: String::new() }
    }

    pub fn is_buffering(&self) -> bool {
        self.state == State::Buffering
    }

    /// Whether response body chunks are wanted (a miss whose answer may be stored).
    pub fn is_capturing(&self) -> bool {
        self.state == State::Miss && self.capture.is_some()
    }

    pub fn status(&self) -> &'static str {
        match self.state {
            State::Answered => "HIT",
            State::Miss => "MISS",
            _ => "BYPASS",
        }
    }

    pub fn bypass_reason(&self) -> Option<&'static str> {
        match self.state {
            State::Bypass(r) => Some(r),
            _ => None,
        }
    }

    /// Request headers. Returns `true` when the body must be buffered (host pauses), `false`
    /// when the request bypasses the cache (host continues).
    pub fn on_request_headers(&mut self, m: &RequestMeta) -> (bool, Vec<Command>) {
        let mut cmds = vec![Command::Count(Metric::Requests)];
        let (settings, rule) = self.policy.settings_for(m.method, m.path, m.route_name);
        let reason = if !m.method.eq_ignore_ascii_case("POST") {
            Some("method")
        } else if rule.is_none() && !is_chat_path(m.path) {
            Some("path")
        } else if m.end_of_stream {
            Some("no-body")
        } else if m.index_mismatch {
            Some("dimension-mismatch")
        } else if (m.header)("content-length")
            .and_then(|l| l.trim().parse::<usize>().ok())
            .is_some_and(|l| l > self.policy.max_request_body_bytes)
        {
            Some("body-too-large")
        } else {
            None
        };
        if let Some(r) = reason {
            self.bypass(r, &mut cmds);
            return (false, cmds);
        }
        let cc = (m.header)("cache-control");
        let th = (m.header)(THRESHOLD_HEADER);
        let key = (m.header)(KEY_HEADER);
        let ov = (m.header)(OVERRIDES_HEADER);
        let headers = RequestHeaders {
            cache_control: cc.as_deref(),
            threshold: th.as_deref(),
            cache_key: key.as_deref(),
            settings_overrides: ov.as_deref(),
            skip: (m.header)(&self.policy.skip_header).is_some(),
        };
        let directives = match decide(settings, &headers) {
            Ok(d) => d,
            Err(r) => {
                self.bypass(r, &mut cmds);
                return (false, cmds);
            }
        };
        let tenant = if settings.partition.tenant {
            settings.partition.tenant_headers.iter().find_map(|h| (m.header)(h))
        } else {
            None
        };
        let route = settings.partition.route.then(|| match rule {
            Some(name) => format!("rule:{name}"),
            None => format!("route:{}", m.route_name.unwrap_or("")),
        });
        self.inspected = Some(Inspected { settings: settings.clone(), directives, tenant, route });
        self.state = State::Buffering;
        (true, cmds)
    }

    /// Max bytes the host may buffer; past it the host calls `on_body_too_large`.
    pub fn max_request_body(&self) -> usize {
        self.policy.max_request_body_bytes
    }

    pub fn on_body_too_large(&mut self) -> Vec<Command> {
        let mut cmds = Vec::new();
        if self.state == State::Buffering {
            self.bypass("body-too-large", &mut cmds);
            cmds.push(Command::Resume);
        }
        cmds
    }

    /// The complete request body.
    pub fn on_request_body(&mut self, body: &[u8], path: &str) -> Vec<Command> {
        let mut cmds = Vec::new();
        if self.state != State::Buffering {
            return cmds;
        }
        let Some(i) = self.inspected.take() else { return cmds };
        let chat = match parse_chat(body, path, i.settings.embed.last_user_messages, i.settings.partition.context_window) {
            Ok(c) => c,
            Err(e) => {
                self.bypass(e.reason(), &mut cmds);
                cmds.push(Command::Resume);
                return cmds;
            }
        };
        let tag = partition_tag(&PartitionInputs {
            model: &chat.model,
            tenant: i.tenant.as_deref(),
            route: i.route.as_deref(),
            user_key: &i.directives.user_key,
            context: &chat.context,
        });
        let key = entry_key(&self.policy.vector_store.key_prefix, &tag, &chat.embed_text);
        let lookup = i.directives.lookup;
        let exact = resp::hmget(&key, &ENTRY_FIELDS);
        self.pending =
            Some(Pending { settings: i.settings, directives: i.directives, chat, tag, key, vector: None });
        if lookup {
            self.state = State::ExactLookup;
            cmds.push(Command::Redis(self.pipeline(&[exact])));
        } else {
            // `no-cache`: no lookup, but the answer is stored, which needs its vector.
            cmds.extend(self.start_embedding());
        }
        cmds
    }

    fn start_embedding(&mut self) -> Vec<Command> {
        let Some(p) = self.pending.as_ref() else { return Vec::new() };
        self.state = State::Embedding;
        let e = &self.policy.embedding;
        if e.provider == Provider::Local {
            return vec![Command::EmbedLocal(p.chat.embed_text.clone())];
        }
        let EmbedCall { headers, body } = provider::build_request(e, &p.chat.embed_text);
        vec![Command::Embed(EmbedCallout {
            cluster: e.cluster.clone(),
            authority: e.authority.clone(),
            path: e.path.clone(),
            headers,
            body,
            timeout_ms: e.timeout_ms,
        })]
    }

    /// Reply of a remote embedding callout: `None` when the call failed (timeout, reset).
    pub fn on_embed_reply(&mut self, reply: Option<(u16, &[u8])>) -> Vec<Command> {
        let result = match reply {
            None => Err(EmbedError::Call("no response (timeout or connection failure)".into())),
            Some((status, body)) => provider::parse_response(status, body, self.policy.embedding.dimensions),
        };
        self.on_embedding(result)
    }

    pub fn on_embedding(&mut self, result: Result<Vec<f32>, EmbedError>) -> Vec<Command> {
        let mut cmds = Vec::new();
        if self.state != State::Embedding {
            return cmds;
        }
        let vector = match result {
            Ok(v) => v,
            Err(e) => {
                let reason = if matches!(e, EmbedError::Dimensions { .. }) { "dimension-mismatch" } else { "embedding-error" };
                cmds.push(Command::Count(Metric::EmbeddingError));
                cmds.push(Command::Log(Level::Warn, format!("embedding failed ({}): {e}", self.policy.embedding.provider.as_str())));
                self.bypass(reason, &mut cmds);
                cmds.push(Command::Resume);
                return cmds;
            }
        };
        let Some(p) = self.pending.as_mut() else { return cmds };
        if !p.directives.lookup {
            p.vector = Some(vector);
            self.miss(&mut cmds);
            return cmds;
        }
        let search = resp::ft_search_knn(&self.policy.vector_store.index_name, &p.tag, &vector);
        p.vector = Some(vector);
        self.state = State::Searching;
        cmds.push(Command::Redis(self.pipeline(&[search])));
        cmds
    }

    /// Reply of a Redis callout: `None` when the call failed.
    pub fn on_redis_reply(&mut self, reply: Option<&[u8]>, now_secs: u64) -> Vec<Command> {
        let mut cmds = Vec::new();
        let Some(bytes) = reply else {
            self.redis_failed("no response (timeout or connection failure)", &mut cmds);
            return cmds;
        };
        let reply = match resp::single_reply(&self.conn(), bytes) {
            Ok(r) => r,
            Err(e) => {
                self.redis_failed(&e.to_string(), &mut cmds);
                return cmds;
            }
        };
        match self.state {
            State::ExactLookup => match resp::parse_hmget(&reply) {
                Ok(Some(fields)) => match exact_hit(fields) {
                    Some((body, created)) => self.hit(&body, created, None, now_secs, &mut cmds),
                    None => self.redis_failed("exact entry lacks fields", &mut cmds),
                },
                Ok(None) => cmds.extend(self.start_embedding()),
                Err(e) => self.redis_failed(&e.to_string(), &mut cmds),
            },
            State::Searching => {
                let Some(threshold) = self.pending.as_ref().map(|p| p.directives.threshold) else { return cmds };
                match resp::parse_search(&reply) {
                    Ok(Some(hit)) if f64::from(hit.distance) <= threshold => {
                        self.hit(&hit.body, hit.created, Some(hit.distance), now_secs, &mut cmds)
                    }
                    Ok(_) => self.miss(&mut cmds),
                    Err(resp::RespError::Server(msg)) if resp::is_missing_index(&msg) => self.miss(&mut cmds),
                    Err(resp::RespError::Server(msg)) if resp::is_dimension_mismatch(&msg) => {
                        cmds.push(Command::Count(Metric::RedisError));
                        cmds.push(Command::Log(
                            Level::Error,
                            format!(
                                "vector dimension mismatch: index `{}` was created with another DIM than embedding.dimensions={} ({msg}); drop the index or use another vectorStore.indexName",
                                self.policy.vector_store.index_name, self.policy.embedding.dimensions
                            ),
                        ));
                        self.bypass("dimension-mismatch", &mut cmds);
                        cmds.push(Command::Resume);
                    }
                    Err(e) => self.redis_failed(&e.to_string(), &mut cmds),
                }
            }
            _ => {}
        }
        cmds
    }

    fn redis_failed(&mut self, msg: &str, cmds: &mut Vec<Command>) {
        if !matches!(self.state, State::ExactLookup | State::Searching) {
            return;
        }
        cmds.push(Command::Count(Metric::RedisError));
        cmds.push(Command::Log(Level::Warn, format!("redis lookup failed: {msg}")));
        self.bypass("redis-error", cmds);
        cmds.push(Command::Resume);
    }

    fn hit(&mut self, stored: &[u8], created: u64, distance: Option<f32>, now: u64, cmds: &mut Vec<Command>) {
        let Some(p) = self.pending.as_ref() else { return };
        let (body, ctype) = if p.chat.stream {
            match entry::render_sse(stored, p.chat.include_usage) {
                Ok(b) => (b, entry::SSE_CONTENT_TYPE),
                Err(e) => {
                    // An entry we cannot render is treated like a Redis failure: go upstream.
                    self.redis_failed(&format!("stored entry unusable: {e}"), cmds);
                    return;
                }
            }
        } else {
            (entry::render_json(stored), entry::JSON_CONTENT_TYPE)
        };
        let mut headers = vec![
            ("content-type".to_string(), ctype.to_string()),
            (STATUS_HEADER.to_string(), "HIT".to_string()),
            (MATCH_HEADER.to_string(), if distance.is_some() { "semantic" } else { "exact" }.to_string()),
            (DISTANCE_HEADER.to_string(), format!("{:.4}", distance.unwrap_or(0.0).max(0.0))),
            ("age".to_string(), now.saturating_sub(created).to_string()),
        ];
        if p.chat.stream {
            headers.push(("cache-control".to_string(), "no-cache".to_string()));
        }
        cmds.push(Command::Count(if distance.is_some() { Metric::HitSemantic } else { Metric::HitExact }));
        self.state = State::Answered;
        cmds.push(Command::Respond { status: 200, headers, body });
    }

    fn miss(&mut self, cmds: &mut Vec<Command>) {
        self.state = State::Miss;
        cmds.push(Command::Count(Metric::Miss));
        cmds.push(Command::Resume);
    }

    fn bypass(&mut self, reason: &'static str, cmds: &mut Vec<Command>) {
        self.state = State::Bypass(reason);
        self.inspected = None;
        self.pending = None;
        cmds.push(Command::Count(Metric::Bypass));
        cmds.push(Command::Log(Level::Debug, format!("bypass: {reason}")));
    }

    /// Headers to add to the response (and commands to run). Starts the capture on a miss that
    /// may be stored.
    pub fn on_response_headers(&mut self, status: u16, content_type: &str) -> (Vec<(String, String)>, Vec<Command>) {
        let mut cmds = Vec::new();
        let headers = match self.state {
            State::Answered => Vec::new(),
            State::Miss => {
                self.response_status = status;
                self.response_ctype = content_type.to_string();
                match &self.pending {
                    Some(p) if self.store_allowed(p) => {
                        self.capture = Some(Capture::new(self.policy.max_response_body_bytes, p.chat.stream));
                    }
                    _ => {
                        self.pending = None;
                        cmds.push(Command::Count(Metric::StoreSkipped));
                    }
                }
                vec![(STATUS_HEADER.to_string(), "MISS".to_string())]
            }
            // Request headers never reached us (e.g. a local reply from an earlier filter).
            State::Start => Vec::new(),
            State::Bypass(reason) => bypass_headers(reason),
            // The request is still in flight on our side (e.g. the router answered early).
            _ => {
                self.state = State::Bypass("not-cacheable");
                self.pending = None;
                bypass_headers("not-cacheable")
            }
        };
        (headers, cmds)
    }

    fn store_allowed(&self, p: &Pending) -> bool {
        p.directives.store
            && p.chat.n <= 1
            && !p.chat.logprobs
            && match (p.settings.store.max_temperature, p.chat.temperature) {
                (Some(max), Some(t)) => t <= max,
                _ => true,
            }
    }

    /// A response body chunk as it passes (never held back). At the end of the stream, returns
    /// the store command when the captured answer may be stored.
    pub fn on_response_body(&mut self, chunk: &[u8], end_of_stream: bool, now_secs: u64) -> Vec<Command> {
        let mut cmds = Vec::new();
        if self.state != State::Miss {
            return cmds;
        }
        let Some(cap) = self.capture.as_mut() else { return cmds };
        cap.push(chunk);
        if !end_of_stream {
            return cmds;
        }
        let (Some(cap), Some(p)) = (self.capture.take(), self.pending.take()) else { return cmds };
        let rules = StoreRules { allow_tool_calls: p.settings.store.tool_calls };
        let stored = match cap.finish(self.response_status, &self.response_ctype, &rules) {
            Ok(s) => s,
            Err(why) => {
                cmds.push(Command::Count(Metric::StoreSkipped));
                cmds.push(Command::Log(Level::Debug, format!("not stored: {why:?}")));
                return cmds;
            }
        };
        let Some(vector) = p.vector.as_ref() else { return cmds };
        let vs = &self.policy.vector_store;
        let created = now_secs.to_string();
        let blob = resp::vector_blob(vector);
        let pipeline = self.pipeline(&[
            resp::ft_create(&vs.index_name, &vs.key_prefix, self.policy.embedding.dimensions),
            resp::hset(
                &p.key,
                &[
                    ("partition", p.tag.as_bytes()),
                    ("vec", &blob),
                    ("body", &stored.body),
                    ("ctype", stored.content_type.as_bytes()),
                    ("created", created.as_bytes()),
                    ("model", p.chat.model.as_bytes()),
                ],
            ),
            resp::expire(&p.key, p.directives.ttl_secs),
        ]);
        cmds.push(Command::Store(pipeline));
        cmds
    }

    /// The client went away before the response completed: nothing is stored.
    pub fn on_done(&mut self) {
        self.capture = None;
        self.pending = None;
    }

    fn conn(&self) -> RedisConn {
        conn_of(&self.policy)
    }

    fn pipeline(&self, cmds: &[Vec<Vec<u8>>]) -> Vec<u8> {
        resp::pipeline(&self.conn(), cmds)
    }
}

/// Response headers of a request that bypassed the cache.
pub fn bypass_headers(reason: &str) -> Vec<(String, String)> {
    vec![(STATUS_HEADER.to_string(), "BYPASS".to_string()), (REASON_HEADER.to_string(), reason.to_string())]
}

pub fn conn_of(policy: &Policy) -> RedisConn {
    let vs = &policy.vector_store;
    RedisConn { username: vs.username.clone(), password: vs.password.clone(), database: vs.database }
}

/// Checks the replies of a store pipeline (FT.CREATE, HSET, EXPIRE). "Index already exists" is
/// the normal answer to FT.CREATE.
pub fn check_store_reply(preamble: usize, reply: Option<&[u8]>) -> Result<(), String> {
    let bytes = reply.ok_or("no response (timeout or connection failure)")?;
    let replies = resp::parse_replies(bytes).map_err(|e| e.to_string())?;
    let replies = resp::split_after_preamble(preamble, replies).map_err(|e| e.to_string())?;
    if replies.len() != 3 {
        return Err(format!("expected 3 replies, got {}", replies.len()));
    }
    for (i, r) in replies.iter().enumerate() {
        if let Reply::Error(msg) = r {
            if !(i == 0 && resp::is_index_exists(msg)) {
                return Err(format!("redis error: {msg}"));
            }
        }
    }
    match replies.get(2) {
        Some(Reply::Integer(1)) => Ok(()),
        _ => Err("EXPIRE did not apply".into()),
    }
}

fn exact_hit(fields: Vec<Option<Vec<u8>>>) -> Option<(Vec<u8>, u64)> {
    let mut it = fields.into_iter();
    let body = it.next()??;
    let _ctype = it.next()?;
    let created = it.next()?.and_then(|c| String::from_utf8(c).ok()).and_then(|c| c.parse().ok()).unwrap_or(0);
    Some((body, created))
}

#[cfg(test)]
#[path = "flow_tests.rs"]
mod tests;
