"""Request shapes, pinned with aioresponses: paths, query parameters, bodies, headers, FQL."""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from yarl import URL

from tw_bridge import (
    ActionConflict,
    AuthenticationError,
    ConnectorError,
    HostNotFound,
    InvalidResponse,
    PermissionDenied,
    RateLimited,
)
from tw_bridge._version import __version__
from tw_bridge.connectors.crowdstrike import CrowdStrikeConnector
from tw_bridge.connectors.crowdstrike._hosts import DEVICE_FIELDS
from tw_bridge.connectors.crowdstrike._http import parse_retry_after

from .conftest import AllowAllGate

BASE = "https://api.crowdstrike.com"
SECRET = "very-secret-client-secret"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.test-token-value"
AID = "4a6f2c1e9b0d4e7fa1c2d3e4f5a6b7c8"
TRACE = "6f1c0000-trace"


def url(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(BASE + path) + r"(\?.*)?$")


def envelope(resources: list[Any], **meta: Any) -> dict[str, Any]:
    return {"meta": {"trace_id": TRACE, **meta}, "resources": resources, "errors": []}


def device(aid: str = AID, hostname: str = "WEB-01", status: str = "normal",
           last_seen: str = "2026-01-02T03:04:05Z") -> dict[str, Any]:
    return {"device_id": aid, "hostname": hostname, "platform_name": "Windows",
            "os_version": "Windows Server 2022", "agent_version": "7.28.18108.0",
            "last_seen": last_seen, "status": status, "local_ip": "10.0.3.16",
            "external_ip": "203.0.113.7", "mac_address": "00-50-56-A2-94-8D",
            "tags": ["FalconGroupingTags/prod"]}


def mock_token(m: Any, region: str = "us-1", base: str = BASE, repeat: bool = True) -> None:
    m.post(base + "/oauth2/token", status=201, repeat=repeat,
           payload={"access_token": TOKEN, "token_type": "bearer", "expires_in": 1799},
           headers={"X-Cs-Region": region})


def calls(m: Any, method: str, path: str) -> list[tuple[URL, dict[str, Any]]]:
    out = []
    for (meth, u), reqs in m.requests.items():
        if meth == method and u.path == path:
            out.extend((u, r.kwargs) for r in reqs)
    return out


def run(fn: Callable[[CrowdStrikeConnector], Awaitable[Any]], **kw: Any) -> Any:
    async def main() -> Any:
        kw.setdefault("rate_limits", None)
        kw.setdefault("poll_interval", 0.01)
        async with CrowdStrikeConnector("my-client", SECRET, policy=AllowAllGate(),
                                        **kw) as cs:
            return await fn(cs)

    return asyncio.run(main())


def test_token_request_and_headers(mocked: Any) -> None:
    mock_token(mocked)
    mocked.post(url("/devices/entities/devices/v2"), payload=envelope([device()]))
    mocked.get(url("/devices/entities/online-state/v1"),
               payload=envelope([{"id": AID, "state": "online"}]))
    mocked.post(BASE + "/oauth2/revoke", payload=envelope([]))
    host = run(lambda cs: cs.get_host(f"aid:{AID.upper()}"),
               member_cid="0123456789abcdef0123456789abcdef")
    assert host.id == AID and host.status.value == "online"
    [(_, tok)] = calls(mocked, "POST", "/oauth2/token")
    assert tok["data"] == {"client_id": "my-client", "client_secret": SECRET,
                           "member_cid": "0123456789abcdef0123456789abcdef"}
    [(_, det)] = calls(mocked, "POST", "/devices/entities/devices/v2")
    assert det["json"] == {"ids": [AID]}
    assert det["headers"]["Authorization"] == f"Bearer {TOKEN}"
    [(u, on)] = calls(mocked, "GET", "/devices/entities/online-state/v1")
    assert on["params"] == [("ids", AID)]
    # revoke on close: basic auth, the token in the form
    [(_, rv)] = calls(mocked, "POST", "/oauth2/revoke")
    assert rv["headers"]["Authorization"] == "basic " + base64.b64encode(
        f"my-client:{SECRET}".encode()).decode()
    assert rv["data"]["token"] == TOKEN


