#!/usr/bin/env python3
"""In-Envoy benchmark of local embedding-model candidates (the filter's own LocalEmbedder code).

For each candidate .local/models/<name>/ (model.onnx + tokenizer.json):
  1. builds bench/embed/filter (a tiny proxy-wasm filter that includes src/core/embed/local.rs and embeds
     on every request) with the model embedded, same release profile and +simd128 as the real filter
     -> build/bench-embed/<name>.wasm (rebuilt only when the model or the code is newer);
  2. starts Envoy (V8) with --concurrency 1 and 2: start time = launch -> first 200 from the filter
     (listener up and the model loaded); RSS of the envoy process after warm-up; per-worker RSS =
     RSS(c=2) - RSS(c=1); baseline = the same Envoy without the wasm filter;
  3. p50/p95 of the in-VM embed time (tokenize + inference, reported by the filter in x-embed-us) for a
     16-token and a 128-token prompt (BERT token counts incl. [CLS]/[SEP]; other tokenizers report theirs);
  4. native p50/p95 of the same texts with build/embed_server --bench (same code, native, 1 thread).
Prints a markdown table and writes bench/embed/results.json.

usage: bench.py [--models a,b,c] [--requests N] [--no-build]
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "bench" / "embed"
MODELS = ROOT / ".local" / "models"
OUT = ROOT / "build" / "bench-embed"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
DEFAULT_MODELS = ["all-MiniLM-L6-v2", "minilm-l6-int8", "minilm-l3", "wordllama-l2-256"]

PARA = ("Could you please explain in detail how to reset the password of my account when I no longer have "
        "access to the email address that was registered, and whether customer support can verify my identity "
        "another way? I also want to know how long the whole process usually takes, what documents I might need "
        "to provide, whether my saved payment methods and order history will be kept after the reset, and if "
        "there is anything I should do right now to protect the account from unauthorized access while I wait. "
        "Finally, please list the steps for enabling two-factor authentication afterwards, including which "
        "authenticator apps are supported, how backup codes work, and what happens if I lose my phone later on, "
        "because I travel a lot for work and often change SIM cards in different countries around the world.")


def env_paths():
    p = ROOT / ".local" / "paths.env"
    vals = {}
    if p.exists():
        for line in p.read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                vals[k] = v.strip().strip('"')
    return vals


def texts_by_tokens():
    """Prefixes of PARA with 16 and >=128 BERT tokens (incl. specials), via the L6 tokenizer."""
    from tokenizers import Tokenizer
    tj = MODELS / "all-MiniLM-L6-v2" / "tokenizer.json"
    if not tj.exists():
        tj = next(MODELS.glob("minilm-*/tokenizer.json"))
    tok = Tokenizer.from_file(str(tj))
    tok.no_padding()
    tok.no_truncation()
    words = PARA.split()
    t16 = None
    for i in range(1, len(words) + 1):
        n = len(tok.encode(" ".join(words[:i])).ids)
        if n == 16:
            t16 = " ".join(words[:i])
            break
    assert t16, "no 16-token prefix"
    assert len(tok.encode(PARA).ids) >= 128
    return {"16": t16, "128": PARA}


def newest_src_mtime():
    files = [ROOT / "src/core/embed/local.rs", HERE / "filter/src/lib.rs", HERE / "filter/Cargo.toml",
             ROOT / "build.rs"]
    return max(f.stat().st_mtime for f in files if f.exists())


def build_filter(name: str, no_build: bool) -> Path:
    d = MODELS / name
    out = OUT / f"{name}.wasm"
    newest = max(newest_src_mtime(), (d / "model.onnx").stat().st_mtime, (d / "tokenizer.json").stat().st_mtime)
    if out.exists() and (no_build or out.stat().st_mtime >= newest):
        return out
    OUT.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["SEMCACHE_MODEL_DIR"] = str(d.resolve())
    env["RUSTFLAGS"] = (env.get("RUSTFLAGS", "") + " -C target-feature=+simd128").strip()
    env["CARGO_TARGET_DIR"] = str(TARGET)
    # same opt-level as scripts/build-local.sh uses for the real filter (default z)
    env["CARGO_PROFILE_RELEASE_OPT_LEVEL"] = env.get("SEMCACHE_WASM_OPT_LEVEL", "z")
    print(f"[bench] building filter for {name} ...", file=sys.stderr, flush=True)
    t0 = time.time()
    subprocess.check_call(["cargo", "build", "--release", "--target", "wasm32-wasip1",
                           "--manifest-path", str(HERE / "filter" / "Cargo.toml")], env=env, cwd=ROOT)
    print(f"[bench] built in {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
    shutil.copyfile(TARGET / "wasm32-wasip1" / "release" / "embed_bench_filter.wasm", out)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ENVOY_CFG = """
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}
static_resources:
  listeners:
  - name: l
    address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                direct_response: {{status: 204}}
          http_filters:
{wasm}
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
"""
WASM_FILTER = """          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: embed_bench
                root_id: embed_bench
                configuration: {{"@type": type.googleapis.com/google.protobuf.StringValue, value: "{mode}"}}
                vm_config:
                  vm_id: embed_bench
                  runtime: envoy.wasm.runtime.v8
                  code: {{local: {{filename: "{wasm}"}}}}
