#!/usr/bin/env python3
"""Static embedding tables (scripts/models/distill_static.py) against MiniLM on fow-cache pairs.

Reads MiniLM's per-pair distances from results.json (eval.py, cap 128) and embeds the pairs with each static
table via the numpy reimplementation of the filter (distill_static.StaticNumpy). Prints, per model: AUC, hit at
false-hit <= 1/5/10/20/30 % (all should-hit pairs and paraphrases only), and at two loose thresholds - each
model's own 50th / 80th percentile of its should-hit distances - the paraphrases, traps and unrelated prompt
pairs (side a of one pair against side b of a random other) served; and the paraphrase distance quantiles relative
to the median distance of unrelated pairs (scale-free: lower is better). Writes static_results.json.

With --rust, also checks that the filter's Rust code (target/release/static_embed --dump, the table compiled in,
i.e. .local/models/static-default) gives the same token ids and vectors as the numpy reimplementation on every
fow-cache text.

Usage: static_compare.py [--rust] [DIR ...]   (default: every .local/models/static-*/)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "scripts" / "models"))
from eval import auc, load_pairs, normalize_text, rates, thr_at_fh  # noqa: E402
from distill_static import StaticNumpy  # noqa: E402

FH = (0.01, 0.05, 0.10, 0.20, 0.30)


def summary(name, rows, d, unrelated):
    lab = np.array([r["label"] for r in rows])
    cat = np.array([r["category"] for r in rows])
    pos, trap = d[lab], d[~lab]
    out = {"model": name, "auc": auc(pos, trap)}
    for fh in FH:
        t = thr_at_fh(trap, fh)
        h, f = rates(pos, trap, t)
        out[f"hit@fh{int(fh*100)}"] = h
        out[f"para@fh{int(fh*100)}"] = float((d[lab & (cat == "paraphrase")] <= t).mean())
    # loose threshold: the 80th percentile of the model's own should-hit distances
    for q in (0.5, 0.8):
        t = float(np.quantile(pos, q))
        out[f"p{int(q*100)}_thr"] = t
        out[f"p{int(q*100)}_para_hit"] = float((d[lab & (cat == "paraphrase")] <= t).mean())
        out[f"p{int(q*100)}_trap_hit"] = float((trap <= t).mean())
        out[f"p{int(q*100)}_unrelated_hit"] = float((unrelated <= t).mean()) if unrelated is not None else None
    para = d[lab & (cat == "paraphrase")]
    if unrelated is not None:
        # paraphrase distance as a fraction of the median distance between unrelated prompts: scale-free
        med = float(np.median(unrelated))
        out["para_q50_rel"] = float(np.median(para)) / med
        out["para_q80_rel"] = float(np.quantile(para, 0.8)) / med
        out["unrelated_median"] = med
    return out


def rust_check(rows) -> None:
    import subprocess
    subprocess.run(["cargo", "build", "--release", "--bin", "static_embed"], cwd=ROOT, check=True,
                   capture_output=True)
    texts = sorted({normalize_text(r[k]) for r in rows for k in ("a", "b")})
    r = subprocess.run([str(ROOT / "target" / "release" / "static_embed"), "--dump"], cwd=ROOT, check=True,
                       input="\n".join(json.dumps(t) for t in texts) + "\n", capture_output=True, text=True)
    out = [json.loads(x) for x in r.stdout.splitlines()]
    sn = StaticNumpy((ROOT / ".local" / "models" / "static-default").resolve())
    bad_ids, worst = 0, 0.0
    for t, o in zip(texts, out, strict=True):
        bad_ids += o["ids"] != sn.ids(t, 128)
        v = sn.embed(t)
        if o["vector"] is not None:
            worst = max(worst, float(np.abs(np.array(o["vector"], np.float32) - v).max()))
    print(f"rust vs numpy on {len(texts)} fow-cache texts: token ids differ for {bad_ids}, "
          f"max |vector diff| {worst:.2e}")


def main():
    rows, _ = load_pairs()
    if "--rust" in sys.argv:
        sys.argv.remove("--rust")
        rust_check(rows)
    res = json.loads((HERE / "results.json").read_text())
    ref = res["models"]["all-MiniLM-L6-v2-q8"]["caps"]["128"]["distances"]
    dirs = [Path(p) for p in sys.argv[1:]] or sorted(d for d in (ROOT / ".local" / "models").glob("static-*")
                                                     if not d.is_symlink())
    rng = np.random.default_rng(1)
    # unrelated pairs: side a of one pair vs side b of a random other pair
    perm = rng.permutation(len(rows))
    unrel_pairs = [(rows[i]["a"], rows[j]["b"]) for i, j in zip(range(len(rows)), perm) if i != j]
    table = []
    mini_unrel = None
    try:
        from eval import OnnxEmbedder
        e = OnnxEmbedder(ROOT / ".local" / "models" / "all-MiniLM-L6-v2-q8")
        V = lambda t: e.embed_ids(e.ids(normalize_text(t), 128))  # noqa: E731
        mini_unrel = np.array([1 - float(V(a) @ V(b)) for a, b in unrel_pairs])
    except Exception as ex:  # noqa: BLE001
        print(f"minilm unrelated skipped: {ex}", file=sys.stderr)
    table.append(summary("all-MiniLM-L6-v2-q8", rows, np.array([ref[r["id"]] for r in rows]), mini_unrel))
    for d in dirs:
        if not (d / "model.bin").exists():
            continue
        sn = StaticNumpy(d)
        E = {}
        for t in {r[k] for r in rows for k in ("a", "b")} | {x for p in unrel_pairs for x in p}:
            E[t] = sn.embed(normalize_text(t))
        dist = np.array([1 - float(E[r["a"]] @ E[r["b"]]) for r in rows])
        unrel = np.array([1 - float(E[a] @ E[b]) for a, b in unrel_pairs])
        table.append(summary(d.name, rows, dist, unrel))
    keys = list(table[0].keys())
    print("| " + " | ".join(keys) + " |")
    for t in table:
        print("| " + " | ".join(f"{t[k]:.3f}" if isinstance(t[k], float) else str(t[k]) for k in keys) + " |")
    (HERE / "static_results.json").write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()
