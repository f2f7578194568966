"""Security (issue 13): no secret in any log line, no prompt at info level, no way into another
tenant's partition, oversized input streamed through rather than buffered, stored answers replayed
byte for byte (no injection through stored JSON or SSE).

One Envoy at info level with the wasm component at debug (`--component-log-level wasm:debug`):
everything the filter logs at any level is in the log. Envoy's own debug logs print request
headers, which is the operator's choice and not the filter's, so only the wasm component is raised.

Sites (own index and key prefix each):
  sec    embedding via this module's stand-in (secret API key), Redis with ACL user + secret password
  badpw  the same with a wrong Redis password (every lookup fails)
  small  maxRequestBodyBytes 4096
"""
from __future__ import annotations

import json
import re
import time
from functools import partial

import openai
import pytest
import requests

import harness
from harness import Site, assert_status, cache, chat_body, explain, policy_for, static_cluster, wait_stored
from standins import EmbeddingStandIn

pytestmark = pytest.mark.usefixtures("clean_keys")

EMBED_SECRET = "sk-embed-SECRET-9f3c1a77e2"
REDIS_USER, REDIS_SECRET = "semcache_sec", "redis-SECRET-pw-51d0b8"
REDIS_WRONG_SECRET = "redis-WRONG-SECRET-pw-0c9e"
TENANT_A = "sk-tenant-a-SECRET-7d1e40"
TENANT_B = "sk-tenant-b-SECRET-2b6f93"
PURGE_SECRET = "purge-SECRET-key-8e41c2d9a0"
PURGE_WRONG_SECRET = "purge-WRONG-key-3f7a90b1c6"
SECRETS = (EMBED_SECRET, REDIS_SECRET, REDIS_WRONG_SECRET, TENANT_A, TENANT_B, PURGE_SECRET, PURGE_WRONG_SECRET)
# prompt words that appear nowhere else (grepped for in info-level lines)
PROMPT_MARK = "quixotic-zebra-4471"

ask_a = partial(harness.ask, auth=f"Bearer {TENANT_A}")
ask_b = partial(harness.ask, auth=f"Bearer {TENANT_B}")


@pytest.fixture(scope="module")
def secret_embed():
    s = EmbeddingStandIn("openai", api_key=EMBED_SECRET)
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _reset_secret_embed(secret_embed):
    secret_embed.reset()


@pytest.fixture(scope="module")
def envoy(envoy_launcher, secret_embed, redis_server):
    assert redis_server.command("ACL", "SETUSER", REDIS_USER, "on", f">{REDIS_SECRET}", "~*", "&*", "+@all") == "OK"

    def pol(name, password, **extra):
        p = policy_for(name, secret_embed, cluster="embedding_sec", **extra)
        p["vectorStore"].update(username=REDIS_USER, password=password)
        return p

    sites = [
        Site("sec", pol("sec", REDIS_SECRET, purge={"key": PURGE_SECRET})),
        Site("badpw", pol("badpw", REDIS_WRONG_SECRET)),
        Site("small", pol("small", REDIS_SECRET, maxRequestBodyBytes=4096)),
    ]
    return envoy_launcher(sites, clusters={"embedding_sec": static_cluster("embedding_sec", secret_embed.port)},
                          extra_args=("--component-log-level", "wasm:debug"))


def prompt(tag: str) -> str:
    return f"Tell me about the {PROMPT_MARK} number {tag}"


# ------------------------------------------------------------------------------------------------
# scenarios (each also feeds the log checks at the end of the module)
# ------------------------------------------------------------------------------------------------
def test_miss_hit_and_stream_with_debug_logging(envoy, llm, redis_server):
    p = prompt("one")
    assert_status(ask_a(envoy, "sec", p), "MISS")
    wait_stored(redis_server, "sec")
    assert_status(ask_a(envoy, "sec", p), "HIT", match="exact")
    assert_status(ask_a(envoy, "sec", f"{p} please"), "HIT")
    r = ask_a(envoy, "sec", prompt("two"), stream=True)
    assert_status(r, "MISS")
    wait_stored(redis_server, "sec", 2)
    assert_status(ask_a(envoy, "sec", prompt("two"), stream=True), "HIT")
    assert "[debug]" in envoy.log_since(0), "the wasm component logs at debug in this module"


@pytest.mark.parametrize("headers,body,reason", [
    ({"x-semantic-cache-skip": "1"}, None, "skip-header"),
    ({"cache-control": "no-store"}, None, "no-store"),
    ({}, b'{"model": "m", "messages": [', "invalid-json"),
    ({"x-settings-overrides": '{"semantic_cache_enabled": false}'}, None, "disabled"),
])
def test_bypasses_with_debug_logging(envoy, llm, headers, body, reason):
    r = ask_a(envoy, "sec", prompt(reason), headers=headers, body=body)
    assert r.headers.get("x-cache-bypass-reason") == reason, explain(r)


