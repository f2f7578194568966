//! BERT uncased tokenisation (the `BertNormalizer` + `BertPreTokenizer` + `WordPiece` of a Hugging Face
//! `tokenizer.json` such as all-MiniLM-L6-v2's), written out so the static embedder does not pull in the
//! `tokenizers` crate: that crate (with its regex engines) is most of the code V8 has to compile before
//! Envoy's listener opens, while this file is a few kilobytes of code. It follows tokenizers 0.23 rule by rule
//! (same Unicode tables: `unicode_categories`, the crate tokenizers uses) and
//! `tests::ids_match_python_tokenizers` checks the ids against the Python package on a fixture.
//!
//! Steps, as in tokenizers:
//! 1. clean: drop U+0000, U+FFFD and "other" characters (Cc, Cf, Cn, Co, Cs) except \t \n \r; every
//!    whitespace character becomes a space;
//! 2. CJK ideographs get a space on both sides (each is its own word);
//! 3. NFD, then drop non-spacing marks (Mn): strips accents;
//! 4. lowercase (Rust `char::to_lowercase`);
//! 5. split on whitespace; every punctuation character (ASCII punctuation or Unicode P*) is its own word;
//! 6. WordPiece per word: greedy longest match from the left, pieces after the first prefixed with `##`; a word
//!    with a part no vocabulary entry matches, or longer than 100 characters, is one `[UNK]`.
//!
//! Not done: tokenizers also matches its "added tokens" (`[CLS]`, `[MASK]`, ...) literally in the raw text; here
//! such text is tokenised as ordinary words (`[`, `cl`, `##s`, `]`), which is what a cache key should see.

use std::collections::HashMap;
use std::fmt;

use unicode_categories::UnicodeCategories;
use unicode_normalization::UnicodeNormalization;

/// WordPiece's limit: longer words become one `[UNK]`.
pub const MAX_CHARS_PER_WORD: usize = 100;
const CONTINUATION: &str = "##";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenizerError {
    /// The vocabulary has no `[UNK]` entry (or is empty).
    NoUnknownToken,
    /// The vocabulary has more entries than token ids can address.
    TooLarge(usize),
}

impl fmt::Display for TokenizerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoUnknownToken => write!(f, "vocabulary has no [UNK] token"),
            Self::TooLarge(n) => write!(f, "vocabulary has {n} entries, too many"),
        }
    }
}

impl std::error::Error for TokenizerError {}

/// A BERT uncased WordPiece tokenizer over a `vocab.txt` (one token per line; line i is id i).
pub struct BertTokenizer<'a> {
    vocab: HashMap<&'a str, u32>,
    unk: u32,
}

impl fmt::Debug for BertTokenizer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BertTokenizer").field("vocab", &self.vocab.len()).field("unk", &self.unk).finish()
    }
}

impl<'a> BertTokenizer<'a> {
    pub fn from_vocab_txt(vocab_txt: &'a str) -> Result<Self, TokenizerError> {
        let lines: Vec<&str> = vocab_txt.lines().collect();
        let n = u32::try_from(lines.len()).map_err(|_| TokenizerError::TooLarge(lines.len()))?;
        let mut vocab = HashMap::with_capacity(lines.len());
        for (id, tok) in (0..n).zip(lines) {
            // the first occurrence wins, as in a vocab.txt read by tokenizers (duplicates do not occur in BERT's)
            vocab.entry(tok).or_insert(id);
        }
        let unk = *vocab.get("[UNK]").ok_or(TokenizerError::NoUnknownToken)?;
        Ok(Self { vocab, unk })
    }

    /// Number of vocabulary entries (the largest id plus one).
    pub fn vocab_size(&self) -> usize {
        self.vocab.values().map(|&i| i as usize + 1).max().unwrap_or(0)
    }

    /// The WordPiece ids of `text` without special tokens, at most `max_tokens` of them (the rest is not
    /// tokenised at all).
    pub fn token_ids(&self, text: &str, max_tokens: usize) -> Vec<u32> {
        let mut ids = Vec::new();
        let mut word = String::new();
        let mut buf = String::new();
        for c in normalized_chars(text) {
            if ids.len() >= max_tokens {
                break;
            }
            if c.is_whitespace() {
                self.push_word(&mut word, &mut buf, &mut ids);
            } else if is_punctuation(c) {
                self.push_word(&mut word, &mut buf, &mut ids);
                word.push(c);
                self.push_word(&mut word, &mut buf, &mut ids);
            } else {
                word.push(c);
            }
        }
        self.push_word(&mut word, &mut buf, &mut ids);
        ids.truncate(max_tokens);
        ids
    }

    /// WordPiece of one word (then clears it). `buf` is scratch space for `##` candidates.
    fn push_word(&self, word: &mut String, buf: &mut String, ids: &mut Vec<u32>) {
        if word.is_empty() {
            return;
        }
        let before = ids.len();
        if word.chars().count() > MAX_CHARS_PER_WORD || !self.wordpiece(word, buf, ids) {
            ids.truncate(before);
            ids.push(self.unk);
        }
        word.clear();
    }

