//! Per-request facts for access logs. The host writes each as a proxy-wasm property, which Envoy
//! keeps in the request's filter state under `wasm.<name>`: an access log prints it with
//! `%FILTER_STATE(wasm.semantic_cache.status:PLAIN)%` (envoy/access-log-format.txt).

/// `HIT`, `MISS` or `BYPASS`.
pub const STATUS: &str = "semantic_cache.status";
/// `exact` or `semantic` (hits only).
pub const TIER: &str = "semantic_cache.tier";
/// The served entry's COSINE distance, 4 decimals (`0.0000` for an exact hit).
pub const DISTANCE: &str = "semantic_cache.distance";
/// The nearest refused candidate's verifier reason, on a miss.
pub const REFUSED: &str = "semantic_cache.refused";
/// `x-cache-bypass-reason`, on a bypass.
pub const BYPASS_REASON: &str = "semantic_cache.bypass_reason";
/// The partition tag: a hash of model, tenant credential, route, user key and context.
pub const PARTITION: &str = "semantic_cache.partition";

pub const ALL: [&str; 6] = [STATUS, TIER, DISTANCE, REFUSED, BYPASS_REASON, PARTITION];
