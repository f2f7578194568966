//! Other gateways' cache headers, so that clients written for them work here unchanged: Fastly AI
//! Accelerator's and Cloudflare AI Gateway's. Each vendor's set is switched on or off by the
//! policy's `compat` (both on by default). Values are converted to our units here; `decision`
//! bounds them by the operator's limits like our own headers.
//!
//! Invalid values are ignored (the request is cached as if the header were absent): a header we
//! cannot read must not loosen anything, and skipping the cache on garbage would hide the typo.

use crate::core::policy::Compat;

/// Fastly: the minimum cosine *similarity* of a hit (default 0.75 there; lower = more hits).
pub const FASTLY_THRESHOLD: &str = "x-semantic-threshold";
/// Fastly: an extra key; requests only share entries with requests of the same key.
pub const FASTLY_KEY: &str = "x-semantic-cache-key";
/// Fastly: `{"semantic_cache_enabled": false}` turns the cache off for this request.
pub const FASTLY_OVERRIDES: &str = "x-settings-overrides";
/// Fastly's response header: `HIT` or `MISS`.
pub const FASTLY_STATUS: &str = "x-semantic-cache";
/// Cloudflare: skip the cache (`true`); the second is the older name.
pub const CF_SKIP: [&str; 2] = ["cf-aig-skip-cache", "cf-skip-cache"];
/// Cloudflare: TTL of the stored answer in seconds.
pub const CF_TTL: &str = "cf-aig-cache-ttl";
/// Cloudflare's older TTL header, documented in milliseconds when it was introduced.
pub const CF_TTL_MS: &str = "cf-cache-ttl";
/// Cloudflare: a custom cache key; requests with the same key share one exact entry.
pub const CF_KEY: &str = "cf-aig-cache-key";
/// Cloudflare's response header: `HIT` or `MISS`.
pub const CF_STATUS: &str = "cf-aig-cache-status";
/// Cloudflare documents 60 s as the shortest TTL; shorter values are raised to it.
pub const CF_MIN_TTL_SECS: u64 = 60;
/// A custom key longer than this is ignored (it is hashed, but a header that long is a mistake).
pub const MAX_CUSTOM_KEY_LEN: usize = 1024;

/// What the vendors' request headers ask for, in our units (before the operator's bounds).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct VendorRequest {
    /// Fastly's similarity as a cosine distance (1 - similarity).
    pub distance: Option<f64>,
    /// Fastly's `x-semantic-cache-key`: an extra partition key.
    pub user_key: Option<String>,
    /// Fastly's `x-settings-overrides` turns the cache off.
    pub disable: bool,
    /// Cloudflare's skip header.
    pub skip: bool,
    /// Cloudflare's TTL, in seconds.
    pub ttl_secs: Option<u64>,
    /// Cloudflare's custom cache key: the exact entry is keyed by it instead of the prompt.
    pub exact_key: Option<String>,
}

/// Reads the switched-on vendors' request headers; `header` looks one up by lowercase name.
pub fn read_request(compat: Compat, header: &dyn Fn(&str) -> Option<String>) -> VendorRequest {
    let mut v = VendorRequest::default();
    if compat.fastly {
        v.distance = header(FASTLY_THRESHOLD).as_deref().and_then(similarity_to_distance);
        v.user_key = header(FASTLY_KEY).map(|k| k.trim().to_string()).filter(|k| !k.is_empty());
        v.disable = header(FASTLY_OVERRIDES).as_deref().is_some_and(overrides_disable);
    }
    if compat.cloudflare {
        v.skip = CF_SKIP.iter().any(|h| header(h).as_deref().is_some_and(is_true));
        v.ttl_secs = cf_ttl_secs(header(CF_TTL).as_deref(), header(CF_TTL_MS).as_deref());
        v.exact_key =
            header(CF_KEY).map(|k| k.trim().to_string()).filter(|k| !k.is_empty() && k.len() <= MAX_CUSTOM_KEY_LEN);
    }
    v
}

