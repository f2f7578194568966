"""`make demo`: the cache in one minute.

Starts a private stack on free ports (real redis-server + RediSearch, real Envoy with the default filter
build and envoy/policies/local.json) in front of a local LLM stand-in that answers in OpenAI's chat
completions format, with `usage`, after a realistic delay (DEMO_LLM_LATENCY_MS, default 300-900 ms).
Then it sends a scripted series of prompts through the official `openai` SDK (repeats, near-repeats,
paraphrases, look-alike traps, a second tenant, one streamed request), prints one row per request and the
totals from Envoy's admin /stats. Everything it started is stopped at the end, on Ctrl-C and on failure.

    .local/venv/bin/python scripts/demo.py [--json rows.json] [--keep]

DEMO_LLM_LATENCY_MS="300-900" (a range, or one number) sets the stand-in's delay; the smoke test uses a
shorter one. Nothing here needs an API key or the network.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import openai  # noqa: E402
import requests  # noqa: E402

from harness import EnvoyProcess, RedisServer, Site, static_cluster, wasm_path  # noqa: E402
from standins import LlmStandIn, last_user_text  # noqa: E402

POLICY_FILE = ROOT / "envoy" / "policies" / "local.json"
MODEL = "gpt-4o-mini"
TENANTS = {"acme": "sk-demo-acme-0001", "globex": "sk-demo-globex-0002"}

# (tenant, prompt, stream, what the row shows)
SCRIPT: list[tuple[str, str, bool, str]] = [
    ("acme", "What is the capital of France?", False, "first time: goes to the LLM"),
    ("acme", "What is the capital of France?", False, "the same prompt again"),
    ("acme", "what's the capital of france", False, "near-repeat: case, contraction, punctuation"),
    ("acme", "Tell me the capital of France.", False, "paraphrase"),
    ("acme", "What is the capital of Germany?", False, "trap: another country"),
    ("acme", "Convert 100 USD to EUR", False, "first time"),
    ("acme", "Convert 100 EUR to USD", False, "trap: the other direction"),
    ("acme", "Convert 250 USD to EUR", False, "trap: another amount"),
    ("acme", "Explain how photosynthesis works", True, "streamed, first time"),
    ("acme", "Can you explain how photosynthesis works?", False, "paraphrase of the streamed one"),
    ("acme", "Explain how photosynthesis works", True, "streamed repeat: replayed as SSE"),
    ("globex", "What is the capital of France?", False, "another tenant: its own partition"),
    ("globex", "What's the capital of France?", False, "that tenant's near-repeat"),
]

ANSWERS = [
    (r"capital of france", "The capital of France is Paris, which is also its largest city."),
    (r"capital of germany", "The capital of Germany is Berlin."),
    (r"(\d+) usd to eur", "{0} US dollars is about {1} euros at today's reference rate."),
    (r"(\d+) eur to usd", "{0} euros is about {1} US dollars at today's reference rate."),
    (r"photosynthesis", "Photosynthesis is how plants, algae and some bacteria turn light into chemical energy: "
                        "chlorophyll absorbs light, water is split and releases oxygen, and the energy captured "
                        "is used in the Calvin cycle to fix carbon dioxide into sugars such as glucose."),
]


def tokens(text: str) -> int:
    """A rough tokenizer (about 4 characters a token), enough for a stand-in's `usage`."""
    return max(1, round(len(text) / 4))


def latency_range() -> tuple[float, float]:
    spec = os.environ.get("DEMO_LLM_LATENCY_MS", "300-900")
    lo, _, hi = spec.partition("-")
    lo_ms = float(lo)
    return lo_ms / 1000, float(hi or lo) / 1000


class DemoLlm(LlmStandIn):
    """An OpenAI chat completions upstream with canned answers, `usage` and a realistic delay."""

    name = "demo-llm"

    def __init__(self) -> None:
        self.rng = random.Random(7)
        self.lo, self.hi = latency_range()
        super().__init__()

    def _handle(self, h) -> None:
        rec = self._read(h)
        n = self.calls
        body = rec["json"] or {}
        prompt = last_user_text(body)
        text = answer(prompt)
        time.sleep(self.rng.uniform(self.lo, self.hi))
        prompt_tokens = sum(tokens(str(m.get("content") or "")) + 4 for m in body.get("messages") or []) + 3
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": tokens(text),
                 "total_tokens": prompt_tokens + tokens(text)}
        cid, created, model = f"chatcmpl-demo-{n}", int(time.time()), body.get("model") or MODEL
        if body.get("stream"):
            return self._stream(h, body, cid, created, model, text, usage, n)
        self._send_json(h, 200, {
            "id": cid, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                         "finish_reason": "stop"}],
            "usage": usage,
        })