def test_user_agent_and_timeout_on_session() -> None:
    async def main() -> None:
        cs = CrowdStrikeConnector("my-client", SECRET, timeout=7)
        await cs.open()
        session = cs._http.session
        assert session.headers["User-Agent"] == f"tw-bridge/{__version__}"
        assert session.timeout.total == 7
        await cs.close()

    asyncio.run(main())


def test_hostname_lookup_filter_and_postfilter(mocked: Any) -> None:
    mock_token(mocked)
    other = "b" * 32
    # Falcon's hostname:'X' is case-insensitive and may over-match: post-filtered.
    mocked.get(url("/devices/combined/devices/v1"), payload=envelope(
        [device(hostname="web-01"), device(other, hostname="web-01.corp")],
        pagination={"total": 2}))
    mocked.get(url("/devices/entities/online-state/v1"), payload=envelope([]))
    mocked.post(BASE + "/oauth2/revoke", payload=envelope([]))
    host = run(lambda cs: cs.get_host("WEB-01"))
    assert host.id == AID and host.hostname == "web-01"
    [(u, kw)] = calls(mocked, "GET", "/devices/combined/devices/v1")
    assert dict(kw["params"]) == {"filter": "hostname:'web-01'", "limit": "10000",
                                  "fields": DEVICE_FIELDS}
    assert "%2B" not in str(u)  # no AND in this filter; yarl would encode '+' as %2B
    [(_, on)] = calls(mocked, "GET", "/devices/entities/online-state/v1")
    assert on["params"] == [("ids", AID)]


def test_host_mapping(mocked: Any) -> None:
    mock_token(mocked)
    mocked.post(url("/devices/entities/devices/v2"),
                payload=envelope([device(status="lift_containment_pending")]))
    mocked.get(url("/devices/entities/online-state/v1"),
               payload=envelope([{"id": AID, "state": "offline"}]))
    mocked.post(BASE + "/oauth2/revoke", payload=envelope([]))
    h = run(lambda cs: cs.get_host(AID))
    assert h.isolation_status.value == "release_pending" and h.isolated
    assert h.status.value == "offline"
    assert h.ip_addresses == ("10.0.3.16",)
    assert h.mac_addresses == ("00:50:56:a2:94:8d",)
    assert h.tags == ("FalconGroupingTags/prod",)
    assert h.os_version == "Windows Server 2022"


def test_get_hosts_batches_ids_and_names(mocked: Any) -> None:
    mock_token(mocked)
    ids = [f"{i:032x}" for i in range(1, 6)]
    mocked.post(url("/devices/entities/devices/v2"),
                payload=envelope([device(i, f"h{n}") for n, i in enumerate(ids)]))
    mocked.get(url("/devices/combined/devices/v1"), repeat=True,
               payload=envelope([device("c" * 32, "alpha")]))
    mocked.get(url("/devices/entities/online-state/v1"), repeat=True, payload=envelope([]))
    mocked.post(BASE + "/oauth2/revoke", payload=envelope([]))
    names = [f"name-{i}" for i in range(25)] + ["ALPHA"]
    out = run(lambda cs: cs.get_hosts([f"aid:{i}" for i in ids] + names))
    assert [h.id if h else None for h in out[:5]] == ids
    assert out[-1] is not None and out[-1].hostname == "alpha"
    assert out[5] is None
    [(_, det)] = calls(mocked, "POST", "/devices/entities/devices/v2")
    assert det["json"] == {"ids": ids}
    combined = calls(mocked, "GET", "/devices/combined/devices/v1")
    filters = [dict(kw["params"])["filter"] for _, kw in combined]
    # many names: first the exact list form (as given, lower, upper) in one request ...
    assert filters[0].startswith("hostname:['name-0','NAME-0','name-1','NAME-1',")
    assert "'ALPHA','alpha'" in filters[0]
    # ... then the names it missed, case-insensitively, 20 terms per filter
    assert len(combined) == 3  # 1 list + 25 missed names: 20 + 5 terms
    assert filters[1].startswith("hostname:'name-0',hostname:'name-1',")
    assert "alpha" not in filters[1] + filters[2]  # found by the list form
    assert all(len(str(u)) < 8000 for u, _ in combined)


