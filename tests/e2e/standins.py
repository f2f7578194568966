"""In-process stand-ins for the servers around the filter (stdlib only).

* ``LlmStandIn``: OpenAI-style chat completions upstream
  (``POST /v1/chat/completions`` and Azure ``POST /openai/deployments/{d}/chat/completions``),
  non-streaming and SSE streaming, with per-test faults (status code, delay, tool_calls answer).
* ``EmbeddingStandIn``: one embedding provider flavour per instance
  (``openai`` = OpenAI-compatible ``POST /v1/embeddings`` with ``Authorization: Bearer``,
  ``azure`` = ``POST /openai/deployments/{d}/embeddings?api-version=...`` with ``api-key``,
  ``mistral`` = ``POST /v1/embeddings`` with ``Authorization: Bearer`` and list input),
  returning deterministic hashed bag-of-words vectors (see ``bow_embed``).

Faults (all off by default, reset between tests): ``status``, ``delay``, ``fault`` (``reset``,
``truncated``; or per request with the header ``x-standin-fault``); LLM: ``x-standin-status``
header, ``done_tail_delay``, ``answer``; embeddings: ``answer_dim``, ``echo_credentials``.

Every stand-in runs a ``ThreadingHTTPServer`` on 127.0.0.1 on a free port in a daemon thread,
records every request (path, headers, parsed JSON body) and can be reset between tests.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DIM = 64
STOPWORDS = frozenset(
    "a an the of to is are was be and or in on at for with please me my i you your it this that "
    "what how can could would".split()
)
_WORD = re.compile(r"[a-z0-9]+")


def bow_tokens(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


def bow_embed(text: str, dim: int = DIM) -> list[float]:
    """Hashed bag of words, L2-normalised: same words in any order give the same vector."""
    v = [0.0] * dim
    for w in bow_tokens(text):
        h = int.from_bytes(hashlib.sha256(w.encode()).digest()[:8], "little")
        v[h % dim] += 1.0
    n = math.sqrt(sum(x * x for x in v))
    if n == 0.0:
        v[0] = 1.0
        return v
    return [x / n for x in v]


def cosine_distance(a: str, b: str) -> float:
    """The distance RediSearch COSINE reports for the two texts' vectors (0 = same direction)."""
    va, vb = bow_embed(a), bow_embed(b)
    return 1.0 - sum(x * y for x, y in zip(va, vb))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):  # resets by Envoy are expected; stay quiet
        pass


class _Aborted(Exception):
    """The client (Envoy) closed the connection before the whole request body arrived."""


