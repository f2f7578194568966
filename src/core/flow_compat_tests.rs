//! Vendor headers (Fastly, Cloudflare) and the provider partition through whole requests.

use super::*;
use crate::core::compat::{CF_STATUS, FASTLY_STATUS};

fn with_headers(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |n: &str| pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
}

/// The exact-entry key the request looks up (the HMGET of its first Redis pipeline), and the step.
fn lookup(f: &mut Flow, meta: &RequestMeta, prompt: &str) -> (String, Step) {
    assert_eq!(f.on_request_headers(meta).next, Next::Wait);
    let step = f.on_request_body(&body(prompt, serde_json::json!({})), meta.path);
    let key = step
        .cmds
        .iter()
        .find_map(|c| match c {
            Command::Redis(p) => {
                let p = String::from_utf8_lossy(p);
                let at = p.find("HMGET")?;
                let rest = &p[at..];
                let start = rest.find("semcache:")?;
                Some(rest[start..start + "semcache:".len() + 64].to_string())
            }
            _ => None,
        })
        .expect("an exact lookup");
    (key, step)
}

fn exact_hit_reply() -> Vec<u8> {
    redis(&format!("*4\r\n{}{}{}{}", bulk(COMPLETION), bulk("application/json"), bulk("100"), bulk("gpt")))
}

#[test]
fn hits_and_misses_carry_both_vendors_status() {
    let mut f = Flow::new(policy(serde_json::json!({})));
    let none = |_: &str| None;
    lookup(&mut f, &headers("POST", PATH, &none), "hello");
    let cmds = f.on_redis_reply(Some(&exact_hit_reply()), 130).cmds;
    let h = respond_headers(&cmds).expect("hit");
    assert_eq!((header(h, FASTLY_STATUS), header(h, CF_STATUS)), (Some("HIT"), Some("HIT")));

    let mut f = Flow::new(policy(serde_json::json!({})));
    to_search(&mut f, "hello", serde_json::json!({}));
    f.on_redis_reply(Some(&redis("*1\r\n:0\r\n")), 200);
    let h = added_headers(&f.on_response_headers(200, "application/json"));
    assert_eq!((header(&h, FASTLY_STATUS), header(&h, CF_STATUS)), (Some("MISS"), Some("MISS")));

    // a BYPASS came from upstream: MISS for both vendors
    let mut f = Flow::new(policy(serde_json::json!({})));
    let skip = with_headers(&[("cf-aig-skip-cache", "true")]);
    assert_eq!(f.on_request_headers(&headers("POST", PATH, &skip)).next, Next::Continue);
    assert_eq!(reason(&f), Some("skip-header"));
    let h = added_headers(&f.on_response_headers(200, "application/json"));
    assert_eq!(header(&h, STATUS_HEADER), Some("BYPASS"));
    assert_eq!((header(&h, FASTLY_STATUS), header(&h, CF_STATUS)), (Some("MISS"), Some("MISS")));
}

