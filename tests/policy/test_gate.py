from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from tw_bridge._errors import ApprovalRequired, PolicyDenied
from tw_bridge.policy import (
    ActionRequest,
    GateResult,
    MemoryAudit,
    PolicyBridge,
    PolicyEngine,
    PolicyGate,
    SqliteAudit,
    SqliteStore,
)
from tw_bridge.policy._rules import default_policy

from .conftest import Clock

ACTIONS = ("isolate_host", "unisolate_host", "scan_host")


def req(action: str = "isolate_host", **kw: Any) -> ActionRequest:
    base: dict[str, Any] = dict(
        action=action, device_id="host-12345", hostname="workstation-001", tags=(),
        connector_type="mock", requester="analyst-bot",
    )
    base.update(kw)
    return ActionRequest(**base)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def approve(gate: PolicyGate, request_id: str, by: str = "soc-lead") -> None:
    gate.store.decide(request_id, approved=True, by=by, reason=None, now=gate.clock())


@pytest.mark.parametrize("action", ACTIONS)
def test_requires_approval_then_approved_flow(gate: PolicyGate, action: str) -> None:
    with pytest.raises(ApprovalRequired) as info:
        run(gate.authorize(req(action)))
    err = info.value
    assert err.approval_level == "analyst"
    rid = err.request_id
    assert f"tw-edr approvals approve {rid} --by <name>" in str(err)
    assert f"approval_id={rid}" in str(err)
    assert str(err).startswith("Connector error: ")
    approve(gate, rid)
    result = run(gate.authorize(req(action, approval_id=rid)))
    assert result == GateResult("approved", rid, "soc-lead", result.reason, "analyst", result.rule)
    assert result.as_approval_dict() == {"decision": "approved", "request_id": rid, "approved_by": "soc-lead"}
    # replay refused
    with pytest.raises(PolicyDenied, match="already used"):
        run(gate.authorize(req(action, approval_id=rid)))


@pytest.mark.parametrize("tag", ["critical", "domain-controller", "CRITICAL"])
def test_critical_targets_need_senior(gate: PolicyGate, tag: str) -> None:
    with pytest.raises(ApprovalRequired) as info:
        run(gate.authorize(req(device_id="host-99999", hostname="dc01", tags=(tag,))))
    assert info.value.approval_level == "senior"
    assert "requires senior approval" in str(info.value)


def test_lower_level_approval_refused_for_senior_action(gate: PolicyGate) -> None:
    bridge = PolicyBridge(engine=gate.engine, store=gate.store, audit=gate.audit, clock=gate.clock)
    rid = bridge.submit_approval_request("isolate_host", "aid:host-99999", "analyst")
    bridge.approve(rid, "junior")
    r = req(device_id="host-99999", hostname="dc01", tags=("critical",), approval_id=rid)
    with pytest.raises(PolicyDenied, match="analyst level.*needs senior"):
        run(gate.authorize(r))


@pytest.mark.parametrize("action", ["wipe_host", "delete_file", "delete_user"])
def test_destructive_denied_with_rule(gate: PolicyGate, action: str) -> None:
    with pytest.raises(PolicyDenied) as info:
        run(gate.authorize(req(action)))
    assert info.value.rule == "deny_list"
    assert "is not allowed" in str(info.value)


def test_allowed_rule_and_outcome(store: Any, audit: MemoryAudit, clock: Clock) -> None:
    from tw_bridge.policy import parse_policy

    engine = PolicyEngine(parse_policy('[[rules]]\nname = "free"\ndecision = "allowed"\n'))
    gate = PolicyGate(engine=engine, store=store, audit=audit, clock=clock)
    result = run(gate.authorize(req("scan_host")))
    assert result.decision == "allowed" and result.request_id is None and result.rule == "free"
    run(gate.record_outcome(req("scan_host"), result, success=True, message="ok", trace_id="t-1"))
    last = audit.entries()[-1]
    assert last["event"] == "outcome" and last["result"] == "success" and last["trace_id"] == "t-1"


