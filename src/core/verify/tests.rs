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

#[test]
#[ignore = "debug helper"]
fn debug_profiles() {
    let a = std::env::var("A").unwrap_or_default();
    let b = std::env::var("B").unwrap_or_default();
    for t in [&a, &b] {
        let p = super::profile::Profile::new(t);
        println!("{:?}\n  time {:?} scope {:?} names {:?} neg {} nums {:?} units {:?}\n  content {:?}\n  rel {:?}", p.toks.iter().map(|t| &t.w).collect::<Vec<_>>(), p.time, p.scope, p.names, p.negations, p.nums, p.units, p.content.iter().map(|c| &c.key).collect::<Vec<_>>(), p.relations);
    }
    println!("{:?}", verify(&a, &b));
}
