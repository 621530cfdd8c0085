"""Token lifecycle, retries, timeouts and rate limits against the emulator's faults."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable

import pytest

from tw_bridge import (
    ConnectorError,
    EDRBridge,
    InvalidResponse,
    RateLimited,
    RequestTimeout,
)
from tw_bridge.testing.falcon import FalconEmulator

from .conftest import online_host

TOKEN = "/oauth2/token"
DETAILS = "/devices/entities/devices/v2"
ACTION = "/devices/entities/devices-actions/v2"
SCAN = "/ods/entities/scans/v1"


def _aid(emu: FalconEmulator) -> str:
    return "aid:" + online_host(emu, "Windows")["device_id"]


def test_token_expiring_mid_run_is_renewed_before_use(
    emu_factory: Callable[..., FalconEmulator], make_bridge: Callable[..., EDRBridge]
) -> None:
    emu = emu_factory(token_lifetime=1.0)  # renewed at half-life for short tokens
    b = make_bridge(emu)
    aid = _aid(emu)
    b.get_host(aid)
    time.sleep(0.6)  # past the renewal point (0.5 s), before expiry
    b.get_host(aid)
    time.sleep(1.1)  # past expiry
    b.get_host(aid)
    assert emu.count("POST", TOKEN) == 3
    assert not [r for r in emu.requests if r.status == 401]


def test_revoked_token_refreshed_once(emu: FalconEmulator, bridge: EDRBridge) -> None:
    aid = _aid(emu)
    bridge.get_host(aid)
    emu.faults.revoke_tokens()
    emu.clear_requests()
    assert bridge.get_host(aid)["id"] == aid[4:]
    assert emu.count("POST", TOKEN) == 1
    assert sum(1 for r in emu.requests if r.status == 401) >= 1


def test_fifty_concurrent_calls_one_token(emu: FalconEmulator, bridge: EDRBridge) -> None:
    hosts = emu.fleet.hosts[:50]
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        out = list(pool.map(lambda h: bridge.get_host(f"aid:{h['device_id']}"), hosts))
    assert [d["id"] for d in out] == [h["device_id"] for h in hosts]
    assert emu.count("POST", TOKEN) == 1


def test_wrong_region_token(emu: FalconEmulator, bridge: EDRBridge) -> None:
    emu.faults.wrong_region_next_token("eu-1")
    aid = _aid(emu)
    assert bridge.get_host(aid)["id"] == aid[4:]
    assert emu.count("POST", TOKEN) == 2  # the eu-1 token got 401; one fresh token
    conn = bridge.connector
    assert conn.base_url == emu.base_url  # explicit (loopback) base URL is never switched
    assert conn.region == "us-1"  # type: ignore[attr-defined]


@pytest.mark.parametrize("ms", [False, True])
def test_429_retry_after_honoured(emu: FalconEmulator, bridge: EDRBridge, ms: bool) -> None:
    aid = _aid(emu)
    bridge.get_host(aid)
    emu.clear_requests()
    emu.faults.rate_limit_storm(1, retry_after=0.6, ms=ms, path=DETAILS)
    t0 = time.monotonic()
    assert bridge.get_host(aid)["id"] == aid[4:]
    elapsed = time.monotonic() - t0
    details = [r for r in emu.requests if r.path == DETAILS]
    assert [r.status for r in details] == [429, 200]
    # seconds header is rounded up to the next whole second by the emulator
    assert elapsed >= 0.5
    assert details[1].time - details[0].time >= 0.5


def test_429_storm_exhausts_budget(emu: FalconEmulator, make_bridge: Callable[..., EDRBridge]
                                   ) -> None:
    b = make_bridge(emu, max_retries=2)
    aid = _aid(emu)
    b.get_host(aid)
    emu.faults.rate_limit_storm(10, retry_after=0.05, ms=True, path=DETAILS)
    with pytest.raises(RateLimited) as ei:
        b.get_host(aid)
    assert ei.value.retry_after is not None and ei.value.trace_id
    assert emu.count("POST", DETAILS) == 1 + 3


def test_burst_of_5xx_retried_for_reads(emu: FalconEmulator, bridge: EDRBridge) -> None:
    aid = _aid(emu)
    emu.faults.fail_next(3, 503, path=DETAILS)
    assert bridge.get_host(aid)["id"] == aid[4:]
    assert [r.status for r in emu.requests if r.path == DETAILS] == [503, 503, 503, 200]
    emu.faults.fail_next(10, 500, path=DETAILS)
    with pytest.raises(ConnectorError, match=r"500.*after 4 attempts") as ei:
        bridge.get_host(aid)
    assert ei.value.status == 500 and ei.value.trace_id


def test_contain_retried_after_5xx_not_after_drop(emu: FalconEmulator, bridge: EDRBridge) -> None:
    aid = _aid(emu)
    emu.faults.fail_next(1, 502, path=ACTION)
    res = bridge.isolate_host(aid)
    assert res["success"] and [r.status for r in emu.requests if r.path == ACTION] == [502, 202]
    other = "aid:" + online_host(emu, "Linux")["device_id"]
    emu.clear_requests()
    emu.faults.drop_next(1, path=ACTION)
    with pytest.raises(ConnectorError, match="may have reached Falcon"):
        bridge.isolate_host(other)
    assert emu.count("POST", ACTION) == 1


def test_scan_never_repeated_after_ambiguous_failure(
    emu: FalconEmulator, make_bridge: Callable[..., EDRBridge]
) -> None:
    b = make_bridge(emu, timeout=0.5)
    aid = _aid(emu)
    for fault in (lambda: emu.faults.fail_next(1, 500, path=SCAN),
                  lambda: emu.faults.drop_next(1, path=SCAN),
                  lambda: emu.faults.slow_next(1, 1.5, path=SCAN)):
        emu.clear_requests()
        fault()
        with pytest.raises(ConnectorError):
            b.scan_host(aid)
        # a held reply is logged when the emulator finally answers it
        assert emu.wait_for_requests(1, "POST", SCAN, timeout=5)
        assert emu.count("POST", SCAN) == 1
    # a 429 was not processed by Falcon: that one is retried
    emu.clear_requests()
    emu.faults.rate_limit_storm(1, retry_after=0.05, ms=True, path=SCAN)
    assert b.scan_host(aid)["status"] == "scan_pending"
    assert [r.status for r in emu.requests if r.path == SCAN] == [429, 201]


def test_dropped_connection_retried_for_reads(emu: FalconEmulator, bridge: EDRBridge) -> None:
    aid = _aid(emu)
    emu.faults.drop_next(2, path=DETAILS)
    assert bridge.get_host(aid)["id"] == aid[4:]
    assert emu.count("POST", DETAILS) == 3


def test_slower_than_timeout(emu: FalconEmulator, make_bridge: Callable[..., EDRBridge]) -> None:
    b = make_bridge(emu, timeout=0.4, max_retries=1)
    aid = _aid(emu)
    b.get_host(aid)
    emu.faults.slow_next(1, 1.0, path=DETAILS)
    assert b.get_host(aid)["id"] == aid[4:]  # the repeat answered in time
    emu.faults.slow_next(2, 1.0, path=DETAILS)
    with pytest.raises(RequestTimeout, match="did not answer"):
        b.get_host(aid)


def test_malformed_and_truncated_replies(emu: FalconEmulator, bridge: EDRBridge) -> None:
    aid = _aid(emu)
    bridge.get_host(aid)
    emu.faults.malformed_next(1, path=DETAILS)
    with pytest.raises(InvalidResponse) as ei:
        bridge.get_host(aid)
    assert ei.value.trace_id
    emu.faults.truncated_next(1, path=DETAILS)
    assert bridge.get_host(aid)["id"] == aid[4:]  # a read cut short is repeated...
    emu.faults.truncated_next(10, path=DETAILS)
    with pytest.raises(InvalidResponse, match="cut short"):
        bridge.get_host(aid)  # ...until the retry budget is spent


def test_client_side_limits_prevent_429(
    emu_factory: Callable[..., FalconEmulator], make_bridge: Callable[..., EDRBridge]
) -> None:
    emu = emu_factory(rate_limits={"host_query": (10, 1.0)})
    b = make_bridge(emu, rate_limits={"host_query": (10, 1.0)}, online_state_max=0)
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda i: b.search_hosts("platform_name:'Linux'", limit=5),
                                range(50)))
    elapsed = time.monotonic() - t0
    assert all(len(r) == 5 for r in results)
    queries = [r for r in emu.requests if r.path == "/devices/combined/devices/v1"]
    assert len(queries) == 50
    assert not [r for r in emu.requests if r.status == 429]
    assert elapsed >= (50 - 10) / 10  # 40 requests had to wait for the window
    times = sorted(r.time for r in queries)
    assert all(times[i + 10] - times[i] >= 1.0 for i in range(len(times) - 10))


def test_client_side_limit_wait_beyond_timeout_raises(
    emu: FalconEmulator, make_bridge: Callable[..., EDRBridge]
) -> None:
    b = make_bridge(emu, rate_limits={"action": (1, 60)}, timeout=0.5)
    b.isolate_host(_aid(emu))
    with pytest.raises(RateLimited, match="client-side action budget") as ei:
        b.isolate_host("aid:" + online_host(emu, "Linux")["device_id"])
    assert ei.value.retry_after is not None and ei.value.retry_after > 50
