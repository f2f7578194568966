"""Latency of the cache through the real Envoy, side by side with the same Envoy without the filter.

One run starts Redis (+RediSearch), an LLM stand-in that answers after LLM_DELAY_MS (default 0: the
figures are then pure proxy + cache overhead), an OpenAI-compatible embedding stand-in, and
Envoy with listeners:
  baseline   no filter: client -> Envoy -> LLM
  remote     the filter with the embedding stand-in (callout) and Redis
  local      the filter with the in-filter model (separate Envoy, build/semantic_cache_local.wasm)
For each it measures sequential requests: MISS (new prompt: exact lookup + embed + KNN + upstream + store),
exact HIT (same prompt again) and semantic HIT (a reworded prompt). It prints p50/p95 in ms and the ratio to
the baseline request measured in the same run. Numbers from a shared machine: compare ratios, not absolutes.

    .local/venv/bin/python bench/cache/bench.py [--n 200]
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from harness import EnvoyProcess, RedisServer, Site, chat_body, policy_for, static_cluster, wasm_path  # noqa: E402
from standins import EmbeddingStandIn, LlmStandIn  # noqa: E402

LOCAL_WASM = ROOT / "build" / "semantic_cache_local.wasm"
AUTH = {"authorization": "Bearer bench"}


VOCAB = """apple river mountain engine violin carbon galaxy pepper harbor tunnel lantern meadow copper
falcon glacier orchard pyramid saddle thunder velvet walnut yogurt zebra anchor blossom canyon dolphin ember
fossil granite hazel iris jungle kettle lemon marble nectar oyster parrot quartz raven sapphire tulip umbrella
vapor willow basil cedar dune eagle fern garlic harp igloo jasmine kiwi lotus mango nutmeg olive pearl quill
rose saffron thyme urchin vanilla wasp yarrow zinc acorn badger cactus daisy elm flute gecko heron ivy jaguar
koala lilac moose newt otter panda quail rhino salmon tiger unicorn viper walrus yak bison cobra dingo""".split()


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def timed(session: requests.Session, url: str, prompt: str, expect: str | None, seen: list | None = None) -> float:
    t = time.perf_counter()
    r = session.post(url, json=chat_body(prompt), headers=AUTH, timeout=30)
    dt = (time.perf_counter() - t) * 1000
    if r.status_code != 200:
        raise RuntimeError(f"{url}: HTTP {r.status_code}: {r.text[:200]}")
    got = r.headers.get("x-cache-status")
    if seen is not None:
        seen.append(r.headers.get("x-cache-match") or got)
    if expect and got != expect:
        raise RuntimeError(f"{url}: expected {expect}, got {got} ({r.headers.get('x-cache-bypass-reason')})")
    return dt


def wait_keys(redis: RedisServer, pattern: str, n: int) -> None:
    for _ in range(400):
        if len(redis.keys(pattern)) >= n:
            return
        time.sleep(0.025)
    raise RuntimeError(f"only {len(redis.keys(pattern))} of {n} entries stored")


def measure(envoy: EnvoyProcess, site: str, redis: RedisServer, prefix: str, n: int, tag: str) -> dict:
    s = requests.Session()
    url = envoy.url(site)
    rng = random.Random(f"{tag}-{n}")
    # Random word combinations: distinct under any embedding (the stand-in is a bag of words).
    prompts = [" ".join(rng.sample(VOCAB, 8)) + "?" for _ in range(n)]
    # Reworded: one extra word at the end (a near-repeat the default thresholds accept).
    reworded = [p + " please" for p in prompts]
    for i in range(5):  # warm-up: connections, JIT, index creation
        timed(s, url, f"warm-up {tag} {i} about something else entirely", None)
    miss = [timed(s, url, p, "MISS") for p in prompts]
    wait_keys(redis, f"{prefix}*", n)
    exact = [timed(s, url, p, "HIT") for p in prompts]
    seen: list = []
    semantic = [timed(s, url, p, None, seen) for p in reworded]
    return {"miss": miss, "exact_hit": exact, "semantic_hit": semantic, "semantic_hits": seen.count("semantic")}


def row(name: str, xs: list[float], base: float) -> str:
    p50, p95 = statistics.median(xs), pct(xs, 95)
    return f"| {name} | {p50:.2f} | {p95:.2f} | {p50 / base:.2f}x |"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--llm-delay-ms", type=float, default=0.0)
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "cache" / "results.json")
    a = ap.parse_args()

    redis = RedisServer()
    redis.start()
    llm = LlmStandIn()
    llm.delay = a.llm_delay_ms / 1000
    emb = EmbeddingStandIn("openai", api_key="bench-key")
    clusters = {
        "llm": static_cluster("llm", llm.port, connect_timeout="2s"),
        "embedding": static_cluster("embedding", emb.port),
        "redis": static_cluster("redis", redis.port, tcp=True),
    }
    results: dict[str, dict] = {}
    envoys = []
    try:
        remote = EnvoyProcess([Site("baseline", None), Site("remote", policy_for("remote", emb, threshold=0.15))],
                              clusters, wasm_path(), concurrency=1)
        remote.start()
        envoys.append(remote)
        s = requests.Session()
        baseline = [timed(s, remote.url("baseline"), f"baseline {i}", None) for i in range(a.n + 5)][5:]
        results["remote"] = measure(remote, "remote", redis, "sc_remote:", a.n, "remote")
        if LOCAL_WASM.exists():
            local_policy = {"embedding": {"provider": "local", "dimensions": 384},
                            "vectorStore": {"indexName": "sc_benchlocal_idx", "keyPrefix": "sc_benchlocal:"},
                            "threshold": 0.05}
            local = EnvoyProcess([Site("local", local_policy)], clusters, LOCAL_WASM, concurrency=1)
            local.start(timeout=180)
            envoys.append(local)
            results["local"] = measure(local, "local", redis, "sc_benchlocal:", a.n, "local")
        else:
            print(f"(skipping the local model: {LOCAL_WASM} missing; run make build-local)")
    finally:
        for e in envoys:
            e.stop()
        redis.stop()
        llm.close() if hasattr(llm, "close") else None
        emb.close() if hasattr(emb, "close") else None

    base = statistics.median(baseline)
    lines = [
        f"Cache latency through Envoy 1.40, n={a.n} sequential requests each, LLM stand-in delay {a.llm_delay_ms} ms",
        "",
        "| path | p50 ms | p95 ms | p50 / baseline |",
        "|---|---|---|---|",
        row("baseline: Envoy without the filter", baseline, base),
    ]
    for mode, r in results.items():
        lines.append(row(f"{mode}: MISS (lookup + embed + KNN + upstream)", r["miss"], base))
        lines.append(row(f"{mode}: exact HIT", r["exact_hit"], base))
        lines.append(row(f"{mode}: reworded prompt ({r['semantic_hits']}/{a.n} semantic HITs)", r["semantic_hit"], base))
    print("\n".join(lines))
    a.json.parent.mkdir(parents=True, exist_ok=True)
    summary = {"n": a.n, "llm_delay_ms": a.llm_delay_ms, "baseline_p50_ms": base,
               "modes": {m: {k: {"p50_ms": statistics.median(v), "p95_ms": pct(v, 95),
                                 "ratio_p50": statistics.median(v) / base}
                             for k, v in r.items() if isinstance(v, list)}
                         for m, r in results.items()}}
    a.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
