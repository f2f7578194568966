"""Foundation behaviour of the filter (issue 3), end to end: real Envoy + real .wasm + real Redis
with RediSearch, stand-in LLM and embedding providers. Names from docs/contract.md.

One Envoy serves these sites (one listener each, each with its own index and key prefix):
  main     openai-compatible embeddings, threshold 0.15
  ttl      like main, ttlSeconds 2
  slow     like main, embedding timeoutMs 300
  azure    azure-openai embeddings (api-key header, api-version query)
  mistral  mistral embeddings (Bearer, list input)
A second Envoy (started only by the broken-policy tests) serves sites with invalid policies.
"""
from __future__ import annotations

import json
import re
import time
from functools import partial

import pytest

import harness
from harness import Site, assert_status, explain, policy_for, wait_counter, wait_stored
from standins import cosine_distance

CLIENT_AUTH = "Bearer sk-client-test-key"
ask = partial(harness.ask, auth=CLIENT_AUTH)
pytestmark = pytest.mark.usefixtures("clean_keys")
THRESHOLD = 0.15


# ------------------------------------------------------------------------------------------------
# fixtures and helpers
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def envoy(envoy_launcher, embed_openai, embed_azure, embed_mistral, redis_server):
    redis_server.flushall()  # start without any index: the filter's store pipeline must create it
    sites = [
        Site("main", policy_for("main", embed_openai, threshold=THRESHOLD)),
        Site("ttl", policy_for("ttl", embed_openai, threshold=THRESHOLD, ttl=2)),
        Site("slow", policy_for("slow", embed_openai, threshold=THRESHOLD, timeout_ms=300)),
        Site("azure", policy_for("azure", embed_azure, threshold=THRESHOLD, cluster="embedding_azure",
                                 model="text-embedding-3-small")),
        Site("mistral", policy_for("mistral", embed_mistral, threshold=THRESHOLD, cluster="embedding_mistral",
                                   model="mistral-embed")),
    ]
    return envoy_launcher(sites)


# ------------------------------------------------------------------------------------------------
# tests
# ------------------------------------------------------------------------------------------------
def test_miss_then_exact_hit(envoy, llm, embed_openai, redis_server):
    prompt = "Name the largest planet in the solar system"
    before = envoy.stats()
    r1 = ask(envoy, "main", prompt)
    assert r1.status_code == 200
    assert_status(r1, "MISS")
    assert "x-cache-bypass-reason" not in r1.headers
    assert llm.calls == 1
    # the caller's Authorization reaches the LLM unchanged; the embedding call uses the policy key
    assert llm.last()["headers"]["authorization"] == CLIENT_AUTH
    assert embed_openai.calls >= 1
    assert embed_openai.last()["headers"]["authorization"] == f"Bearer {embed_openai.api_key}"
    keys = wait_stored(redis_server, "main")

    r2 = ask(envoy, "main", prompt)
    assert r2.status_code == 200
    assert_status(r2, "HIT")
    assert r2.headers.get("x-cache-match") == "exact", explain(r2)
    assert float(r2.headers["x-cache-distance"]) == 0.0
    assert re.fullmatch(r"\d+", r2.headers.get("age", "")), explain(r2)
    assert r2.json() == r1.json()
    assert r2.headers.get("content-type", "").startswith("application/json")
    assert llm.calls == 1, "a HIT must not reach the upstream"

    # entry layout (contract "Redis data")
    main_index, main_prefix = harness.store_names(envoy.sites["main"].policy)
    assert len(keys) == 1 and re.fullmatch(re.escape(main_prefix) + r"[0-9a-f]{64}", keys[0]), keys
    entry = dict(zip(*[iter(redis_server.command("HGETALL", keys[0]))] * 2))
    assert {b"partition", b"vec", b"body", b"ctype", b"created", b"model"} <= set(entry), entry.keys()
    assert len(entry[b"vec"]) == 64 * 4
    assert re.fullmatch(rb"[0-9a-f]{32}", entry[b"partition"]), entry[b"partition"]
    assert json.loads(entry[b"body"])["object"] == "chat.completion"
    assert 0 < redis_server.command("TTL", keys[0]) <= 3600
    assert main_index in redis_server.indexes()

    after = envoy.stats()
    d = lambda m: after.get(f"wasmcustom.semantic_cache.{m}", 0) - before.get(f"wasmcustom.semantic_cache.{m}", 0)  # noqa: E731
    assert d("requests") >= 2 and d("miss") >= 1 and d("hit_exact") >= 1, after


