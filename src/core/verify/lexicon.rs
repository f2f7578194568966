//! The word lists of all languages merged into lookup tables (built once), plus the light stemmer
//! and the typo distance the checks share.
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use super::{lists_de as de, lists_en as en, lists_es as es, lists_fr as fr};

pub(crate) struct Lexicon {
    pub stop: HashSet<&'static str>,
    pub filler: HashSet<String>,
    pub negation: HashSet<String>,
    pub neg_concord: HashSet<&'static str>,
    /// stem -> (group, pole)
    pub contrast: HashMap<String, Vec<(u16, u8)>>,
    /// lowercase word -> time class
    pub time: HashMap<String, &'static str>,
    pub time_mod: HashSet<&'static str>,
    pub time_period: HashMap<String, &'static str>,
    /// lowercase word -> scope class
    pub scope: HashMap<String, &'static str>,
    /// surface -> value
    pub number: HashMap<&'static str, u64>,
    pub scale: HashMap<&'static str, u64>,
    pub one_pronoun: HashSet<&'static str>,
    /// lowercase word (and its plural) -> currency class (compared anywhere). Not stemmed: the stemmer
    /// turns "France" into "franc".
    pub currency: HashMap<String, &'static str>,
    /// stem -> unit class (only right after a number)
    pub unit: HashMap<String, &'static str>,
    pub order_marker: HashSet<&'static str>,
    /// stem -> stem of the first word of its synonym group
    pub synonym: HashMap<String, String>,
    /// function words that mark German text (capitalised nouns are not names there)
    pub german: HashSet<&'static str>,
}

static LEXICON: OnceLock<Lexicon> = OnceLock::new();

pub(crate) fn lexicon() -> &'static Lexicon {
    LEXICON.get_or_init(build)
}

