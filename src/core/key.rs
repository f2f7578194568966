//! Cache partitions and exact-match keys.
//!
//! The partition is a hard pre-filter in the Redis query (a TAG), never a text prefix: an entry is
//! only ever compared with requests of the same model, tenant, provider, route, user key and
//! context.
//! Every input is length-prefixed before hashing so that no two different tuples collide by
//! concatenation.

use sha2::{Digest, Sha256};

use crate::core::policy::PartitionOpts;

/// Partition key used when the client sends no `x-semantic-cache-key`.
pub const DEFAULT_USER_KEY: &str = "_default_";

#[derive(Debug, Clone, PartialEq)]
pub struct PartitionInputs<'a> {
    pub model: &'a str,
    /// Credential the caller presented (hashed here, never stored); `None` = shared cache.
    pub tenant: Option<&'a str>,
    /// Rule name or Envoy route name; `None` when the policy doesn't partition by route.
    pub route: Option<&'a str>,
    /// The upstream provider (see `provider_id`); `None` when the policy doesn't partition by it.
    pub provider: Option<&'a str>,
    pub user_key: &'a str,
    /// Canonical context (system prompt, earlier turns, answer-changing parameters).
    pub context: &'a str,
    /// A client-chosen exact key (`cf-aig-cache-key`): it replaces the context, so requests with
    /// the same key share one entry whatever their prompts, but never across the other inputs.
    pub custom_key: Option<&'a str>,
}

fn field(h: &mut Sha256, label: &str, value: Option<&str>) {
    h.update(label.as_bytes());
    match value {
        Some(v) => {
            h.update([1u8]);
            h.update((v.len() as u64).to_le_bytes());
            h.update(v.as_bytes());
        }
        None => h.update([0u8]),
    }
}

/// 32 lowercase hex chars: safe as a RediSearch TAG value without escaping.
pub fn partition_tag(p: &PartitionInputs) -> String {
    let mut h = Sha256::new();
    h.update(b"semcache-partition-v1");
    field(&mut h, "model", Some(p.model));
    // The credential is hashed on its own first so the partition never depends on its raw bytes.
    let tenant = p.tenant.map(tenant_id);
    field(&mut h, "tenant", tenant.as_deref());
    field(&mut h, "route", p.route);
    field(&mut h, "provider", p.provider);
    field(&mut h, "user", Some(p.user_key));
    match p.custom_key {
        None => field(&mut h, "context", Some(p.context)),
        Some(k) => field(&mut h, "custom", Some(k)),
    }
    hex::encode(&h.finalize()[..16])
}

/// The upstream provider: the cluster the route sends to (stable for one provider whatever host
/// the client used), else the request's `:authority`. `None` when neither is known.
pub fn provider_id(cluster: Option<&str>, authority: Option<&str>) -> Option<String> {
    match (cluster.filter(|c| !c.is_empty()), authority.map(str::trim).filter(|a| !a.is_empty())) {
        (Some(c), _) => Some(format!("cluster:{c}")),
        (None, Some(a)) => Some(format!("host:{}", a.to_ascii_lowercase())),
        (None, None) => None,
    }
}

/// The caller's credential: the first present tenant header, else the first tenant query parameter
/// in `path` (Gemini's `?key=`). Only ever hashed (`tenant_id`), never logged or stored.
pub fn tenant_credential(opts: &PartitionOpts, header: &dyn Fn(&str) -> Option<String>, path: &str) -> Option<String> {
    if !opts.tenant {
        return None;
    }
    if let Some(v) = opts.tenant_headers.iter().find_map(|h| header(h).filter(|v| !v.trim().is_empty())) {
        return Some(v);
    }
    let query = path.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    opts.tenant_query_params.iter().find_map(|name| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, v)| k == name && !v.is_empty())
            // Labelled so a query key never equals a header value of the same bytes.
            .map(|(_, v)| format!("query:{name}={v}"))
    })
}

