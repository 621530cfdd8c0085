from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tw_bridge._errors import ConfigError
from tw_bridge.policy import PolicyBridge

from .conftest import Clock


def test_check_action_shapes() -> None:
    b = PolicyBridge()
    assert b.check_action("isolate_host", "workstation-001", 0.95) == {
        "decision": "requires_approval", "reason": "Action requires analyst approval",
        "approval_level": "analyst",
    }
    assert b.check_action("wipe_host", "workstation-001", 0.99) == {
        "decision": "denied", "reason": "Action 'wipe_host' is not allowed", "approval_level": None,
    }
    assert b.check_action("create_ticket", "x", 0.95) == {
        "decision": "allowed", "reason": None, "approval_level": None,
    }
    # the older engine: strictly above 0.9; unknown actions default to analyst approval
    assert b.check_action("create_ticket", "x", 0.9)["decision"] == "requires_approval"
    assert b.check_action("create_ticket", "x", 1)["decision"] == "allowed"
    assert b.check_action("block_ip", "10.0.0.1", 0.99)["approval_level"] == "analyst"
    assert b.check_action("isolate_host", "dc01", 0.9, tags=["domain-controller"])[
        "approval_level"] == "senior"
    for d in (b.check_action("scan_host", "h", 0.5),):
        assert set(d) == {"decision", "reason", "approval_level"}
        json.dumps(d)
    with pytest.raises(TypeError):
        b.check_action("scan_host", "h", "high")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        b.check_action("scan_host", "", 0.5)


def test_kill_switch_default_and_api(monkeypatch: pytest.MonkeyPatch) -> None:
    b = PolicyBridge()
    assert b.is_kill_switch_active() is False
    b.activate_kill_switch("drill")
    assert PolicyBridge().is_kill_switch_active() is True  # shared by the process store
    assert b.check_action("create_ticket", "x", 0.99) == {
        "decision": "denied", "reason": "Kill switch is active - all automation halted",
        "approval_level": None,
    }
    b.deactivate_kill_switch()
    assert b.is_kill_switch_active() is False
    monkeypatch.setenv("TW_KILL_SWITCH", "1")
    assert b.is_kill_switch_active() is True


@pytest.mark.parametrize("mode", ["assisted", "supervised", "autonomous"])
def test_operation_mode(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert PolicyBridge().get_operation_mode() == "supervised"
    monkeypatch.setenv("TW_OPERATION_MODE", mode)
    assert PolicyBridge().get_operation_mode() == mode
    assert PolicyBridge(mode="supervised").get_operation_mode() == "supervised"
    with pytest.raises(ConfigError):
        PolicyBridge(mode="manual")


def test_approval_lifecycle_shapes(clock: Clock) -> None:
    b = PolicyBridge(clock=clock)
    rid = b.submit_approval_request("isolate_host", "server-001", "Senior")
    assert str(uuid.UUID(rid)) == rid
    assert b.check_approval_status(rid) == {"status": "pending", "decided_by": None}
    with pytest.raises(ValueError, match="Invalid approval level"):
        b.submit_approval_request("isolate_host", "server-001", "boss")
    with pytest.raises(ValueError, match="Invalid request_id"):
        b.check_approval_status("not-a-uuid")
    assert b.check_approval_status(str(uuid.uuid4())) == {"status": "expired", "decided_by": None}
    rec = b.approve(rid, "soc-lead")
    assert rec["status"] == "approved" and rec["decided_by"] == "soc-lead"
    assert b.check_approval_status(rid) == {"status": "approved", "decided_by": "soc-lead"}
    with pytest.raises(ValueError, match="already approved"):
        b.deny(rid, "other", "no")
    rid2 = b.submit_approval_request("scan_host", "aid:abc123", "analyst")
    rec2 = b.deny(rid2, "soc-lead", "false positive")
    assert rec2["status"] == "denied" and rec2["decision_reason"] == "false positive"
    assert rec2["device_id"] == "abc123" and rec2["hostname"] is None
    assert b.check_approval_status(rid2) == {"status": "denied", "decided_by": "soc-lead"}
    rid3 = b.submit_approval_request("scan_host", "h", "manager")
    clock.advance(3600)
    all_ = b.list_approvals()
    assert [a["id"] for a in all_] == [rid, rid2, rid3]
    assert [a["id"] for a in b.list_approvals("expired")] == [rid, rid3]
    assert [a["id"] for a in b.list_approvals("denied")] == [rid2]
    json.dumps(all_)
    for a in all_:
        assert a["created_at"].endswith("Z")
    with pytest.raises(ValueError):
        b.list_approvals("weird")
    assert b.verify_audit()["ok"] is True


def test_sqlite_db_keyword(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    a = PolicyBridge(db=db)
    rid = a.submit_approval_request("isolate_host", "ws1", "analyst")
    a.approve(rid, "lead")
    assert PolicyBridge(db=db).check_approval_status(rid)["status"] == "approved"
    assert PolicyBridge(db=db).audit.verify().ok
