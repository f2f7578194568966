"""Streaming end to end, and the official `openai` Python SDK against the cache.

A `"stream": true` miss is forwarded as a stream and stored (reassembled as a chat.completion JSON)
only when complete ([DONE] + finish_reason); a hit is replayed as JSON or as SSE, whichever the
request asked for, whatever the stored entry was captured from. Names from docs/contract.md.

One Envoy serves these sites (one listener each, own index and key prefix):
  s      threshold 0.15 (the LLM stand-in)
  tools  store.toolCalls true
  cut    like s, upstream = a stand-in that can break its streams (CuttingLlm below)
"""
from __future__ import annotations

import json
import socket
import time
from functools import partial

import openai
import pytest
import requests

import harness
from harness import (Site, assert_status, chat_body, explain, policy_for, raw_request, static_cluster, wait_counter,
                     wait_stored)
from standins import LlmStandIn, cosine_distance

CLIENT_KEY = "sk-client-stream-test"
CLIENT_AUTH = f"Bearer {CLIENT_KEY}"
ask = partial(harness.ask, auth=CLIENT_AUTH)
pytestmark = pytest.mark.usefixtures("clean_keys")
THRESHOLD = 0.15
MODEL = "gpt-4o-mini"


class CuttingLlm(LlmStandIn):
    """LLM stand-in whose SSE answers can be broken or oddly framed.

    ``cut``: ``None`` (complete), ``"no-done"`` (no ``data: [DONE]``), ``"no-finish"`` (no chunk with
    a finish_reason), ``"drop"`` (connection closed after two chunks, no terminating chunk).
    ``fmt``: ``None`` (``data: {..}\\n\\n``), ``"crlf"`` (CRLF line ends), ``"nospace"`` (``data:{..}``),
    ``"comments"`` (``: keep-alive`` comment events and an ``event:`` line), ``"split"`` (every event
    written in two TCP chunks, cut inside the JSON and inside a multi-byte character)."""

    name = "cutting-llm-standin"

    def __init__(self):
        self.cut = None
        self.fmt = None
        super().__init__()

    def reset(self):
        super().reset()
        self.cut = None
        self.fmt = None

    def _stream(self, h, body, cid, created, model, text, usage, n):
        if self.cut is None and self.fmt is None:
            return super()._stream(h, body, cid, created, model, text, usage, n)
        h.send_response(200)
        h.send_header("content-type", "text/event-stream; charset=utf-8")
        h.send_header("transfer-encoding", "chunked")
        h.end_headers()

        def chunk(delta, finish=None):
            return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": w if i == 0 else " " + w}) for i, w in enumerate(text.split(" "))]
        if self.cut != "no-finish":
            events.append(chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                           "choices": [], "usage": usage})
        if self.cut == "drop":
            events = events[:2]
        payloads = [json.dumps(e, ensure_ascii=False).encode() for e in events]
        if self.cut not in ("no-done", "drop"):
            payloads.append(b"[DONE]")
        nl = b"\r\n" if self.fmt == "crlf" else b"\n"
        prefix = b"data:" if self.fmt == "nospace" else b"data: "
        for i, p in enumerate(payloads):
            ev = prefix + p + nl + nl
            if self.fmt == "comments":
                ev = b": keep-alive" + nl + nl + (b"event: message" + nl if i % 2 else b"") + ev
            if self.fmt == "split":
                cut_at = len(ev) // 2
                multi = [k for k in range(len(ev)) if ev[k] >= 0xC0]
                if multi:
                    cut_at = multi[0] + 1  # inside a UTF-8 sequence
                self._write_chunk(h, ev[:cut_at])
                time.sleep(0.005)
                self._write_chunk(h, ev[cut_at:])
                time.sleep(0.005)
            else:
                self._write_chunk(h, ev)
        if self.cut == "drop":
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()


# ------------------------------------------------------------------------------------------------
# fixtures and helpers
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cutting_llm():
    s = CuttingLlm()
    yield s
    s.close()


