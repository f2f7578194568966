"""The fault matrix (issue 13): every component around the filter fails in turn, end to end.

In every case: the client gets the upstream's answer or the upstream's own error (never a 5xx made
by the cache), nothing incomplete or wrong is stored (Redis is inspected), every MISS gets exactly one
store outcome (store_ok + store_skipped + store_error = miss), and the wasm VM survives (no panic or
failed plugin in the Envoy log, and the filter still serves afterwards).

test_redis_failures.py covers a Redis that never answers / answers garbage / errors / wrong password
/ another DIM; test_store_reliability.py covers a client closing right after the terminating chunk.

This module has its own Redis (started with DEBUG enabled, killed and restarted here) and one Envoy:
  fm  the cache (vectorStore.timeoutMs 1000, embedding.timeoutMs 1000), route timeout 30 s
  to  the same with a 1 s route timeout (LLM upstream timeout)
"""
from __future__ import annotations

import json
import socket
import struct
import threading
import time
from functools import partial

import openai
import pytest

import harness
from harness import RedisServer, Site, assert_status, cache, chat_body, explain, policy_for, raw_request, static_cluster

CLIENT_KEY = "sk-client-fault-matrix"
ask = partial(harness.ask, auth=f"Bearer {CLIENT_KEY}")
DIM = 64
# What a broken VM leaves in the Envoy log: the filter's panic hook and Envoy's own lines (as
# scripts/panic-probe.py shows them: "Function: proxy_on_request_headers failed: Uncaught RuntimeError:
# unreachable").
VM_FAILURE_MARKS = ("semantic-cache panic", "panicked at", "Function: proxy_on_", "Uncaught RuntimeError",
                    "wasm trap", "failed to load wasm")


@pytest.fixture(scope="module")
def fredis():
    r = RedisServer(extra_args=("--enable-debug-command", "local"))
    r.start()
    yield r
    r.close()


@pytest.fixture(scope="module")
def envoy(envoy_launcher, embed_openai, fredis):
    def pol(name):
        p = policy_for(name, embed_openai, timeout_ms=1000)
        p["vectorStore"]["timeoutMs"] = 1000
        return p

    sites = [Site("fm", pol("fm")), Site("to", pol("to"), route_timeout="1s")]
    return envoy_launcher(sites, clusters={"redis": static_cluster("redis", fredis.port, tcp=True)})


@pytest.fixture(autouse=True)
def _each(envoy, fredis):
    """Clean keys (index definitions stay), remember where the log was, and check the VM after."""
    if fredis.running:
        fredis.delete_all_keys()
    offset = envoy.log_size()
    yield
    assert_accounted(envoy)
    assert_vm_healthy(envoy, offset)
    assert_accounted(envoy)  # the health check's own store lands before the next test starts


# ------------------------------------------------------------------------------------------------
# checks shared by every case
# ------------------------------------------------------------------------------------------------
def assert_vm_healthy(envoy, offset: int) -> None:
    assert envoy.alive(), "envoy died"
    log = envoy.log_since(offset)
    bad = [ln for ln in log.splitlines() if any(m.lower() in ln.lower() for m in VM_FAILURE_MARKS)]
    assert not bad, bad[:5]
    # and the filter still answers (a crashed VM with FAIL_OPEN would pass requests without headers)
    r = ask(envoy, "fm", f"health check {time.monotonic_ns()}")
    assert r.status_code == 200 and cache(r) in ("MISS", "BYPASS"), explain(r)


def assert_accounted(envoy, timeout: float = 10.0) -> None:
    """Every MISS has exactly one store outcome (stored, skipped or failed)."""
    deadline = time.monotonic() + timeout
    while True:
        s = envoy.stats()
        c = lambda n: s.get(f"wasmcustom.semantic_cache.{n}", 0)  # noqa: E731
        outcomes = c("store_ok") + c("store_error") + c("store_skipped")
        if outcomes == c("miss"):
            return
        assert outcomes < c("miss"), f"more store outcomes ({outcomes}) than misses ({c('miss')})"
        if time.monotonic() > deadline:
            raise AssertionError(f"miss={c('miss')} but store_ok+store_error+store_skipped={outcomes}")
        time.sleep(0.05)


def fm_index(redis: RedisServer) -> str:
    """The `fm` site's index: its configured name plus the embedding fingerprint (harness.store_names)."""
    return next((i for i in redis.indexes() if i.startswith("sc_fm_idx_")), "")


def stored_entries(redis: RedisServer, site: str) -> dict[str, dict]:
    out = {}
    for k in redis.keys(f"sc_{site}:*"):
        fields = redis.command("HGETALL", k)
        out[k] = {fields[i].decode(): fields[i + 1] for i in range(0, len(fields), 2)}
    return out


