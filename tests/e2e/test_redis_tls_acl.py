"""The production wiring end to end: Redis behind TLS with the shipped ACL user, the LLM behind TLS.

* A CA and a wildcard server certificate (`*.semcache.test`, like Redis Cloud's) made here with `openssl`.
* `stunnel4` terminates TLS in front of the real redis-server (loaded with deploy/redis/users.acl, the file
  docker-compose.yml mounts) and in front of the LLM stand-in (the registry's redis-server has no TLS).
* Envoy's Redis cluster is deploy/redis/redis-cloud-cluster.yaml (the documented Redis Cloud / Enterprise
  cluster) with only its host, port, SNI, SAN and CA rewritten; the LLM cluster is envoy-compose.yaml's, the
  same way. The policy is envoy/policies/local.json with the compose stack's index, key prefix and ACL user.

Sites: `tls` (all of the above: MISS, exact HIT, paraphrase HIT), `tlsembed` (a remote embedding provider
through the compose `embedding` cluster, TLS to a stand-in behind stunnel), `wrongpw` (same cluster, wrong
password: BYPASS redis-error, the LLM still answers), `badsan` (a cluster that expects another certificate
name: the handshake is refused, BYPASS redis-error). Then the ACL user itself, over the TLS port: the
filter's commands work, everything else is NOPERM, and the ACL grants exactly the commands the filter sends.
"""
from __future__ import annotations

import copy
import json
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from functools import partial
from pathlib import Path

import pytest
import yaml

import harness
from harness import (ROOT, EnvoyProcess, RedisError, RedisServer, Site, _Reader, assert_status, binary,
                     free_port, resp_encode, terminate, wait_tcp)
from standins import EmbeddingStandIn

ACL_FILE = ROOT / "deploy" / "redis" / "users.acl"
CLOUD_CLUSTER = ROOT / "deploy" / "redis" / "redis-cloud-cluster.yaml"
ENVOY_COMPOSE = ROOT / "envoy" / "envoy-compose.yaml"
LOCAL_POLICY = ROOT / "envoy" / "policies" / "local.json"
REDIS_SRC = ROOT / "src" / "core" / "redis"

# The dev passwords of deploy/redis/users.acl (README: replace them; the file stores only their SHA-256).
FILTER_USER, FILTER_PASSWORD = "semcache", "change-me-semcache"
ADMIN_USER, ADMIN_PASSWORD = "admin", "change-me-admin"
REDIS_NAME, LLM_NAME, EMBED_NAME = "redis.semcache.test", "llm.semcache.test", "embed.semcache.test"

ask = partial(harness.ask, auth="Bearer sk-tls-acl-test")


def compose_policy() -> dict:
    """The policy inside envoy-compose.yaml (index, key prefix, credentials the ACL expects)."""
    cfg = yaml.safe_load(ENVOY_COMPOSE.read_text())
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    wasm = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.wasm")
    return json.loads(wasm["typed_config"]["config"]["configuration"]["value"])


def compose_cluster(name: str) -> dict:
    cfg = yaml.safe_load(ENVOY_COMPOSE.read_text())
    return next(c for c in cfg["static_resources"]["clusters"] if c["name"] == name)


# ------------------------------------------------------------------------------------------------
# certificates, Redis with the ACL file, stunnel
# ------------------------------------------------------------------------------------------------
def _openssl(*args: str, cwd: Path) -> None:
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    assert r.returncode == 0, f"openssl {' '.join(args)}:\n{r.stderr}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=semcache test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=*.semcache.test", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=DNS:*.semcache.test\nextendedKeyUsage=serverAuth\n"
                               "basicConstraints=CA:FALSE\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    # a second CA that signed nothing here: trusting it must fail the handshake
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other-ca.pem",
             "-days", "2", "-subj", "/CN=unrelated CA", cwd=d)
    return d


