"""Hostile input: host arguments and search terms, and hostile Falcon replies.

* A corpus of host arguments (quotes, backslashes, wildcards, FQL operators, Unicode
  look-alikes, NUL, CRLF, 1 MB strings, non-strings) through every host-taking call: each
  gives ValueError / TypeError or HostNotFound; actions send nothing.
* Every ``filter`` the emulator received is one the caller intended: for host arguments,
  ``hostname:'<validated name>'`` (OR-joined for get_hosts); for search terms, the caller's
  own FQL or ``hostname:*'*<term>*'`` whose parsed literal is exactly the term.
* Hypothesis: host-argument parsing, and random / mutated Falcon JSON through the
  connector's parsing (envelope, device, alert, token, scan, RTR records and the mapping onto
  the contract's models): a model or InvalidResponse, never another exception.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests._support import cs_bridge, unique_host
from tw_bridge import HostNotFound, InvalidResponse, to_dict
from tw_bridge._fql import Compare, parse
from tw_bridge._hostarg import RefKind, parse_host
from tw_bridge._query import looks_like_fql
from tw_bridge.connectors.crowdstrike import CrowdStrikeConnector
from tw_bridge.connectors.crowdstrike._alerts import to_detection
from tw_bridge.connectors.crowdstrike._falcon_models import (
    Alert,
    Device,
    Envelope,
    OnlineState,
    RTRCommandResult,
    RTRSession,
    ScanRecord,
    Token,
    structure,
    structure_list,
)
from tw_bridge.connectors.crowdstrike._hosts import to_host
from tw_bridge.testing.falcon import FalconEmulator

ACTION = "/devices/entities/devices-actions/v2"
SCAN = "/ods/entities/scans/v1"
_VALID_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")

MEG = 1024 * 1024
BASES: list[str] = [
    # quotes, backslashes, wildcards
    "a'b", "'", "''", "\\", "a\\b", "\\'", "a\\'b", '"', 'a"b', "*", "a*", "*a*", "*'*",
    "?", "%", "_", "a_b",
    # FQL operators and injection attempts
    "x',hostname:'*", "x'+platform_name:'Windows", "hostname:'*'", "a,b", "a+b", "!a", "a:b",
    "[a]", "(a)", "a b", "a>b", "a~b", "a:!b", "x'),(hostname:'*", "a' OR '1'='1",
    "device_id:*", "x%27%2Chostname%3A%27%2A", "a&filter=hostname:*", "a#b", "a;b", "a|b",
    "a`b`", "${IFS}", "a/b", "../..", "..", "-a", ".a", "_a",
    # whitespace, controls, NUL, CRLF
    "", " ", "  a", "a ", "\t", "a\tb", "a\x00", "\x00", "a\r\nX-Injected: 1", "a\n", "\r",
    "a\x1b[31m", "a\x7f",
    # Unicode look-alikes and oddities
    "wоrkstation-001",  # Cyrillic o
    "ｗｏｒｋｓｔａｔｉｏｎ", "ws\u200b01", "ws\u00a001", "ws\u2028", "é", "ﬁle", "İ", "ß",
    "😀", "\ufeffws", "ws\u0301", "\ud800",
    # lengths
    "a" * 254, "a" * 1000, "a" * MEG, "'" * MEG, "a" * 253,
    # AID-shaped
    "g" * 32, "a" * 31, "a" * 33, "A" * 32, "0" * 32, "0" * 31 + "*",
    # plausible but absent
    "no-such-host", "NO-SUCH-HOST.example.com", "x", "1", "a.b.c-d_e",
]
PREFIXES = ["", "aid:", "hostname:", "host:", "id:", "HOSTNAME:", "AID:", "unknown:", ":"]
NON_STRINGS: list[Any] = [None, 0, 1, 1.5, float("nan"), True, b"ws-01", bytearray(b"x"),
                          ["ws-01"], ("ws-01",), {"hostname": "ws-01"}, {"ws-01"}, object(),
                          memoryview(b"ws"), 10**100]
CORPUS: list[Any] = [p + b for p in PREFIXES for b in BASES] + NON_STRINGS
SEARCH_TERMS: list[Any] = BASES + [
    "hostname:'*'", "platform_name:'Windows'+hostname:*'*web*'", "hostname:'a',hostname:'b'",
    "hostname:'a' , hostname:*'*'", "hostname:", "hostname:'", "hostname:'unterminated",
    "platform_name:'Linux')", "(platform_name:'Linux'", "device_id:['a','b']",
    "hostname:*'*\\'*'", "10.0.0.1", "00:50:56:a2:94:8d", "fe80::1", "tag with spaces",
] + NON_STRINGS


def _intended_host_filters(corpus: list[Any]) -> set[str]:
    out = set()
    for h in corpus:
        try:
            ref = parse_host(h)
        except (TypeError, ValueError):
            continue
        if ref.kind is not RefKind.ID:
            out.add(f"hostname:'{ref.value.lower()}'")
    return out


def _filters(emu: FalconEmulator) -> list[str]:
    return [f for r in emu.requests for f in r.query.get("filter", [])]


def test_corpus_size() -> None:
    assert len(CORPUS) >= 200 and len(SEARCH_TERMS) >= 100


@pytest.mark.parametrize("op", ["get_host", "get_detections", "get_processes", "isolate_host",
                                "scan_host"])
def test_hostile_host_arguments(emu: FalconEmulator, op: str) -> None:
    outcomes: dict[str, int] = {}
    with cs_bridge(emu) as bridge:
        call = getattr(bridge, op)
        for h in CORPUS:
            try:
                call(h)
                pytest.fail(f"{op}({h!r:.80}) succeeded")
            except (TypeError, ValueError, HostNotFound) as exc:
                outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
    intended = _intended_host_filters(CORPUS)
    sent = _filters(emu)
    stray = [f for f in sent if f not in intended]
    assert not stray, stray[:10]
    assert all(len(f) < 300 for f in sent)
    # no action reached Falcon, and the 1 MB strings never left the process
    assert emu.count("POST", ACTION) == 0 and emu.count("POST", SCAN) == 0
    assert all(len(json.dumps(r.body or "")) < 10_000 for r in emu.requests)
    assert outcomes.get("HostNotFound", 0) >= 5 and outcomes.get("ValueError", 0) >= 100


def test_hostile_get_hosts(emu: FalconEmulator) -> None:
    with cs_bridge(emu) as bridge:
        for h in CORPUS:
            try:
                out = bridge.get_hosts([h])
            except (TypeError, ValueError):
                continue
            assert out == [None], h
        ok = _valid_args()
        valid = [h for h in CORPUS if isinstance(h, str) and h in ok]
        assert bridge.get_hosts(valid) == [None] * len(valid)
        for bad in ("ws-01", b"ws", None, 5, {"a": 1}):
            with pytest.raises(TypeError):
                bridge.get_hosts(bad)  # type: ignore[arg-type]
    sent = _filters(emu)
    # each filter is an OR of the validated names and nothing else
    intended_names = {f[len("hostname:'"):-1] for f in _intended_host_filters(CORPUS)}
    for f in sent:
        terms = f.split(",")
        for t in terms:
            assert t.startswith("hostname:'") and t.endswith("'"), f
            assert t[len("hostname:'"):-1] in intended_names, t
    assert emu.count("POST", ACTION) == 0


def _valid_args() -> set[str]:
    out = set()
    for h in CORPUS:
        try:
            ref = parse_host(h)
            CrowdStrikeConnector._validate_ref(None, ref)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        out.add(h)
    return out


def test_hostile_search_terms(emu: FalconEmulator) -> None:
    with cs_bridge(emu) as bridge:
        expected: list[str] = []
        for term in SEARCH_TERMS:
            before = len(_filters(emu))
            try:
                res = bridge.search_hosts(term, limit=3)
            except (TypeError, ValueError):
                assert len(_filters(emu)) == before, f"{term!r:.60} raised after sending"
                continue
            assert isinstance(res, list)
            sent = _filters(emu)[before:]
            if not term.strip():  # a blank query lists every host: no filter at all
                assert sent == [], (term, sent)
                continue
            assert len(sent) == 1, (term, sent)
            f = sent[0]
            if looks_like_fql(term):
                assert f == term.strip(), (term, f)  # the caller's own (validated) FQL
            else:
                node = parse(f)
                assert isinstance(node, Compare) and node.prop == "hostname", f
                assert node.op == "ieq" and not node.negate and len(node.values) == 1, f
                assert node.values[0].value == f"*{term.strip()}*", (term, f)
            expected.append(f)
    assert _filters(emu) == expected


# -- Hypothesis: host-argument parsing ------------------------------------------------------

_prefix = st.sampled_from(["", "aid:", "hostname:", "host:", "id:", "Aid:", "x:", ":"])
_hostish = st.one_of(
    st.text(max_size=300),
    st.text(alphabet="abcdefABCDEF0123456789", min_size=30, max_size=34),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,30}", fullmatch=True),
    st.text(alphabet="'\\*,+!:[]()~<>= \t\r\n\x00\"%", max_size=20),
)
_any_object = st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=20),
                        st.lists(st.text(max_size=5), max_size=3), st.booleans())


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.tuples(_prefix, _hostish).map("".join), _any_object))
def test_property_host_argument_parsing(value: Any) -> None:
    try:
        ref = parse_host(value)
        ref = CrowdStrikeConnector._validate_ref(None, ref)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return
    assert isinstance(value, str)
    assert _VALID_NAME.fullmatch(ref.value), ref
    if ref.kind is RefKind.ID:
        assert re.fullmatch(r"[0-9a-f]{32}", ref.value)
    # the validated value quoted into a filter parses back to exactly one comparison
    node = parse(f"hostname:'{ref.value}'")
    assert isinstance(node, Compare) and node.values[0].value == ref.value


# -- Hypothesis: response parsing -----------------------------------------------------------

_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
              st.text(max_size=40)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=12), children, max_size=4)),
    max_leaves=20,
)
_odd_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(), st.text(max_size=40),
    st.sampled_from(["", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
                     "2025-13-40T99:99:99Z", "2025-10-06T07:19:50.123456789Z", "now", "NaN",
                     "1e400", "-1", "contained", "CONTAINED", "lift_containment_pending"]),
    st.lists(st.text(max_size=5), max_size=3), st.dictionaries(st.text(max_size=5),
                                                               st.integers(), max_size=2),
)

DEVICE = {"device_id": "4a6f2c1e9b0d4e7fa1c2d3e4f5a6b7c8", "cid": "9e1d" * 8,
          "hostname": "WEB-01", "platform_name": "Windows", "os_version": "Windows Server 2022",
          "agent_version": "7.28.18108.0", "first_seen": "2024-01-20T00:40:31Z",
          "last_seen": "2025-10-06T07:19:50Z", "status": "contained", "local_ip": "10.0.3.16",
          "external_ip": "203.0.113.7", "mac_address": "00-50-56-a2-94-8d",
          "tags": ["FalconGroupingTags/prod"]}
ALERT = {"composite_id": "9e1d:ind:4a6f:3124654-10304-1406", "severity": 70,
         "severity_name": "High", "timestamp": "2025-07-30T07:35:02.101Z",
         "created_timestamp": "2025-07-30T07:36:04.72Z", "tactic": "Execution",
         "technique": "PowerShell", "technique_id": "T1059.001",
         "display_name": "SuspiciousPowerShell", "filename": "powershell.exe",
         "cmdline": "powershell -enc AAAA", "sha256": "1355" * 16, "status": "new",
         "product": "epp", "device": {"device_id": "4a6f2c1e9b0d4e7fa1c2d3e4f5a6b7c8",
                                      "hostname": "WEB-01"},
         "parent_details": {"cmdline": "explorer.exe"}, "mitre_attack": [{"tactic": "x"}]}
RECORDS = {"device": DEVICE, "alert": ALERT}


def _mutate(record: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    rec = copy.deepcopy(record)
    for key in data.draw(st.lists(st.sampled_from(sorted(rec) + ["extra"]), max_size=4)):
        if data.draw(st.booleans()):
            rec.pop(key, None)
        else:
            rec[key] = data.draw(_odd_scalars)
    return rec


def _parse(body: Any, kind: str) -> list[Any]:
    """The connector's parsing of one reply: envelope, records, contract models, dicts."""
    env = structure(body, Envelope, what="a malformed reply")
    if kind == "device":
        out = [to_host(d) for d in structure_list(env.resources, Device, what="a device")]
    elif kind == "alert":
        out = [to_detection(a) for a in structure_list(env.resources, Alert, what="an alert")]
    elif kind == "online":
        out = structure_list(env.resources, OnlineState, what="an online state")
    elif kind == "scan":
        out = structure_list(env.resources, ScanRecord, what="a scan")
    elif kind == "rtr":
        out = structure_list(env.resources, RTRSession, what="a session")
        out += structure_list(env.resources, RTRCommandResult, what="a command")
    else:
        out = [structure(body, Token, what="a token")]
    dicts = to_dict(out)
    json.dumps(dicts)  # the contract: plain JSON values
    _ = env.error_text, env.trace_id
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["device", "alert"]), data=st.data())
def test_property_mutated_falcon_records(kind: str, data: st.DataObject) -> None:
    records = [_mutate(RECORDS[kind], data) for _ in range(data.draw(st.integers(1, 3)))]
    body: Any = {"meta": {"trace_id": "t"}, "resources": records, "errors": []}
    if data.draw(st.booleans()):
        body["errors"] = data.draw(st.one_of(_json, st.lists(
            st.fixed_dictionaries({"code": _odd_scalars, "message": _odd_scalars}), max_size=2)))
    if data.draw(st.booleans()):
        body["meta"] = data.draw(_json)
    try:
        _parse(body, kind)
    except InvalidResponse:
        pass


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(["device", "alert", "online", "scan", "rtr", "token"]),
       body=_json)
