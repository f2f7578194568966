//! What the checks compare, computed once per prompt: numbers, units, negations, contrast poles,
//! time and scope classes, names, content words and order relations.
use std::collections::{BTreeMap, BTreeSet};

use super::lexicon::{is_short_form, is_typo, lexicon};
use super::tokens::{tokenize, Kind, Tok};

/// Above this many tokens the fuzzy (typo) lookups are skipped to keep the check linear.
pub(crate) const FUZZY_TOKEN_CAP: usize = 200;

/// A content word: its synonym-folded stem (compared) and surface form (for typo matching).
#[derive(Debug, Clone)]
pub(crate) struct Content {
    pub key: String,
    pub surface: String,
    /// index of the token in `Profile::toks`
    pub pos: usize,
}

#[derive(Debug)]
pub(crate) struct Profile {
    pub toks: Vec<Tok>,
    pub nums: Vec<String>,
    pub units: Vec<&'static str>,
    pub negations: usize,
    pub poles: BTreeSet<(u16, u8)>,
    pub time: BTreeSet<String>,
    pub scope: BTreeSet<&'static str>,
    /// scope classes a general word here takes in ("pets": dog, cat)
    pub covers: BTreeSet<&'static str>,
    /// name -> whether it is all-lowercase-insensitive key
    pub names: BTreeSet<String>,
    pub content: Vec<Content>,
    /// (marker, key of the first content word after it)
    pub relations: Vec<(String, String)>,
    /// numbers, names and currencies in order of appearance
    pub key_seq: Vec<String>,
    /// currency classes (for the order relations)
    pub currencies: Vec<String>,
    /// (time or scope class, the word that gave it)
    pub class_words: Vec<(String, String)>,
    /// every non-filler token as compared by the edit distance (synonym-folded stems, numbers)
    pub seq: Vec<Content>,
}

fn content_key(t: &Tok) -> Option<String> {
    let lx = lexicon();
    if t.name && t.kind == Kind::Word {
        // A name is content even when it is spelled like a function word ("Go", "US", "IT").
        return Some(lx.synonym.get(&t.stem).cloned().unwrap_or_else(|| t.stem.clone()));
    }
    if t.kind != Kind::Word
        || lx.stop.contains(t.w.as_str())
        || lx.filler.contains(&t.stem)
        || lx.negation.contains(&t.stem)
    {
        return None;
    }
    if !t.w.chars().any(char::is_alphanumeric) {
        return None;
    }
    Some(lx.synonym.get(&t.stem).cloned().unwrap_or_else(|| t.stem.clone()))
}

/// A scope word used in another sense: "at home" / "from home" is where, not who (residential);
/// "free up" is a verb, not the price. Minimal edits still see the word as content.
fn not_scope(toks: &[Tok], i: usize) -> bool {
    let w = toks[i].w.as_str();
    let prev = i.checked_sub(1).map(|j| toks[j].w.as_str());
    let next = toks.get(i + 1).map(|t| t.w.as_str());
    (w == "home" && matches!(prev, Some("at" | "from" | "not" | "be" | "is" | "am" | "are" | "get" | "go" | "come" | "back")))
        || (w == "free" && next == Some("up"))
        // "be paid", "get paid": the passive of pay, not the paid tier
        || (w == "paid"
            && matches!(prev, Some("be" | "is" | "are" | "was" | "were" | "been" | "being" | "get" | "gets" | "got")))
}

