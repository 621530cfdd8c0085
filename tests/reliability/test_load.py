"""Load and leaks: many threads on one bridge, many bridges in a row.

After ``close()``: no extra threads, no extra open file descriptors (``/proc/self/fd``), no
"Unclosed client session" / ResourceWarning, RSS growth below a stated bound. The soak length
comes from ``TW_SOAK_SECONDS`` (default 60); the long soak is marked ``slow`` and runs only when
``TW_SOAK_SECONDS`` is set (``.ci/run`` sets 20) or ``-m slow`` selects it.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
import warnings
from collections import Counter
from typing import Any

import pytest

from tests._support import cs_bridge, open_fds, rss_kib, thread_names, unique_host
from tw_bridge import EDRBridge
from tw_bridge.policy import PolicyEngine, PolicyGate, parse_policy
from tw_bridge.testing.falcon import FalconEmulator

THREADS = 16
#: Read at import: tests/conftest.py removes every TW_* variable before each test.
SOAK_SECONDS = os.environ.get("TW_SOAK_SECONDS")
#: RSS growth allowed after a soak / the bridge loop (KiB). The in-memory audit trail and the
#: emulator's request log grow with every call, so this is a bound, not zero.
RSS_BOUND_KIB = 64 * 1024

#: Actions allowed without approval and without policy rate limits: the soak measures the
#: connector, not the gate's counters. Every action still goes through the gate and the audit.
LOAD_POLICY = """
mode = "autonomous"
default_decision = "allowed"
rules = []
[rate_limits]
"""


def _load_gate() -> PolicyGate:
    return PolicyGate(engine=PolicyEngine(parse_policy(LOAD_POLICY, "<load policy>")))


def _settle(baseline_threads: list[str], baseline_fds: int, deadline: float = 5.0
            ) -> tuple[list[str], int]:
    """Wait (bounded) for closed sockets and stopped threads to disappear."""
    end = time.monotonic() + deadline
    while True:
        gc.collect()
        names, fds = thread_names(), open_fds()
        if (len(names) <= len(baseline_threads) and fds <= baseline_fds) or \
                time.monotonic() > end:
            return names, fds
        time.sleep(0.05)


def _worker(bridge: EDRBridge, idx: int, ctx: dict[str, Any], calls_min: int, until: float,
            counts: Counter[str], errors: list[str]) -> None:
    own = ctx["own"][idx]
    read = ctx["reads"][idx % len(ctx["reads"])]
    n = 0
    # stop only at the end of a 25-call cycle, so every isolate has had its unisolate
    while n % 25 or n < calls_min or time.monotonic() < until:
        k = n % 25
        try:
            if k in (0, 5, 10, 15, 20):
                op = "get_host"
                assert bridge.get_host("aid:" + read)["id"] == read
            elif k in (1, 11, 21):
                op = "get_host_by_name"
                assert bridge.get_host(ctx["names"][read])["id"] == read
            elif k in (2, 12):
                op = "get_hosts"
                out = bridge.get_hosts(["aid:" + r for r in ctx["reads"][:5]] + ["no-such-host"])
                assert out[-1] is None and len(out) == 6
            elif k in (3, 13, 22):
                op = "search_hosts"
                assert len(bridge.search_hosts("platform_name:'Linux'", limit=5)) == 5
            elif k in (4, 14, 23):
                op = "get_detections"
                bridge.get_detections("aid:" + read, limit=5)
            elif k in (6, 16):
                op = "get_processes"
                assert bridge.get_processes("aid:" + read)
            elif k == 7:
                op = "isolate_host"
                assert bridge.isolate_host("aid:" + own, wait=2)["status"] == "isolated"
            elif k == 8:
                op = "unisolate_host"
                assert bridge.unisolate_host("aid:" + own, wait=2)["status"] == "normal"
            elif k == 9:
                op = "scan_host"
                assert bridge.scan_host("aid:" + own)["status"] == "scan_pending"
            elif k in (17, 24):
                op = "health_check"
                assert bridge.health_check()["status"] == "healthy"
            else:
                op = "get_network_connections"
                bridge.get_network_connections("aid:" + read)
            counts[op] += 1
        except Exception as exc:  # noqa: BLE001 - every error is unexpected here
            errors.append(f"thread {idx} call {n}: {type(exc).__name__}: {exc}")
            if len(errors) > 20:
                return
        n += 1
    counts["_calls"] += n


class RemoteEmulator:
    """The emulator in a child process (so this process's RSS measures only the client), with
    a same-seed local copy of the fleet for picking hosts."""

    def __init__(self, hosts: int = 200, seed: int = 7) -> None:
        import subprocess
        import sys

        self.local = FalconEmulator(hosts=hosts, seed=seed)
        self.fleet = self.local.fleet
        self.client_id, self.client_secret = self.local.client_id, self.local.client_secret
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tw_bridge.testing.falcon", "--port", "0", "--hosts",
             str(hosts), "--seed", str(seed), "--no-rate-limits"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("Falcon emulator listening on "), line
        self.base_url = line.split()[-1]

    def get_host(self, aid: str) -> dict[str, Any]:
        return self.local.get_host(aid)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture(scope="module")
def remote_emu() -> Any:
    e = RemoteEmulator()
    try:
        yield e
    finally:
        e.close()


def _context(emu: Any) -> dict[str, Any]:
    reads = [unique_host(emu, p, skip=i)["device_id"]
             for p in ("Windows", "Linux", "Mac") for i in range(3, 5)]
    own = []
    for p in ("Windows", "Linux", "Mac"):
        for i in range(6, 20):
            try:
                own.append(unique_host(emu, p, skip=i)["device_id"])
            except LookupError:
                break
    assert len(own) >= THREADS, len(own)
    names = {r: emu.get_host(r)["hostname"] for r in reads}
    return {"reads": reads, "own": own[:THREADS], "names": names}


def soak(emu: Any, seconds: float, calls_min: int, report: Any, label: str,
         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    ctx = _context(emu)
    gc.collect()
    base_threads, base_fds, base_rss = thread_names(), open_fds(), rss_kib()
    counts: Counter[str] = Counter()
    errors: list[str] = []
    t0 = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bridge = cs_bridge(emu, policy=_load_gate(), timeout=10)
        until = time.monotonic() + seconds
        workers = [threading.Thread(target=_worker, name=f"soak-{i}",
                                    args=(bridge, i, ctx, calls_min, until, counts, errors))
                   for i in range(THREADS)]
        for w in workers:
            w.start()
        during_fds = 0
        while any(w.is_alive() for w in workers):
            during_fds = max(during_fds, open_fds())
            for w in workers:
                w.join(0.2)
        elapsed = time.monotonic() - t0
        bridge.close()
        del bridge
        names, fds = _settle(base_threads, base_fds)
    rss = rss_kib()
    assert not errors, "\n".join(errors[:20])
    assert counts["_calls"] >= THREADS * calls_min
    assert names == base_threads, (base_threads, names)
    assert fds <= base_fds, (base_fds, fds)
    unclosed = [str(w.message) for w in caught] + [
        r.getMessage() for r in caplog.records if "nclosed" in r.getMessage()]
    assert not unclosed, unclosed
    growth = rss - base_rss
    report.figure(
        f"{label}: {THREADS} threads × ≥{calls_min} mixed calls, one bridge "
        "(emulator in a child process)",
        f"{counts['_calls']} calls in {elapsed:.1f} s ({counts['_calls'] / elapsed:.0f}/s), "
        f"0 errors; fds {base_fds} → {during_fds} (peak) → {fds} after close; threads "
        f"{len(base_threads)} → {len(names)}; RSS +{growth / 1024:.1f} MiB "
        f"(bound {RSS_BOUND_KIB // 1024} MiB)")
    assert growth < RSS_BOUND_KIB, f"RSS grew by {growth} KiB"
    assert set(counts) >= {"get_host", "get_hosts", "search_hosts", "get_detections",
                           "get_processes", "isolate_host", "unisolate_host", "scan_host"}


def test_soak_quick(remote_emu: Any, report: Any, caplog: pytest.LogCaptureFixture) -> None:
    soak(remote_emu, 4.0, 25, report, "quick soak (default suite)", caplog)


@pytest.mark.slow
def test_soak_long(remote_emu: Any, report: Any, caplog: pytest.LogCaptureFixture,
                   pytestconfig: pytest.Config) -> None:
    # Selected only with -m slow or TW_SOAK_SECONDS (tests/conftest.py deselects it otherwise).
    seconds = float(SOAK_SECONDS or "60")
    soak(remote_emu, seconds, 500, report, f"soak ({seconds:g} s, TW_SOAK_SECONDS)", caplog)


def test_hundred_bridges(emu: FalconEmulator, report: Any,
                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    aid = unique_host(emu, "Linux", skip=2)["device_id"]
    # one bridge first, so lazy imports and caches are not counted as growth
    with cs_bridge(emu) as b:
        b.get_host("aid:" + aid)
    names0, fds0 = _settle(thread_names(), open_fds())
    rss0 = rss_kib()
    t0 = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(100):
            b = cs_bridge(emu)
            assert b.get_host("aid:" + aid)["id"] == aid
            b.search_hosts("platform_name:'Mac'", limit=2)
            b.close()
            assert b.closed
        del b
        names, fds = _settle(names0, fds0)
    elapsed = time.monotonic() - t0
    growth = rss_kib() - rss0
    assert names == names0, (names0, names)
    assert fds <= fds0, (fds0, fds)
    unclosed = [str(w.message) for w in caught] + [
        r.getMessage() for r in caplog.records if "nclosed" in r.getMessage()]
    assert not unclosed, unclosed
    assert emu.count("POST", "/oauth2/revoke") == 1 + 100  # every close() revoked its token
    report.figure("100 bridges created, used, closed",
                  f"{elapsed:.1f} s; fds {fds0} → {fds}; threads {len(names0)} → {len(names)}; "
                  f"RSS +{growth / 1024:.1f} MiB (bound {RSS_BOUND_KIB // 1024} MiB)")
    assert growth < RSS_BOUND_KIB
