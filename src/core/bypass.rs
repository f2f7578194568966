//! Why a request bypasses the cache; `code()` is the `x-cache-bypass-reason` value.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BypassReason {
    /// Not a POST.
    Method,
    /// Not a supported API path (`api::ApiShape::detect`) and no policy rule matched.
    Path,
    /// The request has no body.
    NoBody,
    /// The index (or a search) has another vector dimension than the policy.
    DimensionMismatch,
    BodyTooLarge,
    /// The matched settings (or `x-settings-overrides`) turn the cache off.
    Disabled,
    SkipHeader,
    /// `Cache-Control: no-store` or `max-age=0`.
    NoStore,
    InvalidJson,
    NotChat,
    /// No user text to embed, or the request was still ours when the response arrived.
    NotCacheable,
    EmbeddingError,
    RedisError,
    /// The filter's policy did not parse: caching is off.
    PolicyInvalid,
}

impl BypassReason {
    /// Every reason, for the per-reason counters (`semantic_cache.bypass.<code>`).
    pub const ALL: [BypassReason; 14] = [
        BypassReason::Method,
        BypassReason::Path,
        BypassReason::NoBody,
        BypassReason::DimensionMismatch,
        BypassReason::BodyTooLarge,
        BypassReason::Disabled,
        BypassReason::SkipHeader,
        BypassReason::NoStore,
        BypassReason::InvalidJson,
        BypassReason::NotChat,
        BypassReason::NotCacheable,
        BypassReason::EmbeddingError,
        BypassReason::RedisError,
        BypassReason::PolicyInvalid,
    ];

    pub fn code(&self) -> &'static str {
        match self {
            BypassReason::Method => "method",
            BypassReason::Path => "path",
            BypassReason::NoBody => "no-body",
            BypassReason::DimensionMismatch => "dimension-mismatch",
            BypassReason::BodyTooLarge => "body-too-large",
            BypassReason::Disabled => "disabled",
            BypassReason::SkipHeader => "skip-header",
            BypassReason::NoStore => "no-store",
            BypassReason::InvalidJson => "invalid-json",
            BypassReason::NotChat => "not-chat",
            BypassReason::NotCacheable => "not-cacheable",
            BypassReason::EmbeddingError => "embedding-error",
            BypassReason::RedisError => "redis-error",
            BypassReason::PolicyInvalid => "policy-invalid",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails to compile when a reason is added without a place in `ALL` (and so without a counter).
    fn position(r: BypassReason) -> usize {
        match r {
            BypassReason::Method => 0,
            BypassReason::Path => 1,
            BypassReason::NoBody => 2,
            BypassReason::DimensionMismatch => 3,
            BypassReason::BodyTooLarge => 4,
            BypassReason::Disabled => 5,
            BypassReason::SkipHeader => 6,
            BypassReason::NoStore => 7,
            BypassReason::InvalidJson => 8,
            BypassReason::NotChat => 9,
            BypassReason::NotCacheable => 10,
            BypassReason::EmbeddingError => 11,
            BypassReason::RedisError => 12,
            BypassReason::PolicyInvalid => 13,
        }
    }

    #[test]
    fn all_lists_every_reason_once() {
        for (i, r) in BypassReason::ALL.iter().enumerate() {
            assert_eq!(position(*r), i, "{r:?}");
        }
    }
}
