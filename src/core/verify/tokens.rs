//! Tokenizer for the verifier: canonical-style folding, contraction and elision expansion, numbers
//! split from their units, number words read as values, and a `name` flag for tokens that look like
//! proper nouns, acronyms or code identifiers (decided on the original casing).
use super::canon::{expand_contraction, fold_text};
use super::lexicon::{lexicon, stem};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Word,
    /// A number, as a normalised string (so 3.8 and 3.80 differ, as versions do).
    Num(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Tok {
    /// Lowercase surface form.
    pub w: String,
    pub stem: String,
    pub kind: Kind,
    /// Proper noun, acronym or code identifier.
    pub name: bool,
    /// Sentence index (negative concord is per sentence).
    pub sent: usize,
}

/// Words of a leading greeting ("Morning!", "Hi team,"), dropped so that "morning" is no time word.
const GREETINGS: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "hiya",
    "good",
    "morning",
    "afternoon",
    "evening",
    "day",
    "dear",
    "there",
    "team",
    "all",
    "everyone",
    "guys",
    "folks",
    "greetings",
    "hola",
    "buenos",
    "buenas",
    "dias",
    "días",
    "tardes",
    "noches",
    "bonjour",
    "bonsoir",
    "salut",
    "coucou",
    "hallo",
    "moin",
    "servus",
    "guten",
    "tag",
    "morgen",
    "abend",
    "ok",
    "okay",
    "so",
    "um",
    "uh",
    "yeah",
    "sorry",
    "quick",
    "question",
    "one",
];

/// Leading greeting clause: the first raw tokens (up to 4), ending in , ! . or :, all greeting words.
fn greeting_len(raws: &[(&str, bool)]) -> usize {
    for (k, (raw, _)) in raws.iter().take(4).enumerate() {
        let word = raw.trim_end_matches([',', '!', '.', ':']).to_lowercase();
        if !GREETINGS.contains(&word.as_str()) {
            return 0;
        }
        if raw.ends_with([',', '!', '.', ':']) {
            return k + 1;
        }
    }
    0
}

fn is_lead(c: char) -> bool {
    matches!(c, '"' | '\'' | '¿' | '¡' | '(' | '[' | '{' | '`' | '*')
}

fn is_trail(c: char) -> bool {
    matches!(c, '.' | ',' | ';' | ':' | '!' | '?' | '"' | '\'' | '…' | ')' | ']' | '}' | '`' | '*')
}

fn ends_sentence(raw: &str) -> bool {
    raw.trim_end_matches(['"', '\'', ')', '*']).ends_with(['.', '!', '?', ':', ';'])
}

/// Code-like identifier: snake_case, camelCase, dotted.name, letters with digits, c#, c++, paths.
fn looks_like_code(orig: &str) -> bool {
    let has_alpha = orig.chars().any(char::is_alphabetic);
    if !has_alpha {
        return false;
    }
    if orig.contains(['_', '#', '+', '@', '/', '\\', '=', '<', '>']) {
        return true;
    }
    let mut prev_lower = false;
    let mut camel = false;
    for c in orig.chars() {
        camel |= prev_lower && c.is_uppercase();
        prev_lower = c.is_lowercase();
    }
    let letter_digit = orig.starts_with(char::is_alphabetic) && orig.contains(|c: char| c.is_ascii_digit());
    let dotted = orig.contains('.')
        && orig.split('.').all(|p| !p.is_empty())
        && orig.split('.').skip(1).all(|p| p.chars().filter(|c| c.is_alphabetic()).count() >= 2);
    let ext = orig.starts_with('.') && orig.len() > 2 && orig[1..].chars().all(char::is_alphanumeric);
    camel || letter_digit || dotted || ext
}

const ELISIONS: &[&str] = &["l", "d", "j", "m", "t", "s", "c", "n", "qu", "jusqu", "lorsqu", "puisqu"];

/// Splits a lowercase word into words: contractions, possessives, French elisions.
fn expand(lower: &str) -> Vec<String> {
    if let Some(e) = expand_contraction(lower) {
        return e.split(' ').map(str::to_string).collect();
    }
    if let Some(base) = lower.strip_suffix("'s").or_else(|| lower.strip_suffix('\'')) {
        if !base.is_empty() {
            return vec![base.to_string()];
        }
    }
    if let Some((pre, rest)) = lower.split_once('\'') {
        if ELISIONS.contains(&pre) && !rest.is_empty() && rest != "hui" {
            let first = if pre == "n" { "ne" } else { pre };
            return vec![first.to_string(), rest.to_string()];
        }
    }
    vec![lower.to_string()]
}

/// Normalises a digit string: thousands separators dropped ("2,700" -> "2700"), trailing separators
/// removed. Decimal points and times are kept as written.
fn norm_number(s: &str) -> String {
    let s = s.trim_end_matches(['.', ',', ':', '/']);
    let groups: Vec<&str> = s.split(',').collect();
    if groups.len() > 1 && groups[1..].iter().all(|g| g.len() == 3 && g.chars().all(|c| c.is_ascii_digit())) {
        return groups.concat();
    }
    s.to_string()
}

