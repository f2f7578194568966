"""Purge (issue 11, item 3): the policy's admin path, answered by the filter itself. Right, wrong
and missing key; everything; one partition by tenant credential, by `x-semantic-cache-key`, by
model; one entry by its request. The LLM stand-in never sees a purge request, and the key never
reaches the log. Real Envoy + real .wasm + real Redis.
"""
from __future__ import annotations

import hashlib
import time
from functools import partial

import pytest
import requests

import harness
from harness import Site, assert_status, chat_body, policy_for, wait_stored

A = "Bearer sk-client-purge-A"
B = "Bearer sk-client-purge-B"
KEY = "purge-key-for-the-e2e-tests-0123"
PATH = "/semantic-cache/purge"
ask = partial(harness.ask, auth=A)
pytestmark = pytest.mark.usefixtures("clean_keys")


@pytest.fixture(scope="module")
def envoy(envoy_launcher, embed_openai):
    return envoy_launcher([
        Site("purge", policy_for("purge", embed_openai, purge={"key": KEY})),
        # no key: the path is not special (purge is off)
        Site("nokey", policy_for("nokey", embed_openai, purge={"path": PATH})),
    ])


def purge(envoy, body=None, *, key: str | None = KEY, bearer: bool = False, site: str = "purge"):
    headers = {}
    if key is not None:
        headers = {"authorization": f"Bearer {key}"} if bearer else {"x-semantic-cache-purge-key": key}
    return requests.post(envoy.url(site, PATH), json=body, headers=headers, timeout=20)


def fill(envoy, redis_server, entries: list[tuple[str, str, dict]]) -> list[str]:
    """Stores one entry per (auth, prompt, extra kwargs to ask) and returns every key."""
    for i, (auth, prompt, kw) in enumerate(entries):
        assert_status(harness.ask(envoy, "purge", prompt, auth=auth, **kw), "MISS")
        wait_stored(redis_server, "purge", i + 1)
    return redis_server.keys("sc_purge:*")


def still_hits(envoy, auth, prompt, **kw) -> bool:
    r = harness.ask(envoy, "purge", prompt, auth=auth, **kw)
    assert r.status_code == 200
    return r.headers.get("x-cache-status") == "HIT"


def test_without_the_right_key_nothing_is_deleted_or_forwarded(envoy, llm, redis_server):
    fill(envoy, redis_server, [(A, "What is the capital of France?", {})])
    calls = llm.calls
    offset = envoy.log_size()
    denied = envoy.counter("purge_denied")
    r = purge(envoy, {}, key=None)
    assert r.status_code == 401 and r.headers.get("www-authenticate") == "Bearer", r.text
    r = purge(envoy, {}, key="wrong-key-wrong-key-wrong")
    assert r.status_code == 403, r.text
    r = purge(envoy, {}, key=KEY + "x", bearer=True)
    assert r.status_code == 403, r.text
    assert envoy.counter("purge_denied") == denied + 3
    assert "x-cache-status" not in r.headers
    assert len(redis_server.keys("sc_purge:*")) == 1
    assert llm.calls == calls, "a purge request must never reach the LLM upstream"
    assert still_hits(envoy, A, "What is the capital of France?")
    r = requests.get(envoy.url("purge", PATH), headers={"x-semantic-cache-purge-key": KEY}, timeout=10)
    assert r.status_code == 405
    assert llm.calls == calls
    assert KEY not in envoy.log_since(offset)


def test_purge_everything(envoy, llm, redis_server):
    keys = fill(envoy, redis_server, [(A, "What is the capital of France?", {}), (B, "How far is the moon?", {}),
                                      (A, "Name a prime number", {"model": "gpt-4o"})])
    assert len(keys) == 3
    calls = llm.calls
    before = envoy.counter("purged_entries")
    for bearer, body in [(False, {}), (True, None)]:
        r = purge(envoy, body, bearer=bearer)
        assert r.status_code == 200, r.text
        assert r.json() == {"deleted": 3 if body == {} else 0, "complete": True}
    assert redis_server.keys("sc_purge:*") == []
    assert envoy.counter("purged_entries") == before + 3 and envoy.counter("purge") >= 2
    assert llm.calls == calls
    assert_status(ask(envoy, "purge", "What is the capital of France?"), "MISS")