def test_expired_approval_files_new_request(gate: PolicyGate, clock: Clock) -> None:
    with pytest.raises(ApprovalRequired) as info:
        run(gate.authorize(req()))
    rid = info.value.request_id
    approve(gate, rid)
    clock.advance(3601)
    with pytest.raises(ApprovalRequired) as again:
        run(gate.authorize(req(approval_id=rid)))
    assert again.value.request_id != rid
    assert "has expired" in str(again.value)
    bridge = PolicyBridge(engine=gate.engine, store=gate.store, audit=gate.audit, clock=clock)
    assert bridge.check_approval_status(rid) == {"status": "expired", "decided_by": "soc-lead"}


def test_pending_expired_cannot_be_approved(gate: PolicyGate, clock: Clock) -> None:
    bridge = PolicyBridge(engine=gate.engine, store=gate.store, audit=gate.audit, clock=clock)
    rid = bridge.submit_approval_request("isolate_host", "workstation-001", "analyst")
    clock.advance(3600)
    assert bridge.check_approval_status(rid)["status"] == "expired"
    with pytest.raises(ValueError, match="expired"):
        bridge.approve(rid, "soc-lead")


def test_pending_approval_id_still_requires(gate: PolicyGate) -> None:
    with pytest.raises(ApprovalRequired) as info:
        run(gate.authorize(req()))
    rid = info.value.request_id
    with pytest.raises(ApprovalRequired, match="still pending") as again:
        run(gate.authorize(req(approval_id=rid)))
    assert again.value.request_id == rid


def test_denied_approval_refused(gate: PolicyGate) -> None:
    with pytest.raises(ApprovalRequired) as info:
        run(gate.authorize(req()))
    rid = info.value.request_id
    gate.store.decide(rid, approved=False, by="soc-lead", reason="false positive", now=gate.clock())
    with pytest.raises(PolicyDenied, match="denied by soc-lead: false positive"):
        run(gate.authorize(req(approval_id=rid)))


@pytest.mark.parametrize(
    ("other", "words"),
    [
        (dict(action="scan_host"), "is for isolate_host, not scan_host"),
        (dict(device_id="host-67890", hostname="server-001"), "is for workstation-001"),
    ],
)
def test_approval_for_other_host_or_action_refused(
    gate: PolicyGate, other: dict[str, Any], words: str
) -> None:
    with pytest.raises(ApprovalRequired) as info:
        run(gate.authorize(req()))
    rid = info.value.request_id
    approve(gate, rid)
    with pytest.raises(PolicyDenied, match=words):
        run(gate.authorize(req(approval_id=rid, **other)))
    # still usable for the right one
    assert run(gate.authorize(req(approval_id=rid))).decision == "approved"


def test_unknown_and_malformed_approval_ids(gate: PolicyGate) -> None:
    with pytest.raises(PolicyDenied, match="no approval request"):
        run(gate.authorize(req(approval_id="6f1c1f8e-8f0a-4a7e-9c5e-2f1d1d1d1d1d")))
    with pytest.raises(ValueError, match="not a UUID"):
        run(gate.authorize(req(approval_id="nope")))


def test_approver_callback(store: Any, audit: MemoryAudit, clock: Clock) -> None:
    seen: list[dict[str, Any]] = []

    def approver(payload: dict[str, Any]) -> str:
        seen.append(payload)
        return "soc-lead"

    gate = PolicyGate(engine=PolicyEngine(default_policy()), store=store, audit=audit,
                      approver=approver, clock=clock)
    result = run(gate.authorize(req()))
    assert result.decision == "approved" and result.approved_by == "soc-lead"
    assert seen[0]["hostname"] == "workstation-001" and seen[0]["approval_level"] == "analyst"
    rec = store.get(result.request_id)
    assert rec.used_at is not None and rec.decided_by == "soc-lead"


@pytest.mark.parametrize(("answer", "expected"), [(True, "approver"), (False, None), (None, None)])
def test_approver_answers(store: Any, clock: Clock, answer: Any, expected: str | None) -> None:
    gate = PolicyGate(engine=PolicyEngine(default_policy()), store=store, audit=MemoryAudit(),
                      approver=lambda _: answer, clock=clock)
    if expected is None:
        with pytest.raises(ApprovalRequired):
            run(gate.authorize(req()))
    else:
        assert run(gate.authorize(req())).approved_by == expected


def test_async_approver(store: Any, clock: Clock) -> None:
    async def approver(payload: dict[str, Any]) -> str:
        await asyncio.sleep(0)
        return "async-lead"

    gate = PolicyGate(engine=PolicyEngine(default_policy()), store=store, audit=MemoryAudit(),
                      approver=approver, clock=clock)
    assert run(gate.authorize(req())).approved_by == "async-lead"