def assert_entries_sound(redis: RedisServer, site: str) -> dict[str, dict]:
    """Every stored entry is a complete chat.completion answering its own prompt, with a vector of
    the policy's size."""
    entries = stored_entries(redis, site)
    for k, e in entries.items():
        body = json.loads(e["body"])
        choice = body["choices"][0]
        assert choice["finish_reason"] == "stop", (k, body)
        assert choice["message"]["content"].startswith("echo: "), (k, body)
        assert len(e["vec"]) == DIM * 4, (k, len(e["vec"]))
        assert redis.command("TTL", k) > 0, k
    return entries


def wait_entries(redis: RedisServer, site: str, n: int, timeout: float = 10.0) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while len(redis.keys(f"sc_{site}:*")) < n:
        assert time.monotonic() < deadline, f"expected {n} entries, found {redis.keys(f'sc_{site}:*')}"
        time.sleep(0.03)
    return assert_entries_sound(redis, site)


def assert_upstream_answer(r, prompt: str) -> None:
    assert r.status_code == 200, explain(r)
    assert r.json()["choices"][0]["message"]["content"] == f"echo: {prompt}", explain(r)


# ------------------------------------------------------------------------------------------------
# Redis
# ------------------------------------------------------------------------------------------------
def test_redis_killed_and_restarted_mid_run(envoy, llm, fredis):
    pid = envoy.proc.pid
    p = "What is the boiling point of water at sea level?"
    assert_status(ask(envoy, "fm", p), "MISS")
    wait_entries(fredis, "fm", 1)
    assert_status(ask(envoy, "fm", p), "HIT")
    fredis.stop()
    for i in range(3):
        q = f"{p} (redis down {i})"
        r = ask(envoy, "fm", q)
        assert_status(r, "BYPASS", "redis-error")
        assert_upstream_answer(r, q)
    fredis.start()  # same port, empty (no persistence): the index is gone too
    deadline = time.monotonic() + 20
    while True:
        r = ask(envoy, "fm", p)
        assert r.status_code == 200 and cache(r) in ("MISS", "HIT", "BYPASS"), explain(r)
        if cache(r) == "HIT":
            break
        assert time.monotonic() < deadline, f"hits never came back after the restart: {explain(r)}"
        time.sleep(0.1)
    assert envoy.proc.pid == pid, "hits came back without restarting Envoy"
    assert fm_index(fredis)
    assert_entries_sound(fredis, "fm")


def test_redis_killed_under_concurrent_traffic(envoy, llm, fredis):
    """Kill and restart Redis while 8 clients keep asking (repeats and new prompts): every answer is
    a 200 with x-cache-status, never an error; hits come back afterwards."""
    hot = "Which gas do plants absorb from the air?"
    assert_status(ask(envoy, "fm", hot), "MISS")
    wait_entries(fredis, "fm", 1)
    stop = threading.Event()
    seen: list = []
    lock = threading.Lock()

    def client(i):
        n = 0
        while not stop.is_set():
            n += 1
            q = hot if n % 2 else f"client {i} question {n} about redis restarts"
            try:
                r = ask(envoy, "fm", q, timeout=15)
                out = (r.status_code, cache(r), r.headers.get("x-cache-bypass-reason"))
            except Exception as e:  # noqa: BLE001
                out = ("exception", repr(e)[:200], None)
            with lock:
                seen.append(out)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    try:
        def wait_for(n):
            deadline = time.monotonic() + 20
            while len(seen) < n:
                assert time.monotonic() < deadline, seen[-5:]
                time.sleep(0.02)
        wait_for(20)
        fredis.stop()
        wait_for(len(seen) + 40)
        fredis.start()
        wait_for(len(seen) + 40)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    bad = [o for o in seen if o[0] != 200 or o[1] not in ("HIT", "MISS", "BYPASS")]
    assert not bad, bad[:5]
    bypass_reasons = {o[2] for o in seen if o[1] == "BYPASS"}
    assert bypass_reasons == {"redis-error"}, bypass_reasons
    assert any(o[1] == "BYPASS" for o in seen), "Redis was down for part of the run"
    deadline = time.monotonic() + 20
    while cache(ask(envoy, "fm", hot)) != "HIT":
        assert time.monotonic() < deadline, "hits never came back"
        time.sleep(0.1)
    assert_entries_sound(fredis, "fm")