def answer(prompt: str) -> str:
    p = prompt.lower()
    for pattern, template in ANSWERS:
        m = re.search(pattern, p)
        if m:
            if m.groups():
                amount = int(m.group(1))
                rate = 0.92 if "usd to eur" in p else 1.09
                return template.format(amount, f"{amount * rate:.2f}")
            return template
    return "Here is a short, helpful answer to: " + prompt


@dataclass
class Row:
    n: int
    tenant: str
    prompt: str
    stream: bool
    note: str
    http: int
    status: str
    tier: str
    distance: str
    refused: str
    ms: float
    prompt_tokens: int
    completion_tokens: int
    response_id: str


def send(client: openai.OpenAI, prompt: str, stream: bool):
    """One chat completion through Envoy; returns (http status, headers, usage, response id).
    A streamed answer is read to its end (with include_usage, so the stand-in and a replay report usage)."""
    kw = dict(model=MODEL, messages=[{"role": "user", "content": prompt}])
    if stream:
        raw = client.chat.completions.with_raw_response.create(stream=True, stream_options={"include_usage": True},
                                                               **kw)
        usage, rid = None, ""
        for chunk in raw.parse():
            rid = rid or chunk.id
            usage = chunk.usage or usage
        return raw.http_response.status_code, raw.headers, usage, rid
    raw = client.chat.completions.with_raw_response.create(**kw)
    c = raw.parse()
    return raw.http_response.status_code, raw.headers, c.usage, c.id


def run_script(base_url: str) -> list[Row]:
    clients = {t: openai.OpenAI(base_url=base_url, api_key=k, max_retries=0, timeout=30)
               for t, k in TENANTS.items()}
    rows = []
    for i, (tenant, prompt, stream, note) in enumerate(SCRIPT, 1):
        t0 = time.perf_counter()
        code, hs, usage, rid = send(clients[tenant], prompt, stream)
        ms = (time.perf_counter() - t0) * 1000
        status = hs.get("x-cache-status", "-")
        rows.append(Row(
            n=i, tenant=tenant, prompt=prompt, stream=stream, note=note, http=code, status=status,
            tier=hs.get("x-cache-match", "-"), distance=hs.get("x-cache-distance", "-"),
            refused=hs.get("x-cache-refused", "-"), ms=round(ms, 1),
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0, response_id=rid))
        print_row(rows[-1])
        if status == "MISS":
            wait_store(rows)
    return rows


_envoy: EnvoyProcess | None = None


def wait_store(rows: list[Row], timeout: float = 5.0) -> None:
    """A MISS is stored after its response went out: wait for the store before the next prompt, so the
    demo shows what the cache does rather than a race with its own write."""
    misses = sum(r.status == "MISS" for r in rows)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = stats()
        done = sum(s.get(f"semantic_cache.{k}", 0) for k in ("store_ok", "store_error", "store_skipped"))
        if done >= misses:
            return
        time.sleep(0.02)


def stats() -> dict[str, int]:
    """Counters whose name contains `semantic_cache.`, keyed from `semantic_cache.` on (Envoy adds a
    prefix to wasm metrics: `wasmcustom.` today)."""
    out = {}
    assert _envoy is not None
    for line in _envoy.admin_get("/stats?filter=semantic_cache").splitlines():
        name, sep, val = line.partition(": ")
        i = name.find("semantic_cache.")
        if sep and i >= 0 and val.strip().isdigit():
            out[name[i:].strip()] = int(val)
    return out


COLS = [("#", 2), ("tenant", 6), ("prompt", 42), ("status", 6), ("tier", 8), ("distance", 8), ("refusal", 8),
        ("ms", 6), ("", 0)]


def header() -> None:
    print("  ".join(f"{c:<{w}}" if w else c for c, w in COLS))
    print("  ".join("-" * w for c, w in COLS if w))


def print_row(r: Row) -> None:
    prompt = (("[stream] " if r.stream else "") + r.prompt)[:42]
    cells = [str(r.n), r.tenant, prompt, r.status if r.http == 200 else f"{r.http}", r.tier, r.distance, r.refused,
             f"{r.ms:.0f}"]
    print("  ".join(f"{c:<{w}}" for c, (_, w) in zip(cells, COLS)) + "  " + r.note, flush=True)


