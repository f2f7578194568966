"""Cache semantics end to end: partitions, embedded text, the exact tier, request headers, what is
never stored, resource-level rules and metrics. Real Envoy + real .wasm + real Redis (RediSearch),
stand-in LLM and embedding servers. Names from docs/contract.md.

One Envoy serves these sites (one listener each, each with its own index and key prefix):
  main     threshold 0.15, maxThreshold 0.30, ttl 300 s, maxTtl 600 s, store.maxTemperature 1.0,
           embedding.parallel false (the exact tier answers before any embedding call),
           an extra Envoy route `main_alt` (/alt/ -> same upstream)
  shared   partition.tenant false (one cache for every caller), skipHeader x-bypass-cache
  tenanthdr partition.tenantHeaders [x-tenant-id]
  ctxwin   partition.contextWindow 2
  lastn    embed.lastUserMessages 2
  tools    store.toolCalls true
  noroute  partition.route false (an extra route /alt/ -> same upstream)
  small    maxRequestBodyBytes 2000, maxResponseBodyBytes 250
  rules    threshold 0.05 (strict) with rules: /faq/ loose, /faq/special/ off (shadowed), /off/ off,
           routeName "premium" loose, pathTemplate /tenants/{tenant}/v1/chat/completions ttl 77 s

Distances below come from the embedding stand-in's hashed bag of words (standins.cosine_distance);
each test asserts the geometry it relies on before using it.
"""
from __future__ import annotations

import json
import re
import time
from functools import partial

import pytest
import requests

import harness
from harness import BASE, FAR, MID, NEAR, REWRITE_TO_V1, UNRELATED  # prompt geometry (bag-of-words stand-in)
from harness import Site, assert_status, cache, chat_body, explain, policy_for, wait_counter, wait_stored
from standins import cosine_distance

CLIENT_AUTH = "Bearer sk-client-semantics-A"
OTHER_AUTH = "Bearer sk-client-semantics-B"
ask = partial(harness.ask, auth=CLIENT_AUTH)
pytestmark = pytest.mark.usefixtures("clean_keys")

MAIN_THRESHOLD = 0.15
MAIN_MAX_THRESHOLD = 0.30
MAIN_TTL = 300
MAIN_MAX_TTL = 600
RULES_THRESHOLD = 0.05
LOOSE = 0.30
FAQ_MAX = 0.40
TEMPLATE_TTL = 77



# ------------------------------------------------------------------------------------------------
# fixtures and helpers
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def envoy(envoy_launcher, embed_openai, redis_server):
    eo = embed_openai
    rules = [
        {"name": "faq", "match": {"pathPrefix": "/faq/", "methods": ["POST"]}, "threshold": LOOSE,
         "maxThreshold": FAQ_MAX},
        # shadowed by `faq` (first match wins): must never apply
        {"name": "faq-special-off", "match": {"pathPrefix": "/faq/special/"}, "enabled": False},
        {"name": "off", "match": {"pathPrefix": "/off/"}, "enabled": False},
        {"name": "premium", "match": {"routeName": "premium"}, "threshold": LOOSE},
        {"name": "open", "match": {"pathPrefix": "/open/"}, "partition": {"tenant": False},
         "store": {"toolCalls": True}, "embed": {"lastUserMessages": 2}},
        {"name": "tenant-tmpl", "match": {"pathTemplate": "/tenants/{tenant}/v1/chat/completions"},
         "ttlSeconds": TEMPLATE_TTL},
    ]
    rule_routes = [
        {"name": "premium", "match": {"prefix": "/premium/"},
         "route": {"cluster": "llm", "timeout": "30s", "regex_rewrite": REWRITE_TO_V1}},
        {"name": "rewritten", "match": {"safe_regex": {"regex": "^/(faq|off|tenants|open)/.*"}},
         "route": {"cluster": "llm", "timeout": "30s", "regex_rewrite": REWRITE_TO_V1}},
    ]
    sites = [
        Site("main", policy_for("main", eo, threshold=MAIN_THRESHOLD, ttl=MAIN_TTL, parallel=False,
                                maxThreshold=MAIN_MAX_THRESHOLD, maxTtlSeconds=MAIN_MAX_TTL,
                                store={"maxTemperature": 1.0}),
             routes=[{"name": "main_alt", "match": {"prefix": "/alt/"},
                      "route": {"cluster": "llm", "timeout": "30s", "regex_rewrite": REWRITE_TO_V1}}]),
        Site("shared", policy_for("shared", eo, threshold=MAIN_THRESHOLD, partition={"tenant": False},
                                  skipHeader="x-bypass-cache")),
        Site("tenanthdr", policy_for("tenanthdr", eo, threshold=MAIN_THRESHOLD,
                                     partition={"tenantHeaders": ["x-tenant-id"]})),
        Site("ctxwin", policy_for("ctxwin", eo, threshold=MAIN_THRESHOLD, partition={"contextWindow": 2})),
        Site("lastn", dict(policy_for("lastn", eo, threshold=MAIN_THRESHOLD), embed={"lastUserMessages": 2})),
        Site("tools", policy_for("tools", eo, threshold=MAIN_THRESHOLD, store={"toolCalls": True})),
        Site("noroute", policy_for("noroute", eo, threshold=MAIN_THRESHOLD, partition={"route": False}),
             routes=[{"name": "noroute_alt", "match": {"prefix": "/alt/"},
                      "route": {"cluster": "llm", "timeout": "30s", "regex_rewrite": REWRITE_TO_V1}}]),
        Site("small", policy_for("small", eo, threshold=MAIN_THRESHOLD, maxRequestBodyBytes=2000,
                                 maxResponseBodyBytes=250)),
        Site("rules", policy_for("rules", eo, threshold=RULES_THRESHOLD, rules=rules), routes=rule_routes),
    ]
    return envoy_launcher(sites)


