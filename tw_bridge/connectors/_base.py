"""The async connector interface.

:class:`EDRConnector` holds everything every EDR shares: host-argument parsing,
the ambiguity rule, argument validation, and the policy gate in front of every
response action. Concrete connectors implement the small ``_``-prefixed
primitives (find candidates, search, fetch detections, perform an action, ...).
"""

from __future__ import annotations

import abc
import math
import os
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from .._errors import AmbiguousHost, HostNotFound
from .._hostarg import HostRef, parse_host, validate_search_term
from .._models import (
    ActionResult,
    ApprovalInfo,
    Detection,
    HealthStatus,
    HostInfo,
    NetworkConnection,
    ProcessInfo,
)
from .._redact import get_logger

if TYPE_CHECKING:
    from ..policy import ActionRequest, GateResult, PolicyGate

__all__ = ["ACTIONS", "Approver", "EDRConnector", "new_action_id", "newest", "now_utc"]

log = get_logger("tw_bridge.connectors")

ACTIONS = ("isolate_host", "unisolate_host", "scan_host")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

Approver = Callable[[dict[str, Any]], "str | bool | None"]


def _check_int(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{name}={value} is out of range; use {lo}..{hi}")
    return value


def _check_seconds(name: str, value: object, *, allow_none: bool = True) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}={value!r} must be a finite number >= 0")
    return float(value)


def newest(hosts: Sequence[HostInfo]) -> HostInfo:
    """The most recently seen of several devices (ties broken by id, for stability)."""
    return max(hosts, key=lambda h: (h.last_seen or _EPOCH, h.id))


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def new_action_id(action: str | None = None) -> str:
    """``isolate-<uuid4>``, as the older module made them."""
    prefix = {"isolate_host": "isolate-", "unisolate_host": "unisolate-", "scan_host": "scan-"}
    return prefix.get(action or "", "") + str(uuid.uuid4())


