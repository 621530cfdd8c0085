"""The one cattrs converter: models -> the contract's plain dicts.

Built once at import. Timestamps become ISO 8601 UTC strings ending in ``Z``,
enums their plain string values, tuples lists; host dicts get the alias keys
(``host_id`` = ``id``, ``os`` = ``platform``) and ``isolated`` derived from
``isolation_status``; action dicts get ``rollback``.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn

from ._models import (
    ActionResult,
    ApprovalInfo,
    Detection,
    HealthState,
    HealthStatus,
    HostInfo,
    IsolationStatus,
    NetworkConnection,
    ProcessInfo,
    Reachability,
    Severity,
)

__all__ = ["converter", "format_timestamp", "parse_timestamp", "to_dict"]


def format_timestamp(value: datetime) -> str:
    """``2026-12-03T10:15:00Z`` (fractional seconds kept when present)."""
    tz = value.tzinfo
    if tz is None:
        raise ValueError("naive datetime: timestamps must be timezone-aware")
    if tz is not timezone.utc:
        value = value.astimezone(timezone.utc)
    return value.replace(tzinfo=None).isoformat() + "Z"


def parse_timestamp(value: str) -> datetime:
    """Parse an ISO 8601 timestamp; ``Z`` and offsets accepted, naive rejected."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Falcon sends 1–9 fractional digits (e.g. "07:36:04.72Z"); fromisoformat on
    # 3.10 wants 3 or 6.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = ""
        i = 0
        while i < len(rest) and rest[i].isdigit():
            digits += rest[i]
            i += 1
        tail = rest[i:]
        digits = (digits + "000000")[:6]
        text = f"{head}.{digits}{tail}"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no timezone")
    try:
        return dt.astimezone(timezone.utc)
    except OverflowError:  # year 1 or 9999 with an offset
        raise ValueError(f"timestamp {value!r} is out of range") from None


#: The generated (reference) unstructure functions that hand-written hooks replace;
#: the tests check both agree.
_reference: dict[str, Callable[[Any], dict[str, Any]]] = {}


def _make_converter() -> cattrs.Converter:
    for cls in (HostInfo, Detection, ActionResult, ApprovalInfo, ProcessInfo,
                NetworkConnection, HealthStatus):
        attrs.resolve_types(cls)
    conv = cattrs.Converter()
    conv.register_unstructure_hook(datetime, format_timestamp)
    # The enums mix in ``str``; cattrs' direct dispatch on ``str`` would pass
    # them through as enum members, so each gets its own hook.
    for enum_cls in (IsolationStatus, Reachability, Severity, HealthState):
        conv.register_unstructure_hook(enum_cls, _enum_value)
        conv.register_structure_hook(enum_cls, lambda v, t: t(v))
    conv.register_unstructure_hook(tuple, list)
    conv.register_structure_hook(datetime, lambda v, _: _structure_dt(v))

    # Unstructure functions are generated on first use (cattrs compiles them), so
    # importing tw_bridge does not pay for models a program never returns.
    generated: dict[type, Callable[[Any], dict[str, Any]]] = {}

    def base(cls: type, obj: Any) -> dict[str, Any]:
        fn = generated.get(cls)
        if fn is None:
            fn = generated[cls] = make_dict_unstructure_fn(cls, conv)
        return fn(obj)

    def host(h: HostInfo) -> dict[str, Any]:
        # Written out rather than generated: fleet searches turn tens of thousands
        # of hosts into dicts, and this is the contract's exact key order in one step.
        # tests/test_models.py checks it against the generated function.
        iso = h.isolation_status.value
        return {
            "id": h.id,
            "host_id": h.id,
            "hostname": h.hostname,
            "platform": h.platform,
            "os": h.platform,
            "os_version": h.os_version,
            "agent_version": h.agent_version,
            "last_seen": (format_timestamp(h.last_seen) if h.last_seen is not None
                          else "1970-01-01T00:00:00Z"),
            "isolation_status": iso,
            "isolated": iso in ("isolated", "release_pending"),
            "status": h.status.value,
            "ip_addresses": list(h.ip_addresses),
            "mac_addresses": list(h.mac_addresses),
            "tags": list(h.tags),
        }

    def host_generated(h: HostInfo) -> dict[str, Any]:
        d = base(HostInfo, h)
        d["host_id"] = d["id"]
        d["os"] = d["platform"]
        d["isolated"] = h.isolated
        if d["last_seen"] is None:
            d["last_seen"] = "1970-01-01T00:00:00Z"
        return {k: d[k] for k in _HOST_ORDER}

    _reference["HostInfo"] = host_generated

    def action(a: ActionResult) -> dict[str, Any]:
        d = base(ActionResult, a)
        d["rollback"] = a.rollback
        if d["request"] is None:
            del d["request"]
        return d

    conv.register_unstructure_hook(HostInfo, host)
    conv.register_unstructure_hook(ActionResult, action)
    for cls in (Detection, ProcessInfo, NetworkConnection, HealthStatus, ApprovalInfo):
        conv.register_unstructure_hook(cls, functools.partial(base, cls))
    return conv


def _enum_value(e: enum.Enum) -> Any:
    return e.value


def _structure_dt(value: Any) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value
    if isinstance(value, str):
        return parse_timestamp(value)
    raise TypeError(f"expected an ISO 8601 timestamp, got {type(value).__name__}")


_HOST_ORDER = (
    "id",
    "host_id",
    "hostname",
    "platform",
    "os",
    "os_version",
    "agent_version",
    "last_seen",
    "isolation_status",
    "isolated",
    "status",
    "ip_addresses",
    "mac_addresses",
    "tags",
)

converter: cattrs.Converter = _make_converter()
to_dict: Callable[[Any], Any] = converter.unstructure