@pytest.fixture(scope="module")
def envoy(envoy_launcher, embed_openai, cutting_llm):
    sites = [
        Site("s", policy_for("s", embed_openai, threshold=THRESHOLD)),
        Site("tools", dict(policy_for("tools", embed_openai, threshold=THRESHOLD), store={"toolCalls": True})),
        Site("cut", policy_for("cut", embed_openai, threshold=THRESHOLD), default_cluster="llm_cut"),
    ]
    return envoy_launcher(sites, clusters={"llm_cut": static_cluster("llm_cut", cutting_llm.port)})


@pytest.fixture(autouse=True)
def _reset_cutting_llm(cutting_llm):
    cutting_llm.reset()
    yield


def client(envoy, site="s") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"http://127.0.0.1:{envoy.port(site)}/v1", api_key=CLIENT_KEY, max_retries=0,
                         timeout=20)


def utf8(r: requests.Response) -> str:
    """SSE is UTF-8 by definition (requests would decode text/* without charset as Latin-1)."""
    return r.content.decode("utf-8")


def sse_events(text: str) -> list[str]:
    """The `data:` payloads of an SSE body, checking the framing on the way."""
    assert text.endswith("\n\n"), repr(text[-80:])
    out = []
    for block in text.split("\n\n")[:-1]:
        lines = [ln for ln in block.split("\n") if ln and not ln.startswith(":")]
        assert lines and all(ln.startswith("data: ") for ln in lines), repr(block)
        out.append("\n".join(ln[len("data: "):] for ln in lines))
    return out


def parse_stream(text: str) -> tuple[list[dict], str]:
    events = sse_events(text)
    assert events[-1] == "[DONE]", events[-3:]
    chunks = [json.loads(e) for e in events[:-1]]
    content = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"])
    return chunks, content


def stored_body(redis_server, key) -> dict:
    return json.loads(redis_server.command("HGET", key, "body"))


def check_hit_stream(r, stored: dict, include_usage: bool):
    """A replayed stream: role chunk, content chunks, finish chunk, [usage chunk], [DONE]."""
    assert r.headers["content-type"].startswith("text/event-stream"), explain(r)
    chunks, text = parse_stream(utf8(r))
    msg = stored["choices"][0]["message"]
    assert text == (msg.get("content") or "")
    for c in chunks:
        assert c["object"] == "chat.completion.chunk", c
        assert (c["id"], c["created"], c["model"]) == (stored["id"], stored["created"], stored["model"]), c
    first = chunks[0]["choices"][0]
    assert first["delta"].get("role") == "assistant" and first["finish_reason"] is None, chunks[0]
    with_choices = [c for c in chunks if c["choices"]]
    finish = with_choices[-1]["choices"][0]
    assert finish["finish_reason"] == stored["choices"][0]["finish_reason"], with_choices[-1]
    assert all(c["choices"][0]["finish_reason"] is None for c in with_choices[:-1])
    assert len(with_choices) >= 3 or not msg.get("content")
    if include_usage:
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == stored["usage"], chunks[-1]
        assert all(c["usage"] is None for c in chunks[:-1]), [c.get("usage") for c in chunks]
    else:
        assert all(c["choices"] for c in chunks), "no usage chunk without stream_options.include_usage"
        assert all("usage" not in c or c["usage"] is None for c in chunks)
    return chunks


