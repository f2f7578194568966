//! Bounds the array nesting of a RESP2 reply stream before it is decoded.
//!
//! `redis-protocol` decodes (and `Reply` converts and drops) nested arrays recursively, so a
//! reply of 10,000 `*1\r\n` headers (40 kB) overflowed a 1 MiB stack, the wasm32 default: the VM
//! aborted instead of the request failing open (found by `fuzz/` target `resp`). The replies we
//! read nest at most 3 deep (FT.SEARCH: results, a document's fields; FT.INFO: attributes), so
//! [`MAX_DEPTH`] leaves ample room. The scan is iterative and linear; anything it cannot read is
//! left to the decoder to report.

use crate::core::redis::resp::RespError;

pub const MAX_DEPTH: usize = 16;

/// `Err` when some array in `bytes` nests deeper than `max_depth`.
pub fn check_depth(bytes: &[u8], max_depth: usize) -> Result<(), RespError> {
    // Items still due in each open array, innermost last.
    let mut open: Vec<i64> = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let Some(kind) = bytes.get(pos).copied() else { return Ok(()) };
        let Some(line_len) = bytes[pos + 1..].windows(2).position(|w| w == b"\r\n") else { return Ok(()) };
        let line = &bytes[pos + 1..pos + 1 + line_len];
        pos += line_len + 3;
        let number = || std::str::from_utf8(line).ok().and_then(|s| s.parse::<i64>().ok());
        match kind {
            b'+' | b'-' | b':' => {}
            b'$' => match number() {
                Some(n) if n >= 0 => match usize::try_from(n).ok().and_then(|n| pos.checked_add(n)?.checked_add(2)) {
                    Some(end) => pos = end,
                    None => return Ok(()),
                },
                Some(_) => {}
                None => return Ok(()),
            },
            b'*' => match number() {
                Some(n) if n > 0 => {
                    open.push(n);
                    if open.len() > max_depth {
                        return Err(RespError::Protocol(format!("arrays nested deeper than {max_depth}")));
                    }
                    continue;
                }
                Some(_) => {}
                None => return Ok(()),
            },
            _ => return Ok(()),
        }
        // One item complete: close every array it completes.
        while let Some(left) = open.last_mut() {
            *left -= 1;
            if *left > 0 {
                break;
            }
            open.pop();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> Vec<u8> {
        let mut b = b"*1\r\n".repeat(depth);
        b.extend_from_slice(b":1\r\n");
        b
    }

    #[test]
    fn depth_is_counted_per_open_array() {
        assert!(check_depth(&nested(MAX_DEPTH), MAX_DEPTH).is_ok());
        assert!(check_depth(&nested(MAX_DEPTH + 1), MAX_DEPTH).is_err());
        // Siblings do not add up: 40 arrays of depth 2 side by side.
        let wide = format!("*40\r\n{}", "*1\r\n:1\r\n".repeat(40));
        assert!(check_depth(wide.as_bytes(), 2).is_ok());
        assert!(check_depth(wide.as_bytes(), 1).is_err());
        // Bulk strings are skipped whole, whatever they contain; nulls and empty arrays close items.
        let b = b"*3\r\n$8\r\n*1\r\n*1\r\n\r\n$-1\r\n*0\r\n*2\r\n*-1\r\n*1\r\n+x\r\n";
        assert!(check_depth(b, 2).is_ok());
        assert!(check_depth(b, 1).is_err());
    }

    #[test]
    fn what_it_cannot_read_is_left_to_the_decoder() {
        for b in [&b"*1\r\n*1"[..], b"*x\r\n", b"$99999999999999999999\r\n", b"?\r\n", b"$9223372036854775807\r\n"] {
            assert!(check_depth(b, 1).is_ok(), "{b:?}");
        }
    }
}
