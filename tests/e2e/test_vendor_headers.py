"""Other gateways' cache headers end to end (Fastly AI Accelerator, Cloudflare AI Gateway), the
provider partition and each API's credential header as the tenant. Real Envoy + real .wasm + real
Redis (RediSearch); stand-in LLM providers and embedding server.

Sites:
  vend      threshold 0.15, maxThreshold 0.30, ttlSeconds 300, maxTtlSeconds 600; both vendor sets on (the default)
  vendoff   the same with compat.fastly and compat.cloudflare off
  prov      partition.route off; /b/ goes to cluster provider_b (a second LLM stand-in), /a2/ is a
            second route to the default cluster llm
  provoff   the same with partition.provider off as well

Distances come from the embedding stand-in's hashed bag of words (standins.cosine_distance); each
test asserts the geometry it relies on.
"""
from __future__ import annotations

from functools import partial

import pytest

import harness
from harness import BASE, FAR, MID, NEAR, REWRITE_TO_V1, UNRELATED  # prompt geometry (bag-of-words stand-in)
from harness import Site, assert_status, explain, policy_for, static_cluster, wait_stored
from standins import LlmStandIn, cosine_distance

CLIENT_AUTH = "Bearer sk-client-vendor-A"
OTHER_AUTH = "Bearer sk-client-vendor-B"
ask = partial(harness.ask, auth=CLIENT_AUTH)
pytestmark = pytest.mark.usefixtures("clean_keys")

THRESHOLD = 0.15
MAX_THRESHOLD = 0.30
TTL = 300
MAX_TTL = 600

VENDOR_STATUS = ("x-semantic-cache", "cf-aig-cache-status")


@pytest.fixture(scope="module")
def llm_b():
    s = LlmStandIn()
    yield s
    s.close()


@pytest.fixture(scope="module")
def envoy(envoy_launcher, embed_openai, redis_server, llm_b):
    eo = embed_openai

    def pol(site, **kw):
        return policy_for(site, eo, threshold=THRESHOLD, ttl=TTL, maxThreshold=MAX_THRESHOLD,
                          maxTtlSeconds=MAX_TTL, **kw)

    def route(name, prefix, cluster):
        return {"name": name, "match": {"prefix": prefix},
                "route": {"cluster": cluster, "timeout": "30s", "regex_rewrite": REWRITE_TO_V1}}

    prov_routes = lambda site: [route(f"{site}_b", "/b/", "provider_b"), route(f"{site}_a2", "/a2/", "llm")]  # noqa: E731
    sites = [
        Site("vend", pol("vend")),
        Site("vendoff", pol("vendoff", compat={"fastly": False, "cloudflare": False})),
        Site("prov", pol("prov", partition={"route": False}), routes=prov_routes("prov")),
        Site("provoff", pol("provoff", partition={"route": False, "provider": False}), routes=prov_routes("provoff")),
    ]
    clusters = {"provider_b": static_cluster("provider_b", llm_b.port, connect_timeout="2s")}
    return envoy_launcher(sites, clusters=clusters)


def content(r) -> str:
    return r.json()["choices"][0]["message"]["content"]


def vendor_status(r) -> tuple:
    return tuple(r.headers.get(h) for h in VENDOR_STATUS)


def miss_and_store(envoy, redis_server, site, prompt=None, n_expected=1, **kw):
    r = ask(envoy, site, prompt, **kw)
    assert_status(r, "MISS")
    wait_stored(redis_server, site, n_expected)
    return r


def ttl_of_only_entry(redis_server, site: str) -> int:
    [key] = wait_stored(redis_server, site)
    return redis_server.command("TTL", key)


# ------------------------------------------------------------------------------------------------
# Fastly
# ------------------------------------------------------------------------------------------------
def test_fastly_threshold_is_a_similarity_strict(envoy, llm, redis_server):
    d = cosine_distance(BASE, NEAR)
    assert 0.01 < d < THRESHOLD, d
    miss_and_store(envoy, redis_server, "vend", BASE)
    # without the header the policy threshold (0.15) lets the paraphrase hit
    r = ask(envoy, "vend", NEAR)
    assert_status(r, "HIT", match="semantic")
    assert vendor_status(r) == ("HIT", "HIT"), explain(r)
    # similarity 0.99 = distance 0.01: the paraphrase is too far
    r = ask(envoy, "vend", NEAR, headers={"x-semantic-threshold": "0.99"})
    assert_status(r, "MISS")
    assert content(r) == f"echo: {NEAR}"
    assert vendor_status(r) == ("MISS", "MISS"), explain(r)
    assert llm.calls == 2


