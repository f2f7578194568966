//! Purge: an authenticated admin request, answered by the filter itself (never forwarded), that
//! deletes cache entries and answers `{"deleted": N}`.
//!
//! Which entries: every store writes four selector TAGs beside the entry (hashes, so no
//! credential or prompt is readable from the index): the tenant credential, the
//! `x-semantic-cache-key`, the model and the canonical prompt text. The purge body picks any
//! combination of them (ANDed); an empty body purges everything under this policy's index. A
//! partition tag cannot serve here: it also hashes the route and the conversation context, so one
//! tenant owns many partitions.
//!
//! How: RediSearch finds the keys (`FT.SEARCH idx <query> NOCONTENT LIMIT 0 BATCH`), the next
//! callout deletes them and asks for the next batch in the same pipeline (the DEL is indexed
//! before the search runs), until a search finds nothing. Each callout is one bounded RESP
//! pipeline over the TCP-upstream cluster; `MAX_ROUNDS` bounds one purge request (the answer then
//! says `complete: false` and the operator repeats it). A Lua script could do it in one call, but
//! a script running FT.SEARCH over a large partition blocks Redis for all of its duration.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::core::flow::{Command, RequestMeta};
use crate::core::key::tenant_id;
use crate::core::log::Level;
use crate::core::metrics::Metric;
use crate::core::policy::Policy;
use crate::core::redis::resp::{self, Reply};
use crate::core::redis::store::conn_of;
use crate::core::request::parse_chat;
use crate::core::verify::canonical;

/// Header carrying the purge key (`authorization: Bearer <key>` is accepted too).
pub const KEY_HEADER: &str = "x-semantic-cache-purge-key";
/// Keys deleted per callout.
pub const BATCH: usize = 500;
/// Callouts per purge request.
pub const MAX_ROUNDS: u32 = 200;

/// The selector TAG fields of an entry, in the order of `Selectors::values`.
pub const SELECTOR_FIELDS: [&str; 4] = ["sel_tenant", "sel_key", "sel_model", "sel_text"];

fn tag(kind: &str, value: Option<&str>) -> String {
    let mut h = Sha256::new();
    h.update(b"semcache-selector-v1");
    h.update(kind.as_bytes());
    match value {
        Some(v) => {
            h.update([1u8]);
            h.update(v.as_bytes());
        }
        None => h.update([0u8]),
    }
    hex::encode(&h.finalize()[..12])
}

/// The selector values of one entry (or of a purge request: `None` = any).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selectors {
    pub tenant: Option<String>,
    pub key: Option<String>,
    pub model: Option<String>,
    pub text: Option<String>,
}

impl Selectors {
    /// What a store writes: `tenant` is the presented credential (`None`: the shared cache),
    /// `user_key` the effective `x-semantic-cache-key`, `text` the canonical embedded text.
    pub fn of_entry(tenant: Option<&str>, user_key: &str, model: &str, text: &str) -> Selectors {
        Selectors {
            tenant: Some(tag("tenant", tenant.map(tenant_id).as_deref())),
            key: Some(tag("key", Some(user_key))),
            model: Some(tag("model", Some(model))),
            text: Some(tag("text", Some(text))),
        }
    }

    /// `(field, value)` pairs for the store's `HSET` (every selector is set for an entry).
    pub fn fields(&self) -> Vec<(&'static str, &str)> {
        let values = [&self.tenant, &self.key, &self.model, &self.text];
        SELECTOR_FIELDS.iter().zip(values).filter_map(|(f, v)| v.as_deref().map(|v| (*f, v))).collect()
    }

    /// The RediSearch query matching every entry with these selectors (`*` = all).
    pub fn query(&self) -> String {
        let parts: Vec<String> = self.fields().iter().map(|(f, v)| format!("@{f}:{{{v}}}")).collect();
        if parts.is_empty() {
            "*".into()
        } else {
            parts.join(" ")
        }
    }
}

/// The purge request body. Every field is optional; given ones are ANDed.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSelection {
    /// The tenant credential exactly as clients send it (e.g. `Bearer sk-...`).
    tenant: Option<String>,
    /// An `x-semantic-cache-key` value.
    cache_key: Option<String>,
    model: Option<String>,
    /// A chat request body: its prompt (and model, unless `model` is given) select one entry per
    /// remaining partition dimension (route, context).
    request: Option<serde_json::Value>,
    /// The path the `request` would be sent to (the Azure deployment is in it); default
    /// `/v1/chat/completions`.
    path: Option<String>,
}

