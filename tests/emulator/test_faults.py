"""Fault controls (Python API and the /_emulator/faults admin route)."""

from __future__ import annotations

import http.client
import json
import time

import pytest
import requests

from tw_bridge.testing.falcon import FalconEmulator

from .conftest import api, token

Q = "/devices/queries/devices/v1"


def test_fail_next_with_path_filter(emu: FalconEmulator) -> None:
    emu.faults.fail_next(2, status=500, path="/devices/")
    tok = token(emu)  # /oauth2/token is not hit by the path-filtered fault
    assert api(emu, "GET", Q, tok).status_code == 500
    r = api(emu, "GET", Q, tok)
    assert r.status_code == 500 and r.json()["errors"][0]["code"] == 500
    assert api(emu, "GET", Q, tok).status_code == 200
    assert [e.fault for e in emu.requests[-3:]] == ["fail", "fail", None]


def test_error_rate(emu: FalconEmulator) -> None:
    tok = token(emu)
    emu.faults.error_rate(1.0, status=503, path=Q)
    assert api(emu, "GET", Q, tok).status_code == 503
    emu.faults.error_rate(0.5, status=503, path=Q)
    codes = [api(emu, "GET", Q, tok).status_code for _ in range(40)]
    assert 5 < codes.count(503) < 35 and codes.count(200) + codes.count(503) == 40
    emu.faults.error_rate(0, path=Q)
    assert api(emu, "GET", Q, tok).status_code == 200


@pytest.mark.parametrize("ms", [False, True])
def test_rate_limit_storm(emu: FalconEmulator, ms: bool) -> None:
    tok = token(emu)
    emu.faults.rate_limit_storm(2, retry_after=3.0, ms=ms)
    for _ in range(2):
        r = api(emu, "GET", Q, tok)
        assert r.status_code == 429
        retry = float(r.headers["X-Ratelimit-Retryafter"])
        now = time.time()
        if ms:
            assert now * 1000 < retry <= (now + 4) * 1000
        else:
            assert now < retry <= now + 5
        assert r.headers["X-Ratelimit-Remaining"] == "0"
    assert api(emu, "GET", Q, tok).status_code == 200


def test_real_rate_limit() -> None:
    with FalconEmulator(hosts=5, rate_limits={"host_query": (3, 60.0)}) as emu:
        tok = token(emu)
        remaining = [api(emu, "GET", Q, tok).headers["X-Ratelimit-Remaining"] for _ in range(3)]
        assert remaining == ["2", "1", "0"]
        r = api(emu, "GET", Q, tok)
        assert r.status_code == 429 and "X-Ratelimit-Retryafter" in r.headers
        assert r.headers["X-Ratelimit-Limit"] == "3"
        # other groups are unaffected
        assert api(emu, "POST", "/alerts/entities/alerts/v2", tok,
                   json={"composite_ids": []}).status_code == 200


def test_drop_next(emu: FalconEmulator) -> None:
    tok = token(emu)
    emu.faults.drop_next(1, path="/devices/")
    with pytest.raises(requests.ConnectionError):
        api(emu, "GET", Q, tok)
    assert api(emu, "GET", Q, tok).status_code == 200
    assert any(e.status == 0 and e.fault == "drop" for e in emu.requests)


def test_slow_next(emu: FalconEmulator) -> None:
    tok = token(emu)
    emu.faults.slow_next(1, seconds=1.0, path=Q)
    with pytest.raises(requests.ReadTimeout):
        api(emu, "GET", Q, tok, timeout=0.2)
    t0 = time.monotonic()
    assert api(emu, "GET", Q, tok).status_code == 200
    assert time.monotonic() - t0 < 0.9


def test_malformed_next(emu: FalconEmulator) -> None:
    tok = token(emu)
    emu.faults.malformed_next(1, path=Q)
    r = api(emu, "GET", Q, tok)
    with pytest.raises(ValueError):
        json.loads(r.text)
    assert api(emu, "GET", Q, tok).json()["errors"] == []