def test_fastly_threshold_loose_never_beyond_the_operator(envoy, llm, redis_server):
    mid, far = cosine_distance(BASE, MID), cosine_distance(BASE, FAR)
    assert THRESHOLD < mid < MAX_THRESHOLD < far < 0.5, (mid, far)
    miss_and_store(envoy, redis_server, "vend", BASE)
    # similarity 0.5 = distance 0.5, clamped to maxThreshold 0.30: MID hits...
    r = ask(envoy, "vend", MID, headers={"x-semantic-threshold": "0.5"})
    assert_status(r, "HIT", match="semantic")
    assert float(r.headers["x-cache-distance"]) == pytest.approx(mid, abs=2e-3)
    # ...FAR (0.345 < 0.5) does not: the operator's bound wins
    assert_status(ask(envoy, "vend", FAR, headers={"x-semantic-threshold": "0.5"}), "MISS")
    # out-of-range and unreadable similarities are ignored: the policy threshold
    for bad in ("1.5", "-2", "abc"):
        assert_status(ask(envoy, "vend", NEAR, headers={"x-semantic-threshold": bad}), "HIT", match="semantic")
    # and without the header MID is past the policy threshold
    assert_status(ask(envoy, "vend", MID), "MISS")


def test_our_distance_header_beside_fastlys(envoy, llm, redis_server):
    miss_and_store(envoy, redis_server, "vend", BASE)
    # x-semantic-distance (a distance) wins over x-semantic-threshold (a similarity)
    h = {"x-semantic-distance": "0.25", "x-semantic-threshold": "0.99"}
    assert_status(ask(envoy, "vend", MID, headers=h), "HIT", match="semantic")
    assert_status(ask(envoy, "vend", NEAR, headers={"x-semantic-distance": "0.01"}), "MISS")


def test_fastly_overrides_and_key(envoy, llm, redis_server):
    prompt = "Which ocean is the deepest"
    miss_and_store(envoy, redis_server, "vend", prompt)
    r = ask(envoy, "vend", prompt, headers={"x-settings-overrides": '{"semantic_cache_enabled": false}'})
    assert_status(r, "BYPASS", reason="disabled")
    # a BYPASS came from upstream: MISS in both vendors' terms
    assert vendor_status(r) == ("MISS", "MISS"), explain(r)
    assert_status(ask(envoy, "vend", prompt, headers={"x-semantic-cache-key": "team-a"}), "MISS")
    assert llm.calls == 3


# ------------------------------------------------------------------------------------------------
# Cloudflare
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("header", ["cf-aig-skip-cache", "cf-skip-cache"])
def test_cloudflare_skip(envoy, llm, redis_server, header):
    prompt = "Name the largest desert on Earth"
    miss_and_store(envoy, redis_server, "vend", prompt)
    r = ask(envoy, "vend", prompt, headers={header: "true"})
    assert_status(r, "BYPASS", reason="skip-header")
    assert vendor_status(r) == ("MISS", "MISS"), explain(r)
    assert llm.calls == 2
    # "false" (and anything else) does not skip
    assert_status(ask(envoy, "vend", prompt, headers={header: "false"}), "HIT", match="exact")


@pytest.mark.parametrize("headers,expected", [
    ({"cf-aig-cache-ttl": "120"}, 120),            # seconds
    ({"cf-cache-ttl": "90000"}, 90),               # the older header: milliseconds
    ({"cf-aig-cache-ttl": "5"}, 60),               # Cloudflare's minimum
    ({"cf-aig-cache-ttl": "100000"}, MAX_TTL),     # never beyond maxTtlSeconds
    ({"cf-aig-cache-ttl": "120", "cache-control": "max-age=70"}, 70),  # the shorter wins
    ({"cf-aig-cache-ttl": "soon"}, TTL),           # invalid: the policy's ttl
], ids=["aig-seconds", "old-milliseconds", "minimum", "capped", "shorter-wins", "invalid"])
def test_cloudflare_ttl(envoy, llm, redis_server, headers, expected):
    miss_and_store(envoy, redis_server, "vend", "How far away is the Moon", headers=headers)
    ttl = ttl_of_only_entry(redis_server, "vend")
    assert expected - 10 <= ttl <= expected, ttl


