//! Purge: selection, key check, the search/delete rounds, and the flow's handling of the path.

use std::rc::Rc;

use super::*;
use crate::core::flow::{Command, Flow, Next, RequestMeta};
use crate::core::metrics::Metric;
use crate::core::policy::parse_policy;

const KEY: &str = "purge-secret-0123456789";

fn policy() -> Policy {
    let v = serde_json::json!({
        "embedding": {"provider": "openai-compatible", "url": "http://emb:9/v1/embeddings", "model": "e", "dimensions": 2},
        "purge": {"key": KEY}
    });
    parse_policy(v.to_string().as_bytes()).expect("valid policy")
}

#[test]
fn selectors_of_an_entry_match_a_selection() {
    let p = policy();
    let entry = Selectors::of_entry(Some("Bearer sk-a"), "_default_", "gpt-4o", "what is rust");
    let by_tenant = parse_selection(&p, br#"{"tenant": " Bearer sk-a "}"#).expect("ok");
    assert_eq!(by_tenant.tenant, entry.tenant);
    assert_eq!(by_tenant.query(), format!("@sel_tenant:{{{}}}", entry.tenant.clone().unwrap_or_default()));
    let by_model = parse_selection(&p, br#"{"model": "gpt-4o"}"#).expect("ok");
    assert_eq!(by_model.model, entry.model);
    let req = br#"{"request": {"model": "gpt-4o", "messages": [{"role": "user", "content": "What is Rust?"}]}}"#;
    let by_request = parse_selection(&p, req).expect("ok");
    assert_eq!((by_request.text.clone(), by_request.model.clone()), (entry.text.clone(), entry.model.clone()));
    assert_eq!(by_request.query().matches('@').count(), 2);
    let by_key = parse_selection(&p, br#"{"cacheKey": "k1"}"#).expect("ok");
    assert_eq!(by_key.key, Selectors::of_entry(None, "k1", "m", "t").key);
    assert_ne!(by_key.key, entry.key);
    // the shared cache (no credential) is its own tenant value
    assert_ne!(Selectors::of_entry(None, "k", "m", "t").tenant, entry.tenant);
    for all in [&b""[..], b"  ", b"{}"] {
        assert_eq!(parse_selection(&p, all).expect("ok").query(), "*");
    }
    for bad in [&b"[1]"[..], b"{\"tenant\": 1}", b"{\"other\": 1}", b"{\"request\": {\"x\": 1}}", b"nope"] {
        assert!(parse_selection(&p, bad).is_err(), "{}", String::from_utf8_lossy(bad));
    }
    // every selector value is a short hex hash: safe in a TAG query without escaping
    for v in entry.fields() {
        assert!(v.1.len() == 24 && v.1.bytes().all(|b| b.is_ascii_hexdigit()), "{v:?}");
    }
}

#[test]
fn keys_compare_and_are_found_in_headers() {
    assert!(key_matches(KEY, KEY));
    assert!(!key_matches("purge-secret-0123456788", KEY));
    assert!(!key_matches("", KEY));
    assert!(!key_matches(&format!("{KEY}x"), KEY));
    let h = |pairs: &'static [(&'static str, &'static str)]| {
        move |n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string())
    };
    assert_eq!(presented_key(&h(&[(KEY_HEADER, "a")])), Some("a".into()));
    assert_eq!(presented_key(&h(&[("authorization", "Bearer  b ")])), Some("b".into()));
    assert_eq!(presented_key(&h(&[("authorization", "bearer c")])), Some("c".into()));
    assert_eq!(presented_key(&h(&[("authorization", "Basic d")])), None);
    assert_eq!(presented_key(&h(&[(KEY_HEADER, "a"), ("authorization", "Bearer b")])), Some("a".into()));
    assert_eq!(presented_key(&h(&[])), None);
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn rounds_delete_what_the_search_found_until_it_finds_nothing() {
    let p = policy();
    let mut purge = Purge::new(&Selectors::default());
    let first = text(&purge.pipeline(&p));
    assert!(first.contains("FT.SEARCH") && first.contains("NOCONTENT") && !first.contains("DEL"), "{first}");
    assert!(first.contains(&p.vector_store.index), "{first}");
    let found = b"*3\r\n:2\r\n$2\r\nk1\r\n$2\r\nk2\r\n+OK\r\n";
    let Ok(Progress::More(second)) = purge.on_reply(&p, Some(found)) else { panic!("more expected") };
    let second = text(&second);
    assert!(second.contains("$3\r\nDEL\r\n$2\r\nk1\r\n$2\r\nk2\r\n"), "{second}");
    let done = purge.on_reply(&p, Some(b":2\r\n*1\r\n:0\r\n+OK\r\n"));
    assert_eq!(done, Ok(Progress::Done(br#"{"complete":true,"deleted":2}"#.to_vec())));
    // no index yet: nothing to delete
    let mut fresh = Purge::new(&Selectors::default());
    fresh.pipeline(&p);
    let r = fresh.on_reply(&p, Some(b"-No such index x\r\n+OK\r\n"));
    assert_eq!(r, Ok(Progress::Done(br#"{"complete":true,"deleted":0}"#.to_vec())));
    // failures
    let mut f = Purge::new(&Selectors::default());
    f.pipeline(&p);
    assert!(f.on_reply(&p, None).is_err());
    assert!(f.on_reply(&p, Some(b"-ERR syntax\r\n+OK\r\n")).is_err());
    assert!(f.on_reply(&p, Some(b"garbage")).is_err());
}

#[test]
fn rounds_are_bounded() {
    let p = policy();
    let mut purge = Purge::new(&Selectors::default());
    purge.pipeline(&p);
    let mut last = purge.on_reply(&p, Some(b"*2\r\n:1\r\n$1\r\nk\r\n+OK\r\n"));
    for _ in 0..MAX_ROUNDS {
        match last {
            Ok(Progress::More(_)) => last = purge.on_reply(&p, Some(b":1\r\n*2\r\n:1\r\n$1\r\nk\r\n+OK\r\n")),
            _ => break,
        }
    }
    let Ok(Progress::Done(body)) = last else { panic!("{last:?}") };
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["complete"], false);
    assert_eq!(v["deleted"], u64::from(MAX_ROUNDS - 1));
}

fn meta<'a>(method: &'a str, path: &'a str, eos: bool, h: &'a dyn Fn(&str) -> Option<String>) -> RequestMeta<'a> {
    RequestMeta { method, path, route_name: None, cluster: None, end_of_stream: eos, index_mismatch: false, header: h }
}

fn respond_status(cmds: &[Command]) -> Option<u32> {
    cmds.iter().find_map(|c| match c {
        Command::Respond { status, .. } => Some(*status),
        _ => None,
    })
}

#[test]
fn the_flow_answers_the_purge_path_itself() {
    let p = Rc::new(policy());
    let none = |_: &str| None;
    let wrong = |n: &str| (n == KEY_HEADER).then(|| "wrong-key-wrong-key".to_string());
    let right = |n: &str| (n == KEY_HEADER).then(|| KEY.to_string());
    let path = "/semantic-cache/purge?x=1";
    for (h, status) in [(&none as &dyn Fn(&str) -> Option<String>, 401), (&wrong, 403)] {
        let mut f = Flow::new(p.clone());
        let step = f.on_request_headers(&meta("POST", path, false, h));
        assert_eq!((step.next, respond_status(&step.cmds)), (Next::Wait, Some(status)));
        assert!(step.cmds.contains(&Command::Count(Metric::PurgeDenied)));
        assert!(!step.cmds.iter().any(|c| matches!(c, Command::Redis(_))));
        assert!(f.on_response_headers(status as u16, "application/json").cmds.is_empty());
    }
    let mut f = Flow::new(p.clone());
    assert_eq!(respond_status(&f.on_request_headers(&meta("GET", path, true, &right)).cmds), Some(405));
    // with a body: wait for it, then search
    let mut f = Flow::new(p.clone());
    let step = f.on_request_headers(&meta("POST", path, false, &right));
    assert_eq!((step.next, step.cmds.len()), (Next::Wait, 0));
    assert!(f.is_buffering() && f.is_purge());
    let step = f.on_request_body(br#"{"model": "gpt"}"#, path);
    assert!(matches!(step.cmds.as_slice(), [Command::Redis(_)]), "{:?}", step.cmds);
    let step = f.on_redis_reply(Some(b"*2\r\n:1\r\n$1\r\nk\r\n+OK\r\n"), 0);
    assert!(matches!(step.cmds.as_slice(), [Command::Redis(_)]));
    let step = f.on_redis_reply(Some(b":1\r\n*1\r\n:0\r\n+OK\r\n"), 0);
    assert_eq!(respond_status(&step.cmds), Some(200));
    assert!(step.cmds.contains(&Command::CountBy(Metric::PurgedEntries, 1)));
    assert!(step.cmds.contains(&Command::Count(Metric::Purge)));
    // a bad body is a 400; Redis failing a 503
    let mut f = Flow::new(p.clone());
    f.on_request_headers(&meta("POST", path, false, &right));
    assert_eq!(respond_status(&f.on_request_body(b"[", path).cmds), Some(400));
    let mut f = Flow::new(p.clone());
    f.on_request_headers(&meta("POST", path, false, &right));
    let step = f.on_body_too_large();
    assert_eq!((step.next, respond_status(&step.cmds)), (Next::Wait, Some(413)));
    let mut f = Flow::new(p.clone());
    f.on_request_headers(&meta("POST", path, true, &right));
    assert_eq!(respond_status(&f.on_redis_reply(None, 0).cmds), Some(503));
    // without a key in the policy the path is an ordinary request
    let off = Rc::new(parse_policy(br#"{"embedding": {"provider": "local", "dimensions": 2}}"#).expect("ok"));
    let mut f = Flow::new(off);
    let step = f.on_request_headers(&meta("POST", "/semantic-cache/purge", false, &right));
    assert_eq!(step.next, Next::Continue);
    assert!(step.cmds.contains(&Command::Count(Metric::Bypassed(crate::core::bypass::BypassReason::Path))));
}
