#!/usr/bin/env python3
"""Render an Envoy config template (``${NAME}`` placeholders) for the local stack.

    scripts/render_envoy.py [--template envoy/envoy-local.yaml.tmpl] [--out .local/run/envoy.yaml]
    scripts/render_envoy.py --print-policy      # only the effective policy JSON

Environment (defaults in brackets):
  LISTEN_ADDRESS [127.0.0.1]  LISTEN_PORT [10000]  ADMIN_PORT [9901]
  REDIS_HOST [127.0.0.1]      REDIS_PORT [6379]
  LLM_BASE_URL [https://api.openai.com]  scheme://host[:port]; https -> TLS with SNI, http -> plain.
                                          The caller's own Authorization header passes through.
  WASM   [target/wasm32-wasip1/release/semantic_cache.wasm]  (build/semantic_cache_local.wasm for `local`)
  POLICY [envoy/policies/openai-compatible.json]             base policy file
  EMBED_PROVIDER, EMBED_URL, EMBED_API_KEY, EMBED_MODEL, EMBED_DIMENSIONS, EMBED_AUTH_HEADER:
         override the policy's `embedding` fields when set (EMBED_API_KEY falls back to
         OPENAI_API_KEY for openai-compatible). The embedding cluster is derived from the URL.
  SSL_CA_FILE [/etc/ssl/certs/ca-certificates.crt]  trust store for https upstreams.
Unknown ``${NAME}`` placeholders are an error (nothing silently renders empty).
Stdlib only, so it runs with any python3.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"\$\{([A-Z0-9_]+)\}")


def env(name: str, default: str = "") -> str:
    v = os.environ.get(name)
    return v if v not in (None, "") else default


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def cluster_type(host: str) -> str:
    return "STATIC" if is_ip(host) else "STRICT_DNS"


def transport_socket(scheme: str, host: str) -> str:
    """A one-line YAML flow mapping (valid inside the block template)."""
    if scheme == "https":
        ca = env("SSL_CA_FILE", "/etc/ssl/certs/ca-certificates.crt")
        tls = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": host,
                "common_tls_context": {"validation_context": {"trusted_ca": {"filename": ca}}},
            },
        }
        return json.dumps(tls)
    raw = {"name": "envoy.transport_sockets.raw_buffer",
           "typed_config": {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"}}
    return json.dumps(raw)


def split_url(url: str, what: str) -> tuple[str, str, int]:
    u = urlsplit(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise SystemExit(f"render_envoy: {what}={url!r} must be http(s)://host[:port][/path]")
    return u.scheme, u.hostname, u.port or (443 if u.scheme == "https" else 80)


def effective_policy() -> dict:
    policy_file = Path(env("POLICY", str(ROOT / "envoy/policies/openai-compatible.json")))
    policy = json.loads(policy_file.read_text())
    emb = policy.setdefault("embedding", {})
    for var, key, conv in [("EMBED_PROVIDER", "provider", str), ("EMBED_URL", "url", str),
                           ("EMBED_API_KEY", "apiKey", str), ("EMBED_MODEL", "model", str),
                           ("EMBED_DIMENSIONS", "dimensions", int), ("EMBED_AUTH_HEADER", "authHeader", str)]:
        if env(var):
            emb[key] = conv(env(var))
    if emb.get("provider") == "openai-compatible" and not env("EMBED_API_KEY") and env("OPENAI_API_KEY"):
        emb["apiKey"] = env("OPENAI_API_KEY")
    if emb.get("provider") != "local":
        emb.setdefault("cluster", "embedding")
    policy.setdefault("vectorStore", {}).setdefault("cluster", "redis")
    return policy


def values() -> dict[str, str]:
    policy = effective_policy()
    emb = policy.get("embedding", {})
    llm_scheme, llm_host, llm_port = split_url(env("LLM_BASE_URL", "https://api.openai.com"), "LLM_BASE_URL")
    # `local` embeds in the filter: the embedding cluster is then unused; point it at the sidecar port.
    embed_url = emb.get("url") or "http://127.0.0.1:8080/v1/embeddings"
    e_scheme, e_host, e_port = split_url(embed_url, "embedding url")
    redis_host = env("REDIS_HOST", "127.0.0.1")
    wasm = Path(env("WASM", str(ROOT / "target/wasm32-wasip1/release/semantic_cache.wasm")))
    return {
        "LISTEN_ADDRESS": env("LISTEN_ADDRESS", "127.0.0.1"),
        "LISTEN_PORT": env("LISTEN_PORT", "10000"),
        "ADMIN_PORT": env("ADMIN_PORT", "9901"),
        "LLM_BASE_URL": env("LLM_BASE_URL", "https://api.openai.com"),
        "LLM_HOST": llm_host,
        "LLM_PORT": str(llm_port),
        "LLM_CLUSTER_TYPE": cluster_type(llm_host),
        "LLM_TRANSPORT_SOCKET": transport_socket(llm_scheme, llm_host),
        "EMBED_URL": embed_url,
        "EMBED_HOST": e_host,
        "EMBED_PORT": str(e_port),
        "EMBED_CLUSTER_TYPE": cluster_type(e_host),
        "EMBED_TRANSPORT_SOCKET": transport_socket(e_scheme, e_host),
        "REDIS_HOST": redis_host,
        "REDIS_PORT": env("REDIS_PORT", "6379"),
        "REDIS_CLUSTER_TYPE": cluster_type(redis_host),
        "WASM": str(wasm if wasm.is_absolute() else (ROOT / wasm)),
        # a JSON string is a valid YAML double-quoted scalar
        "POLICY_JSON": json.dumps(json.dumps(policy, separators=(",", ":"))),
    }


def render(template: str, vals: dict[str, str]) -> str:
    missing = sorted({m for m in PLACEHOLDER.findall(template) if m not in vals})
    if missing:
        raise SystemExit(f"render_envoy: no value for placeholder(s): {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda m: vals[m.group(1)], template)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--template", default=str(ROOT / "envoy/envoy-local.yaml.tmpl"))
    ap.add_argument("--out", default="-")
    ap.add_argument("--print-policy", action="store_true")
    a = ap.parse_args()
    if a.print_policy:
        print(json.dumps(effective_policy(), indent=2))
        return 0
    out = render(Path(a.template).read_text(), values())
    if a.out == "-":
        sys.stdout.write(out)
    else:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
