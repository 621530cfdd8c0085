"""Secrets never leak; no unapproved action reaches Falcon.

Secrets: DEBUG logging on (caplog on the root logger, plus a formatting root handler that
renders tracebacks), every error path the connector has exercised against the emulator; the
client secret, the Basic credential and every bearer token the emulator issued appear zero
times in log output, reprs of bridge/connector/config/token manager/errors, ``str()`` of
errors and formatted tracebacks. (The fault matrix checks the same per cell.)

Policy: with the default policy and no approver every action raises ApprovalRequired and the
emulator sees no containment or scan request; the kill switch and a deny rule send nothing;
dry runs send nothing.
"""

from __future__ import annotations

import base64
import io
import logging
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests._support import cs_bridge, issued_tokens, unique_host
from tw_bridge import (
    ApprovalRequired,
    AuthenticationError,
    ConfigError,
    ConnectorError,
    EDRBridge,
    HostNotFound,
    PermissionDenied,
    PolicyDenied,
    RateLimited,
    RequestTimeout,
)
from tw_bridge.policy import PolicyBridge, PolicyEngine, PolicyGate, parse_policy
from tw_bridge.testing.falcon import FalconEmulator

ACTION = "/devices/entities/devices-actions/v2"
SCAN = "/ods/entities/scans/v1"
DETAILS = "/devices/entities/devices/v2"


