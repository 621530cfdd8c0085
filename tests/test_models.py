"""Models and the one converter."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests import contract
from tw_bridge import (
    ActionResult,
    Detection,
    HostInfo,
    IsolationStatus,
    Reachability,
    Severity,
    to_dict,
)
from tw_bridge._convert import format_timestamp, parse_timestamp


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        HostInfo(id="a", hostname="a", platform="Linux", last_seen=datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        format_timestamp(datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        parse_timestamp("2026-01-01T00:00:00")


def test_timestamps_are_utc_z() -> None:
    cet = timezone(timedelta(hours=1))
    assert format_timestamp(datetime(2026, 12, 3, 11, 15, tzinfo=cet)) == "2026-12-03T10:15:00Z"
    assert parse_timestamp("2025-07-30T07:36:04.72Z") == datetime(
        2025, 7, 30, 7, 36, 4, 720000, tzinfo=timezone.utc
    )


@pytest.mark.parametrize(
    ("status", "isolated"),
    [
        (IsolationStatus.NORMAL, False),
        (IsolationStatus.ISOLATION_PENDING, False),
        (IsolationStatus.ISOLATED, True),
        (IsolationStatus.RELEASE_PENDING, True),
    ],
)
def test_isolated_is_derived(status: IsolationStatus, isolated: bool) -> None:
    h = HostInfo(id="a", hostname="a", platform="Mac", isolation_status=status,
                 last_seen=datetime.now(timezone.utc), status=Reachability.OFFLINE)
    d = to_dict(h)
    contract.check_host(d)
    assert d["isolated"] is isolated and d["status"] == "offline"


def test_severity_from_score() -> None:
    assert Severity.from_score(70) is Severity.HIGH
    assert Severity.from_score(30) is Severity.LOW
    assert Severity.from_score(95) is Severity.CRITICAL
    assert Severity.from_score(50) is Severity.MEDIUM
    assert Severity.from_score(5) is Severity.INFORMATIONAL


aware = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)
)
ident = st.text(alphabet="abcdef0123456789-", min_size=1, max_size=40)


@given(
    id=ident,
    hostname=ident,
    platform=st.sampled_from(["Windows", "Mac", "Linux"]),
    last_seen=aware,
    iso=st.sampled_from(list(IsolationStatus)),
    reach=st.sampled_from(list(Reachability)),
    ips=st.lists(st.ip_addresses().map(str), max_size=3),
    tags=st.lists(st.text(max_size=20), max_size=3),
)
def test_host_dicts_always_match_the_contract(id, hostname, platform, last_seen, iso, reach, ips, tags) -> None:
    h = HostInfo(id=id, hostname=hostname, platform=platform, last_seen=last_seen,
                 isolation_status=iso, status=reach, ip_addresses=ips, tags=tags)
    d = to_dict(h)
    contract.check_host(d)
    assert parse_timestamp(d["last_seen"]) == last_seen


@given(ts=aware, sev=st.sampled_from(list(Severity)), details=st.dictionaries(
    st.text(max_size=10), st.one_of(st.none(), st.integers(), st.text(max_size=10)), max_size=4))
def test_detection_dicts_always_match_the_contract(ts, sev, details) -> None:
    d = to_dict(Detection(id="x", name="n", timestamp=ts, severity=sev, details=details))
    contract.check_detection(d)
    json.dumps(d)


def test_action_dict_has_rollback_and_no_internal_keys() -> None:
    a = ActionResult(success=True, action_id="i", action="scan_host", host_id="h", hostname="n",
                     message="m", timestamp=datetime.now(timezone.utc), status="scan_pending")
    d = to_dict(a)
    contract.check_action(d, "scan_host")
    assert d["rollback"] is None and "request" not in d


@given(
    id=ident, hostname=ident, last_seen=st.one_of(st.none(), aware),
    iso=st.sampled_from(list(IsolationStatus)), reach=st.sampled_from(list(Reachability)),
    ips=st.lists(st.ip_addresses().map(str), max_size=3), tags=st.lists(st.text(max_size=5), max_size=3),
)
def test_hand_written_host_hook_equals_the_generated_one(id, hostname, last_seen, iso, reach, ips, tags) -> None:
    from tw_bridge._convert import _reference

    h = HostInfo(id=id, hostname=hostname, platform="Linux", last_seen=last_seen,
                 isolation_status=iso, status=reach, ip_addresses=ips, tags=tags)
    fast = to_dict(h)
    slow = _reference["HostInfo"](h)
    assert fast == slow and list(fast) == list(slow)
