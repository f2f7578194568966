"""Correctness of the in-filter embedding model (src/core/embed/local.rs), built natively as build/embed_server:
its vectors must match onnxruntime on the same model.onnx, tokenized by the `tokenizers` Python package from
the same tokenizer.json (truncated to the same cap), mean-pooled and L2-normalised. cosine >= 0.999 each.

Needs `scripts/build-local.sh` (build/embed_server + .local/models/<name>/); skipped otherwise.
Every prepared model dir under .local/models/ is checked (the default one first), since any may become
the default. SEMCACHE_REF_MODELS=a,b limits the list.
"""
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from harness import ROOT, free_port, terminate

SERVER = ROOT / "build" / "embed_server"
MODELS = ROOT / ".local" / "models"
MAX_TOKENS = 128

np = pytest.importorskip("numpy")
ort = pytest.importorskip("onnxruntime")
tokenizers = pytest.importorskip("tokenizers")

LONG = ("The quick brown fox jumps over the lazy dog near the riverbank while the sun sets slowly behind the "
        "mountains, painting the sky in shades of orange, pink and purple. ") * 12

SENTENCES = [
    "Hello",
    "hi",
    "",
    "   leading and trailing spaces   ",
    "What is the capital of France?",
    "what IS the CAPITAL of france",
    "How do I reset my password if I lost access to my email?",
    "Explain the difference between TCP and UDP in two sentences.",
    "Don't cancel my order; I didn't mean to click that button!!!",
    "Price: $1,299.99 (incl. 20% VAT) — ships 2024-07-15, ref #A-77/3b.",
    "Café crème, naïve façade, Ångström, Straße, über, résumé.",
    "東京の天気は明日どうなりますか？",
    "Как перезагрузить роутер?",
    "ما هو أفضل وقت لزيارة مصر؟",
    "I love this 😀🚀🔥 — it's great 👍🏽",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "SELECT id, name FROM users WHERE created_at > NOW() - INTERVAL '7 days' ORDER BY name;",
    '{"role": "user", "content": "summarise this JSON: {\\"a\\": [1, 2, 3]}"}',
    "tabs\tand\nnewlines\r\nmixed   whitespace",
    "a" * 300,
    "supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "!!!???...,,,;;;:::---___***",
    "1234567890 3.14159 -42 1e10 0x1F",
    LONG,
    " ".join(f"word{i}" for i in range(400)),
]


def model_dirs():
    if not MODELS.exists():
        return []
    want = [m for m in os.environ.get("SEMCACHE_REF_MODELS", "").split(",") if m]
    dirs = [d for d in sorted(MODELS.iterdir())
            if not d.is_symlink() and (d / "model.onnx").exists() and (d / "tokenizer.json").exists()]
    default = (MODELS / "default").resolve() if (MODELS / "default").exists() else None
    dirs.sort(key=lambda d: d != default)
    if want:
        dirs = [d for d in dirs if d.name in want]
    return dirs


def post(port, body, raw=False):
    data = body if raw else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/embeddings", data=data,
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


class Reference:
    def __init__(self, d: Path):
        self.tok = tokenizers.Tokenizer.from_file(str(d / "tokenizer.json"))
        self.tok.no_padding()
        self.tok.enable_truncation(max_length=MAX_TOKENS)
        self.sess = ort.InferenceSession(str(d / "model.onnx"), providers=["CPUExecutionProvider"])
        outs = [o.name for o in self.sess.get_outputs()]
        self.out = "last_hidden_state" if "last_hidden_state" in outs else outs[0]

    def ids(self, text):
        return self.tok.encode(text).ids

    def embed(self, text):
        ids = np.array([self.ids(text)], dtype=np.int64)
        feed = {}
        for i in self.sess.get_inputs():
            feed[i.name] = {"input_ids": ids, "attention_mask": np.ones_like(ids),
                            "token_type_ids": np.zeros_like(ids)}[i.name]
        h = self.sess.run([self.out], feed)[0][0]
        v = h.mean(axis=0) if h.ndim == 2 else h
        return v / np.linalg.norm(v)