class EDRConnector(abc.ABC):
    """Base of every async EDR connector.

    Use it as an async context manager::

        async with MockConnector() as edr:
            host = await edr.get_host("workstation-001")

    ``policy`` is the :class:`tw_bridge.policy.PolicyGate` in front of response
    actions (the process default when omitted); ``approver`` is a callback that
    may approve an action needing approval (given the request as a dict; it
    returns the approver's identity, ``True``, or a falsy value to refuse).
    """

    connector_type: ClassVar[str] = "base"
    #: Seconds a host resolved by a lookup may stand in for the same host argument in a
    #: later ``get_detections`` / ``get_processes`` / ``get_network_connections`` (saves
    #: the EDR a second resolution in triage loops). Never used by ``get_host``,
    #: ``get_hosts`` or response actions, which always resolve afresh.
    lookup_cache_ttl: ClassVar[float] = 30.0
    _LOOKUP_CACHE_MAX: ClassVar[int] = 10_000

    def __init__(
        self,
        *,
        policy: PolicyGate | None = None,
        approver: Approver | None = None,
        requester: str | None = None,
    ) -> None:
        if policy is None and any(
            os.environ.get(v) for v in ("TW_POLICY_FILE", "TW_POLICY_DB", "TW_AUDIT_LOG")
        ):
            # Built now, not at the first action, so a bad policy file or database
            # fails at construction with the file, line and field.
            from ..policy import PolicyGate

            policy = PolicyGate(approver=approver)
        # Otherwise (built-in defaults, nothing to get wrong) the policy engine loads
        # at the first action: lookups alone never import it.
        self._gate: PolicyGate | None = policy
        self._approver = approver
        self._requester = requester
        self._recent: dict[tuple[str, str], tuple[float, HostInfo]] = {}

    # -- lifecycle -------------------------------------------------------------
    async def __aenter__(self) -> EDRConnector:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Acquire resources (HTTP session, ...). No network traffic."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""

    @property
    def gate(self) -> PolicyGate:
        """The policy gate in front of this connector's response actions."""
        if self._gate is None:
            from ..policy import PolicyGate

            self._gate = PolicyGate(approver=self._approver)
        return self._gate

    # -- primitives each connector implements -----------------------------------
    @abc.abstractmethod
    async def _find(self, ref: HostRef) -> list[HostInfo]:
        """Every device matching ``ref`` (exact, case-insensitive hostnames)."""

    async def _find_many(self, refs: Sequence[HostRef]) -> list[list[HostInfo]]:
        """Candidates for many refs; connectors override to batch requests."""
        return [await self._find(ref) for ref in refs]

    @abc.abstractmethod
    async def _search(self, query: str, limit: int) -> list[HostInfo]: ...

    @abc.abstractmethod
    async def _detections(
        self, host: HostInfo, *, hours: float | None, limit: int
    ) -> list[Detection]: ...

    @abc.abstractmethod
    async def _perform(
        self, action: str, host: HostInfo, *, wait: float | None
    ) -> ActionResult: ...

    @abc.abstractmethod
    async def _processes(self, host: HostInfo, *, hours: float) -> list[ProcessInfo]: ...

    @abc.abstractmethod
    async def _connections(
        self, host: HostInfo, *, hours: float
    ) -> list[NetworkConnection]: ...

    @abc.abstractmethod
    async def health_check(self) -> HealthStatus:
        """Check connectivity; never raises for a failing EDR (reports ``unhealthy``)."""

    def _describe_action(self, action: str, host: HostInfo) -> dict[str, Any]:
        """What ``action`` would send, for ``dry_run`` (connectors refine it)."""
        return {"action": action, "device_id": host.id}

    def _validate_ref(self, ref: HostRef) -> HostRef:
        """Connector-specific checks (e.g. CrowdStrike AIDs are 32 hex)."""
        return ref

    # -- resolution --------------------------------------------------------------
    def _ref(self, host: object) -> HostRef:
        return self._validate_ref(parse_host(host))

    @staticmethod
    def _pick(ref: HostRef, candidates: list[HostInfo], *, for_action: bool) -> HostInfo:
        if not candidates:
            raise HostNotFound(f"Not found: Host not found: {ref.original}")
        if len(candidates) == 1:
            return candidates[0]
        # An id match is exact; only hostnames can be shared.
        by_id = [h for h in candidates if h.id == ref.value]
        if len(by_id) == 1:
            return by_id[0]
        if for_action:
            ids = tuple(h.id for h in candidates)
            raise AmbiguousHost(
                f"hostname {ref.value!r} matches {len(candidates)} devices "
                f"({', '.join(ids)}); refusing to act on a guess: pass 'aid:<id>' instead",
                candidates=ids,
            )
        return newest(candidates)

    async def resolve(self, host: object, *, for_action: bool = False) -> HostInfo:
        """Resolve a host argument to one device (the ambiguity rule applied)."""
        ref = self._ref(host)
        found = self._pick(ref, await self._find(ref), for_action=for_action)
        if not for_action:
            self._remember(ref, found)
        return found

    def _remember(self, ref: HostRef, host: HostInfo) -> None:
        if self.lookup_cache_ttl <= 0:
            return
        if len(self._recent) >= self._LOOKUP_CACHE_MAX:
            self._recent.pop(next(iter(self._recent)))
        self._recent[(ref.kind.value, ref.value.lower())] = (
            time.monotonic() + self.lookup_cache_ttl, host
        )

    def _forget(self, device_id: str) -> None:
        for key in [k for k, (_, h) in self._recent.items() if h.id == device_id]:
            del self._recent[key]

    async def _resolve_for_read(self, host: object) -> HostInfo:
        """Like :meth:`resolve`, reusing a host a lookup resolved moments ago."""
        ref = self._ref(host)
        hit = self._recent.get((ref.kind.value, ref.value.lower()))
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        return await self.resolve(host)

    # -- public API ----------------------------------------------------------------
    async def get_host(self, host: str) -> HostInfo:
        """One device by ``aid:<id>``, bare id, ``hostname:<name>`` or bare hostname."""
        return await self.resolve(host)

    async def get_host_info(self, host: str) -> HostInfo:
        """Older name of :meth:`get_host`."""
        return await self.resolve(host)

    async def get_hosts(self, hosts: Sequence[str]) -> list[HostInfo | None]:
        """Many hosts at once; ``None`` where nothing matched. Order follows ``hosts``."""
        if isinstance(hosts, (str, bytes)) or not isinstance(hosts, Sequence):
            raise TypeError("hosts must be a list or tuple of host arguments")
        refs = [self._ref(h) for h in hosts]
        if not refs:
            return []
        found = await self._find_many(refs)
        out: list[HostInfo | None] = []
        for ref, candidates in zip(refs, found, strict=True):
            picked = self._pick(ref, candidates, for_action=False) if candidates else None
            if picked is not None:
                self._remember(ref, picked)
            out.append(picked)
        return out

    async def search_hosts(self, query: str, limit: int = 100) -> list[HostInfo]:
        """Hosts matching an FQL filter or a plain term (substring of hostname, IP, tag, id)."""
        query = validate_search_term(query)
        limit = _check_int("limit", limit, 1, 1_000_000)
        return await self._search(query, limit)

    async def get_detections(
        self, host: str, *, hours: float | None = None, limit: int = 100
    ) -> list[Detection]:
        """Detections on ``host``, newest first; ``hours`` limits how far back."""
        hours = _check_seconds("hours", hours)
        limit = _check_int("limit", limit, 1, 10_000)
        target = await self._resolve_for_read(host)
        return await self._detections(target, hours=hours, limit=limit)

    async def get_processes(self, host: str, hours: float = 24) -> list[ProcessInfo]:
        hours_ = _check_seconds("hours", hours, allow_none=False)
        assert hours_ is not None
        target = await self._resolve_for_read(host)
        return await self._processes(target, hours=hours_)

    async def get_network_connections(
        self, host: str, hours: float = 24
    ) -> list[NetworkConnection]:
        hours_ = _check_seconds("hours", hours, allow_none=False)
        assert hours_ is not None
        target = await self._resolve_for_read(host)
        return await self._connections(target, hours=hours_)

    async def isolate_host(
        self,
        host: str,
        *,
        approval_id: str | None = None,
        wait: float | None = None,
        dry_run: bool = False,
        requester: str | None = None,
        confidence: float | None = None,
    ) -> ActionResult:
        """Contain ``host`` (policy-gated). ``wait`` seconds: poll until confirmed."""
        return await self._act(
            "isolate_host", host, approval_id, wait, dry_run, requester, confidence
        )

    async def unisolate_host(
        self,
        host: str,
        *,
        approval_id: str | None = None,
        wait: float | None = None,
        dry_run: bool = False,
        requester: str | None = None,
        confidence: float | None = None,
    ) -> ActionResult:
        """Lift containment of ``host`` (policy-gated)."""
        return await self._act(
            "unisolate_host", host, approval_id, wait, dry_run, requester, confidence
        )

    async def scan_host(
        self,
        host: str,
        *,
        approval_id: str | None = None,
        dry_run: bool = False,
        requester: str | None = None,
        confidence: float | None = None,
    ) -> ActionResult:
        """Start an on-demand scan of ``host`` (policy-gated)."""
        return await self._act("scan_host", host, approval_id, None, dry_run, requester, confidence)

    async def _act(
        self,
        action: str,
        host: object,
        approval_id: object,
        wait: object,
        dry_run: object,
        requester: object,
        confidence: object,
    ) -> ActionResult:
        from ..policy import ActionRequest

        ref = self._ref(host)
        wait_ = _check_seconds("wait", wait)
        if not isinstance(dry_run, bool):
            raise TypeError(f"dry_run must be a bool, not {type(dry_run).__name__}")
        if approval_id is not None and not isinstance(approval_id, str):
            raise TypeError(f"approval_id must be a str, not {type(approval_id).__name__}")
        if requester is not None and not isinstance(requester, str):
            raise TypeError(f"requester must be a str, not {type(requester).__name__}")
        if confidence is not None and (
            isinstance(confidence, bool) or not isinstance(confidence, (int, float))
        ):
            raise TypeError("confidence must be a number between 0 and 1")
        target = self._pick(ref, await self._find(ref), for_action=True)
        req = ActionRequest(
            action=action,
            device_id=target.id,
            hostname=target.hostname,
            tags=tuple(target.tags),
            connector_type=self.connector_type,
            approval_id=approval_id,
            requester=requester or self._requester,
            confidence=float(confidence) if confidence is not None else None,
            dry_run=dry_run,
        )
        self._forget(target.id)
        gate = self.gate
        decision = await gate.authorize(req)
        approval = _approval(decision)
        if dry_run:
            return ActionResult(
                success=False,
                action_id=new_action_id(action),
                action=action,
                host_id=target.id,
                hostname=target.hostname,
                message=(
                    f"dry run: {action} on {target.hostname} ({target.id}) was not sent; "
                    f"policy decision: {decision.decision}"
                    + (f" ({decision.reason})" if decision.reason else "")
                ),
                timestamp=now_utc(),
                status="dry_run",
                approval=approval,
                dry_run=True,
                request=self._describe_action(action, target),
            )
        try:
            result = await self._perform(action, target, wait=wait_)
        except BaseException as exc:
            await _record(gate, req, decision, False, str(exc), getattr(exc, "trace_id", None), exc)
            raise
        result = attrs.evolve(result, approval=approval)
        await _record(gate, req, decision, result.success, result.message, result.trace_id, None)
        log.info(
            "%s on %s (%s): %s [%s]", action, target.hostname, target.id, result.status,
            decision.decision,
        )
        return result


def _approval(decision: GateResult) -> ApprovalInfo:
    return ApprovalInfo(
        decision=decision.decision,
        request_id=decision.request_id,
        approved_by=decision.approved_by,
    )


async def _record(
    gate: PolicyGate,
    req: ActionRequest,
    decision: GateResult,
    success: bool,
    message: str,
    trace_id: str | None,
    error: BaseException | None,
) -> None:
    try:
        await gate.record_outcome(
            req, decision, success=success, message=message, trace_id=trace_id, error=error
        )
    except Exception:  # the action happened; a failing audit must not hide that
        log.exception("could not record the outcome of %s on %s", req.action, req.device_id)