/// Pieces of one word: currency symbol, number, unit suffix ("£50" -> £ 50; "7pm" -> 7 pm;
/// "3rd" -> 3). A digit-led word with another suffix ("2fa") stays one word.
fn split_number(word: &str, out: &mut Vec<(String, bool)>) {
    let mut w = word;
    if let Some(c) = w.chars().next() {
        if matches!(c, '$' | '£' | '€' | '¥' | '₹') && w.len() > c.len_utf8() {
            out.push((c.to_string(), false));
            w = &w[c.len_utf8()..];
        }
    }
    if !w.starts_with(|c: char| c.is_ascii_digit()) {
        out.push((w.to_string(), false));
        return;
    }
    let end = w.find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | ',' | ':' | '/'))).unwrap_or(w.len());
    let (num, suffix) = w.split_at(end);
    let lx = lexicon();
    let num = norm_number(num);
    if suffix.is_empty() || matches!(suffix, "st" | "nd" | "rd" | "th" | "s") {
        out.push((num, true));
    } else if suffix == "%" || suffix == "k" || lx.unit.contains_key(&stem(suffix)) || lx.currency_of(suffix).is_some()
    {
        out.push((num, true));
        out.push((suffix.to_string(), false));
    } else {
        out.push((w.to_string(), false));
    }
}

/// Two-word phrases read as one word, so that "sign in" / "sign up" / "log out" stay apart.
fn join_phrase(a: &str, b: &str) -> Option<&'static str> {
    Some(match (a, b) {
        ("sign" | "log", "in" | "on") => "login",
        ("sign" | "log", "out" | "off") => "logout",
        ("sign", "up") => "signup",
        ("check", "in") => "checkin",
        ("check", "out") => "checkout",
        ("set", "up") => "setup",
        ("e", "mail") => "email",
        ("wi", "fi") => "wifi",
        ("what", "time") => "when",
        _ => return None,
    })
}

