"""`make soak`: sustained load on the real Envoy + Redis + .wasm, checked for correctness, not speed.

wrk (bench/soak/soak.lua) sends, for `--duration` seconds at `--connections` connections, a mix of exact
hits, semantic hits, misses, streamed misses, bypasses (`cache-control: no-store`) and upstream errors,
`--runs` times in a row against one Envoy (the default filter build and policy: in-filter embeddings)
and one Redis. The LLM stand-in is an Envoy direct-response listener (JSON, an SSE stream, or a 500
marked `x-standin`), so it is never the bottleneck.

Each run must show:
  * zero errors that did not come from the upstream: no socket errors, no non-2xx without the stand-in's
    mark, no answer without x-cache-status, no BYPASS other than the requested no-store (no fail-open
    under load);
  * the intended outcomes: hit responses >= hits sent - connections (a request in flight when wrk stops
    is sent but never answered), the same for bypasses;
  * every store accounted for: after the run settles, the filter's counters satisfy
    store_ok + store_skipped + store_error = miss (Envoy /stats);
and across runs Envoy's and Redis's RSS stay flat: the last run's RSS after it settled is at most
`--max-growth-mb` above the first run's.

Writes <out-dir>/results.json and results.md (default bench/soak/). Exit status 1 when a check fails.

    .local/venv/bin/python bench/soak/soak.py [--duration 60] [--connections 64] [--runs 3]
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import http.client
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from harness import EnvoyProcess, RedisServer, Site, free_port, static_cluster  # noqa: E402

LUA = Path(__file__).resolve().parent / "soak.lua"
AUTH = "Bearer soak-tenant"
ANSWER = json.dumps({
    "id": "chatcmpl-soak", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "The stand-in answer."},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}})


def _chunk(delta: dict, finish=None) -> str:
    return "data: " + json.dumps({"id": "chatcmpl-soak", "object": "chat.completion.chunk", "created": 1700000000,
                                  "model": "gpt-4o-mini", "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                                                       "finish_reason": finish}]}) + "\n\n"


SSE = (_chunk({"role": "assistant", "content": ""}) + _chunk({"content": "The stand-in"})
       + _chunk({"content": " stream."}) + _chunk({}, "stop") + "data: [DONE]\n\n")
ERROR = json.dumps({"error": {"message": "stand-in error", "type": "server_error", "code": 500}})
# Pre-stored prompts (exact hits) and rewordings of the first (semantic hits with the default model;
# the same pair make bench uses).
EXACT = ["How do I reset my router to its factory settings without losing the Wi-Fi password?",
         "What is the capital of Australia?", "Explain photosynthesis in two sentences.",
         "Translate good morning into Spanish.", "List three uses of baking soda.",
         "How many minutes are in a day?", "Summarize the plot of Romeo and Juliet.",
         "What does HTTP status 404 mean?"]
NEAR = ["How can I reset my router to its factory settings without losing the Wi-Fi password?"]
STATS = ["requests", "hit_exact", "hit_semantic", "miss", "bypass", "store_ok", "store_error", "store_skipped",
         "embedding_error", "redis_error"]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def post(port: int, prompt: str, headers: dict | None = None) -> tuple[int, dict]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]})
        c.request("POST", "/v1/chat/completions", body=body,
                  headers={"content-type": "application/json", "authorization": AUTH, **(headers or {})})
        r = c.getresponse()
        r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()


def llm_routes() -> list[dict]:
    def answer(name, match_headers, status, body, ctype):
        return {"name": name, "match": {"prefix": "/", "headers": match_headers},
                "direct_response": {"status": status, "body": {"inline_string": body}},
                "response_headers_to_add": [
                    {"header": {"key": "content-type", "value": ctype}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"},
                    {"header": {"key": "x-standin", "value": "1"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]}

    kind = lambda v: [{"name": "x-soak-kind", "string_match": {"exact": v}}]  # noqa: E731
    return [answer("stream", kind("stream"), 200, SSE, "text/event-stream"),
            answer("error", kind("error"), 500, ERROR, "application/json"),
            answer("json", [], 200, ANSWER, "application/json")]


class Soak:
    def __init__(self, a: argparse.Namespace):
        self.a = a
        self.redis = RedisServer()
        self.llm: EnvoyProcess | None = None
        self.envoy: EnvoyProcess | None = None
        self.failures: list[str] = []

    def start(self) -> None:
        self.redis.start()
        llm_port = free_port()
        self.llm = EnvoyProcess([Site("llm", None, routes=llm_routes(), port=llm_port)],
                                {"llm": static_cluster("llm", llm_port)}, None, concurrency=1, log_level="warning")
        self.llm.start()
        policy = json.loads(Path(self.a.policy).read_text())
        policy["vectorStore"].update(indexName="soak_idx", keyPrefix="soak:", cluster="redis")
        clusters = {"llm": static_cluster("llm", llm_port, connect_timeout="2s"),
                    "redis": static_cluster("redis", self.redis.port, tcp=True)}
        self.envoy = EnvoyProcess([Site("soak", policy, route_timeout="60s")], clusters, Path(self.a.wasm),
                                  concurrency=self.a.envoy_concurrency, log_level="warning")
        self.envoy.start()
        port = self.envoy.port("soak")
        for p in EXACT:
            status, h = post(port, p)
            if status != 200 or h.get("x-cache-status") != "MISS":
                raise RuntimeError(f"pre-store of {p!r}: {status} {h}")
        self.settle(30)
        for p in EXACT:
            _, h = post(port, p)
            if h.get("x-cache-status") != "HIT":
                raise RuntimeError(f"{p!r} was not stored: {h}")
        for p in NEAR:
            _, h = post(port, p)
            if h.get("x-cache-match") != "semantic":
                raise RuntimeError(f"{p!r} is no semantic hit with this model/policy: {h}")

    def stop(self) -> None:
        for e in (self.envoy, self.llm):
            if e:
                e.stop()
        self.redis.close()

    def counters(self) -> dict[str, int]:
        s = self.envoy.stats()
        return {k: s.get(f"wasmcustom.semantic_cache.{k}", 0) for k in STATS}

    def redis_used_mb(self) -> float:
        """INFO memory used_memory: what Redis holds (RSS also counts allocator slack)."""
        info = self.redis.command("INFO", "memory")
        text = info.decode() if isinstance(info, bytes) else str(info)
        for line in text.splitlines():
            if line.startswith("used_memory:"):
                return round(int(line.split(":")[1]) / 1048576, 1)
        return 0.0

    def settle(self, timeout: float) -> dict[str, int]:
        """Waits until every miss has a store outcome; returns the counters then."""
        deadline = time.monotonic() + timeout
        while True:
            c = self.counters()
            if c["store_ok"] + c["store_skipped"] + c["store_error"] >= c["miss"] or time.monotonic() > deadline:
                return c
            time.sleep(0.1)

    def run_once(self, i: int) -> dict:
        a = self.a
        salt = hashlib.sha256(f"{time.time()}-{i}".encode()).hexdigest()[:10]
        env = dict(os.environ, SOAK_SALT=salt, SOAK_EXACT="|".join(EXACT), SOAK_NEAR="|".join(NEAR), SOAK_MIX=a.mix)
        before = self.counters()
        cmd = ["wrk", f"-t{a.threads}", f"-c{a.connections}", f"-d{a.duration}s", "--timeout=10s", "-s", str(LUA),
               "-H", f"Authorization: {AUTH}", f"http://127.0.0.1:{self.envoy.port('soak')}/v1/chat/completions"]
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=a.duration + 120)
        line = next((ln for ln in p.stdout.splitlines() if ln.startswith("SOAKJSON ")), None)
        if line is None:
            raise RuntimeError(f"wrk printed no result ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        w = json.loads(line[len("SOAKJSON "):])
        after = self.settle(60)
        d = {k: after[k] - before[k] for k in STATS}
        r = {"run": i + 1, "wrk": w, "counters": d,
             "rps": round(w["requests"] / (w["duration_us"] / 1e6), 1),
             "rss_mb": {"envoy": rss_mb(self.envoy.proc.pid), "redis": rss_mb(self.redis.proc.pid)},
             "entries": len(self.redis.command("KEYS", "soak:*")),
             "redis_used_mb": self.redis_used_mb()}
        sent = w["sent"]
        sock = sum(w[k] for k in ("errors_connect", "errors_read", "errors_write", "errors_timeout"))
        checks = {
            "no socket errors": sock == 0,
            "no error the upstream did not make": w["bad"] == 0,
            "non-2xx all from the stand-in": w["errors_status"] == w["upstream_errors"],
            "hits answered": w["hit"] >= sent["exact"] + sent["semantic"] - a.connections,
            "bypasses answered": w["bypass"] >= sent["bypass"] - a.connections,
            "exact and semantic hits counted": d["hit_exact"] > 0 and d["hit_semantic"] > 0,
            "stores accounted (ok+skipped+error = miss)":
                d["store_ok"] + d["store_skipped"] + d["store_error"] == d["miss"],
            "no fail-open (embedding_error = redis_error = 0)": d["embedding_error"] == 0 and d["redis_error"] == 0,
        }
        r["checks"] = checks
        for name, ok in checks.items():
            if not ok:
                extra = f" ({w['bad_example']})" if name.startswith("no error") else ""
                self.failures.append(f"run {i + 1}: {name}{extra}")
        return r

    def run(self) -> dict:
        self.start()
        try:
            start_rss = {"envoy": rss_mb(self.envoy.proc.pid), "redis": rss_mb(self.redis.proc.pid)}
            runs = []
            for i in range(self.a.runs):
                runs.append(self.run_once(i))
                r = runs[-1]
                print(f"run {r['run']}: {r['wrk']['requests']} requests ({r['rps']}/s), counters {r['counters']}, "
                      f"RSS envoy {r['rss_mb']['envoy']} MB redis {r['rss_mb']['redis']} MB, "
                      f"checks {'ok' if all(r['checks'].values()) else 'FAILED'}", flush=True)
            if len(runs) >= 2:
                for proc in ("envoy", "redis"):
                    growth = runs[-1]["rss_mb"][proc] - runs[0]["rss_mb"][proc]
                    if growth > self.a.max_growth_mb:
                        self.failures.append(f"{proc} RSS grew {growth:.1f} MB from run 1 to run {len(runs)}")
            log = self.envoy.log_since(0)
            crash = [ln for ln in log.splitlines() if "panic" in ln.lower() or "wasm trap" in ln.lower()]
            if crash:
                self.failures.append(f"wasm VM failure in the Envoy log: {crash[:2]}")
            return {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
                    "args": vars(self.a), "start_rss_mb": start_rss, "runs": runs, "failures": self.failures}
        finally:
            self.stop()


def write_md(res: dict, path: Path) -> None:
    a = res["args"]
    lines = [
        "# Soak results (`make soak`)", "",
        f"{res['date']}, {res['machine']}. wrk {a['threads']} threads, {a['connections']} connections, "
        f"{a['duration']} s per run, {a['runs']} runs in a row on one Envoy (--concurrency {a['envoy_concurrency']}) "
        f"and one Redis; mix exact,semantic,miss,stream,bypass,upstream-error = {a['mix']}; misses and streams "
        "stored with max-age=5 (Redis holds a steady amount).", "",
        f"RSS after start-up and pre-store: Envoy {res['start_rss_mb']['envoy']} MB, Redis {res['start_rss_mb']['redis']} MB.",
        "",
        "| run | requests | req/s | p50 ms | p99 ms | hits | misses | bypasses | upstream 5xx | other errors "
        "| store ok / skipped / error = miss | entries | Envoy RSS MB | Redis RSS MB | Redis used MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["runs"]:
        w, c = r["wrk"], r["counters"]
        sock = sum(w[k] for k in ("errors_connect", "errors_read", "errors_write", "errors_timeout"))
        lines.append(
            f"| {r['run']} | {w['requests']} | {r['rps']} | {w['p50_ms']:.1f} | {w['p99_ms']:.1f} | {w['hit']} | "
            f"{w['miss']} | {w['bypass']} | {w['upstream_errors']} | {w['bad'] + sock} | "
            f"{c['store_ok']} / {c['store_skipped']} / {c['store_error']} = {c['miss']} | {r['entries']} | "
            f"{r['rss_mb']['envoy']} | {r['rss_mb']['redis']} | {r.get('redis_used_mb', '')} |")
    lines += ["", "Failures: " + ("; ".join(res["failures"]) if res["failures"] else "none") + ".", ""]
    path.write_text("\n".join(lines))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mix", default="30,15,25,15,10,5", help="exact,semantic,miss,stream,bypass,error weights")
    ap.add_argument("--envoy-concurrency", type=int, default=2)
    ap.add_argument("--max-growth-mb", type=float, default=32.0)
    ap.add_argument("--wasm", default=str(ROOT / "target" / "wasm32-wasip1" / "release" / "semantic_cache.wasm"))
    ap.add_argument("--policy", default=str(ROOT / "envoy" / "policies" / "local.json"))
    ap.add_argument("--out-dir", default=str(Path(__file__).resolve().parent))
    a = ap.parse_args()
    res = Soak(a).run()
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    write_md(res, out / "results.md")
    for f in res["failures"]:
        print(f"FAILED: {f}", file=sys.stderr)
    return 1 if res["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