def content(r: requests.Response) -> str:
    return r.json()["choices"][0]["message"]["content"]


def assert_not_stored(envoy, redis_server, site: str, skipped_before: int):
    """The filter counts store_skipped when it decides not to store: wait for that, then make sure
    nothing landed (each miss has exactly one store outcome: no store can follow a skip)."""
    wait_counter(envoy, "store_skipped", skipped_before + 1)
    assert redis_server.keys(f"sc_{site}:*") == []


def miss_and_store(envoy, redis_server, site, prompt=None, n_expected=1, **kw) -> requests.Response:
    r = ask(envoy, site, prompt, **kw)
    assert_status(r, "MISS")
    wait_stored(redis_server, site, n_expected)
    return r


def entry(redis_server, key: str) -> dict:
    raw = redis_server.command("HGETALL", key)
    return {k.decode(): v for k, v in zip(raw[::2], raw[1::2])}


# ------------------------------------------------------------------------------------------------
# exact tier and normalisation
# ------------------------------------------------------------------------------------------------
def test_exact_hit_makes_no_embedding_call(envoy, llm, embed_openai, redis_server):
    prompt = "Name the tallest mountain in Africa"
    r1 = miss_and_store(envoy, redis_server, "main", prompt)
    assert embed_openai.calls == 1
    r2 = ask(envoy, "main", prompt)
    assert_status(r2, "HIT", match="exact")
    assert r2.headers["x-cache-distance"] == "0.0000", explain(r2)
    assert re.fullmatch(r"\d+", r2.headers.get("age", "")), explain(r2)
    assert int(r2.headers["age"]) <= 5
    assert r2.json() == r1.json()
    assert embed_openai.calls == 1, "an exact hit must be answered before any embedding call"
    assert llm.calls == 1


def test_semantic_hit_needs_embedding_call(envoy, llm, embed_openai, redis_server):
    d = cosine_distance(BASE, NEAR)
    assert 0 < d < MAIN_THRESHOLD, d
    miss_and_store(envoy, redis_server, "main", BASE)
    r = ask(envoy, "main", NEAR)
    assert_status(r, "HIT", match="semantic")
    assert float(r.headers["x-cache-distance"]) == pytest.approx(d, abs=2e-3)
    assert embed_openai.calls == 2
    assert llm.calls == 1


@pytest.mark.parametrize("variant", [
    "  What is the   capital of\u00a0Peru? \n",      # spaces, NBSP, newline
    "What\tis the capital\nof Peru?",                  # tabs and newlines
    "\uff37hat is the capital of Peru\uff1f",          # full-width W and question mark (NFKC)
], ids=["spaces", "tabs-newlines", "nfkc-fullwidth"])
def test_normalised_text_hits_exact_tier(envoy, llm, embed_openai, redis_server, variant):
    miss_and_store(envoy, redis_server, "main", "What is the capital of Peru?")
    calls = embed_openai.calls
    r = ask(envoy, "main", variant)
    assert_status(r, "HIT", match="exact")
    assert embed_openai.calls == calls, "normalised text must hit the exact tier without embedding"
    assert llm.calls == 1


def test_text_parts_equal_plain_string(envoy, llm, embed_openai, redis_server):
    miss_and_store(envoy, redis_server, "main", "What is the capital of Chile?")
    parts = [{"type": "text", "text": "What is the"}, {"type": "text", "text": "capital of Chile?"}]
    r = ask(envoy, "main", messages=[{"role": "user", "content": parts}])
    assert_status(r, "HIT", match="exact")
    assert llm.calls == 1


def test_chunked_request_body_is_buffered(envoy, llm, redis_server):
    body = chat_body("Which is the longest river in South America?")
    data = json.dumps(body).encode()

    def slowly():
        for i in range(0, len(data), 16):
            yield data[i:i + 16]
            time.sleep(0.002)

    h = {"authorization": CLIENT_AUTH, "content-type": "application/json"}
    r = requests.post(envoy.url("main"), data=slowly(), headers=h, timeout=20)
    assert_status(r, "MISS")
    assert llm.last()["json"] == body
    wait_stored(redis_server, "main")
    r = requests.post(envoy.url("main"), data=slowly(), headers=h, timeout=20)
    assert_status(r, "HIT", match="exact")
    assert llm.calls == 1


