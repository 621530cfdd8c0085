"""MockConnector: an in-memory EDR with the contract's sample data.

Stateful: isolation changes as actions are applied. Test hooks: :meth:`add_host`,
:meth:`add_detection`, :meth:`set_latency`, :meth:`fail_next`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import attrs

from .._errors import ActionConflict, ConnectorError
from .._hostarg import HostRef, RefKind
from .._models import (
    ActionResult,
    Detection,
    HealthState,
    HealthStatus,
    HostInfo,
    IsolationStatus,
    NetworkConnection,
    ProcessInfo,
)
from .._query import looks_like_fql
from ._base import Approver, EDRConnector, new_action_id, now_utc
from ._mock_data import sample_connections, sample_detections, sample_hosts, sample_processes

__all__ = ["MockConnector"]

_CONTAINMENT = {
    IsolationStatus.NORMAL: "normal",
    IsolationStatus.ISOLATION_PENDING: "containment_pending",
    IsolationStatus.ISOLATED: "contained",
    IsolationStatus.RELEASE_PENDING: "lift_containment_pending",
}


class MockConnector(EDRConnector):
    """An EDR in memory, for tests, demos and the older ``EDRBridge("mock")`` callers."""

    connector_type = "mock"

    def __init__(
        self,
        *,
        with_sample_data: bool = True,
        policy: Any = None,
        approver: Approver | None = None,
        requester: str | None = None,
    ) -> None:
        super().__init__(policy=policy, approver=approver, requester=requester)
        now = now_utc()
        self._hosts: dict[str, HostInfo] = {}
        self._det_store: list[Detection] = []
        self._proc_store: dict[str, list[ProcessInfo]] = {}
        self._conn_store: dict[str, list[NetworkConnection]] = {}
        self._latency = 0.0
        self._failures: list[BaseException | type[BaseException]] = []
        self.calls: list[str] = []
        self.actions: list[tuple[str, str]] = []
        if with_sample_data:
            for host in sample_hosts(now):
                self._hosts[host.id] = host
            self._det_store = sample_detections(now)
            self._proc_store = sample_processes(now)
            self._conn_store = sample_connections(now)

    def __repr__(self) -> str:
        return f"MockConnector(hosts={len(self._hosts)}, detections={len(self._det_store)})"

    # -- test hooks ------------------------------------------------------------------
    def add_host(self, host: HostInfo | None = None, **fields: Any) -> HostInfo:
        """Add (or replace) a device: a :class:`HostInfo`, or its fields as keywords."""
        if host is None:
            fields.setdefault("id", f"host-{uuid.uuid4().hex[:8]}")
            fields.setdefault("platform", "Windows")
            fields.setdefault("last_seen", now_utc())
            host = HostInfo(**fields)
        elif fields:
            raise TypeError("pass a HostInfo or keyword fields, not both")
        self._hosts[host.id] = host
        return host

    def add_detection(self, detection: Detection | None = None, **fields: Any) -> Detection:
        """Add a detection; ``host_id`` ties it to a device."""
        if detection is None:
            fields.setdefault("id", f"det-{uuid.uuid4().hex[:8]}")
            fields.setdefault("timestamp", now_utc())
            detection = Detection(**fields)
        elif fields:
            raise TypeError("pass a Detection or keyword fields, not both")
        self._det_store.append(detection)
        return detection

    def add_processes(self, host_id: str, processes: Iterable[ProcessInfo]) -> None:
        self._proc_store.setdefault(host_id, []).extend(processes)

    def add_connections(self, host_id: str, connections: Iterable[NetworkConnection]) -> None:
        self._conn_store.setdefault(host_id, []).extend(connections)

    def set_latency(self, seconds: float) -> None:
        """Delay every connector operation by ``seconds``."""
        self._latency = float(seconds)

    def fail_next(
        self, n: int = 1, error: BaseException | type[BaseException] | None = None
    ) -> None:
        """Make the next ``n`` operations raise ``error`` (a ``ConnectorError`` by default)."""
        exc = error if error is not None else ConnectorError("injected mock failure")
        self._failures.extend([exc] * n)

    @property
    def hosts(self) -> list[HostInfo]:
        return list(self._hosts.values())

    async def _tick(self, op: str) -> None:
        self.calls.append(op)
        if self._latency:
            await asyncio.sleep(self._latency)
        if self._failures:
            exc = self._failures.pop(0)
            if isinstance(exc, type):
                raise exc("injected mock failure")
            raise exc

    # -- primitives ----------------------------------------------------------------------
    async def _find(self, ref: HostRef) -> list[HostInfo]:
        await self._tick("find")
        return self._match(ref)

    def _match(self, ref: HostRef) -> list[HostInfo]:
        if ref.kind is not RefKind.HOSTNAME:
            by_id = self._hosts.get(ref.value)
            if by_id is not None:
                return [by_id]
            if ref.kind is RefKind.ID:
                return []
        name = ref.value.lower()
        return [h for h in self._hosts.values() if h.hostname.lower() == name]

    async def _find_many(self, refs: Any) -> list[list[HostInfo]]:
        await self._tick("find_many")
        return [self._match(ref) for ref in refs]

    async def _search(self, query: str, limit: int) -> list[HostInfo]:
        await self._tick("search")
        hosts = sorted(self._hosts.values(), key=lambda h: h.hostname.lower())
        if looks_like_fql(query) and query.strip():
            from .. import _fql

            node = _fql.parse(query)
            found = [h for h in hosts if _fql.matches(node, _falcon_record(h))]
        else:
            term = query.lower()
            found = [
                h
                for h in hosts
                if term in h.hostname.lower()
                or term in h.id.lower()
                or any(term in ip.lower() for ip in h.ip_addresses)
                or any(term in t.lower() for t in h.tags)
            ]
        return found[:limit]

    async def _detections(
        self, host: HostInfo, *, hours: float | None, limit: int
    ) -> list[Detection]:
        await self._tick("detections")
        found = [d for d in self._det_store if d.host_id == host.id]
        if hours is not None:
            cutoff = now_utc() - timedelta(hours=hours)
            found = [d for d in found if d.timestamp >= cutoff]
        found.sort(key=lambda d: d.timestamp, reverse=True)
        return found[:limit]

    async def _processes(self, host: HostInfo, *, hours: float) -> list[ProcessInfo]:
        await self._tick("processes")
        cutoff = now_utc() - timedelta(hours=hours)
        return [p for p in self._proc_store.get(host.id, []) if p.start_time >= cutoff]

    async def _connections(self, host: HostInfo, *, hours: float) -> list[NetworkConnection]:
        await self._tick("connections")
        cutoff = now_utc() - timedelta(hours=hours)
        return [c for c in self._conn_store.get(host.id, []) if c.timestamp >= cutoff]

    def _describe_action(self, action: str, host: HostInfo) -> dict[str, Any]:
        return {"connector": "mock", "action": action, "device_id": host.id}

    async def _perform(self, action: str, host: HostInfo, *, wait: float | None) -> ActionResult:
        await self._tick(action)
        current = self._hosts.get(host.id, host)
        when = now_utc()
        scan_id = None
        if action == "isolate_host":
            if current.isolation_status.isolated or (
                current.isolation_status is IsolationStatus.ISOLATION_PENDING
            ):
                raise ActionConflict(
                    f"Request failed: Host {current.hostname} is already isolated "
                    f"({current.isolation_status.value})"
                )
            new = IsolationStatus.ISOLATED
            message = f"Host {current.hostname} isolated successfully"
        elif action == "unisolate_host":
            if not current.isolation_status.isolated and (
                current.isolation_status is not IsolationStatus.ISOLATION_PENDING
            ):
                raise ActionConflict(
                    f"Request failed: Host {current.hostname} is not isolated "
                    f"({current.isolation_status.value})"
                )
            new = IsolationStatus.NORMAL
            message = f"Host {current.hostname} isolation removed"
        elif action == "scan_host":
            new = current.isolation_status
            scan_id = uuid.uuid4().hex
            message = f"On-demand scan {scan_id} started on host {current.hostname}"
        else:  # pragma: no cover - the base class only sends the three actions
            raise ValueError(f"unknown action {action!r}")
        self._hosts[current.id] = attrs.evolve(current, isolation_status=new)
        self.actions.append((action, current.id))
        return ActionResult(
            success=True,
            action_id=new_action_id(action),
            action=action,
            host_id=current.id,
            hostname=current.hostname,
            message=message,
            timestamp=when,
            status="scan_pending" if action == "scan_host" else new.value,
            scan_id=scan_id,
        )

    async def health_check(self) -> HealthStatus:
        try:
            await self._tick("health")
        except Exception as exc:  # noqa: BLE001 - health reports, never raises
            return HealthStatus(HealthState.UNHEALTHY, self.connector_type, str(exc))
        message = f"mock connector with {len(self._hosts)} hosts"
        return HealthStatus(HealthState.HEALTHY, self.connector_type, message)


def _falcon_record(h: HostInfo) -> dict[str, Any]:
    """The host as a Falcon device record, so FQL filters work on the mock too."""
    last_seen: datetime | None = h.last_seen
    return {
        "device_id": h.id,
        "hostname": h.hostname,
        "platform_name": h.platform,
        "os_version": h.os_version,
        "agent_version": h.agent_version,
        "last_seen": last_seen.strftime("%Y-%m-%dT%H:%M:%SZ") if last_seen else None,
        "status": _CONTAINMENT[h.isolation_status],
        "local_ip": h.ip_addresses[0] if h.ip_addresses else None,
        "mac_address": h.mac_addresses[0] if h.mac_addresses else None,
        "tags": list(h.tags),
    }
