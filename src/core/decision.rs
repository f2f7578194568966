//! Per-request directives from the matched settings and the client's request headers.
//!
//! Thresholds are cosine *distances*: smaller is stricter. A client may choose any threshold up to
//! the operator limit (`maxThreshold`); anything looser is clamped to that limit.

use crate::core::bypass::BypassReason;
use crate::core::compat::{self, VendorRequest};
use crate::core::headers::DISTANCE_REQUEST_HEADER;
use crate::core::key::DEFAULT_USER_KEY;
use crate::core::policy::{Policy, Settings};

/// The request headers the cache reads (ours, and the switched-on vendors' already converted).
#[derive(Debug, Default, Clone)]
pub struct RequestHeaders {
    pub cache_control: Option<String>,
    /// `x-semantic-distance`: a cosine distance (ours).
    pub distance: Option<String>,
    /// The policy's `skipHeader` is present.
    pub skip: bool,
    pub vendor: VendorRequest,
}

/// Reads the request headers; `header` looks one up by lowercase name.
pub fn read_headers(policy: &Policy, header: &dyn Fn(&str) -> Option<String>) -> RequestHeaders {
    RequestHeaders {
        cache_control: header("cache-control"),
        distance: header(DISTANCE_REQUEST_HEADER),
        skip: header(&policy.skip_header).is_some(),
        vendor: compat::read_request(policy.compat, header),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Directives {
    /// Look the request up (false for `no-cache`: go upstream, still store).
    pub lookup: bool,
    pub store: bool,
    pub threshold: f64,
    pub ttl_secs: u64,
    pub user_key: String,
    /// A client-chosen exact key (Cloudflare's `cf-aig-cache-key`): the entry is found by this key
    /// alone, without an embedding or a semantic search.
    pub exact_key: Option<String>,
}

/// Either directives, or the reason the request bypasses the cache entirely.
pub fn decide(settings: &Settings, h: &RequestHeaders) -> Result<Directives, BypassReason> {
    if !settings.enabled || h.vendor.disable {
        return Err(BypassReason::Disabled);
    }
    if h.skip || h.vendor.skip {
        return Err(BypassReason::SkipHeader);
    }
    let cc = CacheControl::parse(h.cache_control.as_deref().unwrap_or(""));
    if cc.no_store {
        return Err(BypassReason::NoStore);
    }
    // Our distance header first, then the vendor's; either way never looser than the operator allows.
    let asked = h.distance.as_deref().and_then(|t| t.trim().parse::<f64>().ok()).filter(|t| t.is_finite());
    let threshold = match asked.or(h.vendor.distance) {
        Some(t) => t.clamp(0.0, settings.max_threshold),
        None => settings.threshold,
    };
    // The shortest TTL asked for wins; every one is capped by the operator.
    let ttl_secs = match (cc.max_age, h.vendor.ttl_secs) {
        (Some(0), _) => return Err(BypassReason::NoStore),
        (Some(a), Some(v)) => a.min(v),
        (a, v) => a.or(v).unwrap_or(settings.ttl_secs),
    }
    .min(settings.max_ttl_secs);
    let user_key = h.vendor.user_key.clone().unwrap_or_else(|| DEFAULT_USER_KEY.to_string());
    Ok(Directives {
        lookup: !cc.no_cache,
        store: true,
        threshold,
        ttl_secs,
        user_key,
        exact_key: h.vendor.exact_key.clone(),
    })
}

#[derive(Debug, Default, PartialEq)]
struct CacheControl {
    no_cache: bool,
    no_store: bool,
    max_age: Option<u64>,
}

impl CacheControl {
    fn parse(v: &str) -> Self {
        let mut cc = CacheControl::default();
        for d in v.split(',') {
            let d = d.trim().to_ascii_lowercase();
            match d.split_once('=') {
                None if d == "no-cache" => cc.no_cache = true,
                None if d == "no-store" => cc.no_store = true,
                Some((k, val)) if k.trim() == "max-age" => {
                    cc.max_age = val.trim().trim_matches('"').parse().ok();
                }
                _ => {}
            }
        }
        cc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::policy::parse_policy;

    fn settings() -> Settings {
        let p = parse_policy(
            br#"{"embedding":{"provider":"local","dimensions":4},"threshold":0.1,"maxThreshold":0.2,
                "ttlSeconds":100,"maxTtlSeconds":1000}"#,
        )
        .expect("valid");
        p.defaults
    }

    fn vendor(v: VendorRequest) -> RequestHeaders {
        RequestHeaders { vendor: v, ..Default::default() }
    }

    #[test]
    fn defaults() {
        let d = decide(&settings(), &RequestHeaders::default()).expect("cacheable");
        assert_eq!(
            d,
            Directives {
                lookup: true,
                store: true,
                threshold: 0.1,
                ttl_secs: 100,
                user_key: "_default_".into(),
                exact_key: None
            }
        );
    }

    #[test]
    fn distance_header_is_clamped() {
        let s = settings();
        let t = |v: &str| {
            decide(&s, &RequestHeaders { distance: Some(v.into()), ..Default::default() }).expect("ok").threshold
        };
        assert_eq!(t("0.05"), 0.05);
        assert_eq!(t("0.15"), 0.15);
        assert_eq!(t("0.9"), 0.2);
        assert_eq!(t("-1"), 0.0);
        assert_eq!(t("abc"), 0.1);
        assert_eq!(t("NaN"), 0.1);
    }

    #[test]
    fn vendor_distance_is_bounded_and_ours_wins() {
        let s = settings();
        let t = |h: RequestHeaders| decide(&s, &h).expect("ok").threshold;
        // Fastly similarity 0.99 -> distance 0.01: stricter than the policy
        let strict = VendorRequest { distance: Some(0.01), ..Default::default() };
        assert_eq!(t(vendor(strict.clone())), 0.01);
        // similarity 0.5 -> distance 0.5: clamped to maxThreshold
        let loose = VendorRequest { distance: Some(0.5), ..Default::default() };
        assert_eq!(t(vendor(loose)), 0.2);
        // x-semantic-distance beside it wins; an unreadable one falls back to the vendor's
        let both = RequestHeaders { distance: Some("0.15".into()), ..vendor(strict.clone()) };
        assert_eq!(t(both), 0.15);
        let junk = RequestHeaders { distance: Some("x".into()), ..vendor(strict) };
        assert_eq!(t(junk), 0.01);
    }

    #[test]
    fn cache_control() {
        let s = settings();
        let d = |v: &str| decide(&s, &RequestHeaders { cache_control: Some(v.into()), ..Default::default() });
        assert!(!d("no-cache").expect("ok").lookup);
        assert!(d("no-cache").expect("ok").store);
        assert_eq!(d("no-store"), Err(BypassReason::NoStore));
        assert_eq!(d("private, NO-STORE"), Err(BypassReason::NoStore));
        assert_eq!(d("max-age=50").expect("ok").ttl_secs, 50);
        assert_eq!(d("max-age=5000").expect("ok").ttl_secs, 1000);
        assert_eq!(d("max-age=0"), Err(BypassReason::NoStore));
        assert_eq!(d("max-age=x").expect("ok").ttl_secs, 100);
    }

    #[test]
    fn vendor_ttl_is_capped_and_the_shorter_wins() {
        let s = settings();
        let ttl = |cc: Option<&str>, v: Option<u64>| {
            let h = RequestHeaders {
                cache_control: cc.map(str::to_string),
                ..vendor(VendorRequest { ttl_secs: v, ..Default::default() })
            };
            decide(&s, &h).map(|d| d.ttl_secs)
        };
        assert_eq!(ttl(None, Some(600)), Ok(600));
        assert_eq!(ttl(None, Some(5000)), Ok(1000));
        assert_eq!(ttl(Some("max-age=70"), Some(600)), Ok(70));
        assert_eq!(ttl(Some("max-age=900"), Some(600)), Ok(600));
        assert_eq!(ttl(Some("max-age=0"), Some(600)), Err(BypassReason::NoStore));
    }

    #[test]
    fn overrides_and_skip() {
        let s = settings();
        let off = vendor(VendorRequest { disable: true, ..Default::default() });
        assert_eq!(decide(&s, &off), Err(BypassReason::Disabled));
        let cf_skip = vendor(VendorRequest { skip: true, ..Default::default() });
        assert_eq!(decide(&s, &cf_skip), Err(BypassReason::SkipHeader));
        assert_eq!(decide(&s, &RequestHeaders { skip: true, ..Default::default() }), Err(BypassReason::SkipHeader));
        let mut disabled = s.clone();
        disabled.enabled = false;
        assert_eq!(decide(&disabled, &RequestHeaders::default()), Err(BypassReason::Disabled));
    }

    #[test]
    fn user_and_exact_keys() {
        let s = settings();
        let v = VendorRequest { user_key: Some("team-a".into()), exact_key: Some("k1".into()), ..Default::default() };
        let d = decide(&s, &vendor(v)).expect("ok");
        assert_eq!((d.user_key.as_str(), d.exact_key.as_deref()), ("team-a", Some("k1")));
    }

    #[test]
    fn read_headers_follows_the_compat_switches() {
        use std::collections::HashMap;
        let m: HashMap<&str, &str> = [
            ("x-semantic-distance", "0.05"),
            ("x-semantic-threshold", "0.9"),
            ("cf-aig-cache-key", "k"),
            ("x-semantic-cache-skip", "1"),
        ]
        .into();
        let h = |n: &str| m.get(n).map(|v| v.to_string());
        let mut p = parse_policy(br#"{"embedding":{"provider":"local","dimensions":4}}"#).expect("valid");
        let r = read_headers(&p, &h);
        assert_eq!(r.distance.as_deref(), Some("0.05"));
        assert!(r.skip);
        assert!(r.vendor.distance.is_some() && r.vendor.exact_key.is_some());
        p.compat = crate::core::policy::Compat { fastly: false, cloudflare: false };
        let r = read_headers(&p, &h);
        // ours are read whatever the switches say
        assert_eq!(r.distance.as_deref(), Some("0.05"));
        assert_eq!(r.vendor, VendorRequest::default());
    }
}
