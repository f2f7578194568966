//! Metric names (Envoy shows them as `wasmcustom.<name>`) and the sink the host implements.
//! README "Metrics" lists each with its type and unit.

use crate::core::bypass::BypassReason;
use crate::core::verify::Refusal;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Requests,
    HitExact,
    HitSemantic,
    Miss,
    Bypass,
    StoreOk,
    StoreError,
    StoreSkipped,
    EmbeddingError,
    RedisError,
    PolicyError,
    /// A semantic candidate within the threshold refused by the verifier, by reason.
    Refused(Refusal),
    /// A bypass by reason (beside the total `Bypass`).
    Bypassed(BypassReason),
    /// Prompt (input) tokens of the stored `usage` of every entry served from the cache.
    TokensSavedPrompt,
    /// Completion (output) tokens of the stored `usage` of every entry served from the cache.
    TokensSavedCompletion,
    /// The stored origin latency (ms) of every entry served from the cache.
    TimeSavedMs,
    /// Purge requests answered (authorised, whatever they deleted).
    Purge,
    /// Purge requests refused: key missing or wrong.
    PurgeDenied,
    /// Entries deleted by purges.
    PurgedEntries,
}

const BASE: [Metric; 11] = [
    Metric::Requests,
    Metric::HitExact,
    Metric::HitSemantic,
    Metric::Miss,
    Metric::Bypass,
    Metric::StoreOk,
    Metric::StoreError,
    Metric::StoreSkipped,
    Metric::EmbeddingError,
    Metric::RedisError,
    Metric::PolicyError,
];

const MORE: [Metric; 6] = [
    Metric::TokensSavedPrompt,
    Metric::TokensSavedCompletion,
    Metric::TimeSavedMs,
    Metric::Purge,
    Metric::PurgeDenied,
    Metric::PurgedEntries,
];

const COUNT: usize = BASE.len() + Refusal::ALL.len() + BypassReason::ALL.len() + MORE.len();

impl Metric {
    /// Every counter, in the order of `index()` (the host defines them in this order).
    pub const ALL: [Metric; COUNT] = {
        let mut all = [Metric::Requests; COUNT];
        let mut i = 0;
        while i < BASE.len() {
            all[i] = BASE[i];
            i += 1;
        }
        let mut j = 0;
        while j < Refusal::ALL.len() {
            all[i] = Metric::Refused(Refusal::ALL[j]);
            i += 1;
            j += 1;
        }
        j = 0;
        while j < BypassReason::ALL.len() {
            all[i] = Metric::Bypassed(BypassReason::ALL[j]);
            i += 1;
            j += 1;
        }
        j = 0;
        while j < MORE.len() {
            all[i] = MORE[j];
            i += 1;
            j += 1;
        }
        all
    };

    pub fn name(self) -> &'static str {
        match self {
            Metric::Requests => "semantic_cache.requests",
            Metric::HitExact => "semantic_cache.hit_exact",
            Metric::HitSemantic => "semantic_cache.hit_semantic",
            Metric::Miss => "semantic_cache.miss",
            Metric::Bypass => "semantic_cache.bypass",
            Metric::StoreOk => "semantic_cache.store_ok",
            Metric::StoreError => "semantic_cache.store_error",
            Metric::StoreSkipped => "semantic_cache.store_skipped",
            Metric::EmbeddingError => "semantic_cache.embedding_error",
            Metric::RedisError => "semantic_cache.redis_error",
            Metric::PolicyError => "semantic_cache.policy_error",
            Metric::Refused(r) => match r {
                Refusal::Number => "semantic_cache.refused.number",
                Refusal::Unit => "semantic_cache.refused.unit",
                Refusal::Negation => "semantic_cache.refused.negation",
                Refusal::Contrast => "semantic_cache.refused.contrast",
                Refusal::Time => "semantic_cache.refused.time",
                Refusal::Scope => "semantic_cache.refused.scope",
                Refusal::Entity => "semantic_cache.refused.entity",
                Refusal::Order => "semantic_cache.refused.order",
                Refusal::Substitution => "semantic_cache.refused.substitution",
            },
            Metric::Bypassed(r) => match r {
                BypassReason::Method => "semantic_cache.bypass.method",
                BypassReason::Path => "semantic_cache.bypass.path",
                BypassReason::NoBody => "semantic_cache.bypass.no-body",
                BypassReason::DimensionMismatch => "semantic_cache.bypass.dimension-mismatch",
                BypassReason::BodyTooLarge => "semantic_cache.bypass.body-too-large",
                BypassReason::Disabled => "semantic_cache.bypass.disabled",
                BypassReason::SkipHeader => "semantic_cache.bypass.skip-header",
                BypassReason::NoStore => "semantic_cache.bypass.no-store",
                BypassReason::InvalidJson => "semantic_cache.bypass.invalid-json",
                BypassReason::NotChat => "semantic_cache.bypass.not-chat",
                BypassReason::NotCacheable => "semantic_cache.bypass.not-cacheable",
                BypassReason::EmbeddingError => "semantic_cache.bypass.embedding-error",
                BypassReason::RedisError => "semantic_cache.bypass.redis-error",
                BypassReason::PolicyInvalid => "semantic_cache.bypass.policy-invalid",
            },
            Metric::TokensSavedPrompt => "semantic_cache.tokens_saved_prompt",
            Metric::TokensSavedCompletion => "semantic_cache.tokens_saved_completion",
            Metric::TimeSavedMs => "semantic_cache.time_saved_ms",
            Metric::Purge => "semantic_cache.purge",
            Metric::PurgeDenied => "semantic_cache.purge_denied",
            Metric::PurgedEntries => "semantic_cache.purged_entries",
        }
    }

    pub fn index(self) -> usize {
        Metric::ALL.iter().position(|m| *m == self).unwrap_or(0)
    }
}

/// Histograms (microseconds) for the benchmark and for operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// Embedding computation or callout.
    EmbedMicros,
    /// From the end of the request body to the hit/miss decision.
    LookupMicros,
    /// A miss upstream: from the request going on to the end of the response.
    OriginMicros,
}

impl Timing {
    pub const ALL: [Timing; 3] = [Timing::EmbedMicros, Timing::LookupMicros, Timing::OriginMicros];
    pub fn name(self) -> &'static str {
        match self {
            Timing::EmbedMicros => "semantic_cache.embed_us",
            Timing::LookupMicros => "semantic_cache.lookup_us",
            Timing::OriginMicros => "semantic_cache.origin_us",
        }
    }
    pub fn index(self) -> usize {
        Timing::ALL.iter().position(|m| *m == self).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_indexed() {
        let mut names: Vec<_> = Metric::ALL.iter().map(|m| m.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Metric::ALL.len());
        for (i, m) in Metric::ALL.iter().enumerate() {
            assert_eq!(m.index(), i);
        }
        for r in Refusal::ALL {
            assert!(Metric::ALL.contains(&Metric::Refused(r)), "{r:?}");
            assert!(Metric::Refused(r).name().ends_with(r.code()));
        }
        for r in BypassReason::ALL {
            assert_eq!(Metric::Bypassed(r).name(), format!("semantic_cache.bypass.{}", r.code()));
        }
    }
}
