//! Per-request directives from the matched settings and the client's request headers.
//!
//! Thresholds are cosine *distances*: smaller is stricter. A client may choose any threshold up to
//! the operator limit (`maxThreshold`); anything looser is clamped to that limit.

use crate::core::bypass::BypassReason;
use crate::core::key::DEFAULT_USER_KEY;
use crate::core::policy::Settings;

/// The request headers the cache reads. Values are raw header values, `None` when absent.
#[derive(Debug, Default, Clone)]
pub struct RequestHeaders<'a> {
    pub cache_control: Option<&'a str>,
    pub threshold: Option<&'a str>,
    pub cache_key: Option<&'a str>,
    pub settings_overrides: Option<&'a str>,
    pub skip: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Directives {
    /// Look the request up (false for `no-cache`: go upstream, still store).
    pub lookup: bool,
    pub store: bool,
    pub threshold: f64,
    pub ttl_secs: u64,
    pub user_key: String,
}

/// Either directives, or the reason the request bypasses the cache entirely.
pub fn decide(settings: &Settings, h: &RequestHeaders) -> Result<Directives, BypassReason> {
    if !settings.enabled {
        return Err(BypassReason::Disabled);
    }
    if h.skip {
        return Err(BypassReason::SkipHeader);
    }
    if let Some(o) = h.settings_overrides {
        if overrides_disable(o) {
            return Err(BypassReason::Disabled);
        }
    }
    let cc = CacheControl::parse(h.cache_control.unwrap_or(""));
    if cc.no_store {
        return Err(BypassReason::NoStore);
    }
    let threshold = match h.threshold.and_then(|t| t.trim().parse::<f64>().ok()) {
        Some(t) if t.is_finite() => t.clamp(0.0, settings.max_threshold),
        _ => settings.threshold,
    };
    let ttl_secs = match cc.max_age {
        Some(0) => return Err(BypassReason::NoStore),
        Some(a) => a.min(settings.max_ttl_secs),
        None => settings.ttl_secs,
    };
    let user_key = h.cache_key.map(str::trim).filter(|k| !k.is_empty()).unwrap_or(DEFAULT_USER_KEY).to_string();
    Ok(Directives { lookup: !cc.no_cache, store: true, threshold, ttl_secs, user_key })
}

/// `x-settings-overrides: {"semantic_cache_enabled": false}` (Fastly's header). Anything that does
/// not parse leaves the cache on: a malformed header must not silently change behaviour.
fn overrides_disable(v: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(v)
        .ok()
        .and_then(|o| o.get("semantic_cache_enabled").and_then(serde_json::Value::as_bool))
        == Some(false)
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

    #[test]
    fn defaults() {
        let d = decide(&settings(), &RequestHeaders::default()).expect("cacheable");
        assert_eq!(
            d,
            Directives { lookup: true, store: true, threshold: 0.1, ttl_secs: 100, user_key: "_default_".into() }
        );
    }

    #[test]
    fn threshold_header_is_clamped() {
        let s = settings();
        let t = |v| decide(&s, &RequestHeaders { threshold: Some(v), ..Default::default() }).expect("ok").threshold;
        assert_eq!(t("0.05"), 0.05);
        assert_eq!(t("0.15"), 0.15);
        assert_eq!(t("0.9"), 0.2);
        assert_eq!(t("-1"), 0.0);
        assert_eq!(t("abc"), 0.1);
        assert_eq!(t("NaN"), 0.1);
    }

    #[test]
    fn cache_control() {
        let s = settings();
        let d = |v| decide(&s, &RequestHeaders { cache_control: Some(v), ..Default::default() });
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
    fn overrides_and_skip() {
        let s = settings();
        let off =
            RequestHeaders { settings_overrides: Some(r#"{"semantic_cache_enabled": false}"#), ..Default::default() };
        assert_eq!(decide(&s, &off), Err(BypassReason::Disabled));
        let on =
            RequestHeaders { settings_overrides: Some(r#"{"semantic_cache_enabled": true}"#), ..Default::default() };
        assert!(decide(&s, &on).is_ok());
        let junk = RequestHeaders { settings_overrides: Some("{"), ..Default::default() };
        assert!(decide(&s, &junk).is_ok());
        assert_eq!(decide(&s, &RequestHeaders { skip: true, ..Default::default() }), Err(BypassReason::SkipHeader));
        let mut disabled = s.clone();
        disabled.enabled = false;
        assert_eq!(decide(&disabled, &RequestHeaders::default()), Err(BypassReason::Disabled));
    }

    #[test]
    fn user_key() {
        let s = settings();
        let k = |v| decide(&s, &RequestHeaders { cache_key: Some(v), ..Default::default() }).expect("ok").user_key;
        assert_eq!(k("team-a"), "team-a");
        assert_eq!(k("  "), "_default_");
    }
}