@pytest.fixture
def root_text() -> Iterator[io.StringIO]:
    """Everything logged anywhere, formatted by a root handler (tracebacks included)."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield buf
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


def _error_texts(exc: BaseException) -> list[str]:
    return [str(exc), repr(exc), "".join(traceback.format_exception(type(exc), exc,
                                                                     exc.__traceback__))]


def test_no_secret_anywhere(emu: FalconEmulator, caplog: pytest.LogCaptureFixture,
                            root_text: io.StringIO) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="tw_bridge")
    aid = unique_host(emu, "Windows", skip=7)["device_id"]
    texts: list[str] = []
    errors: dict[str, int] = {}

    def expect(exc_type: type[BaseException], fn: Callable[[], Any]) -> None:
        try:
            fn()
        except exc_type as exc:
            emu.faults.clear()
            texts.extend(_error_texts(exc))
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
        else:
            pytest.fail(f"expected {exc_type.__name__}")

    # a client whose secret is wrong (that wrong secret must not leak either)
    wrong = "wrong-secret-" + "x" * 20
    with cs_bridge(emu, client_secret=wrong) as b:
        expect(AuthenticationError, lambda: b.get_host("aid:" + aid))
        texts += [repr(b), repr(b.connector)]
    # a client without Hosts: Write / ODS / RTR scopes
    emu.add_client("reader-id", "reader-secret-0123456789", ["hosts:read", "alerts:read"])
    with cs_bridge(emu, client_id="reader-id", client_secret="reader-secret-0123456789") as b:
        expect(PermissionDenied, lambda: b.isolate_host("aid:" + aid))
        expect(PermissionDenied, lambda: b.scan_host("aid:" + aid))
        expect(PermissionDenied, lambda: b.get_processes("aid:" + aid))
    with cs_bridge(emu, timeout=0.5, max_retries=1,
                   rate_limits={"action": (1, 60)}) as b:
        conn: Any = b.connector
        b.get_host("aid:" + aid)
        expect(HostNotFound, lambda: b.get_host("no-such-host-anywhere"))
        emu.faults.fail_next(5, 500, path=DETAILS)
        expect(ConnectorError, lambda: b.get_host("aid:" + aid))
        emu.faults.slow_next(2, 1.5, path=DETAILS)
        expect(RequestTimeout, lambda: b.get_host("aid:" + aid))
        emu.faults.clear()
        emu.faults.rate_limit_storm(1, retry_after=30, path=DETAILS)
        expect(RateLimited, lambda: b.get_host("aid:" + aid))
        emu.faults.clear()
        emu.faults.fail_next(2, 401, path=DETAILS)
        expect(AuthenticationError, lambda: b.get_host("aid:" + aid))
        emu.faults.malformed_next(1, path=DETAILS)
        expect(ConnectorError, lambda: b.get_host("aid:" + aid))
        emu.faults.truncated_next(5, path=DETAILS)
        expect(ConnectorError, lambda: b.get_host("aid:" + aid))
        emu.faults.drop_next(1, path=ACTION)
        expect(ConnectorError, lambda: b.isolate_host("aid:" + aid))
        expect(RateLimited, lambda: b.isolate_host("aid:" + aid))  # client-side budget
        emu.faults.revoke_tokens()
        assert b.health_check()["status"] == "healthy"
        emu.faults.fail_next(1, 503)
        texts.append(str(b.health_check()))
        texts += [repr(b), repr(conn), repr(conn.config), repr(conn._auth), str(conn.config)]
    texts += [repr(b)]
    # configuration errors with the secret in hand
    for kw in ({"region": "mars-1"}, {"base_url": "http://example.com"}, {"timeout": -1},
               {"proxy": "http://user:" + emu.client_secret + "@proxy:3128"}):
        try:
            EDRBridge("crowdstrike", client_id=emu.client_id,
                      client_secret=emu.client_secret, **kw)
        except ConfigError as exc:
            texts.extend(_error_texts(exc))
        else:  # a proxy is valid config: its repr must hide the password
            pass
    assert errors.get("AuthenticationError", 0) == 2 and len(errors) >= 5, errors

    secrets = [emu.client_secret, wrong, "reader-secret-0123456789", *issued_tokens(emu)]
    secrets.append(base64.b64encode(f"{emu.client_id}:{emu.client_secret}".encode()).decode())
    assert len(issued_tokens(emu)) >= 4
    haystack = "\n".join(texts + [r.getMessage() for r in caplog.records]
                         + [r.exc_text or "" for r in caplog.records] + [root_text.getvalue()])
    assert len(caplog.records) > 20  # DEBUG lines were produced
    leaked = [s[:8] + "…" for s in secrets if s in haystack]
    assert not leaked, leaked


# -- policy ---------------------------------------------------------------------------------


def _action_requests(emu: FalconEmulator) -> int:
    return emu.count("POST", ACTION) + emu.count("POST", SCAN)


def test_default_policy_without_approver_sends_nothing(emu: FalconEmulator) -> None:
    hosts = [unique_host(emu, p, skip=8)["device_id"] for p in ("Windows", "Linux", "Mac")]
    with cs_bridge(emu, approver=None) as b:
        for aid in hosts:
            for action in ("isolate_host", "unisolate_host", "scan_host"):
                with pytest.raises(ApprovalRequired) as ei:
                    getattr(b, action)("aid:" + aid)
                assert ei.value.request_id
                # also by hostname, and a dry run
                name = emu.get_host(aid)["hostname"]
                with pytest.raises(ApprovalRequired):
                    getattr(b, action)(name)
                res = getattr(b, action)("aid:" + aid, dry_run=True)
                assert res["success"] is False and res["status"] == "dry_run"
    assert _action_requests(emu) == 0
    entries = PolicyBridge().audit.entries()
    assert not [e for e in entries if e["event"] == "outcome"]
    assert sum(1 for e in entries if e["event"] == "decision") >= 18


def test_kill_switch_and_deny_rule_send_nothing(emu: FalconEmulator,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    aid = unique_host(emu, "Windows", skip=9)["device_id"]
    monkeypatch.setenv("TW_KILL_SWITCH", "1")
    with cs_bridge(emu) as b:  # the approver would approve, the kill switch wins
        for action in ("isolate_host", "unisolate_host", "scan_host"):
            with pytest.raises(PolicyDenied):
                getattr(b, action)("aid:" + aid)
    monkeypatch.delenv("TW_KILL_SWITCH")
    deny = PolicyGate(engine=PolicyEngine(parse_policy(
        'rules = [{name = "no", action_patterns = ["*"], decision = "denied"}]', "<deny>")),
        approver=lambda req: "someone")
    with cs_bridge(emu, policy=deny) as b:
        for action in ("isolate_host", "unisolate_host", "scan_host"):
            with pytest.raises(PolicyDenied):
                getattr(b, action)("aid:" + aid)
    assert _action_requests(emu) == 0


def test_every_action_request_was_approved(emu: FalconEmulator) -> None:
    """With an approver, each action that reached the emulator has an approval entry."""
    aids = [unique_host(emu, "Linux", skip=i)["device_id"] for i in (10, 11)]
    with cs_bridge(emu) as b:
        for aid in aids:
            b.isolate_host("aid:" + aid, wait=2)
            b.unisolate_host("aid:" + aid, wait=2)
            b.scan_host("aid:" + aid)
    sent = [r for r in emu.requests if r.path in (ACTION, SCAN)]
    approved = [e for e in PolicyBridge().audit.entries()
                if e["event"] == "decision" and e["decision"] == "approved"]
    assert len(sent) == len(approved) == 6