def test_azure_deployment_path_is_the_model(envoy, llm, redis_server):
    def path(dep):
        return f"/openai/deployments/{dep}/chat/completions?api-version=2024-10-21"

    body = {"messages": [{"role": "user", "content": "Name the three states of matter"}]}  # no model
    hdrs = {"authorization": None, "api-key": "azure-client-key"}
    r = ask(envoy, "main", body=body, path=path("gpt4o-prod"), headers=hdrs)
    assert_status(r, "MISS")
    assert llm.last()["path"] == "/openai/deployments/gpt4o-prod/chat/completions"
    keys = wait_stored(redis_server, "main")
    assert redis_server.command("HGET", keys[0], "model") == b"azure/gpt4o-prod"
    assert_status(ask(envoy, "main", body=body, path=path("gpt4o-prod"), headers=hdrs), "HIT", match="exact")
    assert_status(ask(envoy, "main", body=body, path=path("gpt35-test"), headers=hdrs), "MISS")
    assert llm.calls == 2


def test_embedded_text_is_normalised(envoy, embed_openai, redis_server):
    ask(envoy, "main", "  Spell\u00a0the   word\n\tnecessary  ")
    assert embed_openai.last()["json"]["input"] in ("Spell the word necessary", ["Spell the word necessary"])


# ------------------------------------------------------------------------------------------------
# partition
# ------------------------------------------------------------------------------------------------
def test_tenant_partition_by_authorization(envoy, llm, redis_server):
    prompt = "What is the speed of light in vacuum"
    miss_and_store(envoy, redis_server, "main", prompt)
    r = ask(envoy, "main", prompt, headers={"authorization": OTHER_AUTH})
    assert_status(r, "MISS")
    assert llm.calls == 2
    wait_stored(redis_server, "main", 2)
    assert_status(ask(envoy, "main", prompt), "HIT", match="exact")
    assert_status(ask(envoy, "main", prompt, headers={"authorization": OTHER_AUTH}), "HIT", match="exact")
    assert llm.calls == 2
    # the credential is hashed: it never appears in Redis
    for k in redis_server.keys("sc_main:*"):
        e = entry(redis_server, k)
        assert b"sk-client-semantics" not in b"".join(e.values())


def test_tenant_partition_by_api_key(envoy, llm, redis_server):
    prompt = "How far is the Moon from the Earth"
    miss_and_store(envoy, redis_server, "main", prompt, headers={"authorization": None, "api-key": "key-one"})
    r = ask(envoy, "main", prompt, headers={"authorization": None, "api-key": "key-two"})
    assert_status(r, "MISS")
    r = ask(envoy, "main", prompt, headers={"authorization": None, "api-key": "key-one"})
    assert_status(r, "HIT", match="exact")
    # a caller without any credential header is another partition again
    r = ask(envoy, "main", prompt, headers={"authorization": None})
    assert_status(r, "MISS")
    assert llm.calls == 3


def test_shared_cache_without_tenant_partition(envoy, llm, redis_server):
    prompt = "Who painted the Mona Lisa"
    miss_and_store(envoy, redis_server, "shared", prompt)
    r = ask(envoy, "shared", prompt, headers={"authorization": OTHER_AUTH})
    assert_status(r, "HIT", match="exact")
    r = ask(envoy, "shared", prompt, headers={"authorization": None, "api-key": "whatever"})
    assert_status(r, "HIT", match="exact")
    assert llm.calls == 1


def test_configured_tenant_headers(envoy, llm, redis_server):
    prompt = "What is the chemical symbol for gold"
    miss_and_store(envoy, redis_server, "tenanthdr", prompt, headers={"x-tenant-id": "acme"})
    # authorization is not a tenant header on this site: another credential, same tenant -> HIT
    r = ask(envoy, "tenanthdr", prompt, headers={"x-tenant-id": "acme", "authorization": OTHER_AUTH})
    assert_status(r, "HIT", match="exact")
    r = ask(envoy, "tenanthdr", prompt, headers={"x-tenant-id": "globex"})
    assert_status(r, "MISS")
    assert llm.calls == 2


def test_user_cache_key_partition(envoy, llm, redis_server):
    prompt = "Convert 100 Fahrenheit to Celsius"
    miss_and_store(envoy, redis_server, "main", prompt)
    # no header == the default key
    assert_status(ask(envoy, "main", prompt, headers={"x-semantic-cache-key": "_default_"}), "HIT", match="exact")
    r = ask(envoy, "main", prompt, headers={"x-semantic-cache-key": "team-a"})
    assert_status(r, "MISS")
    wait_stored(redis_server, "main", 2)
    assert_status(ask(envoy, "main", prompt, headers={"x-semantic-cache-key": "team-a"}), "HIT", match="exact")
    assert_status(ask(envoy, "main", prompt, headers={"x-semantic-cache-key": "team-b"}), "MISS")
    # the partition is a hard pre-filter: a paraphrase does not cross it either
    d = cosine_distance(BASE, NEAR)
    assert d < MAIN_THRESHOLD
    miss_and_store(envoy, redis_server, "main", BASE, n_expected=4, headers={"x-semantic-cache-key": "team-a"})
    assert_status(ask(envoy, "main", NEAR, headers={"x-semantic-cache-key": "team-c"}), "MISS")
    assert_status(ask(envoy, "main", NEAR, headers={"x-semantic-cache-key": "team-a"}), "HIT", match="semantic")


