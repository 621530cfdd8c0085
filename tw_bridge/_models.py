"""Data models returned by the async connectors.

Plain attrs classes with precise types. :mod:`tw_bridge._convert` turns them into
the contract's dicts; nothing else builds those dicts by hand.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import attrs

__all__ = [
    "ActionResult",
    "ApprovalInfo",
    "Detection",
    "HealthState",
    "HealthStatus",
    "HostInfo",
    "IsolationStatus",
    "NetworkConnection",
    "ProcessInfo",
    "Reachability",
    "Severity",
]


class IsolationStatus(str, enum.Enum):
    """Network containment state of a device (not its reachability)."""

    NORMAL = "normal"
    ISOLATION_PENDING = "isolation_pending"
    ISOLATED = "isolated"
    RELEASE_PENDING = "release_pending"

    @property
    def isolated(self) -> bool:
        """True while the device is cut off: isolated, or isolated and awaiting release."""
        return self._value_ in ("isolated", "release_pending")

    def __str__(self) -> str:
        return self.value


class Reachability(str, enum.Enum):
    """Whether the sensor is currently connected to the cloud."""

    ONLINE = "online"
    OFFLINE = "offline"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


class Severity(str, enum.Enum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFORMATIONAL = "informational"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def from_score(cls, score: int | float) -> Severity:
        """Map Falcon's 1–100 severity score onto a name (30 = Low, 70 = High)."""
        if score >= 90:
            return cls.CRITICAL
        if score >= 70:
            return cls.HIGH
        if score >= 50:
            return cls.MEDIUM
        if score >= 20:
            return cls.LOW
        return cls.INFORMATIONAL

    @classmethod
    def parse(cls, value: str) -> Severity:
        v = value.strip().lower()
        if v == "info":
            v = "informational"
        return cls(v)


class HealthState(str, enum.Enum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


def _aware(_inst: Any, attribute: attrs.Attribute[Any], value: datetime | None) -> None:
    if value is None:
        return
    if not isinstance(value, datetime):
        raise TypeError(f"{attribute.name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None:
        raise ValueError(
            f"{attribute.name} must be timezone-aware (naive datetimes are rejected); "
            "use datetime.now(timezone.utc) or .replace(tzinfo=timezone.utc)"
        )


def _strs(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    out = tuple(value)
    if all(type(v) is str for v in out):
        return out
    return tuple(map(str, out))


@attrs.frozen
class HostInfo:
    """One device as the EDR describes it."""

    id: str
    hostname: str
    platform: str
    os_version: str = ""
    agent_version: str = ""
    last_seen: datetime | None = attrs.field(default=None, validator=_aware)
    isolation_status: IsolationStatus = IsolationStatus.NORMAL
    status: Reachability = Reachability.UNKNOWN
    ip_addresses: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    mac_addresses: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    tags: tuple[str, ...] = attrs.field(default=(), converter=_strs)

    @property
    def isolated(self) -> bool:
        return self.isolation_status.isolated


@attrs.frozen
class Detection:
    """One detection (for CrowdStrike: an alert)."""

    id: str
    name: str
    timestamp: datetime = attrs.field(validator=_aware)
    severity: Severity
    description: str = ""
    tactic: str = ""
    technique: str = ""
    technique_name: str = ""
    process_name: str | None = None
    file_path: str | None = None
    file_hash: str | None = None
    status: str = "new"
    host_id: str = ""
    hostname: str = ""
    details: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class ApprovalInfo:
    decision: str
    request_id: str | None = None
    approved_by: str | None = None


_ROLLBACK = {"isolate_host": "unisolate_host", "unisolate_host": "isolate_host"}


@attrs.frozen
class ActionResult:
    """Outcome of a response action."""

    success: bool
    action_id: str
    action: str
    host_id: str
    hostname: str
    message: str
    timestamp: datetime = attrs.field(validator=_aware)
    status: str
    approval: ApprovalInfo | None = None
    dry_run: bool = False
    scan_id: str | None = None
    trace_id: str | None = None
    request: dict[str, Any] | None = None

    @property
    def rollback(self) -> str | None:
        return _ROLLBACK.get(self.action)


@attrs.frozen
class ProcessInfo:
    pid: int
    name: str
    command_line: str = ""
    parent_pid: int | None = None
    user: str = ""
    start_time: datetime = attrs.field(kw_only=True, validator=_aware)
    file_hash: str | None = None
    file_path: str | None = None


@attrs.frozen
class NetworkConnection:
    pid: int | None
    process_name: str
    local_address: str
    local_port: int
    remote_address: str
    remote_port: int
    protocol: str
    state: str
    timestamp: datetime = attrs.field(validator=_aware)


@attrs.frozen
class HealthStatus:
    status: HealthState
    connector_type: str
    message: str | None = None
