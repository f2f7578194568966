"""Hot reload (issue 11, item 6): Envoy reads its listener (with the filter and its policy) from a
file (LDS, `path_config_source`); the test rewrites the file atomically and Envoy applies it without
a restart. A policy change takes effect and keeps the index and its entries; another embedding
model or `dimensions` uses a new index and key prefix and never serves what the old model embedded.
Real Envoy + real .wasm + real Redis; stand-in embedders with 64 and 32 dimensions.
"""
from __future__ import annotations

import copy
import os
import time
from functools import partial

import pytest
import yaml

import harness
from harness import EnvoyProcess, Site, assert_status, policy_for, static_cluster, store_names
from standins import EmbeddingStandIn, cosine_distance

CLIENT_AUTH = "Bearer sk-client-reload"
ask = partial(harness.ask, auth=CLIENT_AUTH)

LOOSE = 0.5
QUERY = "Convert 100 USD to EUR"
PARAPHRASE = "Please convert 100 USD into EUR"


class LdsEnvoy:
    """An Envoy whose only listener comes from `lds/listeners.yaml` (watched directory)."""

    def __init__(self, workdir, clusters, wasm, policy):
        self.wasm, self.clusters = wasm, clusters
        self.site = Site("reload", policy)
        self.proc = EnvoyProcess([self.site], clusters, wasm, workdir=workdir)
        self.lds_dir = workdir / "lds"
        self.lds_dir.mkdir()
        self.lds = self.lds_dir / "listeners.yaml"
        listeners = self.proc.config["static_resources"].pop("listeners")
        self._write(listeners)
        self.proc.config["node"] = {"id": "reload-test", "cluster": "reload-test"}
        self.proc.config["dynamic_resources"] = {"lds_config": {
            "path_config_source": {"path": str(self.lds), "watched_directory": {"path": str(self.lds_dir)}},
            "resource_api_version": "V3"}}
        self.proc.config_path.write_text(yaml.safe_dump(self.proc.config, sort_keys=False))
        self.proc.start()

    def _write(self, listeners):
        resources = [{"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", **l} for l in listeners]
        tmp = self.lds_dir / ".listeners.yaml.tmp"
        tmp.write_text(yaml.safe_dump({"resources": resources}, sort_keys=False))
        os.rename(tmp, self.lds)  # atomic: Envoy sees a moved-in file, never a half-written one

    def listener_stat(self, name: str) -> int:
        return self.proc.stats(filter_=f"listener_manager.{name}").get(f"listener_manager.{name}", 0)

    def reload(self, policy, timeout: float = 30.0):
        """Writes the listener with `policy` and waits until Envoy has applied it (warmed)."""
        modified = self.listener_stat("listener_modified")
        self.site.policy = policy
        listeners = harness.build_envoy_config([self.site], self.clusters, self.proc.admin_port, self.wasm)
        self._write(listeners["static_resources"]["listeners"])
        deadline = time.monotonic() + timeout
        while not (self.listener_stat("listener_modified") > modified
                   and self.listener_stat("total_listeners_warming") == 0):
            assert time.monotonic() < deadline, f"listener not updated; log:\n{self.proc.log_tail(30)}"
            time.sleep(0.05)
        assert self.proc.alive()


@pytest.fixture(scope="module")
def embed32():
    s = EmbeddingStandIn("openai", api_key="test-embed-32-key", dim=32)
    yield s
    s.close()


@pytest.fixture(scope="module")
def envoy(tmp_path_factory, wasm_file, redis_server, llm, embed_openai, embed32):
    redis_server.delete_all_keys()
    clusters = {
        "llm": static_cluster("llm", llm.port, connect_timeout="2s"),
        "embedding": static_cluster("embedding", embed_openai.port),
        "embedding32": static_cluster("embedding32", embed32.port),
        "redis": static_cluster("redis", redis_server.port, tcp=True),
    }
    e = LdsEnvoy(tmp_path_factory.mktemp("envoy-reload"), clusters, wasm_file,
                 policy_for("reload", embed_openai, threshold=LOOSE))
    yield e
    e.proc.stop()


def site_indexes(redis_server) -> set[str]:
    return {i for i in redis_server.indexes() if i.startswith("sc_reload_idx_")}