pub(crate) fn tokenize(text: &str) -> Vec<Tok> {
    let lx = lexicon();
    let folded = fold_text(text);
    // (raw token, starts a sentence)
    let mut raws: Vec<(&str, bool)> = Vec::new();
    for line in folded.split('\n') {
        let mut start = true;
        for raw in line.split_whitespace() {
            raws.push((raw, start));
            start = ends_sentence(raw);
        }
    }
    let skip = greeting_len(&raws);
    if skip > 0 {
        if let Some(r) = raws.get_mut(skip) {
            r.1 = true;
        }
    }
    let raws = &raws[skip.min(raws.len())..];

    // Title Case or ALL CAPS text says nothing about names; nor does German, which capitalises nouns.
    // Title Case shows as capitalised function words inside a sentence ("Do You Accept Apple Pay?");
    // a sentence with names in it does not capitalise those ("Who wrote Wuthering Heights?").
    let letters: Vec<char> = folded.chars().filter(|c| c.is_alphabetic()).collect();
    let upper = letters.iter().filter(|c| c.is_uppercase()).count();
    let all_caps = letters.len() >= 6 && upper * 10 >= letters.len() * 8;
    let title = raws.iter().any(|&(raw, starts)| {
        let w = raw.trim_start_matches(is_lead).trim_end_matches(is_trail);
        !starts
            && w.chars().count() >= 2
            && w.starts_with(char::is_uppercase)
            && lx.stop.contains(w.to_lowercase().as_str())
    });
    let words: Vec<&str> =
        raws.iter().map(|r| r.0.trim_start_matches(is_lead)).filter(|r| r.starts_with(char::is_alphabetic)).collect();
    let capped = words.iter().filter(|r| r.starts_with(char::is_uppercase)).count();
    let caps_mode = all_caps || (title && capped * 4 >= words.len() * 3);
    let german = raws.iter().filter(|r| r.0.len() <= 6 && lx.german.contains(r.0.to_lowercase().as_str())).count() >= 2;

    // (word, is_number, name, sentence)
    let mut words: Vec<(String, bool, bool, usize)> = Vec::new();
    let mut sent = 0usize;
    for &(raw, starts) in raws {
        if starts && !words.is_empty() {
            sent += 1;
        }
        let orig = raw.trim_start_matches(is_lead).trim_end_matches(is_trail);
        if orig.is_empty() {
            continue;
        }
        let code = looks_like_code(orig);
        let letters: Vec<char> = orig.chars().filter(|c| c.is_alphabetic()).collect();
        let acronym = letters.len() >= 2 && letters.iter().all(|c| c.is_uppercase()) && !caps_mode;
        let capital = orig.starts_with(char::is_uppercase) && !starts && !caps_mode && !german;
        let lower = orig.to_lowercase();
        let name = (code || acronym || capital) && lower != "i" && lower != "ok";
        let pieces = expand(&lower);
        let single = pieces.len() == 1;
        for piece in pieces {
            // Hyphenated words split into parts (non-refundable, two-factor, check-in), except names.
            let parts: Vec<&str> = if name && single || code {
                vec![piece.as_str()]
            } else {
                piece.split('-').filter(|p| !p.is_empty()).collect()
            };
            for part in parts {
                let mut split = Vec::new();
                split_number(part, &mut split);
                for (w, is_num) in split {
                    let nm = name && single && !is_num;
                    words.push((w, is_num, nm, sent));
                }
            }
        }
    }

    // Phrase joins and number words.
    let mut toks: Vec<Tok> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let (w, is_num, name, s) = &words[i];
        if let Some(next) = words.get(i + 1) {
            if let Some(j) = join_phrase(w, &next.0) {
                toks.push(Tok { w: j.to_string(), stem: j.to_string(), kind: Kind::Word, name: false, sent: *s });
                i += 2;
                continue;
            }
        }
        // "how much is/does/..." asks a price: same as "what is the price/cost".
        if w == "how" && words.get(i + 1).is_some_and(|n| n.0 == "much") {
            const VERBS: &[&str] = &["is", "are", "does", "do", "did", "was", "will", "would", "should", "for", "to"];
            if words.get(i + 2).is_some_and(|n| VERBS.contains(&n.0.as_str())) {
                toks.push(Tok { w: "cost".into(), stem: "cost".into(), kind: Kind::Word, name: false, sent: *s });
                i += 2;
                continue;
            }
        }
        if *is_num {
            toks.push(Tok { w: w.clone(), stem: w.clone(), kind: Kind::Num(w.clone()), name: false, sent: *s });
            i += 1;
            continue;
        }
        // Number words: "twenty five", "two hundred", "fifty"; "one" after "this/which/..." is a pronoun.
        let prev = if i > 0 { words[i - 1].0.as_str() } else { "" };
        let is_word_num = |x: &str| lx.number.contains_key(x) || lx.scale.contains_key(x);
        let next = words.get(i + 1).map_or("", |n| n.0.as_str());
        let pronoun = w == "one" && (lx.one_pronoun.contains(prev) || next == "of");
        if is_word_num(w) && !pronoun {
            let (mut total, mut current) = (0u64, 0u64);
            let mut j = i;
            while let Some((x, false, _, _)) = words.get(j) {
                if let Some(&v) = lx.number.get(x.as_str()) {
                    current = current.saturating_add(v);
                } else if let Some(&sc) = lx.scale.get(x.as_str()) {
                    if sc >= 1000 {
                        total = total.saturating_add(current.max(1).saturating_mul(sc));
                        current = 0;
                    } else {
                        current = current.max(1).saturating_mul(sc);
                    }
                } else {
                    break;
                }
                j += 1;
            }
            let v = total.saturating_add(current).to_string();
            toks.push(Tok { w: v.clone(), stem: v.clone(), kind: Kind::Num(v), name: false, sent: *s });
            i = j.max(i + 1);
            continue;
        }
        toks.push(Tok { w: w.clone(), stem: stem(w), kind: Kind::Word, name: *name, sent: *s });
        i += 1;
    }
    toks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nums(t: &str) -> Vec<String> {
        tokenize(t).into_iter().filter_map(|t| if let Kind::Num(v) = t.kind { Some(v) } else { None }).collect()
    }
    fn names(t: &str) -> Vec<String> {
        tokenize(t).into_iter().filter(|t| t.name).map(|t| t.w).collect()
    }

    #[test]
    fn numbers_and_units() {
        assert_eq!(nums("Convert £2,700 to 7pm, the 3rd of 10GB"), ["2700", "7", "3", "10"]);
        assert_eq!(nums("twenty five apples and two hundred pears, fifty pounds"), ["25", "200", "50"]);
        assert_eq!(nums("which one is better? quick one"), Vec::<String>::new());
        assert_eq!(nums("Python 3.8 or 3.12"), ["3.8", "3.12"]);
        let w: Vec<String> = tokenize("Is a 2-bedroom flat £50?").into_iter().map(|t| t.w).collect();
        assert_eq!(w, ["is", "a", "2", "bedroom", "flat", "£", "50"]);
    }

    #[test]
    fn names_from_case() {
        assert_eq!(names("How do I install Python on Windows?"), ["python", "windows"]);
        assert_eq!(names("Who is the CEO of Microsoft? Thanks"), ["ceo", "microsoft"]);
        assert_eq!(names("DO YOU ACCEPT APPLE PAY?"), Vec::<String>::new());
        assert_eq!(names("use my_var and node.js with getElementById"), ["my_var", "node.js", "getelementbyid"]);
        assert_eq!(names("Wie kann ich mein Passwort ändern?"), Vec::<String>::new());
    }

    #[test]
    fn contractions_elisions_greetings() {
        let w: Vec<String> = tokenize("Morning! I can't log in, what's wrong with l'application? Je n'ai pas")
            .into_iter()
            .map(|t| t.w)
            .collect();
        assert_eq!(
            w,
            ["i", "can", "not", "login", "what", "is", "wrong", "with", "l", "application", "je", "ne", "ai", "pas"]
        );
    }
}