/// The purge request body -> selectors; `Err` is the message of a 400.
pub fn parse_selection(policy: &Policy, body: &[u8]) -> Result<Selectors, String> {
    let raw: RawSelection = if body.iter().all(u8::is_ascii_whitespace) {
        RawSelection::default()
    } else {
        serde_json::from_slice(body).map_err(|e| format!("invalid purge body: {e}"))?
    };
    let mut s = Selectors::default();
    if let Some(t) = &raw.tenant {
        s.tenant = Some(tag("tenant", Some(&tenant_id(t))));
    }
    if let Some(k) = raw.cache_key.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
        s.key = Some(tag("key", Some(k)));
    }
    let mut model = raw.model.clone();
    if let Some(req) = &raw.request {
        let d = &policy.defaults;
        let path = raw.path.as_deref().unwrap_or("/v1/chat/completions");
        let bytes = serde_json::to_vec(req).map_err(|e| e.to_string())?;
        let chat = parse_chat(&bytes, path, d.embed.last_user_messages, d.partition.context_window)
            .map_err(|e| format!("`request` is not a chat request: {e:?}"))?;
        s.text = Some(tag("text", Some(&canonical(&chat.embed_text))));
        model.get_or_insert(chat.model);
    }
    s.model = model.map(|m| tag("model", Some(&m)));
    Ok(s)
}

/// Compares the presented key with the policy's in constant time: both are hashed to 32 bytes
/// first (so neither their length nor the position of the first difference shows in the timing),
/// then compared with `subtle`.
pub fn key_matches(presented: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    bool::from(a.as_slice().ct_eq(b.as_slice()))
}

/// The presented purge key: the purge header, else a bearer token.
pub fn presented_key(header: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    header(KEY_HEADER).or_else(|| {
        header("authorization").and_then(|a| {
            let (scheme, token) = a.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
        })
    })
}

/// A purge in progress: the query, the keys found by the last round, what was deleted.
#[derive(Debug, PartialEq)]
pub struct Purge {
    query: String,
    found: Vec<String>,
    pub deleted: u64,
    rounds: u32,
}

/// What the flow does after a purge reply.
#[derive(Debug, PartialEq)]
pub enum Progress {
    /// Send this pipeline next.
    More(Vec<u8>),
    /// Answer with this body.
    Done(Vec<u8>),
}

impl Purge {
    pub fn new(sel: &Selectors) -> Purge {
        Purge { query: sel.query(), found: Vec::new(), deleted: 0, rounds: 0 }
    }

    /// The next round's pipeline: `DEL` of the keys found last (if any), then the next search.
    pub fn pipeline(&mut self, policy: &Policy) -> Vec<u8> {
        self.rounds += 1;
        let mut cmds = Vec::new();
        if !self.found.is_empty() {
            let mut del = vec![b"DEL".to_vec()];
            del.extend(self.found.iter().map(|k| k.as_bytes().to_vec()));
            cmds.push(del);
        }
        cmds.push(search(&policy.vector_store.index, &self.query));
        resp::pipeline(&conn_of(policy), &cmds)
    }

    /// Reads a round's replies; `Err` when Redis failed (the answer is then a 503 with the count
    /// so far).
    pub fn on_reply(&mut self, policy: &Policy, reply: Option<&[u8]>) -> Result<Progress, String> {
        let bytes = reply.ok_or("no response (timeout or connection failure)")?;
        let conn = conn_of(policy);
        let expected = if self.found.is_empty() { 1 } else { 2 };
        let replies = resp::parse_replies(bytes).map_err(|e| e.to_string())?;
        let mut replies = resp::split_exact(&conn, replies, expected).map_err(|e| e.to_string())?.into_iter();
        if !self.found.is_empty() {
            match replies.next() {
                Some(Reply::Integer(n)) => self.deleted += u64::try_from(n).unwrap_or(0),
                Some(Reply::Error(e)) => return Err(format!("DEL failed: {e}")),
                _ => return Err("unexpected DEL reply".into()),
            }
        }
        self.found = match replies.next() {
            Some(Reply::Error(e)) if resp::is_missing_index(&e) => Vec::new(),
            Some(r) => keys_of(&r)?,
            None => Vec::new(),
        };
        if self.found.is_empty() {
            return Ok(Progress::Done(self.answer(true)));
        }
        if self.rounds >= MAX_ROUNDS {
            return Ok(Progress::Done(self.answer(false)));
        }
        Ok(Progress::More(self.pipeline(policy)))
    }

    pub fn answer(&self, complete: bool) -> Vec<u8> {
        serde_json::json!({"deleted": self.deleted, "complete": complete}).to_string().into_bytes()
    }
}

/// Where a purge request is after a step; the flow keeps it as its state.
#[derive(Debug)]
pub enum Phase {
    /// Authorised; the selection body is still to come.
    AwaitBody,
    /// A round in flight.
    Running(Box<Purge>),
    /// Answered locally (done, refused or failed).
    Answered,
}

