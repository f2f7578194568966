//! Cache partitions and exact-match keys.
//!
//! The partition is a hard pre-filter in the Redis query (a TAG), never a text prefix: an entry is
//! only ever compared with requests of the same model, tenant, route, user key and context.
//! Every input is length-prefixed before hashing so that no two different tuples collide by
//! concatenation.

use sha2::{Digest, Sha256};

/// Partition key used when the client sends no `x-semantic-cache-key`.
pub const DEFAULT_USER_KEY: &str = "_default_";

#[derive(Debug, Clone, PartialEq)]
pub struct PartitionInputs<'a> {
    pub model: &'a str,
    /// Credential the caller presented (hashed here, never stored); `None` = shared cache.
    pub tenant: Option<&'a str>,
    /// Rule name or Envoy route name; `None` when the policy doesn't partition by route.
    pub route: Option<&'a str>,
    pub user_key: &'a str,
    /// Canonical context (system prompt, earlier turns, answer-changing parameters).
    pub context: &'a str,
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
    field(&mut h, "user", Some(p.user_key));
    field(&mut h, "context", Some(p.context));
    hex::encode(&h.finalize()[..16])
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
            user_key: DEFAULT_USER_KEY,
            context: "{}",
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
            PartitionInputs { user_key: "k", ..inputs() },
            PartitionInputs { context: "{\"s\":1}", ..inputs() },
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
    fn entry_keys() {
        let k = entry_key("p:", "t", "hello");
        assert!(k.starts_with("p:"));
        assert_eq!(k.len(), 2 + 64);
        assert_ne!(k, entry_key("p:", "t", "hello!"));
        assert_ne!(k, entry_key("p:", "u", "hello"));
    }
}
