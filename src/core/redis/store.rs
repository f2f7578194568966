//! The connection settings of a policy and the check of a store pipeline's replies.

use crate::core::policy::Policy;
use crate::core::redis::resp::{self, RedisConn, Reply};

pub fn conn_of(policy: &Policy) -> RedisConn {
    let vs = &policy.vector_store;
    RedisConn { username: vs.username.clone(), password: vs.password.clone(), database: vs.database }
}

/// Checks the replies of a store pipeline (FT.CREATE, HSET, EXPIRE). "Index already exists" is
/// the normal answer to FT.CREATE.
pub fn check_store_reply(preamble: usize, reply: Option<&[u8]>) -> Result<(), String> {
    let bytes = reply.ok_or("no response (timeout or connection failure)")?;
    let replies = resp::parse_replies(bytes).map_err(|e| e.to_string())?;
    let replies = resp::split_after_preamble(preamble, replies).map_err(|e| e.to_string())?;
    if replies.len() != 3 {
        return Err(format!("expected 3 replies, got {}", replies.len()));
    }
    for (i, r) in replies.iter().enumerate() {
        if let Reply::Error(msg) = r {
            if !(i == 0 && resp::is_index_exists(msg)) {
                return Err(format!("redis error: {msg}"));
            }
        }
    }
    match replies.get(2) {
        Some(Reply::Integer(1)) => Ok(()),
        _ => Err("EXPIRE did not apply".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_reply_check() {
        assert_eq!(check_store_reply(0, Some(b"+OK\r\n:6\r\n:1\r\n+OK\r\n")), Ok(()));
        assert_eq!(check_store_reply(0, Some(b"-Index already exists\r\n:6\r\n:1\r\n+OK\r\n")), Ok(()));
        assert_eq!(check_store_reply(1, Some(b"+OK\r\n-Index already exists\r\n:6\r\n:1\r\n+OK\r\n")), Ok(()));
        assert!(check_store_reply(1, Some(b"-WRONGPASS\r\n-ERR\r\n:0\r\n:0\r\n+OK\r\n")).is_err());
        assert!(check_store_reply(0, Some(b"+OK\r\n-ERR oom\r\n:0\r\n+OK\r\n")).is_err());
        assert!(check_store_reply(0, None).is_err());
        assert!(check_store_reply(0, Some(b"+OK\r\n")).is_err());
    }
}
