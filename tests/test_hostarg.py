"""Host arguments: parsing, and bad values rejected before any connector call."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tw_bridge import EDRBridge, MockConnector
from tw_bridge._hostarg import RefKind, parse_host

BAD_VALUES = [
    "",
    None,
    42,
    3.5,
    b"dc01",
    ["dc01"],
    "x" * 10_000,
    "dc01\x00",
    "dc01\n",
    "dc01\r\nHost: evil",
    "dc01'",
    "dc01' , hostname:'*",
    "*",
    "web-*",
    "dc01+status:'contained'",
    "dc01,hostname:'x'",
    "!dc01",
    "(dc01)",
    "[dc01]",
    "dc01\\",
    'dc01"',
    "dc 01",
    "dс01",  # Cyrillic 'с'
    "aid:",
    "hostname:",
    "aid:abc'123",
    "evil:dc01",
    "-dc01",
    ".dc01",
]


@pytest.mark.parametrize("bad", BAD_VALUES, ids=repr)
def test_bad_host_arguments_never_reach_the_connector(bad: object) -> None:
    connector = MockConnector()
    with EDRBridge(connector=connector) as b:
        for call in (
            b.get_host,
            b.get_host_info,
            b.get_detections,
            b.get_processes,
            b.get_network_connections,
            b.isolate_host,
            b.unisolate_host,
            b.scan_host,
        ):
            with pytest.raises((ValueError, TypeError)):
                call(bad)
        with pytest.raises((ValueError, TypeError)):
            b.get_hosts(["dc01", bad])
    assert connector.calls == []


def test_prefixes_and_bare_values() -> None:
    assert parse_host("aid:abc123").kind is RefKind.ID
    assert parse_host("AID:abc123").kind is RefKind.ID
    assert parse_host("hostname:dc01").kind is RefKind.HOSTNAME
    ref = parse_host("dc01")
    assert ref.kind is RefKind.ANY and ref.value == "dc01"
    assert parse_host("4a6f2c1e9b0d4e7fa1c2d3e4f5a6b7c8").looks_like_aid


def test_hostnames_match_exactly_and_case_insensitively() -> None:
    with EDRBridge("mock") as b:
        assert b.get_host("DC01")["id"] == "host-99999"
        assert b.get_host("hostname:Workstation-001")["id"] == "host-12345"
        with pytest.raises(LookupError):
            b.get_host("workstation")  # no substring matching for lookups
        with pytest.raises(LookupError):
            b.get_host("aid:workstation-001")  # an id prefix means an id


def test_ambiguous_hostname_lookup_takes_newest_and_action_refuses() -> None:
    from datetime import datetime, timedelta, timezone

    from tw_bridge import AmbiguousHost

    connector = MockConnector(with_sample_data=False, approver=lambda r: "x")
    now = datetime.now(timezone.utc)
    connector.add_host(id="old-1", hostname="twin", platform="Linux", last_seen=now - timedelta(days=3))
    connector.add_host(id="new-1", hostname="TWIN", platform="Linux", last_seen=now)
    with EDRBridge(connector=connector) as b:
        assert b.get_host("twin")["id"] == "new-1"
        assert b.get_hosts(["twin"])[0]["id"] == "new-1"
        with pytest.raises(AmbiguousHost, match="aid:"):
            b.isolate_host("twin")
        assert ("isolate_host", "new-1") not in connector.actions


@given(st.text(max_size=300))
def test_parse_host_only_raises_value_or_type_errors(text: str) -> None:
    try:
        ref = parse_host(text)
    except (ValueError, TypeError):
        return
    assert ref.value and all(c.isascii() and (c.isalnum() or c in "._-") for c in ref.value)
