"""The policy gate in front of EDRBridge's actions, in mock mode (both caller groups)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests import contract
from tw_bridge import (
    ApprovalRequired,
    ConfigError,
    EDRBridge,
    MockConnector,
    PolicyBridge,
    PolicyDenied,
)

ACTIONS = ["isolate_host", "unisolate_host", "scan_host"]


def _prepare(connector: MockConnector, action: str) -> None:
    if action == "unisolate_host":
        import attrs

        from tw_bridge import IsolationStatus

        h = next(h for h in connector.hosts if h.hostname == "workstation-001")
        connector.add_host(attrs.evolve(h, isolation_status=IsolationStatus.ISOLATED))


@pytest.mark.parametrize("action", ACTIONS)
def test_requires_approval_then_approved_id_then_replay_refused(action: str) -> None:
    connector = MockConnector()
    _prepare(connector, action)
    policy = PolicyBridge()
    with EDRBridge(connector=connector) as b:
        call = getattr(b, action)
        with pytest.raises(ApprovalRequired) as err:
            call("workstation-001")
        exc = err.value
        assert exc.approval_level == "analyst"
        assert "tw-edr approvals approve" in str(exc) and exc.request_id in str(exc)
        assert connector.actions == []  # nothing sent
        assert policy.check_approval_status(exc.request_id) == {"status": "pending", "decided_by": None}
        policy.approve(exc.request_id, by="soc-lead")
        assert policy.check_approval_status(exc.request_id)["status"] == "approved"
        result = call("workstation-001", approval_id=exc.request_id)
        contract.check_action(result, action)
        assert result["success"] is True
        assert result["approval"] == {"decision": "approved", "request_id": exc.request_id,
                                      "approved_by": "soc-lead"}
        assert connector.actions == [(action, "host-12345")]
        with pytest.raises((PolicyDenied, ApprovalRequired)):
            call("workstation-001", approval_id=exc.request_id)  # single use
        assert len(connector.actions) == 1


def test_critical_targets_need_senior_approval() -> None:
    with EDRBridge("mock") as b:
        with pytest.raises(ApprovalRequired) as err:
            b.isolate_host("dc01")
        assert err.value.approval_level == "senior"
        with pytest.raises(ApprovalRequired) as err2:
            b.scan_host("server-001")
        assert err2.value.approval_level == "senior"


def test_approval_for_another_host_or_action_is_refused() -> None:
    connector = MockConnector()
    policy = PolicyBridge()
    with EDRBridge(connector=connector) as b:
        with pytest.raises(ApprovalRequired) as err:
            b.isolate_host("workstation-001")
        policy.approve(err.value.request_id, by="soc-lead")
        with pytest.raises((PolicyDenied, ApprovalRequired)):
            b.isolate_host("workstation-002", approval_id=err.value.request_id)
        with pytest.raises((PolicyDenied, ApprovalRequired)):
            b.scan_host("workstation-001", approval_id=err.value.request_id)
        assert connector.actions == []
        # still usable for what it was granted for
        assert b.isolate_host("workstation-001", approval_id=err.value.request_id)["success"]


def test_two_threads_racing_on_one_approval_act_once() -> None:
    connector = MockConnector()
    policy = PolicyBridge()
    with EDRBridge(connector=connector) as b:
        with pytest.raises(ApprovalRequired) as err:
            b.scan_host("workstation-002")
        policy.approve(err.value.request_id, by="soc-lead")
        barrier = threading.Barrier(2)
        outcomes: list[object] = []

        def go() -> None:
            barrier.wait()
            try:
                outcomes.append(b.scan_host("workstation-002", approval_id=err.value.request_id))
            except (PolicyDenied, ApprovalRequired) as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=go) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sum(isinstance(o, dict) for o in outcomes) == 1
    assert connector.actions == [("scan_host", "host-12346")]


def test_approver_callback_approves_and_is_recorded() -> None:
    seen: list[dict] = []

    def approver(request: dict) -> str:
        seen.append(request)
        return "alice"

    with EDRBridge("mock", approver=approver) as b:
        r = b.isolate_host("workstation-001")
    assert r["approval"]["decision"] == "approved" and r["approval"]["approved_by"] == "alice"
    assert seen and seen[0]["action"] == "isolate_host" and seen[0]["device_id"] == "host-12345"


def test_approver_that_refuses_files_a_request() -> None:
    connector = MockConnector(approver=lambda r: None)
    with EDRBridge(connector=connector) as b:
        with pytest.raises(ApprovalRequired):
            b.isolate_host("workstation-001")
    assert connector.actions == []


def test_kill_switch_denies_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_KILL_SWITCH", "1")
    connector = MockConnector(approver=lambda r: "alice")
    with EDRBridge(connector=connector) as b:
        for action in ACTIONS:
            with pytest.raises(PolicyDenied, match="[Kk]ill switch"):
                getattr(b, action)("workstation-001")
    assert connector.actions == []
    assert PolicyBridge().is_kill_switch_active() is True


def test_kill_switch_through_the_api() -> None:
    connector = MockConnector(approver=lambda r: "alice")
    policy = PolicyBridge()
    with EDRBridge(connector=connector) as b:
        policy.activate_kill_switch("incident drill")
        with pytest.raises(PolicyDenied):
            b.scan_host("workstation-001")
        policy.deactivate_kill_switch()
        assert b.scan_host("workstation-001")["success"]


def test_rate_limit_five_isolations_per_hour() -> None:
    connector = MockConnector(with_sample_data=False, approver=lambda r: "alice")
    for i in range(7):
        connector.add_host(id=f"h-{i}", hostname=f"ws-{i}", platform="Windows")
    with EDRBridge(connector=connector) as b:
        for i in range(5):
            assert b.isolate_host(f"ws-{i}")["success"]
        with pytest.raises(PolicyDenied, match="[Rr]ate limit"):
            b.isolate_host("ws-5")
    assert len(connector.actions) == 5


def test_policy_file_allow_and_deny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "policy.toml"
    f.write_text(
        '[[rules]]\nname = "no-touch-servers"\naction_patterns = ["*"]\n'
        'target_patterns = ["^server-"]\ndecision = "denied"\nreason = "servers are off limits"\n\n'
        '[[rules]]\nname = "scan-freely"\naction = "scan_host"\ndecision = "allowed"\n'
    )
    monkeypatch.setenv("TW_POLICY_FILE", str(f))
    connector = MockConnector()
    with EDRBridge(connector=connector) as b:
        with pytest.raises(PolicyDenied, match="off limits"):
            b.scan_host("server-001")
        r = b.scan_host("workstation-001")
        assert r["success"] and r["approval"]["decision"] == "allowed"
    assert connector.actions == [("scan_host", "host-12345")]


def test_bad_policy_file_fails_at_construction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "policy.toml"
    f.write_text('[[rules]]\nname = "x"\ndecision = "maybe"\n')
    monkeypatch.setenv("TW_POLICY_FILE", str(f))
    with pytest.raises(ConfigError) as err:
        EDRBridge("mock")
    assert "policy.toml" in str(err.value) and "line" in str(err.value)


def test_dry_run_reports_without_acting() -> None:
    connector = MockConnector()
    with EDRBridge(connector=connector) as b:
        r = b.isolate_host("dc01", dry_run=True)
    contract.check_action(r, "isolate_host")
    assert r["success"] is False and r["status"] == "dry_run"
    assert r["host_id"] == "host-99999" and r["approval"]["decision"] == "requires_approval"
    assert r["request"]["device_id"] == "host-99999"
    assert connector.actions == []
    assert PolicyBridge().list_approvals() == []  # a dry run files nothing


def test_every_decision_and_outcome_is_audited() -> None:
    connector = MockConnector(approver=lambda r: "alice")
    with EDRBridge(connector=connector) as b:
        b.isolate_host("workstation-001")
        with pytest.raises(RuntimeError, match="not isolated"):
            b.unisolate_host("workstation-002")  # fails at the EDR: the outcome is audited
    policy = PolicyBridge()
    report = policy.verify_audit()
    assert report["ok"] is True
    entries = list(policy.audit.entries())
    outcomes = [e for e in entries if e.get("event") == "outcome"]
    assert [(e["action"], e["result"]) for e in outcomes] == [
        ("isolate_host", "success"), ("unisolate_host", "failure")]