def test_paraphrase_hits_unrelated_misses(envoy, llm, redis_server):
    original = "Explain how photosynthesis converts sunlight into chemical energy"
    paraphrase = "Explain how photosynthesis actually converts sunlight into chemical energy"
    unrelated = "Recommend a good recipe for sourdough pizza dough"
    # preconditions on the stand-in geometry (hashed bag of words)
    d_para = cosine_distance(original, paraphrase)
    assert 0 < d_para < THRESHOLD, d_para
    assert cosine_distance(original, unrelated) > 3 * THRESHOLD

    r1 = ask(envoy, "main", original)
    assert_status(r1, "MISS")
    wait_stored(redis_server, "main")
    r2 = ask(envoy, "main", paraphrase)
    assert_status(r2, "HIT")
    assert r2.headers.get("x-cache-match") == "semantic", explain(r2)
    dist = float(r2.headers["x-cache-distance"])
    assert dist == pytest.approx(d_para, abs=2e-3), (dist, d_para)
    assert re.fullmatch(r"\d+\.\d{4}", r2.headers["x-cache-distance"]), r2.headers["x-cache-distance"]
    assert r2.json() == r1.json()
    assert llm.calls == 1

    r3 = ask(envoy, "main", unrelated)
    assert_status(r3, "MISS")
    assert r3.json()["choices"][0]["message"]["content"] == f"echo: {unrelated}"
    assert llm.calls == 2


def test_reordered_words_hit(envoy, llm, redis_server):
    # same bag of words -> distance 0, but not the same text -> a semantic (not exact) hit
    r1 = ask(envoy, "main", "capital city of Australia")
    assert_status(r1, "MISS")
    wait_stored(redis_server, "main")
    r2 = ask(envoy, "main", "Australia: capital city?")
    assert_status(r2, "HIT")
    assert r2.headers.get("x-cache-match") == "semantic", explain(r2)
    assert float(r2.headers["x-cache-distance"]) < 1e-3
    assert llm.calls == 1


def test_other_model_misses(envoy, llm, redis_server):
    prompt = "Translate good morning into French"
    assert_status(ask(envoy, "main", prompt, model="gpt-4o-mini"), "MISS")
    wait_stored(redis_server, "main")
    r = ask(envoy, "main", prompt, model="gpt-4o")
    assert_status(r, "MISS")
    assert r.json()["model"] == "gpt-4o"
    assert llm.calls == 2


@pytest.mark.parametrize("status", [500, 429])
def test_error_answer_not_stored(envoy, llm, redis_server, status):
    prompt = f"Summarise the plot of Hamlet in one line {status}"
    llm.status = status
    skipped = envoy.counter("store_skipped")
    r1 = ask(envoy, "main", prompt)
    assert_status(r1, "MISS", code=status)
    llm.status = None
    wait_counter(envoy, "store_skipped", skipped + 1)  # the store decision is made: not stored
    assert redis_server.keys("sc_main:*") == []
    r2 = ask(envoy, "main", prompt)
    assert r2.status_code == 200
    assert_status(r2, "MISS")
    assert llm.calls == 2
    wait_stored(redis_server, "main")
    assert_status(ask(envoy, "main", prompt), "HIT")
    assert llm.calls == 2


def test_ttl_expiry_leads_to_miss(envoy, llm, redis_server):
    prompt = "List three primary colours"
    assert_status(ask(envoy, "ttl", prompt), "MISS")
    keys = wait_stored(redis_server, "ttl")
    assert 0 < redis_server.command("TTL", keys[0]) <= 2
    assert_status(ask(envoy, "ttl", prompt), "HIT")
    deadline = time.monotonic() + 6
    while redis_server.keys("sc_ttl:*") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert redis_server.keys("sc_ttl:*") == [], "entry did not expire"
    r = ask(envoy, "ttl", prompt)
    assert_status(r, "MISS")
    assert llm.calls == 2


def test_embedding_error_bypasses(envoy, llm, embed_openai):
    embed_openai.status = 500
    before = envoy.counter("embedding_error")
    r = ask(envoy, "main", "What is the boiling point of water at sea level")
    assert r.status_code == 200
    assert_status(r, "BYPASS", "embedding-error")
    assert r.json()["choices"][0]["message"]["content"].startswith("echo: ")
    assert llm.calls == 1 and embed_openai.calls >= 1
    assert envoy.counter("embedding_error") > before


def test_embedding_timeout_bypasses(envoy, llm, embed_openai):
    embed_openai.delay = 1.5  # policy timeoutMs is 300 on site `slow`
    r = ask(envoy, "slow", "Why is the sky blue during the day")
    assert r.status_code == 200
    assert_status(r, "BYPASS", "embedding-error")
    assert llm.calls == 1


def test_invalid_json_bypasses(envoy, llm):
    r = ask(envoy, "main", body=b'{"model": "gpt-4o-mini", "messages": [ {"role": "user", ')
    # 400: the stand-in's own answer to a non-JSON body
    assert_status(r, "BYPASS", "invalid-json", code=400)
    assert llm.calls == 1, "the request must still reach the upstream"