    /// Greedy longest-match-first; false if some part of the word matches nothing.
    fn wordpiece(&self, word: &str, buf: &mut String, ids: &mut Vec<u32>) -> bool {
        let mut start = 0;
        while start < word.len() {
            let mut end = word.len();
            let mut found = None;
            while start < end {
                let piece = &word[start..end];
                let id = if start == 0 {
                    self.vocab.get(piece)
                } else {
                    buf.clear();
                    buf.push_str(CONTINUATION);
                    buf.push_str(piece);
                    self.vocab.get(buf.as_str())
                };
                if let Some(&id) = id {
                    found = Some(id);
                    break;
                }
                // shorten by one character (end stays on a char boundary)
                end -= piece.chars().next_back().map_or(1, char::len_utf8);
            }
            match found {
                Some(id) => ids.push(id),
                None => return false,
            }
            start = end;
        }
        true
    }
}

/// Steps 1-4 of the module doc as a char stream (lazy: the caller stops reading once it has enough tokens).
fn normalized_chars(text: &str) -> impl Iterator<Item = char> + '_ {
    text.chars()
        .filter(|&c| !(c == '\0' || c == '\u{fffd}' || is_control(c)))
        .flat_map(|c| {
            let c = if is_bert_whitespace(c) { ' ' } else { c };
            let cjk = is_chinese_char(c);
            [cjk.then_some(' '), Some(c), cjk.then_some(' ')].into_iter().flatten()
        })
        .nfd()
        .filter(|c| !c.is_mark_nonspacing())
        .flat_map(char::to_lowercase)
}

fn is_bert_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

fn is_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r') && c.is_other()
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || c.is_punctuation()
}

fn is_chinese_char(c: char) -> bool {
    matches!(
        c as u32,
        0x4E00..=0x9FFF
            | 0x3400..=0x4DBF
            | 0x20000..=0x2A6DF
            | 0x2A700..=0x2B73F
            | 0x2B740..=0x2B81F
            | 0x2B920..=0x2CEAF
            | 0xF900..=0xFAFF
            | 0x2F800..=0x2FA1F
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BERT uncased vocab.txt (the one all-MiniLM-L6-v2 ships; Apache-2.0), and ids from the Python
    /// `tokenizers` package for the same texts (scripts/models/wordpiece_fixture.py writes both).
    const VOCAB: &str = include_str!("../testdata/bert_uncased_vocab.txt");
    const FIXTURE: &str = include_str!("../testdata/wordpiece_ids.json");

    fn tok() -> BertTokenizer<'static> {
        BertTokenizer::from_vocab_txt(VOCAB).unwrap()
    }

    #[test]
    fn ids_match_python_tokenizers() {
        let t = tok();
        let cases: Vec<serde_json::Value> = serde_json::from_str(FIXTURE).unwrap();
        assert!(cases.len() >= 200, "fixture too small: {}", cases.len());
        let mut bad = Vec::new();
        for case in &cases {
            let text = case["text"].as_str().unwrap();
            let want: Vec<u32> = case["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
            let got = t.token_ids(text, usize::MAX);
            if got != want {
                bad.push(format!("{text:?}\n  want {want:?}\n  got  {got:?}"));
            }
        }
        assert!(bad.is_empty(), "{} of {} differ:\n{}", bad.len(), cases.len(), bad.join("\n"));
    }

    #[test]
    fn basic_rules() {
        let t = tok();
        let words = |s: &str| -> Vec<u32> { t.token_ids(s, usize::MAX) };
        // lowercase + accents stripped: "Café" == "cafe"
        assert_eq!(words("Café"), words("cafe"));
        // punctuation is split off
        assert_eq!(words("hello,world"), words("hello , world"));
        // CJK ideographs are words of their own
        assert_eq!(words("天気"), words("天 気"));
        // control characters vanish, odd whitespace is whitespace
        assert_eq!(words("a\u{0007}b\u{00a0}c"), words("ab c"));
        // an unmatchable or over-long word is one [UNK]
        assert_eq!(words("\u{1F600}"), vec![t.unk]);
        assert_eq!(words(&"a".repeat(101)), vec![t.unk]);
        assert!(words("").is_empty());
    }

    #[test]
    fn cap_is_respected_and_stops_early() {
        let t = tok();
        let long = "antidisestablishmentarianism ".repeat(10_000);
        let ids = t.token_ids(&long, 16);
        assert_eq!(ids.len(), 16);
        assert_eq!(ids, t.token_ids(&long, usize::MAX)[..16].to_vec());
    }

    #[test]
    fn vocab_without_unk_is_an_error() {
        assert_eq!(BertTokenizer::from_vocab_txt("a\nb\n").unwrap_err(), TokenizerError::NoUnknownToken);
    }
}