impl Profile {
    pub(crate) fn new(text: &str) -> Profile {
        let lx = lexicon();
        let toks = tokenize(text);
        let mut p = Profile {
            nums: Vec::new(),
            units: Vec::new(),
            negations: 0,
            poles: BTreeSet::new(),
            time: BTreeSet::new(),
            scope: BTreeSet::new(),
            covers: BTreeSet::new(),
            names: BTreeSet::new(),
            content: Vec::new(),
            relations: Vec::new(),
            key_seq: Vec::new(),
            seq: Vec::new(),
            class_words: Vec::new(),
            currencies: Vec::new(),
            toks: Vec::new(),
        };
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut pending_currency: Option<(String, String)> = None;
        let mut negated_sentences: BTreeMap<usize, usize> = BTreeMap::new();
        for (i, t) in toks.iter().enumerate() {
            if !lx.filler.contains(&t.stem) && t.w.chars().any(char::is_alphanumeric) {
                let key = lx.synonym.get(&t.stem).cloned().unwrap_or_else(|| t.stem.clone());
                p.seq.push(Content { key, surface: t.w.clone(), pos: i });
            }
            let prev_num = i > 0 && matches!(toks[i - 1].kind, Kind::Num(_));
            if let Kind::Num(v) = &t.kind {
                p.nums.push(v.clone());
                p.key_seq.push(v.clone());
                if let Some((c, _)) = pending_currency.take() {
                    p.key_seq.push(c);
                }
                continue;
            }
            if let Some(c) = lx.currency_of(&t.w) {
                p.units.push(c);
                p.currencies.push(c.to_string());
                // "£50" and "50 pounds": a currency right before a number goes after it in key_seq.
                if let Some(Kind::Num(v)) = toks.get(i + 1).map(|n| &n.kind) {
                    pending_currency = Some((c.to_string(), v.clone()));
                } else {
                    p.key_seq.push(c.to_string());
                }
                continue;
            }
            if prev_num {
                if let Some(&u) = lx.unit.get(&t.stem) {
                    p.units.push(u);
                    continue;
                }
                if t.w == "%" {
                    p.units.push("%");
                    continue;
                }
            }
            // Negation: concord words after a negator in the same sentence do not count again.
            if lx.negation.contains(&t.stem) || lx.negation.contains(t.w.as_str()) {
                let concord = lx.neg_concord.contains(t.w.as_str()) && negated_sentences.contains_key(&t.sent);
                if !concord {
                    p.negations += 1;
                    *negated_sentences.entry(t.sent).or_default() += 1;
                }
            } else if lx.neg_concord.contains(t.w.as_str()) && negated_sentences.contains_key(&t.sent) {
                // "not ... any": concord, nothing to count
            }
            if let Some(poles) = lx.contrast.get(&t.stem) {
                // "not pass" is "fail", "not safe" is "unsafe": a negator just before flips the pole
                // (the negation itself is counted too, so "pass" / "not pass" still differ).
                let negated = toks[i.saturating_sub(2)..i]
                    .iter()
                    .any(|n| n.sent == t.sent && (n.w == "not" || n.w == "no" || n.w == "never"));
                p.poles.extend(poles.iter().map(|&(g, pole)| (g, if negated { pole ^ 1 } else { pole })));
            }
            if lx.time_mod.contains(t.w.as_str()) {
                if let Some(period) = toks.get(i + 1).and_then(|n| lx.time_period.get(&n.stem)) {
                    p.time.insert(format!("{}:{}", t.w, period));
                    p.class_words.push((format!("{}:{}", t.w, period), t.w.clone()));
                }
            }
            // "per day", "every year", "every night" say what "daily", "yearly", "nightly" say.
            if matches!(t.w.as_str(), "per" | "each" | "every") {
                let rate = toks.get(i + 1).and_then(|n| match n.stem.as_str() {
                    "day" => Some("daily"),
                    "week" => Some("weekly"),
                    "month" => Some("monthly"),
                    "year" => Some("yearly"),
                    "night" => Some("nightly"),
                    "hour" => Some("hourly"),
                    _ => None,
                });
                if let Some(c) = rate {
                    p.time.insert(c.to_string());
                    p.class_words.push((c.to_string(), t.w.clone()));
                }
            }
            if let Some(&c) = lx.time.get(&t.w) {
                p.time.insert(c.to_string());
                p.class_words.push((c.to_string(), t.w.clone()));
            }
            if let Some(&c) = lx.scope.get(&t.w).filter(|_| !not_scope(&toks, i)) {
                p.scope.insert(c);
                p.class_words.push((c.to_string(), t.w.clone()));
            }
            // A hyphenated class word the tokenizer split ("grown-up", "self-employed").
            if let Some(&c) = toks.get(i + 1).and_then(|n| lx.scope.get(&format!("{}-{}", t.w, n.w))) {
                p.scope.insert(c);
                p.class_words.push((c.to_string(), t.w.clone()));
            }
            // "another country", "otro país", "un autre pays", "ein anderes Land": abroad.
            let other = i.checked_sub(1).is_some_and(|j| {
                matches!(
                    toks[j].w.as_str(),
                    "another" | "other" | "different" | "otro" | "otra" | "autre" | "anderes" | "anderen" | "andere"
                )
            });
            if other
                && matches!(
                    t.w.as_str(),
                    "country" | "countries" | "país" | "pais" | "países" | "paises" | "pays" | "land" | "länder"
                )
            {
                p.scope.insert("international");
                p.class_words.push(("international".to_string(), t.w.clone()));
            }
            if let Some((_, cs)) = super::lists_en::SCOPE_HYPERNYMS.iter().find(|(w, _)| *w == t.w) {
                p.covers.extend(cs.iter().copied());
            }
            if t.name {
                p.names.insert(t.w.replace('-', ""));
                p.key_seq.push(t.stem.clone());
            }
            if let Some(k) = content_key(t) {
                // A set, not a multiset: "how much does it cost" and "what is the price" say cost once.
                if seen.insert(k.clone()) {
                    p.content.push(Content { key: k, surface: t.w.clone(), pos: i });
                }
            }
            if lx.order_marker.contains(t.w.as_str()) {
                if let Some(next) = toks[i + 1..].iter().find_map(|n| match &n.kind {
                    Kind::Num(v) => Some(v.clone()),
                    Kind::Word => lx.currency_of(&n.w).map(|c| c.to_string()).or_else(|| content_key(n)),
                }) {
                    p.relations.push((t.w.clone(), next));
                }
            }
        }
        p.units.sort_unstable();
        p.toks = toks;
        p
    }

