# Semantic cache (proxy-wasm Envoy filter). `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ROOT        := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
VENV        := $(ROOT)/.local/venv
PYTEST      := $(VENV)/bin/pytest
WASM_OUT    := target/wasm32-wasip1/release/semantic_cache.wasm
LOCAL_WASM  := build/semantic_cache_local.wasm

# Local stack (`make up`): the default filter (static embedding table compiled in) and the `local` policy.
# Transformer in the filter instead: make up WASM=$(ROOT)/$(LOCAL_WASM) POLICY=$(ROOT)/envoy/policies/local-minilm.json
# Remote provider instead: make up POLICY=envoy/policies/openai-compatible.json EMBED_...
WASM          ?= $(ROOT)/$(WASM_OUT)
POLICY        ?= $(ROOT)/envoy/policies/local.json
LLM_BASE_URL  ?= https://api.openai.com
REDIS_PORT    ?= 6379
LISTEN_PORT   ?= 10000
ADMIN_PORT    ?= 9901
# EMBED_PROVIDER / EMBED_URL / EMBED_API_KEY / EMBED_MODEL / EMBED_DIMENSIONS override the policy when set.
export WASM POLICY LLM_BASE_URL REDIS_PORT LISTEN_PORT ADMIN_PORT EMBEDDER EMBED_PORT
export EMBED_PROVIDER EMBED_URL EMBED_API_KEY EMBED_MODEL EMBED_DIMENSIONS

PYTEST_ARGS ?=

.PHONY: help install build build-static build-local lint test test-rust test-e2e up down status demo wasm-image bench bench-load bench-scale bench-cache bench-embed bench-quality eval clean distclean soak fuzz fuzz-short

help:
	@echo "make install      idempotent install into .local/ (venv, envoy, redis-server, redisearch.so)"
	@echo "make build        $(WASM_OUT) (with the static embedding table of scripts/build-static.sh)"
	@echo "make build-local  $(LOCAL_WASM) + build/embed_server (scripts/build-local.sh)"
	@echo "make lint         cargo fmt --check, clippy -D warnings (native, all features; wasm32-wasip1)"
	@echo "make test         install, build, lint, cargo test --all-features, pytest tests (real Envoy + Redis + wasm)"
	@echo "make up / down    local stack: redis :$(REDIS_PORT), envoy :$(LISTEN_PORT) (admin :$(ADMIN_PORT)); state in .local/run/"
	@echo "make demo         one-minute demo: private stack + LLM stand-in (300-900 ms), scripted prompts, table, totals"
	@echo "make wasm-image   the filter as a Wasm OCI image (deploy/oci/Dockerfile): IMAGE=registry/name:tag [WASM=...]"
	@echo "make bench        the cache under load (wrk) vs plain Envoy: bench/results.{json,md,png} (bench/load, ~6 min)"
	@echo "make soak         3 x 60 s of mixed load (wrk, 64 connections): no non-upstream error, stores accounted,"
	@echo "                  Envoy/Redis RSS flat across runs (bench/soak/results.{json,md}; SOAK_ARGS=...)"
	@echo "make bench-scale  Redis KNN at 10k/100k(/1M) entries, HNSW vs FLAT (bench/scale; SCALE_ARGS=...)"
	@echo "make bench-cache / bench-embed  sequential latency (bench/cache) and in-filter model (bench/embed)"
	@echo "make bench-quality  hit / false-hit rates of the local model candidates (bench/quality, ~3 min)"
	@echo "make eval         hit / false-hit rates of the cache decision (threshold, exact tier, verifier) per category"
	@echo "                  on fow-cache + bench/quality/data/pairs_own.jsonl; tables + PNG (bench/quality/eval_*)"
	@echo "make fuzz         every cargo-fuzz target of fuzz/ for FUZZ_SECONDS (50) each, ~10 min: table + fuzz/results.md"
	@echo "make fuzz-short   the same for 15 s per target (CI); FUZZ_TARGETS=\"resp flow\" picks targets"
	@echo "make clean        cargo clean, build/, .local/run/ (distclean also removes .local/)"

install:
	@scripts/install.sh

