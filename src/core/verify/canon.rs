//! Canonical form for the exact tier (skeleton; rules follow).

/// Canonical key form of a prompt text.
pub fn canonical(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}