    /// Whether the words that gave `class` here all occur in `other` with a typo ("chlid", "Mondys").
    pub(crate) fn class_typoed_in(&self, class: &str, other: &Profile) -> bool {
        if other.toks.len() > FUZZY_TOKEN_CAP {
            return false;
        }
        let mut words = self.class_words.iter().filter(|(c, _)| c == class).peekable();
        words.peek().is_some() && words.all(|(_, w)| other.toks.iter().any(|t| is_typo(w, &t.w)))
    }

    /// Whether `name` (from the other prompt) occurs here, allowing a typo in long names.
    pub(crate) fn has_name(&self, name: &str) -> bool {
        let st = super::lexicon::stem(name);
        // A token spelled the same (hyphens aside), with the same stem, or two adjacent tokens
        // that join to it ("wi fi" / "WiFi").
        let same = |w: &str| w == name || (w.contains('-') && w.replace('-', "") == name) || is_short_form(w, name);
        if self.toks.iter().any(|t| same(&t.w) || t.stem == st)
            || self.toks.windows(2).any(|p| {
                name.len() == p[0].w.len() + p[1].w.len() && name.starts_with(&p[0].w) && name.ends_with(&p[1].w)
            })
        {
            return true;
        }
        // A listed synonym of the name (ATM / cashpoint).
        if let Some(rep) = lexicon().synonym.get(&st) {
            if self.content.iter().any(|c| &c.key == rep) {
                return true;
            }
        }
        name.chars().count() >= 6
            && self.toks.len() <= FUZZY_TOKEN_CAP
            && self.toks.iter().any(|t| t.w.chars().count() >= 6 && is_typo(&t.w, name))
    }
}
