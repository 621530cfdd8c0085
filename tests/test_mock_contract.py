"""The contract's tables, pinned through the facade in mock mode, for both caller groups."""

from __future__ import annotations

import json

import pytest

from tests import contract
from tests.conftest import approve_all
from tw_bridge import EDRBridge, HostNotFound


# -- documented callers (the EDR Connector documentation's Python example) -------------
def test_documentation_example_runs_on_the_mock() -> None:
    bridge = EDRBridge("mock", approver=approve_all)
    try:
        host = bridge.get_host("aid:abc123")
        assert host["hostname"] == "example-host"
        assert host["platform"] == "Windows"
        detections = bridge.get_detections("aid:abc123")
        assert detections
        for d in detections:
            assert isinstance(d["severity"], str) and isinstance(d["description"], str)
        result = bridge.isolate_host("aid:abc123")
        assert result["success"] is True
        contract.check_action(result, "isolate_host")
    finally:
        bridge.close()


def test_every_method_returns_the_contract_shapes(mock_bridge: EDRBridge) -> None:
    b = mock_bridge
    for h in ("workstation-001", "aid:host-12345", "host-12345", "hostname:WORKSTATION-001"):
        host = b.get_host(h)
        contract.check_host(host)
        assert host["id"] == "host-12345"
    contract.check_host(b.get_host_info("dc01"))
    hosts = b.get_hosts(["workstation-001", "nope-host", "aid:host-99999"])
    assert [h and h["id"] for h in hosts] == ["host-12345", None, "host-99999"]
    for h in hosts:
        if h is not None:
            contract.check_host(h)
    found = b.search_hosts("workstation")
    assert {h["hostname"] for h in found} == {"workstation-001", "workstation-002"}
    for h in found:
        contract.check_host(h)
    dets = b.get_detections("workstation-001")
    assert len(dets) == 2
    assert [d["timestamp"] for d in dets] == sorted((d["timestamp"] for d in dets), reverse=True)
    for d in dets:
        contract.check_detection(d)
    for p in b.get_processes("workstation-001"):
        contract.check_process(p)
    for c in b.get_network_connections("workstation-001"):
        contract.check_connection(c)
    contract.check_health(b.health_check(), "mock")
    assert b.get_connector_type() == "mock"
    for action, call in (
        ("isolate_host", b.isolate_host),
        ("unisolate_host", b.unisolate_host),
        ("scan_host", b.scan_host),
    ):
        r = call("workstation-002")
        contract.check_action(r, action)
        assert r["success"] is True
        assert r["host_id"] == "host-12346" and r["hostname"] == "workstation-002"
        assert r["approval"]["decision"] == "approved"
        assert r["approval"]["approved_by"] == "test-analyst"
        json.dumps(r)


def test_isolation_is_stateful(mock_bridge: EDRBridge) -> None:
    b = mock_bridge
    r = b.isolate_host("server-001")
    assert r["status"] == "isolated" and r["rollback"] == "unisolate_host"
    h = b.get_host("server-001")
    assert h["isolated"] is True and h["isolation_status"] == "isolated"
    assert h["status"] == "online"  # reachability is not containment
    with pytest.raises(RuntimeError, match="already isolated"):
        b.isolate_host("server-001")
    r = b.unisolate_host("server-001")
    assert r["status"] == "normal" and r["rollback"] == "isolate_host"
    assert b.get_host("server-001")["isolated"] is False
    with pytest.raises(RuntimeError, match="not isolated"):
        b.unisolate_host("server-001")
    s = b.scan_host("server-001")
    assert s["status"] == "scan_pending" and s["rollback"] is None


