//! Policy JSON (the filter's plugin configuration) -> validated, immutable `Policy`.
//!
//! Parsing goes through `serde_path_to_error` so that every error names the offending field
//! (`embedding.provider: unknown variant ...`), which is what the operator sees in Envoy's log.

use serde::Deserialize;
use serde_json::{Map, Value};
use thiserror::Error;

use crate::core::verify::Strictness;

/// Longest TTL we accept from anyone (policy or `Cache-Control: max-age`): 30 days.
pub const TTL_CEILING_SECS: u64 = 30 * 24 * 3600;

#[derive(Debug, Error, PartialEq)]
#[error("invalid policy: {field}: {message}")]
pub struct PolicyError {
    pub field: String,
    pub message: String,
}

impl PolicyError {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Self { field: field.to_string(), message: message.into() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    OpenaiCompatible,
    AzureOpenai,
    Mistral,
    Local,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::OpenaiCompatible => "openai-compatible",
            Provider::AzureOpenai => "azure-openai",
            Provider::Mistral => "mistral",
            Provider::Local => "local",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    pub provider: Provider,
    pub cluster: String,
    /// Parsed from `url`: authority and path (with query) for the callout. Empty for `local`.
    pub authority: String,
    pub path: String,
    pub model: Option<String>,
    pub auth_header: String,
    pub api_key: Option<String>,
    pub dimensions: usize,
    pub timeout_ms: u64,
    pub max_tokens: usize,
    /// Remote providers: send the embedding request beside the exact lookup, so a miss costs
    /// max(exact, embedding) + KNN; an exact hit then pays for an embedding it does not use.
    pub parallel: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VectorStore {
    pub cluster: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub database: u32,
    /// As configured (`vectorStore.indexName` / `keyPrefix`).
    pub index_name: String,
    pub key_prefix: String,
    /// What the filter uses: the configured names plus the embedding fingerprint (see
    /// `embedding_fingerprint`), so another embedding model or `dimensions` gets its own index and
    /// keys and never meets entries embedded by the old one.
    pub index: String,
    pub prefix: String,
    pub timeout_ms: u64,
}

/// The purge endpoint (core/purge.rs); off without a key.
#[derive(Debug, Clone, PartialEq)]
pub struct PurgeConfig {
    pub path: String,
    pub key: Option<String>,
}

/// Shortest purge key accepted.
pub const MIN_PURGE_KEY: usize = 16;

/// Version of the entry layout (hash fields and index schema); part of the fingerprint so a
/// layout change gets a new index instead of an old index without the new fields.
const ENTRY_LAYOUT: &str = "v2";

/// 8 hex chars identifying what produced the stored vectors: provider, model (for `local`, the
/// model compiled into this build), dimensions, and the entry layout.
pub fn embedding_fingerprint(e: &Embedding) -> String {
    use sha2::{Digest, Sha256};
    let model = match e.provider {
        Provider::Local if cfg!(feature = "local-model") => "local-model",
        Provider::Local => "static-model",
        _ => e.model.as_deref().unwrap_or(""),
    };
    let mut h = Sha256::new();
    for part in [ENTRY_LAYOUT, e.provider.as_str(), model, &e.dimensions.to_string()] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(&h.finalize()[..4])
}

#[derive(Debug, Clone, PartialEq)]
pub struct EmbedOpts {
    /// How many of the most recent user messages are embedded (and hashed for the exact tier).
    pub last_user_messages: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PartitionOpts {
    pub tenant: bool,
    pub tenant_headers: Vec<String>,
    /// Query parameters that carry a credential (Gemini's `key`), read when no tenant header is present.
    pub tenant_query_params: Vec<String>,
    pub route: bool,
    /// Partition by the upstream provider (the route's cluster, else the request's `:authority`).
    pub provider: bool,
    /// How many earlier (non-system) messages go into the context hash; `None` = all of them.
    pub context_window: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoreOpts {
    pub tool_calls: bool,
    pub max_temperature: Option<f64>,
}

/// The knobs a resource-level rule may override; the policy's top level holds the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub enabled: bool,
    pub threshold: f64,
    pub max_threshold: f64,
    pub ttl_secs: u64,
    pub max_ttl_secs: u64,
    pub embed: EmbedOpts,
    pub partition: PartitionOpts,
    pub store: StoreOpts,
    /// The verifier's setting for semantic candidates (`None` = off: distance alone decides).
    pub verify: Option<Strictness>,
    /// How many KNN candidates within the threshold are checked; the nearest that passes answers.
    pub top_k: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleMatch {
    pub path_prefix: Option<String>,
    /// Segments of a template such as `/openai/deployments/{deployment}/chat/completions`;
    /// `{name}` matches one segment, a final `**` matches the rest.
    pub path_template: Option<Vec<String>>,
    pub methods: Vec<String>,
    pub route_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub matcher: RuleMatch,
    pub settings: Settings,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub embedding: Embedding,
    pub vector_store: VectorStore,
    pub defaults: Settings,
    pub rules: Vec<Rule>,
    pub max_request_body_bytes: usize,
    pub max_response_body_bytes: usize,
    pub skip_header: String,
    pub purge: PurgeConfig,
    pub compat: Compat,
}

/// Which vendors' request and response headers the filter speaks (see `core::compat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Compat {
    #[serde(default = "d_true")]
    pub fastly: bool,
    #[serde(default = "d_true")]
    pub cloudflare: bool,
}

impl Default for Compat {
    fn default() -> Self {
        Compat { fastly: true, cloudflare: true }
    }
}

// ---------- raw serde shapes ----------

/// Top-level fields other than the overridable settings (`serde(flatten)` would lose both the
/// error paths and `deny_unknown_fields`, so the two halves are split by key before parsing).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPolicy {
    embedding: RawEmbedding,
    #[serde(default)]
    vector_store: RawVectorStore,
    #[serde(skip)]
    settings: RawSettings,
    #[serde(default = "d_max_req")]
    max_request_body_bytes: usize,
    #[serde(default = "d_max_resp")]
    max_response_body_bytes: usize,
    #[serde(default = "d_skip_header")]
    skip_header: String,
    #[serde(default)]
    purge: RawPurge,
    #[serde(default)]
    compat: Compat,
    #[serde(skip)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPurge {
    #[serde(default = "d_purge_path")]
    path: String,
    key: Option<String>,
}

impl Default for RawPurge {
    fn default() -> Self {
        RawPurge { path: d_purge_path(), key: None }
    }
}

fn d_purge_path() -> String {
    "/semantic-cache/purge".into()
}

fn validate_purge(p: RawPurge) -> Result<PurgeConfig, PolicyError> {
    let path_ok = p.path.starts_with('/') && !p.path.bytes().any(|b| b.is_ascii_whitespace() || b"?#".contains(&b));
    if !path_ok {
        return Err(PolicyError::new("purge.path", "must start with / and have no query, fragment or spaces"));
    }
    if p.key.as_ref().is_some_and(|k| k.chars().count() < MIN_PURGE_KEY) {
        return Err(PolicyError::new("purge.key", format!("must have at least {MIN_PURGE_KEY} characters")));
    }
    Ok(PurgeConfig { path: p.path, key: p.key })
}

/// Keys of `RawSettings`, accepted at the top level and in every rule.
const SETTINGS_KEYS: &[&str] = &[
    "enabled",
    "threshold",
    "maxThreshold",
    "ttlSeconds",
    "maxTtlSeconds",
    "embed",
    "partition",
    "store",
    "verify",
    "topK",
];

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSettings {
    enabled: Option<bool>,
    threshold: Option<f64>,
    max_threshold: Option<f64>,
    ttl_seconds: Option<u64>,
    max_ttl_seconds: Option<u64>,
    embed: Option<RawEmbedOpts>,
    partition: Option<RawPartition>,
    store: Option<RawStore>,
    verify: Option<String>,
    top_k: Option<usize>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawEmbedding {
    provider: Provider,
    #[serde(default = "d_embed_cluster")]
    cluster: String,
    url: Option<String>,
    model: Option<String>,
    auth_header: Option<String>,
    api_key: Option<String>,
    dimensions: usize,
    #[serde(default = "d_embed_timeout")]
    timeout_ms: u64,
    #[serde(default = "d_max_tokens")]
    max_tokens: usize,
    #[serde(default = "d_true")]
    parallel: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawVectorStore {
    #[serde(rename = "type", default = "d_store_type")]
    kind: String,
    #[serde(default = "d_redis_cluster")]
    cluster: String,
    username: Option<String>,
    password: Option<String>,
    #[serde(default)]
    database: u32,
    #[serde(default = "d_index")]
    index_name: String,
    #[serde(default = "d_prefix")]
    key_prefix: String,
    #[serde(default = "d_redis_timeout")]
    timeout_ms: u64,
}

impl Default for RawVectorStore {
    fn default() -> Self {
        Self {
            kind: d_store_type(),
            cluster: d_redis_cluster(),
            username: None,
            password: None,
            database: 0,
            index_name: d_index(),
            key_prefix: d_prefix(),
            timeout_ms: d_redis_timeout(),
        }
    }
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawEmbedOpts {
    last_user_messages: Option<usize>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPartition {
    tenant: Option<bool>,
    tenant_headers: Option<Vec<String>>,
    tenant_query_params: Option<Vec<String>>,
    route: Option<bool>,
    provider: Option<bool>,
    /// `null` = all earlier messages; absent = inherit.
    #[serde(default, deserialize_with = "present_option")]
    context_window: Option<Option<usize>>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawStore {
    tool_calls: Option<bool>,
    #[serde(default, deserialize_with = "present_option")]
    max_temperature: Option<Option<f64>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRule {
    name: String,
    #[serde(rename = "match")]
    matcher: RawMatch,
    #[serde(skip)]
    settings: RawSettings,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawMatch {
    path_prefix: Option<String>,
    path_template: Option<String>,
    #[serde(default)]
    methods: Vec<String>,
    route_name: Option<String>,
}

/// Distinguishes an absent field (outer `None`) from an explicit `null` (`Some(None)`).
fn present_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

fn d_max_req() -> usize {
    1024 * 1024
}
fn d_max_resp() -> usize {
    4 * 1024 * 1024
}
fn d_skip_header() -> String {
    "x-semantic-cache-skip".into()
}
fn d_embed_cluster() -> String {
    "embedding".into()
}
fn d_embed_timeout() -> u64 {
    3000
}
fn d_true() -> bool {
    true
}
fn d_max_tokens() -> usize {
    128
}
fn d_store_type() -> String {
    "redis".into()
}
fn d_redis_cluster() -> String {
    "redis".into()
}
fn d_index() -> String {
    "semcache_idx".into()
}
fn d_prefix() -> String {
    "semcache:".into()
}
fn d_redis_timeout() -> u64 {
    1000
}

/// Default distance threshold for remote providers, with the verifier on. Not measured here (no
/// provider is reachable): MiniLM's <=1% false-hit point with the verifier (0.21) shrunk for
/// embedders whose distances run smaller. Calibrate per model (`calibrate`, README).
pub const DEFAULT_THRESHOLD: f64 = 0.15;
/// The static table (default build) with the verifier: the <=1% false-hit point on fow-cache and
/// on our own pairs, rounded down (bench/quality/eval_results.md).
pub const DEFAULT_THRESHOLD_STATIC: f64 = 0.3;
/// all-MiniLM-L6-v2 (`make build-local`) with the verifier: the <=1% false-hit point on fow-cache
/// (0.2135), rounded down (bench/quality/eval_results.md).
pub const DEFAULT_THRESHOLD_MINILM: f64 = 0.2;
/// `provider: "local"` uses the model compiled into this build.
pub const DEFAULT_THRESHOLD_LOCAL: f64 =
    if cfg!(feature = "local-model") { DEFAULT_THRESHOLD_MINILM } else { DEFAULT_THRESHOLD_STATIC };
pub const DEFAULT_TTL_SECS: u64 = 3600;
/// KNN candidates checked per lookup: a trap that happens to be nearest must not hide a true
/// paraphrase behind it (see bench/quality).
pub const DEFAULT_TOP_K: usize = 5;
pub const MAX_TOP_K: usize = 20;

// ---------- validation ----------

pub fn parse_policy(bytes: &[u8]) -> Result<Policy, PolicyError> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| PolicyError::new("(policy)", trim_serde(e.to_string())))?;
    let Value::Object(mut top) = v else { return Err(PolicyError::new("(policy)", "must be a JSON object")) };
    let settings = take_settings(&mut top);
    let rules = match top.remove("rules") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(PolicyError::new("rules", "must be an array")),
    };
    let mut raw: RawPolicy = de(Value::Object(top), "")?;
    raw.settings = de(Value::Object(settings), "")?;
    for (i, r) in rules.into_iter().enumerate() {
        let at = format!("rules[{i}].");
        let Value::Object(mut r) = r else { return Err(PolicyError::new(&format!("rules[{i}]"), "must be an object")) };
        let settings = take_settings(&mut r);
        let mut rule: RawRule = de(Value::Object(r), &at)?;
        rule.settings = de(Value::Object(settings), &at)?;
        raw.rules.push(rule);
    }
    Policy::try_from(raw)
}

fn take_settings(obj: &mut Map<String, Value>) -> Map<String, Value> {
    SETTINGS_KEYS.iter().filter_map(|k| obj.remove(*k).map(|v| ((*k).to_string(), v))).collect()
}

/// Deserialises with the failing field's path in the error, prefixed by `at`.
fn de<T: serde::de::DeserializeOwned>(v: Value, at: &str) -> Result<T, PolicyError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let field = match (at, path.as_str()) {
            ("", "." | "") => "(policy)".to_string(),
            (at, "." | "") => at.trim_end_matches('.').to_string(),
            (at, p) => format!("{at}{p}"),
        };
        PolicyError::new(&field, trim_serde(e.inner().to_string()))
    })
}

/// serde_json appends "at line X column Y", which is noise in a log line about a field.
fn trim_serde(msg: String) -> String {
    msg.split(" at line ").next().unwrap_or(&msg).to_string()
}

impl TryFrom<RawPolicy> for Policy {
    type Error = PolicyError;

    fn try_from(raw: RawPolicy) -> Result<Self, PolicyError> {
        let embedding = validate_embedding(raw.embedding)?;
        let mut vector_store = validate_store(raw.vector_store)?;
        let fp = embedding_fingerprint(&embedding);
        vector_store.index = format!("{}_{fp}", vector_store.index_name);
        vector_store.prefix = format!("{}{fp}:", vector_store.key_prefix);
        let purge = validate_purge(raw.purge)?;
        let threshold = if embedding.provider == Provider::Local { DEFAULT_THRESHOLD_LOCAL } else { DEFAULT_THRESHOLD };
        let base = Settings {
            enabled: true,
            threshold,
            max_threshold: threshold,
            ttl_secs: DEFAULT_TTL_SECS,
            max_ttl_secs: TTL_CEILING_SECS,
            embed: EmbedOpts { last_user_messages: 1 },
            partition: PartitionOpts {
                tenant: true,
                // Each API's own credential header: OpenAI, Azure, Anthropic, Gemini.
                tenant_headers: ["authorization", "api-key", "x-api-key", "x-goog-api-key"].map(String::from).to_vec(),
                tenant_query_params: vec!["key".into()],
                route: true,
                provider: true,
                context_window: None,
            },
            store: StoreOpts { tool_calls: false, max_temperature: None },
            verify: Some(Strictness::default()),
            top_k: DEFAULT_TOP_K,
        };
        let defaults = apply_settings(&base, &raw.settings, "")?;
        let mut rules = Vec::with_capacity(raw.rules.len());
        for (i, r) in raw.rules.into_iter().enumerate() {
            let at = format!("rules[{i}]");
            if r.name.trim().is_empty() {
                return Err(PolicyError::new(&format!("{at}.name"), "must not be empty"));
            }
            let settings = apply_settings(&defaults, &r.settings, &format!("{at}."))?;
            let matcher = validate_match(r.matcher, &at)?;
            rules.push(Rule { name: r.name, matcher, settings });
        }
        if raw.max_request_body_bytes == 0 {
            return Err(PolicyError::new("maxRequestBodyBytes", "must be > 0"));
        }
        if raw.max_response_body_bytes == 0 {
            return Err(PolicyError::new("maxResponseBodyBytes", "must be > 0"));
        }
        if !is_header_name(&raw.skip_header) {
            return Err(PolicyError::new("skipHeader", "must be a lowercase HTTP header name"));
        }
        Ok(Policy {
            embedding,
            vector_store,
            defaults,
            rules,
            max_request_body_bytes: raw.max_request_body_bytes,
            max_response_body_bytes: raw.max_response_body_bytes,
            skip_header: raw.skip_header,
            purge,
            compat: raw.compat,
        })
    }
}

fn is_header_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Query parameter names are matched as sent (case-sensitive), so no lowercasing here.
fn is_query_param_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

fn validate_embedding(e: RawEmbedding) -> Result<Embedding, PolicyError> {
    if e.dimensions == 0 || e.dimensions > 8192 {
        return Err(PolicyError::new("embedding.dimensions", "must be between 1 and 8192"));
    }
    if e.timeout_ms == 0 || e.timeout_ms > 60_000 {
        return Err(PolicyError::new("embedding.timeoutMs", "must be between 1 and 60000"));
    }
    if e.max_tokens < 8 || e.max_tokens > 512 {
        return Err(PolicyError::new("embedding.maxTokens", "must be between 8 and 512"));
    }
    let (authority, path) = match (e.provider, e.url.as_deref()) {
        (Provider::Local, _) => (String::new(), String::new()),
        (_, None) => return Err(PolicyError::new("embedding.url", "is required for a remote provider")),
        (_, Some(url)) => split_url(url)
            .ok_or_else(|| PolicyError::new("embedding.url", "must be an absolute http(s) URL with a host"))?,
    };
    if e.provider != Provider::Local && e.cluster.trim().is_empty() {
        return Err(PolicyError::new("embedding.cluster", "must not be empty"));
    }
    if matches!(e.provider, Provider::Mistral | Provider::OpenaiCompatible) && e.model.is_none() {
        return Err(PolicyError::new("embedding.model", "is required for this provider"));
    }
    let auth_header = match e.auth_header {
        Some(h) => {
            let h = h.to_ascii_lowercase();
            if !is_header_name(&h) {
                return Err(PolicyError::new("embedding.authHeader", "must be an HTTP header name"));
            }
            h
        }
        None if e.provider == Provider::AzureOpenai => "api-key".into(),
        None => "authorization".into(),
    };
    Ok(Embedding {
        provider: e.provider,
        cluster: e.cluster,
        authority,
        path,
        model: e.model,
        auth_header,
        api_key: e.api_key.filter(|k| !k.is_empty()),
        dimensions: e.dimensions,
        timeout_ms: e.timeout_ms,
        max_tokens: e.max_tokens,
        parallel: e.parallel,
    })
}

/// `https://host:port/a/b?c` -> (`host:port`, `/a/b?c`).
fn split_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some((authority.to_string(), path.to_string()))
}

fn validate_store(s: RawVectorStore) -> Result<VectorStore, PolicyError> {
    if s.kind != "redis" {
        return Err(PolicyError::new("vectorStore.type", "only \"redis\" is supported"));
    }
    if s.cluster.trim().is_empty() {
        return Err(PolicyError::new("vectorStore.cluster", "must not be empty"));
    }
    let safe = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-:.".contains(&b));
    if !safe(&s.index_name) {
        return Err(PolicyError::new("vectorStore.indexName", "use letters, digits, _ - : . only"));
    }
    if !safe(&s.key_prefix) {
        return Err(PolicyError::new("vectorStore.keyPrefix", "use letters, digits, _ - : . only"));
    }
    if s.database > 15 {
        return Err(PolicyError::new("vectorStore.database", "must be between 0 and 15"));
    }
    if s.timeout_ms == 0 || s.timeout_ms > 60_000 {
        return Err(PolicyError::new("vectorStore.timeoutMs", "must be between 1 and 60000"));
    }
    if s.username.is_some() && s.password.is_none() {
        return Err(PolicyError::new("vectorStore.password", "is required when username is set"));
    }
    Ok(VectorStore {
        cluster: s.cluster,
        username: s.username,
        password: s.password,
        database: s.database,
        index: s.index_name.clone(),
        prefix: s.key_prefix.clone(),
        index_name: s.index_name,
        key_prefix: s.key_prefix,
        timeout_ms: s.timeout_ms,
    })
}

/// Overlays `raw` on `base`; `at` prefixes field names in errors (`rules[0].`).
fn apply_settings(base: &Settings, raw: &RawSettings, at: &str) -> Result<Settings, PolicyError> {
    let f = |name: &str| format!("{at}{name}");
    let mut s = base.clone();
    if let Some(v) = raw.enabled {
        s.enabled = v;
    }
    if let Some(t) = raw.threshold {
        if !(0.0..=2.0).contains(&t) {
            return Err(PolicyError::new(&f("threshold"), "must be a cosine distance between 0 and 2"));
        }
        s.threshold = t;
        // The operator limit follows the threshold unless set explicitly below.
        s.max_threshold = t;
    }
    if let Some(m) = raw.max_threshold {
        if !(0.0..=2.0).contains(&m) {
            return Err(PolicyError::new(&f("maxThreshold"), "must be between 0 and 2"));
        }
        s.max_threshold = m;
    }
    if s.max_threshold < s.threshold {
        return Err(PolicyError::new(&f("maxThreshold"), "must be >= threshold"));
    }
    if let Some(m) = raw.max_ttl_seconds {
        if m == 0 || m > TTL_CEILING_SECS {
            return Err(PolicyError::new(&f("maxTtlSeconds"), "must be between 1 and 2592000 (30 days)"));
        }
        s.max_ttl_secs = m;
    }
    if let Some(t) = raw.ttl_seconds {
        if t == 0 || t > TTL_CEILING_SECS {
            return Err(PolicyError::new(&f("ttlSeconds"), "must be between 1 and 2592000 (30 days)"));
        }
        s.ttl_secs = t;
    }
    if s.ttl_secs > s.max_ttl_secs {
        return Err(PolicyError::new(&f("ttlSeconds"), "must be <= maxTtlSeconds"));
    }
    if let Some(e) = &raw.embed {
        if let Some(n) = e.last_user_messages {
            if n == 0 || n > 16 {
                return Err(PolicyError::new(&f("embed.lastUserMessages"), "must be between 1 and 16"));
            }
            s.embed.last_user_messages = n;
        }
    }
    if let Some(p) = &raw.partition {
        if let Some(t) = p.tenant {
            s.partition.tenant = t;
        }
        if let Some(h) = &p.tenant_headers {
            let h: Vec<String> = h.iter().map(|x| x.to_ascii_lowercase()).collect();
            if h.iter().any(|x| !is_header_name(x)) {
                return Err(PolicyError::new(&f("partition.tenantHeaders"), "must be HTTP header names"));
            }
            s.partition.tenant_headers = h;
        }
        if let Some(q) = &p.tenant_query_params {
            if q.iter().any(|x| !is_query_param_name(x)) {
                return Err(PolicyError::new(&f("partition.tenantQueryParams"), "must be query parameter names"));
            }
            s.partition.tenant_query_params = q.clone();
        }
        if let Some(r) = p.route {
            s.partition.route = r;
        }
        if let Some(v) = p.provider {
            s.partition.provider = v;
        }
        if let Some(w) = p.context_window {
            s.partition.context_window = w;
        }
    }
    if let Some(st) = &raw.store {
        if let Some(t) = st.tool_calls {
            s.store.tool_calls = t;
        }
        if let Some(m) = st.max_temperature {
            if let Some(v) = m {
                if !(0.0..=2.0).contains(&v) {
                    return Err(PolicyError::new(&f("store.maxTemperature"), "must be between 0 and 2"));
                }
            }
            s.store.max_temperature = m;
        }
    }
    if let Some(v) = &raw.verify {
        s.verify = match v.as_str() {
            "off" => None,
            code => Some(
                Strictness::from_code(code)
                    .ok_or_else(|| PolicyError::new(&f("verify"), "must be one of strict, balanced, off"))?,
            ),
        };
    }
    if let Some(k) = raw.top_k {
        if !(1..=MAX_TOP_K).contains(&k) {
            return Err(PolicyError::new(&f("topK"), format!("must be between 1 and {MAX_TOP_K}")));
        }
        s.top_k = k;
    }
    Ok(s)
}

fn validate_match(m: RawMatch, at: &str) -> Result<RuleMatch, PolicyError> {
    if m.path_prefix.is_none() && m.path_template.is_none() && m.route_name.is_none() && m.methods.is_empty() {
        return Err(PolicyError::new(
            &format!("{at}.match"),
            "needs at least one of pathPrefix, pathTemplate, methods, routeName",
        ));
    }
    if let Some(p) = &m.path_prefix {
        if !p.starts_with('/') {
            return Err(PolicyError::new(&format!("{at}.match.pathPrefix"), "must start with /"));
        }
    }
    let path_template = match m.path_template {
        None => None,
        Some(t) => {
            if !t.starts_with('/') {
                return Err(PolicyError::new(&format!("{at}.match.pathTemplate"), "must start with /"));
            }
            let segs: Vec<String> = t.split('/').skip(1).map(str::to_string).collect();
            if segs.iter().rev().skip(1).any(|s| s == "**") {
                return Err(PolicyError::new(
                    &format!("{at}.match.pathTemplate"),
                    "** is only allowed as the last segment",
                ));
            }
            Some(segs)
        }
    };
    Ok(RuleMatch {
        path_prefix: m.path_prefix,
        path_template,
        methods: m.methods.iter().map(|x| x.to_ascii_uppercase()).collect(),
        route_name: m.route_name,
    })
}

impl RuleMatch {
    pub fn matches(&self, method: &str, path: &str, route_name: Option<&str>) -> bool {
        let path = path.split('?').next().unwrap_or(path);
        if !self.methods.is_empty() && !self.methods.iter().any(|m| m.eq_ignore_ascii_case(method)) {
            return false;
        }
        if let Some(want) = &self.route_name {
            if route_name != Some(want.as_str()) {
                return false;
            }
        }
        if let Some(p) = &self.path_prefix {
            if !path.starts_with(p.as_str()) {
                return false;
            }
        }
        if let Some(t) = &self.path_template {
            if !template_matches(t, path) {
                return false;
            }
        }
        true
    }
}

fn template_matches(template: &[String], path: &str) -> bool {
    let segs: Vec<&str> = path.split('/').skip(1).collect();
    for (i, t) in template.iter().enumerate() {
        if t == "**" {
            return true;
        }
        let Some(s) = segs.get(i) else { return false };
        let is_var = t.starts_with('{') && t.ends_with('}');
        if is_var {
            if s.is_empty() {
                return false;
            }
        } else if t != s {
            return false;
        }
    }
    segs.len() == template.len()
}

impl Policy {
    /// The settings for a request: the first matching rule's, else the defaults; also the rule's name.
    pub fn settings_for(&self, method: &str, path: &str, route_name: Option<&str>) -> (&Settings, Option<&str>) {
        self.rules
            .iter()
            .find(|r| r.matcher.matches(method, path, route_name))
            .map(|r| (&r.settings, Some(r.name.as_str())))
            .unwrap_or((&self.defaults, None))
    }
}

#[cfg(test)]
#[path = "policy_schema_tests.rs"]
mod schema_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "embedding": {"provider": "openai-compatible", "url": "http://emb:8080/v1/embeddings",
                          "model": "m", "dimensions": 64}
        })
    }

    fn parse(v: serde_json::Value) -> Result<Policy, PolicyError> {
        parse_policy(v.to_string().as_bytes())
    }

    #[test]
    fn minimal_policy_gets_defaults() {
        let p = parse(base()).expect("valid");
        assert_eq!(p.embedding.authority, "emb:8080");
        assert_eq!(p.embedding.path, "/v1/embeddings");
        assert_eq!(p.embedding.auth_header, "authorization");
        assert_eq!(p.vector_store.cluster, "redis");
        assert_eq!(p.defaults.threshold, DEFAULT_THRESHOLD);
        assert_eq!(p.defaults.max_threshold, DEFAULT_THRESHOLD);
        assert_eq!(p.defaults.ttl_secs, 3600);
        assert!(p.defaults.partition.tenant);
    }

    #[test]
    fn azure_defaults_to_api_key_header() {
        let mut v = base();
        v["embedding"]["provider"] = "azure-openai".into();
        v["embedding"]["url"] =
            "https://x.openai.azure.com/openai/deployments/e/embeddings?api-version=2024-02-01".into();
        let p = parse(v).expect("valid");
        assert_eq!(p.embedding.auth_header, "api-key");
        assert_eq!(p.embedding.path, "/openai/deployments/e/embeddings?api-version=2024-02-01");
    }

    #[test]
    fn errors_name_the_field() {
        let mut v = base();
        v["threshold"] = "abc".into();
        assert_eq!(parse(v).unwrap_err().field, "threshold");
        let mut v = base();
        v["embedding"]["provider"] = "nope".into();
        assert_eq!(parse(v).unwrap_err().field, "embedding.provider");
        let mut v = base();
        v["vectorStore"] = serde_json::json!({"database": 99});
        assert_eq!(parse(v).unwrap_err().field, "vectorStore.database");
        let mut v = base();
        v["rules"] = serde_json::json!([{"name": "a", "match": {"pathPrefix": "/x"}, "threshold": 5}]);
        assert_eq!(parse(v).unwrap_err().field, "rules[0].threshold");
        let mut v = base();
        v["bogus"] = 1.into();
        assert!(parse(v).is_err());
        assert_eq!(parse_policy(b"not json").unwrap_err().field, "(policy)");
    }

    #[test]
    fn remote_provider_needs_url() {
        let mut v = base();
        v["embedding"].as_object_mut().expect("obj").remove("url");
        assert_eq!(parse(v).unwrap_err().field, "embedding.url");
        let mut v = base();
        v["embedding"]["provider"] = "local".into();
        v["embedding"].as_object_mut().expect("obj").remove("url");
        assert!(parse(v).is_ok());
    }

    #[test]
    fn threshold_limits() {
        let mut v = base();
        v["threshold"] = 0.2.into();
        let p = parse(v).expect("valid");
        assert_eq!(p.defaults.max_threshold, 0.2);
        let mut v = base();
        v["threshold"] = 0.2.into();
        v["maxThreshold"] = 0.1.into();
        assert_eq!(parse(v).unwrap_err().field, "maxThreshold");
        let mut v = base();
        v["threshold"] = 0.1.into();
        v["maxThreshold"] = 0.3.into();
        assert_eq!(parse(v).expect("valid").defaults.max_threshold, 0.3);
    }

    #[test]
    fn ttl_capped_at_30_days() {
        let mut v = base();
        v["ttlSeconds"] = (TTL_CEILING_SECS + 1).into();
        assert_eq!(parse(v).unwrap_err().field, "ttlSeconds");
    }

    #[test]
    fn rules_override_and_match() {
        let mut v = base();
        v["threshold"] = 0.05.into();
        v["rules"] = serde_json::json!([
            {"name": "faq", "match": {"pathPrefix": "/faq/"}, "threshold": 0.3, "ttlSeconds": 60},
            {"name": "az", "match": {"pathTemplate": "/openai/deployments/{d}/chat/completions", "methods": ["post"]},
             "partition": {"tenant": false, "contextWindow": 2}},
            {"name": "off", "match": {"routeName": "admin"}, "enabled": false}
        ]);
        let p = parse(v).expect("valid");
        let (s, n) = p.settings_for("POST", "/faq/v1/chat/completions", None);
        assert_eq!((s.threshold, s.ttl_secs, n), (0.3, 60, Some("faq")));
        let (s, n) = p.settings_for("POST", "/openai/deployments/gpt/chat/completions?api-version=1", None);
        assert_eq!(n, Some("az"));
        assert!(!s.partition.tenant);
        assert_eq!(s.partition.context_window, Some(2));
        assert_eq!(s.threshold, 0.05);
        let (_, n) = p.settings_for("GET", "/openai/deployments/gpt/chat/completions", None);
        assert_eq!(n, None);
        let (s, n) = p.settings_for("POST", "/v1/chat/completions", Some("admin"));
        assert_eq!((s.enabled, n), (false, Some("off")));
    }

    #[test]
    fn shipped_example_policies_parse() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("envoy/policies");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("envoy/policies exists") {
            let path = entry.expect("entry").path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let bytes = std::fs::read(&path).expect("readable");
            if let Err(e) = parse_policy(&bytes) {
                panic!("{}: {e}", path.display());
            }
            n += 1;
        }
        assert!(n >= 4, "expected the four provider examples, found {n}");
    }

    #[test]
    fn template_segments() {
        let t: Vec<String> = "/a/{x}/c".split('/').skip(1).map(str::to_string).collect();
        assert!(template_matches(&t, "/a/b/c"));
        assert!(!template_matches(&t, "/a/b/c/d"));
        assert!(!template_matches(&t, "/a//c"));
        let t: Vec<String> = "/a/**".split('/').skip(1).map(str::to_string).collect();
        assert!(template_matches(&t, "/a/b/c"));
    }
}
