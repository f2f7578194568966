//! The host layer driven through the recording fake: what reaches the host, in which order, and
//! what each callback tells it (continue / pause).

use std::rc::Rc;

use crate::core::bypass::BypassReason;
use crate::core::metrics::{Metric, Timing};
use crate::core::redis::store_job::StoreJob;
use crate::host::calls::{Action, Buffer};
use crate::host::fake::{Event, FakeHost};
use crate::host::http::Stream;
use crate::host::root::Root;

const POLICY: &str = r#"{"embedding": {"provider": "openai-compatible", "url": "http://emb:9/v1/embeddings", "model": "e", "dimensions": 2}, "threshold": 0.2, "ttlSeconds": 60}"#;
const BODY: &str = r#"{"model":"gpt","messages":[{"role":"user","content":"hello"}]}"#;
const COMPLETION: &str = r#"{"id":"c1","object":"chat.completion","created":1,"model":"gpt","choices":[{"index":0,"message":{"role":"assistant","content":"Hi there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#;
const EMBED_OK: &str = r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.6,0.8]}]}"#;
const NIL4: &str = "*4\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n";

/// A reply as Redis sends it to our pipeline: the reply, then QUIT's +OK.
fn redis(reply: &str) -> (u16, Vec<u8>) {
    (200, format!("{reply}+OK\r\n").into_bytes())
}

fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

fn configured(policy: &str) -> (Rc<FakeHost>, Root<FakeHost>) {
    let host = Rc::new(FakeHost::default());
    host.buffers.borrow_mut().insert(Buffer::PluginConfiguration, policy.as_bytes().to_vec());
    let mut root = Root::new(host.clone());
    assert!(root.on_configure(policy.len()));
    (host, root)
}

/// A chat request whose headers have been seen (the body is buffered).
fn chat_stream(host: &FakeHost, root: &Root<FakeHost>) -> Stream<FakeHost> {
    let mut h = host.request_headers.borrow_mut();
    h.insert(":method".into(), "POST".into());
    h.insert(":path".into(), "/v1/chat/completions".into());
    h.insert("accept-encoding".into(), "gzip".into());
    drop(h);
    host.buffers.borrow_mut().insert(Buffer::RequestBody, BODY.as_bytes().to_vec());
    let mut s = root.new_stream();
    host.take();
    assert_eq!(s.on_request_headers(false), Action::Pause);
    assert!(host.take().contains(&Event::RemoveRequestHeader("accept-encoding".into())));
    s
}

/// The token and body of the only dispatch among `events`.
fn dispatched(events: &[Event]) -> (u32, String) {
    dispatched_where(events, |_| true)
}

/// The token and body of the only dispatch to `cluster` among `events`.
fn dispatched_to(events: &[Event], cluster: &str) -> (u32, String) {
    dispatched_where(events, |c| c == cluster)
}

