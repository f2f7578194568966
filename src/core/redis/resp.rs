//! Redis RESP2 pipelines for the vector store, encoded and decoded with `redis-protocol`.
//!
//! The filter talks to Redis through an `envoy.upstreams.http.tcp` cluster: the POST body is a
//! whole pipeline (`AUTH`, `SELECT`, the commands, `QUIT`) and the response body is every reply
//! concatenated. `QUIT` makes Redis close the connection, which ends the HTTP response.
//! Everything here is host-free and works on byte slices.

use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::encode::encode_borrowed;
use redis_protocol::resp2::types::{BorrowedFrame, OwnedFrame};
use thiserror::Error;

use crate::core::redis::nesting;
use crate::core::savings::{self, Savings};

/// Connection settings that turn into the pipeline preamble.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisConn {
    pub username: Option<String>,
    pub password: Option<String>,
    pub database: u32,
}

/// One decoded RESP2 reply.
///
/// RESP2 has one null on the wire for both `$-1` and `*-1` and `redis-protocol` decodes both to
/// the same frame, so a null always comes back as `Bulk(None)`; `Array(None)` is never produced
/// by [`parse_replies`] but callers may construct it.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum RespError {
    /// The byte stream ended inside a frame (connection cut, timeout).
    #[error("incomplete RESP reply")]
    Incomplete,
    /// The bytes are not RESP2.
    #[error("malformed RESP reply: {0}")]
    Protocol(String),
    /// `AUTH` or `SELECT` was refused; the message is Redis' error text.
    #[error("redis AUTH/SELECT failed: {0}")]
    Auth(String),
    /// Redis answered a command with an error reply.
    #[error("redis error: {0}")]
    Server(String),
    /// The reply stream does not have one reply per command.
    #[error("expected {expected} replies, got {got}")]
    ReplyCount { expected: usize, got: usize },
    /// A reply has a type or layout the command cannot produce.
    #[error("unexpected reply: {0}")]
    Unexpected(&'static str),
    /// A field requested with `RETURN` is absent from a search hit.
    #[error("search hit lacks field `{0}`")]
    MissingField(&'static str),
    /// A field is present but does not parse (distance, created, utf-8 strings).
    #[error("search hit has an invalid `{0}` field")]
    InvalidField(&'static str),
}

/// Number of replies the preamble produces (AUTH and/or SELECT).
/// Number of replies (`AUTH`, `SELECT`) that precede the commands' own replies.
pub fn preamble_len(conn: &RedisConn) -> usize {
    usize::from(conn.password.is_some()) + usize::from(conn.database != 0)
}

fn preamble(conn: &RedisConn) -> Vec<Vec<Vec<u8>>> {
    let mut cmds = Vec::with_capacity(2);
    // AUTH needs a password; a username alone (ACL user with `nopass`) needs no AUTH at all.
    if let Some(password) = &conn.password {
        let mut auth = vec![b"AUTH".to_vec()];
        if let Some(user) = &conn.username {
            auth.push(user.as_bytes().to_vec());
        }
        auth.push(password.as_bytes().to_vec());
        cmds.push(auth);
    }
    if conn.database != 0 {
        cmds.push(vec![b"SELECT".to_vec(), conn.database.to_string().into_bytes()]);
    }
    cmds
}

/// Appends one command as an array of bulk strings.
fn encode_command(out: &mut Vec<u8>, cmd: &[Vec<u8>]) -> Result<(), RespError> {
    let parts: Vec<BorrowedFrame<'_>> = cmd.iter().map(|a| BorrowedFrame::BulkString(a.as_slice())).collect();
    let frame = BorrowedFrame::Array(&parts);
    let start = out.len();
    out.resize(start + frame.encode_len(false), 0);
    match encode_borrowed(&mut out[start..], &frame, false) {
        Ok(_) => Ok(()),
        Err(e) => {
            out.truncate(start);
            Err(RespError::Protocol(e.to_string()))
        }
    }
}

/// Encodes `[AUTH] [SELECT] cmds... QUIT` as one RESP2 byte string.
///
/// Encoding into a buffer sized by `encode_len` cannot fail for bulk-string arrays; should the
/// library ever refuse, the result is empty rather than a pipeline with a command missing
/// (which would shift every reply); Redis then answers nothing and the caller fails open.
pub fn pipeline(conn: &RedisConn, cmds: &[Vec<Vec<u8>>]) -> Vec<u8> {
    let mut out = Vec::new();
    let quit = [b"QUIT".to_vec()];
    let all = preamble(conn)
        .iter()
        .chain(cmds.iter())
        .map(Vec::as_slice)
        .chain(std::iter::once(&quit[..]))
        .try_for_each(|cmd| encode_command(&mut out, cmd));
    match all {
        Ok(()) => out,
        Err(e) => {
            log::error!("semantic_cache: RESP encoding failed: {e}");
            Vec::new()
        }
    }
}

fn from_frame(frame: OwnedFrame) -> Reply {
    match frame {
        OwnedFrame::SimpleString(s) => Reply::Simple(String::from_utf8_lossy(&s).into_owned()),
        OwnedFrame::Error(e) => Reply::Error(e),
        OwnedFrame::Integer(i) => Reply::Integer(i),
        OwnedFrame::BulkString(b) => Reply::Bulk(Some(b)),
        OwnedFrame::Array(items) => Reply::Array(Some(items.into_iter().map(from_frame).collect())),
        OwnedFrame::Null => Reply::Bulk(None),
    }
}

/// Decodes every frame of a concatenated reply stream.
pub fn parse_replies(bytes: &[u8]) -> Result<Vec<Reply>, RespError> {
    // The decoder recurses per nesting level: bound it first (see nesting.rs).
    nesting::check_depth(bytes, nesting::MAX_DEPTH)?;
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        match decode(rest) {
            Ok(Some((frame, used))) if used > 0 && used <= rest.len() => {
                out.push(from_frame(frame));
                rest = &rest[used..];
            }
            // A zero-length frame would loop forever; the library never returns one, but be sure.
            Ok(Some(_)) => return Err(RespError::Protocol("decoder made no progress".into())),
            Ok(None) => return Err(RespError::Incomplete),
            Err(e) => return Err(RespError::Protocol(e.to_string())),
        }
    }
    Ok(out)
}

/// Strips the preamble replies and the trailing `QUIT` reply, leaving one reply per command.
///
/// The `QUIT` `+OK` must be present: without it the stream was cut short at a frame boundary
/// and the remaining replies cannot be trusted to line up. Callers should still check the count
/// against their command list (or use [`split_exact`]).
pub fn split_replies(conn: &RedisConn, replies: Vec<Reply>) -> Result<Vec<Reply>, RespError> {
    split_after_preamble(preamble_len(conn), replies)
}

/// [`split_replies`] for a pipeline whose preamble had `pre` commands.
pub fn split_after_preamble(pre: usize, mut replies: Vec<Reply>) -> Result<Vec<Reply>, RespError> {
    if replies.len() < pre + 1 {
        return Err(RespError::ReplyCount { expected: pre + 1, got: replies.len() });
    }
    for reply in &replies[..pre] {
        match reply {
            Reply::Simple(_) => {}
            Reply::Error(msg) => return Err(RespError::Auth(msg.clone())),
            _ => return Err(RespError::Unexpected("AUTH/SELECT reply is not a status")),
        }
    }
    match replies.pop() {
        Some(Reply::Simple(s)) if s == "OK" => {}
        _ => return Err(RespError::Unexpected("reply stream does not end with the QUIT reply")),
    }
    Ok(replies.split_off(pre))
}

/// The one reply of a single-command pipeline.
pub fn single_reply(conn: &RedisConn, bytes: &[u8]) -> Result<Reply, RespError> {
    let mut one = split_exact(conn, parse_replies(bytes)?, 1)?;
    one.pop().ok_or(RespError::ReplyCount { expected: 1, got: 0 })
}

/// [`split_replies`] that also requires exactly `commands` replies.
pub fn split_exact(conn: &RedisConn, replies: Vec<Reply>, commands: usize) -> Result<Vec<Reply>, RespError> {
    let out = split_replies(conn, replies)?;
    if out.len() != commands {
        return Err(RespError::ReplyCount { expected: commands, got: out.len() });
    }
    Ok(out)
}

fn arg(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// `HMGET key field...`
pub fn hmget(key: &str, fields: &[&str]) -> Vec<Vec<u8>> {
    let mut cmd = vec![arg("HMGET"), arg(key)];
    cmd.extend(fields.iter().map(|f| arg(f)));
    cmd
}

/// `HSET key field value ...`
pub fn hset(key: &str, fields: &[(&str, &[u8])]) -> Vec<Vec<u8>> {
    let mut cmd = vec![arg("HSET"), arg(key)];
    for (name, value) in fields {
        cmd.push(arg(name));
        cmd.push(value.to_vec());
    }
    cmd
}

/// `EXPIRE key secs`
pub fn expire(key: &str, secs: u64) -> Vec<Vec<u8>> {
    vec![arg("EXPIRE"), arg(key), secs.to_string().into_bytes()]
}

/// `FT.CREATE` for the cache index (see docs/contract.md, "Redis data").
pub fn ft_create(index: &str, prefix: &str, dim: usize) -> Vec<Vec<u8>> {
    let mut cmd: Vec<Vec<u8>> = [
        "FT.CREATE",
        index,
        "ON",
        "HASH",
        "PREFIX",
        "1",
        prefix,
        "SCHEMA",
        "partition",
        "TAG",
        "vec",
        "VECTOR",
        "HNSW",
        "12",
        "TYPE",
        "FLOAT32",
        "DIM",
    ]
    .iter()
    .map(|s| arg(s))
    .collect();
    cmd.push(dim.to_string().into_bytes());
    // HNSW settings from bench/scale: with RediSearch's defaults (M 16, EF_RUNTIME 10) a KNN
    // inside a large partition (121k entries of 1M) found 0 of 50 near-duplicates; M 32 /
    // EF_RUNTIME 100 found every one at 100k. EF_CONSTRUCTION 400 built twice as slowly for no
    // recall gain.
    for a in ["DISTANCE_METRIC", "COSINE", "M", "32", "EF_CONSTRUCTION", "200", "EF_RUNTIME", "100"] {
        cmd.push(arg(a));
    }
    // The purge selectors (core/purge.rs).
    for f in crate::core::purge::SELECTOR_FIELDS {
        cmd.push(arg(f));
        cmd.push(arg("TAG"));
    }
    cmd
}

/// `FT.INFO index`
pub fn ft_info(index: &str) -> Vec<Vec<u8>> {
    vec![arg("FT.INFO"), arg(index)]
}

/// True for a tag our key module produces (32 lowercase hex chars), which needs no escaping.
pub fn is_valid_partition_tag(tag: &str) -> bool {
    tag.len() == 32 && tag.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Escapes a TAG value for use inside `{...}` of a query: every ASCII character other than
/// letters, digits and `_` is a query-syntax character there and gets a backslash, so a bad tag
/// can only fail to match, never change the query.
pub fn escape_tag(tag: &str) -> String {
    let mut out = String::with_capacity(tag.len());
    for c in tag.chars() {
        if c.is_ascii() && !c.is_ascii_alphanumeric() && c != '_' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `FT.SEARCH` KNN k within one partition, nearest first, returning the fields a hit and the
/// verifier need (DIALECT 2).
pub fn ft_search_knn(index: &str, partition_tag: &str, vector: &[f32], k: usize) -> Vec<Vec<u8>> {
    let tag = if is_valid_partition_tag(partition_tag) { partition_tag.to_string() } else { escape_tag(partition_tag) };
    let k = k.max(1);
    let query = format!("(@partition:{{{tag}}})=>[KNN {k} @vec $vec AS dist]");
    let mut cmd = vec![arg("FT.SEARCH"), arg(index), query.into_bytes()];
    cmd.extend(["PARAMS", "2", "vec"].iter().map(|s| arg(s)));
    cmd.push(vector_blob(vector));
    cmd.extend(
        ["SORTBY", "dist", "RETURN", "9", "dist", "body", "ctype", "created", "model", "prompt"].iter().map(|s| arg(s)),
    );
    cmd.extend(savings::FIELDS.iter().map(|s| arg(s)));
    cmd.extend(["LIMIT", "0"].iter().map(|s| arg(s)));
    cmd.push(k.to_string().into_bytes());
    cmd.extend(["DIALECT", "2"].iter().map(|s| arg(s)));
    cmd
}

/// FLOAT32 little-endian blob, the layout RediSearch expects for `TYPE FLOAT32`.
pub fn vector_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// One KNN result.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub key: String,
    /// COSINE distance: 0 = identical, 2 = opposite.
    pub distance: f32,
    pub body: Vec<u8>,
    pub ctype: String,
    pub created: u64,
    pub model: String,
    /// The stored prompt (normalised text) the verifier compares; `None` for entries written
    /// before it was stored.
    pub prompt: Option<String>,
    /// What serving this entry saves (zeros for entries stored before it was recorded).
    pub savings: Savings,
}

fn reply_bytes(r: &Reply) -> Option<&[u8]> {
    match r {
        Reply::Bulk(Some(b)) => Some(b),
        Reply::Simple(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn field_str(value: &[u8], name: &'static str) -> Result<String, RespError> {
    String::from_utf8(value.to_vec()).map_err(|_| RespError::InvalidField(name))
}

/// Every document of an `FT.SEARCH ... DIALECT 2` reply (`[total, key, [field, value, ...], ...]`), in reply order (nearest first with
/// `SORTBY dist`). A document whose fields are nil is skipped: the hash expired between indexing
/// and the search, which is a miss for that candidate, not a Redis failure.
pub fn parse_search_all(reply: &Reply) -> Result<Vec<SearchHit>, RespError> {
    let items = match reply {
        Reply::Error(msg) => return Err(RespError::Server(msg.clone())),
        Reply::Array(Some(items)) => items,
        _ => return Err(RespError::Unexpected("FT.SEARCH reply is not an array")),
    };
    let total = match items.first() {
        Some(Reply::Integer(n)) => *n,
        _ => return Err(RespError::Unexpected("FT.SEARCH reply lacks the total")),
    };
    if total <= 0 {
        return Ok(Vec::new());
    }
    let docs = &items[1..];
    if docs.is_empty() {
        return Err(RespError::Unexpected("FT.SEARCH reply lacks the document key"));
    }
    let mut hits = Vec::with_capacity(docs.len() / 2);
    for doc in docs.chunks(2) {
        let key = match doc.first().and_then(reply_bytes) {
            Some(k) => field_str(k, "key")?,
            None => return Err(RespError::Unexpected("FT.SEARCH reply lacks the document key")),
        };
        match doc.get(1) {
            Some(Reply::Array(Some(f))) => hits.push(parse_document(key, f)?),
            Some(Reply::Array(None)) | Some(Reply::Bulk(None)) => {}
            _ => return Err(RespError::Unexpected("FT.SEARCH document fields are not an array")),
        }
    }
    Ok(hits)
}

fn parse_document(key: String, fields: &[Reply]) -> Result<SearchHit, RespError> {
    if !fields.len().is_multiple_of(2) {
        return Err(RespError::Unexpected("FT.SEARCH document fields are not pairs"));
    }
    let (mut dist, mut body, mut ctype, mut created, mut model, mut prompt) = (None, None, None, None, None, None);
    let mut saved: [Option<&[u8]>; 3] = [None; 3];
    for pair in fields.chunks_exact(2) {
        let [name, value] = pair else { continue };
        let (Some(name), Some(value)) = (reply_bytes(name), reply_bytes(value)) else {
            // A nil value is the same as an absent field: caught below if it was required.
            continue;
        };
        match name {
            b"dist" => dist = Some(value),
            b"body" => body = Some(value),
            b"ctype" => ctype = Some(value),
            b"created" => created = Some(value),
            b"model" => model = Some(value),
            b"prompt" => prompt = Some(value),
            other => {
                if let Some(i) = savings::FIELDS.iter().position(|f| f.as_bytes() == other) {
                    saved[i] = Some(value);
                }
            }
        }
    }
    let dist = dist.ok_or(RespError::MissingField("dist"))?;
    let distance = std::str::from_utf8(dist)
        .ok()
        .and_then(|s| s.trim().parse::<f32>().ok())
        .filter(|d| d.is_finite())
        .ok_or(RespError::InvalidField("dist"))?;
    let created = std::str::from_utf8(created.ok_or(RespError::MissingField("created"))?)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .ok_or(RespError::InvalidField("created"))?;
    Ok(SearchHit {
        key,
        distance,
        body: body.ok_or(RespError::MissingField("body"))?.to_vec(),
        ctype: field_str(ctype.ok_or(RespError::MissingField("ctype"))?, "ctype")?,
        created,
        model: field_str(model.ok_or(RespError::MissingField("model"))?, "model")?,
        prompt: prompt.map(|p| field_str(p, "prompt")).transpose()?,
        savings: Savings::from_values(saved),
    })
}

/// The `DIM` of the vector field named `vec` in an `FT.INFO` reply; `Ok(None)` when the index has
/// no such field. RediSearch 2.10 lists each attribute as a flat [key, value, ...] array.
pub fn parse_ft_info_dim(reply: &Reply) -> Result<Option<usize>, RespError> {
    let items = match reply {
        Reply::Error(msg) => return Err(RespError::Server(msg.clone())),
        Reply::Array(Some(items)) => items,
        _ => return Err(RespError::Unexpected("FT.INFO reply is not an array")),
    };
    let text = |r: &Reply| match r {
        Reply::Bulk(Some(b)) => String::from_utf8(b.clone()).ok(),
        Reply::Simple(s) => Some(s.clone()),
        _ => None,
    };
    let attributes =
        items.chunks(2).find(|kv| kv.first().and_then(text).as_deref() == Some("attributes")).and_then(|kv| kv.get(1));
    let Some(Reply::Array(Some(attributes))) = attributes else { return Ok(None) };
    for attr in attributes {
        let Reply::Array(Some(kv)) = attr else { continue };
        let get = |key: &str| {
            kv.chunks(2)
                .find(|p| p.first().and_then(text).is_some_and(|k| k.eq_ignore_ascii_case(key)))
                .and_then(|p| p.get(1))
        };
        if get("attribute").and_then(text).as_deref() != Some("vec") {
            continue;
        }
        return match get("dim") {
            Some(Reply::Integer(d)) => Ok(usize::try_from(*d).ok()),
            Some(r) => Ok(text(r).and_then(|t| t.parse().ok())),
            None => Ok(None),
        };
    }
    Ok(None)
}

/// Reads an `HMGET` reply; `Ok(None)` when every field is nil (no such key).
pub fn parse_hmget(reply: &Reply) -> Result<Option<Vec<Option<Vec<u8>>>>, RespError> {
    let items = match reply {
        Reply::Error(msg) => return Err(RespError::Server(msg.clone())),
        Reply::Array(Some(items)) => items,
        _ => return Err(RespError::Unexpected("HMGET reply is not an array")),
    };
    let mut values = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Reply::Bulk(v) => values.push(v.clone()),
            _ => return Err(RespError::Unexpected("HMGET value is not a bulk string")),
        }
    }
    if values.iter().all(Option::is_none) {
        return Ok(None);
    }
    Ok(Some(values))
}

fn contains_ci(haystack: &str, needle: &str) -> bool {
    haystack.to_ascii_lowercase().contains(needle)
}

/// The index does not exist yet (first store creates it). Wording differs by version:
/// RediSearch 2.8–2.10.x `idx: no such index`, later 2.10.x `No such index idx`,
/// FT.INFO `Unknown index name` / `Unknown Index name`, 8.x `SEARCH_INDEX_NOT_FOUND Index not found: idx`.
pub fn is_missing_index(err_msg: &str) -> bool {
    ["no such index", "unknown index name", "index not found", "search_index_not_found"]
        .iter()
        .any(|n| contains_ci(err_msg, n))
}

/// `FT.CREATE` on an existing index: `Index already exists` (8.x prefixes `SEARCH_INDEX_EXISTS`).
pub fn is_index_exists(err_msg: &str) -> bool {
    contains_ci(err_msg, "index already exists")
}

/// The query vector's size differs from the index DIM (embedding model changed):
/// `Error parsing vector similarity query: query vector blob size (8) does not match index's
/// expected size (1536).` (RediSearch 2.6 to 8.x).
pub fn is_dimension_mismatch(err_msg: &str) -> bool {
    contains_ci(err_msg, "does not match index's expected size")
        || (contains_ci(err_msg, "vector blob size") && contains_ci(err_msg, "does not match"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nearest document only (what a KNN 1 answer holds).
    fn parse_search(reply: &Reply) -> Result<Option<SearchHit>, RespError> {
        Ok(parse_search_all(reply)?.into_iter().next())
    }

    fn conn(user: Option<&str>, pw: Option<&str>, db: u32) -> RedisConn {
        RedisConn { username: user.map(str::to_string), password: pw.map(str::to_string), database: db }
    }

    fn bulk(s: &str) -> Reply {
        Reply::Bulk(Some(s.as_bytes().to_vec()))
    }

    #[test]
    fn pipeline_without_preamble() {
        let out = pipeline(&RedisConn::default(), &[expire("k", 5)]);
        assert_eq!(out, b"*3\r\n$6\r\nEXPIRE\r\n$1\r\nk\r\n$1\r\n5\r\n*1\r\n$4\r\nQUIT\r\n".to_vec());
    }

    #[test]
    fn pipeline_with_auth_user_and_select() {
        let out = pipeline(&conn(Some("u"), Some("p"), 3), &[]);
        let expected =
            b"*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$1\r\np\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n*1\r\n$4\r\nQUIT\r\n";
        assert_eq!(out, expected.to_vec());
    }

    #[test]
    fn pipeline_with_password_only() {
        let out = pipeline(&conn(None, Some("p w"), 0), &[]);
        assert!(out.starts_with(b"*2\r\n$4\r\nAUTH\r\n$3\r\np w\r\n*1\r\n$4\r\nQUIT"));
    }

    #[test]
    fn pipeline_username_without_password_sends_no_auth() {
        let out = pipeline(&conn(Some("u"), None, 0), &[]);
        assert_eq!(out, b"*1\r\n$4\r\nQUIT\r\n".to_vec());
    }

    #[test]
    fn pipeline_binary_safe() {
        let blob = vec![0u8, b'\r', b'\n', 255];
        let out = pipeline(&RedisConn::default(), &[hset("k", &[("vec", &blob)])]);
        let replies = parse_replies(&out).unwrap();
        assert_eq!(replies[0], Reply::Array(Some(vec![bulk("HSET"), bulk("k"), bulk("vec"), Reply::Bulk(Some(blob))])));
    }

    #[test]
    fn parse_all_reply_types() {
        let bytes = b"+OK\r\n-ERR bad\r\n:42\r\n$3\r\nabc\r\n$-1\r\n*2\r\n:1\r\n$0\r\n\r\n*-1\r\n";
        let r = parse_replies(bytes).unwrap();
        assert_eq!(
            r,
            vec![
                Reply::Simple("OK".into()),
                Reply::Error("ERR bad".into()),
                Reply::Integer(42),
                bulk("abc"),
                Reply::Bulk(None),
                Reply::Array(Some(vec![Reply::Integer(1), Reply::Bulk(Some(vec![]))])),
                Reply::Bulk(None),
            ]
        );
    }

    #[test]
    fn parse_empty_is_no_replies() {
        assert_eq!(parse_replies(b"").unwrap(), vec![]);
    }

    #[test]
    fn parse_incomplete_trailing_frame() {
        assert_eq!(parse_replies(b"+OK\r\n$5\r\nab"), Err(RespError::Incomplete));
        assert_eq!(parse_replies(b"*2\r\n:1\r\n"), Err(RespError::Incomplete));
        assert_eq!(parse_replies(b"+OK"), Err(RespError::Incomplete));
    }

    #[test]
    fn parse_malformed() {
        assert!(matches!(parse_replies(b"?what\r\n"), Err(RespError::Protocol(_))));
        assert!(matches!(parse_replies(b":abc\r\n"), Err(RespError::Protocol(_))));
        assert!(matches!(parse_replies(b"$-5\r\n"), Err(RespError::Protocol(_))));
    }

    #[test]
    fn parse_huge_declared_array_does_not_allocate_it() {
        assert_eq!(parse_replies(b"*999999999\r\n:1\r\n"), Err(RespError::Incomplete));
    }

    #[test]
    fn split_plain() {
        let replies = vec![Reply::Integer(1), Reply::Simple("OK".into())];
        assert_eq!(split_replies(&RedisConn::default(), replies).unwrap(), vec![Reply::Integer(1)]);
    }

    #[test]
    fn split_drops_preamble() {
        let c = conn(None, Some("p"), 2);
        let replies = vec![
            Reply::Simple("OK".into()),
            Reply::Simple("OK".into()),
            Reply::Integer(7),
            Reply::Error("ERR x".into()),
            Reply::Simple("OK".into()),
        ];
        assert_eq!(split_replies(&c, replies).unwrap(), vec![Reply::Integer(7), Reply::Error("ERR x".into())]);
    }

    #[test]
    fn split_auth_failure() {
        let c = conn(Some("u"), Some("p"), 0);
        let replies = vec![
            Reply::Error("WRONGPASS invalid username-password pair".into()),
            Reply::Error("NOAUTH Authentication required.".into()),
            Reply::Simple("OK".into()),
        ];
        assert_eq!(split_replies(&c, replies), Err(RespError::Auth("WRONGPASS invalid username-password pair".into())));
    }

    #[test]
    fn split_select_failure() {
        let c = conn(None, None, 99);
        let replies = vec![Reply::Error("ERR DB index is out of range".into()), Reply::Simple("OK".into())];
        assert!(matches!(split_replies(&c, replies), Err(RespError::Auth(_))));
    }

    #[test]
    fn split_preamble_wrong_type() {
        let c = conn(None, None, 1);
        let replies = vec![Reply::Integer(1), Reply::Simple("OK".into())];
        assert!(matches!(split_replies(&c, replies), Err(RespError::Unexpected(_))));
    }

    #[test]
    fn split_missing_quit() {
        let replies = vec![Reply::Integer(1)];
        assert!(matches!(split_replies(&RedisConn::default(), replies), Err(RespError::Unexpected(_))));
        assert!(matches!(
            split_replies(&conn(None, Some("p"), 0), vec![Reply::Simple("OK".into())]),
            Err(RespError::ReplyCount { .. })
        ));
        assert!(matches!(split_replies(&RedisConn::default(), vec![]), Err(RespError::ReplyCount { .. })));
    }

    #[test]
    fn split_exact_checks_count() {
        let replies = vec![Reply::Integer(1), Reply::Simple("OK".into())];
        assert_eq!(split_exact(&RedisConn::default(), replies.clone(), 1).unwrap().len(), 1);
        assert_eq!(split_exact(&RedisConn::default(), replies, 2), Err(RespError::ReplyCount { expected: 2, got: 1 }));
    }

    fn args(cmd: &[Vec<u8>]) -> Vec<String> {
        cmd.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect()
    }

    #[test]
    fn builders() {
        assert_eq!(args(&hmget("k", &["body", "ctype"])), ["HMGET", "k", "body", "ctype"]);
        assert_eq!(args(&hmget("k", &[])), ["HMGET", "k"]);
        assert_eq!(args(&hset("k", &[("a", b"1"), ("b", b"")])), ["HSET", "k", "a", "1", "b", ""]);
        assert_eq!(args(&expire("k", 3600)), ["EXPIRE", "k", "3600"]);
        assert_eq!(args(&ft_info("idx")), ["FT.INFO", "idx"]);
        assert_eq!(
            args(&ft_create("idx", "semcache:", 384)).join(" "),
            "FT.CREATE idx ON HASH PREFIX 1 semcache: SCHEMA partition TAG vec VECTOR HNSW 12 \
             TYPE FLOAT32 DIM 384 DISTANCE_METRIC COSINE M 32 EF_CONSTRUCTION 200 EF_RUNTIME 100 \
             sel_tenant TAG sel_key TAG sel_model TAG sel_text TAG"
        );
    }

    #[test]
    fn knn_command() {
        let tag = "0123456789abcdef0123456789abcdef";
        let cmd = ft_search_knn("idx", tag, &[1.0, -2.5], 5);
        assert_eq!(
            args(&cmd[..3]),
            ["FT.SEARCH", "idx", &format!("(@partition:{{{tag}}})=>[KNN 5 @vec $vec AS dist]")]
        );
        assert_eq!(args(&cmd[3..6]), ["PARAMS", "2", "vec"]);
        assert_eq!(cmd[6], vector_blob(&[1.0, -2.5]));
        assert_eq!(
            args(&cmd[7..]).join(" "),
            "SORTBY dist RETURN 9 dist body ctype created model prompt tok_prompt tok_completion origin_ms LIMIT 0 5 DIALECT 2"
        );
    }

    #[test]
    fn knn_escapes_bad_tags() {
        let cmd = ft_search_knn("idx", "a b}|x-É", &[], 1);
        assert_eq!(String::from_utf8_lossy(&cmd[2]), "(@partition:{a\\ b\\}\\|x\\-É})=>[KNN 1 @vec $vec AS dist]");
        assert_eq!(cmd[6], Vec::<u8>::new());
    }

    #[test]
    fn tag_validation() {
        assert!(is_valid_partition_tag("0123456789abcdef0123456789abcdef"));
        assert!(!is_valid_partition_tag("0123456789ABCDEF0123456789abcdef"));
        assert!(!is_valid_partition_tag("abc"));
        assert!(!is_valid_partition_tag(""));
        assert_eq!(escape_tag("a_b9"), "a_b9");
        assert_eq!(escape_tag("{x}"), "\\{x\\}");
    }

    #[test]
    fn blob_is_little_endian() {
        assert_eq!(vector_blob(&[1.0]), vec![0, 0, 0x80, 0x3f]);
        assert_eq!(vector_blob(&[]), Vec::<u8>::new());
        assert_eq!(vector_blob(&[0.5, -1.0]).len(), 8);
    }

    fn hit_reply(fields: Vec<Reply>) -> Reply {
        Reply::Array(Some(vec![Reply::Integer(1), bulk("semcache:abc"), Reply::Array(Some(fields))]))
    }

    fn full_fields() -> Vec<Reply> {
        vec![
            bulk("dist"),
            bulk("0.0123"),
            bulk("body"),
            bulk("{\"x\":1}"),
            bulk("ctype"),
            bulk("application/json"),
            bulk("created"),
            bulk("1700000000"),
            bulk("model"),
            bulk("gpt-4o"),
        ]
    }

    #[test]
    fn search_hit() {
        let hit = parse_search(&hit_reply(full_fields())).unwrap().unwrap();
        assert_eq!(hit.key, "semcache:abc");
        assert!((hit.distance - 0.0123).abs() < 1e-6);
        assert_eq!(hit.body, b"{\"x\":1}");
        assert_eq!(hit.ctype, "application/json");
        assert_eq!(hit.created, 1_700_000_000);
        assert_eq!(hit.model, "gpt-4o");
        assert_eq!(hit.prompt, None);
    }

    #[test]
    fn search_top_k_in_order_skipping_expired() {
        let mut second = full_fields();
        second.extend([bulk("prompt"), bulk("what is rust")]);
        second[1] = bulk("0.2");
        let r = Reply::Array(Some(vec![
            Reply::Integer(3),
            bulk("k1"),
            Reply::Array(Some(full_fields())),
            bulk("k-expired"),
            Reply::Array(None),
            bulk("k2"),
            Reply::Array(Some(second)),
        ]));
        let hits = parse_search_all(&r).unwrap();
        assert_eq!(hits.iter().map(|h| h.key.as_str()).collect::<Vec<_>>(), ["k1", "k2"]);
        assert_eq!(hits[1].prompt.as_deref(), Some("what is rust"));
        assert!((hits[1].distance - 0.2).abs() < 1e-6);
        let bad =
            Reply::Array(Some(vec![Reply::Integer(2), bulk("k1"), Reply::Array(Some(full_fields())), bulk("k2")]));
        assert!(matches!(parse_search_all(&bad), Err(RespError::Unexpected(_))));
    }

    #[test]
    fn search_no_result() {
        let r = Reply::Array(Some(vec![Reply::Integer(0)]));
        assert_eq!(parse_search(&r).unwrap(), None);
    }

    #[test]
    fn search_expired_document_is_a_miss() {
        let r = Reply::Array(Some(vec![Reply::Integer(1), bulk("k"), Reply::Bulk(None)]));
        assert_eq!(parse_search(&r).unwrap(), None);
    }

    #[test]
    fn search_error_reply() {
        let r = Reply::Error("idx: no such index".into());
        assert_eq!(parse_search(&r), Err(RespError::Server("idx: no such index".into())));
    }

    #[test]
    fn search_malformed() {
        assert!(matches!(parse_search(&Reply::Integer(1)), Err(RespError::Unexpected(_))));
        assert!(matches!(parse_search(&Reply::Array(Some(vec![]))), Err(RespError::Unexpected(_))));
        assert!(matches!(parse_search(&Reply::Array(Some(vec![Reply::Integer(1)]))), Err(RespError::Unexpected(_))));
        assert!(matches!(
            parse_search(&Reply::Array(Some(vec![Reply::Integer(1), bulk("k"), Reply::Integer(3)]))),
            Err(RespError::Unexpected(_))
        ));
        let mut odd = full_fields();
        odd.pop();
        assert!(matches!(parse_search(&hit_reply(odd)), Err(RespError::Unexpected(_))));
    }

    #[test]
    fn search_missing_and_invalid_fields() {
        for (i, name) in ["dist", "body", "ctype", "created", "model"].iter().enumerate() {
            let mut f = full_fields();
            f.drain(i * 2..i * 2 + 2);
            assert_eq!(parse_search(&hit_reply(f)), Err(RespError::MissingField(name)), "{name}");
        }
        let mut f = full_fields();
        f[1] = bulk("close");
        assert_eq!(parse_search(&hit_reply(f)), Err(RespError::InvalidField("dist")));
        let mut f = full_fields();
        f[1] = bulk("nan");
        assert_eq!(parse_search(&hit_reply(f)), Err(RespError::InvalidField("dist")));
        let mut f = full_fields();
        f[7] = bulk("-1");
        assert_eq!(parse_search(&hit_reply(f)), Err(RespError::InvalidField("created")));
        let mut f = full_fields();
        f[9] = Reply::Bulk(Some(vec![0xff]));
        assert_eq!(parse_search(&hit_reply(f)), Err(RespError::InvalidField("model")));
        let mut f = full_fields();
        f[3] = Reply::Bulk(None);
        assert_eq!(parse_search(&hit_reply(f)), Err(RespError::MissingField("body")));
    }

    #[test]
    fn hmget_replies() {
        let all_nil = Reply::Array(Some(vec![Reply::Bulk(None), Reply::Bulk(None)]));
        assert_eq!(parse_hmget(&all_nil).unwrap(), None);
        let some = Reply::Array(Some(vec![bulk("a"), Reply::Bulk(None)]));
        assert_eq!(parse_hmget(&some).unwrap(), Some(vec![Some(b"a".to_vec()), None]));
        assert_eq!(parse_hmget(&Reply::Array(Some(vec![]))).unwrap(), None);
        assert_eq!(parse_hmget(&Reply::Error("WRONGTYPE x".into())), Err(RespError::Server("WRONGTYPE x".into())));
        assert!(matches!(parse_hmget(&Reply::Integer(1)), Err(RespError::Unexpected(_))));
        assert!(matches!(parse_hmget(&Reply::Array(Some(vec![Reply::Integer(1)]))), Err(RespError::Unexpected(_))));
    }

    // Byte strings captured from redis-server 8.2.3 with RediSearch 2.10.5 (`--loadmodule`),
    // answering pipelines built by `pipeline()` with the builders above.
    const REAL_HIT: &[u8] = b"*3\r\n:1\r\n$11\r\nsemcache:k1\r\n*10\r\n$4\r\ndist\r\n$16\r\n0.00611627101898\r\n$4\r\nbody\r\n$23\r\n{\"id\":\"x\",\"choices\":[]}\r\n$5\r\nctype\r\n$16\r\napplication/json\r\n$7\r\ncreated\r\n$10\r\n1700000000\r\n$5\r\nmodel\r\n$6\r\ngpt-4o\r\n+OK\r\n";
    const REAL_NO_MATCH: &[u8] = b"*1\r\n:0\r\n+OK\r\n";
    const REAL_NO_INDEX: &[u8] = b"-idx: no such index\r\n+OK\r\n";
    const REAL_INFO_NO_INDEX: &[u8] = b"-Unknown index name\r\n+OK\r\n";
    const REAL_CREATE_TWICE: &[u8] = b"+OK\r\n-Index already exists\r\n+OK\r\n";
    const REAL_DIM_MISMATCH: &[u8] = b"-Error parsing vector similarity query: query vector blob size (8) does not match index's expected size (16).\r\n+OK\r\n";
    const REAL_STORE_AND_GET: &[u8] = b":6\r\n:1\r\n*4\r\n$23\r\n{\"id\":\"x\",\"choices\":[]}\r\n$16\r\napplication/json\r\n$10\r\n1700000000\r\n$6\r\ngpt-4o\r\n*2\r\n$-1\r\n$-1\r\n+OK\r\n";
    const REAL_SELECT_OUT_OF_RANGE: &[u8] =
        b"-ERR DB index is out of range\r\n*1\r\n$23\r\n{\"id\":\"x\",\"choices\":[]}\r\n+OK\r\n";

    fn real(bytes: &[u8], c: &RedisConn, n: usize) -> Result<Vec<Reply>, RespError> {
        split_exact(c, parse_replies(bytes)?, n)
    }

    #[test]
    fn real_redis_search_replies() {
        let c = RedisConn::default();
        let hit = parse_search(&real(REAL_HIT, &c, 1).unwrap()[0]).unwrap().unwrap();
        assert_eq!(hit.key, "semcache:k1");
        assert!((hit.distance - 0.006_116_271).abs() < 1e-7);
        assert_eq!(hit.body, br#"{"id":"x","choices":[]}"#);
        assert_eq!(
            (hit.ctype.as_str(), hit.created, hit.model.as_str()),
            ("application/json", 1_700_000_000, "gpt-4o")
        );
        assert_eq!(parse_search(&real(REAL_NO_MATCH, &c, 1).unwrap()[0]).unwrap(), None);
        match parse_search(&real(REAL_NO_INDEX, &c, 1).unwrap()[0]) {
            Err(RespError::Server(m)) => assert!(is_missing_index(&m) && !is_dimension_mismatch(&m)),
            other => panic!("{other:?}"),
        }
        match parse_search(&real(REAL_DIM_MISMATCH, &c, 1).unwrap()[0]) {
            Err(RespError::Server(m)) => assert!(is_dimension_mismatch(&m) && !is_missing_index(&m)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn real_redis_admin_and_store_replies() {
        let c = RedisConn::default();
        assert_eq!(real(REAL_INFO_NO_INDEX, &c, 1).unwrap(), vec![Reply::Error("Unknown index name".into())]);
        let created = real(REAL_CREATE_TWICE, &c, 2).unwrap();
        assert_eq!(created[0], Reply::Simple("OK".into()));
        assert!(matches!(&created[1], Reply::Error(m) if is_index_exists(m)));
        let r = real(REAL_STORE_AND_GET, &c, 4).unwrap();
        assert_eq!(r[0..2], [Reply::Integer(6), Reply::Integer(1)]);
        let got = parse_hmget(&r[2]).unwrap().unwrap();
        assert_eq!(got[3].as_deref(), Some(&b"gpt-4o"[..]));
        assert_eq!(parse_hmget(&r[3]).unwrap(), None);
        let c99 = conn(None, None, 99);
        assert_eq!(
            real(REAL_SELECT_OUT_OF_RANGE, &c99, 1),
            Err(RespError::Auth("ERR DB index is out of range".into()))
        );
    }

    #[test]
    fn error_classifiers() {
        assert!(is_missing_index("idx: no such index"));
        assert!(is_missing_index("No such index semcache_idx"));
        assert!(is_missing_index("Unknown Index name"));
        assert!(is_missing_index("Unknown index name"));
        assert!(is_missing_index("SEARCH_INDEX_NOT_FOUND Index not found: idx"));
        assert!(!is_missing_index("Syntax error at offset 3"));
        assert!(is_index_exists("Index already exists"));
        assert!(!is_index_exists("Unknown index name"));
        assert!(is_dimension_mismatch(
            "Error parsing vector similarity query: query vector blob size (8) does not match \
             index's expected size (1536)."
        ));
        assert!(!is_dimension_mismatch("idx: no such index"));
        assert!(!is_dimension_mismatch(""));
    }
}
