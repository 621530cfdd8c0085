"""The public surface changes only on purpose."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import tw_bridge

EXPECTED = {
    "ActionConflict", "ActionResult", "AmbiguousHost", "ApprovalInfo", "ApprovalRequired",
    "AuthenticationError", "BridgeError", "ConfigError", "ConnectorError", "CrowdStrikeConfig",
    "CrowdStrikeConnector", "Detection", "EDRBridge", "EDRConnector", "HealthState",
    "HealthStatus", "HostInfo", "HostNotFound", "InvalidResponse", "IsolationStatus",
    "MockConnector", "NetworkConnection", "PermissionDenied", "PolicyBridge", "PolicyDenied",
    "ProcessInfo", "RateLimited", "Reachability", "RequestTimeout", "Severity", "__version__",
    "converter", "to_dict",
}


def test_all_is_pinned() -> None:
    assert set(tw_bridge.__all__) == EXPECTED
    assert len(tw_bridge.__all__) == len(set(tw_bridge.__all__))


def test_error_tree() -> None:
    t = tw_bridge
    assert issubclass(t.ConfigError, ValueError)
    assert issubclass(t.ConnectorError, RuntimeError)
    assert issubclass(t.HostNotFound, t.ConnectorError) and issubclass(t.HostNotFound, LookupError)
    for name in ("AmbiguousHost", "AuthenticationError", "PermissionDenied", "RateLimited",
                 "RequestTimeout", "InvalidResponse", "PolicyDenied", "ApprovalRequired"):
        assert issubclass(getattr(t, name), t.ConnectorError), name
    assert str(t.ConnectorError("x")) == "Connector error: x"
    assert str(t.HostNotFound("Connector error: y")) == "Connector error: y"
    e = t.RateLimited("slow down", retry_after=2.5)
    assert e.retry_after == 2.5
    e2 = t.ApprovalRequired("need", request_id="r", approval_level="senior")
    assert (e2.request_id, e2.approval_level) == ("r", "senior")


def test_errors_pickle() -> None:
    import pickle

    e = tw_bridge.RateLimited("x", retry_after=3, status=429, trace_id="t")
    e2 = pickle.loads(pickle.dumps(e))
    assert type(e2) is tw_bridge.RateLimited and e2.retry_after == 3 and str(e2) == str(e)


def test_py_typed_is_shipped() -> None:
    assert (Path(tw_bridge.__file__).parent / "py.typed").exists()


@pytest.mark.timeout(300)
def test_stubs_match_the_runtime() -> None:
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "tw_bridge", "--mypy-config-file",
         str(root / "stubs" / "stubtest.ini"), "--allowlist", str(root / "stubs" / "allowlist.txt"),
         "--ignore-missing-stub"],
        capture_output=True, text=True, cwd=root, timeout=280,
        env={**__import__("os").environ, "MYPYPATH": str(root / "stubs"),
             "PYTHONPATH": str(root)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
