//! The checks, each symmetric in its two prompts. They run cheapest and most certain first.
use std::collections::HashMap;

use super::lexicon::{is_derivation, is_short_form, is_typo};
use super::profile::{Content, Profile};
use super::tokens::Kind;
use super::{Refusal, Strictness};

/// Hard checks: numbers, units, negation, contrast, time, scope, names.
pub(crate) fn hard(a: &Profile, b: &Profile, strictness: Strictness) -> Result<(), Refusal> {
    if a.nums != b.nums {
        return Err(Refusal::Number);
    }
    if a.units != b.units {
        return Err(Refusal::Unit);
    }
    // Balanced: a heavily reworded question may say the same thing with or without a negator
    // ("without medication" / "drug-free"); a minimal edit that adds one never does.
    if a.negations != b.negations
        && (strictness == Strictness::Strict || edit_distance(&a.seq, &b.seq) <= NEGATION_EDITS_BALANCED)
    {
        return Err(Refusal::Negation);
    }
    if contrast(a, b) || prefixed_opposite(a, b) || prefixed_opposite(b, a) {
        return Err(Refusal::Contrast);
    }
    // Time and scope: one prompt with a class the other lacks, while the other has a class of its
    // own (today / tomorrow, adults / children), is another question. A class on one side only is a
    // qualifier added: left to the minimal-edit rule, which refuses it when the rest is the same.
    if a_only(&a.time, &b.time, a, b) && a_only(&b.time, &a.time, b, a) {
        return Err(Refusal::Time);
    }
    if a_only(&a.scope, &b.scope, a, b) && a_only(&b.scope, &a.scope, b, a) {
        return Err(Refusal::Scope);
    }
    if a.names.iter().any(|n| !b.has_name(n)) || b.names.iter().any(|n| !a.has_name(n)) {
        return Err(Refusal::Entity);
    }
    Ok(())
}

/// Whether `x` (of profile `p`) has a class that `y` (of profile `q`) lacks, typos aside.
fn a_only<T: Ord + AsRef<str>>(
    x: &std::collections::BTreeSet<T>,
    y: &std::collections::BTreeSet<T>,
    p: &Profile,
    q: &Profile,
) -> bool {
    x.iter().any(|c| !y.contains(c) && !q.covers.contains(c.as_ref()) && !p.class_typoed_in(c.as_ref(), q))
}

/// Time or scope class on one side only (a qualifier added): which reason to give.
fn one_sided(a: &Profile, b: &Profile) -> Option<Refusal> {
    if a_only(&a.time, &b.time, a, b) || a_only(&b.time, &a.time, b, a) {
        return Some(Refusal::Time);
    }
    if a_only(&a.scope, &b.scope, a, b) || a_only(&b.scope, &a.scope, b, a) {
        return Some(Refusal::Scope);
    }
    None
}

/// One prompt has a word of one pole of a group, the other a word of the other pole, and neither has both.
fn contrast(a: &Profile, b: &Profile) -> bool {
    a.poles.difference(&b.poles).any(|&(g, p)| b.poles.difference(&a.poles).any(|&(h, q)| g == h && p != q))
}

/// "safe"/"unsafe", "legal"/"illegal", "lock"/"unlock", "refundable"/"non-refundable" and the like:
/// a word of `a` whose negative-prefixed form is in `b`, when `a` lacks that form and `b` lacks the word.
fn prefixed_opposite(a: &Profile, b: &Profile) -> bool {
    const SHORT: &[&str] = &["un", "non", "dis", "mis"];
    const LONG: &[&str] = &["in", "im", "il", "ir", "de", "des", "dés"];
    let a_words: std::collections::HashSet<&str> = a.toks.iter().map(|t| t.w.as_str()).collect();
    let b_words: std::collections::HashSet<&str> = b.toks.iter().map(|t| t.w.as_str()).collect();
    let has = |p: &Profile, w: &str| if std::ptr::eq(p, a) { a_words.contains(w) } else { b_words.contains(w) };
    for t in &b.toks {
        let neg = t.w.as_str();
        for pre in SHORT.iter().chain(LONG) {
            let Some(w) = neg.strip_prefix(pre) else { continue };
            let n = w.chars().count();
            let min = if SHORT.contains(pre) { 4 } else { 5 };
            if n >= min && w.chars().all(char::is_alphabetic) && has(a, w) && !has(b, w) && !has(a, neg) {
                return true;
            }
        }
    }
    false
}

