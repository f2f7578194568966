"""The other API shapes end to end, with the official SDKs from PyPI as the clients: `anthropic`
(Messages), `google-genai` (Gemini generateContent / streamGenerateContent?alt=sse), `openai`
(Responses and embeddings). For each shape: miss, exact hit, semantic hit (paraphrase), a hit
replayed as that API's own event stream and parsed by the SDK (whether the entry was captured
from JSON or from a stream), and an incomplete upstream stream not stored. Embeddings: exact hits
only, never an embedding call or a KNN search.

One Envoy, one site `s` (threshold 0.15) whose upstream is `ShapesStandIn` (standins.py).
"""
from __future__ import annotations

import json

import anthropic
import openai
import pytest
import requests
from google import genai
from google.genai import types as gtypes

import harness
from harness import Site, policy_for, settle_stores, static_cluster, wait_stored
from standins import ShapesStandIn, bow_embed, cosine_distance

pytestmark = pytest.mark.usefixtures("clean_keys")
THRESHOLD = 0.15
KEY = "sk-shapes-client"
A = "Explain how photosynthesis converts sunlight into chemical energy"
B = "Explain how photosynthesis actually converts sunlight into chemical energy"
CLAUDE = "claude-sonnet-4-5"
GEMINI = "gemini-2.0-flash"


@pytest.fixture(scope="module")
def shapes():
    s = ShapesStandIn()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _reset_shapes(shapes):
    shapes.reset()
    yield


@pytest.fixture(scope="module")
def envoy(envoy_launcher, embed_openai, shapes):
    sites = [Site("s", policy_for("s", embed_openai, threshold=THRESHOLD), default_cluster="shapes")]
    return envoy_launcher(sites, clusters={"shapes": static_cluster("shapes", shapes.port)})


def base(envoy) -> str:
    return f"http://127.0.0.1:{envoy.port('s')}"


def counters(envoy) -> dict:
    return {k: envoy.counter(k) for k in ("hit_exact", "hit_semantic", "miss", "bypass", "store_ok", "store_skipped")}


def delta(envoy, before: dict) -> dict:
    now = counters(envoy)
    return {k: now[k] - before[k] for k in now if now[k] != before[k]}


def knn_searches(redis_server) -> int:
    """FT.SEARCH calls Redis has served so far."""
    stats = redis_server.command("INFO", "commandstats")
    stats = stats.decode() if isinstance(stats, bytes) else str(stats)
    for line in stats.splitlines():
        if line.lower().startswith("cmdstat_ft.search:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


def test_paraphrase_is_within_the_threshold():
    assert 0 < cosine_distance(A, B) < THRESHOLD


# ------------------------------------------------------------------------------------------------
# Anthropic Messages
# ------------------------------------------------------------------------------------------------
def claude(envoy) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base(envoy), api_key=KEY, max_retries=0, timeout=20)


def claude_ask(envoy, prompt, **kw):
    raw = claude(envoy).messages.with_raw_response.create(
        model=CLAUDE, max_tokens=64, messages=[{"role": "user", "content": prompt}], **kw)
    return raw.headers.get("x-cache-status"), raw.headers.get("x-cache-match"), raw.parse()


def claude_stream(envoy, prompt, **kw):
    raw = claude(envoy).messages.with_raw_response.create(
        model=CLAUDE, max_tokens=64, messages=[{"role": "user", "content": prompt}], stream=True, **kw)
    assert raw.headers["content-type"].startswith("text/event-stream")
    events = list(raw.parse())
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    return raw.headers.get("x-cache-status"), raw.headers.get("x-cache-match"), events, text


def test_anthropic_miss_exact_and_semantic_hits(envoy, shapes, redis_server):
    searches = knn_searches(redis_server)
    status, _, msg = claude_ask(envoy, A, system="Be brief.")
    assert knn_searches(redis_server) == searches + 1, "a chat-like shape does search (the check below can fail)"
    assert status == "MISS" and msg.content[0].text == f"echo: {A}"
    wait_stored(redis_server, "s")
    status, match, hit = claude_ask(envoy, A, system="Be brief.")
    assert (status, match) == ("HIT", "exact")
    assert hit.model_dump() == msg.model_dump()
    status, match, hit = claude_ask(envoy, B, system="Be brief.")
    assert (status, match) == ("HIT", "semantic") and hit.content[0].text == f"echo: {A}"
    assert shapes.calls == 1
    # The system prompt and max_tokens are context: another one is another partition.
    assert claude_ask(envoy, A, system="Answer in French.")[0] == "MISS"
    raw = claude(envoy).messages.with_raw_response.create(model=CLAUDE, max_tokens=65, system="Be brief.",
                                                          messages=[{"role": "user", "content": A}])
    assert raw.headers.get("x-cache-status") == "MISS"
    assert shapes.calls == 3


