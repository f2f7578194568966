"""Smoke run of `make eval` (bench/quality/eval_cache.py) on a handful of pairs per category of every set, with
both in-filter embedders (the static table and MiniLM): it runs build/calibrate, writes the tables, the JSON and the
PNG, and its counts add up."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "quality" / "eval_cache.py"


def test_eval_smoke(tmp_path):
    cal = ROOT / "build" / "calibrate"
    if not (cal.is_file() and os.access(cal, os.X_OK)):
        pytest.skip("build/calibrate missing (run make build-local)")
    pytest.importorskip("fow_cache")
    pytest.importorskip("matplotlib")
    p = subprocess.run([sys.executable, str(SCRIPT), "--calibrate", str(cal), "--limit", "3", "--out-dir",
                        str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    md = (tmp_path / "eval_results.md").read_text()
    assert md.strip() == p.stdout.strip()
    for title in ("fow-cache pairs", "fow-cache conversations", "fow-cache conversations, contextWindow 0",
                  "own pairs"):
        assert md.count(f"### {title}:") == 2, title  # once per embedder
    res = json.loads((tmp_path / "eval_results.json").read_text())
    assert set(res["embedders"]) == {"local", "minilm"}
    own = res["embedders"]["local"]["sets"]["own pairs"]
    assert own["pairs"] == 3 * 8 and own["positives"] == 6  # 3 per category: 2 should-hit, 6 trap categories
    for cfg in ("a", "b", "c", "d", "e"):
        c = own["configs"][cfg]
        for key in ("default", "fh1", "fh2"):
            pt = c[key]
            assert pt["positives"] == 6 and pt["traps"] == 18
            assert 0 <= pt["hits"] <= 6 and 0 <= pt["false_hits"] <= 18
        for key, target in (("fh1", 0.01), ("fh2", 0.02)):
            # within the target, or unreachable: traps already at distance 0 (the static table cannot see
            # word order) and then the threshold stays 0
            pt = c[key]
            assert pt["fh_rate"] <= target or (pt["threshold"] == 0.0 and pt["hits"] == c["fh1"]["hits"]), (cfg, key)
        assert c["fh2"]["hits"] >= c["fh1"]["hits"]
    # the exact tier and the verifier only ever add hits / remove false hits at a given threshold
    d = own["configs"]
    assert d["b"]["default"]["hits"] >= d["a"]["default"]["hits"]
    assert d["c"]["default"]["false_hits"] <= d["a"]["default"]["false_hits"]
    png = tmp_path / "eval_curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
