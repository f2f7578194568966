//! Canonical form of a prompt for the exact tier: two prompts with the same canonical form are the
//! same question. Every rewrite below only removes spelling variation that cannot change meaning:
//! - Unicode NFKC: compatibility forms (full-width letters, ligatures, "…") are the same characters;
//! - quote and apostrophe variants (’ ‘ ‚ ‛ ′ ´, “ ” „ ‟ « » ″) fold to ' and "; dash variants
//!   (‐ ‑ ‒ – —) inside a token fold to '-': typography, not wording;
//! - lowercase: case does not change a natural-language question. Code is the exception (`Foo` and
//!   `foo` are different identifiers), so text inside backticks keeps its case;
//! - whitespace runs collapse to one space;
//! - sentence punctuation (. , ; : ! ? … and surrounding quotes/apostrophes) is removed only at token
//!   boundaries, never inside a token, so 3.8, c++, c#, node.js, e-mail, 9:15 and 1,000 stay intact;
//!   "?" vs "." or "!!" does not make a different question for the model;
//! - politeness and hesitation words (please, um, uh, erm) are dropped, and so are a greeting that
//!   opens the prompt when punctuation closes it ("Hi," "Hello there!") and a thank-you that follows
//!   the closed question ("...? Thanks!", "... . Thank you in advance"): they are addressed to the
//!   assistant, not part of what is asked;
//! - English contractions expand to their full form (don't -> do not, can't/cannot -> can not,
//!   isn't -> is not, I'm -> i am, we're -> we are, you've -> you have, they'll -> they will) and the
//!   apostrophe-less spellings (dont, doesnt, isnt, whats, ...; "wont" and "cant" are rare words of
//!   their own, but in a prompt they are the contraction). "'s" is
//!   expanded to "is" only after pronouns and wh-words (what's, it's, there's: never a possessive
//!   there); other "'s" is a possessive and stays. "'d" (had/would) is ambiguous and stays.
//!
//! It never drops a word, a number or a sign that is part of a token, which is why no two different
//! questions in the labelled must-not-hit pairs collapse (see the test in eval_tests.rs).
use unicode_normalization::UnicodeNormalization;

/// Folds typographic variants of quotes, apostrophes and dashes to their ASCII form.
pub(crate) fn fold_char(c: char) -> char {
    match c {
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' | '\u{00B4}' => '\'',
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{00AB}' | '\u{00BB}' | '\u{2033}' => '"',
        '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' => '-',
        _ => c,
    }
}

/// NFKC plus the folds above.
pub(crate) fn fold_text(text: &str) -> String {
    text.nfkc().map(fold_char).collect()
}

/// Sentence punctuation removed at the start of a token.
pub(crate) fn is_lead_punct(c: char) -> bool {
    matches!(c, '"' | '\'' | '¿' | '¡')
}

/// Sentence punctuation removed at the end of a token.
pub(crate) fn is_trail_punct(c: char) -> bool {
    matches!(c, '.' | ',' | ';' | ':' | '!' | '?' | '"' | '\'' | '…')
}

/// Strips sentence punctuation at both ends of a token.
pub(crate) fn strip_punct(tok: &str) -> &str {
    tok.trim_start_matches(is_lead_punct).trim_end_matches(is_trail_punct)
}

/// Pronouns and wh-words after which "'s" is "is" (or "has"), never a possessive.
const S_IS: &[&str] = &["what", "who", "where", "when", "how", "why", "it", "that", "there", "here", "he", "she"];

/// Apostrophe-less contractions that are not English words themselves.
const BARE: &[(&str, &str)] = &[
    ("dont", "do not"),
    ("doesnt", "does not"),
    ("didnt", "did not"),
    ("isnt", "is not"),
    ("arent", "are not"),
    ("wasnt", "was not"),
    ("werent", "were not"),
    ("havent", "have not"),
    ("hasnt", "has not"),
    ("hadnt", "had not"),
    ("couldnt", "could not"),
    ("shouldnt", "should not"),
    ("wouldnt", "would not"),
    ("cannot", "can not"),
    ("whats", "what is"),
    ("wheres", "where is"),
    ("whos", "who is"),
    ("thats", "that is"),
    ("theres", "there is"),
    // also words ("wont": habit; "cant": jargon), but as prompts they are the contraction
    ("wont", "will not"),
    ("cant", "can not"),
];

/// Expands an English contraction in a lowercase token; `None` when it is not one.
pub(crate) fn expand_contraction(tok: &str) -> Option<String> {
    match tok {
        "can't" => return Some("can not".into()),
        "won't" => return Some("will not".into()),
        "shan't" => return Some("shall not".into()),
        "let's" => return Some("let us".into()),
        _ => {}
    }
    if let Some(&(_, full)) = BARE.iter().find(|(b, _)| *b == tok) {
        return Some(full.into());
    }
    let (stem, tail) = tok.rsplit_once('\'')?;
    if stem.is_empty() {
        return None;
    }
    let word = match tail {
        "t" if stem != "ain" => return stem.strip_suffix('n').filter(|s| !s.is_empty()).map(|s| format!("{s} not")),
        "re" => "are",
        "ve" => "have",
        "ll" => "will",
        "m" if stem == "i" => "am",
        "s" if S_IS.contains(&stem) => "is",
        _ => return None,
    };
    Some(format!("{stem} {word}"))
}