def test_anthropic_stream_miss_then_stream_and_json_hits(envoy, shapes, redis_server):
    status, _, events, text = claude_stream(envoy, A)
    assert status == "MISS" and text == f"echo: {A}"
    wait_stored(redis_server, "s")
    stored = json.loads(redis_server.command("HGET", redis_server.keys("sc_s:*")[0], "body"))
    assert stored["type"] == "message" and stored["content"][0]["text"] == f"echo: {A}"
    status, match, events, text = claude_stream(envoy, B)
    assert (status, match) == ("HIT", "semantic") and text == f"echo: {A}"
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"], kinds
    assert kinds.count("content_block_delta") >= 2, kinds
    # The SDK's own accumulating helper reads the replay too.
    with claude(envoy).messages.stream(model=CLAUDE, max_tokens=64, messages=[{"role": "user", "content": A}]) as st:
        final = st.get_final_message()
    assert final.content[0].text == f"echo: {A}" and final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 5
    status, match, msg = claude_ask(envoy, A)
    assert (status, match) == ("HIT", "exact") and msg.content[0].text == f"echo: {A}"
    assert shapes.calls == 1


def test_anthropic_json_entry_replayed_as_stream(envoy, shapes, redis_server):
    assert claude_ask(envoy, A)[0] == "MISS"
    wait_stored(redis_server, "s")
    status, match, _, text = claude_stream(envoy, A)
    assert (status, match, text) == ("HIT", "exact", f"echo: {A}")
    assert shapes.calls == 1


# ------------------------------------------------------------------------------------------------
# Gemini
# ------------------------------------------------------------------------------------------------
def gem(envoy) -> genai.Client:
    return genai.Client(api_key=KEY, http_options=gtypes.HttpOptions(base_url=base(envoy), timeout=20_000))


def gem_ask(envoy, prompt, **cfg):
    config = gtypes.GenerateContentConfig(**cfg) if cfg else None
    client = gem(envoy)  # kept referenced: the client closes its connection pool when collected
    r = client.models.generate_content(model=GEMINI, contents=prompt, config=config)
    return r.sdk_http_response.headers.get("x-cache-status"), r.sdk_http_response.headers.get("x-cache-match"), r


def gem_stream(envoy, prompt):
    client = gem(envoy)
    chunks = list(client.models.generate_content_stream(model=GEMINI, contents=prompt))
    h = chunks[0].sdk_http_response.headers
    return h.get("x-cache-status"), h.get("x-cache-match"), chunks, "".join(c.text or "" for c in chunks)


def test_gemini_miss_exact_and_semantic_hits(envoy, shapes, redis_server):
    status, _, r = gem_ask(envoy, A, system_instruction="Be brief.", max_output_tokens=64)
    assert status == "MISS" and r.text == f"echo: {A}"
    wait_stored(redis_server, "s")
    status, match, hit = gem_ask(envoy, A, system_instruction="Be brief.", max_output_tokens=64)
    assert (status, match) == ("HIT", "exact") and hit.text == f"echo: {A}"
    assert hit.candidates[0].finish_reason == gtypes.FinishReason.STOP
    status, match, hit = gem_ask(envoy, B, system_instruction="Be brief.", max_output_tokens=64)
    assert (status, match) == ("HIT", "semantic") and hit.text == f"echo: {A}"
    assert shapes.calls == 1
    # generationConfig (other than sampling) and the system instruction are context.
    assert gem_ask(envoy, A, system_instruction="Be brief.", max_output_tokens=65)[0] == "MISS"
    assert gem_ask(envoy, A, system_instruction="Be brief.", max_output_tokens=64, temperature=0.3)[0] == "HIT"
    assert shapes.calls == 2


def test_gemini_stream_miss_then_stream_and_json_hits(envoy, shapes, redis_server):
    status, _, chunks, text = gem_stream(envoy, A)
    assert status == "MISS" and text == f"echo: {A}"
    assert shapes.last()["query"].get("alt") == "sse"
    wait_stored(redis_server, "s")
    status, match, chunks, text = gem_stream(envoy, B)
    assert (status, match) == ("HIT", "semantic") and text == f"echo: {A}"
    assert len(chunks) >= 2 and chunks[-1].candidates[0].finish_reason == gtypes.FinishReason.STOP
    assert chunks[-1].usage_metadata.total_token_count == 12
    status, match, r = gem_ask(envoy, A)
    assert (status, match) == ("HIT", "exact") and r.text == f"echo: {A}"
    assert shapes.calls == 1