"""


def get(port, text=None, timeout=5.0):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"x-embed-text": text} if text else {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, dict(r.headers)


def rss_kb(pid: int) -> int:
    out = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    return int(out or 0)


class Envoy:
    def __init__(self, envoy_bin, wasm, concurrency, lazy=False):
        self.port, self.admin = free_port(), free_port()
        wasm_yaml = WASM_FILTER.format(wasm=wasm, mode="lazy" if lazy else "eager") if wasm else ""
        self.dir = tempfile.mkdtemp(prefix="embed-bench-")
        cfg = Path(self.dir) / "envoy.yaml"
        cfg.write_text(ENVOY_CFG.format(admin=self.admin, port=self.port, wasm=wasm_yaml))
        self.log = open(Path(self.dir) / "envoy.log", "w")
        self.t0 = time.monotonic()
        self.p = subprocess.Popen([envoy_bin, "-c", str(cfg), "--concurrency", str(concurrency),
                                   "--log-level", "info", "--base-id", str(os.getpid() % 10000 + concurrency * 7 + 1),
                                   "--disable-hot-restart"],
                                  stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, text, timeout=180.0) -> float:
        while time.monotonic() - self.t0 < timeout:
            if self.p.poll() is not None:
                raise RuntimeError(f"envoy exited: see {self.dir}/envoy.log")
            try:
                st, _ = get(self.port, text, timeout=2.0)
                if st in (200, 204):
                    return time.monotonic() - self.t0
            except Exception:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"envoy not ready in {timeout}s: see {self.dir}/envoy.log")

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.log.close()


def head_of_line(port, texts, n=40):
    """Wall latency of a tiny request ("hi", ~3 tokens) alone, then while another client keeps the (only)
    worker busy with 128-token embeds: what one embed costs the other requests on its worker."""
    import threading

    def tiny():
        t = time.monotonic()
        get(port, "hi")
        return (time.monotonic() - t) * 1000

    alone = [tiny() for _ in range(n)]
    stop = threading.Event()

    def hog():
        while not stop.is_set():
            get(port, texts["128"], timeout=30)

    th = threading.Thread(target=hog, daemon=True)
    th.start()
    time.sleep(0.2)
    busy = []
    for _ in range(n):
        busy.append(tiny())
        time.sleep(0.013)  # desynchronise from the hog's period
    stop.set()
    th.join(30)
    return {"hol_alone_p50_ms": pctl(alone, 50), "hol_busy_p50_ms": pctl(busy, 50), "hol_busy_p95_ms": pctl(busy, 95)}


def pctl(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round((len(xs) - 1) * p / 100.0)))]


def measure(envoy_bin, wasm, texts, n_req, lazy=False):
    res = {}
    for conc in (1, 2):
        e = Envoy(envoy_bin, wasm, conc, lazy)
        try:
            res[f"start_s_c{conc}"] = e.wait_ready(texts["16"])
            if wasm and conc == 1:
                for key, text in texts.items():
                    for _ in range(5):
                        get(e.port, text)
                    us, toks = [], None
                    for _ in range(n_req):
                        st, h = get(e.port, text)
                        us.append(int(h["x-embed-us"]))
                        toks = int(h["x-embed-tokens"])
                    res[f"p50_ms_{key}"] = pctl(us, 50) / 1000
                    res[f"p95_ms_{key}"] = pctl(us, 95) / 1000
                    res[f"tokens_{key}"] = toks
                res.update(head_of_line(e.port, texts))
            else:
                # warm every worker a little (connections are spread over workers)
                for _ in range(10 * conc):
                    get(e.port, texts["16"])
            time.sleep(0.3)
            res[f"rss_mb_c{conc}"] = rss_kb(e.p.pid) / 1024
        finally:
            e.stop()
    res["rss_mb_per_worker"] = res["rss_mb_c2"] - res["rss_mb_c1"]
    return res


def native(name, texts, n):
    exe = ROOT / "build" / "embed_server"
    if not exe.exists():
        return {}
    p = subprocess.run([str(exe), "--model-dir", str(MODELS / name), "--bench", str(n)],
                       input=texts["16"] + "\n" + texts["128"] + "\n", capture_output=True, text=True, timeout=600)
    rows = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    if len(rows) != 2:
        return {"native_error": p.stderr[-300:]}
    return {"native_p50_ms_16": rows[0]["p50_us"] / 1000, "native_p95_ms_16": rows[0]["p95_us"] / 1000,
            "native_p50_ms_128": rows[1]["p50_us"] / 1000, "native_p95_ms_128": rows[1]["p95_us"] / 1000,
            "native_load_ms": rows[0]["load_ms"]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS))
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--lazy", action="store_true",
                    help="load the model on each worker's first request instead of at VM start (the main-thread "
                         "VM then never loads it); start = first answer, so it includes one load")
    args = ap.parse_args()
    envoy_bin = os.environ.get("ENVOY_BIN") or env_paths().get("ENVOY_BIN")
    if not envoy_bin or not Path(envoy_bin).exists():
        print("ENVOY_BIN not found: run scripts/install.sh", file=sys.stderr)
        return 1
    texts = texts_by_tokens()
    results_path = HERE / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    base = measure(envoy_bin, None, texts, 0)
    results["_baseline_envoy"] = base
    print(f"[bench] baseline envoy: start {base['start_s_c1']:.2f}s rss {base['rss_mb_c1']:.0f}/{base['rss_mb_c2']:.0f} MB",
          file=sys.stderr)
    for name in [m for m in args.models.split(",") if m]:
        if not (MODELS / name / "model.onnx").exists():
            print(f"[bench] skip {name}: no model", file=sys.stderr)
            continue
        try:
            wasm = build_filter(name, args.no_build)
            r = {"wasm_mb": wasm.stat().st_size / 1e6, "model_mb": (MODELS / name / "model.onnx").stat().st_size / 1e6}
            r.update(measure(envoy_bin, str(wasm), texts, args.requests, args.lazy))
            r["lazy_load"] = args.lazy
            r["start_added_s"] = r["start_s_c1"] - base["start_s_c1"]
            r["rss_added_mb_c1"] = r["rss_mb_c1"] - base["rss_mb_c1"]
            r.update(native(name, texts, args.requests))
        except Exception as ex:  # keep going with the other candidates
            r = {"error": str(ex)}
        results[name] = r
        print(f"[bench] {name}: {json.dumps(r)}", file=sys.stderr, flush=True)
        results_path.write_text(json.dumps(results, indent=1))
    print(render(results, [m for m in args.models.split(",") if m in results]))
    return 0


def render(results, names):
    b = results.get("_baseline_envoy", {})
    lines = [f"Baseline Envoy (no wasm): start {b.get('start_s_c1', 0):.2f} s, RSS {b.get('rss_mb_c1', 0):.0f} MB (c=1), "
             f"{b.get('rss_mb_c2', 0):.0f} MB (c=2)", "",
             "| model | model.onnx MB | .wasm MB | Envoy start (c=1) s / added s | RSS c=1 / c=2 MB | RSS per worker MB "
             "| Envoy p50 / p95 ms, 16 tok | Envoy p50 / p95 ms, 128 tok | native p50 ms 16 / 128 "
             "| tiny request alone / next to 128-tok embeds, p50 (p95) ms |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for n in names:
        r = results[n]
        if "error" in r:
            lines.append(f"| {n} | error: {r['error'][:80]} |")
            continue
        lines.append(
            f"| {n} | {r['model_mb']:.1f} | {r['wasm_mb']:.1f} | {r['start_s_c1']:.2f} / +{r['start_added_s']:.2f} "
            f"| {r['rss_mb_c1']:.0f} / {r['rss_mb_c2']:.0f} | {r['rss_mb_per_worker']:.0f} "
            f"| {r['p50_ms_16']:.2f} / {r['p95_ms_16']:.2f} ({r['tokens_16']} tok) "
            f"| {r['p50_ms_128']:.2f} / {r['p95_ms_128']:.2f} ({r['tokens_128']} tok) "
            f"| {r.get('native_p50_ms_16', float('nan')):.2f} / {r.get('native_p50_ms_128', float('nan')):.2f} "
            f"| {r.get('hol_alone_p50_ms', float('nan')):.1f} / {r.get('hol_busy_p50_ms', float('nan')):.1f} "
            f"({r.get('hol_busy_p95_ms', float('nan')):.1f}) |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