class AclRedis(RedisServer):
    """The real redis-server + RediSearch with `--aclfile` (the `default` user is off, so set-up and
    inspection authenticate as the file's admin user)."""

    def __init__(self, aclfile: Path):
        super().__init__()
        self.aclfile = self.dir / "users.acl"
        shutil.copy(aclfile, self.aclfile)
        self.extra_args = ("--aclfile", str(self.aclfile))

    def pipeline(self, *commands) -> list:
        return super().pipeline(("AUTH", ADMIN_USER, ADMIN_PASSWORD), *commands)[1:]


class Stunnel:
    """stunnel4 in the foreground: one TLS-terminating service per (name, backend port)."""

    def __init__(self, pki: Path, backends: dict[str, int]):
        exe = shutil.which("stunnel4") or shutil.which("stunnel")
        if not exe:
            pytest.fail("stunnel4 missing: run `make install` (scripts/install.sh installs it)", pytrace=False)
        self.dir = Path(tempfile.mkdtemp(prefix="semcache-stunnel-"))
        self.ports = {name: free_port() for name in backends}
        lines = ["foreground = yes", "pid =", f"output = {self.dir / 'stunnel.log'}", "debug = notice",
                 "socket = l:TCP_NODELAY=1", "socket = r:TCP_NODELAY=1"]
        for name, port in backends.items():
            lines += [f"[{name}]", f"accept = 127.0.0.1:{self.ports[name]}", f"connect = 127.0.0.1:{port}",
                      f"cert = {pki / 'server.pem'}", f"key = {pki / 'server.key'}"]
        (self.dir / "stunnel.conf").write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen([exe, str(self.dir / "stunnel.conf")], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        for p in self.ports.values():
            wait_tcp(p, timeout=10)

    def log(self) -> str:
        try:
            return (self.dir / "stunnel.log").read_text(errors="replace")
        except OSError:
            return ""

    def close(self) -> None:
        terminate(self.proc, grace=5)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def acl_redis():
    r = AclRedis(ACL_FILE)
    r.start()
    yield r
    r.close()


@pytest.fixture(scope="module")
def embedder():
    """An OpenAI-compatible embedding stand-in with the static model's dimensions: the ACL allows one index
    (semcache_idx), which the `tls` site creates with those dimensions."""
    s = EmbeddingStandIn("openai", api_key="test-tls-embed-key",
                         dim=json.loads(LOCAL_POLICY.read_text())["embedding"]["dimensions"])
    yield s
    s.close()


@pytest.fixture(scope="module")
def tunnel(pki, acl_redis, llm, embedder):
    t = Stunnel(pki, {"redis": acl_redis.port, "llm": llm.port, "embed": embedder.port})
    yield t
    t.close()


# ------------------------------------------------------------------------------------------------
# Envoy: the shipped clusters pointed at stunnel
# ------------------------------------------------------------------------------------------------
def _point(cluster: dict, name: str, port: int, sni: str, ca: Path, san: str) -> dict:
    c = copy.deepcopy(cluster)
    c["name"] = name
    c["type"] = "STATIC"
    c.pop("dns_lookup_family", None)
    c["load_assignment"] = {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
        "socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}
    tls = c["transport_socket"]["typed_config"]
    assert c["transport_socket"]["name"] == "envoy.transport_sockets.tls"
    tls["sni"] = sni
    vc = tls["common_tls_context"]["validation_context"]
    vc["trusted_ca"] = {"filename": str(ca)}
    vc["match_typed_subject_alt_names"] = [{"san_type": "DNS", "matcher": {"exact": san}}]
    return c


def _policy(cluster: str, password: str) -> dict:
    p = json.loads(LOCAL_POLICY.read_text())  # the default build's static model and its threshold
    vs = compose_policy()["vectorStore"]
    p["vectorStore"].update({"cluster": cluster, "indexName": vs["indexName"], "keyPrefix": vs["keyPrefix"],
                             "username": vs["username"], "password": password})
    return p


@pytest.fixture(scope="module")
def envoy(tunnel, pki, acl_redis, embedder, wasm_file, tmp_path_factory):
    assert compose_policy()["vectorStore"]["username"] == FILTER_USER
    assert compose_policy()["vectorStore"]["password"] == FILTER_PASSWORD
    cloud = yaml.safe_load(CLOUD_CLUSTER.read_text())
    rp, lp = tunnel.ports["redis"], tunnel.ports["llm"]
    clusters = {
        "llm": _point(compose_cluster("llm"), "llm", lp, LLM_NAME, pki / "ca.pem", LLM_NAME),
        "redis": _point(cloud, "redis", rp, REDIS_NAME, pki / "ca.pem", REDIS_NAME),
        # the certificate is valid but for another name than this cluster expects
        "redis_badsan": _point(cloud, "redis_badsan", rp, REDIS_NAME, pki / "ca.pem", "redis.example.com"),
        # a CA that did not sign the server's certificate
        "redis_badca": _point(cloud, "redis_badca", rp, REDIS_NAME, pki / "other-ca.pem", REDIS_NAME),
    }
    # a remote embedding provider over TLS: the compose config's `embedding` cluster
    clusters["embedding"] = _point(compose_cluster("embedding"), "embedding", tunnel.ports["embed"], EMBED_NAME,
                                   pki / "ca.pem", EMBED_NAME)
    remote = harness.policy_for("tlsembed", embedder, threshold=0.2, cluster="embedding")
    remote["embedding"]["url"] = f"https://{EMBED_NAME}/v1/embeddings"
    remote["vectorStore"].update({"cluster": "redis", "indexName": "semcache_idx", "keyPrefix": "semcache:",
                                  "username": FILTER_USER, "password": FILTER_PASSWORD})
    sites = [Site("tls", _policy("redis", FILTER_PASSWORD)), Site("tlsembed", remote, vm_id="tlsembed"),
             Site("wrongpw", _policy("redis", "not-the-password")),
             Site("badsan", _policy("redis_badsan", FILTER_PASSWORD)),
             Site("badca", _policy("redis_badca", FILTER_PASSWORD))]
    e = EnvoyProcess(sites, clusters, wasm_file, workdir=tmp_path_factory.mktemp("envoy-tls"))
    e.start()
    yield e
    e.stop()


def _wait_keys(redis: AclRedis, prefix: str, n: int, timeout: float = 8.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(keys := redis.keys(prefix + "*")) < n:
        assert time.monotonic() < deadline, f"expected {n} keys under {prefix}, found {keys}"
        time.sleep(0.03)
    return keys


# ------------------------------------------------------------------------------------------------
# tests
# ------------------------------------------------------------------------------------------------
def test_miss_then_hits_over_tls_as_the_acl_user(envoy, llm, acl_redis, tunnel):
    prefix = compose_policy()["vectorStore"]["keyPrefix"]
    r = ask(envoy, "tls", "What is the capital of France?")
    assert_status(r, "MISS")
    assert r.json()["choices"][0]["message"]["content"] == "echo: What is the capital of France?"
    assert llm.calls == 1
    keys = _wait_keys(acl_redis, prefix, 1)
    assert acl_redis.command("HGET", keys[0], "model") == b"gpt-4o-mini"
    assert_status(ask(envoy, "tls", "What is the capital of France?"), "HIT", match="exact")
    r = ask(envoy, "tls", "Tell me the capital of France.")
    assert_status(r, "HIT", match="semantic")
    assert r.json()["choices"][0]["message"]["content"] == "echo: What is the capital of France?"
    assert llm.calls == 1, "hits must not reach the LLM"
    assert envoy.counter("redis_error") == 0
    # the pipelines went through stunnel (the cluster has no other way to Redis)
    assert re.search(r"Service \[redis\] accepted connection", tunnel.log()), tunnel.log()[-2000:]


def test_llm_miss_goes_over_tls(envoy, llm, tunnel):
    r = ask(envoy, "tls", "Name three moons of Jupiter")
    assert_status(r, "MISS")
    assert llm.calls == 1
    assert llm.last()["headers"]["authorization"] == "Bearer sk-tls-acl-test"
    assert re.search(r"Service \[llm\] accepted connection", tunnel.log()), tunnel.log()[-2000:]


def test_remote_embedding_over_tls(envoy, llm, embedder, tunnel, acl_redis):
    """The embedding callout goes through the compose `embedding` cluster (TLS, SNI, SAN) to the provider."""
    stored = envoy.counter("store_ok")
    r = ask(envoy, "tlsembed", "How do I reverse a linked list in C?")
    assert_status(r, "MISS")
    assert embedder.calls >= 1
    assert embedder.last()["headers"]["authorization"] == f"Bearer {embedder.api_key}"
    assert re.search(r"Service \[embed\] accepted connection", tunnel.log()), tunnel.log()[-2000:]
    harness.wait_counter(envoy, "store_ok", stored + 1)
    calls = embedder.calls
    r = ask(envoy, "tlsembed", "How can I reverse a linked list in C?")  # a paraphrase: needs the embedding
    assert_status(r, "HIT", match="semantic")
    assert embedder.calls == calls + 1 and llm.calls == 1


@pytest.mark.parametrize("site", ["wrongpw", "badsan", "badca"])
def test_bad_credentials_or_certificate_fail_open(envoy, llm, acl_redis, site):
    """A wrong password is refused by Redis; a certificate for another name, or one signed by a CA the
    cluster does not trust, is refused by Envoy. Either way the request reaches the LLM and is not cached."""
    for _ in range(2):
        r = ask(envoy, site, "What is the capital of Spain?")
        assert_status(r, "BYPASS", reason="redis-error")
        assert r.json()["choices"][0]["message"]["content"] == "echo: What is the capital of Spain?"
    assert llm.calls == 2
    if site == "wrongpw":  # Redis saw the filter's AUTH and refused it
        log = acl_redis.command("ACL", "LOG")
        assert any(b"auth" in e and FILTER_USER.encode() in e for e in log), log
    else:  # Envoy refused the certificate (cluster stats ssl.fail_verify_san / ssl.fail_verify_error)
        stat = {"badsan": "fail_verify_san", "badca": "fail_verify_error"}[site]
        assert envoy.stats(f"cluster.redis_{site}.ssl")[f"cluster.redis_{site}.ssl.{stat}"] >= 1


# -- the ACL user, as a client over the TLS port ------------------------------------------------
def _tls_session(pki: Path, port: int, *commands, auth=(FILTER_USER, FILTER_PASSWORD)) -> list:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=REDIS_NAME) as s:
        cmds = ([("AUTH", *auth)] if auth else []) + list(commands)
        s.sendall(b"".join(resp_encode(*c) for c in cmds))
        rd = _Reader(s)
        replies = [rd.read() for _ in cmds]
    if auth:
        assert replies[0] == "OK", replies[0]
        return replies[1:]
    return replies


def _noperm(reply) -> bool:
    return isinstance(reply, RedisError) and str(reply).startswith("NOPERM")


def test_acl_user_runs_the_filters_commands(envoy, tunnel, pki, acl_redis):
    vs = compose_policy()["vectorStore"]
    # the index the `tls` site created (its name carries that site's embedding fingerprint)
    idx = next(i for i in acl_redis.indexes() if i.startswith(vs["indexName"]))
    prefix = vs["keyPrefix"]
    info, hm, hs, ex, ping = _tls_session(
        pki, tunnel.ports["redis"], ("FT.INFO", idx), ("HMGET", prefix + "acl-probe", "body"),
        ("HSET", prefix + "acl-probe", "body", "x"), ("EXPIRE", prefix + "acl-probe", "5"), ("PING",))
    assert isinstance(info, list) and idx in info, info
    assert hm == [None] and hs == 1 and ex == 1 and ping == "PONG"


@pytest.mark.parametrize("command", [
    ("FLUSHALL",), ("FLUSHDB",), ("CONFIG", "GET", "*"), ("CONFIG", "SET", "appendonly", "no"), ("KEYS", "*"),
    ("SCAN", "0"), ("UNLINK", "semcache:acl-probe"), ("GET", "semcache:x"),
    ("HGETALL", "semcache:x"), ("DEL", "other:key"), ("HSET", "other:key", "f", "v"), ("HMGET", "other:key", "f"),
    ("EXPIRE", "other:key", "5"), ("EVAL", "return 1", "0"), ("FT.DROPINDEX", "semcache_idx"),
    ("FT._LIST",), ("FT.CREATE", "other_idx", "ON", "HASH", "PREFIX", "1", "other:", "SCHEMA", "t", "TAG"),
    ("ACL", "LIST"), ("MODULE", "LIST"), ("CLIENT", "LIST"), ("BGREWRITEAOF",), ("SHUTDOWN",), ("SELECT", "1"),
    ("REPLICAOF", "127.0.0.1", "1"), ("SUBSCRIBE", "x"),
], ids=lambda c: " ".join(c[:2]))
def test_acl_user_cannot_run_anything_else(tunnel, pki, acl_redis, command):
    acl_redis.command("SET", "other:key", "keep")
    (reply,) = _tls_session(pki, tunnel.ports["redis"], command)
    assert _noperm(reply), f"{command}: {reply!r}"
    assert acl_redis.command("GET", "other:key") == b"keep"
    assert any(i.startswith("semcache_idx") for i in acl_redis.indexes()) or not acl_redis.keys("semcache:*")


def test_default_user_is_off(tunnel, pki):
    (reply,) = _tls_session(pki, tunnel.ports["redis"], ("PING",), auth=None)
    assert isinstance(reply, RedisError) and str(reply).startswith("NOAUTH"), reply
    (reply,) = _tls_session(pki, tunnel.ports["redis"], ("AUTH", "default", "anything"), auth=None)
    assert isinstance(reply, RedisError) and str(reply).startswith("WRONGPASS"), reply


def _filter_commands() -> set[str]:
    """Every Redis command the filter's source builds (src/core/redis/*.rs, outside the unit tests)."""
    cmds: set[str] = set()
    for f in [*REDIS_SRC.glob("*.rs"), REDIS_SRC.parent / "purge.rs"]:
        text = f.read_text().split("#[cfg(test)]")[0]
        cmds |= set(re.findall(r'vec!\[arg\("([A-Z][A-Z.]+)"\)', text))
        cmds |= set(re.findall(r'^\s*"(FT\.[A-Z]+)",', text, re.M))
        # the first word of a command built from bytes (not arguments appended with extend)
        cmds |= set(re.findall(r'(?<!extend\()\[b"([A-Z][A-Z.]+)"\.to_vec\(\)', text))
    return cmds


def test_acl_grants_exactly_the_filters_commands():
    line = next(ln for ln in ACL_FILE.read_text().splitlines() if ln.startswith(f"user {FILTER_USER} "))
    granted = {t[1:].upper() for t in line.split() if t.startswith("+")}
    assert "-@all" in line.split() and not any(t.startswith("+@") for t in line.split()), line
    sent = _filter_commands()
    assert {"HMGET", "HSET", "EXPIRE", "FT.CREATE", "FT.INFO", "FT.SEARCH", "AUTH", "QUIT"} <= sent, sent
    # AUTH and QUIT need no grant; SELECT is sent only for database != 0 (not granted: see README)
    needed = sent - {"AUTH", "QUIT", "SELECT"}
    assert needed <= granted, f"the filter sends {sorted(needed - granted)} but {ACL_FILE.name} does not grant it"
    assert granted - needed <= {"PING"}, f"{ACL_FILE.name} grants more than the filter uses: {granted - needed}"
    vs = compose_policy()["vectorStore"]
    keys = {t[1:] for t in line.split() if t.startswith("~")}
    assert keys == {vs["keyPrefix"] + "*", vs["indexName"] + "*"}, keys