def test_route_partition_by_envoy_route_name(envoy, llm, redis_server):
    # no rule on `main`: the Envoy route name (main_alt vs main_default) is part of the partition
    prompt = "Which planet has the most moons"
    miss_and_store(envoy, redis_server, "main", prompt, path="/v1/chat/completions")
    r = ask(envoy, "main", prompt, path="/alt/v1/chat/completions")
    assert cache(r) == "MISS", (
        "an entry stored through route `main_default` answered a request on route `main_alt`: the filter "
        "does not see the Envoy route name (partition.route) -- " + explain(r))
    assert llm.calls == 2
    wait_stored(redis_server, "main", 2)
    assert_status(ask(envoy, "main", prompt, path="/alt/v1/chat/completions"), "HIT", match="exact")


def test_route_partition_off_shares_across_routes(envoy, llm, redis_server):
    prompt = "Which planet has the fewest moons"
    miss_and_store(envoy, redis_server, "noroute", prompt, path="/v1/chat/completions")
    assert_status(ask(envoy, "noroute", prompt, path="/alt/v1/chat/completions"), "HIT", match="exact")
    assert llm.calls == 1


def test_tenant_partition_applies_to_semantic_tier(envoy, llm, redis_server):
    assert cosine_distance(BASE, NEAR) < MAIN_THRESHOLD
    miss_and_store(envoy, redis_server, "main", BASE)
    assert_status(ask(envoy, "main", NEAR, headers={"authorization": OTHER_AUTH}), "MISS")
    assert_status(ask(envoy, "main", NEAR), "HIT", match="semantic")
    assert llm.calls == 2


def test_model_partition_is_hard_prefilter(envoy, llm, redis_server):
    miss_and_store(envoy, redis_server, "main", BASE, model="gpt-4o-mini")
    r = ask(envoy, "main", NEAR, model="gpt-4o")
    assert_status(r, "MISS")
    assert r.json()["model"] == "gpt-4o"


def _with_system(prompt, system):
    return [{"role": "system", "content": system}, {"role": "user", "content": prompt}]


TOOL_A = [{"type": "function", "function": {"name": "a", "parameters": {"type": "object"}}}]
TOOL_B = [{"type": "function", "function": {"name": "b", "parameters": {"type": "object"}}}]

ANSWER_VARIANTS = {
    "system-prompt": ({"messages": _with_system("Q", "You are terse.")},
                      {"messages": _with_system("Q", "You are verbose.")}),
    "earlier-turns": ({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                                    {"role": "user", "content": "Q"}]},
                      {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go away"},
                                    {"role": "user", "content": "Q"}]}),
    "tools": ({"tools": TOOL_A}, {"tools": TOOL_B}),
    "tools-vs-none": ({}, {"tools": TOOL_A}),
    "response_format": ({}, {"response_format": {"type": "json_object"}}),
    "max_tokens": ({"max_tokens": 50}, {"max_tokens": 51}),
    "max_completion_tokens": ({}, {"max_completion_tokens": 20}),
    "stop": ({}, {"stop": ["\n"]}),
    "seed": ({"seed": 1}, {"seed": 2}),
    "logit_bias": ({}, {"logit_bias": {"50256": -100}}),
    "tool_choice": ({"tool_choice": "auto"}, {"tool_choice": "none"}),
}


@pytest.mark.parametrize("name", list(ANSWER_VARIANTS))
def test_answer_changing_fields_partition(envoy, llm, redis_server, name):
    a, b = ANSWER_VARIANTS[name]
    prompt = f"Describe the Eiffel Tower ({name})"

    def body(extra):
        extra = json.loads(json.dumps(extra).replace('"Q"', json.dumps(prompt)))
        return chat_body(prompt, **extra)

    miss_and_store(envoy, redis_server, "main", body=body(a))
    assert_status(ask(envoy, "main", body=body(a)), "HIT", match="exact")
    r = ask(envoy, "main", body=body(b))
    assert_status(r, "MISS")
    assert llm.calls == 2


def test_sampling_parameters_do_not_partition(envoy, llm, redis_server):
    prompt = "Give one synonym for happy"
    miss_and_store(envoy, redis_server, "main", body=chat_body(prompt, temperature=0.2))
    for extra in ({"temperature": 0.9}, {"top_p": 0.5}, {}, {"presence_penalty": 0.5, "frequency_penalty": 0.1},
                  {"user": "someone-else"}):
        r = ask(envoy, "main", body=chat_body(prompt, **extra))
        assert_status(r, "HIT", match="exact")
    assert llm.calls == 1


def _conversation(old_answer, recent_answer, last="What about Mars?"):
    return [
        {"role": "system", "content": "You are an astronomy tutor."},
        {"role": "user", "content": "How long is a day on Venus?"},
        {"role": "assistant", "content": old_answer},
        {"role": "user", "content": "And on Jupiter?"},
        {"role": "assistant", "content": recent_answer},
        {"role": "user", "content": last},
    ]


