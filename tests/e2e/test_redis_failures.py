"""Fail open on every kind of vector-store trouble (issue 3): the request reaches the LLM, the answer is
BYPASS with the reason, a warning is logged, nothing is stored.

Sites (one Envoy): `slow` (a Redis that never answers, timeoutMs 300), `garbage` (answers non-RESP bytes),
`errors` (answers `-ERR` to everything), `badauth` (real Redis, wrong password), `dims` (real Redis whose
index was created with another DIM than the policy's).
"""
from __future__ import annotations

import socket
import threading
import time
from functools import partial

import pytest

import harness
from harness import Site, assert_status, cache, explain, policy_for, static_cluster

ask = partial(harness.ask, auth="Bearer sk-redis-failures")


class FakeRedis:
    """A TCP server that reads a pipeline and answers `reply` (or nothing, for `delay` seconds)."""

    def __init__(self, reply: bytes, delay: float = 0.0):
        self.reply, self.delay = reply, delay
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)
                time.sleep(self.delay)
                conn.sendall(self.reply)
            except OSError:
                pass

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def fakes():
    f = {
        "slow": FakeRedis(b"+OK\r\n", delay=3.0),
        "garbage": FakeRedis(b"HTTP/1.1 500 Internal Server Error\r\n\r\n<html>"),
        "errors": FakeRedis(b"-ERR something broke\r\n-ERR something broke\r\n+OK\r\n"),
    }
    yield f
    for x in f.values():
        x.close()


@pytest.fixture(scope="module")
def envoy(envoy_launcher, embed_openai, redis_server, fakes):
    redis_server.flushall()
    # The `dims` site's index exists with DIM 32; the stand-in embedder returns 64 dimensions.
    dims_index, dims_prefix = harness.store_names(policy_for("dims", embed_openai))
    redis_server.command("FT.CREATE", dims_index, "ON", "HASH", "PREFIX", "1", dims_prefix, "SCHEMA",
                         "partition", "TAG", "vec", "VECTOR", "HNSW", "6", "TYPE", "FLOAT32", "DIM", "32",
                         "DISTANCE_METRIC", "COSINE")

    def site(name, cluster, **store):
        p = policy_for(name, embed_openai)
        p["vectorStore"].update(cluster=cluster, **store)
        return Site(name, p)

    sites = [
        site("slow", "redis_slow", timeoutMs=300),
        site("garbage", "redis_garbage"),
        site("errors", "redis_errors"),
        site("badauth", "redis", password="not-the-password"),
        site("dims", "redis"),
        site("fresh", "redis"),
    ]
    clusters = {f"redis_{k}": static_cluster(f"redis_{k}", v.port, tcp=True) for k, v in fakes.items()}
    return envoy_launcher(sites, clusters)


@pytest.mark.parametrize("site,reason", [
    ("slow", "redis-error"),
    ("garbage", "redis-error"),
    ("errors", "redis-error"),
    ("badauth", "redis-error"),
])
def test_vector_store_trouble_fails_open(envoy, llm, redis_server, site, reason):
    offset = envoy.log_size()
    before = envoy.stats().get("wasmcustom.semantic_cache.redis_error", 0)
    for i in range(2):
        calls = llm.calls
        r = ask(envoy, site, f"How tall is Mount Everest {site}?")
        assert_status(r, "BYPASS", reason)
        assert llm.calls == calls + 1, "the request must reach the LLM"
        assert r.json()["choices"][0]["message"]["content"].startswith("echo:")
    assert envoy.stats().get("wasmcustom.semantic_cache.redis_error", 0) >= before + 2
    log = envoy.log_since(offset)
    assert "semantic-cache: redis lookup failed" in log, log[-2000:]
    assert "How tall is Mount Everest" not in log, "prompt text must not be logged"
    assert "not-the-password" not in log, "secrets must not be logged"
    if site == "badauth":
        assert not redis_server.keys(f"sc_{site}:*"), "nothing may be stored"


def test_dimension_mismatch_is_detected_and_bypassed(envoy, llm, redis_server):
    """The index has DIM 32, the policy 64. An empty partition would not even make FT.SEARCH fail,
    and an HSET with a 64-dim vector is silently not indexed: the root context's index check
    (FT.INFO) must catch it, log one clear error, and make requests BYPASS."""
    deadline = time.monotonic() + 10
    while True:
        # Before the first check (1 s after start) requests proceed: a miss is stored by key and an
        # exact repeat of it is a correct hit; only the semantic tier is broken.
        r = ask(envoy, "dims", "How tall is Mount Everest?")
        assert r.status_code == 200, explain(r)
        if r.headers.get("x-cache-bypass-reason") == "dimension-mismatch":
            break
        assert time.monotonic() < deadline, f"index check never reported the mismatch: {explain(r)}"
        time.sleep(0.2)
    assert cache(r) == "BYPASS"
    calls = llm.calls
    r = ask(envoy, "dims", "How tall is Mount Everest?")
    assert r.headers.get("x-cache-bypass-reason") == "dimension-mismatch" and llm.calls == calls + 1
    log = envoy.log_since(0)
    dims_index = harness.store_names(envoy.sites["dims"].policy)[0]
    assert f"vector dimension mismatch: index `{dims_index}` has DIM 32, embedding.dimensions=64" in log
    assert "panic" not in log.lower()
    # Entries stored before the first check (a request may race it) are never searchable; after the
    # check nothing more is stored.
    n = len(redis_server.keys("sc_dims:*"))
    ask(envoy, "dims", "Another question entirely")
    time.sleep(0.3)
    assert len(redis_server.keys("sc_dims:*")) == n


def test_missing_index_is_created_by_the_root_context(envoy, redis_server):
    """Site `fresh` never gets traffic: its index is created by the root context's first check."""
    deadline = time.monotonic() + 10
    fresh_index = harness.store_names(envoy.sites["fresh"].policy)[0]
    while fresh_index not in redis_server.indexes():
        assert time.monotonic() < deadline, redis_server.indexes()
        time.sleep(0.1)
    info = repr(redis_server.command("FT.INFO", fresh_index))
    assert "'dim', 64" in info, info  # the policy's dimensions (the embedding stand-in's 64)
