//! Unit tests per refusal reason and language, passes for paraphrases, typos and canonical variants.
use super::{verify, Refusal};

fn refused(a: &str, b: &str, why: Refusal) {
    assert_eq!(verify(a, b), Err(why), "{a:?} / {b:?}");
    assert!(verify(b, a).is_err(), "not symmetric: {b:?} / {a:?}");
}

fn passes(a: &str, b: &str) {
    assert_eq!(verify(a, b), Ok(()), "{a:?} / {b:?}");
    assert_eq!(verify(b, a), Ok(()), "not symmetric: {b:?} / {a:?}");
}

#[test]
fn codes_are_stable_and_unique() {
    let codes: Vec<&str> = Refusal::ALL.iter().map(Refusal::code).collect();
    assert_eq!(codes, ["number", "unit", "negation", "contrast", "time", "scope", "entity", "order", "substitution"]);
}