def test_context_window_limits_history(envoy, llm, redis_server):
    miss_and_store(envoy, redis_server, "ctxwin", messages=_conversation("243 Earth days.", "About 10 hours."))
    # older than the 2-message window: not part of the partition -> exact hit
    r = ask(envoy, "ctxwin", messages=_conversation("Roughly 243 days.", "About 10 hours."))
    assert_status(r, "HIT", match="exact")
    # inside the window -> another partition
    r = ask(envoy, "ctxwin", messages=_conversation("243 Earth days.", "Just under 10 hours."))
    assert_status(r, "MISS")
    # the system prompt always counts, whatever the window
    msgs = _conversation("243 Earth days.", "About 10 hours.")
    msgs[0]["content"] = "You are a poet."
    assert_status(ask(envoy, "ctxwin", messages=msgs), "MISS")
    assert llm.calls == 3


def test_default_context_is_whole_history(envoy, llm, redis_server):
    miss_and_store(envoy, redis_server, "main", messages=_conversation("243 Earth days.", "About 10 hours."))
    r = ask(envoy, "main", messages=_conversation("Roughly 243 days.", "About 10 hours."))
    assert_status(r, "MISS")
    # whitespace in context messages is normalised too
    r = ask(envoy, "main", messages=_conversation("  243   Earth\u00a0days. ", "About 10 hours."))
    assert_status(r, "HIT", match="exact")


def test_last_user_messages_are_embedded(envoy, llm, embed_openai, redis_server):
    first = "Tell me about the history of the Roman Empire"
    first_para = "Just tell me about the history of the Roman Empire"
    second = "Focus on its economy"

    def convo(u1):
        return [{"role": "user", "content": u1}, {"role": "assistant", "content": "Sure."},
                {"role": "user", "content": second}]

    d = cosine_distance(f"{first}\n{second}", f"{first_para}\n{second}")
    assert 0 < d < MAIN_THRESHOLD, d
    assert cosine_distance(f"{first}\n{second}", f"{UNRELATED}\n{second}") > MAIN_THRESHOLD
    miss_and_store(envoy, redis_server, "lastn", messages=convo(first))
    inp = embed_openai.last()["json"]["input"]
    inp = inp[0] if isinstance(inp, list) else inp
    assert inp == f"{first}\n{second}", inp
    # the earlier user message is embedded (compared by meaning), not hashed
    r = ask(envoy, "lastn", messages=convo(first_para))
    assert_status(r, "HIT", match="semantic")
    assert float(r.headers["x-cache-distance"]) == pytest.approx(d, abs=2e-3)
    r = ask(envoy, "lastn", messages=convo(UNRELATED))
    assert_status(r, "MISS")
    # with the default (1 message), the earlier user message is context: any change -> MISS
    miss_and_store(envoy, redis_server, "main", messages=convo(first))
    assert_status(ask(envoy, "main", messages=convo(first_para)), "MISS")


# ------------------------------------------------------------------------------------------------
# request headers
# ------------------------------------------------------------------------------------------------
def test_threshold_header_tighter_turns_hit_into_miss(envoy, llm, redis_server):
    d = cosine_distance(BASE, NEAR)
    assert 0.03 < d < MAIN_THRESHOLD, d
    miss_and_store(envoy, redis_server, "main", BASE)
    assert_status(ask(envoy, "main", NEAR), "HIT", match="semantic")
    r = ask(envoy, "main", NEAR, headers={"x-semantic-distance": "0.03"})
    assert_status(r, "MISS")
    assert content(r) == f"echo: {NEAR}"
    assert llm.calls == 2


def test_threshold_header_looser_up_to_max(envoy, llm, redis_server):
    d = cosine_distance(BASE, MID)
    assert MAIN_THRESHOLD < d < MAIN_MAX_THRESHOLD, d
    miss_and_store(envoy, redis_server, "main", BASE)
    r = ask(envoy, "main", MID, headers={"x-semantic-distance": "0.25"})
    assert_status(r, "HIT", match="semantic")
    assert float(r.headers["x-cache-distance"]) == pytest.approx(d, abs=2e-3)
    # beyond maxThreshold: clamped to 0.30, which still covers this distance
    assert_status(ask(envoy, "main", MID, headers={"x-semantic-distance": "1.5"}), "HIT", match="semantic")
    # without the header the policy threshold (0.15) applies
    assert_status(ask(envoy, "main", MID), "MISS")
    assert llm.calls == 2


def test_threshold_header_beyond_max_is_clamped(envoy, llm, redis_server):
    d = cosine_distance(BASE, FAR)
    assert MAIN_MAX_THRESHOLD < d < 1.5, d
    miss_and_store(envoy, redis_server, "main", BASE)
    r = ask(envoy, "main", FAR, headers={"x-semantic-distance": "1.5"})
    assert_status(r, "MISS")
    assert llm.calls == 2


def test_threshold_header_garbage_uses_policy(envoy, llm, redis_server):
    miss_and_store(envoy, redis_server, "main", BASE)
    assert_status(ask(envoy, "main", NEAR, headers={"x-semantic-distance": "abc"}), "HIT", match="semantic")
    assert_status(ask(envoy, "main", MID, headers={"x-semantic-distance": "abc"}), "MISS")


def test_no_cache_skips_lookup_but_stores(envoy, llm, embed_openai, redis_server):
    prompt = "What is the square root of 144"
    r = ask(envoy, "main", prompt, headers={"cache-control": "no-cache"})
    assert_status(r, "MISS")
    wait_stored(redis_server, "main")
    assert_status(ask(envoy, "main", prompt), "HIT", match="exact")
    assert llm.calls == 1
    # on a stored prompt, no-cache still goes upstream (and refreshes the entry)
    r = ask(envoy, "main", prompt, headers={"cache-control": "no-cache"})
    assert_status(r, "MISS")
    assert llm.calls == 2
    assert r.headers.get("x-standin-call") == "2"