#[test]
fn switched_off_vendors_send_nothing_and_read_nothing() {
    let off = serde_json::json!({"compat": {"fastly": false, "cloudflare": false}});
    let mut f = Flow::new(policy(off.clone()));
    let none = |_: &str| None;
    lookup(&mut f, &headers("POST", PATH, &none), "hello");
    let cmds = f.on_redis_reply(Some(&exact_hit_reply()), 130).cmds;
    let h = respond_headers(&cmds).expect("hit");
    assert_eq!((header(h, FASTLY_STATUS), header(h, CF_STATUS)), (None, None));
    // cf skip and Fastly's overrides are ignored: the request is looked up
    let mut f = Flow::new(policy(off));
    let vendor = with_headers(&[
        ("cf-aig-skip-cache", "true"),
        ("cf-skip-cache", "true"),
        ("x-settings-overrides", r#"{"semantic_cache_enabled": false}"#),
    ]);
    lookup(&mut f, &headers("POST", PATH, &vendor), "hello");
    assert_eq!(reason(&f), None);
    f.on_redis_reply(Some(&redis(NIL4)), 200);
    f.on_embed_reply(Some((200, EMBED_OK)));
    f.on_redis_reply(Some(&redis("*1\r\n:0\r\n")), 200);
    let h = added_headers(&f.on_response_headers(200, "application/json"));
    assert_eq!(h, vec![(STATUS_HEADER.to_string(), "MISS".to_string())]);
}

#[test]
fn fastly_similarity_is_bounded_by_the_operator() {
    // policy threshold 0.2 = maxThreshold
    let run = |similarity: &str, distance: &str| {
        let mut f = Flow::new(policy(serde_json::json!({})));
        let h = with_headers(&[("x-semantic-threshold", similarity)]);
        lookup(&mut f, &headers("POST", PATH, &h), "hello");
        f.on_redis_reply(Some(&redis(NIL4)), 200);
        f.on_embed_reply(Some((200, EMBED_OK)));
        let cmds = f.on_redis_reply(Some(&redis(&search_reply(distance))), 200).cmds;
        respond_headers(&cmds).is_some()
    };
    assert!(run("0.75", "0.15"), "similarity 0.75 = distance 0.25, clamped to 0.2");
    assert!(!run("0.99", "0.05"), "similarity 0.99 = distance 0.01: strict");
    assert!(!run("0.5", "0.3"), "similarity 0.5 = distance 0.5, but never beyond maxThreshold 0.2");
    assert!(run("abc", "0.15"), "invalid: the policy threshold");
}

#[test]
fn custom_key_is_exact_only_and_shared_by_key() {
    let p = policy(serde_json::json!({}));
    let k1 = with_headers(&[("cf-aig-cache-key", "k1"), ("cf-aig-cache-ttl", "600")]);
    let mut f = Flow::new(p.clone());
    let (key, step) = lookup(&mut f, &headers("POST", PATH, &k1), "hello");
    // no embedding callout beside the lookup
    assert!(matches!(step.cmds.as_slice(), [Command::Redis(_)]), "{:?}", step.cmds);
    // the same key with another prompt looks up the same entry; another key does not
    let (other_prompt, _) = lookup(&mut Flow::new(p.clone()), &headers("POST", PATH, &k1), "something else");
    assert_eq!(other_prompt, key);
    let k2 = with_headers(&[("cf-aig-cache-key", "k2")]);
    assert_ne!(lookup(&mut Flow::new(p.clone()), &headers("POST", PATH, &k2), "hello").0, key);
    // never across tenants or providers
    let tenant = with_headers(&[("cf-aig-cache-key", "k1"), ("x-api-key", "other")]);
    assert_ne!(lookup(&mut Flow::new(p.clone()), &headers("POST", PATH, &tenant), "hello").0, key);
    let other_cluster = RequestMeta { cluster: Some("anthropic"), ..headers("POST", PATH, &k1) };
    assert_ne!(lookup(&mut Flow::new(p.clone()), &other_cluster, "hello").0, key);

    // a miss goes upstream at once and is stored without a vector, with the cf TTL
    let Step { cmds, next } = f.on_redis_reply(Some(&redis(NIL4)), 200);
    assert_eq!(next, Next::Continue);
    assert!(!has(&cmds, |c| matches!(c, Command::Embed(_) | Command::EmbedLocal(_))));
    f.on_response_headers(200, "application/json");
    let cmds = f.on_response_body(COMPLETION.as_bytes(), true, 300).cmds;
    let Some(Command::Store(s)) = cmds.first() else { panic!("expected a store: {cmds:?}") };
    let s = String::from_utf8_lossy(s);
    let hset = &s[s.find("HSET").expect("HSET")..];
    assert!(hset.contains(&key) && !hset.contains("$3\r\nvec\r\n"), "{s}");
    assert!(s.contains("$3\r\n600\r\n"), "ttl 600 in EXPIRE: {s}");

    // a hit answers from the key alone
    let mut f = Flow::new(p);
    lookup(&mut f, &headers("POST", PATH, &k1), "yet another prompt");
    let cmds = f.on_redis_reply(Some(&exact_hit_reply()), 130).cmds;
    assert_eq!(header(respond_headers(&cmds).expect("hit"), MATCH_HEADER), Some("exact"));
}

#[test]
fn custom_key_with_no_cache_stores_without_embedding() {
    let mut f = Flow::new(policy(serde_json::json!({})));
    let h = with_headers(&[("cf-aig-cache-key", "k1"), ("cache-control", "no-cache")]);
    assert_eq!(f.on_request_headers(&headers("POST", PATH, &h)).next, Next::Wait);
    let step = f.on_request_body(&body("hello", serde_json::json!({})), PATH);
    assert_eq!(step.next, Next::Continue);
    assert!(!has(&step.cmds, |c| matches!(c, Command::Embed(_) | Command::Redis(_))));
    f.on_response_headers(200, "application/json");
    assert!(matches!(f.on_response_body(COMPLETION.as_bytes(), true, 300).cmds.first(), Some(Command::Store(_))));
}

#[test]
fn provider_is_part_of_the_partition() {
    let p = policy(serde_json::json!({}));
    let key = |cluster: Option<&'static str>, authority: &'static str| {
        let h = with_headers(&[(":authority", authority)]);
        let meta = RequestMeta { cluster, ..headers("POST", PATH, &h) };
        lookup(&mut Flow::new(p.clone()), &meta, "hello").0
    };
    let openai = key(Some("openai"), "gw.local");
    assert_ne!(key(Some("mistral"), "gw.local"), openai);
    // the cluster names the provider whatever host the client used
    assert_eq!(key(Some("openai"), "other.local"), openai);
    // without a cluster, the authority does
    assert_ne!(key(None, "a.local"), key(None, "b.local"));
    // switched off: one partition for both
    let off = policy(serde_json::json!({"partition": {"provider": false}}));
    let key_off = |cluster: &'static str| {
        let none = |_: &str| None;
        let meta = RequestMeta { cluster: Some(cluster), ..headers("POST", PATH, &none) };
        lookup(&mut Flow::new(off.clone()), &meta, "hello").0
    };
    assert_eq!(key_off("openai"), key_off("mistral"));
}