def test_azure_openai_provider(envoy, llm, embed_azure, redis_server):
    prompt = "Describe the water cycle for a child"
    r1 = ask(envoy, "azure", prompt)
    assert_status(r1, "MISS")
    assert embed_azure.calls >= 1
    req = embed_azure.last()
    assert req["headers"].get("api-key") == embed_azure.api_key
    assert "authorization" not in req["headers"], "the client's credential must not go to the embedding provider"
    assert req["path"] == "/openai/deployments/embed/embeddings" and req["query"].get("api-version")
    wait_stored(redis_server, "azure")
    r2 = ask(envoy, "azure", "Describe for a child the water cycle")  # needs an embedding call again
    assert_status(r2, "HIT")
    assert r2.headers.get("x-cache-match") == "semantic", explain(r2)
    assert embed_azure.calls >= 2 and embed_azure.last()["headers"].get("api-key") == embed_azure.api_key
    assert llm.calls == 1


def test_mistral_provider(envoy, llm, embed_mistral, redis_server):
    prompt = "Give me a haiku about autumn leaves"
    r1 = ask(envoy, "mistral", prompt)
    assert_status(r1, "MISS")
    req = embed_mistral.last()
    assert req["headers"].get("authorization") == f"Bearer {embed_mistral.api_key}"
    assert req["path"] == "/v1/embeddings"
    assert req["json"]["model"] == "mistral-embed" and isinstance(req["json"]["input"], list)
    wait_stored(redis_server, "mistral")
    r2 = ask(envoy, "mistral", "autumn leaves: give me a haiku about them")
    assert_status(r2, "HIT")
    assert r2.headers.get("x-cache-match") == "semantic", explain(r2)
    assert llm.calls == 1


def test_redis_down_bypasses_then_recovers(envoy, llm, redis_server):
    redis_server.stop()
    try:
        before = envoy.counter("redis_error")
        r = ask(envoy, "main", "How many legs does a spider have")
        assert r.status_code == 200
        assert_status(r, "BYPASS", "redis-error")
        assert r.json()["choices"][0]["message"]["content"].startswith("echo: ")
        assert llm.calls == 1
        assert envoy.counter("redis_error") > before
        assert envoy.alive()
    finally:
        redis_server.start()
    # fresh Redis: no index; the next miss stores and recreates it, then hits
    prompt = "How many legs does an ant have"
    assert_status(ask(envoy, "main", prompt), "MISS")
    wait_stored(redis_server, "main")
    assert harness.store_names(envoy.sites["main"].policy)[0] in redis_server.indexes()
    assert_status(ask(envoy, "main", prompt), "HIT")


# ------------------------------------------------------------------------------------------------
# broken policies: a second Envoy
# ------------------------------------------------------------------------------------------------
BROKEN = {
    "broken1": ("threshold", lambda p: p.update(threshold="abc")),
    "broken2": ("provider", lambda p: p["embedding"].update(provider="no-such-provider")),
}


@pytest.fixture(scope="module")
def broken_envoy(envoy_launcher, embed_openai):
    sites = []
    for name, (_, mutate) in BROKEN.items():
        p = policy_for(name, embed_openai)
        mutate(p)
        sites.append(Site(name, p, vm_id=f"vm_{name}"))
    sites.append(Site("broken3", "{this is not json", vm_id="vm_broken3"))
    return envoy_launcher(sites)


@pytest.mark.parametrize("site", ["broken1", "broken2", "broken3"])
def test_broken_policy_bypasses_and_envoy_stays_up(broken_envoy, llm, site):
    r = ask(broken_envoy, site, "Is this cached")
    assert r.status_code == 200, explain(r)
    assert_status(r, "BYPASS", "policy-invalid")
    assert llm.calls == 1
    assert broken_envoy.alive() and broken_envoy.ready()
    assert broken_envoy.counter("policy_error") >= 1


@pytest.mark.parametrize("site", list(BROKEN))
def test_broken_policy_logged_with_field(broken_envoy, site):
    # Envoy prefixes filter logs with "wasm log <root_id> <vm_id>: "; each broken site has its own vm_id
    field, _ = BROKEN[site]
    marker = f" vm_{site}: "

    def lines():
        return [ln.split(marker, 1)[1] for ln in broken_envoy.log_since(0).splitlines()
                if marker in ln and any(lvl in ln for lvl in ("[error]", "[warning]", "[critical]"))]

    naming = [m for m in lines() if re.search(rf"\b{field}\b", m)]
    assert naming, f"no warning/error line naming `{field}` for vm_{site}; its lines: {lines()}"
    # one message (Envoy configures the plugin once per VM: main thread + workers), not one per request
    assert len(set(naming)) == 1, naming
    n = len(lines())
    for _ in range(3):
        ask(broken_envoy, site, "Is this cached")
    assert len(lines()) == n, "the broken policy must not be logged per request"
