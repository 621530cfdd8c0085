"""Drive the emulator with the official SDK (crowdstrike-falconpy)."""

from __future__ import annotations

import time
from typing import Any

from falconpy import ODS, Alerts, Hosts, OAuth2, RealTimeResponse

from tw_bridge.testing.falcon import FalconEmulator

from .conftest import falcon


def wait_until(pred: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_authenticate_and_query(emu: FalconEmulator) -> None:
    hosts = falcon(Hosts, emu)
    r = hosts.query_devices_by_filter(filter="platform_name:'Windows'", limit=10,
                                      sort="last_seen.desc")
    assert r["status_code"] == 200
    body = r["body"]
    assert len(body["resources"]) == 10
    assert body["meta"]["pagination"]["total"] == sum(
        1 for h in emu.fleet.hosts if h["platform_name"] == "Windows")
    for h in ("X-Cs-Traceid", "X-Ratelimit-Limit", "X-Ratelimit-Remaining"):
        assert h in r["headers"]
    details = hosts.get_device_details(ids=body["resources"])
    assert details["status_code"] == 200
    recs = details["body"]["resources"]
    seen = [d["last_seen"] for d in sorted(recs, key=lambda d: body["resources"].index(
        d["device_id"]))]
    assert seen == sorted(seen, reverse=True)
    assert all(d["platform_name"] == "Windows" for d in recs)


def test_token_reply_carries_region(emu: FalconEmulator) -> None:
    auth = OAuth2(client_id=emu.client_id, client_secret=emu.client_secret,
                  base_url=emu.base_url)
    r = auth.token()
    assert r["status_code"] == 201
    assert r["headers"]["X-Cs-Region"] == "us-1"
    assert r["body"]["token_type"] == "bearer" and r["body"]["expires_in"] == 1799


def test_paging_query_and_combined(emu: FalconEmulator) -> None:
    hosts = falcon(Hosts, emu)
    ids: list[str] = []
    offset = 0
    while True:
        r = hosts.query_devices_by_filter(limit=70, offset=offset, sort="hostname.asc")
        ids += r["body"]["resources"]
        offset += 70
        if offset >= r["body"]["meta"]["pagination"]["total"]:
            break
    assert len(ids) == len(set(ids)) == 200
    got: list[dict[str, Any]] = []
    token = None
    while True:
        kw: dict[str, Any] = {"limit": 64, "fields": "device_id,hostname"}
        if token:
            kw["offset"] = token
        r = hosts.query_devices_by_filter_combined(**kw)
        assert r["status_code"] == 200
        got += r["body"]["resources"]
        token = r["body"]["meta"]["pagination"].get("next")
        if not token:
            break
    assert len(got) == 200 and set(got[0]) == {"device_id", "hostname"}
    assert [g["device_id"] for g in got] == sorted(g["device_id"] for g in got)
    r = hosts.query_devices_by_filter(limit=5000, offset=5000)
    assert r["status_code"] == 400
    assert r["body"]["errors"][0]["message"] == "limit + offset must be less than 10000"


def test_contain_and_lift(fresh_emu: FalconEmulator) -> None:
    emu = fresh_emu
    target = next(h for h in emu.fleet.hosts
                  if h["status"] == "normal" and emu.is_online(h["device_id"]))
    aid = target["device_id"]
    hosts = falcon(Hosts, emu)
    r = hosts.perform_action(action_name="contain", ids=[aid])
    assert r["status_code"] == 202, r
    assert r["body"]["resources"] == [{"id": aid, "path": ""}]
    assert emu.get_host(aid)["status"] == "containment_pending"
    wait_until(lambda: hosts.get_device_details(ids=[aid])["body"]["resources"][0]["status"]
               == "contained")
    again = hosts.perform_action(action_name="contain", ids=[aid])
    assert again["status_code"] == 409 and again["body"]["errors"][0]["code"] == 409
    assert aid in again["body"]["errors"][0]["message"]
    r = hosts.perform_action(action_name="lift_containment", ids=[aid])
    assert r["status_code"] == 202
    wait_until(lambda: emu.get_host(aid)["status"] == "normal")
    assert emu.count("POST", "/devices/entities/devices-actions/v2") == 3


def test_offline_host_stays_pending(fresh_emu: FalconEmulator) -> None:
    emu = fresh_emu
    h = emu.add_host(hostname="OFFLINE-01", platform_name="Windows", online=False,
                     status="normal")
    aid = h["device_id"]
    hosts = falcon(Hosts, emu)
    assert hosts.perform_action(action_name="contain", ids=[aid])["status_code"] == 202
    time.sleep(0.15)  # three containment delays: must still be pending
    assert emu.get_host(aid)["status"] == "containment_pending"
    state = hosts.get_online_state(ids=[aid])
    assert state["body"]["resources"][0]["state"] == "offline"
    emu.set_online(aid, True)
    wait_until(lambda: emu.get_host(aid)["status"] == "contained")


def test_mixed_batch_partial_errors(fresh_emu: FalconEmulator) -> None:
    emu = fresh_emu
    contained = next(h for h in emu.fleet.hosts if h["status"] == "normal")
    contained["status"] = "contained"
    normal = next(h for h in emu.fleet.hosts if h["status"] == "normal")
    r = falcon(Hosts, emu).perform_action(
        action_name="contain", ids=[contained["device_id"], normal["device_id"], "f" * 32])
    assert r["status_code"] == 202
    assert [x["id"] for x in r["body"]["resources"]] == [normal["device_id"]]
    assert sorted(e["code"] for e in r["body"]["errors"]) == [404, 409]


def test_details_limits_and_unknown(emu: FalconEmulator) -> None:
    hosts = falcon(Hosts, emu)
    ids = [h["device_id"] for h in emu.fleet.hosts]
    r = hosts.get_device_details_v2(ids=ids[:101])
    assert r["status_code"] == 400
    assert r["body"]["errors"][0]["message"] == "request must contain between 0 and 100 ids"
    r = hosts.post_device_details_v2(body={"ids": ids})
    assert r["status_code"] == 200 and len(r["body"]["resources"]) == 200
    r = hosts.get_device_details_v2(ids=["0" * 32])
    assert r["status_code"] == 404 and r["body"]["errors"][0]["code"] == 404


def test_hostname_matching(fresh_emu: FalconEmulator) -> None:
    emu = fresh_emu
    a = emu.add_host(hostname="Case-Host")
    b = emu.add_host(hostname="case-host")
    hosts = falcon(Hosts, emu)
    loose = hosts.query_devices_by_filter(filter="hostname:'CASE-HOST'")["body"]["resources"]
    assert set(loose) == {a["device_id"], b["device_id"]}
    exact = hosts.query_devices_by_filter(filter="hostname:['case-host']")["body"]["resources"]
    assert exact == [b["device_id"]]
    bad = hosts.query_devices_by_filter(filter="hostname:'unterminated")
    assert bad["status_code"] == 400


def test_alerts(emu: FalconEmulator) -> None:
    alerts = falcon(Alerts, emu)
    aid = emu.fleet.alerts[0]["agent_id"]
    r = alerts.query_alerts_v2(filter=f"device.device_id:'{aid}'", sort="timestamp|desc")
    assert r["status_code"] == 200
    ids = r["body"]["resources"]
    assert ids and all(f":ind:{aid}:" in i for i in ids)
    r = alerts.query_alerts_v2(filter="severity:>=70", limit=50)
    det = alerts.get_alerts_v2(composite_ids=r["body"]["resources"])
    assert det["status_code"] == 200
    res = det["body"]["resources"]
    assert {x["composite_id"] for x in res} == set(r["body"]["resources"])
    assert all(x["severity"] >= 70 and x["severity_name"] in ("High", "Critical") for x in res)
    assert all(x["technique_id"].startswith(("T", "CST")) for x in res)
    too_many = alerts.get_alerts_v2(composite_ids=[f"x{i}" for i in range(1001)])
    assert too_many["status_code"] == 413
    assert too_many["body"]["errors"][0]["message"] == "request too large"


def test_ods_scan(fresh_emu: FalconEmulator) -> None:
    emu = fresh_emu
    aid = next(h["device_id"] for h in emu.fleet.hosts if emu.is_online(h["device_id"]))
    ods = falcon(ODS, emu)
    r = ods.create_scan(hosts=[aid], file_paths=["C:\\Windows"], cpu_priority=3,
                        sensor_ml_level_detection=2, sensor_ml_level_prevention=2,
                        cloud_ml_level_detection=2, cloud_ml_level_prevention=2,
                        max_duration=2, quarantine=True, description="tw test")
    assert r["status_code"] == 201, r
    scan_id = r["body"]["resources"][0]["id"]

    def status() -> str:
        got = ods.get_scans(ids=[scan_id])
        assert got["status_code"] == 200
        return str(got["body"]["resources"][0]["status"])

    assert status() in ("pending", "running")
    wait_until(lambda: status() == "completed")
    scan = ods.get_scans(ids=[scan_id])["body"]["resources"][0]
    assert scan["metadata"][0]["host_id"] == aid and scan["completed_host_count"] == 1
    assert ods.get_scans(ids=["e" * 32])["status_code"] == 404
    bad = ods.create_scan(hosts=[aid], cpu_priority=9)
    assert bad["status_code"] == 400


def _run(rtr: RealTimeResponse, sid: str, cmd: str) -> dict[str, Any]:
    r = rtr.execute_command(base_command=cmd.split()[0], command_string=cmd, session_id=sid)
    assert r["status_code"] == 201, r
    rid = r["body"]["resources"][0]["cloud_request_id"]
    first = rtr.check_command_status(cloud_request_id=rid, sequence_id=0)
    out: dict[str, Any] = first["body"]["resources"][0]
    deadline = time.monotonic() + 5
    while not out["complete"]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
        out = rtr.check_command_status(cloud_request_id=rid,
                                       sequence_id=0)["body"]["resources"][0]
    return out


def test_rtr_ps_and_netstat(emu: FalconEmulator) -> None:
    rtr = falcon(RealTimeResponse, emu)
    for platform, ps_marker, ns_marker in (("Windows", "WorkingMemory(MB)", "Foreign Address"),
                                           ("Linux", "PPID", "PID/Program name")):
        aid = next(h["device_id"] for h in emu.fleet.hosts
                   if h["platform_name"] == platform and emu.is_online(h["device_id"]))
        init = rtr.init_session(device_id=aid, origin="tw-test")
        assert init["status_code"] == 201, init
        sid = init["body"]["resources"][0]["session_id"]
        ps = _run(rtr, sid, "ps")
        assert ps["complete"] and ps_marker in ps["stdout"]
        ns = _run(rtr, sid, "netstat")
        assert ns_marker in ns["stdout"]
        assert rtr.pulse_session(device_id=aid)["status_code"] == 201
        # 204 with no body: falconpy hands back the empty bytes object
        assert rtr.delete_session(session_id=sid) == b""
        assert emu.requests[-1].status == 204
        r = rtr.execute_command(base_command="ps", command_string="ps", session_id=sid)
        assert r["status_code"] == 404


def test_401_403_429_as_falconpy_sees_them(fresh_emu: FalconEmulator) -> None:
    emu = fresh_emu
    emu.add_client("ro-client", "ro-secret", ["hosts:read"])
    ro = falcon(Hosts, emu, client_id="ro-client", client_secret="ro-secret")
    assert ro.query_devices_by_filter(limit=1)["status_code"] == 200
    denied = ro.perform_action(action_name="contain", ids=[emu.fleet.hosts[0]["device_id"]])
    assert denied["status_code"] == 403
    assert denied["body"]["errors"][0]["message"] == "access denied, authorization failed"
    rtr = falcon(RealTimeResponse, emu, client_id="ro-client", client_secret="ro-secret")
    assert rtr.init_session(device_id=emu.fleet.hosts[0]["device_id"])["status_code"] == 403

    emu.faults.revoke_tokens()
    r = ro.query_devices_by_filter(limit=1)
    assert r["status_code"] == 401
    assert r["body"]["errors"][0]["message"] == "access denied, invalid bearer token"

    bad = Hosts(client_id="nope", client_secret="nope", base_url=emu.base_url)
    assert bad.token_status == 403

    emu.faults.rate_limit_storm(1, retry_after=2.0, path="/devices/")
    fresh = falcon(Hosts, emu)
    r = fresh.query_devices_by_filter(limit=1)
    assert r["status_code"] == 429
    retry = float(r["headers"]["X-Ratelimit-Retryafter"])
    assert time.time() < retry <= time.time() + 4
    assert fresh.query_devices_by_filter(limit=1)["status_code"] == 200


def test_token_expiry() -> None:
    with FalconEmulator(hosts=5, token_lifetime=0.3) as emu:
        import requests

        from .conftest import api, token

        tok = token(emu)
        assert api(emu, "GET", "/devices/queries/devices/v1", tok).status_code == 200
        time.sleep(0.4)
        r = api(emu, "GET", "/devices/queries/devices/v1", tok)
        assert r.status_code == 401
        assert r.json()["errors"][0]["message"] == "access denied, invalid bearer token"
        assert isinstance(requests.__version__, str)
