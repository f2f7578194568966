"""Self-checks of the harness (no filter involved): Redis with RediSearch, the Envoy TCP bridge to
Redis the filter relies on, and the stand-ins reached through a plain Envoy."""
import json

import pytest
import requests

from harness import Site, resp_encode
from standins import bow_embed, cosine_distance


@pytest.fixture(scope="module")
def plain_envoy(envoy_launcher):
    bridge = {"match": {"prefix": "/__redis"}, "route": {"cluster": "redis", "timeout": "2s"}}
    emb = {"match": {"prefix": "/v1/embeddings"}, "route": {"cluster": "embedding", "timeout": "5s"}}
    return envoy_launcher([Site("plain", policy=None, routes=[bridge, emb])], wasm=None)


def test_redis_has_search_module(redis_server):
    mods = redis_server.command("MODULE", "LIST")
    names = [m[m.index(b"name") + 1] for m in mods]
    assert b"search" in names
    assert isinstance(redis_server.command("FT._LIST"), list)


def test_tcp_bridge_to_redis(plain_envoy, redis_server):
    body = resp_encode("SET", "bridge:k", "v") + resp_encode("GET", "bridge:k") + resp_encode("QUIT")
    r = requests.post(plain_envoy.url("plain", "/__redis"), data=body, timeout=5)
    assert r.status_code == 200
    assert r.content == b"+OK\r\n$1\r\nv\r\n+OK\r\n"
    redis_server.delete_all_keys()


def test_llm_standin_through_envoy(plain_envoy, llm):
    r = requests.post(plain_envoy.url("plain"), json={"model": "m", "messages": [{"role": "user", "content": "hi there"}]},
                      headers={"authorization": "Bearer sk-client"}, timeout=5)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["object"] == "chat.completion" and j["choices"][0]["message"]["content"] == "echo: hi there"
    assert llm.calls == 1 and llm.last()["headers"]["authorization"] == "Bearer sk-client"
    assert "x-cache-status" not in r.headers


def test_llm_standin_streams_sse(plain_envoy, llm):
    body = {"model": "m", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "stream me"}]}
    r = requests.post(plain_envoy.url("plain"), json=body, timeout=5)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [ln[6:] for ln in r.text.split("\n") if ln.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "echo: stream me"
    assert chunks[-1]["usage"]["total_tokens"] == 12 and chunks[-1]["choices"] == []


def test_llm_standin_faults(plain_envoy, llm):
    llm.status = 429
    r = requests.post(plain_envoy.url("plain"), json={"model": "m", "messages": [{"role": "user", "content": "x"}]}, timeout=5)
    assert r.status_code == 429
    llm.reset()
    llm.tool_calls = True
    r = requests.post(plain_envoy.url("plain"), json={"model": "m", "messages": [{"role": "user", "content": "x"}]}, timeout=5)
    assert r.json()["choices"][0]["finish_reason"] == "tool_calls"


def test_embedding_standins(plain_envoy, embed_openai, embed_azure, embed_mistral):
    r = requests.post(plain_envoy.url("plain", "/v1/embeddings"), json={"model": "e", "input": "hello world"},
                      headers={"authorization": f"Bearer {embed_openai.api_key}"}, timeout=5)
    assert r.status_code == 200
    assert r.json()["data"][0]["embedding"] == pytest.approx(bow_embed("hello world"))
    r = requests.post(plain_envoy.url("plain", "/v1/embeddings"), json={"model": "e", "input": "x"},
                      headers={"authorization": "Bearer wrong"}, timeout=5)
    assert r.status_code == 401
    # Azure: api-key header and api-version query
    r = requests.post(embed_azure.url("dep"), json={"input": ["a b"]}, headers={"api-key": embed_azure.api_key}, timeout=5)
    assert r.status_code == 200 and len(r.json()["data"][0]["embedding"]) == 64
    r = requests.post(embed_azure.url("dep"), json={"input": ["a b"]},
                      headers={"authorization": f"Bearer {embed_azure.api_key}"}, timeout=5)
    assert r.status_code == 401
    # Mistral: list input, id field
    r = requests.post(embed_mistral.url(), json={"model": "mistral-embed", "input": ["a b", "c"]},
                      headers={"authorization": f"Bearer {embed_mistral.api_key}"}, timeout=5)
    j = r.json()
    assert r.status_code == 200 and j["id"] and [d["index"] for d in j["data"]] == [0, 1]
    embed_openai.status = 500
    r = requests.post(embed_openai.url(), json={"input": "x"},
                      headers={"authorization": f"Bearer {embed_openai.api_key}"}, timeout=5)
    assert r.status_code == 500


def test_bag_of_words_geometry():
    assert cosine_distance("capital city of France", "France: capital city?") < 1e-9
    assert cosine_distance("best pizza dough recipe", "how do magnets work") > 0.5
