//! A store job travels from an HTTP context to the root context through an Envoy shared queue
//! (a store dispatched from the stream would be cancelled when the stream ends). The job carries
//! its own cluster and timeout so any root context in the VM can run it.

/// Encoded as `u16 cluster length | cluster | u32 timeout ms | u8 preamble | pipeline`, little endian.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreJob {
    pub cluster: String,
    pub timeout_ms: u32,
    /// How many `AUTH`/`SELECT` replies precede the store's own (sites sharing a VM may differ).
    pub preamble: u8,
    pub pipeline: Vec<u8>,
}

impl StoreJob {
    pub fn encode(&self) -> Vec<u8> {
        let c = self.cluster.as_bytes();
        let len = u16::try_from(c.len()).unwrap_or(u16::MAX);
        let mut out = Vec::with_capacity(6 + c.len() + self.pipeline.len());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&c[..usize::from(len)]);
        out.extend_from_slice(&self.timeout_ms.to_le_bytes());
        out.push(self.preamble);
        out.extend_from_slice(&self.pipeline);
        out
    }

    pub fn decode(b: &[u8]) -> Option<StoreJob> {
        let len = usize::from(u16::from_le_bytes([*b.first()?, *b.get(1)?]));
        let cluster = std::str::from_utf8(b.get(2..2 + len)?).ok()?.to_string();
        let t = b.get(2 + len..6 + len)?;
        let timeout_ms = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
        let preamble = *b.get(6 + len)?;
        Some(StoreJob { cluster, timeout_ms, preamble, pipeline: b.get(7 + len..)?.to_vec() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let j = StoreJob {
            cluster: "redis".into(),
            timeout_ms: 1500,
            preamble: 2,
            pipeline: b"*1\r\n$4\r\nQUIT\r\n".to_vec(),
        };
        assert_eq!(StoreJob::decode(&j.encode()), Some(j));
        assert_eq!(StoreJob::decode(b""), None);
        assert_eq!(StoreJob::decode(&[9, 0, b'a']), None);
    }
}
