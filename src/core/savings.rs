//! What serving an entry saves: the stored answer's token usage and the origin latency of the
//! miss that produced it. Read once at store time and kept as hash fields beside the entry, so a
//! hit adds them to the counters without parsing the body.

use serde_json::Value;

use crate::core::metrics::Metric;

/// Hash fields of an entry, in this order in `HMGET` and `FT.SEARCH ... RETURN`.
pub const FIELDS: [&str; 3] = ["tok_prompt", "tok_completion", "origin_ms"];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Savings {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// From the request going upstream to the end of the response, on the miss.
    pub origin_ms: u64,
}

impl Savings {
    /// From a stored answer: `usage.prompt_tokens` / `completion_tokens` (OpenAI chat),
    /// `usage.input_tokens` / `output_tokens` (Anthropic, OpenAI Responses) or Gemini's
    /// `usageMetadata.promptTokenCount` / `candidatesTokenCount`; 0 for what is absent (never invented).
    pub fn from_body(body: &[u8], origin_ms: u64) -> Savings {
        let v = serde_json::from_slice::<Value>(body).ok();
        let usage = v.as_ref().and_then(|v| v.get("usage").or_else(|| v.get("usageMetadata")));
        let n = |names: [&str; 3]| {
            usage.and_then(|u| names.iter().find_map(|k| u.get(*k))).and_then(Value::as_u64).unwrap_or(0)
        };
        Savings {
            prompt_tokens: n(["prompt_tokens", "input_tokens", "promptTokenCount"]),
            completion_tokens: n(["completion_tokens", "output_tokens", "candidatesTokenCount"]),
            origin_ms,
        }
    }

    /// The values of `FIELDS`, for the store's `HSET`.
    pub fn values(&self) -> [String; 3] {
        [self.prompt_tokens.to_string(), self.completion_tokens.to_string(), self.origin_ms.to_string()]
    }

    /// From the values of `FIELDS` as Redis returned them (absent or unreadable = 0: entries
    /// written before these fields existed save nothing we can tell).
    pub fn from_values(values: [Option<&[u8]>; 3]) -> Savings {
        let n = |v: Option<&[u8]>| {
            v.and_then(|b| std::str::from_utf8(b).ok()).and_then(|s| s.trim().parse().ok()).unwrap_or(0)
        };
        Savings { prompt_tokens: n(values[0]), completion_tokens: n(values[1]), origin_ms: n(values[2]) }
    }

    /// The counter increments of one hit that served this entry (zeros left out).
    pub fn increments(&self) -> Vec<(Metric, u64)> {
        [
            (Metric::TokensSavedPrompt, self.prompt_tokens),
            (Metric::TokensSavedCompletion, self.completion_tokens),
            (Metric::TimeSavedMs, self.origin_ms),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_openai_anthropic_and_none() {
        let openai = br#"{"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}"#;
        assert_eq!(
            Savings::from_body(openai, 840),
            Savings { prompt_tokens: 12, completion_tokens: 7, origin_ms: 840 }
        );
        let anthropic = br#"{"type":"message","usage":{"input_tokens":5,"output_tokens":9}}"#;
        assert_eq!(Savings::from_body(anthropic, 1), Savings { prompt_tokens: 5, completion_tokens: 9, origin_ms: 1 });
        let gemini = br#"{"candidates":[],"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":6,"totalTokenCount":10}}"#;
        assert_eq!(Savings::from_body(gemini, 2), Savings { prompt_tokens: 4, completion_tokens: 6, origin_ms: 2 });
        assert_eq!(Savings::from_body(b"{}", 3), Savings { origin_ms: 3, ..Savings::default() });
        assert_eq!(Savings::from_body(b"not json", 0), Savings::default());
    }

    #[test]
    fn values_round_trip() {
        let s = Savings { prompt_tokens: 1, completion_tokens: 22, origin_ms: 333 };
        let v = s.values();
        assert_eq!(Savings::from_values([Some(v[0].as_bytes()), Some(v[1].as_bytes()), Some(v[2].as_bytes())]), s);
        assert_eq!(
            Savings::from_values([None, Some(b"x"), Some(b" 4 ")]),
            Savings { origin_ms: 4, ..Savings::default() }
        );
        assert_eq!(
            s.increments(),
            vec![(Metric::TokensSavedPrompt, 1), (Metric::TokensSavedCompletion, 22), (Metric::TimeSavedMs, 333)]
        );
        assert!(Savings::default().increments().is_empty());
    }
}
