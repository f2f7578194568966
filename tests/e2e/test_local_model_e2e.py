"""The in-filter model end to end (issue 4): provider `local`, no embedding service anywhere.

One Envoy with the local-model build (`build/semantic_cache_local.wasm`, made by `make build-local`),
clusters only for the LLM stand-in and Redis. MISS, then a paraphrase HIT, then an unrelated MISS.
"""
from __future__ import annotations

import os
import re
from functools import partial
from pathlib import Path

import pytest

import harness
from harness import ROOT, EnvoyProcess, Site, static_cluster, terminate, wait_stored

LOCAL_WASM = Path(os.environ.get("SEMCACHE_LOCAL_WASM") or ROOT / "build" / "semantic_cache_local.wasm")
ask = partial(harness.ask, auth="Bearer sk-local-test", timeout=30)


def local_policy() -> dict:
    # No threshold given: the provider's measured default (0.008 for all-MiniLM-L6-v2) applies.
    return {
        "embedding": {"provider": "local", "dimensions": 384},
        "vectorStore": {"indexName": "sc_local_idx", "keyPrefix": "sc_local:"},
    }


@pytest.fixture(scope="module")
def envoy(redis_server, llm, tmp_path_factory):
    if not LOCAL_WASM.exists():
        pytest.fail(f"{LOCAL_WASM} missing: run `make build-local`")
    redis_server.flushall()
    clusters = {
        "llm": static_cluster("llm", llm.port, connect_timeout="2s"),
        "redis": static_cluster("redis", redis_server.port, tcp=True),
    }
    # concurrency 1: every worker compiles and holds the model; one is enough here.
    e = EnvoyProcess([Site("local", local_policy())], clusters, LOCAL_WASM,
                     workdir=tmp_path_factory.mktemp("envoy-local"), concurrency=1)
    e.start(timeout=180)
    yield e
    e.stop()


def test_model_loaded_with_its_dimensions(envoy):
    log = envoy.log_since(0)
    assert re.search(r"policy loaded: provider=local dims=384 threshold=0.008", log), log[-3000:]
    assert "local embedding model unavailable" not in log


def test_miss_paraphrase_hit_unrelated_miss(envoy, llm, redis_server):
    r = ask(envoy, "local", "What is the capital of France?")
    assert r.status_code == 200 and r.headers["x-cache-status"] == "MISS"
    assert llm.calls == 1
    wait_stored(redis_server, "local")
    r = ask(envoy, "local", "What's the capital of France?")
    assert r.headers["x-cache-status"] == "HIT", r.headers
    assert r.headers["x-cache-match"] == "semantic"
    assert 0 < float(r.headers["x-cache-distance"]) <= 0.008
    assert r.json()["choices"][0]["message"]["content"] == "echo: What is the capital of France?"
    calls = llm.calls
    r = ask(envoy, "local", "What is the capital of Germany?")
    assert r.headers["x-cache-status"] == "MISS"
    assert llm.calls == calls + 1


def test_exact_repeat_hits_exact_tier(envoy, redis_server):
    redis_server.delete_all_keys()
    assert ask(envoy, "local", "How many legs does a spider have?").headers["x-cache-status"] == "MISS"
    wait_stored(redis_server, "local")
    r = ask(envoy, "local", "How  many legs does a spider have?")  # whitespace is normalised
    assert r.headers["x-cache-status"] == "HIT"
    assert r.headers["x-cache-match"] == "exact"


def test_embedding_time_is_recorded(envoy):
    stats = envoy.admin_get("/stats?filter=semantic_cache.embed_us")
    assert "semantic_cache.embed_us" in stats


def test_sidecar_serves_the_plain_filter(redis_server, llm, tmp_path):
    """The same model as a native sidecar (build/embed_server, OpenAI-compatible) behind the plain
    filter: same vectors, so the same paraphrase hits at the same distance."""
    import subprocess

    from harness import DEFAULT_WASM, free_port, wait_tcp

    server = ROOT / "build" / "embed_server"
    if not server.exists():
        pytest.fail(f"{server} missing: run `make build-local`")
    port = free_port()
    proc = subprocess.Popen([str(server), "--listen", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    e = None
    try:
        wait_tcp(port, timeout=30)
        policy = {
            "embedding": {"provider": "openai-compatible", "url": f"http://127.0.0.1:{port}/v1/embeddings",
                          "model": "local", "dimensions": 384},
            "vectorStore": {"indexName": "sc_sidecar_idx", "keyPrefix": "sc_sidecar:"},
            "threshold": 0.25,
        }
        clusters = {
            "llm": static_cluster("llm", llm.port, connect_timeout="2s"),
            "embedding": static_cluster("embedding", port),
            "redis": static_cluster("redis", redis_server.port, tcp=True),
        }
        e = EnvoyProcess([Site("local", policy)], clusters, DEFAULT_WASM, workdir=tmp_path, concurrency=1)
        e.start()
        assert ask(e, "local", "What is the capital of France?").headers["x-cache-status"] == "MISS"
        wait_stored(redis_server, "sidecar")
        r = ask(e, "local", "Tell me the capital of France.")
        assert r.headers["x-cache-status"] == "HIT" and r.headers["x-cache-match"] == "semantic"
        assert 0 < float(r.headers["x-cache-distance"]) <= 0.25
        assert ask(e, "local", "What is the capital of Germany?").headers["x-cache-status"] == "MISS"
    finally:
        if e:
            e.stop()
        terminate(proc, 10)
