from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tw_bridge.policy import JsonlAudit, MemoryAudit, SqliteAudit
from tw_bridge.policy._audit import GENESIS, entry_hash, get_default_audit


def fill(trail: Any, n: int = 4) -> None:
    for i in range(n):
        trail.append({"event": "decision", "action": "isolate_host", "device_id": f"h{i}",
                      "decision": "denied" if i % 2 else "allowed", "approver": None})


@pytest.mark.parametrize("kind", ["memory", "sqlite", "jsonl"])
def test_chain_verifies(kind: str, tmp_path: Path) -> None:
    trail: Any = {"memory": lambda: MemoryAudit(), "sqlite": lambda: SqliteAudit(tmp_path / "a.db"),
                  "jsonl": lambda: JsonlAudit(tmp_path / "a.jsonl")}[kind]()
    assert trail.verify().ok and trail.verify().entries == 0
    fill(trail)
    entries = trail.entries()
    assert [e["seq"] for e in entries] == [1, 2, 3, 4]
    assert entries[0]["prev_hash"] == GENESIS
    assert entries[1]["prev_hash"] == entries[0]["hash"]
    body = {k: v for k, v in entries[2].items() if k not in ("hash", "prev_hash")}
    assert entries[2]["hash"] == entry_hash(entries[1]["hash"], body)
    result = trail.verify()
    assert result.ok and result.entries == 4
    json.dumps(entries)
    trail.close()


def test_sqlite_detects_edit_and_deletion(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    trail = SqliteAudit(db)
    fill(trail, 5)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE audit SET body = replace(body, '\"denied\"', '\"allowed\"') WHERE seq = 2")
    conn.commit()
    r = trail.verify()
    assert not r.ok and r.broken_seq == 2 and "edited" in (r.reason or "")

    trail2 = SqliteAudit(tmp_path / "b.db")
    fill(trail2, 5)
    conn2 = sqlite3.connect(tmp_path / "b.db")
    conn2.execute("DELETE FROM audit WHERE seq = 3")
    conn2.commit()
    r = trail2.verify()
    assert not r.ok and r.broken_seq == 4 and "deleted" in (r.reason or "")

    trail3 = SqliteAudit(tmp_path / "c.db")
    fill(trail3, 5)
    conn3 = sqlite3.connect(tmp_path / "c.db")
    conn3.execute("DELETE FROM audit WHERE seq = 5")
    conn3.commit()
    r = trail3.verify()
    assert not r.ok and "newest entries were deleted" in (r.reason or "")
    for c in (conn, conn2, conn3):
        c.close()
    for t in (trail, trail2, trail3):
        t.close()


def test_jsonl_detects_edit_and_deletion(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    trail = JsonlAudit(path)
    fill(trail, 5)
    lines = path.read_text().splitlines()
    edited = lines.copy()
    edited[1] = edited[1].replace('"denied"', '"allowed"')
    path.write_text("\n".join(edited) + "\n")
    r = trail.verify()
    assert not r.ok and r.broken_seq == 2
    deleted = lines[:2] + lines[3:]
    path.write_text("\n".join(deleted) + "\n")
    r = trail.verify()
    assert not r.ok and r.broken_seq == 4
    path.write_text("\n".join(lines) + "\n")
    assert trail.verify().ok
    trail.append({"event": "x"})
    assert trail.entries()[-1]["seq"] == 6 and trail.verify().ok


def test_memory_detects_tamper() -> None:
    trail = MemoryAudit()
    fill(trail)
    trail._entries[1]["decision"] = "allowed"
    assert trail.verify().broken_seq == 2
    del trail._entries[1]
    assert not trail.verify().ok


def test_default_audit_selection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(get_default_audit(), MemoryAudit)
    assert get_default_audit() is get_default_audit()
    monkeypatch.setenv("TW_AUDIT_LOG", str(tmp_path / "x.jsonl"))
    assert isinstance(get_default_audit(), JsonlAudit)
    monkeypatch.setenv("TW_POLICY_DB", str(tmp_path / "x.db"))
    assert isinstance(get_default_audit(), SqliteAudit)