def test_cloudflare_custom_key_shares_the_exact_entry(envoy, llm, embed_openai, redis_server):
    calls = embed_openai.calls
    r1 = miss_and_store(envoy, redis_server, "vend", "What is the boiling point of water",
                        headers={"cf-aig-cache-key": "water-faq"})
    assert vendor_status(r1) == ("MISS", "MISS"), explain(r1)
    # another prompt with the same key: the key's entry, found without an embedding
    r = ask(envoy, "vend", UNRELATED, headers={"cf-aig-cache-key": "water-faq"})
    assert_status(r, "HIT", match="exact")
    assert r.headers["cf-aig-cache-status"] == "HIT", explain(r)
    assert content(r) == "echo: What is the boiling point of water"
    assert embed_openai.calls == calls, "a custom key is looked up without an embedding"
    # another key, or the same key from another tenant: a miss
    assert_status(ask(envoy, "vend", UNRELATED, headers={"cf-aig-cache-key": "other"}), "MISS")
    r = harness.ask(envoy, "vend", UNRELATED, auth=OTHER_AUTH, headers={"cf-aig-cache-key": "water-faq"})
    assert_status(r, "MISS")
    assert llm.calls == 3
    # the key's entry is not found by a semantic search of a request without the key
    wait_stored(redis_server, "vend", 3)
    assert_status(ask(envoy, "vend", "What is the boiling point of water"), "MISS")


# ------------------------------------------------------------------------------------------------
# switched off
# ------------------------------------------------------------------------------------------------
def test_switched_off_vendor_headers_are_ignored(envoy, llm, embed_openai, redis_server):
    miss_and_store(envoy, redis_server, "vendoff", BASE)
    ignored = {
        "x-semantic-threshold": "0.99",
        "x-settings-overrides": '{"semantic_cache_enabled": false}',
        "cf-aig-skip-cache": "true",
        "cf-skip-cache": "true",
    }
    r = ask(envoy, "vendoff", NEAR, headers=ignored)
    assert_status(r, "HIT", match="semantic")
    assert vendor_status(r) == (None, None), explain(r)
    # the key headers do not split or merge entries either
    assert_status(ask(envoy, "vendoff", BASE, headers={"x-semantic-cache-key": "team-z"}), "HIT", match="exact")
    r = ask(envoy, "vendoff", UNRELATED, headers={"cf-aig-cache-key": "k", "cf-aig-cache-ttl": "120"})
    assert_status(r, "MISS")
    assert vendor_status(r) == (None, None), explain(r)
    wait_stored(redis_server, "vendoff", 2)
    for key in redis_server.keys("sc_vendoff:*"):
        assert redis_server.command("TTL", key) > TTL - 10, "cf-aig-cache-ttl must be ignored"
    assert llm.calls == 2


# ------------------------------------------------------------------------------------------------
# partition: provider and tenant
# ------------------------------------------------------------------------------------------------
def test_identical_bodies_to_two_providers_do_not_share(envoy, llm, llm_b, redis_server):
    prompt = "Summarise the plot of Hamlet in one line"
    b0 = llm_b.calls
    miss_and_store(envoy, redis_server, "prov", prompt)
    assert llm.calls == 1
    r = ask(envoy, "prov", prompt, path="/b/v1/chat/completions")
    assert_status(r, "MISS")
    assert llm_b.calls == b0 + 1
    wait_stored(redis_server, "prov", 2)
    assert_status(ask(envoy, "prov", prompt, path="/b/v1/chat/completions"), "HIT", match="exact")
    # another route to the same cluster is the same provider (route partition is off here)
    assert_status(ask(envoy, "prov", prompt, path="/a2/v1/chat/completions"), "HIT", match="exact")
    assert (llm.calls, llm_b.calls) == (1, b0 + 1)


def test_provider_partition_switched_off_shares(envoy, llm, llm_b, redis_server):
    prompt = "Summarise the plot of Macbeth in one line"
    b0 = llm_b.calls
    miss_and_store(envoy, redis_server, "provoff", prompt)
    assert_status(ask(envoy, "provoff", prompt, path="/b/v1/chat/completions"), "HIT", match="exact")
    assert llm_b.calls == b0


@pytest.mark.parametrize("header", ["x-api-key", "x-goog-api-key"])
def test_tenant_by_each_apis_credential_header(envoy, llm, redis_server, header):
    prompt = f"Which planet has the most moons ({header})"
    no_auth = {"authorization": None}
    miss_and_store(envoy, redis_server, "vend", prompt, headers={**no_auth, header: "sk-tenant-1"})
    assert_status(ask(envoy, "vend", prompt, headers={**no_auth, header: "sk-tenant-1"}), "HIT", match="exact")
    assert_status(ask(envoy, "vend", prompt, headers={**no_auth, header: "sk-tenant-2"}), "MISS")
    # and not shared with a caller without a credential
    assert_status(ask(envoy, "vend", prompt, headers=no_auth), "MISS")
    assert llm.calls == 3
