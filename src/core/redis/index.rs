//! Index health: the root context checks (every `RECHECK_SECS`) that the RediSearch index exists
//! and has the policy's dimensions. A KNN query with a wrong-size vector only fails when the
//! partition already has documents, and an `HSET` with one is silently not indexed, so without
//! this check a dimension mismatch would quietly turn the semantic tier off.

use crate::core::policy::Policy;
use crate::core::redis::resp;
use crate::core::redis::store::conn_of;

/// How often the root context re-checks the index (an operator's fix is picked up without restart).
pub const RECHECK_SECS: u64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexHealth {
    /// Not checked yet, or Redis could not be asked: requests proceed (and fail open on their own).
    Unknown,
    Ok,
    /// No index yet: the root context creates it.
    Missing,
    /// The index exists with another DIM: requests BYPASS with `dimension-mismatch`.
    Mismatch {
        index_dim: usize,
    },
}

pub fn check_pipeline(policy: &Policy) -> Vec<u8> {
    resp::pipeline(&conn_of(policy), &[resp::ft_info(&policy.vector_store.index)])
}

pub fn create_pipeline(policy: &Policy) -> Vec<u8> {
    let vs = &policy.vector_store;
    resp::pipeline(&conn_of(policy), &[resp::ft_create(&vs.index, &vs.prefix, policy.embedding.dimensions)])
}

/// Reads the `FT.INFO` reply; `Err` when Redis could not be asked (then nothing changes).
pub fn check_reply(policy: &Policy, reply: Option<&[u8]>) -> Result<IndexHealth, String> {
    let bytes = reply.ok_or("no response (timeout or connection failure)")?;
    let reply = resp::single_reply(&conn_of(policy), bytes).map_err(|e| e.to_string())?;
    match resp::parse_ft_info_dim(&reply) {
        Ok(Some(d)) if d == policy.embedding.dimensions => Ok(IndexHealth::Ok),
        Ok(Some(d)) => Ok(IndexHealth::Mismatch { index_dim: d }),
        Ok(None) => Err(format!("index `{}` has no vector field `vec`", policy.vector_store.index)),
        Err(resp::RespError::Server(msg)) if resp::is_missing_index(&msg) => Ok(IndexHealth::Missing),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::policy::parse_policy;

    fn policy(dims: usize) -> Policy {
        let v = serde_json::json!({"embedding": {"provider": "local", "dimensions": dims},
                                   "vectorStore": {"indexName": "i"}});
        parse_policy(v.to_string().as_bytes()).expect("valid")
    }

    /// A real `FT.INFO` reply (RediSearch 2.10.5, index with DIM 32) followed by QUIT's +OK.
    const FT_INFO_DIM32: &[u8] = include_bytes!("testdata/ft_info_dim32.resp");

    #[test]
    fn health_from_real_reply() {
        assert_eq!(check_reply(&policy(32), Some(FT_INFO_DIM32)), Ok(IndexHealth::Ok));
        assert_eq!(check_reply(&policy(64), Some(FT_INFO_DIM32)), Ok(IndexHealth::Mismatch { index_dim: 32 }));
        assert_eq!(check_reply(&policy(32), Some(b"-Unknown index name\r\n+OK\r\n")), Ok(IndexHealth::Missing));
        assert!(check_reply(&policy(32), None).is_err());
        assert!(check_reply(&policy(32), Some(b"garbage")).is_err());
        assert!(check_reply(&policy(32), Some(b"-ERR other\r\n+OK\r\n")).is_err());
    }

    #[test]
    fn pipelines() {
        let p = policy(32);
        assert!(String::from_utf8_lossy(&check_pipeline(&p)).contains("FT.INFO"));
        let c = String::from_utf8_lossy(&create_pipeline(&p)).to_string();
        assert!(c.contains("FT.CREATE") && c.contains("$2\r\n32\r\n") && c.ends_with("QUIT\r\n"));
    }
}