/// Words that never carry the question: politeness and hesitation, dropped anywhere outside code.
const DROP: &[&str] = &["please", "pls", "plz", "um", "umm", "uh", "uhm", "erm"];
/// A greeting opening the prompt ("Hi," "Hello there!"), dropped when punctuation closes it.
const GREET: &[&str] = &["hi", "hello", "hey", "hiya", "greetings"];
const GREET_TAIL: &[&str] = &["there", "team", "all", "everyone", "folks"];
/// A thank-you closing the prompt after its question ("...? Thanks!"), dropped.
const THANKS: &[&[&str]] = &[
    &["thanks"],
    &["thank", "you"],
    &["thanks", "in", "advance"],
    &["many", "thanks"],
    &["cheers"],
    &["thx"],
    &["ty"],
    &["thank", "you", "in", "advance"],
];

/// Canonical key form of a prompt text (see the module comment for why each rewrite is safe).
pub fn canonical(text: &str) -> String {
    let folded = fold_text(text);
    // (piece, raw token ended with sentence punctuation, verbatim code)
    let mut toks: Vec<(String, bool, bool)> = Vec::new();
    let mut in_code = false;
    for raw in folded.split_whitespace() {
        let ticks = raw.matches('`').count();
        let verbatim = in_code || ticks > 0;
        if ticks % 2 == 1 {
            in_code = !in_code;
        }
        if verbatim {
            toks.push((raw.to_string(), false, true));
            continue;
        }
        let t = strip_punct(raw).to_lowercase();
        let ends = raw.ends_with(is_trail_punct);
        if t.is_empty() {
            if ends {
                if let Some(last) = toks.last_mut() {
                    last.1 = true;
                }
            }
            continue;
        }
        if DROP.contains(&t.as_str()) {
            if ends {
                if let Some(last) = toks.last_mut() {
                    last.1 = true;
                }
            }
            continue;
        }
        match expand_contraction(&t) {
            Some(full) => {
                let words: Vec<&str> = full.split(' ').collect();
                let n = words.len();
                for (i, w) in words.into_iter().enumerate() {
                    toks.push((w.to_string(), ends && i + 1 == n, false));
                }
            }
            None => toks.push((t, ends, false)),
        }
    }
    // Leading greeting closed by punctuation: "hi," / "hello there!".
    let plain = |i: usize| toks.get(i).filter(|t| !t.2).map(|t| t.0.as_str());
    if plain(0).is_some_and(|w| GREET.contains(&w)) && toks.len() > 1 {
        if toks[0].1 {
            toks.remove(0);
        } else if plain(1).is_some_and(|w| GREET_TAIL.contains(&w)) && toks[1].1 && toks.len() > 2 {
            toks.drain(..2);
        }
    }
    // Trailing thank-you after a closed sentence: "...? thanks" / "... . thank you in advance".
    for phrase in THANKS {
        let n = phrase.len();
        if toks.len() > n
            && toks[toks.len() - n - 1].1
            && toks[toks.len() - n..].iter().zip(phrase.iter()).all(|(t, w)| !t.2 && t.0 == *w)
        {
            toks.truncate(toks.len() - n);
            break;
        }
    }
    let mut out = String::with_capacity(folded.len());
    for (piece, _, _) in &toks {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn near_repeats_collapse() {
        let base = canonical("What is the capital of France?");
        for v in [
            "what is the capital of france",
            "  What   is the capital of France ?? ",
            "WHAT IS THE CAPITAL OF FRANCE!",
            "What’s the capital of France?",
            "whats the capital of france",
            "ｗhat is the capital of France?",
        ] {
            assert_eq!(canonical(v), base, "{v}");
        }
        assert_eq!(canonical("I can't log in"), canonical("I cannot log in."));
        assert_eq!(canonical("Don't cancel it"), canonical("do not cancel it"));
        assert_eq!(
            canonical("How do I apply for a residents' parking permit?"),
            canonical("How do I apply for a residents parking permit")
        );
        assert_eq!(canonical("Hi, how do I reset my PIN? Thanks!"), canonical("how do I reset my PIN"));
        assert_eq!(canonical("Hello there! Can I pay by card, please?"), canonical("Can I pay by card"));
        assert_eq!(canonical("um how do i check my data usage"), canonical("How do I check my data usage?"));
        assert_eq!(canonical("Where is my parcel? Thank you in advance."), canonical("Where is my parcel?"));
    }

    #[test]
    fn keeps_tokens_and_differences() {
        assert_eq!(canonical("Is Python 3.8 faster than 3.12?"), "is python 3.8 faster than 3.12");
        assert_eq!(canonical("c++ vs c#, node.js: e-mail at 9:15; 1,000."), "c++ vs c# node.js e-mail at 9:15 1,000");
        assert_ne!(canonical("Convert 100 USD to EUR"), canonical("Convert 100 EUR to USD"));
        assert_ne!(canonical("turn on dark mode"), canonical("turn off dark mode"));
        assert_ne!(canonical("Mary's phone"), canonical("Mary is phone"));
        assert_ne!(canonical("its size"), canonical("it's size"));
        // code keeps its case inside backticks
        assert_ne!(canonical("what does `Foo` do"), canonical("what does `foo` do"));
        assert_eq!(canonical("what does `Foo` do?"), canonical("What does `Foo` do"));
        // greetings and thanks only go when punctuation sets them apart from the question
        assert_ne!(canonical("hi there"), canonical("there"));
        assert_ne!(canonical("How do I say thanks"), canonical("How do I say"));
        assert_ne!(canonical("Hey Jude lyrics"), canonical("Jude lyrics"));
    }
}