# ------------------------------------------------------------------------------------------------
# raw HTTP
# ------------------------------------------------------------------------------------------------
def test_stream_miss_forwarded_and_stored_reassembled(envoy, llm, redis_server):
    prompt = "Stream me a fact about octopuses"
    r = ask(envoy, "s", body=chat_body(prompt, stream=True, stream_options={"include_usage": True}))
    assert_status(r, "MISS")
    assert r.headers["content-type"].startswith("text/event-stream")
    chunks, text = parse_stream(utf8(r))
    assert text == f"echo: {prompt}"
    assert chunks[-1]["usage"] == {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
    keys = wait_stored(redis_server, "s")
    e = stored_body(redis_server, keys[0])
    assert e["object"] == "chat.completion"
    assert e["choices"][0]["message"] == {"role": "assistant", "content": f"echo: {prompt}"} or (
        e["choices"][0]["message"]["content"] == f"echo: {prompt}"), e
    assert e["choices"][0]["finish_reason"] == "stop"
    assert e["id"] == chunks[0]["id"] and e["model"] == MODEL
    assert redis_server.command("HGET", keys[0], "ctype") == b"application/json"


@pytest.mark.parametrize("include_usage", [True, False], ids=["usage", "no-usage"])
def test_stream_hit_from_stream_entry_is_valid_sse(envoy, llm, embed_openai, redis_server, include_usage):
    prompt = f"Explain tides in two sentences ({include_usage})"
    assert_status(ask(envoy, "s", body=chat_body(prompt, stream=True, stream_options={"include_usage": True})), "MISS")
    keys = wait_stored(redis_server, "s")
    stored = stored_body(redis_server, keys[0])
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    r = ask(envoy, "s", body=chat_body(prompt, stream=True, **extra))
    assert_status(r, "HIT", match="exact")
    check_hit_stream(r, stored, include_usage)
    assert llm.calls == 1


def test_stream_hit_from_json_entry(envoy, llm, redis_server):
    prompt = "Give me a long answer about the history of tea in China and Japan please"
    r1 = ask(envoy, "s", body=chat_body(prompt))
    assert_status(r1, "MISS")
    wait_stored(redis_server, "s")
    r = ask(envoy, "s", body=chat_body(prompt, stream=True, stream_options={"include_usage": True}))
    assert_status(r, "HIT", match="exact")
    chunks = check_hit_stream(r, r1.json(), include_usage=True)
    assert len(chunks) >= 2 + len(f"echo: {prompt}") // 20, "content is replayed in several chunks"
    assert llm.calls == 1


def test_json_hit_from_stream_entry(envoy, llm, redis_server):
    prompt = "Name three uses of copper"
    r1 = ask(envoy, "s", body=chat_body(prompt, stream=True))
    assert_status(r1, "MISS")
    _, text = parse_stream(utf8(r1))
    wait_stored(redis_server, "s")
    r = ask(envoy, "s", body=chat_body(prompt))
    assert_status(r, "HIT", match="exact")
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == text == f"echo: {prompt}"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert llm.calls == 1


def test_stream_semantic_hit(envoy, llm, redis_server):
    a = "Explain how photosynthesis converts sunlight into chemical energy"
    b = "Explain how photosynthesis actually converts sunlight into chemical energy"
    assert 0 < cosine_distance(a, b) < THRESHOLD
    assert_status(ask(envoy, "s", body=chat_body(a, stream=True)), "MISS")
    wait_stored(redis_server, "s")
    r = ask(envoy, "s", body=chat_body(b, stream=True))
    assert_status(r, "HIT", match="semantic")
    _, text = parse_stream(utf8(r))
    assert text == f"echo: {a}"


@pytest.mark.parametrize("cut", ["no-done", "no-finish"])
def test_incomplete_stream_not_stored(envoy, cutting_llm, redis_server, cut):
    cutting_llm.cut = cut
    skipped = envoy.counter("store_skipped")
    prompt = f"An answer that will be cut ({cut})"
    r = ask(envoy, "cut", body=chat_body(prompt, stream=True))
    assert_status(r, "MISS")
    wait_counter(envoy, "store_skipped", skipped + 1)
    assert redis_server.keys("sc_cut:*") == []
    cutting_llm.cut = None
    assert_status(ask(envoy, "cut", body=chat_body(prompt, stream=True)), "MISS")
    assert cutting_llm.calls == 2


def test_upstream_drop_mid_stream_not_stored(envoy, cutting_llm, redis_server):
    cutting_llm.cut = "drop"
    ok = envoy.counter("store_ok")
    skipped = envoy.counter("store_skipped")
    prompt = "An answer whose connection drops"
    try:
        r = ask(envoy, "cut", body=chat_body(prompt, stream=True))
        r.text  # noqa: B018  (may or may not raise: the body is truncated)
    except requests.RequestException:
        pass
    wait_counter(envoy, "store_skipped", skipped + 1)  # the cut stream's store outcome
    assert redis_server.keys("sc_cut:*") == []
    assert envoy.counter("store_ok") == ok
    cutting_llm.cut = None
    assert_status(ask(envoy, "cut", body=chat_body(prompt, stream=True)), "MISS")


@pytest.mark.parametrize("fmt", ["crlf", "nospace", "comments", "split"])
def test_upstream_sse_framing_variants_are_stored(envoy, cutting_llm, redis_server, fmt):
    cutting_llm.fmt = fmt
    prompt = f"Caf\u00e9 na\u00efve \u65e5\u672c\u8a9e {fmt} \u2615 question"
    r = ask(envoy, "cut", body=chat_body(prompt, stream=True, stream_options={"include_usage": True}))
    assert_status(r, "MISS")
    keys = wait_stored(redis_server, "cut")
    stored = stored_body(redis_server, keys[0])
    assert stored["choices"][0]["message"]["content"] == f"echo: {prompt}"
    assert stored["usage"]["total_tokens"] == 12
    cutting_llm.fmt = None
    r2 = ask(envoy, "cut", body=chat_body(prompt, stream=True, stream_options={"include_usage": True}))
    assert_status(r2, "HIT", match="exact")
    check_hit_stream(r2, stored, include_usage=True)
    assert cutting_llm.calls == 1


def test_client_disconnect_mid_stream_stores_nothing(envoy, llm, redis_server):
    llm.stream_chunk_delay = 0.15
    prompt = "A slowly streamed answer about the Roman aqueducts and their engineering"
    ok = envoy.counter("store_ok")
    skipped = envoy.counter("store_skipped")
    with socket.create_connection(("127.0.0.1", envoy.port("s")), timeout=10) as s:
        s.sendall(raw_request(chat_body(prompt, stream=True), CLIENT_AUTH))
        got = b""
        while got.count(b"data: ") < 2:
            part = s.recv(65536)
            assert part, got
            got += part
        assert b"x-cache-status: MISS" in got.lower() or b"x-cache-status: miss" in got.lower(), got[:400]
    # the stream ends when Envoy notices the reset: its store outcome is a skip
    wait_counter(envoy, "store_skipped", skipped + 1, timeout=8.0)
    assert redis_server.keys("sc_s:*") == []
    assert envoy.counter("store_ok") == ok
    llm.stream_chunk_delay = 0.0
    r = ask(envoy, "s", body=chat_body(prompt, stream=True))
    assert_status(r, "MISS")
    assert llm.calls == 2
    wait_stored(redis_server, "s")


def test_stream_tool_calls_not_stored_by_default(envoy, llm, redis_server):
    llm.tool_calls = True
    skipped = envoy.counter("store_skipped")
    r = ask(envoy, "s", body=chat_body("What is the weather in Oslo", stream=True))
    assert_status(r, "MISS")
    wait_counter(envoy, "store_skipped", skipped + 1)
    assert redis_server.keys("sc_s:*") == []


# ------------------------------------------------------------------------------------------------
# the official openai SDK
# ------------------------------------------------------------------------------------------------
def test_sdk_json_miss_then_hit_with_headers(envoy, llm, redis_server):
    c = client(envoy)
    msgs = [{"role": "user", "content": "SDK: what is the capital of Canada"}]
    raw = c.chat.completions.with_raw_response.create(model=MODEL, messages=msgs)
    assert raw.headers.get("x-cache-status") == "MISS"
    first = raw.parse()
    wait_stored(redis_server, "s")
    raw = c.chat.completions.with_raw_response.create(model=MODEL, messages=msgs)
    assert raw.headers.get("x-cache-status") == "HIT"
    assert raw.headers.get("x-cache-match") == "exact"
    assert raw.headers.get("x-cache-distance") == "0.0000"
    assert raw.headers.get("age", "").isdigit()
    hit = raw.parse()
    assert isinstance(hit, openai.types.chat.ChatCompletion)
    assert hit.choices[0].message.content == first.choices[0].message.content == f"echo: {msgs[0]['content']}"
    assert hit.id == first.id and hit.usage.total_tokens == 12
    assert llm.calls == 1


def _collect(stream):
    chunks = list(stream)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    finish = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    usage = [ch.usage for ch in chunks if ch.usage is not None]
    return chunks, text, finish, usage


def test_sdk_stream_hit_from_stream_entry(envoy, llm, redis_server):
    c = client(envoy)
    msgs = [{"role": "user",
             "content": "SDK: describe the colour of the sky on Mars "
                        "(ciel martien, caf\u00e9, \u65e5\u672c\u8a9e \u2615)"}]
    _, text1, finish1, usage1 = _collect(c.chat.completions.create(
        model=MODEL, messages=msgs, stream=True, stream_options={"include_usage": True}))
    assert text1 == f"echo: {msgs[0]['content']}" and finish1 == ["stop"] and len(usage1) == 1
    wait_stored(redis_server, "s")
    raw = c.chat.completions.with_raw_response.create(model=MODEL, messages=msgs, stream=True,
                                                      stream_options={"include_usage": True})
    assert raw.headers.get("x-cache-status") == "HIT"
    assert raw.headers.get("content-type", "").startswith("text/event-stream")
    chunks, text, finish, usage = _collect(raw.parse())
    assert text == text1
    assert finish == ["stop"]
    assert len(usage) == 1 and usage[0].total_tokens == usage1[0].total_tokens == 12
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == []
    assert llm.calls == 1


def test_sdk_stream_hit_from_json_entry_and_back(envoy, llm, redis_server):
    c = client(envoy)
    msgs = [{"role": "user", "content": "SDK: list the noble gases"}]
    first = c.chat.completions.create(model=MODEL, messages=msgs)
    wait_stored(redis_server, "s")
    _, text, finish, usage = _collect(c.chat.completions.create(model=MODEL, messages=msgs, stream=True))
    assert text == first.choices[0].message.content and finish == ["stop"] and usage == []
    # and the other way round, on another prompt: stream miss, JSON hit through the SDK
    msgs2 = [{"role": "user", "content": "SDK: list the alkali metals"}]
    _, text2, _, _ = _collect(c.chat.completions.create(model=MODEL, messages=msgs2, stream=True))
    wait_stored(redis_server, "s", 2)
    raw = c.chat.completions.with_raw_response.create(model=MODEL, messages=msgs2)
    assert raw.headers.get("x-cache-status") == "HIT"
    assert raw.parse().choices[0].message.content == text2
    assert llm.calls == 2


def test_sdk_stream_semantic_hit_headers(envoy, llm, redis_server):
    c = client(envoy)
    a = "Explain how photosynthesis converts sunlight into chemical energy"
    b = "Explain how photosynthesis actually converts sunlight into chemical energy"
    _collect(c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": a}], stream=True))
    wait_stored(redis_server, "s")
    raw = c.chat.completions.with_raw_response.create(model=MODEL, messages=[{"role": "user", "content": b}],
                                                      stream=True)
    assert raw.headers.get("x-cache-status") == "HIT"
    assert raw.headers.get("x-cache-match") == "semantic"
    assert float(raw.headers["x-cache-distance"]) == pytest.approx(cosine_distance(a, b), abs=2e-3)
    _, text, finish, _ = _collect(raw.parse())
    assert text == f"echo: {a}" and finish == ["stop"]


def test_sdk_stream_tool_call_hit(envoy, llm, redis_server):
    c = client(envoy, "tools")
    msgs = [{"role": "user", "content": "SDK: weather in Lisbon"}]
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    llm.tool_calls = True

    def run():
        chunks = list(c.chat.completions.create(model=MODEL, messages=msgs, tools=tools, stream=True))
        calls = {}
        for ch in chunks:
            for tc in (ch.choices[0].delta.tool_calls or []) if ch.choices else []:
                d = calls.setdefault(tc.index, {"id": None, "name": "", "args": ""})
                d["id"] = tc.id or d["id"]
                if tc.function:
                    d["name"] += tc.function.name or ""
                    d["args"] += tc.function.arguments or ""
        finish = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
        return calls, finish

    calls1, finish1 = run()
    assert finish1 == ["tool_calls"] and calls1[0]["name"] == "get_weather"
    wait_stored(redis_server, "tools")
    llm.tool_calls = False
    raw = c.chat.completions.with_raw_response.create(model=MODEL, messages=msgs, tools=tools)
    assert raw.headers.get("x-cache-status") == "HIT"
    msg = raw.parse().choices[0].message
    assert msg.tool_calls[0].function.name == "get_weather"
    assert json.loads(msg.tool_calls[0].function.arguments) == json.loads(calls1[0]["args"])
    calls2, finish2 = run()
    assert finish2 == ["tool_calls"]
    assert calls2 == calls1
    assert llm.calls == 1
