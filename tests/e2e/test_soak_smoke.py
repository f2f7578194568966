"""The short version of `make soak` (bench/soak/soak.py): one 10 s run at 16 connections of the full mix
(exact and semantic hits, misses, streamed misses, bypasses, upstream errors) against the real Envoy +
Redis + .wasm. soak.py itself checks: no error the upstream did not make, intended outcomes answered,
store_ok + store_skipped + store_error = miss. Speed is never asserted."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import harness

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_soak_smoke(tmp_path):
    if not shutil.which("wrk"):
        pytest.skip("wrk missing (make install)")
    cmd = [sys.executable, str(ROOT / "bench" / "soak" / "soak.py"), "--duration", "10", "--connections", "16",
           "--runs", "1", "--out-dir", str(tmp_path), "--wasm", str(harness.wasm_path())]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=280)
    assert p.returncode == 0, f"soak failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["failures"] == []
    (run,) = res["runs"]
    assert all(run["checks"].values()), run["checks"]
    w, c = run["wrk"], run["counters"]
    assert w["requests"] > 100 and w["bad"] == 0
    # every kind of request was sent and every outcome happened
    assert all(n > 0 for n in w["sent"].values()), w["sent"]
    assert w["upstream_errors"] > 0 and c["store_ok"] > 0 and c["store_skipped"] > 0 and c["bypass"] > 0
    assert c["store_ok"] + c["store_skipped"] + c["store_error"] == c["miss"]
    assert "| 1 |" in (tmp_path / "results.md").read_text()
