//! Why a request bypasses the cache; `code()` is the `x-cache-bypass-reason` value.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
