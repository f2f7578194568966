"""The Kubernetes examples under deploy/ (Envoy Gateway, Istio, Redis) and the Wasm OCI image recipe.

What can be checked without a cluster:
* every manifest parses, and each kind is one of the APIs the README documents;
* Istio resources and the Kubernetes core ones validate against the published API models (PyPI
  `cloudcoil-models-istio`, `cloudcoil-models-kubernetes`, generated from the CRDs / OpenAPI), strictly:
  a field the model does not know is an error (the models would drop it silently, as the API server does);
* Envoy Gateway resources: the fields the filter depends on (no registry package ships EG's CRD schemas;
  they were checked once against the CRDs of envoyproxy/gateway, see README);
* the Envoy parts carried inside them (the Redis TCP-upstream clusters of the EnvoyPatchPolicy and the
  EnvoyFilter, the Istio Wasm extension config with its policy) pass `envoy --mode validate` in a config
  built from them, with the real .wasm;
* every embedded policy validates against policy-schema.json and logs in as the ACL user of
  deploy/redis/users.acl, whose copy in the Redis Secret is identical.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

import harness
from harness import ROOT
from test_config_files import envoy_validate

DEPLOY = ROOT / "deploy"
EG = DEPLOY / "envoy-gateway" / "semantic-cache.yaml"
ISTIO = DEPLOY / "istio" / "semantic-cache.yaml"
ISTIO_WASMPLUGIN = DEPLOY / "istio" / "wasmplugin.yaml"
REDIS_K8S = DEPLOY / "kubernetes" / "redis.yaml"
ACL_FILE = DEPLOY / "redis" / "users.acl"
DOCKERFILE = DEPLOY / "oci" / "Dockerfile"
MANIFESTS = [EG, ISTIO, ISTIO_WASMPLUGIN, REDIS_K8S]

KNOWN_KINDS = {
    ("gateway.networking.k8s.io/v1", "Gateway"), ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("gateway.envoyproxy.io/v1alpha1", "Backend"), ("gateway.envoyproxy.io/v1alpha1", "EnvoyExtensionPolicy"),
    ("gateway.envoyproxy.io/v1alpha1", "EnvoyPatchPolicy"),
    ("networking.istio.io/v1", "Gateway"), ("networking.istio.io/v1", "ServiceEntry"),
    ("networking.istio.io/v1", "DestinationRule"), ("networking.istio.io/v1", "VirtualService"),
    ("networking.istio.io/v1alpha3", "EnvoyFilter"), ("extensions.istio.io/v1alpha1", "WasmPlugin"),
    ("v1", "Namespace"), ("v1", "Secret"), ("v1", "Service"), ("apps/v1", "StatefulSet"),
}


def docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def one(path: Path, kind: str) -> dict:
    found = [d for d in docs(path) if d["kind"] == kind]
    assert len(found) == 1, f"{path.name}: expected one {kind}, found {len(found)}"
    return found[0]


def _model(api_version: str, kind: str):
    from cloudcoil.models.istio.extensions import v1alpha1 as ext
    from cloudcoil.models.istio.networking import v1 as net1
    from cloudcoil.models.istio.networking import v1alpha3 as net3
    from cloudcoil.models.kubernetes.apps import v1 as apps1
    from cloudcoil.models.kubernetes.core import v1 as core1
    group = {"networking.istio.io/v1": net1, "networking.istio.io/v1alpha3": net3,
             "extensions.istio.io/v1alpha1": ext, "v1": core1, "apps/v1": apps1}.get(api_version)
    return getattr(group, kind, None) if group else None


def _dropped(given, back, path="") -> list[str]:
    """Fields of `given` that did not survive validation + dump (unknown to the model), or changed."""
    out = []
    if isinstance(given, dict):
        for k, v in given.items():
            if not isinstance(back, dict) or k not in back:
                out.append(f"{path}/{k}")
            else:
                out += _dropped(v, back[k], f"{path}/{k}")
    elif isinstance(given, list):
        if not isinstance(back, list) or len(back) != len(given):
            return [f"{path} (list changed)"]
        for i, (a, b) in enumerate(zip(given, back)):
            out += _dropped(a, b, f"{path}/{i}")
    elif given != back and not (isinstance(given, (int, float)) and str(given) == str(back)):
        out.append(f"{path}: {given!r} -> {back!r}")
    return out


@pytest.fixture(scope="module")
def policy_validator():
    return jsonschema.Draft202012Validator(json.loads((ROOT / "policy-schema.json").read_text()))


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_manifests_parse_with_known_kinds(path):
    ds = docs(path)
    assert ds
    for d in ds:
        assert (d.get("apiVersion"), d.get("kind")) in KNOWN_KINDS, (path.name, d.get("apiVersion"), d.get("kind"))
        assert d["metadata"]["name"]
        if d["kind"] != "Namespace":
            assert d["metadata"]["namespace"], f"{path.name}: {d['kind']} without a namespace"


@pytest.mark.parametrize("path", [ISTIO, ISTIO_WASMPLUGIN, REDIS_K8S], ids=lambda p: str(p.relative_to(DEPLOY)))
def test_istio_and_core_resources_validate_against_the_api_models(path):
    for d in docs(path):
        model = _model(d["apiVersion"], d["kind"])
        assert model is not None, f"no model for {d['apiVersion']} {d['kind']}"
        m = model.model_validate(d)  # types, enums, required fields
        back = m.model_dump(by_alias=True, exclude_none=True, mode="json")
        lost = _dropped(d, back)
        assert not lost, f"{path.name} {d['kind']}: fields unknown to the API or changed: {lost}"


# -- the embedded policies ------------------------------------------------------------------------
def eg_policy() -> dict:
    return one(EG, "EnvoyExtensionPolicy")["spec"]["wasm"][0]["config"]


def istio_extension() -> dict:
    ef = one(ISTIO, "EnvoyFilter")
    return next(p for p in ef["spec"]["configPatches"] if p["applyTo"] == "EXTENSION_CONFIG")["patch"]["value"]


def istio_policy() -> dict:
    return json.loads(istio_extension()["typed_config"]["config"]["configuration"]["value"])


def wasmplugin_policy() -> dict:
    return one(ISTIO_WASMPLUGIN, "WasmPlugin")["spec"]["pluginConfig"]


@pytest.mark.parametrize("get", [eg_policy, istio_policy, wasmplugin_policy], ids=["eg", "istio", "wasmplugin"])
def test_embedded_policies_validate_and_use_the_acl_user(policy_validator, get):
    p = get()
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in policy_validator.iter_errors(p)]
    assert not errors, errors
    vs = p["vectorStore"]
    line = next(ln for ln in ACL_FILE.read_text().splitlines() if ln.startswith(f"user {vs['username']} "))
    assert "#" + hashlib.sha256(vs["password"].encode()).hexdigest() in line.split()
    assert f"~{vs['keyPrefix']}*" in line.split() and f"~{vs['indexName']}*" in line.split()
    # the default build (static table) is what the image ships: the policy must be its local.json
    local = json.loads((ROOT / "envoy" / "policies" / "local.json").read_text())
    assert p["embedding"] == local["embedding"] and p["threshold"] == local["threshold"]
    assert p == istio_policy() == wasmplugin_policy() == eg_policy(), "the examples must carry one policy"


def test_redis_secret_is_the_shipped_acl_file():
    secret = one(REDIS_K8S, "Secret")
    assert secret["stringData"]["users.acl"] == ACL_FILE.read_text()
    sts = one(REDIS_K8S, "StatefulSet")
    c = sts["spec"]["template"]["spec"]["containers"][0]
    assert c["image"].startswith("redis:8")
    assert c["args"][c["args"].index("--aclfile") + 1] == "/etc/redis/users.acl"
    assert c["args"][c["args"].index("--appendonly") + 1] == "yes"
    svc = one(REDIS_K8S, "Service")
    host = f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc.cluster.local"
    for cluster in (eg_redis_cluster(), istio_redis_cluster()):
        addr = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
        assert (addr["address"], addr["port_value"]) == (host, svc["spec"]["ports"][0]["port"])


# -- Envoy Gateway wiring -------------------------------------------------------------------------
def eg_redis_cluster() -> dict:
    epp = one(EG, "EnvoyPatchPolicy")
    return next(p for p in epp["spec"]["jsonPatches"]
                if p["type"] == "type.googleapis.com/envoy.config.cluster.v3.Cluster")["operation"]["value"]


def istio_redis_cluster() -> dict:
    ef = one(ISTIO, "EnvoyFilter")
    return next(p for p in ef["spec"]["configPatches"] if p["applyTo"] == "CLUSTER")["patch"]["value"]


def test_envoy_gateway_wiring():
    gw, route = one(EG, "Gateway"), one(EG, "HTTPRoute")
    eep, epp, backend = one(EG, "EnvoyExtensionPolicy"), one(EG, "EnvoyPatchPolicy"), one(EG, "Backend")
    ns = gw["metadata"]["namespace"]
    assert {d["metadata"]["namespace"] for d in docs(EG)} == {ns}, "policies attach within one namespace"
    assert eep["spec"]["targetRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                                          "name": route["metadata"]["name"]}]
    wasm = eep["spec"]["wasm"][0]
    assert wasm["rootID"] == "semantic_cache" and wasm["failOpen"] is True
    assert wasm["code"]["type"] == "Image" and wasm["code"]["image"]["url"]
    assert epp["spec"]["targetRef"]["name"] == gw["metadata"]["name"] and epp["spec"]["type"] == "JSONPatch"
    listener, cluster_patch = epp["spec"]["jsonPatches"]
    # Envoy Gateway's names: listener <ns>/<gateway>/<listener>, wasm filter
    # envoy.filters.http.wasm/envoyextensionpolicy/<ns>/<policy>/wasm/<index>
    assert listener["name"] == f"{ns}/{gw['metadata']['name']}/{gw['spec']['listeners'][0]['name']}"
    filter_name = f"envoy.filters.http.wasm/envoyextensionpolicy/{ns}/{eep['metadata']['name']}/wasm/0"
    assert filter_name in listener["operation"]["jsonPath"]
    assert listener["operation"]["path"] == "/typed_config/config/allow_on_headers_stop_iteration"
    assert listener["operation"]["value"] is True
    assert cluster_patch["name"] == cluster_patch["operation"]["value"]["name"] == eg_policy()["vectorStore"]["cluster"]
    assert cluster_patch["operation"]["path"] == "" and cluster_patch["operation"]["op"] == "add"
    assert route["spec"]["rules"][0]["backendRefs"][0]["name"] == backend["metadata"]["name"]
    assert backend["spec"]["tls"]["wellKnownCACertificates"] == "System"
    assert backend["spec"]["tls"]["sni"] == backend["spec"]["endpoints"][0]["fqdn"]["hostname"]


def test_istio_wiring():
    ef = one(ISTIO, "EnvoyFilter")
    ext = istio_extension()
    cfg = ext["typed_config"]["config"]
    assert cfg["allow_on_headers_stop_iteration"] is True and cfg["root_id"] == "semantic_cache"
    assert cfg["failure_policy"] == "FAIL_OPEN"
    uri = cfg["vm_config"]["code"]["remote"]["http_uri"]["uri"]
    assert uri.startswith("oci://")
    assert uri == one(ISTIO_WASMPLUGIN, "WasmPlugin")["spec"]["url"]
    assert uri.removeprefix("oci://") == one(EG, "EnvoyExtensionPolicy")["spec"]["wasm"][0]["code"]["image"]["url"]
    http = next(p for p in ef["spec"]["configPatches"] if p["applyTo"] == "HTTP_FILTER")
    assert http["patch"]["operation"] == "INSERT_BEFORE"
    assert http["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"] == "envoy.filters.http.router"
    assert http["patch"]["value"]["name"] == ext["name"], "the filter must reference the ECDS resource by name"
    assert istio_redis_cluster()["name"] == istio_policy()["vectorStore"]["cluster"]
    dr, se = one(ISTIO, "DestinationRule"), one(ISTIO, "ServiceEntry")
    tls = dr["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]
    assert tls["mode"] == "SIMPLE" and tls["sni"] == dr["spec"]["host"] == se["spec"]["hosts"][0]
    assert se["spec"]["ports"][0]["targetPort"] == 443


def test_envoy_parts_pass_envoy_validate(tmp_path, wasm_file):
    """The clusters and the Wasm extension as Envoy gets them (Istio's remote code replaced by the local
    build, as istio-agent does), in one static config, through `envoy --mode validate`."""
    ext = copy.deepcopy(istio_extension()["typed_config"])
    ext["config"]["vm_config"]["code"] = {"local": {"filename": str(wasm_file)}}
    eg_cluster = copy.deepcopy(eg_redis_cluster())
    eg_cluster["name"] = eg_cluster["load_assignment"]["cluster_name"] = "eg-redis"
    cfg = harness.build_envoy_config([harness.Site("x", policy={})], {}, harness.free_port(), wasm_file)
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["http_filters"] = [{"name": "semantic-cache", "typed_config": ext}, harness.ROUTER]
    cfg["static_resources"]["clusters"] = [istio_redis_cluster(), eg_cluster,
                                           harness.static_cluster("llm", 443)]
    out = tmp_path / "k8s-parts.yaml"
    out.write_text(yaml.safe_dump(cfg, sort_keys=False))
    r = envoy_validate(out)
    assert r.returncode == 0, f"envoy --mode validate failed:\n{r.stdout}\n{r.stderr}"


def test_wasm_image_recipe():
    lines = [ln.strip() for ln in DOCKERFILE.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines == ["FROM scratch", "COPY plugin.wasm ./"], "one layer holding plugin.wasm (EG and Istio layout)"
    mk = (ROOT / "Makefile").read_text()
    target = re.search(r"^wasm-image:.*?(?=^\S)", mk, re.M | re.S).group(0)
    assert "build/oci/plugin.wasm" in target and "-f deploy/oci/Dockerfile" in target