def test_search_plain_term_is_quoted(mocked: Any) -> None:
    mock_token(mocked)
    mocked.get(url("/devices/combined/devices/v1"), payload=envelope([device()]))
    mocked.get(url("/devices/entities/online-state/v1"), payload=envelope([]))
    mocked.post(BASE + "/oauth2/revoke", payload=envelope([]))
    run(lambda cs: cs.search_hosts("o'brien\\x", limit=5))
    [(_, kw)] = calls(mocked, "GET", "/devices/combined/devices/v1")
    assert dict(kw["params"]) == {"filter": "hostname:*'*o\\'brien\\\\x*'", "limit": "5",
                                  "fields": DEVICE_FIELDS}


def test_search_fql_passed_through_and_paged(mocked: Any) -> None:
    mock_token(mocked)
    fql = "platform_name:'Windows'+status:'contained'"
    mocked.get(url("/devices/combined/devices/v1"),
               payload=envelope([device()], pagination={"next": "tok-2", "total": 2}))
    mocked.get(url("/devices/combined/devices/v1"),
               payload=envelope([device("d" * 32)], pagination={"total": 2}))
    mocked.get(url("/devices/entities/online-state/v1"), payload=envelope([]))
    mocked.post(BASE + "/oauth2/revoke", payload=envelope([]))
    out = run(lambda cs: cs.search_hosts(fql, limit=50))
    assert len(out) == 2
    pages = calls(mocked, "GET", "/devices/combined/devices/v1")
    assert dict(pages[0][1]["params"]) == {"filter": fql, "limit": "50", "fields": DEVICE_FIELDS}
    assert dict(pages[1][1]["params"]) == {"filter": fql, "limit": "49", "offset": "tok-2",
                                           "fields": DEVICE_FIELDS}
    assert "%2B" in str(pages[0][0])  # FQL's AND survives URL encoding


def test_invalid_fql_and_wildcard_term_rejected_before_sending(mocked: Any) -> None:
    with pytest.raises(ValueError):
        run(lambda cs: cs.search_hosts("hostname:'unterminated"))
    with pytest.raises(ValueError, match=r"contains '\*'"):
        run(lambda cs: cs.search_hosts("web*"))
    with pytest.raises(ValueError, match="32 hexadecimal"):
        run(lambda cs: cs.get_host("aid:abc123"))
    assert not mocked.requests


