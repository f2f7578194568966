"""The calibration command (src/bin/calibrate.rs, built as build/calibrate by `make build-local`) on a small
labelled file (tests/data/calibrate_small.jsonl): the printed policy snippet parses, its false-hit rate on the
file is within the target, `dump` reports what the filter would see, and the provider path uses the filter's
wire format against the embedding stand-in.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from standins import cosine_distance

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "tests" / "data" / "calibrate_small.jsonl"
sys.path.insert(0, str(ROOT / "bench" / "quality"))


def calibrate_bin() -> Path:
    for p in (ROOT / "build" / "calibrate", ROOT / "target" / "local" / "release" / "calibrate"):
        if p.is_file() and os.access(p, os.X_OK):
            return p
    pytest.skip("build/calibrate missing (run make build-local)")


def run(*args, check=True, env=None) -> subprocess.CompletedProcess:
    p = subprocess.run([str(calibrate_bin()), *map(str, args)], capture_output=True, text=True, timeout=300,
                       env=env)
    if check and p.returncode != 0:
        pytest.fail(f"calibrate {' '.join(map(str, args))} exited {p.returncode}: {p.stderr[-2000:]}")
    return p


def dump_rows(*args) -> list[dict]:
    out = run("dump", "--pairs", SMALL, *args).stdout
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def served(r, verify: str, t: float) -> bool:
    """As the filter with the canonical exact tier and policy `verify` (strict | balanced | off)."""
    if r["distance"] is None or not r["context_equal"] or r["bypass"] is not None:
        return False
    if r["exact_equal"] or r["canonical_equal"]:
        return True
    refusal = {"off": None, "strict": r["verifier"], "balanced": r["verifier_balanced"]}[verify]
    return r["distance"] <= t and refusal is None


@pytest.mark.parametrize("target", [0.0, 0.2])
def test_snippet_parses_and_meets_the_target(target):
    out = run("--pairs", SMALL, "--target-fh", target).stdout
    lines = out.splitlines()
    i = lines.index("policy rule snippet:")
    snippet = json.loads(lines[i + 1])
    rule = snippet["rules"][0]
    assert rule["name"] == "calibrated" and rule["match"] == {"pathPrefix": "/"}
    assert isinstance(rule["threshold"], float) and 0.0 <= rule["threshold"] <= 2.0
    assert rule["verify"] in ("strict", "balanced", "off")
    chosen = next(l for l in lines if l.startswith("chosen:"))
    fh = float(chosen.split("false-hit rate ")[1].split("%")[0]) / 100
    assert fh <= target + 1e-9, chosen
    # The snippet's threshold, re-counted from the per-pair dump, keeps the false-hit rate within the target.
    rows = dump_rows()
    traps = [r for r in rows if not r["same_answer"]]
    fh_dump = sum(served(r, rule["verify"], rule["threshold"]) for r in traps) / len(traps)
    assert fh_dump <= target + 1e-9


def test_json_output_agrees_with_the_python_counting():
    import eval_cache  # bench/quality/eval_cache.py: the same counting rules, used by `make eval`
    res = json.loads(run("--pairs", SMALL, "--target-fh", 0.1, "--json").stdout)
    rows = dump_rows()
    assert res["pairs"] == len(rows) == 17
    assert res["positives"] == sum(r["same_answer"] for r in rows)
    by_label = {c["config"]: c for c in res["configs"]}
    for key, (label, _, _) in eval_cache.CONFIGS.items():
        py = eval_cache.best(rows, key, 0.1)
        rs = by_label[label]
        assert (rs["hits"], rs["false_hits"]) == (py["hits"], py["false_hits"]), label
        assert rs["fh_rate"] <= 0.1 + 1e-9
        # the printed (rounded) threshold serves exactly what the exact one does
        again = eval_cache.rates(rows, key, rs["threshold"])
        assert (again["hits"], again["false_hits"]) == (py["hits"], py["false_hits"]), label


def test_dump_reports_what_the_filter_sees():
    rows = {r["id"]: r for r in dump_rows()}
    assert set(rows["s01"]) >= {"id", "category", "same_answer", "distance", "canonical_equal", "verifier",
                                "context_equal", "exact_equal", "bypass"}
    # identical after the filter's normalisation (NFKC, whitespace): distance 0, exact-tier equal
    assert rows["s02"]["distance"] < 1e-6 and rows["s02"]["exact_equal"]
    assert rows["s03"]["exact_equal"] and rows["s03"]["distance"] < 1e-6
    # a case/punctuation variant is not byte-equal but is canonically equal
    assert not rows["s01"]["exact_equal"] and rows["s01"]["canonical_equal"]
    assert not rows["s09"]["canonical_equal"] and not rows["s10"]["canonical_equal"]
    # both field styles and yes/no labels
    assert rows["s07"]["same_answer"] is True and rows["s12"]["same_answer"] is False
    # whole conversations: the same last message in another context is another partition
    assert rows["s17"]["distance"] < 1e-6 and rows["s17"]["context_equal"] is False
    assert all(r[k] is None or isinstance(r[k], str) for r in rows.values() for k in ("verifier", "verifier_balanced"))
    # the verifier refuses the minimal-edit traps of the file (the filter's own verifier, not a stub)
    for trap in ("s08", "s09", "s10", "s11", "s12", "s14"):
        assert rows[trap]["verifier"] is not None, trap
    # with contextWindow 0 the history is ignored and the pair shares a partition (the risk that option takes)
    rows0 = {r["id"]: r for r in dump_rows("--context-window", "0")}
    assert rows0["s17"]["context_equal"] is True


def test_route_filter_names_the_rule():
    out = run("--pairs", SMALL, "--target-fh", 0.0, "--route", "faq").stdout
    assert "2 pairs (1 should-hit, 1 must-not-hit)" in out
    snippet = json.loads(out.splitlines()[out.splitlines().index("policy rule snippet:") + 1])
    assert snippet["rules"][0]["name"] == "faq" and snippet["rules"][0]["match"] == {"routeName": "faq"}


def test_bad_input_is_an_error(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": "x", "b": "y"}\n')
    p = run("--pairs", bad, "--target-fh", 0.01, check=False)
    assert p.returncode == 1 and "same_answer" in p.stderr and "bad.jsonl:1" in p.stderr
    p = run("--pairs", SMALL, check=False)
    assert p.returncode == 2 and "--target-fh" in p.stderr
    p = run("--pairs", SMALL, "--target-fh", "5", check=False)
    assert p.returncode == 2
    p = run("--pairs", tmp_path / "missing.jsonl", "--target-fh", 0.01, check=False)
    assert p.returncode == 1


def test_provider_endpoint_uses_the_filter_wire_format(embed_openai):
    env = {**os.environ, "CAL_TEST_KEY": embed_openai.api_key}
    out = run("dump", "--pairs", SMALL, "--provider", "openai", "--url", embed_openai.url(), "--model", "m",
              "--api-key-env", "CAL_TEST_KEY", env=env).stdout
    rows = [json.loads(l) for l in out.splitlines()]
    pairs = [json.loads(l) for l in SMALL.read_text().splitlines()]
    assert embed_openai.calls > 0
    for r, p in zip(rows, pairs):
        a, b = p.get("a", p.get("prompt_a")), p.get("b", p.get("prompt_b"))
        if isinstance(a, list):
            a, b = a[-1]["content"], b[-1]["content"]
        want = cosine_distance(" ".join(a.split()), " ".join(b.split()))
        assert math.isclose(r["distance"], max(want, 0.0), abs_tol=1e-5), (r["id"], r["distance"], want)
    # a wrong key is a clear error, not a silent zero
    env["CAL_TEST_KEY"] = "wrong"
    p = run("dump", "--pairs", SMALL, "--provider", "openai", "--url", embed_openai.url(), "--model", "m",
            "--api-key-env", "CAL_TEST_KEY", check=False, env=env)
    assert p.returncode == 1 and "401" in p.stderr