fn dispatched_where(events: &[Event], pick: impl Fn(&str) -> bool) -> (u32, String) {
    let d: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Dispatch { token, body, cluster } if pick(cluster) => {
                Some((*token, String::from_utf8_lossy(body).to_string()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(d.len(), 1, "{events:?}");
    d[0].clone()
}

/// Answers callout `token` with `reply` (`None`: the call failed).
fn answer(host: &FakeHost, s: &mut Stream<FakeHost>, token: u32, reply: Option<(u16, Vec<u8>)>) -> Vec<Event> {
    let headers = usize::from(reply.is_some());
    *host.call_reply.borrow_mut() = reply;
    s.on_call_response(token, headers, 0);
    host.take()
}

fn set_headers(events: &[Event]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::SetResponseHeader(k, v) => Some((k.clone(), v.clone())),
            _ => None,
        })
        .collect()
}

fn pair(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

#[test]
fn invalid_policy_passes_with_bypass_headers() {
    let (host, root) = configured("{not json");
    let events = host.take();
    assert!(events.contains(&Event::Count(Metric::PolicyError)), "{events:?}");
    assert!(!events.iter().any(|e| matches!(e, Event::Tick(_))), "no index checks without a policy");
    let mut s = root.new_stream();
    assert_eq!(s.on_request_headers(false), Action::Continue);
    assert_eq!(
        host.take(),
        vec![
            Event::Count(Metric::Requests),
            Event::Count(Metric::Bypass),
            Event::Count(Metric::Bypassed(BypassReason::PolicyInvalid)),
            Event::Fact("semantic_cache.status".into(), "BYPASS".into()),
            Event::Fact("semantic_cache.bypass_reason".into(), "policy-invalid".into()),
        ]
    );
    assert_eq!(s.on_response_headers(false), Action::Continue);
    assert_eq!(
        set_headers(&host.take()),
        vec![pair("x-cache-status", "BYPASS"), pair("x-cache-bypass-reason", "policy-invalid")]
    );
}

#[test]
fn dispatch_failure_fails_open() {
    let (host, root) = configured(POLICY);
    let mut s = chat_stream(&host, &root);
    host.fail_dispatch.set(true);
    assert_eq!(s.on_request_body(BODY.len(), true), Action::Continue);
    let events = host.take();
    assert!(events.contains(&Event::DispatchFailed { cluster: "redis".into() }));
    assert!(events.contains(&Event::Count(Metric::RedisError)) && events.contains(&Event::Count(Metric::Bypass)));
    assert!(events.contains(&Event::Time(Timing::LookupMicros)));
    // The callback itself continues the request: no resume call.
    assert!(!events.contains(&Event::Resume));
    host.response_headers.borrow_mut().insert(":status".into(), "200".into());
    s.on_response_headers(false);
    assert_eq!(
        set_headers(&host.take()),
        vec![
            pair("x-cache-status", "BYPASS"),
            pair("x-cache-bypass-reason", "redis-error"),
            pair("x-semantic-cache", "MISS"),
            pair("cf-aig-cache-status", "MISS")
        ]
    );
}

#[test]
fn exact_hit_is_a_local_reply_and_the_request_stays_paused() {
    let (host, root) = configured(POLICY);
    let mut s = chat_stream(&host, &root);
    assert_eq!(s.on_request_body(BODY.len(), true), Action::Pause);
    let events = host.take();
    let (token, body) = dispatched_to(&events, "redis");
    let (embed_token, _) = dispatched_to(&events, "embedding");
    assert!(body.contains("HMGET"));
    let hit = format!("*4\r\n{}{}{}{}", bulk(COMPLETION), bulk("application/json"), bulk("900"), bulk("gpt"));
    let events = answer(&host, &mut s, token, Some(redis(&hit)));
    let Some(Event::Respond { status, headers, body }) = events.iter().find(|e| matches!(e, Event::Respond { .. }))
    else {
        panic!("expected a local reply: {events:?}")
    };
    assert_eq!(*status, 200);
    assert!(headers.contains(&pair("x-cache-status", "HIT")) && headers.contains(&pair("age", "100")));
    assert!(String::from_utf8_lossy(body).contains("Hi there"));
    assert!(events.contains(&Event::Count(Metric::HitExact)));
    assert!(!events.contains(&Event::Resume), "a local reply must not resume the request upstream");
    // The embedding sent beside the exact lookup answers late: ignored, and still no resume.
    let events = answer(&host, &mut s, embed_token, Some((200, EMBED_OK.as_bytes().to_vec())));
    assert!(!events.contains(&Event::Resume), "{events:?}");
    // The local reply passes through the response callbacks: nothing added, nothing captured.
    s.on_response_headers(false);
    assert!(set_headers(&host.take()).is_empty());
}

#[test]
fn stray_token_is_ignored_and_keeps_the_pending_call() {
    let (host, root) = configured(POLICY);
    let mut s = chat_stream(&host, &root);
    s.on_request_body(BODY.len(), true);
    let events = host.take();
    let (token, _) = dispatched_to(&events, "redis");
    let (embed_token, _) = dispatched_to(&events, "embedding");
    let events = answer(&host, &mut s, token + 7, Some(redis(NIL4)));
    assert!(matches!(events.as_slice(), [Event::Log(crate::core::log::Level::Debug, _)]), "{events:?}");
    // The real answers still arrive and the flow goes on (to the KNN search).
    assert!(answer(&host, &mut s, token, Some(redis(NIL4))).is_empty());
    let events = answer(&host, &mut s, embed_token, Some((200, EMBED_OK.as_bytes().to_vec())));
    assert!(dispatched_to(&events, "redis").1.contains("FT.SEARCH"), "{events:?}");
    // The same token again is now stray.
    let events = answer(&host, &mut s, token, Some(redis(NIL4)));
    assert!(matches!(events.as_slice(), [Event::Log(crate::core::log::Level::Debug, _)]), "{events:?}");
}

#[test]
fn embed_dispatch_failure_in_a_callout_resumes_the_request() {
    // The embedding dispatch fails, the exact lookup goes out; its miss ends the lookup.
    let (host, root) = configured(POLICY);
    let mut s = chat_stream(&host, &root);
    host.fail_dispatch_to.borrow_mut().push("embedding".into());
    assert_eq!(s.on_request_body(BODY.len(), true), Action::Pause);
    let events = host.take();
    assert!(events.contains(&Event::DispatchFailed { cluster: "embedding".into() }));
    let (token, _) = dispatched_to(&events, "redis");
    let events = answer(&host, &mut s, token, Some(redis(NIL4)));
    assert!(events.contains(&Event::Count(Metric::EmbeddingError)));
    assert_eq!(events.last(), Some(&Event::Resume));
}

#[test]
fn trailers_finish_the_body() {
    let (host, root) = configured(POLICY);
    let mut s = chat_stream(&host, &root);
    assert_eq!(s.on_request_body(BODY.len() / 2, false), Action::Pause);
    assert!(host.take().is_empty());
    assert_eq!(s.on_request_trailers(), Action::Pause);
    let (_, body) = dispatched_to(&host.take(), "redis");
    assert!(body.contains("HMGET"));
}

#[test]
fn miss_is_stored_through_the_root_queue() {
    let (host, mut root) = configured(POLICY);
    let mut s = chat_stream(&host, &root);
    s.on_request_body(BODY.len(), true);
    let events = host.take();
    let (t1, _) = dispatched_to(&events, "redis");
    let (t2, _) = dispatched_to(&events, "embedding");
    assert!(answer(&host, &mut s, t1, Some(redis(NIL4))).is_empty());
    let events = answer(&host, &mut s, t2, Some((200, EMBED_OK.as_bytes().to_vec())));
    assert!(events.contains(&Event::Time(Timing::EmbedMicros)));
    let (t3, search) = dispatched(&events);
    assert!(search.contains("FT.SEARCH"));
    let events = answer(&host, &mut s, t3, Some(redis("*1\r\n:0\r\n")));
    assert!(events.contains(&Event::Count(Metric::Miss)) && events.contains(&Event::Time(Timing::LookupMicros)));
    assert_eq!(events.last(), Some(&Event::Resume));

    let mut rh = host.response_headers.borrow_mut();
    rh.insert(":status".into(), "200".into());
    rh.insert("content-type".into(), "application/json".into());
    drop(rh);
    assert_eq!(s.on_response_headers(false), Action::Continue);
    assert_eq!(
        set_headers(&host.take()),
        vec![pair("x-cache-status", "MISS"), pair("x-semantic-cache", "MISS"), pair("cf-aig-cache-status", "MISS")]
    );
    host.buffers.borrow_mut().insert(Buffer::ResponseBody, COMPLETION.as_bytes().to_vec());
    // The origin took 250 ms: recorded in `origin_us` and stored with the entry.
    host.now.set(host.now.get() + std::time::Duration::from_millis(250));
    assert_eq!(s.on_response_body(COMPLETION.len(), true), Action::Continue);
    let events = host.take();
    let [Event::Time(Timing::OriginMicros), Event::Enqueue(raw)] = events.as_slice() else {
        panic!("expected the origin time and one enqueue: {events:?}")
    };
    let job = StoreJob::decode(raw).expect("a store job");
    assert_eq!(job.cluster, "redis");
    let pipeline = String::from_utf8_lossy(&job.pipeline);
    assert!(pipeline.contains("HSET"));
    assert!(pipeline.contains("$9\r\norigin_ms\r\n$3\r\n250\r\n"), "{pipeline}");
    assert!(pipeline.contains("$10\r\ntok_prompt\r\n$1\r\n1\r\n"), "{pipeline}");

    // The root context writes it and counts the answer.
    root.on_queue_ready();
    let events = host.take();
    let (t4, pipeline) = dispatched(&events);
    assert_eq!(pipeline, String::from_utf8_lossy(&job.pipeline));
    *host.call_reply.borrow_mut() = Some((200, b"+OK\r\n:6\r\n:1\r\n+OK\r\n".to_vec()));
    root.on_call_response(t4, 1, 0);
    assert_eq!(host.take(), vec![Event::Count(Metric::StoreOk)]);

    // A failed store call is counted too; a stray token changes nothing.
    host.queue.borrow_mut().push_back(raw.clone());
    root.on_queue_ready();
    let (t5, _) = dispatched(&host.take());
    root.on_call_response(t5 + 1, 0, 0);
    assert!(!host.take().contains(&Event::Count(Metric::StoreError)));
    root.on_call_response(t5, 0, 0);
    assert!(host.take().contains(&Event::Count(Metric::StoreError)));
}

#[test]
fn store_without_a_queue_is_counted_as_an_error() {
    let host = Rc::new(FakeHost::default());
    host.queue_ok.set(false);
    host.buffers.borrow_mut().insert(Buffer::PluginConfiguration, POLICY.as_bytes().to_vec());
    let mut root = Root::new(host.clone());
    root.on_configure(POLICY.len());
    let mut s = chat_stream(&host, &root);
    // no-cache: straight to the embedding, then upstream; the answer is stored.
    host.request_headers.borrow_mut().insert("cache-control".into(), "no-cache".into());
    let mut s2 = root.new_stream();
    assert_eq!(s2.on_request_headers(false), Action::Pause);
    s2.on_request_body(BODY.len(), true);
    let (t, _) = dispatched(&host.take());
    answer(&host, &mut s2, t, Some((200, EMBED_OK.as_bytes().to_vec())));
    let mut rh = host.response_headers.borrow_mut();
    rh.insert(":status".into(), "200".into());
    rh.insert("content-type".into(), "application/json".into());
    drop(rh);
    host.buffers.borrow_mut().insert(Buffer::ResponseBody, COMPLETION.as_bytes().to_vec());
    s2.on_response_headers(false);
    s2.on_response_body(COMPLETION.len(), true);
    let events = host.take();
    assert!(events.contains(&Event::Count(Metric::StoreError)), "{events:?}");
    assert!(!events.iter().any(|e| matches!(e, Event::Enqueue(_))));
    s.on_log();
}

#[test]
fn root_checks_and_creates_the_index() {
    let (host, mut root) = configured(POLICY);
    assert!(host.take().contains(&Event::Tick(std::time::Duration::from_secs(1))));
    root.on_tick();
    let (t, info) = dispatched(&host.take());
    assert!(info.contains("FT.INFO"));
    // No second check while one is in flight.
    root.on_tick();
    assert!(host.take().is_empty());
    *host.call_reply.borrow_mut() = Some(redis("-Unknown index name\r\n"));
    root.on_call_response(t, 1, 0);
    let (_, create) = dispatched(&host.take());
    assert!(create.contains("FT.CREATE"));
}

#[test]
fn complete_answer_without_end_of_stream_is_stored_at_log() {
    // The client left after the last byte of the answer but before the upstream's end of stream
    // reached the filter: `on_log` judges the capture and the store still goes to the root queue.
    let (host, root) = configured(POLICY);
    let mut s = chat_stream(&host, &root);
    s.on_request_body(BODY.len(), true);
    let events = host.take();
    let (t1, _) = dispatched_to(&events, "redis");
    let (t2, _) = dispatched_to(&events, "embedding");
    answer(&host, &mut s, t1, Some(redis(NIL4)));
    let events = answer(&host, &mut s, t2, Some((200, EMBED_OK.as_bytes().to_vec())));
    let (t3, _) = dispatched(&events);
    answer(&host, &mut s, t3, Some(redis("*1\r\n:0\r\n")));
    let mut rh = host.response_headers.borrow_mut();
    rh.insert(":status".into(), "200".into());
    rh.insert("content-type".into(), "application/json".into());
    drop(rh);
    s.on_response_headers(false);
    host.take();
    host.buffers.borrow_mut().insert(Buffer::ResponseBody, COMPLETION.as_bytes().to_vec());
    assert_eq!(s.on_response_body(COMPLETION.len(), false), Action::Continue);
    assert!(host.take().is_empty());
    s.on_log();
    let events = host.take();
    assert!(matches!(events.as_slice(), [Event::Enqueue(_)]), "{events:?}");
    s.on_log();
    assert!(host.take().is_empty(), "one store outcome per miss");
}