/// Opaque tenant id derived from a credential header value.
pub fn tenant_id(credential: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"semcache-tenant-v1");
    h.update(credential.trim().as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// Redis key of the entry for (partition, normalised embedded text): the exact-match tier looks
/// this key up before any embedding is computed, and the semantic tier stores under it.
pub fn entry_key(prefix: &str, tag: &str, embed_text: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"semcache-entry-v1");
    field(&mut h, "partition", Some(tag));
    field(&mut h, "text", Some(embed_text));
    format!("{prefix}{}", hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> PartitionInputs<'static> {
        PartitionInputs {
            model: "m",
            tenant: Some("Bearer a"),
            route: Some("r"),
            provider: Some("cluster:p"),
            user_key: DEFAULT_USER_KEY,
            context: "{}",
            custom_key: None,
        }
    }

    #[test]
    fn every_input_changes_the_partition() {
        let base = partition_tag(&inputs());
        assert_eq!(base.len(), 32);
        assert!(base.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        let variants = [
            PartitionInputs { model: "m2", ..inputs() },
            PartitionInputs { tenant: Some("Bearer b"), ..inputs() },
            PartitionInputs { tenant: None, ..inputs() },
            PartitionInputs { route: None, ..inputs() },
            PartitionInputs { provider: Some("cluster:q"), ..inputs() },
            PartitionInputs { provider: None, ..inputs() },
            PartitionInputs { user_key: "k", ..inputs() },
            PartitionInputs { context: "{\"s\":1}", ..inputs() },
            PartitionInputs { custom_key: Some("{}"), ..inputs() },
        ];
        for v in variants {
            assert_ne!(partition_tag(&v), base, "{v:?}");
        }
        assert_eq!(partition_tag(&inputs()), base);
    }

    #[test]
    fn no_concatenation_collisions() {
        let a = PartitionInputs { model: "ab", route: Some("c"), ..inputs() };
        let b = PartitionInputs { model: "a", route: Some("bc"), ..inputs() };
        assert_ne!(partition_tag(&a), partition_tag(&b));
    }

    #[test]
    fn custom_key_replaces_the_context_only() {
        let k = |p: PartitionInputs| partition_tag(&PartitionInputs { custom_key: Some("k1"), ..p });
        // the same key shares across contexts...
        assert_eq!(k(inputs()), k(PartitionInputs { context: "{\"s\":1}", ..inputs() }));
        // ...but never across tenants, providers, models, routes, user keys or other keys
        let base = k(inputs());
        for v in [
            PartitionInputs { tenant: Some("Bearer b"), ..inputs() },
            PartitionInputs { provider: Some("cluster:q"), ..inputs() },
            PartitionInputs { model: "m2", ..inputs() },
            PartitionInputs { route: None, ..inputs() },
            PartitionInputs { user_key: "u", ..inputs() },
        ] {
            assert_ne!(k(v.clone()), base, "{v:?}");
        }
        assert_ne!(partition_tag(&PartitionInputs { custom_key: Some("k2"), ..inputs() }), base);
    }

    #[test]
    fn provider_ids() {
        assert_eq!(provider_id(Some("openai"), Some("x")), Some("cluster:openai".into()));
        assert_eq!(provider_id(Some(""), Some("API.example.com ")), Some("host:api.example.com".into()));
        assert_eq!(provider_id(None, None), None);
        assert_eq!(provider_id(None, Some(" ")), None);
    }

    fn opts() -> PartitionOpts {
        crate::core::policy::parse_policy(br#"{"embedding":{"provider":"local","dimensions":4}}"#)
            .expect("valid")
            .defaults
            .partition
    }

    #[test]
    fn tenant_from_each_apis_credential() {
        let o = opts();
        let only = |name: &'static str| move |n: &str| (n == name).then(|| "secret".to_string());
        for h in ["authorization", "api-key", "x-api-key", "x-goog-api-key"] {
            assert_eq!(tenant_credential(&o, &only(h), "/v1/x").as_deref(), Some("secret"), "{h}");
        }
        let none = |_: &str| None;
        let path = "/v1beta/models/gemini-2.0-flash:generateContent?alt=sse&key=AIza123";
        assert_eq!(tenant_credential(&o, &none, path).as_deref(), Some("query:key=AIza123"));
        assert_ne!(tenant_credential(&o, &none, "/m?key=AIza124"), tenant_credential(&o, &none, path));
        // a header wins over the query; empty values and other parameters are not credentials
        assert_eq!(tenant_credential(&o, &only("x-api-key"), path).as_deref(), Some("secret"));
        for p in ["/m?key=", "/m?monkey=1", "/m?xkey=1", "/m", "/m#key=1"] {
            assert_eq!(tenant_credential(&o, &none, p), None, "{p}");
        }
        let blank = |_: &str| Some("  ".to_string());
        assert_eq!(tenant_credential(&o, &blank, "/m"), None);
        let off = PartitionOpts { tenant: false, ..o };
        assert_eq!(tenant_credential(&off, &only("authorization"), path), None);
    }

    #[test]
    fn entry_keys() {
        let k = entry_key("p:", "t", "hello");
        assert!(k.starts_with("p:"));
        assert_eq!(k.len(), 2 + 64);
        assert_ne!(k, entry_key("p:", "t", "hello!"));
        assert_ne!(k, entry_key("p:", "u", "hello"));
    }
}