def test_truncated_next(emu: FalconEmulator) -> None:
    tok = token(emu)
    emu.faults.truncated_next(1, path=Q)
    conn = http.client.HTTPConnection("127.0.0.1", int(emu.base_url.rsplit(":", 1)[1]),
                                      timeout=5)
    try:
        conn.request("GET", Q, headers={"Authorization": f"Bearer {tok}"})
        resp = conn.getresponse()
        declared = int(resp.headers["Content-Length"])
        with pytest.raises(http.client.IncompleteRead) as ei:
            resp.read()
        assert len(ei.value.partial) < declared
    finally:
        conn.close()
    assert api(emu, "GET", Q, tok).status_code == 200


def test_latency(emu: FalconEmulator) -> None:
    tok = token(emu)
    emu.faults.latency(150, jitter_ms=20)
    t0 = time.monotonic()
    assert api(emu, "GET", Q, tok).status_code == 200
    assert time.monotonic() - t0 >= 0.15
    emu.faults.latency(0)
    t0 = time.monotonic()
    api(emu, "GET", Q, tok)
    assert time.monotonic() - t0 < 0.15


def test_revoke_tokens(emu: FalconEmulator) -> None:
    tok = token(emu)
    emu.faults.revoke_tokens()
    r = api(emu, "GET", Q, tok)
    assert r.status_code == 401
    assert r.json()["errors"][0]["message"] == "access denied, invalid bearer token"
    assert api(emu, "GET", Q, token(emu)).status_code == 200  # new tokens work


def test_wrong_region_next_token(emu: FalconEmulator) -> None:
    emu.faults.wrong_region_next_token("eu-1")
    r = requests.post(f"{emu.base_url}/oauth2/token", timeout=5,
                      data={"client_id": emu.client_id, "client_secret": emu.client_secret})
    assert r.status_code == 201 and r.headers["X-Cs-Region"] == "eu-1"
    assert api(emu, "GET", Q, r.json()["access_token"]).status_code == 401
    r2 = requests.post(f"{emu.base_url}/oauth2/token", timeout=5,
                       data={"client_id": emu.client_id, "client_secret": emu.client_secret})
    assert r2.headers["X-Cs-Region"] == "us-1"


def test_admin_route_and_clear(emu: FalconEmulator) -> None:
    tok = token(emu)
    r = requests.post(f"{emu.base_url}/_emulator/faults", timeout=5,
                      json={"fault": "fail_next", "n": 1, "status": 502, "path": "/devices/"})
    assert r.status_code == 200
    assert api(emu, "GET", Q, tok).status_code == 502
    requests.post(f"{emu.base_url}/_emulator/faults", timeout=5,
                  json=[{"fault": "fail_next", "n": 5, "path": "/devices/"}, {"clear": True}])
    assert api(emu, "GET", Q, tok).status_code == 200
    bad = requests.post(f"{emu.base_url}/_emulator/faults", json={"fault": "nope"}, timeout=5)
    assert bad.status_code == 400
    emu.faults.fail_next(3)
    emu.faults.clear()
    assert api(emu, "GET", Q, tok).status_code == 200


def test_request_log(emu: FalconEmulator) -> None:
    emu.clear_requests()
    tok = token(emu)
    api(emu, "GET", Q, tok, params={"filter": "hostname:'a'+status:'normal'", "limit": 3})
    api(emu, "POST", "/devices/entities/devices/v2", tok, json={"ids": ["a" * 32]})
    log = emu.requests
    assert [e.path for e in log] == ["/oauth2/token", Q, "/devices/entities/devices/v2"]
    assert log[0].body["client_secret"] == "***" and log[0].status == 201
    assert log[1].query == {"filter": ["hostname:'a'+status:'normal'"], "limit": ["3"]}
    assert log[1].client_id == emu.client_id
    assert log[2].body == {"ids": ["a" * 32]} and log[2].status == 404
    assert emu.count("GET", Q) == 1 and emu.count() == 3
    assert emu.wait_for_requests(3, timeout=1)
    emu.clear_requests()
    assert emu.requests == []


def test_unknown_route_and_envelope(emu: FalconEmulator) -> None:
    r = api(emu, "GET", "/nope/v1")
    assert r.status_code == 404
    body = r.json()
    assert set(body) == {"meta", "resources", "errors"}
    assert body["meta"]["trace_id"] == r.headers["X-Cs-Traceid"]
    assert "X-Ratelimit-Limit" in r.headers and "X-Ratelimit-Remaining" in r.headers
    assert api(emu, "GET", Q).status_code == 401  # no token