/// Order: the word after a relation marker ("from X to Y", "A than B", "USD to EUR") swapped between
/// the prompts, or the same names/numbers/currencies in another order when the words are the same.
pub(crate) fn order(a: &Profile, b: &Profile) -> Result<(), Refusal> {
    let a_keys: std::collections::HashSet<&str> = a
        .content
        .iter()
        .map(|c| c.key.as_str())
        .chain(a.key_seq.iter().chain(&a.currencies).map(String::as_str))
        .collect();
    let b_keys: std::collections::HashSet<&str> = b
        .content
        .iter()
        .map(|c| c.key.as_str())
        .chain(b.key_seq.iter().chain(&b.currencies).map(String::as_str))
        .collect();
    // Per marker, the words that follow it on each side; a word only one side has after the marker,
    // while the other side has it elsewhere, has changed its role.
    for (m, x) in &a.relations {
        let in_b = b.relations.iter().any(|(n, y)| n == m && y == x);
        if in_b || !b_keys.contains(x.as_str()) {
            continue;
        }
        let swapped = b.relations.iter().any(|(n, y)| {
            n == m && y != x && a_keys.contains(y.as_str()) && !a.relations.iter().any(|(k, z)| k == m && z == y)
        });
        if swapped {
            return Err(Refusal::Order);
        }
    }
    // The same word after opposite directions: "flights to London" / "flights from London".
    const DIRECTIONS: &[&str] = &[
        "from", "to", "into", "onto", "toward", "towards", "desde", "hasta", "hacia", "vers", "depuis", "nach", "von",
    ];
    let directed = |p: &Profile, m: &str, x: &str| p.relations.iter().any(|(k, z)| k == m && z == x);
    for (m, x) in a.relations.iter().filter(|(m, _)| DIRECTIONS.contains(&m.as_str())) {
        for (n, y) in b.relations.iter().filter(|(n, _)| DIRECTIONS.contains(&n.as_str())) {
            let opposite = (m == "from") != (n == "from")
                || (m == "desde" || m == "depuis" || m == "von") != (n == "desde" || n == "depuis" || n == "von");
            if x == y && m != n && opposite && !directed(a, n, x) && !directed(b, m, y) {
                return Err(Refusal::Order);
            }
        }
    }
    // Same content words in another order that is not a fronted phrase ("On the menu, what vegan
    // options ..." is a rotation of "What vegan options ... on the menu"): a swap of roles.
    let (ka, kb): (Vec<&str>, Vec<&str>) =
        (a.content.iter().map(|c| c.key.as_str()).collect(), b.content.iter().map(|c| c.key.as_str()).collect());
    if ka != kb && ka.len() == kb.len() && sorted_keys(&a.content) == sorted_keys(&b.content) {
        // A phrase moved as a whole ("a primary school place" / "a place at a primary school") or
        // fronted with the sentence rebuilt around it keeps the roles; two words trading places in
        // the same frame ("the medium for a large" / "the large for a medium") swap them.
        let fronted = is_rotation(&ka, &kb) && skeleton(a) != skeleton(b);
        if !fronted && !is_phrase_move(&ka, &kb) && !coordinated_swap(a, b) {
            return Err(Refusal::Order);
        }
    }
    if a.key_seq != b.key_seq
        && !coordinated_swap(a, b)
        && sorted(&a.key_seq) == sorted(&b.key_seq)
        && sorted_keys(&a.content) == sorted_keys(&b.content)
    {
        return Err(Refusal::Order);
    }
    Ok(())
}

/// Coordinators: "A or B" asks what "B or A" asks.
const COORDINATORS: &[&str] = &["or", "and", "vs", "versus", "o", "y", "ou", "et", "oder", "und"];

