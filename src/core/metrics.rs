//! Metric names (Envoy shows them as `wasmcustom.<name>`) and the sink the host implements.

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
}

impl Metric {
    pub const ALL: [Metric; 20] = [
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
        Metric::Refused(Refusal::Number),
        Metric::Refused(Refusal::Unit),
        Metric::Refused(Refusal::Negation),
        Metric::Refused(Refusal::Contrast),
        Metric::Refused(Refusal::Time),
        Metric::Refused(Refusal::Scope),
        Metric::Refused(Refusal::Entity),
        Metric::Refused(Refusal::Order),
        Metric::Refused(Refusal::Substitution),
    ];

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
}

impl Timing {
    pub const ALL: [Timing; 2] = [Timing::EmbedMicros, Timing::LookupMicros];
    pub fn name(self) -> &'static str {
        match self {
            Timing::EmbedMicros => "semantic_cache.embed_us",
            Timing::LookupMicros => "semantic_cache.lookup_us",
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
    }
}