def test_no_store_bypasses_lookup_and_store(envoy, llm, redis_server):
    prompt = "What is the square root of 169"
    before = envoy.counter("bypass")
    r = ask(envoy, "main", prompt, headers={"cache-control": "no-store"})
    assert_status(r, "BYPASS", reason="no-store")
    assert envoy.counter("bypass") == before + 1
    time.sleep(0.3)
    assert redis_server.keys("sc_main:*") == []
    assert_status(ask(envoy, "main", prompt), "MISS")
    wait_stored(redis_server, "main")
    # and a stored entry is not served to a no-store request either
    r = ask(envoy, "main", prompt, headers={"cache-control": "private, no-store"})
    assert_status(r, "BYPASS", reason="no-store")
    assert llm.calls == 3


@pytest.mark.parametrize("max_age,low,high", [
    (120, 100, 120),                         # within the cap
    (99999, MAIN_MAX_TTL - 20, MAIN_MAX_TTL),  # capped by maxTtlSeconds
    (None, MAIN_TTL - 20, MAIN_TTL),         # policy ttlSeconds
])
def test_max_age_sets_ttl(envoy, redis_server, max_age, low, high):
    headers = {"cache-control": f"max-age={max_age}"} if max_age else {}
    r = ask(envoy, "main", f"Name a prime number larger than {max_age}", headers=headers)
    assert_status(r, "MISS")
    keys = wait_stored(redis_server, "main")
    ttl = redis_server.command("TTL", keys[0])
    assert low < ttl <= high, (max_age, ttl)


def test_max_age_zero_is_no_store(envoy, redis_server):
    r = ask(envoy, "main", "Name a prime number below ten", headers={"cache-control": "max-age=0"})
    assert_status(r, "BYPASS", reason="no-store")


def test_settings_overrides_disable(envoy, llm, redis_server):
    prompt = "What is the largest ocean on Earth"
    miss_and_store(envoy, redis_server, "main", prompt)
    r = ask(envoy, "main", prompt, headers={"x-settings-overrides": '{"semantic_cache_enabled": false}'})
    assert_status(r, "BYPASS", reason="disabled")
    assert llm.calls == 2
    r = ask(envoy, "main", prompt, headers={"x-settings-overrides": '{"semantic_cache_enabled": true}'})
    assert_status(r, "HIT", match="exact")
    # a disabled request does not store either
    other = "What is the smallest ocean on Earth"
    ask(envoy, "main", other, headers={"x-settings-overrides": '{"semantic_cache_enabled": false}'})
    time.sleep(0.3)
    assert len(redis_server.keys("sc_main:*")) == 1


def test_skip_header_default_and_configured(envoy, llm, redis_server):
    prompt = "What is the freezing point of water"
    miss_and_store(envoy, redis_server, "main", prompt)
    assert_status(ask(envoy, "main", prompt, headers={"x-semantic-cache-skip": "1"}), "BYPASS", reason="skip-header")
    miss_and_store(envoy, redis_server, "shared", prompt)
    # on `shared` the skip header is x-bypass-cache; the default name has no effect there
    assert_status(ask(envoy, "shared", prompt, headers={"x-semantic-cache-skip": "1"}), "HIT", match="exact")
    assert_status(ask(envoy, "shared", prompt, headers={"x-bypass-cache": "yes"}), "BYPASS", reason="skip-header")
    assert llm.calls == 4


# ------------------------------------------------------------------------------------------------
# never stored
# ------------------------------------------------------------------------------------------------
def test_tool_call_answer_not_stored(envoy, llm, redis_server):
    llm.tool_calls = True
    skipped = envoy.counter("store_skipped")
    r = ask(envoy, "main", "What is the weather in Paris")
    assert_status(r, "MISS")
    assert r.json()["choices"][0]["message"]["tool_calls"]
    assert_not_stored(envoy, redis_server, "main", skipped)
    assert_status(ask(envoy, "main", "What is the weather in Paris"), "MISS")
    assert llm.calls == 2


def test_tool_call_answer_stored_when_allowed(envoy, llm, redis_server):
    llm.tool_calls = True
    r1 = miss_and_store(envoy, redis_server, "tools", "What is the weather in Rome")
    llm.tool_calls = False
    r2 = ask(envoy, "tools", "What is the weather in Rome")
    assert_status(r2, "HIT", match="exact")
    assert r2.json() == r1.json()
    assert r2.json()["choices"][0]["finish_reason"] == "tool_calls"
    assert llm.calls == 1


def test_n_greater_than_one_not_stored(envoy, llm, redis_server):
    skipped = envoy.counter("store_skipped")
    r = ask(envoy, "main", "Suggest a name for a cat", n=2)
    assert_status(r, "MISS")
    assert_not_stored(envoy, redis_server, "main", skipped)


def test_logprobs_not_stored(envoy, llm, redis_server):
    skipped = envoy.counter("store_skipped")
    assert_status(ask(envoy, "main", "Suggest a name for a dog", logprobs=True), "MISS")
    assert_not_stored(envoy, redis_server, "main", skipped)