def test_detections_query_and_reordering(mocked: Any) -> None:
    mock_token(mocked)
    mocked.post(url("/devices/entities/devices/v2"), payload=envelope([device()]))
    mocked.get(url("/devices/entities/online-state/v1"), payload=envelope([]))
    ids = [f"cid:ind:{AID}:{n}" for n in range(3)]
    mocked.get(url("/alerts/queries/alerts/v2"), payload=envelope(ids))
    alerts = [
        {"composite_id": ids[2], "timestamp": "2026-01-01T00:00:00Z", "severity": 95},
        {"composite_id": ids[0], "timestamp": "2026-01-03T00:00:00.5Z", "severity": 30,
         "severity_name": "Low", "technique": "PowerShell", "technique_id": "T1059.001",
         "tactic": "Execution", "display_name": "SuspiciousPowerShell", "filename": "p.exe",
         "filepath": "C:\\p.exe", "sha256": "ab" * 32, "cmdline": "p -enc x",
         "status": "in_progress", "parent_details": {"filename": "explorer.exe"}},
        {"composite_id": ids[1], "timestamp": "2026-01-02T00:00:00Z", "severity": 70,
         "name": "Name"},
    ]
    mocked.post(url("/alerts/entities/alerts/v2"), payload=envelope(alerts))
    mocked.post(BASE + "/oauth2/revoke", payload=envelope([]))
    out = run(lambda cs: cs.get_detections(f"aid:{AID}", hours=24, limit=3))
    assert [d.id for d in out] == ids
    d = out[0]
    assert (d.severity.value, d.technique, d.technique_name, d.tactic, d.name) == (
        "low", "T1059.001", "PowerShell", "Execution", "SuspiciousPowerShell")
    assert (d.process_name, d.file_path, d.file_hash, d.status) == (
        "p.exe", "C:\\p.exe", "ab" * 32, "in_progress")
    assert d.details["cmdline"] == "p -enc x"
    assert d.details["parent_details"] == {"filename": "explorer.exe"}
    assert out[1].severity.value == "high" and out[1].name == "Name"
    assert out[2].severity.value == "critical"
    [(_, q)] = calls(mocked, "GET", "/alerts/queries/alerts/v2")
    params = dict(q["params"])
    assert re.fullmatch(
        rf"device\.device_id:'{AID}'\+timestamp:>='\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ'",
        params["filter"])
    assert (params["sort"], params["limit"]) == ("timestamp|desc", "3")
    [(_, e)] = calls(mocked, "POST", "/alerts/entities/alerts/v2")
    assert e["json"] == {"composite_ids": ids}


def _host_mocks(m: Any, status: str = "normal") -> None:
    mock_token(m)
    m.post(url("/devices/entities/devices/v2"), payload=envelope([device(status=status)]),
           repeat=True)
    m.get(url("/devices/entities/online-state/v1"), payload=envelope([]), repeat=True)
    m.post(BASE + "/oauth2/revoke", payload=envelope([]))


def test_contain_request(mocked: Any) -> None:
    _host_mocks(mocked)
    mocked.post(url("/devices/entities/devices-actions/v2"), status=202,
                payload=envelope([{"id": AID, "path": ""}]), headers={"X-Cs-Traceid": "t-1"})
    res = run(lambda cs: cs.isolate_host(f"aid:{AID}"))
    assert (res.success, res.status, res.trace_id) == (True, "isolation_pending", "t-1")
    [(_, kw)] = calls(mocked, "POST", "/devices/entities/devices-actions/v2")
    assert kw["params"] == [("action_name", "contain")]
    assert kw["json"] == {"ids": [AID]}


def test_lift_per_host_409_is_action_conflict(mocked: Any) -> None:
    _host_mocks(mocked)
    mocked.post(url("/devices/entities/devices-actions/v2"), status=202, payload={
        "meta": {}, "resources": [], "errors": [{"code": 409, "id": AID,
                                                   "message": f"{AID} is not contained"}]})
    with pytest.raises(ActionConflict, match="is not isolated"):
        run(lambda cs: cs.unisolate_host(f"aid:{AID}"))
    [(_, kw)] = calls(mocked, "POST", "/devices/entities/devices-actions/v2")
    assert kw["params"] == [("action_name", "lift_containment")]


def test_scan_request_body(mocked: Any) -> None:
    _host_mocks(mocked)
    mocked.post(url("/ods/entities/scans/v1"), status=201,
                payload=envelope([{"id": "e" * 32, "status": "pending"}]))
    res = run(lambda cs: cs.scan_host(f"aid:{AID}"))
    assert (res.status, res.scan_id, res.rollback) == ("scan_pending", "e" * 32, None)
    [(_, kw)] = calls(mocked, "POST", "/ods/entities/scans/v1")
    body = kw["json"]
    assert body["hosts"] == [AID] and body["file_paths"] == ["C:\\"]
    assert body["quarantine"] is True and body["cpu_priority"] == 2
    assert body["sensor_ml_level_detection"] >= body["sensor_ml_level_prevention"]


def test_dry_run_sends_no_action(mocked: Any) -> None:
    _host_mocks(mocked)
    res = run(lambda cs: cs.isolate_host(f"aid:{AID}", dry_run=True))
    assert res.dry_run and res.request is not None
    assert res.request["params"] == {"action_name": "contain"}
    assert not calls(mocked, "POST", "/devices/entities/devices-actions/v2")