@pytest.mark.parametrize("status", [401, 500, 429])
def test_embedding_errors_echoing_the_api_key(envoy, llm, secret_embed, status):
    """Some providers quote the credentials they got in their error body: it must not reach the log."""
    secret_embed.status = status
    secret_embed.echo_credentials = True
    r = ask_a(envoy, "sec", prompt(f"embed {status}"))
    assert_status(r, "BYPASS", "embedding-error")
    assert EMBED_SECRET in secret_embed.last()["headers"]["authorization"]


def test_purge_with_wrong_and_right_key_at_debug(envoy, llm, redis_server):
    """The purge key (right or wrong, as header or bearer) never reaches the log."""
    url = envoy.url("sec", "/semantic-cache/purge")
    assert_status(ask_a(envoy, "sec", prompt("purge me")), "MISS")
    wait_stored(redis_server, "sec")
    calls = llm.calls
    assert requests.post(url, headers={"x-semantic-cache-purge-key": PURGE_WRONG_SECRET}, json={},
                         timeout=10).status_code == 403
    assert requests.post(url, headers={"authorization": f"Bearer {PURGE_WRONG_SECRET}"}, json={},
                         timeout=10).status_code == 403
    r = requests.post(url, headers={"authorization": f"Bearer {PURGE_SECRET}"}, json={}, timeout=10)
    assert r.status_code == 200 and r.json()["deleted"] >= 1, r.text
    assert llm.calls == calls, "purge requests never reach the LLM"


def test_embedding_garbage_with_the_key_inside(envoy, llm, secret_embed):
    secret_embed.fault = "truncated"
    r = ask_a(envoy, "sec", prompt("truncated"))
    assert_status(r, "BYPASS", "embedding-error")


def test_redis_auth_failure_and_redis_down(envoy, llm, redis_server):
    r = ask_a(envoy, "badpw", prompt("badpw"))
    assert_status(r, "BYPASS", "redis-error")
    redis_server.stop()
    try:
        r = ask_a(envoy, "sec", prompt("redis down"))
        assert_status(r, "BYPASS", "redis-error")
    finally:
        redis_server.start()
    # the ACL user lives in memory only: Redis came back without it
    assert redis_server.command("ACL", "SETUSER", REDIS_USER, "on", f">{REDIS_SECRET}", "~*", "&*", "+@all") == "OK"
    deadline = time.monotonic() + 10
    while cache(ask_a(envoy, "sec", prompt("redis back"))) != "MISS":
        assert time.monotonic() < deadline
        time.sleep(0.1)


# ------------------------------------------------------------------------------------------------
# partitions
# ------------------------------------------------------------------------------------------------
def test_forged_cache_key_stays_in_its_tenant(envoy, llm, redis_server):
    p = prompt("partition")
    near = f"the {PROMPT_MARK} number partition: tell me about it"  # same words: distance 0
    key = {"x-semantic-cache-key": "shared-looking-key-K"}
    assert_status(ask_a(envoy, "sec", p, headers=key), "MISS")
    (a_key,) = wait_stored(redis_server, "sec")
    assert_status(ask_a(envoy, "sec", p, headers=key), "HIT")
    # tenant B with A's key (semantic near-repeat, the very same text) and with no key; B's own
    # entries are removed after each probe so that only A's entry could ever answer
    for h, q in ((key, near), (key, p), ({}, p)):
        calls = llm.calls
        r = ask_b(envoy, "sec", q, headers=h)
        assert_status(r, "MISS")
        assert llm.calls == calls + 1
        assert r.json()["id"] == f"chatcmpl-standin-{llm.calls}", "B's own upstream answer"
        wait_stored(redis_server, "sec", 2)
        for k in redis_server.keys("sc_sec:*"):
            if k != a_key:
                redis_server.command("UNLINK", k)
    # A without the key is another partition of the same tenant
    assert_status(ask_a(envoy, "sec", p), "MISS")
    # while A with its key finds its entry for the near-repeat too (the misses above were partitions)
    r = ask_a(envoy, "sec", near, headers=key)
    assert_status(r, "HIT", match="semantic")
    assert r.json()["id"] == "chatcmpl-standin-1", "A's own entry"