def test_temperature_above_store_max(envoy, llm, redis_server):
    prompt = "Write a one line poem about rain"
    skipped = envoy.counter("store_skipped")
    assert_status(ask(envoy, "main", prompt, temperature=1.5), "MISS")
    assert_not_stored(envoy, redis_server, "main", skipped)
    assert_status(ask(envoy, "main", prompt, temperature=1.5), "MISS")
    # at the limit it is stored, and a hot request may still be answered from the cache
    miss_and_store(envoy, redis_server, "main", prompt, temperature=1.0)
    assert_status(ask(envoy, "main", prompt, temperature=1.5), "HIT", match="exact")
    assert llm.calls == 3


def test_error_answer_not_stored(envoy, llm, redis_server):
    llm.status = 503
    skipped = envoy.counter("store_skipped")
    r = ask(envoy, "main", "What year did the Berlin Wall fall")
    assert r.status_code == 503 and cache(r) == "MISS", explain(r)
    assert_not_stored(envoy, redis_server, "main", skipped)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_response_above_max_response_bytes_not_stored(envoy, llm, redis_server, stream):
    prompt = "Tell me a fairly long story about a lighthouse keeper and a storm at sea"
    skipped = envoy.counter("store_skipped")
    r = ask(envoy, "small", prompt, stream=stream)
    assert_status(r, "MISS")
    assert len(r.content) > 250
    if stream:
        assert r.content.endswith(b"data: [DONE]\n\n")
    else:
        assert content(r) == f"echo: {prompt}"  # passed through whole
    assert_not_stored(envoy, redis_server, "small", skipped)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_request_above_max_request_bytes_bypasses(envoy, llm, redis_server, chunked):
    body = chat_body("Summarise this: " + "lorem ipsum " * 250)
    data = json.dumps(body).encode()
    assert len(data) > 2000
    h = {"authorization": CLIENT_AUTH, "content-type": "application/json"}
    payload = (data[i:i + 500] for i in range(0, len(data), 500)) if chunked else data
    r = requests.post(envoy.url("small"), data=payload, headers=h, timeout=20)
    assert_status(r, "BYPASS", reason="body-too-large")
    assert llm.last()["json"] == body, "the body must reach the upstream intact"
    time.sleep(0.2)
    assert redis_server.keys("sc_small:*") == []


def test_hit_does_not_rewrite_entry(envoy, llm, redis_server):
    prompt = "How many bones are in the human body"
    r1 = miss_and_store(envoy, redis_server, "main", prompt)
    key = redis_server.keys("sc_main:*")[0]
    time.sleep(0.1)
    old_created = int(time.time()) - 100
    assert redis_server.command("HSET", key, "created", str(old_created)) == 0
    assert redis_server.command("EXPIRE", key, 50) == 1
    before = entry(redis_server, key)
    ok = envoy.counter("store_ok")
    r2 = ask(envoy, "main", prompt)
    assert_status(r2, "HIT", match="exact")
    assert 99 <= int(r2.headers["age"]) <= 103, explain(r2)
    r3 = ask(envoy, "main", "How many bones are actually in the  human body")  # semantic hit
    assert_status(r3, "HIT", match="semantic")
    time.sleep(0.4)
    assert entry(redis_server, key) == before
    assert 0 < redis_server.command("TTL", key) <= 50
    assert redis_server.keys("sc_main:*") == [key]
    assert envoy.counter("store_ok") == ok
    assert r2.json() == r1.json() == r3.json()


# ------------------------------------------------------------------------------------------------
# resource-level rules
# ------------------------------------------------------------------------------------------------
FAQ = "/faq/v1/chat/completions"
V1 = "/v1/chat/completions"


def test_rules_loose_vs_strict_route(envoy, llm, redis_server):
    d = cosine_distance(BASE, MID)
    assert RULES_THRESHOLD < d < LOOSE, d
    miss_and_store(envoy, redis_server, "rules", BASE, path=FAQ)
    miss_and_store(envoy, redis_server, "rules", BASE, path=V1, n_expected=2)
    r = ask(envoy, "rules", MID, path=FAQ)
    assert_status(r, "HIT", match="semantic")
    r = ask(envoy, "rules", MID, path=V1)
    assert_status(r, "MISS")
    assert llm.calls == 3
    assert llm.last()["path"] == V1  # the route rewrote the faq path; the stand-in saw /v1/...


def test_rules_partition_by_rule_name(envoy, llm, redis_server):
    prompt = "What are your opening hours"
    miss_and_store(envoy, redis_server, "rules", prompt, path=V1)
    # same prompt, other resource: another partition
    assert_status(ask(envoy, "rules", prompt, path=FAQ), "MISS")
    wait_stored(redis_server, "rules", 2)
    assert_status(ask(envoy, "rules", prompt, path=FAQ), "HIT", match="exact")
    # /faq/special/ is matched by `faq` first (first match wins), so it shares faq's partition
    assert_status(ask(envoy, "rules", prompt, path="/faq/special/v1/chat/completions"), "HIT", match="exact")
    assert llm.calls == 2