def test_purge_one_tenant(envoy, redis_server):
    fill(envoy, redis_server, [(A, "What is the capital of France?", {}), (A, "How far is the moon?", {}),
                               (B, "What is the capital of France?", {})])
    r = purge(envoy, {"tenant": A})
    assert r.json() == {"deleted": 2, "complete": True}
    assert len(redis_server.keys("sc_purge:*")) == 1
    assert still_hits(envoy, B, "What is the capital of France?")
    assert not still_hits(envoy, A, "How far is the moon?")


def test_purge_one_cache_key(envoy, redis_server):
    fill(envoy, redis_server, [(A, "What is the capital of France?", {"headers": {"x-semantic-cache-key": "k1"}}),
                               (A, "What is the capital of France?", {"headers": {"x-semantic-cache-key": "k2"}}),
                               (A, "What is the capital of France?", {})])
    assert purge(envoy, {"cacheKey": "k1"}).json() == {"deleted": 1, "complete": True}
    assert still_hits(envoy, A, "What is the capital of France?", headers={"x-semantic-cache-key": "k2"})
    assert still_hits(envoy, A, "What is the capital of France?")
    assert len(redis_server.keys("sc_purge:*")) == 2


def test_purge_one_model(envoy, redis_server):
    fill(envoy, redis_server, [(A, "What is the capital of France?", {"model": "gpt-4o"}),
                               (B, "How far is the moon?", {"model": "gpt-4o"}),
                               (A, "What is the capital of France?", {"model": "gpt-4o-mini"})])
    assert purge(envoy, {"model": "gpt-4o"}).json() == {"deleted": 2, "complete": True}
    assert still_hits(envoy, A, "What is the capital of France?", model="gpt-4o-mini")
    assert len(redis_server.keys("sc_purge:*")) == 1


def test_purge_one_entry_by_its_request(envoy, redis_server):
    fill(envoy, redis_server, [(A, "What is the capital of France?", {}), (A, "How far is the moon?", {}),
                               (B, "What is the capital of France?", {})])
    body = {"request": chat_body("what is the capital of France"), "tenant": A}  # canonical form matches
    assert purge(envoy, body).json() == {"deleted": 1, "complete": True}
    assert still_hits(envoy, A, "How far is the moon?")
    assert still_hits(envoy, B, "What is the capital of France?")
    assert len(redis_server.keys("sc_purge:*")) == 2
    # a selector that matches nothing, and a body that is not a selection
    assert purge(envoy, {"model": "no-such-model"}).json() == {"deleted": 0, "complete": True}
    r = purge(envoy, {"tenant": A, "unknown": 1})
    assert r.status_code == 400 and "unknown" in r.json()["error"]
    assert len(redis_server.keys("sc_purge:*")) == 2


def test_purge_is_off_without_a_key(envoy, llm):
    calls = llm.calls
    r = purge(envoy, {}, site="nokey")
    assert_status(r, "BYPASS", "path", code=None)
    assert llm.calls == calls + 1, "without a purge key the path is an ordinary request"


def selector(kind: str, value: str) -> str:
    """The selector TAG a store writes (src/core/purge.rs `tag`)."""
    return hashlib.sha256(b"semcache-selector-v1" + kind.encode() + b"\x01" + value.encode()).hexdigest()[:24]


def test_a_large_purge_takes_several_bounded_rounds(envoy, redis_server):
    # 1,203 entries of one model, written straight into the index (no vectors needed for TAG
    # queries): more than two rounds of 500; one entry of another model stays.
    index, prefix = harness.store_names(envoy.sites["purge"].policy)
    fill(envoy, redis_server, [(A, "What is the capital of France?", {})])
    n = 1203
    sel = selector("model", "bulk-model")
    redis_server.pipeline(*[("HSET", f"{prefix}bulk{i}", "sel_model", sel, "body", "{}") for i in range(n)])
    deadline = time.monotonic() + 10
    while redis_server.command("FT.SEARCH", index, f"@sel_model:{{{sel}}}", "NOCONTENT", "LIMIT", "0", "0",
                               "DIALECT", "2")[0] < n:
        assert time.monotonic() < deadline, "not indexed"
        time.sleep(0.05)
    assert purge(envoy, {"model": "bulk-model"}).json() == {"deleted": n, "complete": True}
    assert len(redis_server.keys(f"{prefix}*")) == 1
    assert still_hits(envoy, A, "What is the capital of France?")
