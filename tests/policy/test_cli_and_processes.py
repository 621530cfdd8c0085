from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tw_bridge.policy import PolicyBridge
from tw_bridge.policy._cli import add_policy_commands, main

ROOT = Path(__file__).resolve().parents[2]

WAITER = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from tw_bridge._errors import ApprovalRequired
    from tw_bridge.policy import ActionRequest, PolicyBridge, PolicyGate

    req = ActionRequest("isolate_host", "host-12345", "workstation-001", (), "mock")
    gate = PolicyGate()
    try:
        asyncio.run(gate.authorize(req))
        raise SystemExit("expected ApprovalRequired")
    except ApprovalRequired as exc:
        rid = exc.request_id
    print(rid, flush=True)
    bridge = PolicyBridge()
    deadline = time.monotonic() + 60
    while bridge.check_approval_status(rid)["status"] == "pending":
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for approval")
        time.sleep(0.05)
    result = asyncio.run(gate.authorize(
        ActionRequest("isolate_host", "host-12345", "workstation-001", (), "mock", approval_id=rid)
    ))
    print(json.dumps(result.as_approval_dict()), flush=True)
    """
)


def _env(db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TW_")}
    env["TW_POLICY_DB"] = str(db)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_two_processes_share_sqlite_store(tmp_path: Path) -> None:
    db = tmp_path / "policy.db"
    env = _env(db)
    waiter = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", WAITER], env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert waiter.stdout is not None
        rid = waiter.stdout.readline().strip()
        assert rid, waiter.stderr.read() if waiter.stderr else ""
        approver = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "tw_bridge.policy._cli", "approvals", "approve", rid,
             "--by", "soc-lead"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        )
        assert approver.returncode == 0, approver.stderr
        assert json.loads(approver.stdout)["decided_by"] == "soc-lead"
        out, err = waiter.communicate(timeout=60)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.communicate()
    assert waiter.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1]) == {
        "decision": "approved", "request_id": rid, "approved_by": "soc-lead",
    }
    # the used approval and the whole flow are in the shared db
    bridge = PolicyBridge(db=db)
    rec = bridge.get_approval(rid)
    assert rec["used_at"] is not None
    assert bridge.audit.verify().ok
    decisions = [e.get("decision") for e in bridge.audit.entries()]
    assert decisions == ["requires_approval", "approved", "approved"]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, object]:
    code = main(argv)
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_cli_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "p.db")
    b = PolicyBridge(db=db)
    r1 = b.submit_approval_request("isolate_host", "ws1", "analyst")
    r2 = b.submit_approval_request("scan_host", "ws2", "senior")

    code, listed = run_cli(["approvals", "list", "--db", db], capsys)
    assert code == 0 and [a["id"] for a in listed] == [r1, r2]  # type: ignore[union-attr]
    code, shown = run_cli(["approvals", "show", r1, "--db", db], capsys)
    assert code == 0 and shown["action"] == "isolate_host"  # type: ignore[index]
    code, approved = run_cli(["approvals", "approve", r1, "--by", "lead", "--db", db], capsys)
    assert code == 0 and approved["status"] == "approved"  # type: ignore[index]
    code, denied = run_cli(
        ["approvals", "deny", r2, "--by", "lead", "--reason", "fp", "--db", db], capsys
    )
    assert code == 0 and denied["decision_reason"] == "fp"  # type: ignore[index]
    code, again = run_cli(["approvals", "approve", r2, "--by", "lead", "--db", db], capsys)
    assert code == 1 and "already denied" in again["error"]  # type: ignore[index]
    code, bad = run_cli(["approvals", "show", "xyz", "--db", db], capsys)
    assert code == 1 and "Invalid request_id" in bad["error"]  # type: ignore[index]
    code, pending = run_cli(["approvals", "list", "--status", "pending", "--db", db], capsys)
    assert pending == []

    code, entries = run_cli(["audit", "--db", db], capsys)
    assert code == 0 and len(entries) == 4  # type: ignore[arg-type]
    code, last = run_cli(["audit", "--db", db, "--limit", "1"], capsys)
    assert len(last) == 1  # type: ignore[arg-type]
    code, verified = run_cli(["audit", "--verify", "--db", db], capsys)
    assert code == 0 and verified["ok"] is True  # type: ignore[index]
    b.store.close()
    b.audit.close()
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM audit WHERE seq = 2")
    conn.commit()
    conn.close()
    code, verified = run_cli(["audit", "--verify", "--db", db], capsys)
    assert code == 1 and verified["ok"] is False and verified["broken_seq"] == 3  # type: ignore[index]


def test_add_policy_commands_on_foreign_parser() -> None:
    parser = argparse.ArgumentParser(prog="tw-edr")
    sub = parser.add_subparsers(dest="command")
    add_policy_commands(sub)
    args = parser.parse_args(["approvals", "approve", "x", "--by", "me"])
    assert callable(args.func) and args.by == "me"
    args = parser.parse_args(["audit", "--verify"])
    assert args.verify is True