def totals(rows: list[Row]) -> dict:
    s = stats()
    hits = s.get("semantic_cache.hit_exact", 0) + s.get("semantic_cache.hit_semantic", 0)
    req = s.get("semantic_cache.requests", 0)
    out = {"requests": req, "hit_exact": s.get("semantic_cache.hit_exact", 0),
           "hit_semantic": s.get("semantic_cache.hit_semantic", 0), "miss": s.get("semantic_cache.miss", 0),
           "bypass": s.get("semantic_cache.bypass", 0), "hit_rate": hits / req if req else 0.0,
           "refused": {k.split(".")[-1]: v for k, v in s.items() if k.startswith("semantic_cache.refused.") and v}}
    names = ("semantic_cache.tokens_saved_prompt", "semantic_cache.tokens_saved_completion",
             "semantic_cache.time_saved_ms")
    if all(n in s for n in names):
        out["source"] = "envoy /stats"
        out["tokens_saved_prompt"], out["tokens_saved_completion"], out["time_saved_ms"] = (s[n] for n in names)
    else:
        # This build has no saved-tokens/time counters: the same figures from the demo's own table. A hit
        # carries the stored usage (what the original call cost); its time saved is the latency of the MISS
        # that stored it (matched by response id), else the mean MISS latency.
        miss_ms = {r.response_id: r.ms for r in rows if r.status == "MISS"}
        mean_miss = statistics.mean(miss_ms.values()) if miss_ms else 0.0
        hit_rows = [r for r in rows if r.status == "HIT"]
        out["source"] = "computed by the demo (this build has no tokens_saved/time_saved counters)"
        out["tokens_saved_prompt"] = sum(r.prompt_tokens for r in hit_rows)
        out["tokens_saved_completion"] = sum(r.completion_tokens for r in hit_rows)
        out["time_saved_ms"] = round(sum(miss_ms.get(r.response_id, mean_miss) for r in hit_rows))
    hit_ms = [r.ms for r in rows if r.status == "HIT"]
    out["median_hit_ms"] = round(statistics.median(hit_ms), 1) if hit_ms else None
    out["median_miss_ms"] = round(statistics.median([r.ms for r in rows if r.status == "MISS"]), 1) \
        if any(r.status == "MISS" for r in rows) else None
    return out


def print_totals(t: dict) -> None:
    print()
    print(f"requests {t['requests']}: {t['hit_exact']} exact hits, {t['hit_semantic']} semantic hits, "
          f"{t['miss']} misses, {t['bypass']} bypasses; hit rate {t['hit_rate']:.0%}")
    if t["refused"]:
        print("verifier refusals (look-alikes kept out): "
              + ", ".join(f"{k} {v}" for k, v in sorted(t["refused"].items())))
    print(f"tokens saved: {t['tokens_saved_prompt']} prompt + {t['tokens_saved_completion']} completion")
    print(f"LLM time saved: {t['time_saved_ms'] / 1000:.1f} s "
          f"(median MISS {t['median_miss_ms']} ms, median HIT {t['median_hit_ms']} ms)")
    print(f"(totals source: {t['source']})")


def _sigterm(*_):
    raise KeyboardInterrupt


def main() -> int:
    global _envoy
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="also write the rows and totals here")
    args = ap.parse_args()
    wasm = wasm_path()
    if not wasm.exists():
        print(f"{wasm} missing: run `make build` (make demo does)", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _sigterm)
    # Ctrl-C stops the demo even when it was started with SIGINT ignored (a background job of a
    # non-interactive shell inherits SIG_IGN, and Python then installs no KeyboardInterrupt handler).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    policy = json.loads(POLICY_FILE.read_text())
    policy["vectorStore"].update({"indexName": "demo_idx", "keyPrefix": "demo:"})
    redis = llm = envoy = None
    try:
        t0 = time.monotonic()
        redis = RedisServer()
        redis.start()
        llm = DemoLlm()
        clusters = {"llm": static_cluster("llm", llm.port, connect_timeout="2s"),
                    "redis": static_cluster("redis", redis.port, tcp=True)}
        envoy = _envoy = EnvoyProcess([Site("demo", policy)], clusters, wasm, concurrency=2)
        envoy.start()
        lo, hi = latency_range()
        print(f"stack up in {time.monotonic() - t0:.1f} s: Envoy :{envoy.port('demo')} (admin :{envoy.admin_port}) "
              f"-> semantic-cache filter ({wasm.name}, {POLICY_FILE.relative_to(ROOT)}) -> LLM stand-in "
              f"({lo * 1000:.0f}-{hi * 1000:.0f} ms); Redis :{redis.port}\n")
        header()
        rows = run_script(f"http://127.0.0.1:{envoy.port('demo')}/v1")
        t = totals(rows)
        print_totals(t)
        if args.json:
            args.json.write_text(json.dumps({"rows": [asdict(r) for r in rows], "totals": t}, indent=1))
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping", file=sys.stderr)
        return 130
    except (openai.OpenAIError, requests.RequestException, OSError, RuntimeError, TimeoutError) as e:
        print(f"demo failed: {e}", file=sys.stderr)
        if envoy is not None:
            print(envoy.log_tail(30), file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut the clean-up short
        if envoy is not None:
            envoy.stop()
        if llm is not None:
            llm.close()
        if redis is not None:
            redis.close()


if __name__ == "__main__":
    sys.exit(main())
