"""`make bench`: the cache under real load (wrk), side by side with the same Envoy without the filter.

One run starts Redis (+RediSearch), an LLM stand-in that is itself an Envoy direct-response listener (so
every figure is the cache's own cost, not a Python server's), and one Envoy per configuration (same
binary, `--concurrency 2`):

  plain     Envoy proxying to the stand-in, no filter                                   -> cell a
  default   the default filter build (--wasm, target/.../semantic_cache.wasm of `make build`) with
            the default policy (--policy, envoy/policies/local.json)                    -> cells b c d g
  sidecar   the plain filter (--plain-wasm) calling build/embed_server                  -> cell e
  remote    the plain filter calling an OpenAI-compatible embedding stand-in (Python)   -> cell f

Cells (each at every --concurrency, wrk with one thread):
  a plain          b exact_hit       c semantic_hit    d miss_default
  e miss_sidecar   f miss_remote     g bypass (cache-control: no-store, same listener as b-d)
Misses carry a new prompt per request (wrk.lua, unique mode) so they stay misses; hits hit a pre-stored
entry. Every cell's outcome is checked against the filter's own counters (Envoy stats), so a "hit" cell
that silently missed shows up in the results.

Also per configuration: time to ready (launch -> first HTTP answer through the listener) and RSS
(VmRSS from /proc, after start and after the load; VmHWM = peak), and head-of-line blocking: the p99 of
a BYPASS request (c=1) on the same listener while misses run at c=16, against the same without misses.

Writes bench/results.json, bench/results.md and bench/results.png (matplotlib) unless --out-dir says
otherwise. Numbers come from a shared machine: compare the ratios measured in one run.

    .local/venv/bin/python bench/load/bench.py [--duration 8] [--concurrency 1,16,64] [--wasm PATH]
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import http.client
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from harness import (EnvoyProcess, RedisServer, Site, binary, free_port, static_cluster,  # noqa: E402
                     terminate, wait_tcp)
from standins import EmbeddingStandIn  # noqa: E402

WRK_LUA = Path(__file__).resolve().parent / "wrk.lua"
AUTH = "Bearer bench-tenant"
STANDIN_ANSWER = json.dumps({
    "id": "chatcmpl-standin", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "The stand-in answer."},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}})
# The prompt the hit cells ask for, and a rewording of it for the semantic cell: another exact key (the
# canonical exact tier folds case, punctuation and politeness, so the wording itself differs), a very
# close vector, and nothing a verifier refuses (same entities, numbers, negation).
HIT_PROMPT = "How do I reset my router to its factory settings without losing the Wi-Fi password?"
SEMANTIC_PROMPT = "How can I reset my router to its factory settings without losing the Wi-Fi password?"
SEMANTIC_MIN_THRESHOLD = 0.05  # x-semantic-threshold of the semantic cell: at least this, never below the policy's

CELLS = {  # name -> (configuration, wrk mode, what the filter must count, label)
    "plain": ("plain", "static", None, "a. plain Envoy -> stand-in (no filter)"),
    "exact_hit": ("default", "static", "hit_exact", "b. exact HIT"),
    "semantic_hit": ("default", "static", "hit_semantic", "c. semantic HIT (default embedder)"),
    "miss_default": ("default", "unique", "miss", "d. MISS, default in-filter embedder"),
    "miss_sidecar": ("sidecar", "unique", "miss", "e. MISS, native sidecar (embed_server)"),
    "miss_remote": ("remote", "unique", "miss", "f. MISS, remote embedding stand-in"),
    "bypass": ("default", "static", "bypass", "g. BYPASS (cache-control: no-store)"),
}
HOL_CONFIGS = ["default", "sidecar", "remote"]
STATS = ["requests", "hit_exact", "hit_semantic", "miss", "bypass", "store_ok", "store_error", "store_skipped",
         "embedding_error", "redis_error", "policy_error"]


def chat(prompt: str) -> str:
    return json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]})


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM of a process in MB (0 when it is gone)."""
    out = {"rss_mb": 0, "hwm_mb": 0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out["rss_mb" if k == "VmRSS" else "hwm_mb"] = round(int(v.split()[0]) / 1024, 1)
    except OSError:
        pass
    return out


def http_post(port: int, body: str, headers: dict | None = None, path: str = "/v1/chat/completions",
              method: str = "POST", timeout: float = 30) -> tuple[int, dict, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        h = {"content-type": "application/json", "authorization": AUTH, **(headers or {})}
        c.request(method, path, body=body if method == "POST" else None, headers=h)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


class TimedEnvoy(EnvoyProcess):
    """The harness's Envoy, started with a finer clock: ready = launch -> the first HTTP answer through
    the (first) listener, polled every 10 ms."""

    ready_s: float = 0.0

    def start(self, timeout: float = 180.0) -> None:
        cmd = [binary("ENVOY_BIN"), "-c", str(self.config_path), "--disable-hot-restart",
               "--concurrency", str(self.concurrency), "--log-level", "warning",
               "--log-format", "[%Y-%m-%d %T.%e][%t][%l][%n] %v"]
        self._logf = open(self.log, "ab")
        port = next(iter(self.sites.values())).port
        t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._logf, stderr=subprocess.STDOUT)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"envoy exited ({self.proc.returncode}) during start-up:\n{self.log_tail(60)}")
            try:
                # GET is not a chat request: the filter (if any) passes it through to the stand-in.
                status, _, _ = http_post(port, "", method="GET", path="/ready-probe", timeout=1)
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() - t0 > timeout:
                self.stop()
                raise TimeoutError(f"envoy not answering after {timeout}s:\n{self.log_tail(60)}")
            time.sleep(0.01)
        self.ready_s = time.monotonic() - t0
        self.t0 = t0

    def first_miss(self, n: int) -> tuple[float, float]:
        """Sends `n` concurrent MISSes (new prompts) and waits for all: a model that loads lazily per
        worker loads now, not inside a measured cell. Returns (launch -> first MISS answered,
        launch -> all answered) in seconds."""
        from concurrent.futures import ThreadPoolExecutor
        port = next(iter(self.sites.values())).port
        salt = hashlib.sha256(str(time.time()).encode()).hexdigest()[:8]
        done: list[float] = []

        def one(i: int) -> None:
            http_post(port, chat(f"warm-up {salt} {i}: describe the {i}th planet of a distant star system"),
                      timeout=300)
            done.append(time.monotonic() - self.t0)

        with ThreadPoolExecutor(n) as ex:
            list(ex.map(one, range(n)))
        return min(done), max(done)


