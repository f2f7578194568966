"""Answer quality end to end (issue 9): the verifier on every semantic candidate, top-k, the
canonical exact tier and the seed payloads. Real Envoy + real .wasm + real Redis (RediSearch), the
embedding stand-in's hashed bag of words as the embedder: word order does not change its vectors,
so a swapped-order trap sits at distance 0, nearer than any paraphrase. That is the worst case the
verifier has to catch.

Sites:
  verify   threshold 0.5 (loose: the verifier decides), verifier strict, topK 5 (defaults)
  topk1    the same with topK 1: a refused nearest candidate hides the paraphrase behind it
  off      the same with verify off: the distance alone decides
  serial   embedding.parallel false: the exact tier answers with no embedding call at all
"""
from __future__ import annotations

from functools import partial

import pytest

import harness
from harness import Site, assert_status, explain, policy_for, wait_stored
from standins import cosine_distance

CLIENT_AUTH = "Bearer sk-client-quality-A"
ask = partial(harness.ask, auth=CLIENT_AUTH)
pytestmark = pytest.mark.usefixtures("clean_keys")

LOOSE = 0.5
QUERY = "Convert 100 USD to EUR"
TRAP = "Convert 100 EUR to USD"  # same words, other order: distance 0 in a bag of words
PARAPHRASE = "Please convert 100 USD into EUR"


@pytest.fixture(scope="module")
def envoy(envoy_launcher, embed_openai, redis_server):
    eo = embed_openai
    sites = [
        Site("verify", policy_for("verify", eo, threshold=LOOSE)),
        Site("topk1", policy_for("topk1", eo, threshold=LOOSE, topK=1)),
        Site("off", policy_for("off", eo, threshold=LOOSE, verify="off")),
        Site("serial", policy_for("serial", eo, threshold=LOOSE, parallel=False)),
    ]
    return envoy_launcher(sites)


def store(envoy, redis_server, site: str, prompt: str, n: int, **kw):
    r = ask(envoy, site, prompt, **kw)
    assert_status(r, "MISS")
    wait_stored(redis_server, site, n)
    return r


def test_geometry():
    assert cosine_distance(QUERY, TRAP) == pytest.approx(0.0, abs=1e-9)
    assert 0.05 < cosine_distance(QUERY, PARAPHRASE) < LOOSE


def test_trap_candidate_is_refused_and_says_why(envoy, llm, redis_server):
    store(envoy, redis_server, "verify", QUERY, 1)
    before = envoy.counter("refused.order")
    r = ask(envoy, "verify", TRAP)
    assert_status(r, "MISS")
    assert r.headers.get("x-cache-refused") == "order", explain(r)
    assert envoy.counter("refused.order") == before + 1
    assert llm.calls == 2, "the refused trap went to the model"


def test_paraphrase_is_served(envoy, llm, redis_server):
    r1 = store(envoy, redis_server, "verify", QUERY, 1)
    r = ask(envoy, "verify", PARAPHRASE)
    assert_status(r, "HIT", match="semantic")
    assert float(r.headers["x-cache-distance"]) == pytest.approx(cosine_distance(QUERY, PARAPHRASE), abs=2e-3)
    assert r.json() == r1.json()
    assert "x-cache-refused" not in r.headers
    assert llm.calls == 1


@pytest.mark.parametrize("prompt, reason", [
    ("How do I turn off dark mode?", "contrast"),
    ("How do I not turn on dark mode?", "negation"),
    ("How do I turn on dark mode tomorrow?", "time"),
])
def test_look_alike_traps_are_refused(envoy, redis_server, prompt, reason):
    store(envoy, redis_server, "verify", "How do I turn on dark mode?", 1)
    r = ask(envoy, "verify", prompt)
    assert_status(r, "MISS")
    assert r.headers.get("x-cache-refused") == reason, explain(r)


def test_nearer_trap_does_not_hide_a_paraphrase(envoy, llm, redis_server):
    # The paraphrase's prompt is stored first, then the trap's: the trap is the query's nearest
    # neighbour (distance 0), the paraphrase second. top-k: the trap is refused, the paraphrase answers.
    r_para = store(envoy, redis_server, "verify", PARAPHRASE, 1)
    store(envoy, redis_server, "verify", TRAP, 2)
    before = envoy.counter("refused.order")
    r = ask(envoy, "verify", QUERY)
    assert_status(r, "HIT", match="semantic")
    assert r.json() == r_para.json(), "answered with the paraphrase's entry"
    assert float(r.headers["x-cache-distance"]) > 0.05, explain(r)
    assert envoy.counter("refused.order") == before + 1
    # With topK 1 the same geometry is a miss: only the refused trap was looked at.
    store(envoy, redis_server, "topk1", PARAPHRASE, 1)
    store(envoy, redis_server, "topk1", TRAP, 2)
    r = ask(envoy, "topk1", QUERY)
    assert_status(r, "MISS")
    assert r.headers.get("x-cache-refused") == "order", explain(r)


def test_verify_off_serves_the_trap(envoy, redis_server):
    store(envoy, redis_server, "off", QUERY, 1)
    r = ask(envoy, "off", TRAP)
    assert_status(r, "HIT", match="semantic")


def test_entries_store_the_normalised_prompt(envoy, redis_server):
    store(envoy, redis_server, "verify", "  Convert   100 USD\tto EUR ", 1)
    (key,) = redis_server.keys("sc_verify:*")
    assert redis_server.command("HGET", key, "prompt") == b"Convert 100 USD to EUR"


@pytest.mark.parametrize("variant", [
    "what is the capital of france",
    "What's the capital of France??",
    "\u201cWhat is the capital of France?\u201d",
])
def test_near_repeats_are_exact_hits_without_embedding(envoy, llm, embed_openai, redis_server, variant):
    store(envoy, redis_server, "serial", "What is the capital of France?", 1)
    calls = embed_openai.calls
    r = ask(envoy, "serial", variant)
    assert_status(r, "HIT", match="exact")
    assert embed_openai.calls == calls, "the canonical exact tier needs no embedding"
    assert llm.calls == 1


def test_canonical_form_keeps_different_questions_apart(envoy, redis_server):
    store(envoy, redis_server, "serial", "What is the capital of France?", 1)
    r = ask(envoy, "serial", "What is the capital of Spain?")
    assert r.headers.get("x-cache-match") != "exact", explain(r)


def test_wso2_sample_payload_caches(envoy, llm, redis_server):
    # WSO2's sample: one system message, an Azure OpenAI deployment path, no model in the body.
    path = "/openai/deployments/gpt-4o/chat/completions?api-version=2024-06-01"
    body = {"messages": [{"role": "system", "content": "How do I reset my google account password?"}]}
    r1 = ask(envoy, "verify", body=body, path=path)
    assert_status(r1, "MISS")
    wait_stored(redis_server, "verify", 1)
    r2 = ask(envoy, "verify", body=body, path=path)
    assert_status(r2, "HIT", match="exact")
    assert r2.json() == r1.json()
    assert llm.calls == 1
    # A turn that continues after a tool result still bypasses.
    tool_turn = {"messages": [{"role": "user", "content": "weather?"},
                              {"role": "assistant", "tool_calls": [{"id": "1", "type": "function",
                                                                    "function": {"name": "w", "arguments": "{}"}}]},
                              {"role": "tool", "tool_call_id": "1", "content": "sunny"}]}
    assert_status(ask(envoy, "verify", body=tool_turn, path=path), "BYPASS", reason="not-cacheable")
