"""`make demo` (scripts/demo.py) runs end to end and shows what it claims.

The demo starts its own Redis, Envoy (default build, envoy/policies/local.json) and LLM stand-in, so this
runs it as a subprocess (with a short stand-in latency) and checks the rows it wrote with --json, the table
it printed and that it stopped everything it started.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

import harness
from harness import ROOT

DEMO = ROOT / "scripts" / "demo.py"


def _children_alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            os.kill(pid, 0)
            alive.add(pid)
        except ProcessLookupError:
            pass
    return alive


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    if not harness.wasm_path().exists():
        pytest.fail(f"{harness.wasm_path()} missing: run `make build`", pytrace=False)
    out = tmp_path_factory.mktemp("demo") / "rows.json"
    env = dict(os.environ, DEMO_LLM_LATENCY_MS="40-80")
    p = subprocess.run([sys.executable, str(DEMO), "--json", str(out)], env=env, capture_output=True, text=True,
                       timeout=110)
    assert p.returncode == 0, f"demo failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p.stdout, json.loads(out.read_text())


@pytest.mark.timeout(150)
def test_demo_rows_show_each_behaviour(demo):
    _, data = demo
    first = data["rows"]
    assert all(r["http"] == 200 for r in first), first
    by_n = {r["n"]: r for r in first}
    # 1 first time, 2 repeat, 3 near-repeat, 4 paraphrase, 5 trap, 6 first, 7/8 traps, 9 streamed first,
    # 10 paraphrase of the streamed one, 11 streamed repeat, 12 other tenant, 13 its near-repeat
    expect = {1: ("MISS", "-"), 2: ("HIT", "exact"), 3: ("HIT", "exact"), 4: ("HIT", "semantic"),
              5: ("MISS", "-"), 6: ("MISS", "-"), 7: ("MISS", "-"), 8: ("MISS", "-"), 9: ("MISS", "-"),
              10: ("HIT", "semantic"), 11: ("HIT", "exact"), 12: ("MISS", "-"), 13: ("HIT", "exact")}
    got = {n: (r["status"], r["tier"]) for n, r in by_n.items()}
    assert got == expect, json.dumps(first, indent=1)
    # the look-alike traps were within the threshold and refused by the verifier, not just far away
    for n in (7, 8):
        assert by_n[n]["refused"] != "-", by_n[n]
    assert by_n[7]["refused"] == "order" and by_n[8]["refused"] == "number", (by_n[7], by_n[8])
    assert by_n[1]["prompt"] == by_n[12]["prompt"] and by_n[1]["tenant"] != by_n[12]["tenant"]
    assert by_n[9]["stream"] and by_n[11]["stream"]
    for n in (4, 10):
        assert 0 < float(by_n[n]["distance"]) <= 0.3, by_n[n]
    # a hit carries the usage of the call it replaces
    assert by_n[2]["prompt_tokens"] == by_n[1]["prompt_tokens"] > 0
    assert by_n[11]["completion_tokens"] == by_n[9]["completion_tokens"] > 0


@pytest.mark.timeout(150)
def test_demo_totals_match_its_rows(demo):
    stdout, data = demo
    t, rows = data["totals"], data["rows"]
    hits = [r for r in rows if r["status"] == "HIT"]
    assert t["requests"] == len(rows)
    assert t["hit_exact"] + t["hit_semantic"] == len(hits)
    assert t["miss"] == sum(r["status"] == "MISS" for r in rows)
    assert t["hit_rate"] == pytest.approx(len(hits) / len(rows))
    assert t["refused"].get("order", 0) >= 1 and t["refused"].get("number", 0) >= 1
    if t["source"] == "envoy /stats":
        assert t["tokens_saved_prompt"] == sum(r["prompt_tokens"] for r in hits)
        assert t["tokens_saved_completion"] == sum(r["completion_tokens"] for r in hits)
    else:
        assert t["source"].startswith("computed by the demo")
        assert t["tokens_saved_prompt"] == sum(r["prompt_tokens"] for r in hits) > 0
        assert t["tokens_saved_completion"] == sum(r["completion_tokens"] for r in hits) > 0
    # every hit saved at least the stand-in's minimum latency (40 ms)
    assert t["time_saved_ms"] >= 40 * len(hits)
    # the printed table: a header, one line per row, then the totals
    assert re.search(r"^#\s+tenant\s+prompt\s+status\s+tier\s+distance\s+refusal\s+ms", stdout, re.M), stdout
    for r in rows:
        assert re.search(rf"^{r['n']}\s+{r['tenant']}\s+.*\s{r['status']}\s", stdout, re.M), (r, stdout)
    assert re.search(r"hit rate \d+%", stdout) and "tokens saved:" in stdout and "LLM time saved:" in stdout
    assert f"(totals source: {t['source']})" in stdout


@pytest.mark.timeout(150)
def test_demo_stops_what_it_started_on_sigint(tmp_path):
    """Interrupted while the prompts run, the demo still stops Envoy and Redis."""
    env = dict(os.environ, DEMO_LLM_LATENCY_MS="2000")  # slow enough to interrupt mid-script
    p = subprocess.Popen([sys.executable, str(DEMO)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        line = ""
        while "stack up" not in line:
            line = p.stdout.readline()
            assert line or p.poll() is None, p.stderr.read()
        ports = [int(x) for x in re.findall(r":(\d+)", line)]
        kids = {int(x) for x in subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True,
                                                text=True).stdout.split()}
        assert len(kids) >= 2, f"expected redis-server and envoy children, got {kids}"
        p.send_signal(2)  # SIGINT, as Ctrl-C
        assert p.wait(60) == 130
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert not _children_alive(kids), "demo left processes behind"
    for port in ports:
        with pytest.raises(OSError):
            harness.wait_tcp(port, timeout=0.2)
