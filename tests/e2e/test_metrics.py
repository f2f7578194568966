"""Metrics end to end (issue 11, item 1): a scripted sequence on a fresh Envoy, then every counter
read back from the admin's `/stats` and `/stats/prometheus` with its exact value, and the sample
counts of the three histograms. Real Envoy + real .wasm + real Redis; stand-in LLM (usage 7 prompt
+ 5 completion tokens per answer) with 300 ms of latency, stand-in embedder.

Sequence: a miss, its exact repeat, a paraphrase (semantic hit), a skip-header bypass, a GET
(method bypass), a swapped-order trap (the verifier refuses the candidate: a miss, stored), and a
streamed exact repeat of the first prompt.
"""
from __future__ import annotations

import re
import time
from functools import partial

import pytest
import requests

import harness
from harness import Site, assert_status, policy_for, wait_stored
from standins import cosine_distance

CLIENT_AUTH = "Bearer sk-client-metrics"
ask = partial(harness.ask, auth=CLIENT_AUTH)

LOOSE = 0.5
QUERY = "Convert 100 USD to EUR"
TRAP = "Convert 100 EUR to USD"
PARAPHRASE = "Please convert 100 USD into EUR"
LLM_DELAY = 0.3
USAGE = (7, 5)  # the LLM stand-in's usage.prompt_tokens / completion_tokens


@pytest.fixture(scope="module")
def envoy(envoy_launcher, embed_openai, redis_server):
    redis_server.delete_all_keys()
    # parallel false: no embedding is sent beside an exact lookup, so embed_us counts are exact.
    return envoy_launcher([Site("metrics", policy_for("metrics", embed_openai, threshold=LOOSE, parallel=False))])


def prometheus(envoy) -> dict[str, float]:
    out = {}
    for line in envoy.admin_get("/stats/prometheus").splitlines():
        m = re.fullmatch(r"([a-z_]+)(\{[^}]*\})? (\S+)", line)
        if m and m.group(1).startswith("semantic_cache_"):
            out[m.group(1) + (m.group(2) or "").replace("{}", "")] = float(m.group(3))
    return out


def wait_histograms(envoy, expected: dict[str, int], timeout: float = 20.0) -> dict[str, float]:
    """Histograms reach the admin at Envoy's stats flush (every 5 s): wait for the expected counts."""
    deadline = time.monotonic() + timeout
    while True:
        p = prometheus(envoy)
        got = {k: p.get(f"{k}_count") for k in expected}
        if got == expected:
            return p
        if time.monotonic() > deadline:
            raise AssertionError(f"histogram counts {got}, expected {expected}")
        time.sleep(0.2)


def test_geometry():
    assert cosine_distance(QUERY, TRAP) == pytest.approx(0.0, abs=1e-9)
    assert 0.05 < cosine_distance(QUERY, PARAPHRASE) < LOOSE


def test_scripted_sequence_gives_exact_metrics(envoy, llm, redis_server):
    llm.delay = LLM_DELAY
    assert_status(ask(envoy, "metrics", QUERY), "MISS")
    (key,) = wait_stored(redis_server, "metrics", 1)
    assert_status(ask(envoy, "metrics", QUERY), "HIT", match="exact")
    assert_status(ask(envoy, "metrics", PARAPHRASE), "HIT", match="semantic")
    assert_status(ask(envoy, "metrics", QUERY, headers={"x-semantic-cache-skip": "1"}), "BYPASS", "skip-header")
    r = requests.get(envoy.url("metrics"), headers={"authorization": CLIENT_AUTH}, timeout=10)
    assert_status(r, "BYPASS", "method", code=None)
    r = ask(envoy, "metrics", TRAP)
    assert_status(r, "MISS")
    assert r.headers.get("x-cache-refused") == "order"
    wait_stored(redis_server, "metrics", 2)
    r = ask(envoy, "metrics", QUERY, stream=True)
    assert_status(r, "HIT", match="exact")
    assert r.headers["content-type"].startswith("text/event-stream") and "[DONE]" in r.text
    harness.settle_stores(envoy)

    origin_ms = int(redis_server.command("HGET", key, "origin_ms"))
    assert origin_ms >= LLM_DELAY * 1000, origin_ms
    assert redis_server.command("HMGET", key, "tok_prompt", "tok_completion") == [b"7", b"5"]
    hits = 3  # every hit served the first prompt's entry
    expected = {
        "requests": 7, "hit_exact": 2, "hit_semantic": 1, "miss": 2, "bypass": 2,
        "bypass.skip-header": 1, "bypass.method": 1, "refused.order": 1,
        "store_ok": 2, "store_error": 0, "store_skipped": 0, "embedding_error": 0, "redis_error": 0,
        "policy_error": 0, "tokens_saved_prompt": hits * USAGE[0], "tokens_saved_completion": hits * USAGE[1],
        "time_saved_ms": hits * origin_ms, "purge": 0, "purge_denied": 0, "purged_entries": 0,
    }
    stats = envoy.stats()
    names = {k for k in stats if k.startswith("wasmcustom.semantic_cache.")}
    for name, value in expected.items():
        assert stats.get(f"wasmcustom.semantic_cache.{name}") == value, (name, stats)
    # every other counter (the other bypass reasons and refusals) is defined and zero
    for name in names - {f"wasmcustom.semantic_cache.{n}" for n in expected}:
        assert stats[name] == 0, name
    assert sum(v for k, v in stats.items() if ".bypass." in k) == expected["bypass"]
    assert len([n for n in names if ".bypass." in n]) == 14

    # /stats/prometheus: no `wasmcustom` prefix, `.` and `-` become `_`; histograms with buckets.
    p = wait_histograms(envoy, {"semantic_cache_origin_us": 2, "semantic_cache_lookup_us": 5,
                                "semantic_cache_embed_us": 3})
    assert p["semantic_cache_bypass_skip_header"] == 1
    assert p["semantic_cache_time_saved_ms"] == hits * origin_ms
    assert p["semantic_cache_tokens_saved_prompt"] == hits * USAGE[0]
    # both misses waited at least the LLM's delay upstream (microseconds)
    assert p["semantic_cache_origin_us_sum"] >= 2 * LLM_DELAY * 1e6
    assert p['semantic_cache_origin_us_bucket{le="+Inf"}'] == 2
