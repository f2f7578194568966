//! policy-schema.json against the parser: every `default` is what the parser fills in for an
//! omitted field; every `minimum`/`maximum` is accepted on the bound and rejected just outside it;
//! every `enum`/`const` value is accepted and others are rejected; `required`, `minLength`, `pattern`
//! and `additionalProperties: false` are enforced. Walks the schema, so a field added there is
//! checked (or fails `parsed_value`'s lookup until it is mapped here).
use serde_json::{json, Map, Value};

use super::*;

const SCHEMA: &str = include_str!("../../policy-schema.json");

fn schema() -> Value {
    serde_json::from_str(SCHEMA).unwrap_or_else(|e| panic!("policy-schema.json: {e}"))
}

/// A minimal valid policy: only what the schema requires (a remote provider needs url and model).
fn base() -> Value {
    json!({"embedding": {"provider": "openai-compatible", "url": "http://emb:8080/v1/embeddings",
                         "model": "m", "dimensions": 64}})
}

/// The same with one rule that sets nothing, for the rule-level settings.
fn base_with_rule() -> Value {
    let mut p = base();
    p["rules"] = json!([{"name": "r", "match": {"pathPrefix": "/"}}]);
    p
}

/// Where a field lives: at the top level, or inside `rules[0]`.
#[derive(Clone, Copy, Debug)]
enum Scope {
    Top,
    Rule,
}

impl Scope {
    fn base(self) -> Value {
        match self {
            Scope::Top => base(),
            Scope::Rule => base_with_rule(),
        }
    }
    /// The field name the parser reports in its errors.
    fn field(self, path: &[String]) -> String {
        match self {
            Scope::Top => path.join("."),
            Scope::Rule => format!("rules[0].{}", path.join(".")),
        }
    }
}

/// A leaf of the schema: its path of property names and its own schema.
struct Leaf {
    path: Vec<String>,
    schema: Value,
}

/// The leaves under `props` (objects with `properties` are walked into; `rules` is not, its items
/// are walked from `$defs.rule`).
fn leaves(props: &Map<String, Value>, prefix: &[String], out: &mut Vec<Leaf>) {
    for (k, s) in props {
        let mut path = prefix.to_vec();
        path.push(k.clone());
        match s.get("properties").and_then(Value::as_object) {
            Some(inner) => leaves(inner, &path, out),
            None => out.push(Leaf { path, schema: s.clone() }),
        }
    }
}

/// All object schemas (path, schema), for `required` and `additionalProperties`.
fn objects(s: &Value, path: &[String], out: &mut Vec<(Vec<String>, Value)>) {
    let Some(props) = s.get("properties").and_then(Value::as_object) else { return };
    out.push((path.to_vec(), s.clone()));
    for (k, v) in props {
        let mut p = path.to_vec();
        p.push(k.clone());
        objects(v, &p, out);
    }
}

fn top_leaves() -> Vec<Leaf> {
    let s = schema();
    let mut out = Vec::new();
    leaves(s["properties"].as_object().unwrap_or(&Map::new()), &[], &mut out);
    out
}

/// The settings a rule may override, as the rule schema states them (without name and match).
fn rule_leaves() -> Vec<Leaf> {
    let s = schema();
    let mut out = Vec::new();
    leaves(s["$defs"]["rule"]["properties"].as_object().unwrap_or(&Map::new()), &[], &mut out);
    out.retain(|l| l.path[0] != "name" && l.path[0] != "match");
    out
}

/// `policy` with `value` at `path` inside `scope` (objects on the way are created).
fn with(scope: Scope, mut policy: Value, path: &[String], value: Value) -> Value {
    let mut at = match scope {
        Scope::Top => &mut policy,
        Scope::Rule => &mut policy["rules"][0],
    };
    for k in &path[..path.len() - 1] {
        if at.get(k).is_none() {
            at[k] = json!({});
        }
        at = &mut at[k];
    }
    at[path[path.len() - 1].as_str()] = value;
    policy
}

fn without(scope: Scope, mut policy: Value, path: &[String]) -> Value {
    let mut at = match scope {
        Scope::Top => &mut policy,
        Scope::Rule => &mut policy["rules"][0],
    };
    for k in &path[..path.len() - 1] {
        at = &mut at[k];
    }
    if let Some(o) = at.as_object_mut() {
        o.remove(&path[path.len() - 1]);
    }
    policy
}