def test_property_random_json(kind: str, body: Any) -> None:
    try:
        _parse(body, kind)
    except InvalidResponse:
        pass


def test_mutated_records_served_by_the_emulator(emu: FalconEmulator) -> None:
    """A few hostile device/alert records served over HTTP: the bridge gives a host dict,
    detection dicts or InvalidResponse (never another error)."""
    base = unique_host(emu, "Linux", skip=9)
    aid = base["device_id"]
    original = dict(base)
    cases: list[tuple[str, Any]] = [
        ("last_seen", "0001-01-01T00:00:00+01:00"), ("last_seen", "9999-12-31T23:59:59-01:00"),
        ("last_seen", 12), ("tags", "not-a-list"), ("tags", [1, None]), ("hostname", None),
        ("status", ["contained"]), ("status", "weird"), ("mac_address", {"x": 1}),
        ("local_ip", 3.5), ("platform_name", 7), ("agent_version", [])]
    outcomes = []
    with cs_bridge(emu) as bridge:
        for key, value in cases:
            with emu.fleet.lock:
                emu.fleet.by_id[aid].clear()
                emu.fleet.by_id[aid].update(original, **{key: value})
            try:
                host = bridge.get_host("aid:" + aid)
                json.dumps(host)
                outcomes.append("ok")
            except InvalidResponse:
                outcomes.append("InvalidResponse")
        with emu.fleet.lock:
            emu.fleet.by_id[aid].clear()
            emu.fleet.by_id[aid].update(original)
        for ts in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", None, 5):
            emu.add_alert(aid, timestamp=ts, created_timestamp=ts)
        try:
            json.dumps(bridge.get_detections("aid:" + aid))
        except InvalidResponse:
            pass
    assert len(outcomes) == len(cases)


def test_loop_is_clean_after_hostile_input() -> None:
    """The property tests drive sync functions; nothing leaks an event loop."""
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
