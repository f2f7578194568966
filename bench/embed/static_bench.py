#!/usr/bin/env python3
"""The in-filter embedders in a real Envoy, side by side in one run (issue 10, item 1).

For each configuration (the real filter .wasm + a policy with provider `local`; "no filter" as the baseline):
  * wasm size, code / data section sizes (bench/embed/wasm_sections.py);
  * ready: launch -> Envoy's /ready answers and the listener accepts (EnvoyProcess.start of the e2e harness);
  * first answer: launch -> the first request through the filter answered (the worker's model is loaded then);
  * RSS of Envoy with --concurrency 2 after warm-up (distinct prompts sent 8 at a time so that both workers
    embed), from /proc/<pid>/status;
  * per-embed time inside Envoy for a 16-token and a 128-token prompt: the filter's own histogram
    semantic_cache.embed_us, detailed buckets diffed around a batch of distinct prompts of that length
    (bucket midpoints, so about two significant digits);
  * misses per second at c=16 (distinct prompts, LLM stand-in answering at once) as a rough throughput check.
Real Redis (RediSearch) and the Python LLM stand-in of tests/e2e. Prints a markdown table and writes
bench/embed/static_results.json. Figures are relative (two shared cores); nothing here is asserted.

usage: static_bench.py [--configs nofilter,static,minilm,sidecar] [--extra NAME=WASM[,POLICY] ...] [--n 60]
                      [--build-dir DIR]   (minilm and sidecar need `make build-local`)
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import itertools
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT / "bench" / "embed"))
from harness import (DEFAULT_WASM, EnvoyProcess, RedisServer, Site, chat_body, free_port,  # noqa: E402
                     static_cluster, wait_tcp)
from standins import LlmStandIn  # noqa: E402
from wasm_sections import sections  # noqa: E402

POLICIES = ROOT / "envoy" / "policies"
BUILD = ROOT / "build"
CONFIGS = {
    "nofilter": (None, None),
    "static": (DEFAULT_WASM, POLICIES / "local.json"),
    "minilm": (BUILD / "semantic_cache_local.wasm", POLICIES / "local-minilm.json"),
    # the plain filter calling the native sidecar (build/embed_server, MiniLM) over HTTP
    "sidecar": (DEFAULT_WASM, "sidecar"),
}
# ~16 and ~128 BERT tokens without [CLS]/[SEP]; distinct leading words per request keep every one a miss (not
# numbers: both models put prompts that differ only in a number within their thresholds)
WORDS16 = "please explain how to reset the password of my online banking account today"
WORDS128 = ("could you please explain in detail how to reset the password of my account when i no longer have "
            "access to the email address that was registered and whether customer support can verify my identity "
            "another way i also want to know how long the whole process usually takes what documents i might "
            "need to provide whether my saved payment methods and order history will be kept after the reset "
            "and if there is anything i should do right now to protect the account from unauthorized access "
            "while i wait finally please list the steps for enabling two factor authentication afterwards "
            "including which authenticator apps are supported and how backup codes work")


NOUNS = ("apple bridge candle desert engine forest guitar harbor island jacket kettle ladder meadow needle "
         "orchard pencil quarry rocket saddle tunnel umbrella valley window yogurt zebra anchor basket canyon "
         "dragon falcon garden hammer igloo jungle kitten lemon magnet napkin ocean parrot").split()


TAGS = [" ".join(c) for c in itertools.combinations(NOUNS, 3)]


def tag(i: int) -> str:
    """Three distinct nouns, a different set for every i < len(TAGS) (sets, not sequences: the static model is
    a bag of words, so a permutation would be the same prompt to it)."""
    return TAGS[i % len(TAGS)]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


FLUSH_WAIT_S = 5.5  # Envoy merges worker histograms at each stats flush (default every 5 s)


def embed_buckets(e: EnvoyProcess) -> dict[float, int]:
    """Cumulative detailed buckets of semantic_cache.embed_us: {bucket midpoint (us): count}."""
    time.sleep(FLUSH_WAIT_S)
    raw = e.admin_get("/stats?filter=semantic_cache.embed_us&format=json&histogram_buckets=detailed")
    out: dict[float, int] = {}
    for st in json.loads(raw).get("stats", []):
        hs = st.get("histograms")
        for h in hs.get("details", []) if isinstance(hs, dict) else []:
            if not h.get("name", "").endswith("semantic_cache.embed_us"):
                continue
            for b in h.get("totals", []):
                mid = float(b["lower_bound"]) + float(b["width"]) / 2
                out[mid] = out.get(mid, 0) + int(b["count"])
    return out


def quantile_of_diff(before: dict, after: dict, q: float) -> float | None:
    diff = sorted((k, after[k] - before.get(k, 0)) for k in after if after[k] - before.get(k, 0) > 0)
    total = sum(c for _, c in diff)
    if not total:
        return None
    acc = 0
    for k, c in diff:
        acc += c
        if acc >= q * total:
            return k
    return diff[-1][0]


def post(url: str, prompt: str, timeout: float = 60) -> tuple[int, str, float]:
    data = json.dumps(chat_body(prompt)).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"content-type": "application/json", "authorization": "Bearer sk-bench"})
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
            return r.status, r.headers.get("x-cache-status", ""), time.perf_counter() - t
    except OSError as ex:
        return 0, str(ex), time.perf_counter() - t


def run(name: str, wasm: Path | None, policy_file: Path | None, redis: RedisServer, llm: LlmStandIn,
        n: int, seq: list[int]) -> dict:
    res: dict = {"config": name}
    if wasm is not None:
        if not wasm.exists():
            return {"config": name, "skipped": f"{wasm} missing"}
        res["wasm"] = str(wasm.relative_to(ROOT)) if wasm.is_relative_to(ROOT) else str(wasm)
        res["wasm_mb"] = {k: round(v / 1e6, 2) for k, v in sections(wasm).items()}
    policy = None
    clusters = {"llm": static_cluster("llm", llm.port, connect_timeout="2s"),
                "redis": static_cluster("redis", redis.port, tcp=True)}
    sidecar = None
    if policy_file == "sidecar":
        exe = BUILD / "embed_server"
        if not exe.exists():
            return {"config": name, "skipped": f"{exe} missing (make build-local)"}
        port = free_port()
        sidecar = subprocess.Popen([str(exe), "--listen", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        wait_tcp(port, timeout=60)
        policy = json.loads((POLICIES / "local-minilm.json").read_text())
        policy["embedding"] = {"provider": "openai-compatible", "url": f"http://127.0.0.1:{port}/v1/embeddings",
                               "model": "local", "dimensions": 384, "timeoutMs": 10000}
        clusters["embedding"] = static_cluster("embedding", port)
    elif policy_file is not None:
        policy = json.loads(Path(policy_file).read_text())
    if policy is not None:
        policy["vectorStore"].update({"indexName": f"bench_{name}_idx", "keyPrefix": f"bench_{name}:"})
    e = EnvoyProcess([Site("b", policy)], clusters, wasm if policy else None, concurrency=2, log_level="warning")
    t0 = time.monotonic()
    e.start(timeout=240)
    res["ready_s"] = round(time.monotonic() - t0, 2)
    res["envoy_log"] = str(e.log)
    try:
        url = e.url("b")
        st, cache, _ = post(url, f"{tag(0)} {WORDS16}")
        res["first_answer_s"] = round(time.monotonic() - t0, 2)
        res["first_status"] = f"{st} {cache}"
        # warm-up: both workers embed
        with cf.ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda i: post(url, f"{tag(1000 + i)} {WORDS16}"), range(32)))
        time.sleep(0.5)
        res["rss_mb"] = round(rss_mb(e.proc.pid), 1)
        if policy is not None:
            for k, (label, words) in enumerate((("16", WORDS16), ("128", WORDS128))):
                b0 = embed_buckets(e)
                for i in range(k * n, (k + 1) * n):
                    post(url, f"{tag(seq[i])} {words}")
                b1 = embed_buckets(e)
                res[f"embed_p50_us_{label}"] = quantile_of_diff(b0, b1, 0.5)
                res[f"embed_p95_us_{label}"] = quantile_of_diff(b0, b1, 0.95)
        # miss throughput at c=16 (distinct prompts)
        m = max(4 * n, 160)
        t = time.perf_counter()
        with cf.ThreadPoolExecutor(16) as ex:
            out = list(ex.map(lambda i: post(url, f"{tag(seq[-1] + 1 + i)} {WORDS16}"), range(m)))
        el = time.perf_counter() - t
        res["c16_rps"] = round(m / el, 1)
        res["c16_statuses"] = sorted({f"{s} {c}" for s, c, _ in out})
        lat = sorted(x for _, _, x in out)
        res["c16_p50_ms"] = round(1000 * lat[len(lat) // 2], 1)
        res["c16_p99_ms"] = round(1000 * lat[int(len(lat) * 0.99) - 1], 1)
        res["rss_after_load_mb"] = round(rss_mb(e.proc.pid), 1)
    finally:
        e.stop()
        if sidecar is not None:
            sidecar.terminate()
            sidecar.wait(10)
    return res


def native_embed_us() -> dict:
    """static_embed --bench (native, same core code) for the two prompts."""
    exe = ROOT / "target" / "release" / "static_embed"
    try:
        subprocess.run(["cargo", "build", "--release", "--bin", "static_embed"], cwd=ROOT, check=True,
                       capture_output=True)
    except (subprocess.CalledProcessError, FileNotFoundError) as ex:
        return {"skipped": f"cargo build --bin static_embed failed: {ex}"}
    inp = "\n".join(json.dumps(f"1234 {w}") for w in (WORDS16, WORDS128)) + "\n"
    r = subprocess.run([str(exe), "--bench", "2000"], input=inp, capture_output=True, text=True, check=True)
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    return {"16": rows[0], "128": rows[1]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="nofilter,static,minilm")
    ap.add_argument("--extra", action="append", default=[], help="NAME=WASM[,POLICY] (default policy: local.json)")
    ap.add_argument("--build-dir", help="where embed_server and semantic_cache_local.wasm are (default build/)")
    ap.add_argument("--n", type=int, default=60, help="requests per prompt length for the embed histogram")
    ap.add_argument("--out", default=str(ROOT / "bench" / "embed" / "static_results.json"))
    a = ap.parse_args()
    global BUILD
    if a.build_dir:
        BUILD = Path(a.build_dir).resolve()
        CONFIGS["minilm"] = (BUILD / "semantic_cache_local.wasm", POLICIES / "local-minilm.json")
    configs = {k: CONFIGS[k] for k in a.configs.split(",") if k}
    for x in a.extra:
        k, _, w = x.partition("=")
        w, _, pol = w.partition(",")
        configs[k] = (Path(w).resolve(), Path(pol) if pol else POLICIES / "local.json")
    redis = RedisServer()
    redis.start()
    llm = LlmStandIn()
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "machine": f"{subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores, "
                          f"load {Path('/proc/loadavg').read_text().split()[0]} at start",
               "native_static_embed": native_embed_us(), "configs": []}
    try:
        seq = list(range(2000, 2000 + 2 * a.n))
        for name, (wasm, pol) in configs.items():
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            r = run(name, wasm, pol, redis, llm, a.n, seq)
            print(f"[bench] {json.dumps(r)}", file=sys.stderr, flush=True)
            results["configs"].append(r)
            redis.flushall()
    finally:
        llm.close()
        redis.close()
    Path(a.out).write_text(json.dumps(results, indent=1) + "\n")
    cols = ["config", "wasm_mb", "ready_s", "first_answer_s", "rss_mb", "rss_after_load_mb", "embed_p50_us_16",
            "embed_p50_us_128", "c16_rps", "c16_p50_ms", "c16_p99_ms"]
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in results["configs"]:
        cells = []
        for c in cols:
            v = r.get(c, r.get("skipped", "") if c == "ready_s" else "")
            if c == "wasm_mb" and isinstance(v, dict):
                v = f"{v['total']} (code {v['code']})"
            cells.append(str(v))
        print("| " + " | ".join(cells) + " |")
    print(f"native static embed: {json.dumps(results['native_static_embed'])}")


if __name__ == "__main__":
    main()