def run_wrk(port: int, conc: int, duration: float, mode: str, body: str, headers: dict, salt: str,
            words: int, timeout_s: int = 10) -> subprocess.Popen:
    env = dict(os.environ, BENCH_MODE=mode, BENCH_BODY=body, BENCH_SALT=salt, BENCH_WORDS=str(words))
    cmd = ["wrk", "-t1", f"-c{conc}", f"-d{max(1, round(duration))}s", f"--timeout={timeout_s}s",
           "-s", str(WRK_LUA), "-H", f"Authorization: {AUTH}"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    cmd.append(f"http://127.0.0.1:{port}/v1/chat/completions")
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wrk_result(p: subprocess.Popen) -> dict:
    out, err = p.communicate(timeout=600)
    for line in out.splitlines():
        if line.startswith("BENCHJSON "):
            r = json.loads(line[len("BENCHJSON "):])
            secs = r["duration_us"] / 1e6
            r["rps"] = round(r["requests"] / secs, 1) if secs else 0.0
            r["socket_errors"] = sum(r[k] for k in ("errors_connect", "errors_read", "errors_write", "errors_timeout"))
            for k in ("p50", "p90", "p99", "max"):
                r[f"{k}_ms"] = round(r.pop(f"{k}_us") / 1000, 3)
            r["mean_ms"] = round(r.pop("mean_us") / 1000, 3)
            return r
    raise RuntimeError(f"wrk printed no result (exit {p.returncode}):\n{out}\n{err}")


class Bench:
    def __init__(self, a: argparse.Namespace):
        self.a = a
        self.run_id = hashlib.sha256(f"{time.time()}-{os.getpid()}".encode()).hexdigest()[:8]
        self.redis: RedisServer | None = None
        self.embed_standin: EmbeddingStandIn | None = None
        self.sidecar: subprocess.Popen | None = None
        self.sidecar_ready_s = 0.0
        self.llm: TimedEnvoy | None = None
        self.envoys: dict[str, TimedEnvoy] = {}
        self.memory: dict[str, dict] = {}
        self.keep_keys: set[str] = set()
        self.semantic_threshold: float | None = None

    # -- set-up ----------------------------------------------------------------------------------
    def policy(self, name: str, base: dict) -> dict:
        p = json.loads(json.dumps(base))
        vs = p.setdefault("vectorStore", {})
        vs.update({"type": "redis", "cluster": "redis", "indexName": f"bench_{name}_idx",
                   "keyPrefix": f"bench_{name}:"})
        # The semantic cell (default configuration only) may ask for a wider threshold per request;
        # misses keep the policy's own. Without an explicit threshold the filter's default applies untouched.
        if name == "default" and "threshold" in p:
            self.semantic_threshold = max(float(p["threshold"]), SEMANTIC_MIN_THRESHOLD)
            p["maxThreshold"] = max(float(p.get("maxThreshold", 0) or 0), self.semantic_threshold)
        return p

    def start(self) -> None:
        a = self.a
        self.redis = RedisServer()
        self.redis.start()
        # LLM stand-in: an Envoy direct-response listener (one worker; it shares the cores with the rest)
        llm_port = free_port()
        answer = {"name": "answer", "match": {"prefix": "/"},
                  "direct_response": {"status": 200, "body": {"inline_string": STANDIN_ANSWER}},
                  "response_headers_to_add": [{"header": {"key": "content-type", "value": "application/json"},
                                               "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]}
        self.llm = TimedEnvoy([Site("llm", None, routes=[answer], port=llm_port)],
                              {"llm": static_cluster("llm", llm_port)}, None, concurrency=1)
        self.llm.start()
        st, hs, body = http_post(llm_port, chat("probe"))
        if st != 200 or not hs.get("content-type", "").startswith("application/json"):
            raise RuntimeError(f"LLM stand-in answered {st} {hs}")

        base_policy = json.loads(Path(a.policy).read_text())
        clusters = {"llm": static_cluster("llm", llm_port, connect_timeout="2s"),
                    "redis": static_cluster("redis", self.redis.port, tcp=True)}
        configs: dict[str, tuple[dict | None, Path | None, dict]] = {"plain": (None, None, {})}
        if "default" in a.configs:
            configs["default"] = (self.policy("default", base_policy), Path(a.wasm), {})
        if "sidecar" in a.configs:
            port = free_port()
            t0 = time.monotonic()
            self.sidecar = subprocess.Popen([a.embed_server, "--listen", f"127.0.0.1:{port}"],
                                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL)
            wait_tcp(port, timeout=120)
            self.sidecar_ready_s = time.monotonic() - t0
            p = self.policy("sidecar", {"embedding": {
                "provider": "openai-compatible", "cluster": "embedding", "url": f"http://127.0.0.1:{port}/v1/embeddings",
                "model": "local", "apiKey": "bench", "dimensions": 384, "timeoutMs": 10000}})
            configs["sidecar"] = (p, Path(a.plain_wasm), {"embedding": static_cluster("embedding", port)})
        if "remote" in a.configs:
            self.embed_standin = EmbeddingStandIn("openai", api_key="bench-embed-key")
            p = self.policy("remote", {"embedding": {
                "provider": "openai-compatible", "cluster": "embedding", "url": self.embed_standin.url(),
                "model": "standin-embed", "apiKey": "bench-embed-key", "dimensions": self.embed_standin.dim,
                "timeoutMs": 10000}})
            configs["remote"] = (p, Path(a.plain_wasm),
                                 {"embedding": static_cluster("embedding", self.embed_standin.port)})
        for name, (policy, wasm, extra) in configs.items():
            if wasm is not None and not wasm.exists():
                raise FileNotFoundError(f"{name}: {wasm} missing (make build / make build-local)")
            e = TimedEnvoy([Site(name, policy, route_timeout="60s")], {**clusters, **extra}, wasm,
                           concurrency=a.envoy_concurrency)
            e.start()
            self.envoys[name] = e
            at_ready = proc_status(e.proc.pid)
            first, warm = e.first_miss(4 * a.envoy_concurrency) if policy else (e.ready_s, e.ready_s)
            self.memory[name] = {"ready_s": round(e.ready_s, 3), "first_miss_s": round(first, 3),
                                 "all_workers_warm_s": round(warm, 3), "at_ready": at_ready,
                                 "after_start": proc_status(e.proc.pid),
                                 "wasm": str(wasm) if wasm else None,
                                 "wasm_mb": round(wasm.stat().st_size / 2**20, 1) if wasm else None}
            print(f"[bench] {name}: ready after {e.ready_s:.2f} s, first MISS answered after {first:.2f} s, "
                  f"{4 * a.envoy_concurrency} concurrent MISSes after {warm:.2f} s, RSS {self.memory[name]['after_start']['rss_mb']} MB",
                  flush=True)
        if self.sidecar:
            self.memory["sidecar"]["sidecar_ready_s"] = round(self.sidecar_ready_s, 3)
            self.memory["sidecar"]["sidecar_after_start"] = proc_status(self.sidecar.pid)
        self.prestore()

    def prestore(self) -> None:
        """The entry the hit cells hit: one MISS that stores it, then check both hit kinds answer."""
        if "default" not in self.envoys:
            return
        e = self.envoys["default"]
        port = e.port("default")
        deadline = time.monotonic() + 60
        # Stores happen after the answer went out; a first request can also time out on a busy machine
        # (BYPASS redis-error). Ask until the prompt answers as an exact HIT.
        while True:
            st, hs, _ = http_post(port, chat(HIT_PROMPT))
            if st != 200:
                raise RuntimeError(f"pre-store request: HTTP {st} {hs}")
            if hs.get("x-cache-status") == "HIT":
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the pre-stored entry never hit; envoy log:\n{e.log_tail(40)}")
            time.sleep(0.2)
        self.keep_keys = set(self.redis.keys("bench_default:*"))
        for prompt, headers, want in ((HIT_PROMPT, {}, "exact"),
                                      (SEMANTIC_PROMPT, self.semantic_headers(), "semantic")):
            st, hs, _ = http_post(port, chat(prompt), headers)
            if hs.get("x-cache-status") != "HIT" or hs.get("x-cache-match") != want:
                print(f"[bench] warning: the {want} cell does not hit: {st} {hs.get('x-cache-status')} "
                      f"{hs.get('x-cache-match')} distance={hs.get('x-cache-distance')}", flush=True)

    def stop(self) -> None:
        for e in list(self.envoys.values()) + [self.llm]:
            if e:
                e.stop()
        terminate(self.sidecar, grace=5)
        if self.embed_standin:
            self.embed_standin.close()
        if self.redis:
            self.redis.close()

    # -- cells -----------------------------------------------------------------------------------
    def cell_args(self, cell: str) -> tuple[str, dict]:
        if cell == "exact_hit":
            return chat(HIT_PROMPT), {}
        if cell == "semantic_hit":
            return chat(SEMANTIC_PROMPT), self.semantic_headers()
        if cell == "bypass":
            return chat("A request the client does not want cached."), {"Cache-Control": "no-store"}
        return chat("Hello from the plain cell."), {}

    def semantic_headers(self) -> dict:
        t = self.semantic_threshold
        return {"x-semantic-threshold": f"{t:.4f}"} if t is not None else {}

    def stats(self, config: str) -> dict[str, int]:
        e = self.envoys[config]
        if e.wasm is None:
            return {}
        s = e.stats()
        return {k: s.get(f"wasmcustom.semantic_cache.{k}", 0) for k in STATS}

    def drop_new_entries(self) -> None:
        """An overloaded filter answers some semantic-cell requests as MISS (Redis timeout) and stores the
        reworded prompt, which would turn the rest of the cell into exact hits: drop what is not the
        pre-stored entry (the misses' unique prompts are never asked again anyway)."""
        extra = [k for k in self.redis.keys("bench_default:*") if k not in self.keep_keys]
        for i in range(0, len(extra), 1000):
            self.redis.command("UNLINK", *extra[i:i + 1000])

    def run_cell(self, cell: str, conc: int, duration: float, warmup: float) -> dict:
        config, mode, expect, _ = CELLS[cell]
        e = self.envoys[config]
        body, headers = self.cell_args(cell)
        salt = f"{self.run_id}x{cell}x{conc}"
        if warmup > 0:
            wrk_result(run_wrk(e.port(config), conc, warmup, mode, body, headers, salt + "w", self.a.miss_words))
        if cell == "semantic_hit":
            self.drop_new_entries()
        before = self.stats(config)
        r = wrk_result(run_wrk(e.port(config), conc, duration, mode, body, headers, salt, self.a.miss_words))
        after = self.stats(config)
        r["filter"] = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        if expect:
            # requests still in flight when wrk stops are counted on entry but have no outcome yet
            n = max(1, sum(r["filter"].get(k, 0) for k in ("hit_exact", "hit_semantic", "miss", "bypass")))
            r["expected_outcome"] = expect
            r["expected_fraction"] = round(r["filter"].get(expect, 0) / n, 4)
        return r

    def hol(self, config: str, duration: float) -> dict:
        """BYPASS at c=1 on the listener of `config`, alone and while misses run there at c=16."""
        e = self.envoys[config]
        port = e.port(config)
        body, headers = self.cell_args("bypass")
        alone = wrk_result(run_wrk(port, 1, duration, "static", body, headers, "hol", self.a.miss_words))
        misses = run_wrk(port, 16, duration + 2, "unique", "", {}, f"{self.run_id}xhol{config}", self.a.miss_words)
        time.sleep(1.0)  # let the misses reach a steady state first
        during = wrk_result(run_wrk(port, 1, duration, "static", body, headers, "hol", self.a.miss_words))
        miss_r = wrk_result(misses)
        return {"bypass_alone": alone, "bypass_during_misses": during, "misses_c16": miss_r,
                "p99_ratio": round(during["p99_ms"] / alone["p99_ms"], 2) if alone["p99_ms"] else None}

    def run(self) -> dict:
        a = self.a
        results: dict = {c: {} for c in a.cells}
        for conc in a.concurrency:  # configurations interleaved per concurrency: drift hits all alike
            for cell in a.cells:
                if CELLS[cell][0] not in self.envoys:
                    continue
                r = self.run_cell(cell, conc, a.duration, a.warmup)
                results[cell][str(conc)] = r
                print(f"[bench] {cell:13s} c={conc:<3d} {r['rps']:9.1f} rps  p50 {r['p50_ms']:8.2f} ms  "
                      f"p99 {r['p99_ms']:8.2f} ms  errors {r['socket_errors']}/{r['errors_status']}"
                      + (f"  {r['expected_outcome']} {r['expected_fraction']:.0%}" if "expected_outcome" in r else ""),
                      flush=True)
        hol = {}
        if not a.no_hol:
            for config in HOL_CONFIGS:
                if config in self.envoys:
                    hol[config] = self.hol(config, a.duration)
                    h = hol[config]
                    print(f"[bench] head-of-line {config}: bypass p99 {h['bypass_alone']['p99_ms']:.2f} ms alone, "
                          f"{h['bypass_during_misses']['p99_ms']:.2f} ms during misses at c=16", flush=True)
        for name, e in self.envoys.items():
            self.memory[name]["after_load"] = proc_status(e.proc.pid)
        if self.sidecar:
            self.memory["sidecar"]["sidecar_after_load"] = proc_status(self.sidecar.pid)
        return {"cells": results, "head_of_line": hol, "envoys": self.memory}


# ------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------
def machine() -> dict:
    cpu = ""
    try:
        cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                    if l.startswith("model name")), "")
    except OSError:
        pass
    try:
        envoy_version = subprocess.run([binary("ENVOY_BIN"), "--version"], capture_output=True, text=True,
                                       timeout=30).stdout.strip().split("version:")[-1].strip()
    except Exception:  # noqa: BLE001 - informational only
        envoy_version = "?"
    try:
        wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split(" Copyright")[0].strip()
    except OSError:
        wrk_version = "?"
    load = os.getloadavg()
    return {"date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu,
            "cores": os.cpu_count(), "kernel": platform.release(), "envoy": envoy_version, "wrk": wrk_version,
            "loadavg_at_end": [round(x, 2) for x in load]}


def ratios(res: dict) -> None:
    """rps and p50 of every cell relative to the plain cell at the same concurrency, in place."""
    plain = res["cells"].get("plain", {})
    for cell, by_c in res["cells"].items():
        for c, r in by_c.items():
            p = plain.get(c)
            if p and p["rps"] and r["p50_ms"] is not None:
                r["rps_vs_plain"] = round(r["rps"] / p["rps"], 3)
                r["p50_vs_plain"] = round(r["p50_ms"] / p["p50_ms"], 2) if p["p50_ms"] else None
                r["p50_minus_plain_ms"] = round(r["p50_ms"] - p["p50_ms"], 3)


def goals(res: dict) -> list[dict]:
    """The figures issue 10 sets goals for, with the measured value."""
    cells, env, hol = res["cells"], res["envoys"], res["head_of_line"]
    out = []

    def add(goal: str, value, ok):
        out.append({"goal": goal, "measured": value, "met": ok})

    md, ms = cells.get("miss_default", {}).get("16"), cells.get("miss_sidecar", {}).get("16")
    if md and ms and ms["rps"]:
        # answers that came back BYPASS (Redis timeout under overload) are not misses served
        em, es = md["rps"] * md.get("expected_fraction", 1), ms["rps"] * ms.get("expected_fraction", 1)
        r = em / es if es else 0
        add("default MISS rps at c=16 >= 80% of the sidecar's (real misses only)",
            f"{r:.0%} ({em:.1f} vs {es:.1f} misses/s)", r >= 0.8)
    if "default" in env:
        add("default Envoy ready <= 2 s after launch", f"{env['default']['ready_s']:.2f} s", env["default"]["ready_s"] <= 2)
        rss = max(env["default"].get("after_load", {}).get("rss_mb", 0), env["default"]["after_start"]["rss_mb"])
        add("default Envoy RSS at 2 workers <= 250 MB", f"{rss} MB (after load)", rss <= 250)
    pl1 = cells.get("plain", {}).get("1")
    if "default" in hol and pl1:
        v = hol["default"]["bypass_during_misses"]["p99_ms"]
        add("non-cached p99 while misses run (c=16) <= 2x plain Envoy's p99 (c=1)",
            f"{v:.2f} ms vs {pl1['p99_ms']:.2f} ms = {v / pl1['p99_ms']:.1f}x", v <= 2 * pl1["p99_ms"])
    eh1, eh16, pl16 = cells.get("exact_hit", {}).get("1"), cells.get("exact_hit", {}).get("16"), cells.get("plain", {}).get("16")
    if eh1 and pl1:
        d = eh1["p50_ms"] - pl1["p50_ms"]
        add("exact HIT p50 at c=1 <= plain + 0.3 ms", f"+{d:.2f} ms ({eh1['p50_ms']:.2f} vs {pl1['p50_ms']:.2f})", d <= 0.3)
    if eh16 and pl16:
        r = eh16["rps"] / pl16["rps"]
        add("exact HIT rps at c=16 >= 75% of plain", f"{r:.0%} ({eh16['rps']} vs {pl16['rps']} rps)", r >= 0.75)
    return out


def markdown(res: dict) -> str:
    m, a = res["machine"], res["params"]
    cells = res["cells"]
    concs = a["concurrency"]
    lines = [f"Load benchmark, {m['date_utc']}: {m['cores']} cores ({m['cpu']}), shared with other work; Envoy {m['envoy']} "
             f"`--concurrency {a['envoy_concurrency']}`, {m['wrk']} (1 thread), {a['duration']} s per cell. "
             f"LLM = Envoy direct-response stand-in; misses are new ~{a['miss_words']}-word prompts. Ratios are to the "
             "plain Envoy cell at the same concurrency, measured in the same run.", ""]
    head = "| path | " + " | ".join(f"c={c} rps (x plain) | c={c} p50 / p99 ms" for c in concs) + " | outcome check |"
    lines += [head, "|---" * (1 + 2 * len(concs) + 1) + "|"]
    for cell, (_, _, expect, label) in CELLS.items():
        if cell not in cells or not cells[cell]:
            continue
        row = [label]
        fr = []
        for c in concs:
            r = cells[cell].get(str(c))
            if not r:
                row += ["-", "-"]
                continue
            x = f" ({r['rps_vs_plain']:.2f}x)" if "rps_vs_plain" in r and cell != "plain" else ""
            err = f", {r['socket_errors'] + r['errors_status']} errors" if r["socket_errors"] + r["errors_status"] else ""
            row += [f"{r['rps']:.0f}{x}{err}", f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f}"]
            if expect:
                fr.append(f"{r['expected_fraction']:.0%}")
        row.append(f"{expect}: {'/'.join(fr)}" if expect else "")
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Ready = launch -> first HTTP answer through the listener; first MISS = launch -> first answered MISS "
              f"(a model that loads lazily loads then); warm = {4 * a['envoy_concurrency']} concurrent MISSes answered.", "",
              "| Envoy configuration | ready after | first MISS / warm after | RSS at ready | RSS warm | RSS after load (peak) | filter .wasm |",
              "|---|---|---|---|---|---|---|"]
    for name, e in res["envoys"].items():
        al = e.get("after_load", {})
        extra = ""
        if "sidecar_ready_s" in e:
            extra = (f" + embed_server: ready {e['sidecar_ready_s']:.2f} s, "
                     f"RSS {e.get('sidecar_after_load', e['sidecar_after_start'])['rss_mb']} MB")
        lines.append(f"| {name} | {e['ready_s']:.2f} s | {e['first_miss_s']:.2f} / {e['all_workers_warm_s']:.2f} s | "
                     f"{e['at_ready']['rss_mb']} MB | {e['after_start']['rss_mb']} MB | "
                     f"{al.get('rss_mb', '-')} MB ({al.get('hwm_mb', '-')} MB){extra} | "
                     f"{Path(e['wasm']).name + ' ' + str(e['wasm_mb']) + ' MB' if e['wasm'] else '-'} |")
    if res["head_of_line"]:
        lines += ["", "Head-of-line: a BYPASS request (c=1) on the same listener, alone and while MISSes run at c=16:", "",
                  "| configuration | p50 / p99 alone ms | p50 / p99 during misses ms | p99 ratio | misses rps meanwhile |",
                  "|---|---|---|---|---|"]
        for name, h in res["head_of_line"].items():
            al, du = h["bypass_alone"], h["bypass_during_misses"]
            lines.append(f"| {name} | {al['p50_ms']:.2f} / {al['p99_ms']:.2f} | {du['p50_ms']:.2f} / {du['p99_ms']:.2f} | "
                         f"{h['p99_ratio']}x | {h['misses_c16']['rps']:.0f} |")
    if res.get("goals"):
        lines += ["", "| goal (issue 10) | measured | met |", "|---|---|---|"]
        for g in res["goals"]:
            lines.append(f"| {g['goal']} | {g['measured']} | {'yes' if g['met'] else 'no'} |")
    return "\n".join(lines) + "\n"


SHORT = {"plain": "plain Envoy", "exact_hit": "exact HIT", "semantic_hit": "semantic HIT", "miss_default": "MISS\nin-filter",
         "miss_sidecar": "MISS\nsidecar", "miss_remote": "MISS\nremote", "bypass": "BYPASS"}


def chart(res: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [c for c in CELLS if res["cells"].get(c)]
    concs = res["params"]["concurrency"]
    hol = res.get("head_of_line") or {}
    fig, axes = plt.subplots(1, 3 if hol else 2, figsize=(16 if hol else 12, 4.8),
                             gridspec_kw={"width_ratios": [3, 3, 1.6] if hol else [1, 1]})
    ax1, ax2 = axes[0], axes[1]
    w = 0.8 / max(1, len(concs))
    for i, c in enumerate(concs):
        xs = [j + i * w for j in range(len(cells))]
        rs = [res["cells"][k].get(str(c), {}) for k in cells]
        ax1.bar(xs, [r.get("rps", 0) for r in rs], w, label=f"c={c}")
        ax2.bar(xs, [r.get("p50_ms", 0) for r in rs], w, label=f"c={c} p50")
        ax2.scatter(xs, [r.get("p99_ms", 0) for r in rs], marker="_", s=120, color="black",
                    label="p99" if i == 0 else None, zorder=3)
    for ax, title in ((ax1, "requests/s (log, higher is better)"), (ax2, "latency ms: bars p50, ticks p99 (log)")):
        ax.set_xticks([j + w * (len(concs) - 1) / 2 for j in range(len(cells))])
        ax.set_xticklabels([SHORT[k] for k in cells], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    if hol:
        ax3 = axes[2]
        names = list(hol)
        xs = range(len(names))
        ax3.bar([x - 0.2 for x in xs], [hol[n]["bypass_alone"]["p99_ms"] for n in names], 0.4, label="alone")
        ax3.bar([x + 0.2 for x in xs], [hol[n]["bypass_during_misses"]["p99_ms"] for n in names], 0.4,
                label="misses at c=16")
        ax3.set_xticks(list(xs))
        ax3.set_xticklabels(names, fontsize=8)
        ax3.set_yscale("log")
        ax3.set_title("BYPASS p99 ms (head-of-line)", fontsize=10)
        ax3.legend(fontsize=7)
    m = res["machine"]
    fig.suptitle(f"Semantic cache under load (wrk), {m['date_utc']}, {m['cores']} shared cores, Envoy --concurrency "
                 f"{res['params']['envoy_concurrency']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=8.0, help="seconds per cell (wrk rounds to whole seconds)")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds of unrecorded load before each cell (0: none)")
    ap.add_argument("--concurrency", default="1,16,64", help="comma-separated wrk connection counts")
    ap.add_argument("--cells", default=",".join(CELLS), help="comma-separated subset of " + ",".join(CELLS))
    # The default build (`make build`: the static embedding table compiled in) with the `local` policy.
    # The in-filter MiniLM instead: --wasm build/semantic_cache_local.wasm --policy envoy/policies/local-minilm.json
    ap.add_argument("--wasm", default=os.environ.get(
        "BENCH_WASM", str(ROOT / "target" / "wasm32-wasip1" / "release" / "semantic_cache.wasm")),
        help="the default filter build (cells b c d g)")
    ap.add_argument("--policy", default=os.environ.get("BENCH_POLICY", str(ROOT / "envoy" / "policies" / "local.json")),
                    help="the default policy (its vectorStore names are replaced per configuration)")
    ap.add_argument("--plain-wasm", default=os.environ.get(
        "BENCH_PLAIN_WASM", str(ROOT / "target" / "wasm32-wasip1" / "release" / "semantic_cache.wasm")),
        help="the filter without an in-filter model (sidecar and remote cells)")
    ap.add_argument("--embed-server", default=os.environ.get("BENCH_EMBED_SERVER", str(ROOT / "build" / "embed_server")))
    ap.add_argument("--miss-words", type=int, default=32, help="words per MISS prompt")
    ap.add_argument("--envoy-concurrency", type=int, default=2)
    ap.add_argument("--no-hol", action="store_true", help="skip the head-of-line measurement")
    ap.add_argument("--no-chart", action="store_true")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "bench")
    ap.add_argument("--render-only", action="store_true", help="rewrite results.md/.png from results.json")
    a = ap.parse_args(argv)
    # SIGTERM (a killed `make bench`, a test timeout) must still stop Envoy and Redis in the finally blocks
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    a.concurrency = [int(x) for x in a.concurrency.split(",") if x.strip()]
    a.cells = [c.strip() for c in a.cells.split(",") if c.strip()]
    unknown = [c for c in a.cells if c not in CELLS]
    if unknown:
        ap.error(f"unknown cells {unknown}")
    a.configs = {CELLS[c][0] for c in a.cells}  # head-of-line runs on those of HOL_CONFIGS that are up
    if a.render_only:
        res = json.loads((a.out_dir / "results.json").read_text())
        ratios(res)
        res["goals"] = goals(res)
        (a.out_dir / "results.json").write_text(json.dumps(res, indent=2) + "\n")
        (a.out_dir / "results.md").write_text(markdown(res))
        if not a.no_chart:
            chart(res, a.out_dir / "results.png")
        print(markdown(res))
        return 0
    if not shutil.which("wrk"):
        print("wrk not found: run `make install` (scripts/install.sh installs it with apt-get)", file=sys.stderr)
        return 2

    t0 = time.monotonic()
    b = Bench(a)
    try:
        b.start()
        res = b.run()
    finally:
        b.stop()
    res["params"] = {"duration": a.duration, "warmup": a.warmup, "concurrency": a.concurrency,
                     "envoy_concurrency": a.envoy_concurrency, "miss_words": a.miss_words, "wrk_threads": 1,
                     "wasm": a.wasm, "plain_wasm": a.plain_wasm, "policy": a.policy,
                     "wall_s": round(time.monotonic() - t0, 1)}
    res["machine"] = machine()
    ratios(res)
    res["goals"] = goals(res)
    a.out_dir.mkdir(parents=True, exist_ok=True)
    (a.out_dir / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    md = markdown(res)
    (a.out_dir / "results.md").write_text(md)
    if not a.no_chart:
        chart(res, a.out_dir / "results.png")
    print(md)
    print(f"[bench] wrote {a.out_dir / 'results.json'}, results.md{'' if a.no_chart else ', results.png'} "
          f"in {res['params']['wall_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
