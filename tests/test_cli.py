"""tw-edr: output, exit codes, and the approval flow across processes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tw_bridge._cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("TW_")}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "tw_bridge", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, env=full)


def test_host_lookup_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["host", "workstation-001"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["host_id"] == "host-12345" and out["platform"] == "Windows"


def test_every_lookup_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["hosts", "dc01", "nope"], ["search", "critical", "--limit", "1"],
                 ["detections", "workstation-001"], ["processes", "workstation-001"],
                 ["connections", "workstation-001"], ["health"]):
        assert main(argv) == 0, argv
        json.loads(capsys.readouterr().out)
    assert main(["hosts", "dc01", "nope"]) == 0
    assert json.loads(capsys.readouterr().out)[1] is None


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "critical", "--table"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["HOSTNAME", "ID"]
    assert {line.split()[0] for line in out[1:]} == {"dc01", "server-001"}


def test_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["host", "no-such-host"]) == 1
    assert "Host not found" in capsys.readouterr().err
    assert main(["host", "bad host"]) == 2
    assert main(["--mode", "splunk", "host", "dc01"]) == 2
    assert "Supported" in capsys.readouterr().err
    assert main(["host", "dc01", "--mode", "crowdstrike"]) == 2  # no credentials
    assert "TW_CROWDSTRIKE_CLIENT_ID" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2


def test_dry_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["isolate", "dc01", "--dry-run"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "dry_run" and out["approval"]["decision"] == "requires_approval"


def test_confirm_needs_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["isolate", "dc01", "--confirm"]) == 2
    assert "terminal" in capsys.readouterr().err


def test_approval_flow_across_processes(tmp_path: Path) -> None:
    env = {"TW_POLICY_DB": str(tmp_path / "policy.db")}
    first = run("isolate", "workstation-001", env=env)
    assert first.returncode == 1
    match = re.search(r"approval_id=([0-9a-f-]{36})", first.stderr)
    assert match, first.stderr
    rid = match.group(1)
    pending = run("approvals", "list", env=env)
    assert pending.returncode == 0 and rid in pending.stdout
    approved = run("approvals", "approve", rid, "--by", "soc-lead", env=env)
    assert approved.returncode == 0, approved.stderr
    done = run("isolate", "workstation-001", "--approval-id", rid, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["success"] is True and result["approval"]["approved_by"] == "soc-lead"
    replay = run("isolate", "workstation-001", "--approval-id", rid, env=env)
    assert replay.returncode == 1
    audit = run("audit", "--verify", env=env)
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_python_dash_m_and_console_script_agree() -> None:
    proc = run("host", "aid:abc123")
    assert proc.returncode == 0 and json.loads(proc.stdout)["hostname"] == "example-host"