def test_gemini_json_entry_replayed_as_stream(envoy, shapes, redis_server):
    assert gem_ask(envoy, A)[0] == "MISS"
    wait_stored(redis_server, "s")
    status, match, chunks, text = gem_stream(envoy, A)
    assert (status, match, text) == ("HIT", "exact", f"echo: {A}")
    assert shapes.calls == 1


# ------------------------------------------------------------------------------------------------
# OpenAI Responses
# ------------------------------------------------------------------------------------------------
def oai(envoy) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base(envoy)}/v1", api_key=KEY, max_retries=0, timeout=20)


def resp_ask(envoy, prompt, **kw):
    raw = oai(envoy).responses.with_raw_response.create(model="gpt-4o-mini", input=prompt, **kw)
    return raw.headers.get("x-cache-status"), raw.headers.get("x-cache-match"), raw.parse()


def resp_stream(envoy, prompt, **kw):
    raw = oai(envoy).responses.with_raw_response.create(model="gpt-4o-mini", input=prompt, stream=True, **kw)
    assert raw.headers["content-type"].startswith("text/event-stream")
    events = list(raw.parse())
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    return raw.headers.get("x-cache-status"), raw.headers.get("x-cache-match"), events, text


def test_responses_miss_exact_and_semantic_hits(envoy, shapes, redis_server):
    status, _, r = resp_ask(envoy, A, instructions="Be brief.")
    assert status == "MISS" and r.output_text == f"echo: {A}"
    wait_stored(redis_server, "s")
    status, match, hit = resp_ask(envoy, A, instructions="Be brief.")
    assert (status, match) == ("HIT", "exact") and hit.output_text == f"echo: {A}" and hit.id == r.id
    items = [{"role": "user", "content": [{"type": "input_text", "text": B}]}]
    status, match, hit = resp_ask(envoy, items, instructions="Be brief.")
    assert (status, match) == ("HIT", "semantic") and hit.output_text == f"echo: {A}"
    assert shapes.calls == 1
    assert resp_ask(envoy, A, instructions="Be verbose.")[0] == "MISS"
    # Stateful: the answer depends on a conversation stored upstream.
    status, _, _ = resp_ask(envoy, A, instructions="Be brief.", previous_response_id="resp_earlier")
    assert status == "BYPASS"
    assert shapes.calls == 3


def test_responses_stream_miss_then_stream_and_json_hits(envoy, shapes, redis_server):
    status, _, events, text = resp_stream(envoy, A)
    assert status == "MISS" and text == f"echo: {A}"
    wait_stored(redis_server, "s")
    status, match, events, text = resp_stream(envoy, B)
    assert (status, match) == ("HIT", "semantic") and text == f"echo: {A}"
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed", kinds
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].response.output_text == f"echo: {A}"
    # The SDK's accumulating helper rebuilds the response from the replayed events.
    with oai(envoy).responses.stream(model="gpt-4o-mini", input=A) as st:
        final = st.get_final_response()
    assert final.output_text == f"echo: {A}" and final.status == "completed"
    status, match, r = resp_ask(envoy, A)
    assert (status, match) == ("HIT", "exact") and r.output_text == f"echo: {A}"
    assert shapes.calls == 1


def test_responses_json_entry_replayed_as_stream(envoy, shapes, redis_server):
    assert resp_ask(envoy, A)[0] == "MISS"
    wait_stored(redis_server, "s")
    status, match, _, text = resp_stream(envoy, A)
    assert (status, match, text) == ("HIT", "exact", f"echo: {A}")
    assert shapes.calls == 1


# ------------------------------------------------------------------------------------------------
# incomplete streams, shape isolation
# ------------------------------------------------------------------------------------------------
STREAMS = {
    "anthropic": ("/v1/messages", {"model": CLAUDE, "max_tokens": 64, "stream": True,
                                   "messages": [{"role": "user", "content": A}]}),
    "gemini": (f"/v1beta/models/{GEMINI}:streamGenerateContent?alt=sse", {"contents": [{"parts": [{"text": A}]}]}),
    "responses": ("/v1/responses", {"model": "gpt-4o-mini", "input": A, "stream": True}),
}


@pytest.mark.parametrize("cut", ["no-end", "drop"])
@pytest.mark.parametrize("shape", sorted(STREAMS))
def test_incomplete_stream_not_stored(envoy, shapes, redis_server, shape, cut):
    path, body = STREAMS[shape]
    shapes.cut = cut
    before = counters(envoy)
    r = requests.post(base(envoy) + path, json=body, headers={"x-api-key": KEY, "x-goog-api-key": KEY}, timeout=20)
    assert r.status_code == 200 and r.headers.get("x-cache-status") == "MISS", harness.explain(r)
    settle_stores(envoy)
    assert delta(envoy, before).get("store_skipped") == 1, delta(envoy, before)
    assert redis_server.keys("sc_s:*") == []
    # The complete stream afterwards is stored.
    shapes.cut = None
    assert requests.post(base(envoy) + path, json=body, headers={"x-api-key": KEY}, timeout=20).status_code == 200
    wait_stored(redis_server, "s")


