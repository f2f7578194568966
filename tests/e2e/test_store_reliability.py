"""Stores must survive the end of the client's stream: an answer is stored (and `store_ok` counted)
even when the client closes the connection right after the last byte of a miss, also under load.

One Envoy serves these sites (own index and key prefix each):
  rel    threshold 0.15 (default vm_id, alone in its VM)
  plain  like rel, vm_id vm_shared
  acl    like plain but Redis ACL credentials (vectorStore.username/password), same vm_id vm_shared
"""
from __future__ import annotations

import json
import socket
import struct
import threading
import time

import pytest

from harness import Site, chat_body, policy_for, raw_request, wait_counter, wait_stored

CLIENT_AUTH = "Bearer sk-client-reliability"
pytestmark = pytest.mark.usefixtures("clean_keys")
ACL_USER, ACL_PASS = "semcache_rel", "rel-secret-pw"


@pytest.fixture(scope="module")
def envoy(envoy_launcher, embed_openai, redis_server):
    # an ACL user for the `acl` site (the test Redis has no password for `default`)
    assert redis_server.command("ACL", "SETUSER", ACL_USER, "on", f">{ACL_PASS}", "~*", "&*", "+@all") == "OK"
    acl = policy_for("acl", embed_openai, threshold=0.15)
    acl["vectorStore"].update(username=ACL_USER, password=ACL_PASS)
    sites = [
        Site("rel", policy_for("rel", embed_openai, threshold=0.15)),
        Site("plain", policy_for("plain", embed_openai, threshold=0.15), vm_id="vm_shared"),
        Site("acl", acl, vm_id="vm_shared"),
    ]
    return envoy_launcher(sites)


class RawResponse:
    def __init__(self, head: bytes, body: bytes):
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.body = body


def exchange(port: int, body: dict, rst: bool = False) -> RawResponse:
    """One request on a fresh connection; reads exactly up to the last byte of the response
    (content-length or the terminating chunk) and closes at once (FIN, or RST when `rst`)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    try:
        s.sendall(raw_request(body, CLIENT_AUTH))
        buf = b""
        while b"\r\n\r\n" not in buf:
            part = s.recv(65536)
            assert part, buf
            buf += part
        head, rest = buf.split(b"\r\n\r\n", 1)
        resp = RawResponse(head, b"")
        if "content-length" in resp.headers:
            n = int(resp.headers["content-length"])
            while len(rest) < n:
                part = s.recv(65536)
                assert part, rest
                rest += part
            resp.body = rest[:n]
        else:
            assert resp.headers.get("transfer-encoding", "").lower() == "chunked", resp.headers
            while not (rest.endswith(b"\r\n0\r\n\r\n") or rest == b"0\r\n\r\n"):
                part = s.recv(65536)
                assert part, rest[-200:]
                rest += part
            resp.body = dechunk(rest)
        return resp
    finally:
        if rst:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()


def dechunk(raw: bytes) -> bytes:
    out, i = b"", 0
    while True:
        j = raw.index(b"\r\n", i)
        size = int(raw[i:j].split(b";")[0], 16)
        if size == 0:
            return out
        out += raw[j + 2:j + 2 + size]
        i = j + 2 + size + 2


# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("rst", [False, True], ids=["fin", "rst"])
def test_close_right_after_last_byte_still_stores(envoy, llm, redis_server, stream, rst):
    prompt = f"Close right after the last byte ({'stream' if stream else 'json'}, {'rst' if rst else 'fin'})"
    ok = envoy.counter("store_ok")
    r = exchange(envoy.port("rel"), chat_body(prompt, stream=stream), rst=rst)
    assert r.status == 200 and r.headers.get("x-cache-status") == "MISS", (r.headers, r.body[:200])
    if stream:
        assert r.body.endswith(b"data: [DONE]\n\n"), r.body[-200:]
    else:
        assert json.loads(r.body)["choices"][0]["message"]["content"] == f"echo: {prompt}"
    wait_stored(redis_server, "rel", 1)
    wait_counter(envoy, "store_ok", ok + 1, timeout=8.0)
    r2 = exchange(envoy.port("rel"), chat_body(prompt, stream=stream))
    assert r2.headers.get("x-cache-status") == "HIT", r2.headers
    assert llm.calls == 1


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_concurrent_misses_with_immediate_close_all_stored(envoy, llm, redis_server, stream):
    n = 20
    ok = envoy.counter("store_ok")
    err = envoy.counter("store_error")
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i):
        # four words of its own per prompt: no two prompts are near each other
        prompt = " ".join(f"w{i}k{j}{'s' if stream else 'j'}" for j in range(4))
        barrier.wait()
        try:
            results[i] = exchange(envoy.port("rel"), chat_body(prompt, stream=stream), rst=(i % 2 == 1))
        except Exception as e:  # noqa: BLE001
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    bad = [r for r in results if not isinstance(r, RawResponse) or r.status != 200
           or r.headers.get("x-cache-status") != "MISS"]
    assert not bad, bad[:3]
    keys = wait_stored(redis_server, "rel", n)
    assert len(keys) == n
    wait_counter(envoy, "store_ok", ok + n, timeout=8.0)
    time.sleep(0.2)
    assert envoy.counter("store_ok") == ok + n
    assert envoy.counter("store_error") == err
    assert llm.calls == n


def test_stores_of_sites_sharing_a_vm_are_checked_with_their_own_redis_settings(envoy, llm, redis_server):
    """Two listeners, one VM (same vm_id), different Redis credentials: every store of each site
    lands and is counted as store_ok, none as store_error."""
    ok, err = envoy.counter("store_ok"), envoy.counter("store_error")
    for site in ("plain", "acl"):
        for i in range(3):
            r = exchange(envoy.port(site), chat_body(f"vmq{i}a {site}{i}b vmq{i}c"))
            assert r.status == 200 and r.headers.get("x-cache-status") == "MISS", r.headers
    wait_stored(redis_server, "plain", 3)
    wait_stored(redis_server, "acl", 3)
    deadline = time.monotonic() + 5
    while envoy.counter("store_ok") + envoy.counter("store_error") < ok + err + 6 and time.monotonic() < deadline:
        time.sleep(0.03)
    assert (envoy.counter("store_ok") - ok, envoy.counter("store_error") - err) == (6, 0)
    # and the entries are usable
    for site in ("plain", "acl"):
        r = exchange(envoy.port(site), chat_body(f"vmq0a {site}0b vmq0c"))
        assert r.headers.get("x-cache-status") == "HIT", (site, r.headers)
