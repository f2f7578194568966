"""The default in-filter embedder end to end (issue 10): the static embedding table compiled into the default
build (`make build`: target/wasm32-wasip1/release/semantic_cache.wasm, feature static-model), driven by the
default local policy (envoy/policies/local.json: provider `local`, its dimensions and threshold). No embedding
service anywhere: MISS, then a paraphrase HIT, then an unrelated MISS.
"""
from __future__ import annotations

import json
import re

import pytest
import requests

from harness import ROOT, EnvoyProcess, Site, chat_body, static_cluster, wait_stored, wasm_path

AUTH = {"authorization": "Bearer sk-static-test"}
POLICY_FILE = ROOT / "envoy" / "policies" / "local.json"


def static_policy() -> dict:
    p = json.loads(POLICY_FILE.read_text())
    # the file's embedding settings and threshold as shipped; only the index is this test's own
    p["vectorStore"].update({"indexName": "sc_static_idx", "keyPrefix": "sc_static:"})
    return p


@pytest.fixture(scope="module")
def envoy(redis_server, llm, tmp_path_factory):
    wasm = wasm_path()
    if not wasm.exists():
        pytest.fail(f"{wasm} missing: run `make build`")
    redis_server.flushall()
    clusters = {
        "llm": static_cluster("llm", llm.port, connect_timeout="2s"),
        "redis": static_cluster("redis", redis_server.port, tcp=True),
    }
    e = EnvoyProcess([Site("static", static_policy())], clusters, wasm,
                     workdir=tmp_path_factory.mktemp("envoy-static"), concurrency=2)
    e.start()
    yield e
    e.stop()


def ask(envoy, prompt: str) -> requests.Response:
    return requests.post(envoy.url("static"), json=chat_body(prompt), headers=AUTH, timeout=30)


def test_static_model_is_compiled_in_with_the_policy_dimensions(envoy):
    p = json.loads(POLICY_FILE.read_text())
    assert p["embedding"]["provider"] == "local"
    log = envoy.log_since(0)
    dims, thr = p["embedding"]["dimensions"], p["threshold"]
    assert re.search(rf"policy loaded: provider=local dims={dims} threshold={thr}\b", log), log[-3000:]
    assert re.search(r"local embedding model `static-[^`]+`", log), log[-3000:]
    assert "local embedding model unavailable" not in log


def test_miss_paraphrase_hit_unrelated_miss(envoy, llm, redis_server):
    threshold = json.loads(POLICY_FILE.read_text())["threshold"]
    r = ask(envoy, "Explain how photosynthesis works")
    assert r.status_code == 200 and r.headers["x-cache-status"] == "MISS", r.headers
    assert llm.calls == 1
    wait_stored(redis_server, "static")
    r = ask(envoy, "Can you explain how photosynthesis works?")
    assert r.headers["x-cache-status"] == "HIT", r.headers
    assert r.headers["x-cache-match"] == "semantic"
    assert 0 < float(r.headers["x-cache-distance"]) <= threshold
    assert r.json()["choices"][0]["message"]["content"] == "echo: Explain how photosynthesis works"
    calls = llm.calls
    r = ask(envoy, "What is the capital of Germany?")
    assert r.headers["x-cache-status"] == "MISS", r.headers
    assert llm.calls == calls + 1


def test_stored_vectors_have_the_policy_dimensions(envoy, redis_server):
    dims = json.loads(POLICY_FILE.read_text())["embedding"]["dimensions"]
    keys = wait_stored(redis_server, "static")
    blobs = [redis_server.command("HGET", k, "vec") for k in keys]
    blobs = [b for b in blobs if b]
    assert blobs, keys
    assert all(len(b) == 4 * dims for b in blobs), [len(b) for b in blobs]