/// Whether the prompts differ only by two content words swapped around a coordinator ("a fruit or a
/// vegetable" / "a vegetable or a fruit"), with nothing but function words between them.
fn coordinated_swap(a: &Profile, b: &Profile) -> bool {
    let lx = super::lexicon::lexicon();
    // every content word in order, repeats kept ("Tokyo ... London? Is Tokyo ahead?")
    let words = |p: &Profile| -> Vec<(String, usize)> {
        p.seq.iter().filter(|c| !lx.stop.contains(p.toks[c.pos].w.as_str())).map(|c| (c.key.clone(), c.pos)).collect()
    };
    let (wa, wb) = (words(a), words(b));
    if wa.len() != wb.len() {
        return false;
    }
    let diff: Vec<usize> = (0..wa.len()).filter(|&i| wa[i].0 != wb[i].0).collect();
    let [i, j] = diff[..] else { return false };
    if wa[i].0 != wb[j].0 || wa[j].0 != wb[i].0 {
        return false;
    }
    let joined = |p: &Profile, from: usize, to: usize| {
        let between = &p.toks[from + 1..to];
        between.iter().any(|t| COORDINATORS.contains(&t.w.as_str()))
            && between.iter().all(|t| lx.stop.contains(t.w.as_str()) || COORDINATORS.contains(&t.w.as_str()))
    };
    joined(a, wa[i].1, wa[j].1) && joined(b, wb[i].1, wb[j].1)
}

/// Whether `b` is `a` with one block of 2+ words moved past a neighbouring block (or a word moved
/// past a block of 2+ words).
fn is_phrase_move(a: &[&str], b: &[&str]) -> bool {
    let n = a.len();
    if n > PHRASE_MOVE_CAP {
        return true;
    }
    for i in 0..n {
        for j in i + 1..n {
            for k in j + 1..=n {
                if (j - i >= 2 || k - j >= 2)
                    && a[..i].iter().chain(&a[j..k]).chain(&a[i..j]).chain(&a[k..]).eq(b.iter())
                {
                    return true;
                }
            }
        }
    }
    false
}

/// The prompt's frame: function words kept, content words as "_".
fn skeleton(p: &Profile) -> Vec<&str> {
    let lx = super::lexicon::lexicon();
    p.toks
        .iter()
        .filter(|t| !lx.filler.contains(&t.stem))
        .map(|t| if lx.stop.contains(t.w.as_str()) { t.w.as_str() } else { "_" })
        .collect()
}

/// Whether `b` is `a` rotated (a block moved from the front to the back or back to front).
fn is_rotation(a: &[&str], b: &[&str]) -> bool {
    (0..a.len()).any(|k| a[k..].iter().chain(a[..k].iter()).eq(b.iter()))
}

fn sorted(v: &[String]) -> Vec<&str> {
    let mut s: Vec<&str> = v.iter().map(String::as_str).collect();
    s.sort_unstable();
    s
}

fn sorted_keys(v: &[Content]) -> Vec<&str> {
    let mut s: Vec<&str> = v.iter().map(|c| c.key.as_str()).collect();
    s.sort_unstable();
    s
}

/// Above this many content words the phrase-move search (cubic) is skipped: order is then judged by
/// the marker relations only.
const PHRASE_MOVE_CAP: usize = 16;

/// Above this many unmatched words on each side the typo pairing is skipped (the prompts differ a lot).
const TYPO_PAIRING_CAP: usize = 24;