fn parse(v: &Value) -> Result<Policy, PolicyError> {
    parse_policy(v.to_string().as_bytes())
}

fn settings_value(s: &Settings, key: &str) -> Option<Value> {
    Some(match key {
        "enabled" => json!(s.enabled),
        "threshold" => json!(s.threshold),
        "maxThreshold" => json!(s.max_threshold),
        "ttlSeconds" => json!(s.ttl_secs),
        "maxTtlSeconds" => json!(s.max_ttl_secs),
        "embed.lastUserMessages" => json!(s.embed.last_user_messages),
        "partition.tenant" => json!(s.partition.tenant),
        "partition.tenantHeaders" => json!(s.partition.tenant_headers),
        "partition.tenantQueryParams" => json!(s.partition.tenant_query_params),
        "partition.route" => json!(s.partition.route),
        "partition.provider" => json!(s.partition.provider),
        "partition.contextWindow" => json!(s.partition.context_window),
        "store.toolCalls" => json!(s.store.tool_calls),
        "store.maxTemperature" => json!(s.store.max_temperature),
        "verify" => json!(s.verify.map_or("off", |v| v.code())),
        "topK" => json!(s.top_k),
        _ => return None,
    })
}

/// The parsed value of a schema field, as JSON. `None` for a field this table does not know (a new
/// schema field must be added here, so that its default and limits are checked).
fn parsed_value(p: &Policy, scope: Scope, path: &[String]) -> Option<Value> {
    let key = path.join(".");
    if let Scope::Rule = scope {
        return settings_value(&p.rules.first()?.settings, &key);
    }
    if let Some(v) = settings_value(&p.defaults, &key) {
        return Some(v);
    }
    let (e, s) = (&p.embedding, &p.vector_store);
    Some(match key.as_str() {
        "embedding.provider" => json!(e.provider.as_str()),
        "embedding.cluster" => json!(e.cluster),
        "embedding.model" => json!(e.model),
        "embedding.authHeader" => json!(e.auth_header),
        "embedding.apiKey" => json!(e.api_key),
        "embedding.dimensions" => json!(e.dimensions),
        "embedding.timeoutMs" => json!(e.timeout_ms),
        "embedding.maxTokens" => json!(e.max_tokens),
        "embedding.parallel" => json!(e.parallel),
        "vectorStore.cluster" => json!(s.cluster),
        "vectorStore.username" => json!(s.username),
        "vectorStore.password" => json!(s.password),
        "vectorStore.database" => json!(s.database),
        "vectorStore.indexName" => json!(s.index_name),
        "vectorStore.keyPrefix" => json!(s.key_prefix),
        "vectorStore.timeoutMs" => json!(s.timeout_ms),
        "maxRequestBodyBytes" => json!(p.max_request_body_bytes),
        "maxResponseBodyBytes" => json!(p.max_response_body_bytes),
        "skipHeader" => json!(p.skip_header),
        "purge.path" => json!(p.purge.path),
        "purge.key" => json!(p.purge.key),
        "compat.fastly" => json!(p.compat.fastly),
        "compat.cloudflare" => json!(p.compat.cloudflare),
        "rules" => json!(p.rules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>()),
        _ => return None,
    })
}

/// JSON equality with numbers compared as numbers (`1` == `1.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        _ => a == b,
    }
}

/// Fields whose limits can only be reached with another field moved out of the way: `maxThreshold`
/// must be >= `threshold`, `ttlSeconds` <= `maxTtlSeconds`.
fn companion(scope: Scope, policy: Value, path: &[String]) -> Value {
    match path.join(".").as_str() {
        "maxThreshold" => with(scope, policy, &["threshold".to_string()], json!(0)),
        "maxTtlSeconds" => with(scope, policy, &["ttlSeconds".to_string()], json!(1)),
        _ => policy,
    }
}

fn is_integer(schema: &Value) -> bool {
    match &schema["type"] {
        Value::String(t) => t == "integer",
        Value::Array(ts) => ts.iter().any(|t| t == "integer"),
        _ => false,
    }
}