def test_rtr_requests(mocked: Any) -> None:
    mock_token(mocked)
    mocked.post(url("/devices/entities/devices/v2"),
                payload=envelope([{**device(), "platform_name": "Linux"}]))
    mocked.get(url("/devices/entities/online-state/v1"), payload=envelope([]))
    mocked.post(url("/real-time-response/entities/sessions/v1"), status=201,
                payload=envelope([{"session_id": "sess-1"}]))
    mocked.post(url("/real-time-response/entities/command/v1"), status=201,
                payload=envelope([{"cloud_request_id": "req-1", "session_id": "sess-1"}]))
    mocked.get(url("/real-time-response/entities/command/v1"),
               payload=envelope([{"complete": False, "stdout": ""}]))
    mocked.get(url("/real-time-response/entities/command/v1"), payload=envelope([{
        "complete": True, "stdout": "UID PID PPID C STIME TTY TIME CMD\n"
                                    "root 1 0 0 10:00 ? 00:00:01 /sbin/init splash\n"}]))
    mocked.delete(url("/real-time-response/entities/sessions/v1"), status=204)
    mocked.post(BASE + "/oauth2/revoke", payload=envelope([]))
    procs = run(lambda cs: cs.get_processes(f"aid:{AID}"))
    assert [(p.pid, p.name, p.parent_pid, p.user) for p in procs] == [(1, "init", 0, "root")]
    [(_, init)] = calls(mocked, "POST", "/real-time-response/entities/sessions/v1")
    assert init["json"] == {"device_id": AID, "queue_offline": False, "origin": "tw-bridge"}
    [(_, cmd)] = calls(mocked, "POST", "/real-time-response/entities/command/v1")
    assert cmd["json"] == {"base_command": "ps", "command_string": "ps", "session_id": "sess-1",
                           "device_id": AID, "persist": False}
    polls = calls(mocked, "GET", "/real-time-response/entities/command/v1")
    assert [p["params"] for _, p in polls] == [
        [("cloud_request_id", "req-1"), ("sequence_id", "0")]] * 2
    [(_, dele)] = calls(mocked, "DELETE", "/real-time-response/entities/sessions/v1")
    assert dele["params"] == [("session_id", "sess-1")]


def test_rtr_session_deleted_when_command_fails(mocked: Any) -> None:
    _host_mocks(mocked)
    mocked.post(url("/real-time-response/entities/sessions/v1"), status=201,
                payload=envelope([{"session_id": "sess-2"}]))
    mocked.post(url("/real-time-response/entities/command/v1"), status=400,
                payload={"meta": {}, "resources": [], "errors": [{"code": 400,
                                                                  "message": "bad command"}]})
    mocked.delete(url("/real-time-response/entities/sessions/v1"), status=204)
    with pytest.raises(ConnectorError, match="bad command"):
        run(lambda cs: cs.get_network_connections(f"aid:{AID}"))
    assert len(calls(mocked, "DELETE", "/real-time-response/entities/sessions/v1")) == 1


# -- error mapping ---------------------------------------------------------------------------


def _err(code: int, message: str) -> dict[str, Any]:
    return {"meta": {"trace_id": TRACE}, "resources": [], "errors": [{"code": code,
                                                                       "message": message}]}


def test_403_names_scope(mocked: Any) -> None:
    _host_mocks(mocked)
    mocked.post(url("/devices/entities/devices-actions/v2"), status=403,
                payload=_err(403, "access denied, authorization failed"))
    with pytest.raises(PermissionDenied) as ei:
        run(lambda cs: cs.isolate_host(f"aid:{AID}"))
    assert ei.value.scope == "Hosts: Write" and "'Hosts: Write'" in str(ei.value)
    assert ei.value.trace_id == TRACE and ei.value.status == 403