fn classes(into: &mut HashMap<String, &'static str>, lists: &[&'static [&'static str]]) {
    for group in lists {
        if let Some(&class) = group.first() {
            for w in group.iter() {
                into.entry(stem(w)).or_insert(class);
            }
        }
    }
}

/// Like `classes`, keyed by the lowercase word and its plural (no stemming: "evening" must not
/// become "even").
fn surface_classes(into: &mut HashMap<String, &'static str>, lists: &[&'static [&'static str]]) {
    for group in lists {
        if let Some(&class) = group.first() {
            for w in group.iter() {
                let w = w.to_lowercase();
                into.entry(format!("{w}s")).or_insert(class);
                into.entry(w).or_insert(class);
            }
        }
    }
}

fn build() -> Lexicon {
    let mut lx = Lexicon {
        stop: HashSet::new(),
        filler: HashSet::new(),
        negation: HashSet::new(),
        neg_concord: HashSet::new(),
        contrast: HashMap::new(),
        time: HashMap::new(),
        time_mod: HashSet::new(),
        time_period: HashMap::new(),
        scope: HashMap::new(),
        number: HashMap::new(),
        scale: HashMap::new(),
        one_pronoun: en::ONE_PRONOUN_BEFORE.iter().copied().collect(),
        currency: HashMap::new(),
        unit: HashMap::new(),
        order_marker: HashSet::new(),
        synonym: HashMap::new(),
        // German function words that are not English words too
        german: [
            "der", "das", "und", "ist", "nicht", "ich", "mich", "mir", "wie", "kann", "mein", "meine", "meinen", "ein",
            "eine", "einen", "einer", "mit", "für", "auf", "dem", "sich", "wo", "wann", "warum", "gibt", "zu", "muss",
            "bitte", "kein", "keine", "wird", "werden", "sind", "es", "wir", "ihr", "sie", "oder", "aber", "bei",
        ]
        .into_iter()
        .collect(),
    };
    let stops: [&[&'static str]; 4] = [en::STOPWORDS, es::STOPWORDS, fr::STOPWORDS, de::STOPWORDS];
    let fillers: [&[&'static str]; 4] = [en::FILLERS, es::FILLERS, fr::FILLERS, de::FILLERS];
    let negs: [&[&'static str]; 4] = [en::NEGATIONS, es::NEGATIONS, fr::NEGATIONS, de::NEGATIONS];
    let concord: [&[&'static str]; 4] = [en::NEG_CONCORD, es::NEG_CONCORD, fr::NEG_CONCORD, de::NEG_CONCORD];
    for l in stops {
        lx.stop.extend(l.iter().copied());
    }
    for l in fillers {
        lx.filler.extend(l.iter().map(|w| stem(w)));
    }
    for l in negs {
        lx.negation.extend(l.iter().map(|w| stem(w)));
    }
    for l in concord {
        lx.neg_concord.extend(l.iter().copied());
    }
    let contrasts: [&[(&[&'static str], &[&'static str])]; 4] =
        [en::CONTRASTS, es::CONTRASTS, fr::CONTRASTS, de::CONTRASTS];
    let mut group: u16 = 0;
    for l in contrasts {
        for (pos, neg) in l.iter() {
            for (pole, words) in [(0u8, *pos), (1u8, *neg)] {
                for w in words.iter() {
                    let e = lx.contrast.entry(stem(w)).or_default();
                    if !e.contains(&(group, pole)) {
                        e.push((group, pole));
                    }
                }
            }
            group = group.saturating_add(1);
        }
    }
    for l in [en::TIME, es::TIME, fr::TIME, de::TIME] {
        surface_classes(&mut lx.time, l);
    }
    for l in [en::TIME_MODIFIERS, es::TIME_MODIFIERS, fr::TIME_MODIFIERS, de::TIME_MODIFIERS] {
        lx.time_mod.extend(l.iter().copied());
    }
    // Periods map to their English name so "next week" and "la semana próxima" meet.
    for (l, names) in [
        (en::TIME_PERIODS, en::TIME_PERIODS),
        (es::TIME_PERIODS, &["week", "month", "year", "year", "day", "day"][..]),
        (fr::TIME_PERIODS, &["week", "month", "year", "year", "year", "day"][..]),
        (de::TIME_PERIODS, &["week", "month", "year", "day"][..]),
    ] {
        for (w, n) in l.iter().zip(names.iter()) {
            lx.time_period.insert(stem(w), n);
        }
    }
    for l in [en::SCOPE, es::SCOPE, fr::SCOPE, de::SCOPE] {
        surface_classes(&mut lx.scope, l);
    }
    for l in [en::NUMBERS, es::NUMBERS, fr::NUMBERS, de::NUMBERS] {
        lx.number.extend(l.iter().copied());
    }
    lx.scale.extend(en::SCALES.iter().copied());
    for l in [en::CURRENCIES, es::CURRENCIES, fr::CURRENCIES, de::CURRENCIES] {
        surface_classes(&mut lx.currency, l);
    }
    for l in [en::UNITS, en::DURATIONS, es::DURATIONS, fr::DURATIONS, de::DURATIONS] {
        classes(&mut lx.unit, l);
    }
    for l in [en::ORDER_MARKERS, es::ORDER_MARKERS, fr::ORDER_MARKERS, de::ORDER_MARKERS] {
        lx.order_marker.extend(l.iter().copied());
    }
    for l in [en::SYNONYMS, es::SYNONYMS, fr::SYNONYMS, de::SYNONYMS] {
        for g in l.iter() {
            // A word already in a group joins this group to it (check: look / cheque).
            let rep = g.iter().find_map(|w| lx.synonym.get(&stem(w)).cloned()).or_else(|| g.first().map(|w| stem(w)));
            if let Some(rep) = rep {
                for w in g.iter() {
                    lx.synonym.entry(stem(w)).or_insert_with(|| rep.clone());
                }
            }
        }
    }
    lx
}

impl Lexicon {
    /// The currency class of a word as written (any case), if it names one.
    pub(crate) fn currency_of(&self, word: &str) -> Option<&'static str> {
        if word.chars().any(char::is_uppercase) {
            self.currency.get(&word.to_lowercase()).copied()
        } else {
            self.currency.get(word).copied()
        }
    }
}

/// Light stemmer (English-shaped, applied to every language alike so both sides fold the same way):
/// plural -s/-es/-ies, -ing, -ed, -ation, final -e, doubled final consonant. Enough to fold
/// enable/enabled/enabling and store/stores; not a linguistic stemmer.
pub(crate) fn stem(w: &str) -> String {
    let w = if w.chars().any(char::is_uppercase) { w.to_lowercase() } else { w.to_string() };
    if w.len() <= 3 || !w.chars().all(|c| c.is_alphabetic() || c == '-') {
        return w;
    }
    let mut s = w.as_str().to_string();
    if let Some(b) = s.strip_suffix("ies").filter(|b| b.chars().count() >= 2) {
        s = format!("{b}y");
    } else if s.ends_with("sses") || s.ends_with("xes") || s.ends_with("ches") || s.ends_with("shes") {
        s.truncate(s.len() - 2);
    } else if s.ends_with('s') && !s.ends_with("ss") && !s.ends_with("us") && !s.ends_with("is") {
        s.pop();
    }
    for suf in ["ation", "ing", "ed"] {
        if let Some(b) = s.strip_suffix(suf) {
            if b.chars().count() >= 3 {
                s = b.to_string();
                break;
            }
        }
    }
    if s.chars().count() > 3 && s.ends_with('e') {
        s.pop();
    }
    let cs: Vec<char> = s.chars().collect();
    if cs.len() > 3 {
        let (a, b) = (cs[cs.len() - 1], cs[cs.len() - 2]);
        if a == b && !"aeious".contains(a) {
            s.pop();
        }
    }
    s
}

/// Optimal-string-alignment (restricted Damerau-Levenshtein) distance, capped: returns `cap + 1`
/// as soon as the distance must exceed `cap`.
pub(crate) fn osa_distance(a: &str, b: &str, cap: usize) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > cap {
        return cap + 1;
    }
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for (j, cell) in d.iter_mut().take(w).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        d[i * w] = i;
        let mut row_min = usize::MAX;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1).min(d[i * w + j - 1] + 1).min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
            row_min = row_min.min(v);
        }
        if row_min > cap {
            return cap + 1;
        }
    }
    d[a.len() * w + b.len()].min(cap + 1)
}

/// Whether two different words are the same word with a typo: one edit (insert, delete, substitute,
/// swap adjacent) for words of 5+ letters; for 4-letter words only an insertion, deletion or swap
/// (a substituted letter makes too many real words: Iran/Iraq, ship/shop, Mary/Mark). Digits never.
pub(crate) fn is_typo(a: &str, b: &str) -> bool {
    if a == b || a.chars().any(|c| c.is_ascii_digit()) || b.chars().any(|c| c.is_ascii_digit()) {
        return false;
    }
    let (la, lb) = (a.chars().count(), b.chars().count());
    let longer = la.max(lb);
    if longer < 4 || osa_distance(a, b, 1) != 1 {
        return false;
    }
    if longer >= 5 {
        return true;
    }
    // 4 letters: not a plain substitution
    la != lb || {
        let diff: Vec<usize> =
            a.chars().zip(b.chars()).enumerate().filter(|(_, (x, y))| x != y).map(|(i, _)| i).collect();
        diff.len() == 2 && diff[1] == diff[0] + 1
    }
}

/// Whether one name is the other's short form: a prefix of 5+ letters that leaves a tail of at most
/// 3 consonants (Postgres / PostgreSQL, Mongo / MongoDB, React / ReactJS). Shorter prefixes, longer
/// tails and tails with a vowel make different names too often (Java / JavaScript, Niger / Nigeria,
/// Swift / SwiftUI; Node / NodeJS is left out with them).
pub(crate) fn is_short_form(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let Some(tail) = long.strip_prefix(short) else { return false };
    let n = tail.chars().count();
    // a tail with a vowel is a word ending, not a short form: Niger / Nigeria, India / Indiana
    short.chars().count() >= 5
        && (1..=3).contains(&n)
        && tail.chars().all(|c| c.is_alphabetic() && !"aeiouyáéíóúàèìòùäöü".contains(c))
}

/// Whether one word is the other with a derivational suffix that keeps what it is about
/// (withdraw / withdrawal, quick / quickly, pay / payment): compared on the light
/// stems, the longer is the shorter plus one of a few suffixes. Agent and patient suffixes (-er, -ee)
/// are not among them: employer / employee / employ are different people.
pub(crate) fn is_derivation(a: &str, b: &str) -> bool {
    const SUFFIXES: &[&str] = &["al", "ment", "ion", "ance", "ence", "ness", "ity", "ly"];
    let (sa, sb) = (stem(a), stem(b));
    let (short, long) = if sa.len() <= sb.len() { (sa, sb) } else { (sb, sa) };
    short.chars().count() >= 4 && long.strip_prefix(short.as_str()).is_some_and(|tail| SUFFIXES.contains(&tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_fold_inflections() {
        assert_eq!(stem("enabled"), stem("enable"));
        assert_eq!(stem("enabling"), stem("enable"));
        assert_eq!(stem("stores"), stem("store"));
        assert_eq!(stem("babies"), stem("baby"));
        assert_eq!(stem("cancelled"), stem("cancel"));
        assert_eq!(stem("banned"), stem("ban"));
        assert_eq!(stem("quotation"), stem("quote"));
        assert_ne!(stem("austria"), stem("australia"));
    }

    #[test]
    fn short_forms() {
        assert!(is_short_form("postgres", "postgresql"));
        assert!(is_short_form("mongodb", "mongo"));
        assert!(!is_short_form("java", "javascript"));
        assert!(!is_short_form("node", "nodejs"));
        assert!(!is_short_form("windows", "windows10"));
        assert!(!is_short_form("python", "python"));
        assert!(!is_short_form("niger", "nigeria"));
        assert!(!is_short_form("india", "indiana"));
        assert!(!is_short_form("swift", "swiftui"));
    }

    #[test]
    fn derivations() {
        assert!(is_derivation("withdrawal", "withdrawing"));
        assert!(is_derivation("quickly", "quick"));
        assert!(is_derivation("payment", "paying") || stem("paying").len() < 4);
        // a final -e the stemmer cut is not restored: state / statement, place / placement differ
        assert!(!is_derivation("statement", "state"));
        assert!(!is_derivation("employer", "employee"));
        assert!(!is_derivation("employ", "employer"));
        assert!(!is_derivation("sale", "salt"));
    }

    #[test]
    fn typos() {
        assert!(is_typo("chnage", "change"));
        assert!(is_typo("adress", "address"));
        assert!(is_typo("aply", "apply"));
        assert!(is_typo("perscription", "prescription"));
        assert!(!is_typo("austria", "australia"));
        assert!(!is_typo("mary", "mark"));
        assert!(!is_typo("iran", "iraq"));
        assert!(!is_typo("2014", "2018"));
        assert_eq!(osa_distance("abc", "abc", 2), 0);
        assert_eq!(osa_distance("abcdef", "ab", 1), 2);
    }
}
