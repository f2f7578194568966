"""Per-request facts in Envoy's access log (issue 11, item 2). The filter writes each fact as a
proxy-wasm property; Envoy keeps it in the request's filter state as `wasm.<name>`, and the format
in envoy/access-log-format.txt prints it with `%FILTER_STATE(wasm.semantic_cache.status:PLAIN)%`.
Real Envoy with a file access log in that format, real .wasm, real Redis.
"""
from __future__ import annotations

import re
import time
from functools import partial
from pathlib import Path

import pytest
import yaml

import harness
from harness import Site, assert_status, policy_for, wait_stored
from standins import cosine_distance

CLIENT_AUTH = "Bearer sk-client-access-log"
OTHER_AUTH = "Bearer sk-client-access-log-other"
ask = partial(harness.ask, auth=CLIENT_AUTH)
pytestmark = pytest.mark.usefixtures("clean_keys")

FORMAT = (harness.ROOT / "envoy" / "access-log-format.txt").read_text().strip()
LOOSE = 0.5
QUERY = "Convert 100 USD to EUR"
TRAP = "Convert 100 EUR to USD"
PARAPHRASE = "Please convert 100 USD into EUR"
LINE = re.compile(
    r"\[access\] (?P<method>\S+) (?P<path>\S+) (?P<code>\d+) \d+ms cache=(?P<cache>\S+) tier=(?P<tier>\S+) "
    r"distance=(?P<distance>\S+) refused=(?P<refused>\S+) bypass=(?P<bypass>\S+) partition=(?P<partition>\S+)")


@pytest.fixture(scope="module")
def access_log(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("access") / "access.log"


@pytest.fixture(scope="module")
def envoy(envoy_launcher, embed_openai, access_log):
    logger = [{"name": "envoy.access_loggers.file", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "path": str(access_log), "log_format": {"text_format_source": {"inline_string": FORMAT + "\n"}}}}]
    site = Site("alog", policy_for("alog", embed_openai, threshold=LOOSE), access_log=logger)
    # Envoy writes access logs to files every 10 s by default: flush often so lines can be awaited.
    return envoy_launcher([site], extra_args=["--file-flush-interval-msec", "50"])


def next_line(access_log: Path, seen: int, timeout: float = 10.0) -> dict:
    """The access-log line after the first `seen` lines, parsed."""
    deadline = time.monotonic() + timeout
    while True:
        lines = access_log.read_text().splitlines() if access_log.exists() else []
        if len(lines) > seen:
            assert len(lines) == seen + 1, lines[seen:]
            m = LINE.fullmatch(lines[seen])
            assert m, lines[seen]
            return m.groupdict()
        assert time.monotonic() < deadline, f"no access-log line {seen + 1} within {timeout}s: {lines}"
        time.sleep(0.05)


def lines(access_log: Path) -> int:
    return len(access_log.read_text().splitlines()) if access_log.exists() else 0


def test_the_shipped_configs_use_the_format():
    for name in ["envoy-local.yaml.tmpl", "envoy-compose.yaml", "envoy-compose-sidecar.yaml"]:
        text = (harness.ROOT / "envoy" / name).read_text()
        assert f'inline_string: "{FORMAT}\\n"' in text, name
    # and they still parse as YAML with the line inside an access logger
    cfg = yaml.safe_load((harness.ROOT / "envoy" / "envoy-compose.yaml").read_text())
    assert FORMAT in str(cfg)


def test_miss_hits_bypass_and_refusal_are_logged(envoy, access_log, redis_server):
    assert 0.05 < cosine_distance(QUERY, PARAPHRASE) < LOOSE
    n = lines(access_log)
    assert_status(ask(envoy, "alog", QUERY), "MISS")
    miss = next_line(access_log, n)
    assert (miss["cache"], miss["tier"], miss["distance"], miss["refused"], miss["bypass"]) == ("MISS", "-", "-", "-", "-")
    assert re.fullmatch(r"[0-9a-f]{32}", miss["partition"]), miss
    assert redis_server.command("HGET", wait_stored(redis_server, "alog")[0], "partition").decode() == miss["partition"]

    assert_status(ask(envoy, "alog", QUERY), "HIT", match="exact")
    exact = next_line(access_log, n + 1)
    assert (exact["cache"], exact["tier"], exact["distance"]) == ("HIT", "exact", "0.0000")
    assert exact["partition"] == miss["partition"] and exact["code"] == "200"

    r = ask(envoy, "alog", PARAPHRASE)
    assert_status(r, "HIT", match="semantic")
    semantic = next_line(access_log, n + 2)
    assert (semantic["cache"], semantic["tier"]) == ("HIT", "semantic")
    assert semantic["distance"] == r.headers["x-cache-distance"] and float(semantic["distance"]) > 0.05

    assert_status(ask(envoy, "alog", QUERY, headers={"x-semantic-cache-skip": "1"}), "BYPASS", "skip-header")
    bypass = next_line(access_log, n + 3)
    assert (bypass["cache"], bypass["bypass"], bypass["tier"], bypass["partition"]) == ("BYPASS", "skip-header", "-", "-")

    r = ask(envoy, "alog", TRAP)
    assert_status(r, "MISS")
    refused = next_line(access_log, n + 4)
    assert (refused["cache"], refused["refused"]) == ("MISS", "order")

    # another tenant: another partition
    assert_status(harness.ask(envoy, "alog", QUERY, auth=OTHER_AUTH), "MISS")
    other = next_line(access_log, n + 5)
    assert other["partition"] not in ("-", miss["partition"])
    text = access_log.read_text()
    assert "sk-client-access-log" not in text and "Convert" not in text, "no credentials or prompts in the log"
