"""The shipped configuration files are consistent and accepted by the real Envoy.

* docker-compose.yml parses and every host file it mounts exists (build outputs: the path
  `make build` / `make build-local` writes).
* envoy/envoy-compose.yaml passes `envoy --mode validate`. The compose file mounts it with
  /etc/envoy/... paths that do not exist here, so validation runs on a copy whose
  /etc/envoy/semantic_cache.wasm is rewritten to the local build output. (Validate mode loads the
  wasm, so it needs a real proxy-wasm module; it also opens the TLS trust store
  /etc/ssl/certs/ca-certificates.crt, which must exist -- it does on Debian with ca-certificates.)
* the local-stack template renders (scripts/render_envoy.py) and validates, with https and http
  upstreams.
* every policy (envoy/policies/*.json, the one inside envoy-compose.yaml, the test policies)
  validates against policy-schema.json (JSON Schema draft 2020-12).
"""
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

import harness
from harness import ROOT
from standins import EmbeddingStandIn

COMPOSE = ROOT / "docker-compose.yml"
ENVOY_COMPOSE = ROOT / "envoy" / "envoy-compose.yaml"
ENVOY_COMPOSE_SIDECAR = ROOT / "envoy" / "envoy-compose-sidecar.yaml"
LOCAL_WASM = ROOT / "build" / "semantic_cache_local.wasm"
# compose service -> (its Envoy config, the wasm it mounts)
COMPOSE_ENVOYS = {
    "envoy": (ENVOY_COMPOSE, LOCAL_WASM),
    "envoy-sidecar": (ENVOY_COMPOSE_SIDECAR, harness.DEFAULT_WASM),
}
TEMPLATE = ROOT / "envoy" / "envoy-local.yaml.tmpl"
SCHEMA = ROOT / "policy-schema.json"
POLICIES = sorted((ROOT / "envoy" / "policies").glob("*.json"))

# host paths that are build outputs rather than checked-in files -> the target that writes them
BUILD_OUTPUTS = {
    "target/wasm32-wasip1/release/semantic_cache.wasm": "make build",
    "build/semantic_cache_local.wasm": "make build-local",
    "build/embed_server": "make build-local",
}


