"""attrs models of Falcon's records, structured with the one converter.

Only the fields the connector reads are declared; cattrs ignores the rest. Every
field is optional (``None``) because Falcon omits and nulls fields freely;
mapping onto the contract's models happens in ``_hosts`` / ``_alerts``.
Structuring failures (a string where a list belongs, ...) surface as
:class:`~tw_bridge.InvalidResponse` in :func:`structure`.
"""

from __future__ import annotations

from typing import Any, TypeVar

import attrs
import cattrs

from ..._convert import converter
from ..._errors import InvalidResponse

__all__ = [
    "Alert",
    "Device",
    "Envelope",
    "FalconError",
    "Meta",
    "OnlineState",
    "Pagination",
    "RTRCommandResult",
    "RTRSession",
    "ScanRecord",
    "Token",
    "structure",
]

T = TypeVar("T")


@attrs.frozen
class FalconError:
    code: int | None = None
    message: str | None = None
    id: str | None = None


@attrs.frozen
class Pagination:
    # ``offset`` is an int for query endpoints and a token for scroll endpoints.
    offset: Any = None
    limit: int | None = None
    total: int | None = None
    next: str | None = None
    after: str | None = None
    expires_at: int | None = None


@attrs.frozen
class Meta:
    query_time: float | None = None
    powered_by: str | None = None
    trace_id: str | None = None
    pagination: Pagination | None = None


@attrs.frozen
class Envelope:
    meta: Meta | None = None
    resources: list[Any] | None = None
    errors: list[FalconError] | None = None

    @property
    def trace_id(self) -> str | None:
        return self.meta.trace_id if self.meta else None

    @property
    def error_text(self) -> str:
        parts = [f"{e.code}: {e.message}" if e.code else str(e.message) for e in self.errors or ()]
        return "; ".join(parts)


@attrs.frozen
class Token:
    access_token: str | None = None
    token_type: str | None = None
    expires_in: float | None = None


@attrs.define  # not frozen: its __init__ is about twice as fast, and fleets are large
class Device:
    device_id: str
    hostname: str | None = None
    platform_name: str | None = None
    os_version: str | None = None
    os_product_name: str | None = None
    agent_version: str | None = None
    first_seen: str | None = None
    last_seen: str | None = None
    status: str | None = None
    local_ip: str | None = None
    connection_ip: str | None = None
    external_ip: str | None = None
    mac_address: str | None = None
    connection_mac_address: str | None = None
    tags: list[str] | None = None


@attrs.frozen
class OnlineState:
    id: str
    state: str | None = None
    last_seen: str | None = None


@attrs.frozen
class Alert:
    composite_id: str
    id: str | None = None
    agent_id: str | None = None
    aggregate_id: str | None = None
    timestamp: str | None = None
    created_timestamp: str | None = None
    updated_timestamp: str | None = None
    severity: float | None = None
    severity_name: str | None = None
    confidence: float | None = None
    tactic: str | None = None
    tactic_id: str | None = None
    technique: str | None = None
    technique_id: str | None = None
    objective: str | None = None
    name: str | None = None
    display_name: str | None = None
    description: str | None = None
    filename: str | None = None
    filepath: str | None = None
    cmdline: str | None = None
    sha256: str | None = None
    md5: str | None = None
    user_name: str | None = None
    status: str | None = None
    product: str | None = None
    type: str | None = None
    pattern_id: int | None = None
    falcon_host_link: str | None = None
    parent_details: dict[str, Any] | None = None
    mitre_attack: list[dict[str, Any]] | None = None
    device: dict[str, Any] | None = None


@attrs.frozen
class ScanRecord:
    id: str
    status: str | None = None
    hosts: list[str] | None = None


@attrs.frozen
class RTRSession:
    session_id: str
    pwd: str | None = None


@attrs.frozen
class RTRCommandResult:
    session_id: str | None = None
    cloud_request_id: str | None = None
    task_id: str | None = None
    complete: bool | None = None
    stdout: str | None = None
    stderr: str | None = None
    base_command: str | None = None
    sequence_id: int | None = None
    queued_command_offline: bool | None = None


def structure(data: Any, cls: type[T], *, what: str, trace_id: str | None = None) -> T:
    """Structure ``data`` into ``cls`` or raise :class:`InvalidResponse`."""
    try:
        return converter.structure(data, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError, AttributeError) as exc:
        detail = "; ".join(cattrs.transform_error(exc)) if isinstance(
            exc, cattrs.BaseValidationError
        ) else f"{type(exc).__name__}: {exc}"
        raise InvalidResponse(
            f"Falcon sent {what} that cannot be understood ({detail[:300]})", trace_id=trace_id
        ) from exc


def structure_list(items: Any, cls: type[T], *, what: str, trace_id: str | None = None) -> list[T]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise InvalidResponse(
            f"Falcon sent {what}: expected a list of resources, got {type(items).__name__}",
            trace_id=trace_id,
        )
    if cls is Device:
        # Fleet searches structure tens of thousands of records: a well-formed one is
        # built directly (about 7x faster than the converter); anything unusual still
        # goes through the converter, which reports exactly what is wrong.
        return [_device_fast(item) or structure(item, cls, what=what, trace_id=trace_id)  # type: ignore[misc]
                for item in items]
    return [structure(item, cls, what=what, trace_id=trace_id) for item in items]


_DEVICE_STR_FIELDS = tuple(
    f.name for f in attrs.fields(Device) if f.name not in ("device_id", "tags")
)


def _device_fast(item: Any) -> Device | None:
    if type(item) is not dict:
        return None
    get = item.get
    device_id = get("device_id")
    if type(device_id) is not str:
        return None
    values: dict[str, Any] = {}
    for name in _DEVICE_STR_FIELDS:
        v = get(name)
        if v is not None and type(v) is not str:
            return None
        values[name] = v
    tags = get("tags")
    if tags is not None:
        if type(tags) is not list or any(type(t) is not str for t in tags):
            return None
    return Device(device_id=device_id, tags=tags, **values)
