//! Verifier for semantic-cache candidates (issue 9): the second opinion on every KNN candidate.
//! Embeddings put one-word traps ("100 USD to EUR" / "100 EUR to USD", "turn on" / "turn off") closer
//! than real paraphrases, so the cache runs with a loose distance threshold and this module refuses
//! the candidates whose prompt differs from the query in what embeddings blur. Host-free,
//! deterministic, no allocation-heavy models: a tokenizer, word lists and a few linear checks.
//!
//! Checks, in order (each symmetric in its two prompts):
//! 1. canonical forms equal -> pass (the exact tier's key, see canon.rs);
//! 2. hard checks (checks.rs): numbers as a sequence (digits, number words, ordinals, dates,
//!    versions), currencies and units, negation count (with es/fr negative concord), opposite-word
//!    poles (lists plus un-/non-/dis-/in- prefixes; a negator flips the pole: "not pass" = "fail"),
//!    time and scope classes, names (proper nouns by case, acronyms, code identifiers; typo-tolerant);
//! 3. order: the word after from/to/than/... changed roles, the same words in another order that is
//!    not a phrase moved as a whole, or names/numbers in another order;
//! 4. minimal edit: traps change one or two content words, paraphrases many. When at most 3 word
//!    edits separate the prompts and a content word was substituted or added (typos and listed
//!    synonyms aside), refuse (`substitution`, or `scope` for a pure addition). Not an edit: a
//!    compound split on the other side (username / user name), a name's short form (Postgres /
//!    PostgreSQL), a derivation (withdrawal / withdrawing), two light verbs before the same object
//!    (make / submit a claim), a light head noun or a copula added next to a shared word (insurance
//!    policy, PIN number, stays open).
//!
//! Word lists: lists_en.rs, lists_es.rs, lists_fr.rs, lists_de.rs (merged once in lexicon.rs).
//! Cost: linear in the prompt length; the alignment looks at the last 64 words only, typo lookups
//! and the phrase-move search are capped. Use `Query` to check several candidates against one query.
//! Dev report over labelled pairs: `cargo test --lib verify::eval_tests::report -- --ignored
//! --nocapture` (VERIFY_PAIRS=extra.jsonl, VERIFY_VERBOSE=1 lists the misses, VERIFY_STRICTNESS).
mod canon;
mod checks;
mod lexicon;
mod lists_de;
mod lists_en;
mod lists_es;
mod lists_fr;
mod profile;
mod tokens;

#[cfg(test)]
mod eval_tests;
#[cfg(test)]
mod tests;

pub use canon::canonical;

/// Why a candidate was refused. `code()` is stable: it is used in response headers and stats names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// Numbers, amounts, versions, dates differ (as a sequence).
    Number,
    /// Currencies or units of measure differ.
    Unit,
    /// One prompt is negated where the other is not (not, never, without, avoid, ...).
    Negation,
    /// Opposite words (on/off, buy/sell, safe/unsafe, before/after, ...).
    Contrast,
    /// Time words differ (today/tomorrow, Monday/Friday, next week/last week, ...).
    Time,
    /// Scope differs: who or what it is about (children/adults, business/personal) or a qualifier added.
    Scope,
    /// Proper nouns, acronyms or code identifiers differ.
    Entity,
    /// Same words, key tokens in another order ("USD to EUR" / "EUR to USD").
    Order,
    /// One or two content words replaced by words that are neither typos nor synonyms.
    Substitution,
}

impl Refusal {
    pub const ALL: [Refusal; 9] = [
        Refusal::Number,
        Refusal::Unit,
        Refusal::Negation,
        Refusal::Contrast,
        Refusal::Time,
        Refusal::Scope,
        Refusal::Entity,
        Refusal::Order,
        Refusal::Substitution,
    ];

    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Number => "number",
            Refusal::Unit => "unit",
            Refusal::Negation => "negation",
            Refusal::Contrast => "contrast",
            Refusal::Time => "time",
            Refusal::Scope => "scope",
            Refusal::Entity => "entity",
            Refusal::Order => "order",
            Refusal::Substitution => "substitution",
        }
    }
}

/// How far the verifier trusts a reworded candidate. `Strict` (the default) refuses a negator, a
/// time or a scope word present on one side only, however the rest is worded. `Balanced` refuses
/// them only when the rest of the prompt is nearly the same (a minimal edit: up to 6 word edits for
/// time/scope words, 8 for a negator) and leaves heavily reworded pairs to the distance threshold.
/// Numbers, units, opposite words, names and order are checked alike in both.
/// Measured (verifier alone; should-hit served / must-not-hit refused):
/// - fow-cache 0.1.0 pairs: Strict 85.0% / 94.7%, Balanced 90.0% / 90.3%;
/// - our pairs (bench/quality/data/pairs_own.jsonl, 514): Strict 84.2% / 99.6%, Balanced 92.5% / 99.6%.
///
/// Minimal-edit traps are refused at 100% by both; the traps Balanced serves more are reworded ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strictness {
    #[default]
    Strict,
    Balanced,
}

impl Strictness {
    pub const ALL: [Strictness; 2] = [Strictness::Strict, Strictness::Balanced];

    pub fn code(&self) -> &'static str {
        match self {
            Strictness::Strict => "strict",
            Strictness::Balanced => "balanced",
        }
    }

    pub fn from_code(code: &str) -> Option<Strictness> {
        Strictness::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// A query prepared once, to check several cache candidates (top-k) without redoing its half of
/// the work.
#[derive(Debug)]
pub struct Query {
    canon: String,
    profile: profile::Profile,
    strictness: Strictness,
}

impl Query {
    pub fn new(text: &str) -> Query {
        Query::with_strictness(text, Strictness::default())
    }

    pub fn with_strictness(text: &str, strictness: Strictness) -> Query {
        Query { canon: canonical(text), profile: profile::Profile::new(text), strictness }
    }

    /// Whether the cached answer for `candidate` (its normalised prompt text) may answer this query.
    pub fn verify(&self, candidate: &str) -> Result<(), Refusal> {
        if self.canon == canonical(candidate) {
            return Ok(());
        }
        let b = profile::Profile::new(candidate);
        checks::hard(&self.profile, &b, self.strictness)?;
        checks::order(&self.profile, &b)?;
        checks::minimal_edit(&self.profile, &b, self.strictness)
    }
}

/// Compares the normalised prompt texts of a query and a cache candidate. `Ok(())` means the candidate
/// may answer the query. Symmetric: `verify(a, b)` and `verify(b, a)` give the same outcome.
pub fn verify(query: &str, candidate: &str) -> Result<(), Refusal> {
    Query::new(query).verify(candidate)
}

/// `verify` with a chosen strictness.
pub fn verify_with(query: &str, candidate: &str, strictness: Strictness) -> Result<(), Refusal> {
    Query::with_strictness(query, strictness).verify(candidate)
}