/// Fastly's similarity (cosine similarity, -1..=1) as our cosine distance (0..=2). Anything else
/// (not a number, out of range) is `None`: ignored.
pub fn similarity_to_distance(v: &str) -> Option<f64> {
    let s: f64 = v.trim().parse().ok()?;
    (s.is_finite() && (-1.0..=1.0).contains(&s)).then_some(1.0 - s)
}

/// `x-settings-overrides: {"semantic_cache_enabled": false}`. Anything that does not parse leaves
/// the cache on: a malformed header must not silently change behaviour.
fn overrides_disable(v: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(v)
        .ok()
        .and_then(|o| o.get("semantic_cache_enabled").and_then(serde_json::Value::as_bool))
        == Some(false)
}

fn is_true(v: &str) -> bool {
    let v = v.trim();
    v.eq_ignore_ascii_case("true") || v == "1"
}

/// `cf-aig-cache-ttl` (seconds) wins over the older `cf-cache-ttl` (milliseconds, rounded up to
/// whole seconds). A positive integer is raised to Cloudflare's 60 s minimum; others are ignored.
pub fn cf_ttl_secs(aig_secs: Option<&str>, old_ms: Option<&str>) -> Option<u64> {
    let positive = |v: &str| v.trim().parse::<u64>().ok().filter(|n| *n > 0);
    let secs = match aig_secs.and_then(positive) {
        Some(s) => s,
        None => old_ms.and_then(positive)?.div_ceil(1000),
    };
    Some(secs.max(CF_MIN_TTL_SECS))
}