# ------------------------------------------------------------------------------------------------
# oversized input
# ------------------------------------------------------------------------------------------------
def _rss_kb(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_oversized_bodies_stream_through_without_buffering(envoy, llm, redis_server):
    """8 MB is far above Envoy's 1 MiB per-stream buffer limit: had the filter kept buffering,
    Envoy would answer 413. The upstream gets every byte, the answer is BYPASS, nothing stored,
    and Envoy's memory does not keep what went through."""
    filler = "x" * (8 * 1024 * 1024)
    body = chat_body(prompt("big"), metadata={"filler": filler})
    raw = json.dumps(body).encode()
    rss0 = _rss_kb(envoy.proc.pid)
    for _ in range(5):
        r = ask_a(envoy, "small", body=raw, timeout=60)
        assert_status(r, "BYPASS", "body-too-large")
        assert llm.last()["raw"] == raw, "the upstream must receive the whole body"
    rss1 = _rss_kb(envoy.proc.pid)
    assert rss1 - rss0 < 40 * 1024, f"Envoy RSS grew from {rss0} kB to {rss1} kB after 40 MB passed through"
    assert redis_server.keys("sc_small:*") == []


def test_oversized_headers(envoy, llm):
    # 50 kB of cache key: hashed into the partition (bounded work), the request is served
    r = ask_a(envoy, "sec", prompt("long key"), headers={"x-semantic-cache-key": "k" * 50_000})
    assert r.status_code == 200 and cache(r) in ("MISS", "BYPASS"), explain(r)
    # over Envoy's header limit (60 kB): Envoy's own 431 before any filter runs
    calls = llm.calls
    r = ask_a(envoy, "sec", prompt("huge key"), headers={"x-semantic-cache-key": "k" * 70_000})
    assert r.status_code == 431, explain(r)
    assert llm.calls == calls


# ------------------------------------------------------------------------------------------------
# stored answers come back byte for byte
# ------------------------------------------------------------------------------------------------
NASTY = ('He said "hi" \\ back\r\nline two\n\ndata: [DONE]\n\nevent: error\ndata: {"error": "injected"}\n\n'
         ': comment\nid: 7\nretry: 1\n</script><script>alert(1)</script> \u65e5\u672c\u8a9e \U0001F389 \u2028\u2029 '
         'tab\there \x00 nul \x7f del \ud7ff end')


@pytest.mark.parametrize("first_stream", [False, True], ids=["stored-from-json", "stored-from-stream"])
def test_stored_answer_replayed_byte_for_byte(envoy, llm, redis_server, first_stream):
    llm.answer = NASTY
    p = prompt(f"nasty {first_stream}")
    c = openai.OpenAI(base_url=f"http://127.0.0.1:{envoy.port('sec')}/v1", api_key=TENANT_A, max_retries=0)
    msgs = [{"role": "user", "content": p}]
    if first_stream:
        chunks = list(c.chat.completions.create(model="gpt-4o-mini", messages=msgs, stream=True))
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == NASTY
        miss_body = None
    else:
        miss = requests.post(envoy.url("sec"), json=chat_body(p), headers={"authorization": f"Bearer {TENANT_A}"})
        assert_status(miss, "MISS")
        miss_body = miss.content
    wait_stored(redis_server, "sec")
    calls = llm.calls
    # non-streamed hit: the upstream's own bytes (when it answered JSON), the same content anyway
    hit = requests.post(envoy.url("sec"), json=chat_body(p), headers={"authorization": f"Bearer {TENANT_A}"})
    assert_status(hit, "HIT")
    if miss_body is not None:
        assert hit.content == miss_body
    assert hit.json()["choices"][0]["message"]["content"] == NASTY
    raw = c.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=msgs)
    assert raw.headers["x-cache-status"] == "HIT" and raw.parse().choices[0].message.content == NASTY
    # streamed hit: well-formed SSE whose content is exactly the answer; no injected event
    sr = requests.post(envoy.url("sec"), json=chat_body(p, stream=True),
                       headers={"authorization": f"Bearer {TENANT_A}"})
    assert_status(sr, "HIT")
    lines = sr.content.split(b"\n")
    assert all(ln.startswith(b"data: ") or ln == b"" for ln in lines), lines[:10]
    assert sr.content.count(b"data: [DONE]") == 1 and sr.content.endswith(b"data: [DONE]\n\n")
    chunks = list(c.chat.completions.create(model="gpt-4o-mini", messages=msgs, stream=True))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == NASTY
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason] == ["stop"]
    assert llm.calls == calls


# ------------------------------------------------------------------------------------------------
# the logs of everything above (keep these last in the module)
# ------------------------------------------------------------------------------------------------
def test_no_secret_in_any_log_line(envoy):
    harness.settle_stores(envoy)
    log = envoy.log_since(0)
    assert "][debug][wasm]" in log or "[debug]" in log
    for s in SECRETS:
        hits = [ln for ln in log.splitlines() if s in ln]
        assert not hits, f"secret {s[:12]}... logged: {hits[:3]}"
        # nor a recognisable part of it
        assert s[-10:] not in log


def test_no_prompt_at_info_level_or_above(envoy):
    log = envoy.log_since(0)
    level = re.compile(r"^\[[^\]]*\]\[[^\]]*\]\[(info|warning|error|critical)\]")
    bad = [ln for ln in log.splitlines() if level.match(ln) and (PROMPT_MARK in ln or "nasty" in ln)]
    assert not bad, bad[:3]
