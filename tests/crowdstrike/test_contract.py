"""Requests match FalconPy's endpoint tables (method, path, query parameter names).

Every integration test checks its own requests on teardown (``emu_factory`` in
conftest.py); these tests pin the oracle itself and the connector's operation table.
"""

from __future__ import annotations

from types import SimpleNamespace

from tw_bridge.connectors.crowdstrike._operations import OPS

from .conftest import contract_violations, falconpy_ops


def test_operation_table_matches_falconpy() -> None:
    ops = falconpy_ops()
    for op in OPS.values():
        ids = [name for name, _ in ops.get((op.method, op.path), [])]
        assert op.id in ids, f"{op.id}: {op.method} {op.path} not in FalconPy ({ids})"


def test_oracle_flags_unknown_paths_and_params() -> None:
    good = SimpleNamespace(method="GET", path="/devices/combined/devices/v1",
                           query={"filter": ["x"], "limit": ["1"], "offset": ["t"]})
    bad_param = SimpleNamespace(method="GET", path="/devices/combined/devices/v1",
                                query={"status_filter": ["x"]})
    bad_path = SimpleNamespace(method="GET", path="/devices/entities/containment/v1", query={})
    admin_tier = SimpleNamespace(method="POST", path="/real-time-response/entities/command/v1",
                                 query={})
    assert contract_violations([good, admin_tier]) == []
    assert len(contract_violations([bad_param, bad_path])) == 2


def test_no_admin_or_detects_operations_used() -> None:
    paths = {op.path for op in OPS.values()}
    assert not any("admin-command" in p or p.startswith("/detects/") for p in paths)
