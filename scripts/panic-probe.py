"""Shows what happens when the filter panics inside Envoy (issue 13: "prove the panic hook logs").

Builds the wasm with the test-only feature `panic-probe` into target/panic-probe/ (the release build is
untouched; the feature is never in a release), starts Redis + Envoy with it (harness, FAIL_OPEN as
docs/contract.md wires the filter), sends a normal request, one with `x-semantic-cache-panic-probe`,
then normal requests again, and prints what the client got and the Envoy log lines about the panic.
Exit status 0 when the hook's `semantic-cache panic: panicked at ...` line is in the log at critical level,
every request after the panic is answered 200 (the crashed worker's VM fails open, the others still cache)
and Envoy is still up. The panicking request itself gets Envoy's 503 (its filter chain died mid-request):
that is why no input-driven path may panic.

    .local/venv/bin/python scripts/panic-probe.py [FAIL_OPEN|FAIL_RELOAD|FAIL_CLOSED]   (failure_policy)
"""
from __future__ import annotations

import os
import subprocess
import yaml
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import harness  # noqa: E402
from harness import EnvoyProcess, RedisServer, Site, static_cluster  # noqa: E402
from standins import EmbeddingStandIn, LlmStandIn  # noqa: E402

TARGET = ROOT / "target" / "panic-probe"


def main() -> int:
    subprocess.run(["cargo", "build", "--release", "--target", "wasm32-wasip1", "--features", "panic-probe"],
                   cwd=ROOT, check=True, env=dict(os.environ, CARGO_TARGET_DIR=str(TARGET)))
    wasm = TARGET / "wasm32-wasip1" / "release" / "semantic_cache.wasm"
    redis, llm, emb = RedisServer(), LlmStandIn(), EmbeddingStandIn()
    redis.start()
    clusters = {"llm": static_cluster("llm", llm.port), "embedding": static_cluster("embedding", emb.port),
                "redis": static_cluster("redis", redis.port, tcp=True)}
    envoy = EnvoyProcess([Site("p", harness.policy_for("p", emb))], clusters, wasm)
    policy = sys.argv[1] if len(sys.argv) > 1 else "FAIL_OPEN"
    hcm = envoy.config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["http_filters"][0]["typed_config"]["config"]["failure_policy"] = policy
    envoy.config_path.write_text(yaml.safe_dump(envoy.config, sort_keys=False))
    print(f"failure_policy: {policy}")
    ok = True
    try:
        envoy.start()
        def ask(prompt, **h):
            r = harness.ask(envoy, "p", prompt, auth="Bearer probe", headers=h)
            print(f"{prompt!r:40} -> {r.status_code} x-cache-status={r.headers.get('x-cache-status')}")
            return r
        ask("before the panic")
        ask("the panicking request", **{"x-semantic-cache-panic-probe": "1"})
        for i in range(6):
            r = ask(f"after the panic {i}")
            ok &= r.status_code == 200
        log = envoy.log_since(0)
        lines = [ln for ln in log.splitlines() if "panic" in ln.lower() or "wasm" in ln.lower() and "fail" in ln.lower()]
        print("\n".join(lines[:12]))
        ok &= any("[critical]" in ln and "semantic-cache panic: panicked at" in ln for ln in lines)
        ok &= envoy.alive()
    finally:
        envoy.stop()
        redis.close()
        llm.close()
        emb.close()
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