def test_400_carries_falcon_message(mocked: Any) -> None:
    mock_token(mocked)
    mocked.get(url("/devices/combined/devices/v1"), status=400,
               payload=_err(400, "Invalid filter: bogus"))
    mocked.post(BASE + "/oauth2/revoke", payload=envelope([]))
    with pytest.raises(ConnectorError, match="Invalid filter: bogus") as ei:
        run(lambda cs: cs.search_hosts("platform_name:'x'"))
    assert type(ei.value) is ConnectorError and ei.value.trace_id == TRACE


def test_404_is_host_not_found(mocked: Any) -> None:
    mock_token(mocked)
    mocked.get(url("/alerts/queries/alerts/v2"), status=404, payload=_err(404, "gone"))
    mocked.post(url("/devices/entities/devices/v2"), payload=envelope([device()]))
    mocked.get(url("/devices/entities/online-state/v1"), payload=envelope([]))
    mocked.post(BASE + "/oauth2/revoke", payload=envelope([]))
    with pytest.raises(HostNotFound):
        run(lambda cs: cs.get_detections(f"aid:{AID}"))


def test_401_refreshes_once_then_authentication_error(mocked: Any) -> None:
    mock_token(mocked)
    mocked.post(url("/devices/entities/devices/v2"), status=401, repeat=True,
                payload=_err(401, "access denied, invalid bearer token"))
    mocked.get(url("/devices/entities/online-state/v1"), payload=envelope([]), repeat=True)
    mocked.post(BASE + "/oauth2/revoke", payload=envelope([]))
    with pytest.raises(AuthenticationError):
        run(lambda cs: cs.get_host(f"aid:{AID}"))
    assert len(calls(mocked, "POST", "/devices/entities/devices/v2")) == 2
    assert len(calls(mocked, "POST", "/oauth2/token")) == 2


def test_bad_credentials(mocked: Any) -> None:
    mocked.post(BASE + "/oauth2/token", status=403,
                payload=_err(403, "Failed to issue access token - Client authentication failed"))
    with pytest.raises(AuthenticationError, match="TW_CROWDSTRIKE_CLIENT_ID") as ei:
        run(lambda cs: cs.get_host(f"aid:{AID}"))
    assert SECRET not in str(ei.value)
    assert len(calls(mocked, "POST", "/oauth2/token")) == 1  # never retried


def test_malformed_json_is_invalid_response(mocked: Any) -> None:
    mock_token(mocked)
    mocked.post(url("/devices/entities/devices/v2"), body=b'{"meta": {"trace', status=200,
                headers={"X-Cs-Traceid": "t-9"})
    mocked.get(url("/devices/entities/online-state/v1"), payload=envelope([]))
    mocked.post(BASE + "/oauth2/revoke", payload=envelope([]))
    with pytest.raises(InvalidResponse) as ei:
        run(lambda cs: cs.get_host(f"aid:{AID}"))
    assert ei.value.trace_id == "t-9"


def test_wrong_shape_is_invalid_response(mocked: Any) -> None:
    mock_token(mocked)
    mocked.post(url("/devices/entities/devices/v2"), payload={"meta": {}, "resources": "nope"})
    mocked.get(url("/devices/entities/online-state/v1"), payload=envelope([]))
    mocked.post(BASE + "/oauth2/revoke", payload=envelope([]))
    with pytest.raises(InvalidResponse):
        run(lambda cs: cs.get_host(f"aid:{AID}"))


def test_429_beyond_call_limit_raises_rate_limited(mocked: Any) -> None:
    mock_token(mocked)
    import time as _t

    mocked.get(url("/devices/combined/devices/v1"), status=429, payload=_err(429, "limit"),
               headers={"X-Ratelimit-Retryafter": str(int((_t.time() + 120) * 1000))})
    mocked.post(BASE + "/oauth2/revoke", payload=envelope([]))
    with pytest.raises(RateLimited) as ei:
        run(lambda cs: cs.search_hosts("web"), timeout=2)
    assert ei.value.retry_after is not None and 100 < ei.value.retry_after <= 120


