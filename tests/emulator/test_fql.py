from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tw_bridge._fql import And, Compare, FQLSyntaxError, Or, matches, parse, quote

REC = {
    "hostname": "Web-01",
    "platform_name": "Windows",
    "status": "contained",
    "severity": 70,
    "last_seen": "2025-10-06T07:19:50Z",
    "tags": ["FalconGroupingTags/prod", "FalconGroupingTags/pci"],
    "device": {"device_id": "4a6f2c1e9b0d4e7fa1c2d3e4f5a6b7c8", "hostname": "WEB-01"},
    "reduced": False,
    "note": "it's a \\ test",
}


@pytest.mark.parametrize("flt,expected", [
    ("hostname:'web-01'", True),                       # scalar: case-insensitive
    ("hostname:\"WEB-01\"", True),
    ("hostname:['web-01']", False),                    # list: exact, case-sensitive
    ("hostname:['Web-01']", True),
    ("hostname:['x','Web-01']", True),
    ("hostname:'web-*'", True),
    ("hostname:'db-*'", False),
    ("hostname:*'*EB*'", True),
    ("hostname:!'web-01'", False),
    ("hostname:!['x']", True),
    ("platform_name:'Windows'+status:'contained'", True),
    ("platform_name:'Mac'+status:'contained'", False),
    ("platform_name:'Mac',status:'contained'", True),
    ("platform_name:'Mac'+status:'x',severity:70", True),   # AND binds tighter than OR
    ("platform_name:'Mac'+(status:'x',severity:70)", False),
    ("severity:>=70", True),
    ("severity:>70", False),
    ("severity:<71", True),
    ("severity:<=69", False),
    ("severity:70", True),
    ("last_seen:>='2025-01-01T00:00:00Z'", True),
    ("last_seen:<'2025-10-06T07:19:50.5Z'", True),
    ("last_seen:>2025-10-06T00:00:00Z", True),
    ("last_seen:<'now'", True),
    ("device.device_id:'4a6f2c1e9b0d4e7fa1c2d3e4f5a6b7c8'", True),
    ("device.hostname:['WEB-01']", True),
    ("tags:'FalconGroupingTags/pci'", True),            # list-valued field: any element
    ("tags:~'pci'", True),
    ("tags:!~'pci'", False),
    ("reduced:false", True),
    ("reduced:true", False),
    ("missing:'x'", False),
    ("missing:!'x'", True),
    ("platform_name:'Windows' status:'contained'", True),   # '+' decoded to space
    ("platform_name:'Windows'   status:'normal'", False),
    (f"note:'{quote(REC['note'])}'", True),
])
def test_matches(flt: str, expected: bool) -> None:
    assert matches(parse(flt), REC) is expected


def test_ast_shape() -> None:
    node = parse("a:1+b:'x',c:['A','b']")
    assert isinstance(node, Or)
    assert isinstance(node.children[0], And)
    c = node.children[1]
    assert isinstance(c, Compare) and c.op == "in" and len(c.values) == 2


@pytest.mark.parametrize("bad", [
    "", "   ", "a", "a:", "a:'x", "a:[]", "a:['x'", "(a:1", "a:1)", "a:1+", "a:1,", ":x",
    "a:*x", "a:>['x']", "a:1 + + b:2", "'x'", "a:'x'b:'y'", "a:!>3", "a:'\\",
])
def test_syntax_errors(bad: str) -> None:
    with pytest.raises(FQLSyntaxError) as ei:
        parse(bad)
    assert isinstance(ei.value, ValueError)
    assert str(ei.value)


def test_deep_nesting_is_a_syntax_error() -> None:
    with pytest.raises(FQLSyntaxError):
        parse("(" * 5000 + "a:1" + ")" * 5000)


def test_quote() -> None:
    assert quote("o'brien") == "o\\'brien"
    assert quote("a\\b") == "a\\\\b"
    assert matches(parse(f"hostname:'{quote(chr(39) + 'x')}'"), {"hostname": "'X"})
    for bad in ("web-*", "a\x00b", "a\nb", "\x7f"):
        with pytest.raises(ValueError):
            quote(bad)


def test_quote_round_trip_cannot_inject() -> None:
    evil = "x'+hostname:'"
    node = parse(f"hostname:'{quote(evil)}'")
    assert isinstance(node, Compare)
    assert node.values[0].value == evil


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=60))
def test_parse_never_raises_other_errors(s: str) -> None:
    try:
        node = parse(s)
    except FQLSyntaxError:
        return
    matches(node, REC)


FQL_ALPHABET = st.sampled_from(list("ab:'\"*!~<>=+,()[] 0123.-\\") + ["name", "true", "Z"])


@settings(max_examples=400, deadline=None)
@given(st.lists(FQL_ALPHABET, max_size=25).map("".join))
def test_parse_fql_like_strings(s: str) -> None:
    try:
        node = parse(s)
    except FQLSyntaxError:
        return
    matches(node, REC)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=30)
       .filter(lambda v: "*" not in v))
def test_quote_property(v: str) -> None:
    node = parse(f"note:'{quote(v)}'")
    assert matches(node, {"note": v})


def test_hostname_index_matches_the_full_scan() -> None:
    from tw_bridge.testing.falcon._app import _filter
    from tw_bridge.testing.falcon._fleet import Fleet

    fleet = Fleet(hosts=300, seed=5)
    index = fleet.hostname_index()
    names = [h["hostname"] for h in fleet.hosts[:40:3]]
    for fql in (
        f"hostname:'{names[0].lower()}'",
        ",".join(f"hostname:'{n.upper()}'" for n in names),
        f"hostname:['{names[1]}','{names[2].lower()}']",
        f"hostname:'{names[0]}'+platform_name:'Linux'",
        "hostname:*'*a*'",
    ):
        assert _filter(fleet.hosts, fql, index) == _filter(fleet.hosts, fql), fql
    fleet.hostname_index()
    fleet.add_host(hostname="Fresh-Host")  # the index follows new hosts
    assert [h["hostname"] for h in _filter(fleet.hosts, "hostname:'fresh-host'",
                                           fleet.hostname_index())] == ["Fresh-Host"]