def test_rule_max_threshold(envoy, llm, redis_server):
    d = cosine_distance(BASE, FAR)
    assert LOOSE < d < FAQ_MAX, d
    miss_and_store(envoy, redis_server, "rules", BASE, path=FAQ)
    r = ask(envoy, "rules", FAR, path=FAQ, headers={"x-semantic-distance": "0.9"})  # clamped to 0.40
    assert_status(r, "HIT", match="semantic")
    assert_status(ask(envoy, "rules", FAR, path=FAQ), "MISS")  # rule threshold 0.30


def test_rule_overrides_partition_store_embed(envoy, llm, embed_openai, redis_server):
    path = "/open/v1/chat/completions"
    msgs = [{"role": "user", "content": "Plan a trip to Kyoto"}, {"role": "assistant", "content": "Sure."},
            {"role": "user", "content": "Which temples should I see"}]
    llm.tool_calls = True
    miss_and_store(envoy, redis_server, "rules", messages=msgs, path=path)         # toolCalls stored
    inp = embed_openai.last()["json"]["input"]
    assert (inp[0] if isinstance(inp, list) else inp) == "Plan a trip to Kyoto\nWhich temples should I see"
    llm.tool_calls = False
    r = ask(envoy, "rules", messages=msgs, path=path, headers={"authorization": OTHER_AUTH})  # tenant off
    assert_status(r, "HIT", match="exact")
    assert r.json()["choices"][0]["finish_reason"] == "tool_calls"
    # the defaults still apply elsewhere on the site: per-tenant, tool calls not stored
    assert_status(ask(envoy, "rules", messages=msgs, path=V1), "MISS")
    assert llm.calls == 2


def test_rule_disabled_bypasses(envoy, llm, redis_server):
    prompt = "Where is your head office"
    r = ask(envoy, "rules", prompt, path="/off/v1/chat/completions")
    assert_status(r, "BYPASS", reason="disabled")
    assert content(r) == f"echo: {prompt}"
    time.sleep(0.2)
    assert redis_server.keys("sc_rules:*") == []


def test_rule_route_name_match(envoy, llm, redis_server):
    d = cosine_distance(BASE, MID)
    assert RULES_THRESHOLD < d < LOOSE, d
    path = "/premium/v1/chat/completions"
    miss_and_store(envoy, redis_server, "rules", BASE, path=path)
    r = ask(envoy, "rules", MID, path=path)
    assert cache(r) == "HIT", (
        f"distance {d:.4f} is within the `premium` rule's threshold {LOOSE} but above the default "
        f"{RULES_THRESHOLD}: the rule with match.routeName=premium did not apply -- " + explain(r))
    assert_status(r, "HIT", match="semantic")
    assert llm.calls == 1


def test_rule_path_template_ttl(envoy, llm, redis_server):
    r = ask(envoy, "rules", "Quote a famous line from Shakespeare", path="/tenants/acme/v1/chat/completions")
    assert_status(r, "MISS")
    keys = wait_stored(redis_server, "rules")
    assert TEMPLATE_TTL - 10 < redis_server.command("TTL", keys[0]) <= TEMPLATE_TTL
    # same template, other tenant segment: same rule (name) -> same partition
    r = ask(envoy, "rules", "Quote a famous line from Shakespeare", path="/tenants/globex/v1/chat/completions")
    assert_status(r, "HIT", match="exact")
    # not the template: the default settings (policy ttl 3600)
    ask(envoy, "rules", "Quote a famous line from Moliere", path=V1)
    keys = wait_stored(redis_server, "rules", 2)
    assert max(redis_server.command("TTL", k) for k in keys) > 3000


# ------------------------------------------------------------------------------------------------
# metrics
# ------------------------------------------------------------------------------------------------
METRICS = ["requests", "hit_exact", "hit_semantic", "miss", "bypass", "store_ok", "store_skipped",
           "store_error", "embedding_error", "redis_error"]


def test_metrics_move_as_expected(envoy, llm, redis_server):
    def snap():
        s = envoy.stats()
        return {m: s.get(f"wasmcustom.semantic_cache.{m}", 0) for m in METRICS}

    assert "wasmcustom.semantic_cache.requests" in envoy.stats()
    before = snap()
    miss_and_store(envoy, redis_server, "main", BASE)                       # miss, store_ok
    wait_counter(envoy, "store_ok", before["store_ok"] + 1)
    assert_status(ask(envoy, "main", BASE), "HIT", match="exact")          # hit_exact
    assert_status(ask(envoy, "main", NEAR), "HIT", match="semantic")       # hit_semantic
    assert_status(ask(envoy, "main", BASE, headers={"x-semantic-cache-skip": "1"}), "BYPASS")  # bypass
    assert_status(ask(envoy, "main", UNRELATED, n=2), "MISS")              # miss, store_skipped
    wait_counter(envoy, "store_skipped", before["store_skipped"] + 1)
    time.sleep(0.2)
    after = snap()
    delta = {m: after[m] - before[m] for m in METRICS}
    assert delta == {"requests": 5, "hit_exact": 1, "hit_semantic": 1, "miss": 2, "bypass": 1, "store_ok": 1,
                     "store_skipped": 1, "store_error": 0, "embedding_error": 0, "redis_error": 0}, delta