def test_parse_retry_after() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after({"X-Ratelimit-Retryafter": str(int(now) + 5)}, now) == 5
    assert parse_retry_after({"X-Ratelimit-Retryafter": str(int(now * 1000) + 2500)}, now) == 2.5
    assert parse_retry_after({"X-Ratelimit-Retryafter": str(int(now) - 5)}, now) == 0
    assert parse_retry_after({"X-Ratelimit-Retryafter": "3"}, now) == 3
    assert parse_retry_after({"Retry-After": "7"}, now) == 7
    assert parse_retry_after({}, now) is None


def test_region_switch_for_commercial_clouds(mocked: Any) -> None:
    us2 = "https://api.us-2.crowdstrike.com"
    mock_token(mocked, region="us-2")
    mocked.post(us2 + "/devices/entities/devices/v2", payload=envelope([device()]))
    mocked.get(re.compile(re.escape(us2) + r"/devices/entities/online-state/v1.*"),
               payload=envelope([]))
    mocked.post(us2 + "/oauth2/revoke", payload=envelope([]))

    async def go(cs: CrowdStrikeConnector) -> tuple[str, str | None]:
        await cs.get_host(f"aid:{AID}")
        return cs.base_url, cs.region

    assert run(go) == (us2, "us-2")


def test_explicit_base_url_never_switches(mocked: Any) -> None:
    proxy = "https://falcon-gw.example.com"
    mock_token(mocked, region="eu-1", base=proxy)
    mocked.post(proxy + "/devices/entities/devices/v2", payload=envelope([device()]))
    mocked.get(re.compile(re.escape(proxy) + r"/devices/entities/online-state/v1.*"),
               payload=envelope([]))
    mocked.post(proxy + "/oauth2/revoke", payload=envelope([]))

    async def go(cs: CrowdStrikeConnector) -> tuple[str, str | None]:
        await cs.get_host(f"aid:{AID}")
        return cs.base_url, cs.region

    assert run(go, base_url=proxy) == (proxy, "eu-1")


def test_logs_have_trace_ids_and_no_secrets(mocked: Any, caplog: pytest.LogCaptureFixture
                                            ) -> None:
    _host_mocks(mocked)
    mocked.post(url("/devices/entities/devices-actions/v2"), status=500, repeat=True,
                payload=_err(500, f"boom {TOKEN}"))
    with caplog.at_level(logging.DEBUG, logger="tw_bridge"), pytest.raises(ConnectorError) as ei:
        run(lambda cs: cs.isolate_host(f"aid:{AID}"))
    text = caplog.text + str(ei.value) + repr(ei.value)
    assert TOKEN not in text and SECRET not in text
    assert re.search(r"POST /devices/entities/devices-actions/v2 -> 500 in [\d.]+ ms "
                     rf"\(trace id {TRACE}\)", caplog.text)
    assert ei.value.trace_id == TRACE


def test_contain_409_after_5xx_counts_as_success(mocked: Any) -> None:
    _host_mocks(mocked)
    mocked.post(url("/devices/entities/devices-actions/v2"), status=503,
                payload=_err(503, "unavailable"))
    mocked.post(url("/devices/entities/devices-actions/v2"), status=409,
                payload=_err(409, f"Device {AID} is already contained"))
    res = run(lambda cs: cs.isolate_host(f"aid:{AID}"))
    assert res.success and res.status == "isolation_pending"
    assert len(calls(mocked, "POST", "/devices/entities/devices-actions/v2")) == 2


def test_contain_409_after_429_is_conflict(mocked: Any) -> None:
    _host_mocks(mocked)
    mocked.post(url("/devices/entities/devices-actions/v2"), status=429,
                payload=_err(429, "limit"), headers={"X-Ratelimit-Retryafter": "0"})
    mocked.post(url("/devices/entities/devices-actions/v2"), status=409,
                payload=_err(409, f"Device {AID} is already contained"))
    with pytest.raises(ActionConflict):
        run(lambda cs: cs.isolate_host(f"aid:{AID}"))