# -- existing tw_bridge callers (the older native module's API) --------------------------
def test_older_api() -> None:
    bridge = EDRBridge("mock", with_sample_data=True)
    try:
        info = bridge.get_host_info("workstation-001")
        assert info["host_id"] == "host-12345"
        for key in ("host_id", "ip_addresses", "os", "isolated", "status"):
            assert key in info
        assert info["os"] == "Windows" and info["ip_addresses"] == ["192.168.1.100"]
        assert len(bridge.search_hosts("workstation", limit=1)) == 1
        assert {h["hostname"] for h in bridge.search_hosts("critical")} == {"server-001", "dc01"}
        assert [h["hostname"] for h in bridge.search_hosts("finance")] == ["workstation-001"]
        for d in bridge.get_detections("workstation-001"):
            assert {"name", "severity", "technique", "file_hash"} <= set(d)
        procs = bridge.get_processes("workstation-001", hours=24)
        assert {p["name"] for p in procs} == {"explorer.exe", "chrome.exe", "powershell.exe"}
        assert len(bridge.get_processes("workstation-001", hours=48)) == 4
        conns = bridge.get_network_connections("workstation-001", hours=24)
        assert len(conns) == 2 and all("remote_address" in c for c in conns)
        assert bridge.get_processes("workstation-002") == []
        assert bridge.get_detections("dc01") == []
        with pytest.raises(RuntimeError) as info_err:
            bridge.get_host_info("nonexistent-host-xyz")
        assert isinstance(info_err.value, LookupError)
        assert isinstance(info_err.value, HostNotFound)
        assert str(info_err.value).startswith("Connector error: ")
        assert bridge.get_connector_type() == "mock"
        assert bridge.health_check()["status"] == "healthy"
    finally:
        bridge.close()


@pytest.mark.parametrize("bad", ["splunk", "CrowdStrikeX", "sentinelone"])
def test_unsupported_connector_type_names_the_accepted_ones(bad: str) -> None:
    with pytest.raises(ValueError, match="mock.*crowdstrike"):
        EDRBridge(bad)


def test_connector_type_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    with EDRBridge("") as b:
        assert b.get_connector_type() == "mock"
    with EDRBridge(None) as b:
        assert b.get_connector_type() == "mock"
    monkeypatch.setenv("TW_EDR_MODE", "nope")
    with pytest.raises(ValueError, match="TW_EDR_MODE"):
        EDRBridge(None)


def test_empty_mock() -> None:
    with EDRBridge("mock", with_sample_data=False) as b:
        assert b.search_hosts("workstation") == []
        with pytest.raises(HostNotFound):
            b.get_host("workstation-001")


def test_detection_windows(mock_bridge: EDRBridge) -> None:
    assert len(mock_bridge.get_detections("workstation-001", hours=0.1)) == 1
    assert len(mock_bridge.get_detections("workstation-001", limit=1)) == 1
    with pytest.raises(ValueError):
        mock_bridge.get_detections("workstation-001", limit=0)
    with pytest.raises(TypeError):
        mock_bridge.get_detections("workstation-001", hours="2")


def test_fql_search_on_the_mock(mock_bridge: EDRBridge) -> None:
    found = mock_bridge.search_hosts("platform_name:'Linux'")
    assert [h["hostname"] for h in found] == ["server-001"]


def test_empty_query_lists_every_host(mock_bridge: EDRBridge) -> None:
    assert len(mock_bridge.search_hosts("")) == 5  # as the older module did
    assert len(mock_bridge.search_hosts("", limit=2)) == 2


def test_reads_after_a_lookup_reuse_its_resolution() -> None:
    from tw_bridge import MockConnector

    connector = MockConnector(approver=lambda r: "x")
    with EDRBridge(connector=connector) as b:
        b.get_host("workstation-001")
        b.get_detections("workstation-001")
        b.get_processes("WORKSTATION-001")
        assert connector.calls.count("find") == 1  # one resolution for the three calls
        b.get_host("workstation-001")  # a lookup always resolves afresh
        assert connector.calls.count("find") == 2
        b.isolate_host("workstation-001")  # and so does an action, which drops the entry
        assert connector.calls.count("find") == 3
        b.get_detections("workstation-001")
        assert connector.calls.count("find") == 4