def test_an_answer_is_served_only_to_its_own_api(envoy, shapes, redis_server):
    assert claude_ask(envoy, A)[0] == "MISS"
    wait_stored(redis_server, "s")
    # Same text, another API: another partition (and each replays its own format).
    assert resp_ask(envoy, A)[0] == "MISS"
    assert gem_ask(envoy, A)[0] == "MISS"
    wait_stored(redis_server, "s", 3)
    assert claude_ask(envoy, A)[:2] == ("HIT", "exact")
    assert shapes.calls == 3


# ------------------------------------------------------------------------------------------------
# embeddings: exact only
# ------------------------------------------------------------------------------------------------
def emb_ask(envoy, text, **kw):
    raw = oai(envoy).embeddings.with_raw_response.create(model="text-embedding-3-small", input=text, **kw)
    return raw.headers.get("x-cache-status"), raw.headers.get("x-cache-match"), raw.parse()


@pytest.mark.parametrize("fmt", ["base64", "float"])
def test_embeddings_exact_hit_without_embedding_or_knn(envoy, shapes, embed_openai, redis_server, fmt):
    kw = {} if fmt == "base64" else {"encoding_format": "float"}  # the SDK asks for base64 by default
    before, searches = counters(envoy), knn_searches(redis_server)
    status, _, r = emb_ask(envoy, A, **kw)
    assert status == "MISS"
    assert r.data[0].embedding == pytest.approx(bow_embed(A), abs=1e-6)
    assert shapes.last()["json"].get("encoding_format") == fmt
    wait_stored(redis_server, "s")
    key = redis_server.keys("sc_s:*")[0]
    assert redis_server.command("HGET", key, "vec") is None  # no vector: KNN can never find it
    status, match, hit = emb_ask(envoy, A, **kw)
    assert (status, match) == ("HIT", "exact")
    assert hit.data[0].embedding == r.data[0].embedding
    # A paraphrase (or another case) is another input: a miss, never a semantic hit.
    assert emb_ask(envoy, B, **kw)[0] == "MISS"
    assert emb_ask(envoy, A.lower(), **kw)[0] == "MISS"
    assert shapes.calls_to("/v1/embeddings") == 3
    assert embed_openai.calls == 0, "the cache itself never embedded an embeddings request"
    assert knn_searches(redis_server) == searches, "no KNN search for embeddings requests"
    d = delta(envoy, before)
    assert (d.get("hit_exact"), d.get("hit_semantic"), d.get("miss")) == (1, None, 3), d


def test_embeddings_list_input_and_azure_path(envoy, shapes, embed_openai, redis_server):
    texts = ["first text", "second text"]
    assert emb_ask(envoy, texts)[0] == "MISS"
    wait_stored(redis_server, "s")
    status, _, hit = emb_ask(envoy, texts)
    assert status == "HIT" and len(hit.data) == 2
    for d, t in zip(hit.data, texts):
        assert d.embedding == pytest.approx(bow_embed(t), abs=1e-6)
    az = openai.AzureOpenAI(azure_endpoint=base(envoy), api_key=KEY, api_version="2024-10-21", max_retries=0,
                            timeout=20)
    for expected in ("MISS", "HIT"):
        raw = az.embeddings.with_raw_response.create(model="emb-deploy", input="hello azure")
        assert raw.headers.get("x-cache-status") == expected
        assert raw.parse().data[0].embedding == pytest.approx(bow_embed("hello azure"), abs=1e-6)
        if expected == "MISS":
            wait_stored(redis_server, "s", 2)
    assert shapes.calls == 2 and embed_openai.calls == 0


def test_gemini_key_query_parameter_is_the_tenant(envoy, shapes, redis_server):
    """Gemini's REST clients may send the API key as `?key=`: it is a tenant credential (hashed into
    the partition, never logged), so another key never reads this key's entries."""
    url = f"{base(envoy)}/v1beta/models/{GEMINI}:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": A}]}]}

    def status(key: str) -> str:
        r = requests.post(f"{url}?key={key}", json=body, timeout=20)
        assert r.status_code == 200, r.text
        return r.headers["x-cache-status"]

    assert status("tenant-one-key") == "MISS"
    wait_stored(redis_server, "s")
    assert status("tenant-one-key") == "HIT"
    assert status("tenant-two-key") == "MISS"
    assert shapes.calls == 2