#[test]
fn gemini_query_key_is_a_tenant() {
    let p = policy(serde_json::json!({}));
    let none = |_: &str| None;
    let key = |path: &'static str| lookup(&mut Flow::new(p.clone()), &headers("POST", path, &none), "hello").0;
    let a = "/v1/chat/completions?key=AAA";
    assert_ne!(key(a), key("/v1/chat/completions?key=BBB"));
    assert_ne!(key(a), key(PATH));
}

#[test]
fn credentials_never_reach_a_log_line() {
    let secret = "AIzaSECRET";
    let path = "/v1/chat/completions?key=AIzaSECRET";
    let logs = |steps: &[&Step]| -> Vec<String> {
        steps
            .iter()
            .flat_map(|s| s.cmds.iter())
            .filter_map(|c| match c {
                Command::Log(_, m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    };
    // through a miss with failing Redis and embedding (every failure logs), and a bypass
    let mut f = Flow::new(policy(serde_json::json!({})));
    let h = with_headers(&[("x-goog-api-key", secret)]);
    let s1 = f.on_request_headers(&headers("POST", path, &h));
    let s2 = f.on_request_body(&body("hello", serde_json::json!({})), path);
    let s3 = f.on_redis_reply(Some(b"-ERR boom\r\n"), 200);
    let s4 = f.on_embed_reply(None);
    let s5 = f.on_response_headers(200, "application/json");
    let mut b = Flow::new(policy(serde_json::json!({})));
    let s6 = b.on_request_headers(&headers("GET", path, &h));
    let all = logs(&[&s1, &s2, &s3, &s4, &s5, &s6]);
    assert!(!all.is_empty(), "the failures above must log something");
    assert!(all.iter().all(|m| !m.contains(secret)), "{all:?}");
}