/// Minimal edit: traps change one or two content words, paraphrases change many. Refuses when 1-2
/// content words were substituted (not typos, not listed synonyms) or inserted, and the rest is equal.
pub(crate) fn minimal_edit(a: &Profile, b: &Profile, strictness: Strictness) -> Result<(), Refusal> {
    let mut count: HashMap<&str, i32> = HashMap::new();
    for c in &a.content {
        *count.entry(c.key.as_str()).or_default() += 1;
    }
    for c in &b.content {
        *count.entry(c.key.as_str()).or_default() -= 1;
    }
    let mut only_a: Vec<&Content> = Vec::new();
    let mut only_b: Vec<&Content> = Vec::new();
    let mut left: HashMap<&str, i32> = count.clone();
    for c in &a.content {
        if let Some(n) = left.get_mut(c.key.as_str()) {
            if *n > 0 {
                *n -= 1;
                only_a.push(c);
            }
        }
    }
    for c in &b.content {
        if let Some(n) = left.get_mut(c.key.as_str()) {
            if *n < 0 {
                *n += 1;
                only_b.push(c);
            }
        }
    }
    let mut common = a.content.len() - only_a.len();
    // Typos pair off.
    if only_a.len() <= TYPO_PAIRING_CAP && only_b.len() <= TYPO_PAIRING_CAP {
        let mut i = 0;
        while i < only_a.len() {
            if let Some(j) = only_b.iter().position(|y| {
                let (x, y) = (&only_a[i].surface, &y.surface);
                is_typo(x, y) || is_short_form(x, y) || is_derivation(x, y)
            }) {
                only_a.remove(i);
                only_b.remove(j);
            } else {
                i += 1;
            }
        }
    }
    // a compound matched across the prompts is a word in common
    common += pair_compounds(&mut only_a, &mut only_b, b) + pair_compounds(&mut only_b, &mut only_a, a);
    drop_light_verbs(&mut only_a, a, b);
    drop_light_verbs(&mut only_b, b, a);
    if only_a.is_empty() || only_b.is_empty() {
        drop_light_heads(&mut only_a, a, b);
        drop_light_heads(&mut only_b, b, a);
    }
    let (na, nb) = (only_a.len(), only_b.len());
    let qualifier = one_sided(a, b);
    let qualifier_edits = match strictness {
        Strictness::Strict => usize::MAX,
        Strictness::Balanced => MAX_EDITS_QUALIFIER,
    };
    if na == 0 && nb == 0 && qualifier.is_none() {
        return Ok(());
    }
    let d = edit_distance(&a.seq, &b.seq);
    if let Some(why) = qualifier {
        if d <= qualifier_edits {
            return Err(why);
        }
    }
    if na == 0 && nb == 0 {
        return Ok(());
    }
    // Nothing in common: a rewording, unless the prompts are a word or two long ("Python?" / "Java?").
    if common == 0 {
        let short = a.content.len().max(b.content.len()) <= 2 && na > 0 && nb > 0;
        return if short && d <= MAX_EDITS { Err(Refusal::Substitution) } else { Ok(()) };
    }
    if d > MAX_EDITS {
        return Ok(());
    }
    Err(if na == 0 || nb == 0 { Refusal::Scope } else { Refusal::Substitution })
}

/// A word spelled as two on the other side ("username" / "user name", "login" / "log in", "setup" /
/// "set up") is the same word: a content word of `only_x` whose surface is two adjacent words of `q`
/// joined leaves `only_x`, and those two words leave `only_y`. Both parts must be 2+ letters, so a
/// split-off article or prefix ("a way" / "away") does not count.
/// Returns how many compounds were paired.
fn pair_compounds(only_x: &mut Vec<&Content>, only_y: &mut Vec<&Content>, q: &Profile) -> usize {
    let lx = super::lexicon::lexicon();
    let (mut i, mut paired) = (0, 0);
    while i < only_x.len() {
        let w = only_x[i].surface.replace('-', "");
        let hit = q.toks.windows(2).position(|p| {
            p[0].kind == Kind::Word
                && p[1].kind == Kind::Word
                // a function word before a content word joins into another word ("over time" /
                // "overtime", "every day" / "everyday"); a particle after a verb does not ("log in")
                && (!lx.stop.contains(p[0].w.as_str()) || lx.stop.contains(p[1].w.as_str()))
                && p[0].w.chars().count() >= 2
                && p[1].w.chars().count() >= 2
                && w.len() == p[0].w.len() + p[1].w.len()
                && w.starts_with(p[0].w.as_str())
                && w.ends_with(p[1].w.as_str())
        });
        match hit {
            Some(k) => {
                only_x.remove(i);
                only_y.retain(|c| c.pos != k && c.pos != k + 1);
                paired += 1;
            }
            None => i += 1,
        }
    }
    paired
}

/// Verbs that only carry their object: "make / submit / file / lodge a claim", "place / make an
/// order", "raise / make a complaint". Not "give" / "get" / "take" / "send" (they say who acts) nor
/// "put" ("put money in" / "make money").
const LIGHT_VERBS: &[&str] = &[
    "make",
    "submit",
    "file",
    "lodge",
    "place",
    "raise",
    "hacer",
    "presentar",
    "faire",
    "déposer",
    "passer",
    "stellen",
    "einreichen",
    "machen",
];