/// A step of the purge endpoint: the next phase and the commands to run. The request always
/// waits (it is answered locally, never forwarded).
#[derive(Debug)]
pub struct Turn {
    pub phase: Phase,
    pub cmds: Vec<Command>,
}

fn json_headers() -> Vec<(String, String)> {
    vec![("content-type".to_string(), "application/json".to_string())]
}

/// A local JSON error answer.
pub fn answer(status: u32, msg: &str) -> Turn {
    let body = serde_json::json!({ "error": msg }).to_string().into_bytes();
    let mut headers = json_headers();
    match status {
        401 => headers.push(("www-authenticate".to_string(), "Bearer".to_string())),
        405 => headers.push(("allow".to_string(), "POST".to_string())),
        _ => {}
    }
    Turn { phase: Phase::Answered, cmds: vec![Command::Respond { status, headers, body }] }
}

/// The request headers on the purge path: refused without the right key (nothing deleted, never
/// forwarded); otherwise purges at once (no body: everything) or waits for the selection.
pub fn on_headers(policy: &Policy, m: &RequestMeta, key: &str) -> Turn {
    let refuse = |status: u32, msg: &str| {
        let mut t = answer(status, msg);
        t.cmds.insert(0, Command::Count(Metric::PurgeDenied));
        t.cmds.insert(1, Command::Log(Level::Info, format!("purge refused ({status}): {msg}")));
        t
    };
    match presented_key(m.header) {
        None => refuse(401, "purge key required"),
        Some(k) if !key_matches(&k, key) => refuse(403, "wrong purge key"),
        Some(_) if !m.method.eq_ignore_ascii_case("POST") => answer(405, "use POST"),
        Some(_) if m.end_of_stream => start(policy, &Selectors::default()),
        Some(_) => Turn { phase: Phase::AwaitBody, cmds: Vec::new() },
    }
}

/// The selection body.
pub fn on_body(policy: &Policy, body: &[u8]) -> Turn {
    match parse_selection(policy, body) {
        Ok(sel) => start(policy, &sel),
        Err(msg) => answer(400, &msg),
    }
}

fn start(policy: &Policy, sel: &Selectors) -> Turn {
    let mut p = Box::new(Purge::new(sel));
    let pipeline = p.pipeline(policy);
    Turn { phase: Phase::Running(p), cmds: vec![Command::Redis(pipeline)] }
}

/// A round's reply: the next round, or the answer.
pub fn on_reply(policy: &Policy, mut p: Purge, reply: Option<&[u8]>) -> Turn {
    let (status, body, mut cmds) = match p.on_reply(policy, reply) {
        Ok(Progress::More(pipeline)) => {
            return Turn { phase: Phase::Running(Box::new(p)), cmds: vec![Command::Redis(pipeline)] }
        }
        Ok(Progress::Done(body)) => (200, body, vec![Command::Count(Metric::Purge)]),
        Err(e) => {
            let body = serde_json::json!({ "error": "redis failed", "deleted": p.deleted }).to_string();
            (503, body.into_bytes(), vec![Command::Log(Level::Warn, format!("purge failed: {e}"))])
        }
    };
    cmds.push(Command::Log(Level::Info, format!("purge: {} entries deleted", p.deleted)));
    if p.deleted > 0 {
        cmds.push(Command::CountBy(Metric::PurgedEntries, p.deleted));
    }
    cmds.push(Command::Respond { status, headers: json_headers(), body });
    Turn { phase: Phase::Answered, cmds }
}

fn search(index: &str, query: &str) -> Vec<Vec<u8>> {
    let mut cmd: Vec<Vec<u8>> = vec![b"FT.SEARCH".to_vec(), index.as_bytes().to_vec(), query.as_bytes().to_vec()];
    for a in ["NOCONTENT", "LIMIT", "0"] {
        cmd.push(a.as_bytes().to_vec());
    }
    cmd.push(BATCH.to_string().into_bytes());
    cmd.extend([b"DIALECT".to_vec(), b"2".to_vec()]);
    cmd
}

/// Keys of an `FT.SEARCH ... NOCONTENT` reply: `[total, key, key, ...]`.
fn keys_of(reply: &Reply) -> Result<Vec<String>, String> {
    let Reply::Array(Some(items)) = reply else { return Err("FT.SEARCH reply is not an array".into()) };
    items
        .iter()
        .skip(1)
        .map(|r| match r {
            Reply::Bulk(Some(b)) => String::from_utf8(b.clone()).map_err(|_| "key is not UTF-8".to_string()),
            Reply::Simple(s) => Ok(s.clone()),
            _ => Err("FT.SEARCH key is not a string".into()),
        })
        .collect()
}

#[cfg(test)]
#[path = "purge_tests.rs"]
mod tests;