@pytest.fixture(scope="module", params=model_dirs() or [None], ids=lambda d: d.name if d else "none")
def served(request):
    d = request.param
    if d is None:
        pytest.skip("no prepared model under .local/models (run scripts/build-local.sh)")
    if not SERVER.exists():
        pytest.skip("build/embed_server missing (run scripts/build-local.sh)")
    port = free_port()
    p = subprocess.Popen([str(SERVER), "--listen", f"127.0.0.1:{port}", "--model-dir", str(d),
                          "--max-tokens", str(MAX_TOKENS)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    health = json.loads(r.read())
                    break
            except Exception:
                if p.poll() is not None or time.time() > deadline:
                    out = p.stdout.read().decode(errors="replace") if p.stdout else ""
                    pytest.fail(f"embed_server did not come up for {d.name}: {out[-500:]}")
                time.sleep(0.1)
        yield port, Reference(d), health, d
    finally:
        terminate(p, 10)


def test_health(served):
    port, ref, health, d = served
    assert health["status"] == "ok"
    assert health["max_tokens"] == MAX_TOKENS
    assert health["dimensions"] > 0


def test_matches_onnxruntime(served):
    port, ref, health, d = served
    assert len(SENTENCES) >= 20
    worst = (2.0, None)
    for i, text in enumerate(SENTENCES):
        st, body = post(port, {"input": text, "model": "local"})
        if not ref.ids(text):  # e.g. "" with a tokenizer that adds no special tokens: nothing to embed
            assert st == 400, (i, body)
            continue
        assert st == 200, (i, body)
        got = np.array(body["data"][0]["embedding"], dtype=np.float64)
        assert got.shape == (health["dimensions"],)
        assert abs(np.linalg.norm(got) - 1.0) < 1e-4
        ids = ref.ids(text)
        assert body["usage"]["prompt_tokens"] == len(ids), (i, "token count differs from the reference tokenizer")
        assert len(ids) <= MAX_TOKENS
        cos = float(got @ ref.embed(text))
        worst = min(worst, (cos, i))
        assert cos >= 0.999, f"{d.name}: sentence {i} ({text[:40]!r}): cosine {cos:.6f}"
    print(f"{d.name}: worst cosine {worst[0]:.6f} (sentence {worst[1]})")


def test_long_input_is_truncated_like_reference(served):
    port, ref, health, d = served
    full = tokenizers.Tokenizer.from_file(str(d / "tokenizer.json"))
    full.no_truncation()
    assert len(full.encode(LONG).ids) > MAX_TOKENS
    st, body = post(port, {"input": LONG})
    assert st == 200
    assert body["usage"]["prompt_tokens"] == MAX_TOKENS
    # the tail beyond the cap does not change the vector
    st, body2 = post(port, {"input": LONG + " completely different ending about quantum chromodynamics"})
    assert st == 200
    a, b = np.array(body["data"][0]["embedding"]), np.array(body2["data"][0]["embedding"])
    assert float(a @ b) > 0.99999


def test_huge_input_is_cheap_and_same_as_prefix(served):
    port, ref, health, d = served
    huge = LONG * 400  # ~1 MB: only the first max_tokens*100 characters are tokenized
    t = time.time()
    st, body = post(port, {"input": huge})
    assert st == 200 and time.time() - t < 5
    assert body["usage"]["prompt_tokens"] == MAX_TOKENS
    st, body2 = post(port, {"input": LONG})
    assert float(np.array(body["data"][0]["embedding"]) @ np.array(body2["data"][0]["embedding"])) > 0.99999


def test_batch_and_response_shape(served):
    port, ref, health, d = served
    texts = ["first", "second sentence", "third one here"]
    st, body = post(port, {"input": texts, "model": "whatever"})
    assert st == 200
    assert body["object"] == "list"
    assert [x["index"] for x in body["data"]] == [0, 1, 2]
    assert all(x["object"] == "embedding" for x in body["data"])
    assert body["model"] and isinstance(body["model"], str)
    assert body["usage"]["total_tokens"] == sum(len(ref.ids(t)) for t in texts)
    single = [post(port, {"input": t})[1]["data"][0]["embedding"] for t in texts]
    for x, s in zip(body["data"], single):
        assert float(np.array(x["embedding"]) @ np.array(s)) > 0.99999


def test_base64_encoding(served):
    import base64
    port, ref, health, d = served
    st, body = post(port, {"input": "hello world", "encoding_format": "base64"})
    assert st == 200
    v = np.frombuffer(base64.b64decode(body["data"][0]["embedding"]), dtype="<f4")
    st, body2 = post(port, {"input": "hello world"})
    assert np.allclose(v, np.array(body2["data"][0]["embedding"], dtype=np.float32), atol=1e-6)


def test_bad_requests(served):
    port = served[0]
    assert post(port, b"{not json", raw=True)[0] == 400
    assert post(port, {"input": 5})[0] == 400
    assert post(port, {"input": []})[0] == 400
    assert post(port, {"input": ["ok", 3]})[0] == 400
    assert post(port, {"nope": "x"})[0] == 400