def test_redis_slower_than_its_timeout(envoy, llm, fredis):
    p = "How many bones are in the adult human body?"
    assert_status(ask(envoy, "fm", p), "MISS")
    wait_entries(fredis, "fm", 1)
    sleeper = threading.Thread(target=lambda: fredis.command("DEBUG", "SLEEP", "3"))
    sleeper.start()
    try:
        # wait until Redis is really asleep (a PING on another connection goes unanswered)
        deadline = time.monotonic() + 5
        while True:
            try:
                with socket.create_connection(("127.0.0.1", fredis.port), timeout=0.3) as s:
                    s.sendall(b"PING\r\n")
                    s.recv(16)
            except socket.timeout:
                break
            assert time.monotonic() < deadline, "DEBUG SLEEP did not block Redis"
        q = "A question asked while Redis sleeps"
        r = ask(envoy, "fm", q)
        assert_status(r, "BYPASS", "redis-error")
        assert_upstream_answer(r, q)
        assert sleeper.is_alive(), "the lookup must give up at vectorStore.timeoutMs, before Redis wakes"
    finally:
        sleeper.join(10)
    assert_status(ask(envoy, "fm", p), "HIT")
    assert len(assert_entries_sound(fredis, "fm")) == 1, "nothing stored for the bypassed request"


def test_index_dropped_while_running(envoy, llm, fredis):
    """FT.DROPINDEX (entries kept): exact repeats still hit (no index needed); a search on the
    missing index is a MISS answered by the upstream, and its store recreates the index, which
    re-indexes the entries already there: semantic hits come back at once."""
    a, b = "Explain the rules of chess openings", "Explain chess openings rules"
    assert_status(ask(envoy, "fm", a), "MISS")
    wait_entries(fredis, "fm", 1)
    assert_status(ask(envoy, "fm", b), "HIT", match="semantic")
    index = fm_index(fredis)
    assert fredis.command("FT.DROPINDEX", index) == "OK"
    assert_status(ask(envoy, "fm", a), "HIT", match="exact")
    q = "Describe the water cycle for children"
    r = ask(envoy, "fm", q)
    assert_status(r, "MISS")
    assert_upstream_answer(r, q)
    wait_entries(fredis, "fm", 2)
    # FT.CREATE indexes the hashes already there in the background: wait for that scan
    deadline = time.monotonic() + 10
    while not index_holds(fredis, index, 2):
        assert time.monotonic() < deadline, fredis.indexes()
        time.sleep(0.05)
    assert_status(ask(envoy, "fm", b), "HIT", match="semantic")


def index_holds(redis: RedisServer, index: str, n: int) -> bool:
    """The index exists, its background scan is over and it holds at least `n` documents."""
    if index not in redis.indexes():
        return False
    info = redis.command("FT.INFO", index)
    if isinstance(info, Exception):
        return False
    fields = {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in zip(info[::2], info[1::2])}
    num = lambda v: float(v.decode() if isinstance(v, bytes) else v)  # noqa: E731
    return num(fields.get("indexing", 1)) == 0 and num(fields.get("num_docs", 0)) >= n


# ------------------------------------------------------------------------------------------------
# embedding provider
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fault,reason", [
    ("slow", "embedding-error"),
    ("500", "embedding-error"),
    ("429", "embedding-error"),
    ("truncated", "embedding-error"),
    ("reset", "embedding-error"),
    ("wrong-dims", "dimension-mismatch"),
])
def test_embedding_provider_fault(envoy, llm, embed_openai, fredis, fault, reason):
    if fault == "slow":
        embed_openai.delay = 2.5  # embedding.timeoutMs is 1000
    elif fault in ("500", "429"):
        embed_openai.status = int(fault)
    elif fault == "wrong-dims":
        embed_openai.answer_dim = 32
    else:
        embed_openai.fault = fault
    p = f"Which planet has the most moons ({fault})?"
    for _ in range(2):
        calls = llm.calls
        r = ask(envoy, "fm", p)
        assert_status(r, "BYPASS", reason)
        assert_upstream_answer(r, p)
        assert llm.calls == calls + 1
    assert not fredis.keys("sc_fm:*"), "nothing may be stored without a sound embedding"
    embed_openai.reset()
    assert_status(ask(envoy, "fm", p), "MISS")
    wait_entries(fredis, "fm", 1)
    assert_status(ask(envoy, "fm", p), "HIT")


# ------------------------------------------------------------------------------------------------
# LLM upstream
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [500, 429])
def test_llm_error_status_is_passed_through_and_not_stored(envoy, llm, fredis, status):
    llm.status = status
    p = f"Summarise the plot of Hamlet ({status})"
    for _ in range(2):
        r = ask(envoy, "fm", p)
        assert r.status_code == status, explain(r)
        assert r.headers.get("x-standin-call"), "the upstream's own error"
        assert r.json()["error"]["message"] == "forced by test"
        assert cache(r) == "MISS"
    llm.reset()
    assert_status(ask(envoy, "fm", p), "MISS")  # the error was not stored
    wait_entries(fredis, "fm", 1)


