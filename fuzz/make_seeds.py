#!/usr/bin/env python3
"""Writes the seed corpora fuzz/seeds/<target>/ from the repo's test data and the unit tests'
payloads (chat bodies, completions, SSE streams, RESP replies, policies). Deterministic: rerun
after changing it and commit the result. The targets' input layouts are in fuzz/fuzz_targets/."""
import hashlib
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "seeds"


def write(target: str, data: bytes) -> None:
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)


def rust_bytes(lit: str) -> bytes:
    """The bytes of a Rust b"..." literal body (the escapes the tests use)."""
    out, i = bytearray(), 0
    while i < len(lit):
        c = lit[i]
        if c == "\\":
            n = lit[i + 1]
            if n == "x":
                out.append(int(lit[i + 2 : i + 4], 16))
                i += 4
                continue
            out += {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\", '"': b'"'}[n]
            i += 2
            continue
        out += c.encode()
        i += 1
    return bytes(out)


def byte_literals(path: Path):
    return [rust_bytes(m) for m in re.findall(r'\bb"((?:[^"\\]|\\.)*)"', path.read_text())]


COMPLETION = {
    "id": "c1", "object": "chat.completion", "created": 1, "model": "gpt",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi there"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
}
TOOL_COMPLETION = {
    "id": "c2", "object": "chat.completion", "created": 2, "model": "gpt", "system_fingerprint": "fp",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [
        {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
        "finish_reason": "tool_calls"}],
}
CHATS = [
    {"model": "gpt-4o", "messages": [{"role": "user", "content": "What is the capital of France?"}]},
    {"model": "m", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "q"},
                                {"role": "assistant", "content": "a"}, {"role": "user", "content": "Why?"}],
     "temperature": 0.2, "max_tokens": 10, "tools": [{"type": "function", "function": {"name": "f"}}]},
    {"messages": [{"role": "system", "content": " How do I reset my password? "}]},
    {"model": "m", "stream": True, "stream_options": {"include_usage": True},
     "messages": [{"role": "user", "content": [{"type": "text", "text": "part one"}, {"type": "text", "text": "two"}]}]},
    {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
    {"model": "m", "n": 2, "logprobs": True, "messages": [{"role": "user", "content": "Ｆｕｌｌ　ｗｉｄｔｈ ½ café"}]},
    {"model": 3, "messages": []},
]
SSE = (
    b'data: {"id":"c","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
    b'data: {"id":"c","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"content":"h\\u00e9llo"},"finish_reason":null}]}\n\n'
    b': keepalive\r\n\r\n'
    b'data: {"id":"c","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b'data: {"id":"c","object":"chat.completion.chunk","created":5,"model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}\n\n'
    b"data: [DONE]\n\n"
)
SSE_TOOLS = (
    b'data: {"id":"t","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":null}]}\r\n\r\n'
    b'data: {"id":"t","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"a\\":1}"}}]},"finish_reason":null}]}\r\n\r\n'
    b'data: {"id":"t","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\r\n\r\n'
    b"data: [DONE]\r\n\r\n"
)


def bulk(b: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(b), b)


def knn(docs) -> bytes:
    out = b"*%d\r\n:%d\r\n" % (1 + 2 * len(docs), len(docs))
    for i, (dist, prompt) in enumerate(docs):
        fields = [(b"dist", dist), (b"body", json.dumps(COMPLETION).encode()), (b"ctype", b"application/json"),
                  (b"created", b"100"), (b"model", b"gpt"), (b"prompt", prompt)]
        out += bulk(b"semcache:k%d" % i) + b"*%d\r\n" % (2 * len(fields))
        for k, v in fields:
            out += bulk(k) + bulk(v)
    return out


def main() -> None:
    for i, c in enumerate(CHATS):
        for sel in (0, 1):
            write("request", bytes([sel, i % 8]) + json.dumps(c).encode())
    for body in (b'{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.6,0.8]}]}',
                 b'{"data":[{"embedding":[1e39,-0.0,3]}]}', b'{"error":{"message":"rate limited"}}'):
        write("embed_response", (200).to_bytes(2, "little") + bytes([2]) + body)
    write("embed_response", (429).to_bytes(2, "little") + bytes([2]) + b"{}")

    replies = [b for b in byte_literals(ROOT / "src/core/redis/resp.rs") + byte_literals(ROOT / "src/core/redis/store.rs")
               if b"\r\n" in b]
    replies += [(ROOT / "src/core/redis/testdata/ft_info_dim32.resp").read_bytes(),
                knn([(b"0.05", b"hello"), (b"0.1", b"hello there")]) + b"+OK\r\n",
                b"*4\r\n" + bulk(json.dumps(COMPLETION).encode()) + bulk(b"application/json") + bulk(b"5") + bulk(b"gpt") + b"+OK\r\n",
                b"*4\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n+OK\r\n"]
    for r in replies:
        write("resp", bytes([0, 128]) + r)
        write("resp", bytes([1, 200]) + b"+OK\r\n" + r)

    for stream in (SSE, SSE_TOOLS, SSE.replace(b"\n", b"\r\n"), b"\xEF\xBB\xBF" + SSE[:200]):
        write("sse", b"\x03\x01\x07\x00" + stream)
        write("capture", b"\x03" + b"\x02\x05\x40" + stream)
    for c in (COMPLETION, TOOL_COMPLETION):
        write("capture", b"\x00\x01\x11" + json.dumps(c).encode())
        write("capture", b"\x04\x00" + json.dumps(c).encode())
        write("entry", b"\x01" + json.dumps(c).encode())
    write("entry", b"\x00" + json.dumps({**COMPLETION, "choices": [{"index": 0, "message": {
        "role": "assistant", "content": "line\n\ndata: [DONE]\n\nevil", "refusal": "no"}, "finish_reason": "stop"}]}).encode())

    for p in sorted((ROOT / "envoy/policies").glob("*.json")):
        write("policy", p.read_bytes())
    write("policy", json.dumps({
        "embedding": {"provider": "openai-compatible", "url": "http://e:9/v1/embeddings", "model": "e", "dimensions": 4},
        "threshold": 0.2, "maxThreshold": 0.4, "verify": "strict", "topK": 3, "partition": {"contextWindow": None},
        "rules": [{"name": "a", "match": {"pathTemplate": "/v1/{x}/chat/completions", "methods": ["POST"]}, "enabled": False}],
    }).encode())

    for h in (b"no-cache, max-age=60", b"0.3", b"tenant-a", b'{"semantic_cache_enabled": false}', b"max-age=0"):
        write("headers", h)

    pairs = [("What is the capital of France?", ["What's the capital of France?", "What is the capital of Germany?"]),
             ("Convert 5 km to miles", ["Convert 50 km to miles", "Don't convert 5 km to miles"]),
             ("Wie spät ist es in Berlin?", ["Quelle heure est-il à Paris ?", "¿Qué hora es en Madrid?"])]
    for q, cs in pairs:
        write("verify", b"\x00" + "\0".join([q, *cs]).encode())
        write("verify", b"\x01" + "\0".join([q, *cs]).encode())
        write("tokenizer", b"\x80" + q.encode())


if __name__ == "__main__":
    main()