def envoy_validate(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([harness.binary("ENVOY_BIN"), "--mode", "validate", "-c", str(config),
                           "--disable-hot-restart", "--log-level", "warn"],
                          capture_output=True, text=True, timeout=120)


def _mounts(compose: dict):
    for name, svc in compose["services"].items():
        for v in svc.get("volumes", []):
            src = v["source"] if isinstance(v, dict) else v.split(":")[0]
            if src.startswith(("./", "../", "/")):
                yield name, src


def test_compose_parses_and_mounts_exist():
    compose = yaml.safe_load(COMPOSE.read_text())
    assert {"envoy", "redis"} <= set(compose["services"])
    assert compose["services"]["redis"]["image"].startswith("redis:8")
    assert compose["services"]["envoy"]["image"].startswith("envoyproxy/envoy:v1.40")
    assert "embedder" in compose["services"] and compose["services"]["embedder"].get("profiles")
    assert compose["services"]["envoy-sidecar"].get("profiles") == compose["services"]["embedder"]["profiles"]
    mounts = list(_mounts(compose))
    assert mounts, "compose mounts nothing?"
    missing = []
    for svc, src in mounts:
        rel = os.path.normpath(src)
        if rel in BUILD_OUTPUTS:
            continue  # checked below / produced by a build target
        if not (ROOT / rel).exists():
            missing.append(f"{svc}: {src}")
    assert not missing, f"docker-compose.yml mounts files that do not exist: {missing}"
    wasm_mounts = {svc: os.path.normpath(src) for svc, src in mounts if src.endswith(".wasm")}
    assert wasm_mounts == {svc: str(w.relative_to(ROOT)) for svc, (_, w) in COMPOSE_ENVOYS.items()}, \
        "envoy mounts the `make build-local` output, envoy-sidecar the `make build` output"
    for svc, (cfg, _) in COMPOSE_ENVOYS.items():
        envoy_cmd = " ".join(compose["services"][svc].get("command", []))
        assert "/etc/envoy/envoy.yaml" in envoy_cmd
        assert any(os.path.normpath(src) == str(cfg.relative_to(ROOT)) for s2, src in mounts if s2 == svc)


def test_compose_wasm_is_make_build_output():
    # `make test` builds before running pytest, so the mounted build outputs must exist now
    for _, p in COMPOSE_ENVOYS.values():
        assert p.exists() and p.stat().st_size > 0, f"{p} missing: run `make build` / `make build-local`"


@pytest.mark.parametrize("service", sorted(COMPOSE_ENVOYS))
def test_envoy_compose_yaml_validates(tmp_path, service):
    cfg_path, wasm_file = COMPOSE_ENVOYS[service]
    text = cfg_path.read_text()
    assert "/etc/envoy/semantic_cache.wasm" in text
    # Redis closes the connection after QUIT: a pooled connection must not carry a second pipeline.
    assert "max_requests_per_connection: 1" in text
    local = text.replace("/etc/envoy/semantic_cache.wasm", str(wasm_file))
    cfg = tmp_path / "envoy-compose.local.yaml"
    cfg.write_text(local)
    r = envoy_validate(cfg)
    assert r.returncode == 0, f"envoy --mode validate failed:\n{r.stdout}\n{r.stderr}"
    assert "OK" in r.stdout + r.stderr


@pytest.mark.parametrize("llm_url", ["https://api.openai.com", "http://127.0.0.1:8000"])
def test_local_template_renders_and_validates(tmp_path, wasm_file, llm_url):
    out = tmp_path / "envoy.yaml"
    env = dict(os.environ, LLM_BASE_URL=llm_url, WASM=str(wasm_file), LISTEN_PORT="10000",
               EMBED_URL="http://127.0.0.1:8080/v1/embeddings", EMBED_API_KEY="k", EMBED_DIMENSIONS="384")
    r = subprocess.run([sys.executable, str(ROOT / "scripts/render_envoy.py"), "--template", str(TEMPLATE),
                        "--out", str(out)], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    cfg = yaml.safe_load(out.read_text())
    clusters = {c["name"]: c for c in cfg["static_resources"]["clusters"]}
    assert {"llm", "embedding", "redis"} <= set(clusters)
    ts = clusters["llm"]["transport_socket"]["name"]
    assert ts == ("envoy.transport_sockets.tls" if llm_url.startswith("https") else "envoy.transport_sockets.raw_buffer")
    if llm_url.startswith("https"):
        assert clusters["llm"]["transport_socket"]["typed_config"]["sni"] == "api.openai.com"
    assert clusters["redis"]["upstream_config"]["name"] == "envoy.upstreams.http.tcp"
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    wasm_cfg = hcm["http_filters"][0]["typed_config"]["config"]
    assert wasm_cfg["root_id"] == "semantic_cache" and wasm_cfg["vm_config"]["runtime"] == "envoy.wasm.runtime.v8"
    assert wasm_cfg.get("allow_on_headers_stop_iteration") is True
    policy = json.loads(wasm_cfg["configuration"]["value"])
    assert policy["embedding"]["apiKey"] == "k" and policy["embedding"]["dimensions"] == 384
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(policy)
    r = envoy_validate(out)
    assert r.returncode == 0, f"envoy --mode validate failed:\n{r.stdout}\n{r.stderr}"


@pytest.fixture(scope="module")
def validator():
    assert SCHEMA.exists(), "policy-schema.json is missing at the repository root"
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema.get("$schema", "").startswith("https://json-schema.org/draft/2020-12/")
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def test_policy_examples_exist():
    names = {p.stem for p in POLICIES}
    assert {"local", "openai-compatible", "azure-openai", "mistral"} <= names, names


@pytest.mark.parametrize("policy_file", POLICIES, ids=[p.name for p in POLICIES])
def test_example_policy_validates(validator, policy_file):
    policy = json.loads(policy_file.read_text())
    errors = sorted(validator.iter_errors(policy), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)
    # <provider>.json, or <provider>-<variant>.json (local-minilm.json: the transformer build's dimensions)
    provider = policy["embedding"]["provider"]
    assert policy_file.stem == provider or policy_file.stem.startswith(provider + "-"), policy_file.name


@pytest.mark.parametrize("service", sorted(COMPOSE_ENVOYS))
def test_compose_policy_validates(validator, service):
    cfg = yaml.safe_load(COMPOSE_ENVOYS[service][0].read_text())
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    wasm = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.wasm")
    policy = json.loads(wasm["typed_config"]["config"]["configuration"]["value"])
    validator.validate(policy)
    # without it Envoy turns the filter's pause on request headers into StopAll: the body never
    # reaches the filter and every cacheable request hangs
    assert wasm["typed_config"]["config"].get("allow_on_headers_stop_iteration") is True
    # the compose embedding URL points at the embedder service, redis at the redis service
    clusters = {c["name"]: c for c in cfg["static_resources"]["clusters"]}
    ep = clusters["redis"]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert ep["address"] == "redis"
    if service == "envoy":
        assert policy["embedding"]["provider"] == "local"
    else:
        assert re.match(r"^http://embedder:\d+/", policy["embedding"]["url"])


def test_e2e_test_policies_validate(validator):
    """The policies the e2e suite hands the filter are valid (so a failure there is the filter's)."""
    for flavor in ("openai", "azure", "mistral"):
        s = EmbeddingStandIn(flavor)
        try:
            validator.validate(harness.policy_for("x", s))
            validator.validate(harness.policy_for("x", s, ttl=2, timeout_ms=300, threshold=0.2))
        finally:
            s.close()


def test_ci_run_script():
    ci = ROOT / ".ci" / "run"
    text = ci.read_text()
    assert os.access(ci, os.X_OK)
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text and "make test" in text


# ------------------------------------------------------------------------------------------------
# production wiring (issue 11): Redis ACL + AOF in compose, TLS upstreams, the Redis Cloud cluster
# ------------------------------------------------------------------------------------------------
ACL_FILE = ROOT / "deploy" / "redis" / "users.acl"
CLOUD_CLUSTER = ROOT / "deploy" / "redis" / "redis-cloud-cluster.yaml"


def test_compose_redis_has_acl_and_persistence():
    compose = yaml.safe_load(COMPOSE.read_text())
    redis = compose["services"]["redis"]
    cmd = redis["command"]
    assert cmd[cmd.index("--aclfile") + 1] == "/etc/redis/users.acl"
    assert cmd[cmd.index("--appendonly") + 1] == "yes"
    assert any(v.startswith("./deploy/redis/users.acl:/etc/redis/users.acl") for v in redis["volumes"])
    assert any(v.split(":")[1] == "/data" for v in redis["volumes"]), "AOF must live in a volume"
    assert "redis-data" in compose.get("volumes", {})
    assert all(p.startswith("127.0.0.1:") for p in redis.get("ports", [])), "Redis is not published to the world"
    # the healthcheck logs in as the filter's user, so a broken ACL file keeps Envoy from starting
    assert "semcache" in redis["healthcheck"]["test"]
    for svc in ("envoy", "envoy-sidecar"):
        assert compose["services"][svc]["depends_on"]["redis"]["condition"] == "service_healthy"
    acl = ACL_FILE.read_text().splitlines()
    assert acl[0].startswith("user default off"), "the passwordless default user must be off"
    assert not any(">" in tok for line in acl for tok in line.split()), "passwords only as #<sha256>"


@pytest.mark.parametrize("service", sorted(COMPOSE_ENVOYS))
def test_compose_policy_logs_in_as_the_acl_user(service):
    cfg = yaml.safe_load(COMPOSE_ENVOYS[service][0].read_text())
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    wasm = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.wasm")
    vs = json.loads(wasm["typed_config"]["config"]["configuration"]["value"])["vectorStore"]
    line = next(ln for ln in ACL_FILE.read_text().splitlines() if ln.startswith(f"user {vs['username']} "))
    assert "#" + hashlib.sha256(vs["password"].encode()).hexdigest() in line.split()
    assert f"~{vs['keyPrefix']}*" in line.split() and f"~{vs['indexName']}*" in line.split()


def _tls_checked(cluster: dict, host: str) -> None:
    ts = cluster["transport_socket"]
    assert ts["name"] == "envoy.transport_sockets.tls"
    tls = ts["typed_config"]
    assert tls["sni"] == host
    vc = tls["common_tls_context"]["validation_context"]
    assert vc["trusted_ca"]["filename"]
    assert {"san_type": "DNS", "matcher": {"exact": host}} in vc["match_typed_subject_alt_names"]


@pytest.mark.parametrize("service,names", [("envoy", ("llm", "embedding")), ("envoy-sidecar", ("llm",))])
def test_compose_llm_and_embedding_clusters_use_tls(service, names):
    """(the sidecar Envoy's `embedding` cluster is the compose-internal embedder: plain HTTP)"""
    cfg = yaml.safe_load(COMPOSE_ENVOYS[service][0].read_text())
    clusters = {c["name"]: c for c in cfg["static_resources"]["clusters"]}
    for name in names:
        host = clusters[name]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
            "socket_address"]["address"]
        _tls_checked(clusters[name], host)


def test_redis_cloud_cluster_validates_in_the_compose_config(tmp_path):
    """deploy/redis/redis-cloud-cluster.yaml replaces the compose config's `redis` cluster, as the
    README says, and the result passes `envoy --mode validate` (the CA file is this machine's bundle)."""
    cloud = yaml.safe_load(CLOUD_CLUSTER.read_text())
    assert cloud["name"] == "redis"
    assert cloud["upstream_config"]["name"] == "envoy.upstreams.http.tcp"
    opts = cloud["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert opts["common_http_protocol_options"]["max_requests_per_connection"] == 1
    host = cloud["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"][
        "address"]
    _tls_checked(cloud, host)
    cfg = yaml.safe_load(ENVOY_COMPOSE.read_text())
    cfg["static_resources"]["clusters"] = [cloud if c["name"] == "redis" else c
                                           for c in cfg["static_resources"]["clusters"]]
    text = yaml.safe_dump(cfg, sort_keys=False)
    text = text.replace("/etc/envoy/semantic_cache.wasm", str(LOCAL_WASM))
    text = text.replace("/etc/envoy/redis_ca.pem", "/etc/ssl/certs/ca-certificates.crt")
    out = tmp_path / "envoy-redis-cloud.yaml"
    out.write_text(text)
    r = envoy_validate(out)
    assert r.returncode == 0, f"envoy --mode validate failed:\n{r.stdout}\n{r.stderr}"