fn expect_rejected(v: &Value, field: &str, why: &str) {
    match parse(v) {
        Ok(_) => panic!("{why}: the parser accepted {v}"),
        Err(e) => assert_eq!(e.field, field, "{why}: rejected for another field: {e}"),
    }
}

fn expect_accepted(v: &Value, why: &str) -> Policy {
    parse(v).unwrap_or_else(|e| panic!("{why}: the parser rejected {v}: {e}"))
}

#[test]
fn every_schema_default_is_what_the_parser_fills_in() {
    let mut checked = 0;
    for (scope, leaves) in [(Scope::Top, top_leaves()), (Scope::Rule, rule_leaves())] {
        let p = expect_accepted(&scope.base(), "minimal policy");
        for l in leaves {
            let Some(default) = l.schema.get("default") else { continue };
            let name = scope.field(&l.path);
            if name == "vectorStore.type" {
                // not kept after parsing; `const` below checks that "redis" is the only value
                continue;
            }
            let got = parsed_value(&p, scope, &l.path)
                .unwrap_or_else(|| panic!("{name}: map the field in parsed_value to check its default"));
            assert!(same(&got, default), "{name}: schema default {default}, parser fills in {got}");
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} defaults checked");
}

#[test]
fn threshold_defaults_follow_the_provider_as_the_schema_says() {
    let s = schema();
    let desc = s["properties"]["threshold"]["description"].as_str().unwrap_or_default();
    assert!(desc.contains(&format!("Default {DEFAULT_THRESHOLD} for remote providers")), "{desc}");
    assert!(desc.contains(&format!("{DEFAULT_THRESHOLD_STATIC} for provider local with the static table")), "{desc}");
    assert!(desc.contains(&format!("{DEFAULT_THRESHOLD_MINILM} with all-MiniLM-L6-v2")), "{desc}");
    let local = expect_accepted(&json!({"embedding": {"provider": "local", "dimensions": 384}}), "local");
    assert_eq!(local.defaults.threshold, DEFAULT_THRESHOLD_LOCAL);
    // maxThreshold has no default of its own: "Defaults to threshold"
    assert!(s["properties"]["maxThreshold"].get("default").is_none());
    assert_eq!(local.defaults.max_threshold, DEFAULT_THRESHOLD_LOCAL);
    let p = expect_accepted(&with(Scope::Top, base(), &["threshold".into()], json!(0.2)), "threshold 0.2");
    assert_eq!(p.defaults.max_threshold, 0.2);
}

#[test]
fn every_schema_bound_is_the_parsers() {
    let mut checked = 0;
    for (scope, leaves) in [(Scope::Top, top_leaves()), (Scope::Rule, rule_leaves())] {
        for l in leaves {
            let name = scope.field(&l.path);
            let step = if is_integer(&l.schema) { 1.0 } else { 1e-6 };
            for (key, outside) in [("minimum", -step), ("maximum", step)] {
                let Some(bound) = l.schema.get(key).and_then(Value::as_f64) else { continue };
                let num = |x: f64| if is_integer(&l.schema) { json!(x as i64) } else { json!(x) };
                let on = companion(scope, with(scope, scope.base(), &l.path, num(bound)), &l.path);
                let p = expect_accepted(&on, &format!("{name} = {key} {bound}"));
                let got = parsed_value(&p, scope, &l.path).unwrap_or_else(|| panic!("{name}: map it in parsed_value"));
                assert!(same(&got, &num(bound)), "{name}: set to {bound}, parsed as {got}");
                let off = companion(scope, with(scope, scope.base(), &l.path, num(bound + outside)), &l.path);
                expect_rejected(&off, &name, &format!("{name} just past its {key} {bound}"));
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "only {checked} bounds checked");
}

#[test]
fn every_enum_and_const_is_the_parsers() {
    let mut checked = 0;
    for l in top_leaves() {
        let name = l.path.join(".");
        let allowed: Vec<Value> = match (l.schema.get("enum"), l.schema.get("const")) {
            (Some(Value::Array(e)), _) => e.clone(),
            (_, Some(c)) => vec![c.clone()],
            _ => continue,
        };
        for v in &allowed {
            let p = expect_accepted(&with(Scope::Top, base(), &l.path, v.clone()), &format!("{name} = {v}"));
            if let Some(got) = parsed_value(&p, Scope::Top, &l.path) {
                assert_eq!(&got, v, "{name}");
            }
            checked += 1;
        }
        expect_rejected(&with(Scope::Top, base(), &l.path, json!("not-a-listed-value")), &name, &name);
    }
    // provider's four values, vectorStore.type's one, verify's three
    assert_eq!(checked, 8);
}

#[test]
fn required_fields_are_required() {
    let mut objs = Vec::new();
    let s = schema();
    objects(&s, &[], &mut objs);
    let mut checked = 0;
    for (path, o) in objs {
        for r in o.get("required").and_then(Value::as_array).into_iter().flatten() {
            let Some(r) = r.as_str() else { continue };
            let mut p = path.clone();
            p.push(r.to_string());
            let field = if path.is_empty() { "(policy)".to_string() } else { path.join(".") };
            expect_rejected(&without(Scope::Top, base(), &p), &field, &format!("without {}", p.join(".")));
            checked += 1;
        }
    }
    for r in s["$defs"]["rule"]["required"].as_array().into_iter().flatten() {
        let Some(r) = r.as_str() else { continue };
        expect_rejected(&without(Scope::Rule, base_with_rule(), &[r.to_string()]), "rules[0]", r);
        checked += 1;
    }
    assert_eq!(checked, 5);
    // dependentRequired: a Redis username needs a password
    let deps = &s["properties"]["vectorStore"]["dependentRequired"];
    assert_eq!(deps, &json!({"username": ["password"]}));
    let user = with(Scope::Top, base(), &["vectorStore".into(), "username".into()], json!("u"));
    expect_rejected(&user, "vectorStore.password", "username without password");
    expect_accepted(
        &with(Scope::Top, user, &["vectorStore".into(), "password".into()], json!("p")),
        "username + password",
    );
}

#[test]
fn unknown_fields_are_rejected_where_the_schema_says_so() {
    let s = schema();
    let mut objs = Vec::new();
    objects(&s, &[], &mut objs);
    let mut rule_objs = Vec::new();
    objects(&s["$defs"]["rule"], &[], &mut rule_objs);
    let mut checked = 0;
    for (scope, objs) in [(Scope::Top, objs), (Scope::Rule, rule_objs)] {
        for (path, o) in objs {
            assert_eq!(o.get("additionalProperties"), Some(&json!(false)), "{path:?}");
            let mut p = path.clone();
            p.push("unknownField".into());
            let v = with(scope, scope.base(), &p, json!(1));
            let err = parse(&v).err().unwrap_or_else(|| panic!("{p:?}: unknown field accepted"));
            assert!(err.message.contains("unknown field"), "{p:?}: {err}");
            checked += 1;
        }
    }
    // top, embed, partition, store, embedding, vectorStore, purge, compat; rule, its embed, partition, store, match
    assert_eq!(checked, 13);
}

#[test]
fn min_lengths_and_patterns_are_the_parsers() {
    let mut checked = 0;
    let top = Scope::Top;
    for l in top_leaves() {
        let name = top.field(&l.path);
        if l.schema.get("minLength").and_then(Value::as_u64) == Some(1) {
            expect_rejected(&with(top, base(), &l.path, json!("")), &name, &format!("{name} empty"));
            checked += 1;
        }
        // One sample that breaks every pattern in the schema: a space, capitals, no leading slash.
        let bad = json!("Bad Value!");
        if l.schema.get("pattern").is_some() {
            expect_rejected(&with(top, base(), &l.path, bad.clone()), &name, &format!("{name} pattern"));
            checked += 1;
        }
        if l.schema["items"].get("pattern").is_some() {
            expect_rejected(&with(top, base(), &l.path, json!([bad])), &name, &format!("{name} items"));
            checked += 1;
        }
    }
    // the url pattern keeps user info out of the authority, as the parser does
    let url = vec!["embedding".to_string(), "url".to_string()];
    assert_eq!(
        top_leaves().iter().find(|l| l.path == url).map(|l| l.schema["pattern"].clone()),
        Some(json!("^https?://[^/@]+(/|$)"))
    );
    expect_rejected(&with(top, base(), &url, json!("http://user@emb/v1")), "embedding.url", "url with user info");
    expect_accepted(&with(top, base(), &url, json!("https://emb")), "url without a path");
    // header names are lowercased by the parser, so the schema allows capitals
    let p = expect_accepted(
        &with(top, base(), &["embedding".into(), "authHeader".into()], json!("X-Api-Key")),
        "authHeader",
    );
    assert_eq!(p.embedding.auth_header, "x-api-key");
    // rule name (minLength 1, pattern \S: not only spaces) and match paths (pattern ^/)
    let rule = schema()["$defs"]["rule"]["properties"]["name"].clone();
    assert_eq!((rule["minLength"].as_u64(), rule["pattern"].as_str()), (Some(1), Some("\\S")));
    for n in ["", "  "] {
        expect_rejected(&with(Scope::Rule, base_with_rule(), &["name".into()], json!(n)), "rules[0].name", "rule name");
    }
    for k in ["pathPrefix", "pathTemplate"] {
        let p = vec!["match".to_string(), k.to_string()];
        expect_rejected(&with(Scope::Rule, base_with_rule(), &p, json!("no-slash")), &format!("rules[0].match.{k}"), k);
    }
    // match: minProperties 1
    expect_rejected(&with(Scope::Rule, base_with_rule(), &["match".into()], json!({})), "rules[0].match", "match {}");
    // embedding.cluster, vectorStore.cluster; url, authHeader, indexName, keyPrefix, skipHeader, purge.path;
    // tenantHeaders, tenantQueryParams
    assert_eq!(checked, 10);
}

#[test]
fn rule_settings_are_the_top_level_settings() {
    let s = schema();
    for k in SETTINGS_KEYS {
        assert_eq!(
            s["$defs"]["rule"]["properties"][k], s["properties"][k],
            "rule field {k} differs from the top level"
        );
    }
}

#[test]
fn purge_key_length_and_path() {
    let schema = schema();
    let min = schema["properties"]["purge"]["properties"]["key"]["minLength"].as_u64();
    assert_eq!(min, Some(MIN_PURGE_KEY as u64));
    let key = vec!["purge".to_string(), "key".to_string()];
    let short = "k".repeat(MIN_PURGE_KEY - 1);
    expect_rejected(&with(Scope::Top, base(), &key, json!(short)), "purge.key", "short purge key");
    let p = expect_accepted(&with(Scope::Top, base(), &key, json!("k".repeat(MIN_PURGE_KEY))), "purge key");
    assert_eq!(p.purge.path, "/semantic-cache/purge");
    assert_eq!(p.purge.key.as_deref(), Some("k".repeat(MIN_PURGE_KEY).as_str()));
    let path = vec!["purge".to_string(), "path".to_string()];
    for bad in ["/a?b", "/a b", "a"] {
        expect_rejected(&with(Scope::Top, base(), &path, json!(bad)), "purge.path", bad);
    }
    assert_eq!(expect_accepted(&base(), "no purge").purge.key, None);
}

#[test]
fn index_and_prefix_follow_the_embedding_model_and_dimensions() {
    let names = |v: Value| {
        let p = expect_accepted(&v, "policy");
        (p.vector_store.index, p.vector_store.prefix)
    };
    let (index, prefix) = names(base());
    assert!(index.starts_with("semcache_idx_") && index.len() == "semcache_idx_".len() + 8, "{index}");
    assert!(prefix.starts_with("semcache:") && prefix.ends_with(':') && prefix.len() == "semcache:".len() + 9);
    let other_model = with(Scope::Top, base(), &["embedding".into(), "model".into()], json!("m2"));
    let other_dims = with(Scope::Top, base(), &["embedding".into(), "dimensions".into()], json!(65));
    let other_timeout = with(Scope::Top, base(), &["embedding".into(), "timeoutMs".into()], json!(10));
    for v in [other_model, other_dims] {
        let (i, p) = names(v);
        assert_ne!(i, index);
        assert_ne!(p, prefix);
    }
    assert_eq!(names(other_timeout), (index, prefix));
}