def wait_keys(redis_server, prefix: str, n: int, timeout: float = 8.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(keys := redis_server.keys(f"{prefix}*")) < n:
        assert time.monotonic() < deadline, f"{n} entries under {prefix} expected: {keys}"
        time.sleep(0.03)
    return keys


def test_policy_change_applies_without_restart_and_keeps_the_index(envoy, redis_server, llm):
    assert 0.05 < cosine_distance(QUERY, PARAPHRASE) < LOOSE
    p1 = envoy.site.policy
    index1, prefix1 = store_names(p1)
    pid = envoy.proc.proc.pid
    assert_status(ask(envoy.proc, "reload", QUERY), "MISS")
    (key,) = wait_keys(redis_server, prefix1, 1)
    assert_status(ask(envoy.proc, "reload", QUERY, headers={"x-new-skip": "1"}), "HIT", match="exact")

    p2 = copy.deepcopy(p1)
    p2["skipHeader"] = "x-new-skip"
    p2["ttlSeconds"] = 120
    envoy.reload(p2)
    assert envoy.proc.proc.pid == pid, "no restart"
    assert_status(ask(envoy.proc, "reload", QUERY, headers={"x-new-skip": "1"}), "BYPASS", "skip-header")
    calls = llm.calls
    assert_status(ask(envoy.proc, "reload", QUERY), "HIT", match="exact")
    assert_status(ask(envoy.proc, "reload", PARAPHRASE), "HIT", match="semantic")
    assert llm.calls == calls, "the entries stored before the reload answer"
    assert store_names(p2) == (index1, prefix1)
    assert site_indexes(redis_server) == {index1}
    assert redis_server.keys(f"{prefix1}*") == [key]
    # the new TTL applies to what is stored from now on
    assert_status(ask(envoy.proc, "reload", "How far away is the moon?"), "MISS")
    new = [k for k in wait_keys(redis_server, prefix1, 2) if k != key]
    assert 0 < redis_server.command("TTL", new[0]) <= 120


def test_other_embedding_model_uses_a_new_index_and_never_serves_old_entries(envoy, redis_server, llm):
    p2 = envoy.site.policy
    index2, prefix2 = store_names(p2)
    old_keys = set(redis_server.keys(f"{prefix2}*"))
    p3 = copy.deepcopy(p2)
    p3["embedding"]["model"] = "standin-embed-v2"
    index3, prefix3 = store_names(p3)
    assert (index3, prefix3) != (index2, prefix2) and not prefix3.startswith(prefix2)
    envoy.reload(p3)
    calls = llm.calls
    # Before the change this paraphrase was a semantic hit on the old model's entry: now it is not.
    assert_status(ask(envoy.proc, "reload", PARAPHRASE), "MISS")
    assert llm.calls == calls + 1, "nothing embedded by the old model is served"
    wait_keys(redis_server, prefix3, 1)
    assert site_indexes(redis_server) == {index2, index3}
    assert set(redis_server.keys(f"{prefix2}*")) == old_keys, "the old entries are left alone (they expire)"
    assert_status(ask(envoy.proc, "reload", PARAPHRASE), "HIT", match="exact")
    assert_status(ask(envoy.proc, "reload", QUERY), "HIT", match="semantic")  # the new model's entry


def test_other_dimensions_use_a_new_index(envoy, redis_server, embed32, llm):
    p3 = envoy.site.policy
    p4 = copy.deepcopy(p3)
    p4["embedding"].update(cluster="embedding32", url=embed32.url(), apiKey=embed32.api_key, dimensions=32)
    index4, prefix4 = store_names(p4)
    envoy.reload(p4)
    calls = llm.calls
    r = ask(envoy.proc, "reload", QUERY)
    assert_status(r, "MISS")  # not `dimension-mismatch`: the 32-dim vectors get their own index
    (key,) = wait_keys(redis_server, prefix4, 1)
    assert len(redis_server.command("HGET", key, "vec")) == 32 * 4
    deadline = time.monotonic() + 5
    while index4 not in redis_server.indexes():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert "'dim', 32" in repr(redis_server.command("FT.INFO", index4)).replace("b'dim'", "'dim'")
    assert_status(ask(envoy.proc, "reload", PARAPHRASE), "HIT", match="semantic")
    assert llm.calls == calls + 1
    assert len(site_indexes(redis_server)) == 3
    assert "panic" not in envoy.proc.log_since(0).lower()