@pytest.mark.parametrize("fault", ["reset", "truncated"])
def test_llm_reset_is_envoys_error_and_not_stored(envoy, llm, fredis, fault):
    llm.fault = fault
    p = f"Name three rivers in Africa ({fault})"
    if fault == "reset":
        r = ask(envoy, "fm", p)
        # the router's own 503 for an upstream reset (never the cache's)
        assert r.status_code == 503 and "reset" in r.text, explain(r)
    else:
        # headers and half the body went out; then the upstream closed: the client sees a cut body
        with pytest.raises(Exception):
            ask(envoy, "fm", p).json()
    assert_accounted(envoy)
    assert not fredis.keys("sc_fm:*")
    llm.reset()
    assert_status(ask(envoy, "fm", p), "MISS")
    wait_entries(fredis, "fm", 1)


def test_llm_stream_reset_mid_stream_is_not_stored(envoy, llm, fredis):
    llm.fault = "reset-mid-stream"
    p = "Count from one to ten slowly"
    skipped = envoy.counter("store_skipped")
    with pytest.raises(Exception):
        ask(envoy, "fm", p, stream=True).content  # noqa: B018 (chunked body cut: the client sees the reset)
    harness.wait_counter(envoy, "store_skipped", skipped + 1, timeout=10)
    assert not fredis.keys("sc_fm:*")


def test_llm_timeout_is_envoys_504_and_not_stored(envoy, llm, fredis):
    llm.delay = 2.0  # site `to` has a 1 s route timeout
    p = "Write a haiku about timeouts"
    r = ask(envoy, "to", p)
    assert r.status_code == 504 and "upstream request timeout" in r.text, explain(r)
    assert cache(r) == "MISS"
    assert_accounted(envoy)
    assert not fredis.keys("sc_to:*")


# ------------------------------------------------------------------------------------------------
# client disconnects
# ------------------------------------------------------------------------------------------------
def _send_and_close(port: int, body: dict, after) -> None:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(raw_request(body, f"Bearer {CLIENT_KEY}"))
        after(s)
    finally:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()


def test_client_gone_during_the_lookup(envoy, llm, embed_openai, fredis):
    embed_openai.delay = 0.8
    calls_before = embed_openai.calls
    p = "A question whose client hangs up during the lookup"
    _send_and_close(envoy.port("fm"), chat_body(p), lambda s: time.sleep(0.2))
    # the embedding answer arrives for a stream that is gone: it is ignored
    deadline = time.monotonic() + 5
    while embed_openai.calls == calls_before:
        assert time.monotonic() < deadline, "the embedding call never completed"
        time.sleep(0.05)
    embed_openai.reset()
    assert llm.calls == 0, "a request whose client left during the lookup is not forwarded"
    assert not fredis.keys("sc_fm:*")
    assert_status(ask(envoy, "fm", p), "MISS")
    wait_entries(fredis, "fm", 1)


def test_client_gone_during_a_streamed_miss(envoy, llm, fredis):
    llm.stream_chunk_delay = 0.2
    skipped = envoy.counter("store_skipped")
    p = "A long streamed answer the client abandons"

    def read_first_event(s):
        buf = b""
        while b"data: " not in buf:
            part = s.recv(4096)
            assert part, buf
            buf += part

    _send_and_close(envoy.port("fm"), chat_body(p, stream=True), read_first_event)
    harness.wait_counter(envoy, "store_skipped", skipped + 1, timeout=10)
    assert not fredis.keys("sc_fm:*"), "an incomplete stream must not be stored"


def test_client_gone_after_done_before_the_last_chunk_still_stores(envoy, llm, fredis):
    """The openai SDK closes its connection on `data: [DONE]`, before the upstream's terminating
    chunk arrives: the filter never sees end_of_stream. The answer is complete and must be stored
    (this was the lost store behind the flaky test_sdk_stream_tool_call_hit)."""
    llm.done_tail_delay = 1.0
    p = "Stored although the SDK hung up after DONE"
    ok = envoy.counter("store_ok")
    c = openai.OpenAI(base_url=f"http://127.0.0.1:{envoy.port('fm')}/v1", api_key=CLIENT_KEY, max_retries=0)
    chunks = list(c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": p}],
                                            stream=True))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == f"echo: {p}"
    harness.wait_counter(envoy, "store_ok", ok + 1, timeout=10)
    entries = wait_entries(fredis, "fm", 1)
    (entry,) = entries.values()
    assert json.loads(entry["body"])["choices"][0]["message"]["content"] == f"echo: {p}"
    llm.done_tail_delay = 0.0
    calls = llm.calls
    assert_status(ask(envoy, "fm", p, stream=True), "HIT")
    assert llm.calls == calls