/// The switched-on vendors' response headers for `status` (`HIT`, `MISS` or `BYPASS`). Both
/// vendors document only HIT and MISS: a BYPASS came from upstream, so it is a MISS there (as
/// Fastly's own `X-Cache` reports a PASS).
pub fn response_headers(compat: Compat, status: &str) -> Vec<(String, String)> {
    let v = if status == "HIT" { "HIT" } else { "MISS" };
    let mut h = Vec::new();
    if compat.fastly {
        h.push((FASTLY_STATUS.to_string(), v.to_string()));
    }
    if compat.cloudflare {
        h.push((CF_STATUS.to_string(), v.to_string()));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const BOTH: Compat = Compat { fastly: true, cloudflare: true };

    fn read(compat: Compat, pairs: &[(&str, &str)]) -> VendorRequest {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        read_request(compat, &|n: &str| m.get(n).cloned())
    }

    #[test]
    fn fastly_threshold_is_a_similarity() {
        let d = |v| read(BOTH, &[(FASTLY_THRESHOLD, v)]).distance;
        assert_eq!(d("0.75"), Some(0.25));
        assert_eq!(d(" 1 "), Some(0.0));
        assert_eq!(d("0.99").map(|x| (x * 1e6).round() / 1e6), Some(0.01));
        assert_eq!(d("0"), Some(1.0));
        assert_eq!(d("-1"), Some(2.0));
        for bad in ["1.01", "-1.5", "abc", "NaN", "inf", ""] {
            assert_eq!(d(bad), None, "{bad}");
        }
    }

    #[test]
    fn fastly_key_and_overrides() {
        let v = read(BOTH, &[(FASTLY_KEY, " team-a "), (FASTLY_OVERRIDES, r#"{"semantic_cache_enabled": false}"#)]);
        assert_eq!(v.user_key.as_deref(), Some("team-a"));
        assert!(v.disable);
        assert_eq!(read(BOTH, &[(FASTLY_KEY, "  ")]).user_key, None);
        for keep in [r#"{"semantic_cache_enabled": true}"#, "{", r#"{"semantic_cache_enabled": "no"}"#] {
            assert!(!read(BOTH, &[(FASTLY_OVERRIDES, keep)]).disable, "{keep}");
        }
    }

    #[test]
    fn cloudflare_skip() {
        for h in CF_SKIP {
            assert!(read(BOTH, &[(h, "true")]).skip, "{h}");
            assert!(read(BOTH, &[(h, "TRUE")]).skip, "{h}");
            assert!(read(BOTH, &[(h, "1")]).skip, "{h}");
            assert!(!read(BOTH, &[(h, "false")]).skip, "{h}");
            assert!(!read(BOTH, &[(h, "maybe")]).skip, "{h}");
        }
    }

    #[test]
    fn cloudflare_ttl_units() {
        assert_eq!(cf_ttl_secs(Some("3600"), None), Some(3600));
        assert_eq!(cf_ttl_secs(None, Some("3600000")), Some(3600));
        assert_eq!(cf_ttl_secs(None, Some("90001")), Some(91));
        // below Cloudflare's minimum: raised to 60 s
        assert_eq!(cf_ttl_secs(Some("5"), None), Some(60));
        assert_eq!(cf_ttl_secs(None, Some("3600")), Some(60));
        // the current header wins; an invalid one falls back to the older header
        assert_eq!(cf_ttl_secs(Some("120"), Some("900000")), Some(120));
        assert_eq!(cf_ttl_secs(Some("x"), Some("900000")), Some(900));
        for bad in ["0", "-5", "1.5", "abc", ""] {
            assert_eq!(cf_ttl_secs(Some(bad), None), None, "{bad}");
            assert_eq!(cf_ttl_secs(None, Some(bad)), None, "{bad}");
        }
        assert_eq!(read(BOTH, &[(CF_TTL, "600")]).ttl_secs, Some(600));
    }

    #[test]
    fn cloudflare_key() {
        assert_eq!(read(BOTH, &[(CF_KEY, " k1 ")]).exact_key.as_deref(), Some("k1"));
        assert_eq!(read(BOTH, &[(CF_KEY, " ")]).exact_key, None);
        assert_eq!(read(BOTH, &[(CF_KEY, &"k".repeat(MAX_CUSTOM_KEY_LEN + 1))]).exact_key, None);
    }

    #[test]
    fn switched_off_vendors_are_ignored() {
        let all = [
            (FASTLY_THRESHOLD, "0.5"),
            (FASTLY_KEY, "k"),
            (FASTLY_OVERRIDES, r#"{"semantic_cache_enabled": false}"#),
            (CF_SKIP[0], "true"),
            (CF_SKIP[1], "true"),
            (CF_TTL, "600"),
            (CF_TTL_MS, "600000"),
            (CF_KEY, "k"),
        ];
        assert_eq!(read(Compat { fastly: false, cloudflare: false }, &all), VendorRequest::default());
        let cf_only = read(Compat { fastly: false, cloudflare: true }, &all);
        assert_eq!((cf_only.distance, cf_only.user_key.as_deref(), cf_only.disable), (None, None, false));
        assert!(cf_only.skip && cf_only.ttl_secs == Some(600) && cf_only.exact_key.is_some());
        let fastly_only = read(Compat { fastly: true, cloudflare: false }, &all);
        assert_eq!((fastly_only.skip, fastly_only.ttl_secs, fastly_only.exact_key), (false, None, None));
        assert!(fastly_only.distance == Some(0.5) && fastly_only.disable);
    }

    #[test]
    fn response_status_headers() {
        let h = |c, s| response_headers(c, s);
        let pairs = |v: &str| vec![(FASTLY_STATUS.to_string(), v.to_string()), (CF_STATUS.to_string(), v.to_string())];
        assert_eq!(h(BOTH, "HIT"), pairs("HIT"));
        assert_eq!(h(BOTH, "MISS"), pairs("MISS"));
        assert_eq!(h(BOTH, "BYPASS"), pairs("MISS"));
        assert_eq!(h(Compat { fastly: true, cloudflare: false }, "HIT"), vec![(FASTLY_STATUS.into(), "HIT".into())]);
        assert_eq!(h(Compat { fastly: false, cloudflare: true }, "MISS"), vec![(CF_STATUS.into(), "MISS".into())]);
        assert!(h(Compat { fastly: false, cloudflare: false }, "HIT").is_empty());
    }
}