/// A light verb of `only_x` that `q` says with another light verb (content or not: "make" is a
/// function word) before the same object (the next content word) leaves `only_x`.
fn drop_light_verbs(only_x: &mut Vec<&Content>, p: &Profile, q: &Profile) {
    // the next content word; at the end of the clause (German verb-final) the one before
    fn object(pos: usize, r: &Profile) -> Option<&str> {
        let next = r.content.iter().find(|d| d.pos > pos);
        next.or_else(|| r.content.iter().rev().find(|d| d.pos < pos)).map(|d| d.key.as_str())
    }
    only_x.retain(|c| {
        let Some(o) = object(c.pos, p).filter(|_| LIGHT_VERBS.contains(&c.surface.as_str())) else { return true };
        !q.toks
            .iter()
            .enumerate()
            .any(|(k, t)| t.w != c.surface && LIGHT_VERBS.contains(&t.w.as_str()) && object(k, q) == Some(o))
    });
}

/// Head nouns that add nothing to the noun they follow ("contents insurance policy", "minimum order
/// value"), and after an acronym the noun it already stands for ("PIN number", "PAC code").
const LIGHT_HEADS: &[&str] = &["policy", "value", "amount", "póliza", "valor", "valeur", "wert", "betrag"];
const ACRONYM_HEADS: &[&str] = &["number", "code", "número", "código", "numéro", "nummer"];
/// Verbs that say "be" over time before a word both share: "is it open" / "does it stay open".
const COPULAS: &[&str] =
    &["stay", "stays", "remain", "remains", "permanecer", "permanece", "rester", "reste", "demeurer", "demeure"];

/// Pure addition of a copula before a shared word, or of a light head noun next to a content word both prompts share: right after it
/// ("order value"), or before it across a preposition ("valor del pedido", "value of the order").
fn drop_light_heads(only_x: &mut Vec<&Content>, p: &Profile, q: &Profile) {
    let shared_at = |i: usize| p.content.iter().any(|d| d.pos == i && q.content.iter().any(|e| e.key == d.key));
    only_x.retain(|c| {
        let prev = c.pos.checked_sub(1).and_then(|i| p.toks.get(i).map(|t| (i, t)));
        let after_shared = prev.is_some_and(|(i, _)| shared_at(i));
        let before_shared = (c.pos + 2..=c.pos + 3).any(shared_at);
        let light = LIGHT_HEADS.contains(&c.surface.as_str()) && (after_shared || before_shared);
        let acronym = after_shared
            && ACRONYM_HEADS.contains(&c.surface.as_str())
            && prev.is_some_and(|(_, t)| t.name && t.w.chars().all(char::is_alphabetic));
        let copula = COPULAS.contains(&c.surface.as_str()) && shared_at(c.pos + 1);
        !(light || acronym || copula)
    });
}

/// A trap is a minimal edit of its twin: at most this many word edits (after fillers are dropped).
/// Measured on fow-cache and our own pairs: 2 lets through more traps, 4 refuses more paraphrases.
const MAX_EDITS: usize = 3;

/// Balanced: a time or scope word added on one side is refused up to this many word edits (a
/// rewording that also adds "abroad" or "this month" passes). Strict refuses it at any distance.
const MAX_EDITS_QUALIFIER: usize = 6;

/// Balanced: a negation on one side only is refused up to this many word edits.
const NEGATION_EDITS_BALANCED: usize = 8;

/// Only the last this-many words of long prompts are aligned (the question is usually at the end).
const ALIGN_WINDOW: usize = 64;

/// Word-level Levenshtein distance; words equal when their keys match or they are typos of each other.
fn edit_distance(a: &[Content], b: &[Content]) -> usize {
    let a = &a[a.len().saturating_sub(ALIGN_WINDOW)..];
    let b = &b[b.len().saturating_sub(ALIGN_WINDOW)..];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len() + 1];
    for (i, x) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let same =
                x.key == y.key || (x.surface.len().abs_diff(y.surface.len()) <= 2 && is_typo(&x.surface, &y.surface));
            cur[j + 1] = (prev[j] + usize::from(!same)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}