build: build-static
	rustup target add wasm32-wasip1 >/dev/null 2>&1 || true
	cargo build --release --target wasm32-wasip1
	@ls -l $(WASM_OUT)

build-static:
	scripts/build-static.sh

build-local:
	scripts/build-local.sh

# Native builds with all features share target/local with scripts/build-local.sh (tract is big).
LOCAL_TARGET := $(ROOT)/target/local

test: install build build-local lint test-rust fuzz-short test-e2e

lint:
	rustup component add rustfmt clippy >/dev/null 2>&1 || true
	rustup target add wasm32-wasip1 >/dev/null 2>&1 || true
	cargo fmt --check
	CARGO_TARGET_DIR=$(LOCAL_TARGET) cargo clippy --all-targets --all-features -- -D warnings
	cargo clippy --release --target wasm32-wasip1 -- -D warnings

test-rust:
	CARGO_TARGET_DIR=$(LOCAL_TARGET) cargo test --all-features

test-e2e:
	SEMCACHE_REQUIRE_ALL=1 $(PYTEST) tests -q -rfE --tb=short $(PYTEST_ARGS)

up: install build $(if $(filter sidecar,$(EMBEDDER)),build-local) $(if $(findstring $(LOCAL_WASM),$(WASM)),build-local)
	scripts/stack.sh up

down:
	scripts/stack.sh down

status:
	scripts/stack.sh status

# Own Redis/Envoy/LLM stand-in on free ports (does not touch `make up`'s); DEMO_LLM_LATENCY_MS=300-900.
demo: install build
	$(VENV)/bin/python scripts/demo.py $(DEMO_ARGS)

# Envoy Gateway / Istio pull the filter as an OCI image (deploy/envoy-gateway, deploy/istio).
IMAGE ?= semantic-cache-wasm:dev
wasm-image: build
	mkdir -p build/oci
	cp $(WASM) build/oci/plugin.wasm
	docker build -f deploy/oci/Dockerfile -t $(IMAGE) build/oci

# Benchmarks print ratios measured side by side in one run (never asserted in tests).
bench: install build build-local bench-load

# BENCH_LOAD_ARGS e.g. --duration 4 --concurrency 1,16 --wasm build/other.wasm (see bench/load/README.md)
bench-load:
	$(VENV)/bin/python bench/load/bench.py $(BENCH_LOAD_ARGS)

# Not part of make test: fills Redis with up to 1M vectors (see bench/scale/README.md).
bench-scale: install build
	$(VENV)/bin/python bench/scale/scale.py $(SCALE_ARGS)

bench-cache:
	$(VENV)/bin/python bench/cache/bench.py $(BENCH_ARGS)

bench-embed:
	bench/embed/bench.sh $(BENCH_EMBED_ARGS)

bench-quality:
	$(VENV)/bin/python bench/quality/eval.py

# Answer quality of the whole decision with the filter's own code (build/calibrate dump); not part of `make test`
# (its smoke run is: tests/e2e/test_eval_smoke.py). EVAL_ARGS e.g. --embedders openai --embed-args '--url ... --model ... --api-key-env VAR'.
eval: install build-static build-local
	$(VENV)/bin/python bench/quality/eval_cache.py $(EVAL_ARGS)

clean:
	-scripts/stack.sh down 2>/dev/null
	cargo clean
	rm -rf build .local/run .pytest_cache

distclean: clean
	rm -rf .local

# Sustained load, checked for correctness (not in `make test`; test_soak_smoke.py runs 10 s of it there).
SOAK_ARGS ?=
soak: install build
	$(VENV)/bin/python bench/soak/soak.py $(SOAK_ARGS)

# Fuzzing (scripts/fuzz.sh; README "Fuzzing"): cargo-fuzz on nightly, or stable with RUSTC_BOOTSTRAP=1.
FUZZ_TARGETS ?=
fuzz:
	FUZZ_SECONDS=$${FUZZ_SECONDS:-50} FUZZ_RESULTS=fuzz/results.md scripts/fuzz.sh $(FUZZ_TARGETS)

fuzz-short:
	FUZZ_SECONDS=$${FUZZ_SECONDS:-15} scripts/fuzz.sh $(FUZZ_TARGETS)
