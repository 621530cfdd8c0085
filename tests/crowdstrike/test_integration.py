"""Every contract method through EDRBridge("crowdstrike") against the Falcon emulator."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests import contract
from tw_bridge import (
    ActionConflict,
    AmbiguousHost,
    ConnectorError,
    EDRBridge,
    HostNotFound,
    PermissionDenied,
)
from tw_bridge.testing.falcon import FalconEmulator

from .conftest import AllowAllGate, online_host

ACTION_PATH = "/devices/entities/devices-actions/v2"


def test_get_host_forms(emu: FalconEmulator, bridge: EDRBridge) -> None:
    h = online_host(emu, "Windows")
    aid, name = h["device_id"], h["hostname"]
    for arg in (f"aid:{aid}", aid, aid.upper(), f"hostname:{name}", name, name.swapcase()):
        d = bridge.get_host(arg)
        contract.check_host(d)
        assert d["id"] == aid and d["hostname"] == name
        assert d["status"] == "online" and d["isolation_status"] == "normal"
        assert d["ip_addresses"] == [h["local_ip"]]
        json.dumps(d)
    assert bridge.get_host_info(name)["host_id"] == aid
    assert bridge.get_connector_type() == "crowdstrike"


def test_not_found_and_bad_aid(emu: FalconEmulator, bridge: EDRBridge) -> None:
    with pytest.raises(HostNotFound):
        bridge.get_host("no-such-host")
    with pytest.raises(HostNotFound):
        bridge.get_host("aid:" + "0" * 32)
    emu.clear_requests()
    with pytest.raises(ValueError, match="32 hexadecimal"):
        bridge.get_host("aid:abc123")
    with pytest.raises(ValueError):
        bridge.get_host("web'01")
    assert emu.count() == 0


def test_get_hosts_aligned_and_few_requests(emu: FalconEmulator, bridge: EDRBridge) -> None:
    hosts = emu.fleet.hosts[:60]
    args: list[str] = []
    for i, h in enumerate(hosts):
        args.append(f"aid:{h['device_id']}" if i % 2 else h["hostname"].upper())
    args.insert(7, "missing-host")
    args.append("aid:" + "f" * 32)
    bridge.get_host(args[1])  # token fetched
    emu.clear_requests()
    out = bridge.get_hosts(args)
    assert len(out) == len(args)
    assert out[7] is None and out[-1] is None
    for arg, d in zip(args, out, strict=True):
        if d is None:
            continue
        contract.check_host(d)
        if arg.startswith("aid:"):
            assert d["id"] == arg[4:]
        else:
            assert d["hostname"].lower() == arg.lower()
    # 1 details POST, ceil(31 names / 20) combined queries, online state in 100s.
    assert emu.count("POST", "/devices/entities/devices/v2") == 1
    assert emu.count("GET", "/devices/combined/devices/v1") == 2
    assert emu.count("GET", "/devices/entities/online-state/v1") <= 2
    assert all(len(r.path) + sum(len(k) + sum(len(v) for v in vs)
                                 for k, vs in r.query.items()) < 4000 for r in emu.requests)


def test_search_fql_and_plain_term(emu: FalconEmulator, bridge: EDRBridge) -> None:
    wins = bridge.search_hosts("platform_name:'Windows'", limit=1000)
    expected = sum(1 for h in emu.fleet.hosts if h["platform_name"] == "Windows")
    assert len(wins) == expected and all(d["platform"] == "Windows" for d in wins)
    for d in wins[:5]:
        contract.check_host(d)
    h = online_host(emu, "Linux")
    term = h["hostname"][2:-1].lower()
    found = bridge.search_hosts(term)
    assert h["device_id"] in {d["id"] for d in found}
    assert all(term in d["hostname"].lower() for d in found)
    assert len(bridge.search_hosts("platform_name:'Windows'", limit=3)) == 3
    with pytest.raises(ValueError):
        bridge.search_hosts("platform_name:'Windows")
    with pytest.raises(ValueError, match=r"'\*'"):
        bridge.search_hosts("*")


def test_contained_host_found_by_search_and_isolated(emu: FalconEmulator,
                                                     bridge: EDRBridge) -> None:
    rec = emu.add_host(hostname="jail-01", status="contained", platform_name="Linux")
    found = bridge.search_hosts("jail")
    assert [d["id"] for d in found] == [rec["device_id"]]
    assert found[0]["isolation_status"] == "isolated" and found[0]["isolated"] is True
    fql = bridge.search_hosts("status:'contained'", limit=1000)
    assert rec["device_id"] in {d["id"] for d in fql}
    assert all(d["isolated"] for d in fql)
    # no status filter is ever added to a search
    assert not any("status" in v for r in emu.requests for v in r.query.get("filter", [])
                   if "jail" in v)


def test_shared_hostname_lookup_newest_isolate_refuses(
    emu: FalconEmulator, bridge: EDRBridge, gate: AllowAllGate
) -> None:
    old = emu.add_host(hostname="twin-01", last_seen="2025-01-01T00:00:00Z")
    new = emu.add_host(hostname="TWIN-01", last_seen="2026-06-01T00:00:00Z")
    assert bridge.get_host("twin-01")["id"] == new["device_id"]
    emu.clear_requests()
    with pytest.raises(AmbiguousHost) as ei:
        bridge.isolate_host("twin-01")
    assert set(ei.value.candidates) == {old["device_id"], new["device_id"]}
    assert emu.count("POST", ACTION_PATH) == 0 and not gate.requests
    res = bridge.isolate_host(f"aid:{old['device_id']}")
    assert res["host_id"] == old["device_id"]


def test_detections_mapping(emu: FalconEmulator, bridge: EDRBridge) -> None:
    h = online_host(emu, "Windows")
    aid = h["device_id"]
    emu.fleet.alerts[:] = [a for a in emu.fleet.alerts if a["agent_id"] != aid]
    import time

    now = time.time()

    def ts(offset: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S.123Z", time.gmtime(now - offset))

    a1 = emu.add_alert(aid, severity=72, timestamp=ts(3600), created_timestamp=ts(3500),
                       technique="PowerShell", technique_id="T1059.001", tactic="Execution",
                       display_name="SuspiciousPowerShell", status="in_progress")
    a2 = emu.add_alert(aid, severity=95, timestamp=ts(60), created_timestamp=ts(50))
    a3 = emu.add_alert(aid, severity=10, timestamp=ts(3 * 86400), created_timestamp=ts(3 * 86400))
    dets = bridge.get_detections(f"aid:{aid}")
    assert [d["id"] for d in dets] == [a2["composite_id"], a1["composite_id"],
                                       a3["composite_id"]]
    for d in dets:
        contract.check_detection(d)
        json.dumps(d)
    d1 = dets[1]
    assert (d1["severity"], d1["technique"], d1["technique_name"], d1["tactic"],
            d1["name"], d1["status"]) == ("high", "T1059.001", "PowerShell", "Execution",
                                          "SuspiciousPowerShell", "in_progress")
    assert d1["file_hash"] == a1["sha256"] and d1["process_name"] == a1["filename"]
    assert d1["file_path"] == a1["filepath"]
    assert d1["details"]["cmdline"] == a1["cmdline"]
    assert d1["details"]["parent_details"] == a1["parent_details"]
    assert dets[0]["severity"] == "critical" and dets[2]["severity"] == "informational"
    assert [d["id"] for d in bridge.get_detections(h["hostname"], hours=24)] == [
        a2["composite_id"], a1["composite_id"]]
    assert len(bridge.get_detections(f"aid:{aid}", limit=1)) == 1


def test_isolate_and_release(emu: FalconEmulator, bridge: EDRBridge, gate: AllowAllGate) -> None:
    h = online_host(emu, "Windows")
    aid = h["device_id"]
    res = bridge.isolate_host(f"aid:{aid}")
    contract.check_action(res, "isolate_host")
    assert res["success"] and res["status"] == "isolation_pending"
    assert res["rollback"] == "unisolate_host" and res["trace_id"]
    assert res["approval"]["decision"] == "allowed"
    with pytest.raises(ActionConflict, match="already isolated"):
        bridge.isolate_host(f"aid:{aid}")
    assert emu.count("POST", ACTION_PATH) == 2  # the 409 was not retried
    res = bridge.unisolate_host(h["hostname"], wait=5)
    assert res["status"] == "normal"  # pending containment lifted -> released
    res = bridge.isolate_host(f"aid:{aid}", wait=5)
    assert res["status"] == "isolated" and "confirmed" in res["message"]
    assert bridge.get_host(f"aid:{aid}")["isolation_status"] == "isolated"
    res = bridge.unisolate_host(f"aid:{aid}", wait=5)
    assert res["status"] == "normal"
    with pytest.raises(ActionConflict, match="not isolated"):
        bridge.unisolate_host(f"aid:{aid}")
    assert [o["success"] for o in gate.outcomes] == [True, False, True, True, True, False]


def test_isolate_offline_host_wait_unverified(emu: FalconEmulator, bridge: EDRBridge) -> None:
    rec = emu.add_host(hostname="laptop-away", online=False)
    res = bridge.isolate_host("laptop-away", wait=0.3)
    assert res["success"] and res["status"] == "unverified"
    assert bridge.get_host("laptop-away")["isolation_status"] == "isolation_pending"
    assert bridge.get_host("laptop-away")["status"] == "offline"
    assert rec["status"] == "containment_pending"


def test_dry_run_sends_nothing(emu: FalconEmulator, bridge: EDRBridge) -> None:
    h = online_host(emu, "Linux")
    res = bridge.isolate_host(f"aid:{h['device_id']}", dry_run=True)
    assert res["status"] == "dry_run" and res["success"] is False
    assert res["request"]["body"] == {"ids": [h["device_id"]]}
    assert emu.count("POST", ACTION_PATH) == 0


def test_scan_host(emu: FalconEmulator, bridge: EDRBridge) -> None:
    h = online_host(emu, "Windows")
    res = bridge.scan_host(h["hostname"])
    contract.check_action(res, "scan_host")
    assert res["status"] == "scan_pending" and len(res["scan_id"]) == 32
    assert res["rollback"] is None
    [req] = [r for r in emu.requests if r.path == "/ods/entities/scans/v1"]
    assert req.body["hosts"] == [h["device_id"]] and req.status == 201
    assert emu.app.scans[res["scan_id"]]["hosts"] == [h["device_id"]]


@pytest.mark.parametrize("platform", ["Windows", "Linux", "Mac"])
def test_processes_and_connections(emu: FalconEmulator, bridge: EDRBridge, platform: str) -> None:
    h = online_host(emu, platform)
    procs = bridge.get_processes(f"aid:{h['device_id']}")
    assert len(procs) >= 8
    for p in procs:
        contract.check_process(p)
    names = {p["name"] for p in procs}
    if platform == "Windows":
        assert {"lsass.exe", "svchost.exe", "System"} <= names
    elif platform == "Linux":
        assert {"init", "sshd", "falcond"} <= names
        assert any(p["parent_pid"] == 1 for p in procs)
    conns = bridge.get_network_connections(h["hostname"])
    assert len(conns) >= 8
    for c in conns:
        contract.check_connection(c)
    assert any(c["state"] in ("LISTEN", "LISTENING") and c["remote_port"] == 0 for c in conns)
    assert any(c["state"] == "ESTABLISHED" and c["remote_port"] == 443 for c in conns)
    # read-only tier only, and every session deleted
    paths = {r.path for r in emu.requests}
    assert not any("admin-command" in p or "active-responder" in p for p in paths)
    inits = emu.count("POST", "/real-time-response/entities/sessions/v1")
    assert inits == 2 and emu.count("DELETE", "/real-time-response/entities/sessions/v1") == 2
    assert not emu.app.sessions


def test_rtr_offline_host(emu: FalconEmulator, bridge: EDRBridge) -> None:
    emu.add_host(hostname="sleepy", online=False)
    with pytest.raises(ConnectorError, match="offline") as ei:
        bridge.get_processes("sleepy")
    assert not isinstance(ei.value, HostNotFound)


def test_health_check(emu: FalconEmulator, bridge: EDRBridge,
                      make_bridge: Callable[..., EDRBridge]) -> None:
    hc = bridge.health_check()
    contract.check_health(hc, "crowdstrike")
    assert hc["status"] == "healthy"
    emu.faults.fail_next(1, 503, path="/devices/")
    hc = bridge.health_check()
    assert hc["status"] == "unhealthy" and "503" in hc["message"]
    slow = make_bridge(emu, slow_threshold=0.05)
    emu.faults.slow_next(1, 0.2, path="/devices/")
    assert slow.health_check()["status"] == "degraded"
    emu.faults.rate_limit_storm(1, retry_after=30, path="/devices/")
    hc = bridge.health_check()
    assert hc["status"] == "degraded" and "rate" in hc["message"]
    bad = make_bridge(emu, client_secret="wrong-secret-value")
    hc = bad.health_check()
    assert hc["status"] == "unhealthy" and "credentials" in hc["message"]
    assert "wrong-secret-value" not in json.dumps(hc)


@pytest.mark.parametrize(("scopes", "call", "scope"), [
    (["hosts:read"], lambda b, a: b.isolate_host(f"aid:{a}"), "Hosts: Write"),
    (["hosts:read"], lambda b, a: b.get_detections(f"aid:{a}"), "Alerts: Read"),
    (["hosts:read"], lambda b, a: b.get_processes(f"aid:{a}"), "Real time response: Read"),
    (["hosts:read"], lambda b, a: b.scan_host(f"aid:{a}"), "On-demand scans (ODS): Write"),
    (["alerts:read"], lambda b, a: b.get_host(f"aid:{a}"), "Hosts: Read"),
])
def test_missing_scope(emu: FalconEmulator, make_bridge: Callable[..., EDRBridge],
                       scopes: list[str], call: Callable[[EDRBridge, str], Any],
                       scope: str) -> None:
    emu.add_client("limited-client", "limited-secret-1", scopes=scopes)
    b = make_bridge(emu, client_id="limited-client", client_secret="limited-secret-1")
    aid = online_host(emu, "Windows")["device_id"]
    with pytest.raises(PermissionDenied) as ei:
        call(b, aid)
    assert ei.value.scope == scope and f"'{scope}'" in str(ei.value)
    assert ei.value.trace_id


def test_close_revokes_token(emu: FalconEmulator, make_bridge: Callable[..., EDRBridge]) -> None:
    b = make_bridge(emu)
    b.get_host(online_host(emu, "Linux")["device_id"])
    b.close()
    [rv] = [r for r in emu.requests if r.path == "/oauth2/revoke"]
    assert rv.status == 200 and rv.headers["Authorization"].lower().startswith("basic ")


def test_search_pages_past_10000(emu_factory: Callable[..., FalconEmulator],
                                 make_bridge: Callable[..., EDRBridge]) -> None:
    emu = emu_factory(hosts=10_500, seed=3)
    b = make_bridge(emu)
    contained = emu.add_host(hostname="big-fleet-contained", status="contained")
    found = b.search_hosts("platform_name:*'*'", limit=20_000)
    assert len(found) == 10_501
    assert len({d["id"] for d in found}) == 10_501
    assert next(d for d in found if d["id"] == contained["device_id"])["isolated"] is True
    pages = [r for r in emu.requests if r.path == "/devices/combined/devices/v1"]
    assert [r.query["limit"] for r in pages] == [["10000"], ["10000"]]
    assert "offset" not in pages[0].query and pages[1].query["offset"][0]
    # reachability is skipped above online_state_max (1000): no 106 online-state calls
    assert emu.count("GET", "/devices/entities/online-state/v1") == 0
    assert all(d["status"] == "unknown" for d in found)


def test_empty_query_lists_every_host(emu, bridge) -> None:  # type: ignore[no-untyped-def]
    found = bridge.search_hosts("", limit=1000)
    assert len(found) == len(emu.fleet.hosts)
    sent = [r for r in emu.requests if r.path == "/devices/combined/devices/v1"]
    assert sent and "filter" not in sent[-1].query


def test_get_hosts_many_names_in_any_case(emu, bridge) -> None:  # type: ignore[no-untyped-def]
    hosts = emu.fleet.hosts[:40]
    odd = emu.add_host(hostname="MiXeD-Case-01")
    names = [h["hostname"].swapcase() if i % 2 else h["hostname"].lower()
             for i, h in enumerate(hosts)] + ["mixed-case-01", "no-such-host-x"]
    emu.clear_requests()
    got = bridge.get_hosts(names)
    assert got[-1] is None
    assert got[-2] is not None and got[-2]["id"] == odd["device_id"]
    for name, h in zip(names[:-2], got[:-2], strict=True):
        assert h is not None and h["hostname"].lower() == name.lower()
    combined = [r for r in emu.requests if r.path == "/devices/combined/devices/v1"]
    assert len(combined) <= 3  # one list query, then the names it missed
