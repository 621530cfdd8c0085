"""Issue 8: one rate budget and one token shared by many workers through Redis."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.redis.conftest import RedisServer, free_port
from tw_bridge import ConfigError, ConnectorError, EDRBridge
from tw_bridge.connectors.crowdstrike import _redis
from tw_bridge.testing.falcon import FalconEmulator

WORKER = Path(__file__).with_name("_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def _bridge(emu: FalconEmulator, **kw: object) -> EDRBridge:
    return EDRBridge("crowdstrike", base_url=emu.base_url, client_id=emu.client_id,
                     client_secret=emu.client_secret, **kw)


def _run_workers(emu: FalconEmulator, n: int, per: int, limit: int, window: float,
                 redis_url: str | None) -> list[dict]:
    aids = [h["device_id"] for h in emu.fleet.hosts]
    procs = []
    for i in range(n):
        cfg = {"base_url": emu.base_url, "client_id": emu.client_id,
               "client_secret": emu.client_secret, "limit": limit, "window": window,
               "redis_url": redis_url, "hosts": aids[i * per:(i + 1) * per]}
        procs.append(subprocess.Popen(
            [sys.executable, str(WORKER), json.dumps(cfg)], cwd=ROOT, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:  # start together
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        assert p.returncode == 0, stderr
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def _in_window_max(times: list[float], window: float) -> int:
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


@pytest.mark.timeout(180)
def test_workers_share_one_budget_and_one_token(redis_url: str, flush: None) -> None:
    limit, window = 10, 2.0
    with FalconEmulator(hosts=200, seed=3, rate_limits={"host_query": (limit, window)}) as emu:
        results = _run_workers(emu, n=4, per=10, limit=limit, window=window,
                               redis_url=redis_url)
        reqs = list(emu.requests)
    assert all(r["errors"] == 0 for r in results)
    tokens = [r for r in reqs if r.path == "/oauth2/token"]
    too_many = [r for r in reqs if r.status == 429]
    device_reads = [r.time for r in reqs if r.path.startswith("/devices/")]
    assert len(tokens) == 1, "every worker must use the one shared token"
    assert too_many == []
    # the shared window held: never more than `limit` device reads in any second
    assert _in_window_max(device_reads, window) <= limit
    # and it was used: the run took about as long as the budget demands
    minimum = (len(device_reads) / limit - 1) * window
    assert max(r["elapsed"] for r in results) >= minimum * 0.95


@pytest.mark.timeout(180)
def test_without_redis_each_worker_spends_its_own_budget() -> None:
    limit, window = 10, 1.0
    with FalconEmulator(hosts=200, seed=3, rate_limits={"host_query": (limit, window)}) as emu:
        _run_workers(emu, n=4, per=10, limit=limit, window=window, redis_url=None)
        reqs = list(emu.requests)
    # the problem Redis solves: a token per worker, and 429s (some lookups may even
    # give up after their retries)
    assert sum(r.path == "/oauth2/token" for r in reqs) == 4
    assert sum(r.status == 429 for r in reqs) > 0


def test_bad_redis_url_is_a_config_error() -> None:
    with FalconEmulator(hosts=5) as emu, pytest.raises(ConfigError, match="TW_BRIDGE_REDIS_URL"):
        _bridge(emu, redis_url="http://127.0.0.1:1/0")


def test_unreachable_redis_at_start_names_the_url_without_password() -> None:
    port = free_port()
    with FalconEmulator(hosts=5) as emu:
        with pytest.raises(ConnectorError) as err:
            _bridge(emu, redis_url=f"redis://worker:hunter2secret@127.0.0.1:{port}/0")
        assert emu.count() == 0  # nothing reached Falcon
    text = str(err.value)
    assert f"127.0.0.1:{port}" in text and "hunter2secret" not in text and "***" in text


def test_env_variable_switches_it_on(monkeypatch: pytest.MonkeyPatch, redis_url: str,
                                     flush: None) -> None:
    monkeypatch.setenv("TW_BRIDGE_REDIS_URL", redis_url)
    with FalconEmulator(hosts=5) as emu, _bridge(emu) as b:
        b.get_host("aid:" + emu.fleet.hosts[0]["device_id"])
        assert b.connector.redis is not None  # type: ignore[attr-defined]


def test_redis_lost_and_back(own_redis: RedisServer, monkeypatch: pytest.MonkeyPatch,
                             caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(_redis, "_RETRY_AFTER_LOSS", 0.2)
    caplog.set_level(logging.INFO, logger="tw_bridge")
    with FalconEmulator(hosts=20) as emu, _bridge(
        emu, redis_url=own_redis.url, rate_limits={"host_query": (50, 1.0)}
    ) as b:
        aid = "aid:" + emu.fleet.hosts[0]["device_id"]
        b.get_host(aid)
        own_redis.stop()
        for _ in range(5):  # carries on with the local fallback
            assert b.get_host(aid)["id"] == aid[4:]
        warnings = [r for r in caplog.records if "falls back to a local window" in r.getMessage()]
        assert len(warnings) == 1  # one warning, not one per call
        window = b.connector._limiters.get("host_query")  # type: ignore[attr-defined]
        assert window.degraded
        own_redis.start()
        deadline = time.monotonic() + 15
        while window.degraded and time.monotonic() < deadline:
            b.get_host(aid)
            time.sleep(0.05)
        assert not window.degraded, "did not rejoin Redis"
        assert any("rejoined" in r.getMessage() for r in caplog.records)
    assert "hunter2" not in caplog.text
