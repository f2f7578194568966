//! Header names the cache reads and writes, and the response headers of a bypass.

use crate::core::bypass::BypassReason;

pub const STATUS_HEADER: &str = "x-cache-status";
pub const MATCH_HEADER: &str = "x-cache-match";
pub const DISTANCE_HEADER: &str = "x-cache-distance";
pub const REASON_HEADER: &str = "x-cache-bypass-reason";
/// On a MISS whose semantic candidates were all refused by the verifier: the nearest one's reason.
pub const REFUSED_HEADER: &str = "x-cache-refused";
/// Request: a per-request threshold as a cosine distance (Fastly's `x-semantic-threshold` is a
/// similarity, see `compat`).
pub const DISTANCE_REQUEST_HEADER: &str = "x-semantic-distance";

/// Response headers of a request that bypassed the cache.
pub fn bypass_headers(reason: BypassReason) -> Vec<(String, String)> {
    vec![(STATUS_HEADER.to_string(), "BYPASS".to_string()), (REASON_HEADER.to_string(), reason.code().to_string())]
}