def test_dry_run_never_files_consumes_or_raises(gate: PolicyGate, store: Any) -> None:
    called: list[Any] = []
    gate.approver = lambda p: called.append(p) or "x"
    r = run(gate.authorize(req(dry_run=True)))
    assert r.decision == "requires_approval" and r.approval_level == "analyst"
    assert store.list(status=None, now=gate.clock()) == [] and called == []
    r = run(gate.authorize(req("wipe_host", dry_run=True)))
    assert r.decision == "denied" and r.rule == "deny_list"
    gate.approver = None
    with pytest.raises(ApprovalRequired) as info:
        run(gate.authorize(req()))
    rid = info.value.request_id
    approve(gate, rid)
    r = run(gate.authorize(req(approval_id=rid, dry_run=True)))
    assert r.decision == "approved" and r.approved_by == "soc-lead"
    assert store.get(rid).used_at is None  # not consumed
    assert run(gate.authorize(req(approval_id=rid))).decision == "approved"
    r = run(gate.authorize(req(approval_id=rid, dry_run=True)))
    assert r.decision == "denied" and "already used" in (r.reason or "")


def test_kill_switch_env_file_api(gate: PolicyGate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bridge = PolicyBridge(engine=gate.engine, store=gate.store, audit=gate.audit, clock=gate.clock)
    gate.approver = lambda _: "lead"
    assert run(gate.authorize(req())).decision == "approved"

    monkeypatch.setenv("TW_KILL_SWITCH", "1")
    with pytest.raises(PolicyDenied, match="Kill switch is active.*TW_KILL_SWITCH") as info:
        run(gate.authorize(req()))
    assert info.value.rule == "kill_switch"
    assert bridge.is_kill_switch_active() is True
    monkeypatch.delenv("TW_KILL_SWITCH")

    flag = tmp_path / "stop"
    monkeypatch.setenv("TW_KILL_SWITCH_FILE", str(flag))
    assert bridge.is_kill_switch_active() is False
    flag.touch()
    with pytest.raises(PolicyDenied, match="flag file"):
        run(gate.authorize(req()))
    flag.unlink()

    bridge.activate_kill_switch("incident 42")
    with pytest.raises(PolicyDenied, match="incident 42"):
        run(gate.authorize(req("scan_host")))
    assert run(gate.authorize(req(dry_run=True))).decision == "denied"
    bridge.deactivate_kill_switch()
    assert bridge.is_kill_switch_active() is False
    assert run(gate.authorize(req())).decision == "approved"


def test_rate_limits_count_successful_executions(gate: PolicyGate, clock: Clock) -> None:
    gate.approver = lambda _: "lead"
    for i in range(5):
        r = req(device_id=f"h-{i}", hostname=f"ws-{i}")
        result = run(gate.authorize(r))
        run(gate.record_outcome(r, result, success=True, message="isolated"))
    with pytest.raises(PolicyDenied, match=r"hourly limit \(5\)") as info:
        run(gate.authorize(req()))
    assert info.value.rule == "rate_limit"
    assert run(gate.authorize(req(dry_run=True))).rule == "rate_limit"
    # other actions are not limited
    assert run(gate.authorize(req("scan_host"))).decision == "approved"
    # a failed action gives its slot back; the daily limit counts all 20
    def ok(i: int) -> None:
        r = req(device_id=f"d-{i}", hostname=f"wd-{i}")
        run(gate.record_outcome(r, run(gate.authorize(r)), success=True, message="isolated"))

    for batch in (5, 5, 4):
        clock.advance(3601)
        for i in range(batch):
            ok(i)
    failing = req(device_id="f", hostname="f")
    result = run(gate.authorize(failing))
    run(gate.record_outcome(failing, result, success=False, message="EDR said no",
                            error=RuntimeError("boom")))
    ok(99)  # the 20th execution today
    clock.advance(3601)
    with pytest.raises(PolicyDenied, match=r"daily limit \(20\)"):
        run(gate.authorize(req()))
    clock.advance(86400)
    assert run(gate.authorize(req())).decision == "approved"


def _race(gate: PolicyGate, rid: str, n: int = 8) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        try:
            out: Any = run(gate.authorize(req(approval_id=rid)))
        except Exception as exc:  # noqa: BLE001
            out = exc
        with lock:
            results.append(out)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_threads_racing_on_one_approval(backend: str, tmp_path: Path, clock: Clock) -> None:
    if backend == "sqlite":
        store: Any = SqliteStore(tmp_path / "p.db")
        audit: Any = SqliteAudit(tmp_path / "p.db", clock)
    else:
        from tw_bridge.policy import MemoryStore

        store, audit = MemoryStore(), MemoryAudit(clock)
    gate = PolicyGate(engine=PolicyEngine(default_policy()), store=store, audit=audit, clock=clock)
    with pytest.raises(ApprovalRequired) as info:
        run(gate.authorize(req()))
    rid = info.value.request_id
    approve(gate, rid)
    results = _race(gate, rid)
    wins = [r for r in results if isinstance(r, GateResult)]
    losses = [r for r in results if isinstance(r, PolicyDenied)]
    assert len(wins) == 1 and len(losses) == len(results) - 1, results
    # The rate slot is reserved before the approval is consumed (so a rate-limit denial
    # never burns an approval); racers beyond the hourly budget are denied by the limit.
    assert all("already used" in str(e) or "Rate limit" in str(e) for e in losses), [
        str(e) for e in losses
    ]
    assert audit.verify().ok
    store.close()
    audit.close()


def test_two_tasks_racing(gate: PolicyGate) -> None:
    with pytest.raises(ApprovalRequired) as info:
        run(gate.authorize(req()))
    rid = info.value.request_id
    approve(gate, rid)

    async def both() -> list[Any]:
        return list(await asyncio.gather(
            gate.authorize(req(approval_id=rid)), gate.authorize(req(approval_id=rid)),
            return_exceptions=True,
        ))

    results = run(both())
    assert sum(isinstance(r, GateResult) for r in results) == 1
    assert sum(isinstance(r, PolicyDenied) for r in results) == 1


def test_every_decision_is_audited(gate: PolicyGate, audit: MemoryAudit) -> None:
    with pytest.raises(PolicyDenied):
        run(gate.authorize(req("wipe_host")))
    with pytest.raises(ApprovalRequired) as info:
        run(gate.authorize(req()))
    approve(gate, info.value.request_id)
    result = run(gate.authorize(req(approval_id=info.value.request_id)))
    run(gate.record_outcome(req(), result, success=True, message="done", trace_id="abc"))
    entries = audit.entries()
    assert [e["decision"] for e in entries] == ["denied", "requires_approval", "approved", "approved"]
    assert entries[2]["approver"] == "soc-lead"
    assert entries[3]["result"] == "success" and entries[3]["trace_id"] == "abc"
    for e in entries:
        assert e["device_id"] == "host-12345" and e["hostname"] == "workstation-001"
        assert e["time"].endswith("Z")
    assert audit.verify().ok


def test_assisted_mode_requires_approval_for_allowed(store: Any, clock: Clock) -> None:
    from tw_bridge.policy import parse_policy

    policy = parse_policy('mode = "assisted"\n[[rules]]\nname = "free"\ndecision = "allowed"\n')
    gate = PolicyGate(engine=PolicyEngine(policy), store=store, audit=MemoryAudit(), clock=clock)
    with pytest.raises(ApprovalRequired) as info:
        run(gate.authorize(req("scan_host")))
    assert "assisted" in str(info.value)


def test_default_gate_uses_process_singletons(monkeypatch: pytest.MonkeyPatch) -> None:
    g1, g2 = PolicyGate(), PolicyGate()
    assert g1.store is g2.store and g1.audit is g2.audit
    bridge = PolicyBridge()
    assert bridge.store is g1.store
    with pytest.raises(ApprovalRequired) as info:
        run(g1.authorize(req()))
    rid = info.value.request_id
    bridge.approve(rid, "soc-lead")
    assert run(g2.authorize(req(approval_id=rid))).approved_by == "soc-lead"
    # a request filed through PolicyBridge with a hostname is usable by the gate
    rid2 = bridge.submit_approval_request("scan_host", "WORKSTATION-001", "analyst")
    bridge.approve(rid2, "lead")
    assert run(g1.authorize(req("scan_host", approval_id=rid2))).decision == "approved"
