"""Fault matrix: 10 faults x 8 operations through ``EDRBridge("crowdstrike")`` over real HTTP.

Each cell: a fresh bridge (real PolicyGate + approver), a warm-up call for a token where the
fault needs one, the fault aimed at the operation's endpoint, one call. Checked:

* the call ends within its bound (run in a worker thread: a hang fails instead of blocking);
* the outcome is the documented one (success after retry, or the ConnectorError subclass);
* actions: nothing the emulator processed was sent twice unless the repeat is harmless;
* actions: the audit trail holds the decision and exactly one outcome for the attempt;
* secrets: the client secret and every issued token appear in no log record (DEBUG, root
  handler), nor in ``str``/``repr``/the formatted traceback of the error, nor in reprs.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

import pytest

from tests._support import cs_bridge, issued_tokens, set_containment, unique_host
from tw_bridge import (
    AuthenticationError,
    ConnectorError,
    EDRBridge,
    InvalidResponse,
    RequestTimeout,
)
from tw_bridge.policy import PolicyBridge
from tw_bridge.testing.falcon import FalconEmulator

TIMEOUT = 1.0
DETAILS = "/devices/entities/devices/v2"
COMBINED = "/devices/combined/devices/v1"
ALERTS = "/alerts/queries/alerts/v2"
ACTION = "/devices/entities/devices-actions/v2"
SCAN = "/ods/entities/scans/v1"
RTR_CMD = "/real-time-response/entities/command/v1"
TOKEN = "/oauth2/token"

OPS = ("get_host", "get_hosts", "search_hosts", "get_detections", "isolate_host",
       "unisolate_host", "scan_host", "get_processes")
PATH = {"get_host": DETAILS, "get_hosts": DETAILS, "search_hosts": COMBINED,
        "get_detections": ALERTS, "isolate_host": ACTION, "unisolate_host": ACTION,
        "scan_host": SCAN, "get_processes": RTR_CMD}
KIND = {op: "read" for op in OPS} | {"isolate_host": "containment",
                                     "unisolate_host": "containment", "scan_host": "scan"}
ACTIONS = ("isolate_host", "unisolate_host", "scan_host")

FAULTS = ("storm429", "http500", "http503", "dropped", "slow", "malformed", "truncated",
          "revoked", "fresh401", "wrong_region")
FAULT_TEXT = {
    "storm429": "429 storm (2 × 429, Retry-After 0.2 s)",
    "http500": "500 (once)",
    "http503": "503 (twice)",
    "dropped": "dropped connection",
    "slow": "reply slower than the 1 s timeout",
    "malformed": "malformed JSON (200/202/201)",
    "truncated": "truncated body",
    "revoked": "token revoked mid-run",
    "fresh401": "401 on a fresh token too",
    "wrong_region": "token reply from the wrong region",
}

OK = "ok"
# Documented outcomes (docs/crowdstrike.md, "Errors and retries"), by operation kind.
EXPECT: dict[str, dict[str, Any]] = {
    "storm429": {"read": OK, "containment": OK, "scan": OK},
    "http500": {"read": OK, "containment": OK, "scan": ConnectorError},
    "http503": {"read": OK, "containment": OK, "scan": ConnectorError},
    "dropped": {"read": OK, "containment": ConnectorError, "scan": ConnectorError},
    "slow": {"read": OK, "containment": RequestTimeout, "scan": RequestTimeout},
    "malformed": {"read": InvalidResponse, "containment": InvalidResponse,
                  "scan": InvalidResponse},
    "truncated": {"read": OK, "containment": InvalidResponse, "scan": InvalidResponse},
    "revoked": {"read": OK, "containment": OK, "scan": OK},
    "fresh401": {"read": AuthenticationError, "containment": AuthenticationError,
                 "scan": AuthenticationError},
    "wrong_region": {"read": OK, "containment": OK, "scan": OK},
}
#: Upper bound on one cell's call: timeout x attempts + backoff + Retry-After + slack.
CELL_BOUND = 8.0


def inject(emu: FalconEmulator, fault: str, path: str) -> None:
    f = emu.faults
    if fault == "storm429":
        f.rate_limit_storm(2, retry_after=0.2, ms=True, path=path)
    elif fault == "http500":
        f.fail_next(1, 500, path=path)
    elif fault == "http503":
        f.fail_next(2, 503, path=path)
    elif fault == "dropped":
        f.drop_next(1, path=path)
    elif fault == "slow":
        f.slow_next(1, TIMEOUT + 1.0, path=path)
    elif fault == "malformed":
        f.malformed_next(1, path=path)
    elif fault == "truncated":
        f.truncated_next(1, path=path)
    elif fault == "revoked":
        f.revoke_tokens()
    elif fault == "fresh401":
        f.fail_next(2, 401, path=path)  # the token in use, then the freshly fetched one
    elif fault == "wrong_region":
        f.wrong_region_next_token("eu-1")
    else:  # pragma: no cover
        raise AssertionError(fault)


def run_op(bridge: EDRBridge, op: str, hosts: dict[str, str]) -> Any:
    read = "aid:" + hosts["read"]
    if op == "get_host":
        return bridge.get_host(read)
    if op == "get_hosts":
        return bridge.get_hosts([read, "aid:" + hosts["other"], hosts["name"]])
    if op == "search_hosts":
        return bridge.search_hosts("platform_name:'Linux'", limit=5)
    if op == "get_detections":
        return bridge.get_detections(read, limit=10)
    if op == "isolate_host":
        return bridge.isolate_host("aid:" + hosts["isolate"])
    if op == "unisolate_host":
        return bridge.unisolate_host("aid:" + hosts["unisolate"])
    if op == "scan_host":
        return bridge.scan_host("aid:" + hosts["scan"])
    if op == "get_processes":
        return bridge.get_processes(read)
    raise AssertionError(op)  # pragma: no cover


@pytest.fixture(scope="module")
def hosts(emu_module: FalconEmulator) -> dict[str, str]:
    read = unique_host(emu_module, "Windows", skip=0)
    return {
        "read": read["device_id"],
        "name": read["hostname"],
        "other": unique_host(emu_module, "Linux", skip=0)["device_id"],
        "isolate": unique_host(emu_module, "Windows", skip=1)["device_id"],
        "unisolate": unique_host(emu_module, "Windows", skip=2)["device_id"],
        "scan": unique_host(emu_module, "Mac", skip=0)["device_id"],
    }


@pytest.fixture(scope="module")
def pool() -> Any:
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="matrix-cell") as p:
        yield p


def _secrets(emu: FalconEmulator) -> list[str]:
    return [emu.client_secret, *issued_tokens(emu)]


def _leaks(text: str, secrets: list[str]) -> list[str]:
    return [s[:6] + "…" for s in secrets if s and s in text]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("fault", FAULTS)
def test_cell(fault: str, op: str, emu: FalconEmulator, hosts: dict[str, str], report: Any,
              pool: Any, caplog: pytest.LogCaptureFixture) -> None:
    report.expected_cells = len(FAULTS) * len(OPS)
    caplog.set_level(logging.DEBUG)  # root: tw_bridge, aiohttp, asyncio, the emulator
    set_containment(emu, hosts["isolate"], "normal")
    set_containment(emu, hosts["unisolate"], "contained")
    bridge = cs_bridge(emu, timeout=TIMEOUT, max_retries=3)
    path = PATH[op]
    try:
        if fault != "wrong_region":  # that fault is in the (first) token reply itself
            bridge.get_host("aid:" + hosts["read"])
        emu.clear_requests()
        inject(emu, fault, path)
        t0 = time.monotonic()
        fut = pool.submit(run_op, bridge, op, hosts)
        try:
            result: Any = fut.result(timeout=CELL_BOUND + 5)
            error: BaseException | None = None
        except concurrent.futures.TimeoutError:
            pytest.fail(f"{fault} x {op}: the call hung (> {CELL_BOUND + 5} s)")
        except Exception as exc:  # noqa: BLE001 - classified below
            result, error = None, exc
        seconds = time.monotonic() - t0
        if fault == "slow":  # the held request is logged when the client disconnects
            emu.wait_for_requests(1, None, path, timeout=3)
        reqs = [r for r in emu.requests if r.path == path]
        expected = EXPECT[fault][KIND[op]]
        outcome = OK if error is None else type(error).__name__
        report.cell(fault, op, outcome=outcome, attempts=len(reqs), seconds=seconds)

        # 1. bounded
        assert seconds < CELL_BOUND, f"{fault} x {op} took {seconds:.1f} s"
        # 2. documented outcome
        if expected is OK:
            assert error is None, f"{fault} x {op}: expected success, got {error!r}"
            assert result is not None
        else:
            assert error is not None, f"{fault} x {op}: expected {expected.__name__}"
            assert type(error) is expected, f"{fault} x {op}: {error!r}"
            assert str(error).startswith("Connector error: ")
        # 3. actions never repeated unless harmless
        if op in ACTIONS:
            processed = [r for r in reqs if r.status not in (429, 401)]
            if op == "scan_host":
                assert len(processed) <= 1, [r.status for r in reqs]
            else:
                assert all(r.status >= 500 for r in processed[:-1]), [r.status for r in reqs]
            _check_audit(op, hosts, error)
        else:
            assert emu.count("POST", ACTION) == 0 and emu.count("POST", SCAN) == 0
        # token faults: exactly one refresh
        if fault in ("revoked", "fresh401", "wrong_region"):
            want = 2 if fault == "wrong_region" else 1
            assert emu.count("POST", TOKEN) == want
        # 5. secrets
        secrets = _secrets(emu)
        texts = [r.getMessage() for r in caplog.records]
        texts += [str(r.exc_text or "") for r in caplog.records]
        texts += [repr(bridge), repr(bridge.connector), repr(bridge.connector.config)]  # type: ignore[attr-defined]
        if error is not None:
            texts += [str(error), repr(error),
                      "".join(traceback.format_exception(type(error), error,
                                                         error.__traceback__))]
        leaked = _leaks("\n".join(texts), secrets)
        assert not leaked, f"secrets leaked in {fault} x {op}: {leaked}"
    finally:
        bridge.close()
    # a recovered fault leaves the bridge usable; close() revoked the token
    assert emu.count("POST", "/oauth2/revoke") >= 1


def _check_audit(op: str, hosts: dict[str, str], error: BaseException | None) -> None:
    key = {"isolate_host": "isolate", "unisolate_host": "unisolate", "scan_host": "scan"}[op]
    device = hosts[key]
    entries = [e for e in PolicyBridge().audit.entries()
               if e.get("action") == op and e.get("device_id") == device]
    events = [e["event"] for e in entries]
    assert "decision" in events, events
    outcomes = [e for e in entries if e["event"] == "outcome"]
    assert len(outcomes) == 1, events
    out = outcomes[0]
    if error is None:
        assert out["result"] == "success", out
    else:
        assert out["result"] != "success", out
        assert out.get("error"), out
    assert PolicyBridge().audit.verify().ok


# Make ``Callable`` used (type-only import kept for readers of run_op's signature).
_Runner = Callable[[EDRBridge, str, dict[str, str]], Any]