class _StandIn:
    """Common plumbing: server thread, request log, fault switches."""

    name = "standin"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: list[dict] = []  # complete requests only
        self.aborted: list[dict] = []  # requests whose body never fully arrived (reset by Envoy)
        self.status: int | None = None  # force this HTTP status (e.g. 500, 429)
        self.delay: float = 0.0  # sleep before answering (seconds)
        # "reset": close the connection with a TCP RST instead of answering; "truncated": a 200 whose
        # body stops half-way (content-length promises more) and the connection closes.
        # The request header `x-standin-fault` selects one per request (it wins over this setting).
        self.fault: str | None = None
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: without TCP_NODELAY the body waits
            # ~40 ms for a delayed ACK, which would dominate every latency figure.
            disable_nagle_algorithm = True

            def log_message(self, fmt, *args):  # keep pytest output quiet
                pass

            def do_POST(self):  # noqa: N802
                try:
                    standin._handle(self)
                except (_Aborted, BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def do_GET(self):  # noqa: N802
                self.do_POST()

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name=self.name, daemon=True)
        self._thread.start()

    # -- control -------------------------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.aborted.clear()
        self.status = None
        self.delay = 0.0
        self.fault = None

    @property
    def calls(self) -> int:
        """Complete requests received (what an upstream would actually process and bill)."""
        with self._lock:
            return len(self.requests)

    @property
    def aborted_calls(self) -> int:
        """Requests whose headers arrived but whose body did not (Envoy reset the stream)."""
        with self._lock:
            return len(self.aborted)

    def last(self) -> dict:
        with self._lock:
            return self.requests[-1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- plumbing --------------------------------------------------------------------------------
    def _read(self, h: BaseHTTPRequestHandler) -> dict:
        n = int(h.headers.get("content-length") or 0)
        try:
            raw = h.rfile.read(n) if n else b""
            if not n and h.headers.get("transfer-encoding", "").lower() == "chunked":
                raw = _read_chunked(h.rfile)
        except (OSError, ValueError):
            raw = None
        complete = raw is not None and len(raw) == n if n else raw is not None
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        u = urlsplit(h.path)
        rec = {
            "method": h.command,
            "path": u.path,
            "query": {k: v[0] for k, v in parse_qs(u.query).items()},
            "headers": {k.lower(): v for k, v in h.headers.items()},
            "raw": raw,
            "json": body,
            "time": time.time(),
        }
        with self._lock:
            (self.requests if complete else self.aborted).append(rec)
        if not complete:
            raise _Aborted()
        return rec

    @staticmethod
    def _send_json(h: BaseHTTPRequestHandler, status: int, obj, extra_headers=None) -> None:
        data = json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(data)))
        for k, v in (extra_headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError

    def _fault(self, h: BaseHTTPRequestHandler, rec: dict) -> str | None:
        return rec["headers"].get("x-standin-fault") or self.fault

    @staticmethod
    def _reset(h: BaseHTTPRequestHandler) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0) without answering."""
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.connection.close()
        h.close_connection = True

    @staticmethod
    def _send_truncated(h: BaseHTTPRequestHandler, obj) -> None:
        data = json.dumps(obj).encode()
        h.send_response(200)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(data)))
        h.end_headers()
        h.wfile.write(data[: len(data) // 2])
        h.wfile.flush()
        h.close_connection = True


def _read_chunked(f) -> bytes:
    out = b""
    while True:
        line = f.readline()
        if not line:
            raise ValueError("connection closed inside a chunked body")
        size = int(line.strip().split(b";")[0], 16)
        if size == 0:
            f.readline()
            return out
        out += f.read(size)
        f.readline()


def _error_body(status: int, message: str) -> dict:
    return {"error": {"message": message, "type": "standin_error", "code": status}}


_AZURE_CHAT = re.compile(r"^/openai/deployments/([^/]+)/chat/completions$")
_AZURE_EMB = re.compile(r"^/openai/deployments/([^/]+)/embeddings$")


def last_user_text(body: dict) -> str:
    for m in reversed(body.get("messages") or []):
        if m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, list):
                return " ".join(p.get("text", "") for p in c if isinstance(p, dict))
            return str(c or "")
    return ""


class LlmStandIn(_StandIn):
    """OpenAI chat completions upstream. Answers ``echo: <last user message>``.

    Switches (reset by ``reset()``): ``status`` (answer this status with an error body),
    ``delay`` (seconds before answering), ``tool_calls`` (answer with a tool call),
    ``stream_chunk_delay`` (seconds between SSE chunks), ``done_tail_delay`` (seconds between the
    ``data: [DONE]`` chunk and the terminating chunk of a stream), ``answer`` (this content instead
    of the echo), ``fault`` (see ``_StandIn``; ``"reset-mid-stream"`` resets a stream after two
    events).
    """

    name = "llm-standin"

    def __init__(self) -> None:
        self.tool_calls = False
        self.stream_chunk_delay = 0.0
        self.done_tail_delay = 0.0
        self.answer: str | None = None
        super().__init__()

    def reset(self) -> None:
        super().reset()
        self.tool_calls = False
        self.stream_chunk_delay = 0.0
        self.done_tail_delay = 0.0
        self.answer = None

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        rec = self._read(h)
        n = self.calls
        path = rec["path"]
        if h.command != "POST" or not (path == "/v1/chat/completions" or _AZURE_CHAT.match(path)):
            return self._send_json(h, 404, _error_body(404, f"no route {h.command} {path}"))
        if self.delay:
            time.sleep(self.delay)
        fault = self._fault(h, rec)
        if fault == "reset":
            return self._reset(h)
        status = int(rec["headers"].get("x-standin-status") or 0) or self.status
        if status is not None:
            return self._send_json(h, status, _error_body(status, "forced by test"),
                                   {"x-standin-call": str(n)})
        body = rec["json"]
        if not isinstance(body, dict):
            return self._send_json(h, 400, _error_body(400, "body is not JSON"))
        m = _AZURE_CHAT.match(path)
        model = body.get("model") or (m.group(1) if m else "unknown")
        text = self.answer if self.answer is not None else "echo: " + last_user_text(body)
        if fault == "truncated" and not body.get("stream"):
            return self._send_truncated(h, {"id": f"chatcmpl-standin-{n}", "object": "chat.completion",
                                            "created": 1, "model": model, "choices": [
                                                {"index": 0, "message": {"role": "assistant", "content": text},
                                                 "finish_reason": "stop"}]})
        cid = f"chatcmpl-standin-{n}"
        created = 1700000000 + n
        usage = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
        if body.get("stream"):
            h.standin_cut = fault == "reset-mid-stream"  # read by _stream (subclasses keep its signature)
            return self._stream(h, body, cid, created, model, text, usage, n)
        if self.tool_calls:
            message = {
                "role": "assistant", "content": None,
                "tool_calls": [{"id": f"call_{n}", "type": "function",
                                "function": {"name": "get_weather", "arguments": json.dumps({"q": text})}}],
            }
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": text}
            finish = "stop"
        resp = {
            "id": cid, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": usage,
        }
        self._send_json(h, 200, resp, {"x-standin-call": str(n)})

    def _stream(self, h, body, cid, created, model, text, usage, n) -> None:
        cut = getattr(h, "standin_cut", False)
        h.send_response(200)
        h.send_header("content-type", "text/event-stream")
        h.send_header("cache-control", "no-cache")
        h.send_header("transfer-encoding", "chunked")
        h.send_header("x-standin-call", str(n))
        h.end_headers()

        def chunk(delta, finish=None, extra=None):
            c = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                 "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
            if extra:
                c.update(extra)
            return c

        events = [chunk({"role": "assistant", "content": ""})]
        if self.tool_calls:
            events.append(chunk({"tool_calls": [{"index": 0, "id": f"call_{n}", "type": "function",
                                                 "function": {"name": "get_weather", "arguments": ""}}]}))
            events.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": json.dumps({"q": text})}}]}))
            events.append(chunk({}, "tool_calls"))
        else:
            words = text.split(" ")
            for i, w in enumerate(words):
                events.append(chunk({"content": w if i == 0 else " " + w}))
            events.append(chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                           "choices": [], "usage": usage})
        try:
            for i, e in enumerate(events):
                if cut and i == 2:
                    return self._reset(h)
                self._write_chunk(h, b"data: " + json.dumps(e).encode() + b"\n\n")
                if self.stream_chunk_delay:
                    time.sleep(self.stream_chunk_delay)
            self._write_chunk(h, b"data: [DONE]\n\n")
            if self.done_tail_delay:
                time.sleep(self.done_tail_delay)
            h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    @staticmethod
    def _write_chunk(h, data: bytes) -> None:
        h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        h.wfile.flush()


class EmbeddingStandIn(_StandIn):
    """Embedding provider stand-in; ``flavor`` is ``openai`` | ``azure`` | ``mistral``."""

    AZURE_API_VERSION_REQUIRED = True

    def __init__(self, flavor: str = "openai", api_key: str = "test-embed-key", dim: int = DIM) -> None:
        assert flavor in ("openai", "azure", "mistral"), flavor
        self.flavor = flavor
        self.api_key = api_key
        self.dim = dim
        self.answer_dim: int | None = None  # answer vectors of this size instead of `dim`
        self.echo_credentials = False  # error bodies quote the credentials received (as some providers do)
        self.name = f"embed-{flavor}-standin"
        super().__init__()

    def reset(self) -> None:
        super().reset()
        self.answer_dim = None
        self.echo_credentials = False

    def url(self, deployment: str = "embed", api_version: str = "2024-10-21") -> str:
        """The URL to put in the policy (``embedding.url``)."""
        if self.flavor == "azure":
            return f"http://127.0.0.1:{self.port}/openai/deployments/{deployment}/embeddings?api-version={api_version}"
        return f"http://127.0.0.1:{self.port}/v1/embeddings"

    def _auth_ok(self, headers: dict) -> bool:
        if self.flavor == "azure":
            return headers.get("api-key") == self.api_key
        return headers.get("authorization") == f"Bearer {self.api_key}"

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        rec = self._read(h)
        path = rec["path"]
        if h.command != "POST":
            return self._send_json(h, 405, _error_body(405, "POST only"))
        if self.flavor == "azure":
            m = _AZURE_EMB.match(path)
            if not m:
                return self._send_json(h, 404, _error_body(404, f"no route {path}"))
            if self.AZURE_API_VERSION_REQUIRED and "api-version" not in rec["query"]:
                return self._send_json(h, 404, _error_body(404, "api-version query parameter missing"))
        elif path != "/v1/embeddings":
            return self._send_json(h, 404, _error_body(404, f"no route {path}"))
        if not self._auth_ok(rec["headers"]):
            return self._send_json(h, 401, _error_body(401, "bad or missing credentials"))
        if self.delay:
            time.sleep(self.delay)
        fault = self._fault(h, rec)
        if fault == "reset":
            return self._reset(h)
        if self.status is not None:
            msg = "forced by test"
            if self.echo_credentials:
                cred = rec["headers"].get("api-key") or rec["headers"].get("authorization", "")
                msg = f"Incorrect API key provided: {cred}"
            return self._send_json(h, self.status, _error_body(self.status, msg))
        body = rec["json"]
        if not isinstance(body, dict) or "input" not in body:
            return self._send_json(h, 400, _error_body(400, "missing input"))
        inputs = body["input"]
        if isinstance(inputs, str):
            if self.flavor == "mistral":
                return self._send_json(h, 422, _error_body(422, "mistral stand-in expects input as a list"))
            inputs = [inputs]
        if not isinstance(inputs, list) or not all(isinstance(x, str) for x in inputs):
            return self._send_json(h, 400, _error_body(400, "input must be a string or a list of strings"))
        model = body.get("model") or "standin-embed"
        data = [{"object": "embedding", "embedding": bow_embed(t, self.answer_dim or self.dim), "index": i}
                for i, t in enumerate(inputs)]
        ntok = sum(len(t.split()) for t in inputs)
        resp = {"object": "list", "data": data, "model": model,
                "usage": {"prompt_tokens": ntok, "total_tokens": ntok}}
        if self.flavor == "mistral":
            resp = {"id": f"embd-{self.calls}", **resp,
                    "usage": {"prompt_tokens": ntok, "total_tokens": ntok, "completion_tokens": 0}}
        if fault == "truncated":
            return self._send_truncated(h, resp)
        self._send_json(h, 200, resp)


# ------------------------------------------------------------------------------------------------
# Other API shapes (Anthropic Messages, Gemini, OpenAI Responses, embeddings) on one upstream
# ------------------------------------------------------------------------------------------------
_GEMINI = re.compile(r"^/v1(?:beta|alpha)?/models/([^/:]+):(generateContent|streamGenerateContent)$")


def _b64_floats(v: list[float]) -> str:
    import base64
    import struct
    return base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode()


class ShapesStandIn(_StandIn):
    """One upstream speaking Anthropic ``POST /v1/messages``, Gemini
    ``POST /v1beta/models/{m}:generateContent`` / ``:streamGenerateContent?alt=sse``, OpenAI
    ``POST /v1/responses`` and ``POST /v1/embeddings`` (float or base64 vectors), each in its own
    wire format, JSON and streaming. Text answers are ``echo: <last user text>``.

    ``cut`` (reset by ``reset()``) breaks streams: ``"no-end"`` leaves out the event that ends a
    complete stream (Anthropic ``message_stop``, Gemini ``finishReason``, Responses
    ``response.completed``); ``"drop"`` ends the response after the first few events."""

    name = "shapes-standin"

    def __init__(self) -> None:
        self.cut: str | None = None
        super().__init__()

    def reset(self) -> None:
        super().reset()
        self.cut = None

    def calls_to(self, prefix: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r["path"].startswith(prefix))

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        rec = self._read(h)
        path, body = rec["path"], rec["json"]
        if h.command != "POST" or not isinstance(body, dict):
            return self._send_json(h, 404, _error_body(404, f"no route {h.command} {path}"))
        if self.status is not None:
            return self._send_json(h, self.status, _error_body(self.status, "forced by test"))
        n = self.calls
        if path == "/v1/messages":
            return self._anthropic(h, body, n)
        m = _GEMINI.match(path)
        if m:
            return self._gemini(h, body, m.group(1), m.group(2) == "streamGenerateContent", n)
        if path == "/v1/responses":
            return self._responses(h, body, n)
        if path == "/v1/embeddings" or _AZURE_EMB.match(path):
            return self._embeddings(h, body)
        return self._send_json(h, 404, _error_body(404, f"no route {path}"))

    # -- plumbing ------------------------------------------------------------------------------
    def _sse(self, h, frames: list[bytes]) -> None:
        h.send_response(200)
        h.send_header("content-type", "text/event-stream; charset=utf-8")
        h.send_header("transfer-encoding", "chunked")
        h.end_headers()
        if self.cut == "drop":
            frames = frames[:3]
        try:
            for f in frames:
                h.wfile.write(b"%x\r\n%s\r\n" % (len(f), f))
                h.wfile.flush()
            h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    @staticmethod
    def _named(kind: str, data: dict) -> bytes:
        return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()

    @staticmethod
    def _words(text: str) -> list[str]:
        ws = text.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(ws)]

    # -- Anthropic -----------------------------------------------------------------------------
    @staticmethod
    def _anthropic_text(body: dict) -> str:
        for m in reversed(body.get("messages") or []):
            if m.get("role") == "user":
                c = m.get("content")
                if isinstance(c, list):
                    return " ".join(b.get("text", "") for b in c if isinstance(b, dict))
                return str(c or "")
        return ""

    def _anthropic(self, h, body, n):
        text = "echo: " + self._anthropic_text(body)
        msg = {"id": f"msg_standin_{n}", "type": "message", "role": "assistant", "model": body.get("model"),
               "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
               "usage": {"input_tokens": 7, "output_tokens": 5}}
        if not body.get("stream"):
            return self._send_json(h, 200, msg)
        start = dict(msg, content=[], stop_reason=None, usage={"input_tokens": 7, "output_tokens": 1})
        frames = [self._named("message_start", {"type": "message_start", "message": start}),
                  self._named("content_block_start", {"type": "content_block_start", "index": 0,
                                                      "content_block": {"type": "text", "text": ""}}),
                  self._named("ping", {"type": "ping"})]
        frames += [self._named("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                       "delta": {"type": "text_delta", "text": w}})
                   for w in self._words(text)]
        frames += [self._named("content_block_stop", {"type": "content_block_stop", "index": 0}),
                   self._named("message_delta", {"type": "message_delta",
                                                 "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                                 "usage": {"output_tokens": 5}})]
        if self.cut != "no-end":
            frames.append(self._named("message_stop", {"type": "message_stop"}))
        self._sse(h, frames)

    # -- Gemini --------------------------------------------------------------------------------
    def _gemini(self, h, body, model, stream, n):
        user = [c for c in body.get("contents") or [] if c.get("role", "user") == "user"]
        last = " ".join(p.get("text", "") for p in (user[-1].get("parts") if user else []))
        text = "echo: " + last
        usage = {"promptTokenCount": 7, "candidatesTokenCount": 5, "totalTokenCount": 12}
        head = {"modelVersion": model, "responseId": f"gem-standin-{n}"}
        if not stream:
            return self._send_json(h, 200, {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                                                            "finishReason": "STOP", "index": 0}],
                                            "usageMetadata": usage, **head})
        words = self._words(text)
        frames = []
        for i, w in enumerate(words):
            cand = {"content": {"role": "model", "parts": [{"text": w}]}, "index": 0}
            chunk = {"candidates": [cand], **head}
            if i + 1 == len(words) and self.cut != "no-end":
                cand["finishReason"] = "STOP"
                chunk["usageMetadata"] = usage
            frames.append(b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n")
        self._sse(h, frames)

    # -- OpenAI Responses ----------------------------------------------------------------------
    def _responses(self, h, body, n):
        inp = body.get("input")
        if isinstance(inp, list):
            users = [i for i in inp if i.get("role") == "user"]
            c = users[-1].get("content") if users else ""
            inp = " ".join(p.get("text", "") for p in c) if isinstance(c, list) else str(c)
        text = "echo: " + str(inp)
        rid, mid = f"resp_standin_{n}", f"msg_standin_{n}"
        part = {"type": "output_text", "text": text, "annotations": []}
        item = {"type": "message", "id": mid, "status": "completed", "role": "assistant", "content": [part]}
        resp = {"id": rid, "object": "response", "created_at": 1700000000 + n, "status": "completed",
                "model": body.get("model"), "output": [item], "instructions": body.get("instructions"),
                "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "error": None,
                "incomplete_details": None, "metadata": {},
                "usage": {"input_tokens": 7, "output_tokens": 5, "total_tokens": 12,
                          "input_tokens_details": {"cached_tokens": 0},
                          "output_tokens_details": {"reasoning_tokens": 0}}}
        if not body.get("stream"):
            return self._send_json(h, 200, resp)
        seq = iter(range(10_000))

        def ev(kind, **data):
            return self._named(kind, {"type": kind, "sequence_number": next(seq), **data})

        start = dict(resp, status="in_progress", output=[], usage=None)
        at = {"item_id": mid, "output_index": 0, "content_index": 0}
        frames = [ev("response.created", response=start), ev("response.in_progress", response=start),
                  ev("response.output_item.added", output_index=0,
                     item=dict(item, status="in_progress", content=[])),
                  ev("response.content_part.added", part=dict(part, text=""), **at)]
        frames += [ev("response.output_text.delta", delta=w, logprobs=[], **at) for w in self._words(text)]
        frames += [ev("response.output_text.done", text=text, logprobs=[], **at),
                   ev("response.content_part.done", part=part, **at),
                   ev("response.output_item.done", output_index=0, item=item)]
        if self.cut != "no-end":
            frames.append(ev("response.completed", response=resp))
        self._sse(h, frames)

    # -- embeddings ----------------------------------------------------------------------------
    def _embeddings(self, h, body):
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(inputs, list) or not all(isinstance(x, str) for x in inputs):
            return self._send_json(h, 400, _error_body(400, "input must be a string or a list of strings"))
        b64 = body.get("encoding_format") == "base64"
        data = [{"object": "embedding", "index": i,
                 "embedding": _b64_floats(bow_embed(t)) if b64 else bow_embed(t)} for i, t in enumerate(inputs)]
        ntok = sum(len(t.split()) for t in inputs)
        self._send_json(h, 200, {"object": "list", "data": data, "model": body.get("model"),
                                 "usage": {"prompt_tokens": ntok, "total_tokens": ntok}})
