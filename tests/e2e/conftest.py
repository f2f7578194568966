"""Fixtures for the end-to-end suite: real Envoy + real Redis (RediSearch) + real .wasm, with
in-process stand-ins for the LLM and the embedding providers (see standins.py, harness.py).

Scopes: Redis and the stand-ins live for the whole session; an Envoy is started once per test module
(``envoy_launcher`` fixture); stand-ins' counters and fault switches are reset before every test.
When a test fails, the Envoy log lines written during that test (and the tail of the Redis log) are
attached to the failure report.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import harness
from harness import EnvoyProcess, RedisServer, Site, static_cluster
from standins import EmbeddingStandIn, LlmStandIn

_RUNNING_ENVOYS: list[EnvoyProcess] = []
_STANDINS: list = []
_REDIS: list[RedisServer] = []

DEFAULT_TEST_TIMEOUT = int(os.environ.get("SEMCACHE_TEST_TIMEOUT", "120"))


def pytest_collection_modifyitems(config, items):
    # every e2e test gets a hard timeout (pytest-timeout) unless it sets its own
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TEST_TIMEOUT))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item._envoy_log_offsets = {id(e): e.log_size() for e in _RUNNING_ENVOYS}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and os.environ.get("SEMCACHE_REQUIRE_ALL") == "1":
        # `make test` builds every artifact first: a skip there means a missing build step.
        rep.outcome = "failed"
        rep.longrepr = f"skipped although SEMCACHE_REQUIRE_ALL=1: {rep.longrepr}"
    if rep.failed:
        offsets = getattr(item, "_envoy_log_offsets", {})
        for e in _RUNNING_ENVOYS:
            text = e.log_since(offsets.get(id(e), 0))
            lines = text.splitlines()
            if len(lines) > 200:
                lines = ["... (%d earlier lines in %s)" % (len(lines) - 200, e.log)] + lines[-200:]
            rep.sections.append((f"envoy log during {rep.when} ({e.log})", "\n".join(lines)))
        for r in _REDIS:
            rep.sections.append((f"redis log tail ({r.log})", r.log_text()[-2000:]))


# ---------------------------------------------------------------------------------------------
# session-wide servers
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def redis_server():
    r = RedisServer()
    r.start()
    _REDIS.append(r)
    yield r
    _REDIS.remove(r)
    r.close()


@pytest.fixture(scope="session")
def llm():
    s = LlmStandIn()
    _STANDINS.append(s)
    yield s
    s.close()


def _embed(flavor, key):
    s = EmbeddingStandIn(flavor, api_key=key)
    _STANDINS.append(s)
    return s


@pytest.fixture(scope="session")
def embed_openai():
    s = _embed("openai", "test-openai-embed-key")
    yield s
    s.close()


@pytest.fixture(scope="session")
def embed_azure():
    s = _embed("azure", "test-azure-embed-key")
    yield s
    s.close()


@pytest.fixture(scope="session")
def embed_mistral():
    s = _embed("mistral", "test-mistral-embed-key")
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _reset_standins():
    for s in _STANDINS:
        s.reset()
    yield


@pytest.fixture
def clean_keys(redis_server):
    """Every test of a module that uses this starts with no cache entries (index definitions stay;
    FLUSHALL at module start and the Redis restart tests cover the "index missing" path)."""
    if redis_server.running:
        redis_server.delete_all_keys()
    yield


@pytest.fixture(scope="session")
def wasm_file() -> Path:
    p = harness.wasm_path()
    if not p.exists():
        pytest.fail(f"filter not built: {p} is missing (run `make build`, or set SEMCACHE_WASM)", pytrace=False)
    return p


# ---------------------------------------------------------------------------------------------
# Envoy, once per module
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def envoy_launcher(request, tmp_path_factory):
    """``launch(sites, clusters=None, wasm=<real wasm>|None)`` -> started ``EnvoyProcess``.

    Default clusters: ``llm`` -> LLM stand-in, ``embedding`` -> OpenAI-compatible embedding
    stand-in, ``embedding_azure`` / ``embedding_mistral`` -> their stand-ins, ``redis`` -> test
    redis through ``envoy.upstreams.http.tcp``. ``clusters`` adds or replaces entries
    (name -> cluster dict, see ``harness.static_cluster``). Everything launched is stopped when
    the module ends."""
    started: list[EnvoyProcess] = []

    def launch(sites: list[Site], clusters: dict | None = None, wasm="default", **kw) -> EnvoyProcess:
        redis_server = request.getfixturevalue("redis_server")
        llm = request.getfixturevalue("llm")
        eo = request.getfixturevalue("embed_openai")
        ea = request.getfixturevalue("embed_azure")
        em = request.getfixturevalue("embed_mistral")
        if wasm == "default":
            wasm = request.getfixturevalue("wasm_file")
        all_clusters = {
            "llm": static_cluster("llm", llm.port, connect_timeout="2s"),
            "embedding": static_cluster("embedding", eo.port),
            "embedding_azure": static_cluster("embedding_azure", ea.port),
            "embedding_mistral": static_cluster("embedding_mistral", em.port),
            "redis": static_cluster("redis", redis_server.port, tcp=True),
        }
        all_clusters.update(clusters or {})
        workdir = tmp_path_factory.mktemp(f"envoy-{request.module.__name__.split('.')[-1]}")
        e = EnvoyProcess(sites, all_clusters, wasm, workdir=workdir, **kw)
        e.start()
        started.append(e)
        _RUNNING_ENVOYS.append(e)
        return e

    yield launch
    for e in started:
        e.stop()
        if e in _RUNNING_ENVOYS:
            _RUNNING_ENVOYS.remove(e)
