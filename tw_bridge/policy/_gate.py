"""The policy gate the async connectors call before every response action.

``authorize`` either returns a :class:`GateResult` (``allowed`` or ``approved``) or raises
:class:`~tw_bridge._errors.PolicyDenied` / :class:`~tw_bridge._errors.ApprovalRequired`;
with ``dry_run=True`` it only reports. ``record_outcome`` settles the rate-limit slot the
authorization took and audits the result. SQLite and file work runs in a worker thread.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
import attrs

from .._errors import ApprovalRequired, PolicyDenied
from .._redact import get_logger, redact
from ._audit import AuditTrail, get_default_audit
from ._engine import Decision, EvalContext, PolicyEngine, kill_switch_source
from ._store import (
    ApprovalRecord,
    ApprovalStore,
    ConsumeOutcome,
    get_default_store,
    iso,
    parse_request_id,
)

__all__ = ["ActionRequest", "Approver", "GateResult", "PolicyGate"]

log = get_logger("tw_bridge.policy")

T = TypeVar("T")

#: Called with the request as a dict; a str is the approver's identity, True means
#: ``"approver"``, anything falsy means no. May also be a coroutine function.
Approver = Callable[[dict[str, Any]], Any]


@attrs.frozen
class ActionRequest:
    """A response action about to be sent, with its resolved target."""

    action: str
    device_id: str
    hostname: str
    tags: tuple[str, ...]
    connector_type: str
    approval_id: str | None = None
    requester: str | None = None
    confidence: float | None = None
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        d = attrs.asdict(self)
        d["tags"] = list(self.tags)
        return d


@attrs.frozen
class GateResult:
    """The gate's decision: ``allowed``, ``approved``, ``denied`` or ``requires_approval``
    (the last two only from a dry run)."""

    decision: str
    request_id: str | None
    approved_by: str | None
    reason: str | None
    approval_level: str | None
    rule: str | None

    def as_approval_dict(self) -> dict[str, Any] | None:
        """The action dict's ``approval`` value."""
        return {
            "decision": self.decision,
            "request_id": self.request_id,
            "approved_by": self.approved_by,
        }


def _approve_hint(request_id: str) -> str:
    return (
        f"approve request {request_id} with `tw-edr approvals approve {request_id} --by <name>`, "
        f"then call again with approval_id={request_id}"
    )


class PolicyGate:
    """Authorizes response actions against the policy, the approvals and the kill switch.

    >>> gate = PolicyGate(approver=lambda req: "soc-lead")   # doctest: +SKIP
    >>> result = await gate.authorize(ActionRequest("isolate_host", "host-1", "ws1", (), "mock"))
    """

    def __init__(
        self,
        *,
        engine: PolicyEngine | None = None,
        store: ApprovalStore | None = None,
        audit: AuditTrail | None = None,
        approver: Approver | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.engine = engine if engine is not None else PolicyEngine.from_env()
        self.store = store if store is not None else get_default_store()
        self.audit = audit if audit is not None else get_default_audit()
        self.approver = approver
        self.clock = clock or time.time

    # ------------------------------------------------------------------ plumbing

    async def _store_call(self, fn: Callable[[], T]) -> T:
        if self.store.blocking:
            return await anyio.to_thread.run_sync(fn)
        return fn()

    async def _audit(self, req: ActionRequest, **fields: Any) -> None:
        entry = {
            "time": iso(self.clock()),
            "action": req.action,
            "device_id": req.device_id,
            "hostname": req.hostname,
            "connector_type": req.connector_type,
            "requester": req.requester,
            "dry_run": req.dry_run,
            **fields,
        }
        if self.audit.blocking:
            await anyio.to_thread.run_sync(self.audit.append, entry)
        else:
            self.audit.append(entry)

    def _kill_switch(self) -> str | None:
        return kill_switch_source() or self.store.kill_switch()

    @staticmethod
    def _validate(req: ActionRequest) -> None:
        for name in ("action", "device_id", "hostname", "connector_type"):
            value = getattr(req, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"ActionRequest.{name} must be a non-empty string, got {value!r}")
        if req.confidence is not None and (
            isinstance(req.confidence, bool)
            or not isinstance(req.confidence, (int, float))
            or math.isnan(req.confidence)
        ):
            raise ValueError(f"ActionRequest.confidence must be a number, got {req.confidence!r}")

    def _target(self, req: ActionRequest) -> str:
        return (
            f"{req.hostname} ({req.device_id})" if req.hostname != req.device_id else req.hostname
        )

    def _evaluate(self, req: ActionRequest, now: float) -> Decision:
        ctx = EvalContext(
            action=req.action,
            hostname=req.hostname,
            device_id=req.device_id,
            tags=tuple(req.tags),
            confidence=req.confidence,
        )
        return self.engine.evaluate(
            ctx, kill_switch=self._kill_switch(), count=self.store.count, now=now
        )

    async def _deny(
        self, req: ActionRequest, decision: Decision, message: str, **audit: Any
    ) -> GateResult:
        await self._audit(
            req, event="decision", decision="denied", rule=decision.rule, reason=message, **audit
        )
        result = GateResult("denied", audit.get("approval_id"), None, message, None, decision.rule)
        if req.dry_run:
            return result
        log.info("policy denied %s on %s: %s", req.action, self._target(req), message)
        raise PolicyDenied(
            f"{req.action} on {self._target(req)} denied: {message}", rule=decision.rule
        )

    # ------------------------------------------------------------------ authorize

    async def authorize(self, req: ActionRequest) -> GateResult:
        """Decide ``req``; see the module docstring and ``docs/policy.md``."""
        self._validate(req)
        if req.approval_id is not None:
            approval_id = parse_request_id(req.approval_id)
            req = attrs.evolve(req, approval_id=approval_id)
        now = self.clock()
        decision = await self._store_call(lambda: self._evaluate(req, now))
        if decision.decision == "denied":
            reason = decision.reason or "denied by policy"
            if decision.rule == "kill_switch":
                reason = f"{reason} ({self._kill_switch() or 'kill switch'})"
            return await self._deny(req, decision, reason)

        if decision.decision == "allowed":
            result = GateResult("allowed", None, None, decision.reason, None, decision.rule)
            if not req.dry_run:
                await self._reserve(req, decision, now)
            await self._audit(
                req,
                event="decision",
                decision="allowed",
                rule=decision.rule,
                reason=decision.reason,
            )
            return result

        level = decision.approval_level or "analyst"
        if req.approval_id is not None:
            return await self._use_approval(req, decision, level, now)
        if self.approver is not None and not req.dry_run:
            identity = await self._ask_approver(req, decision)
            if identity is not None:
                return await self._approve_inline(req, decision, level, identity, now)
        if req.dry_run:
            await self._audit(
                req,
                event="decision",
                decision="requires_approval",
                rule=decision.rule,
                reason=decision.reason,
                approval_level=level,
            )
            return GateResult(
                "requires_approval", None, None, decision.reason, level, decision.rule
            )
        return await self._file_request(req, decision, level, now)

    async def _reserve(self, req: ActionRequest, decision: Decision, now: float) -> None:
        limit = self.engine.rate_limit(req.action)
        exceeded = await self._store_call(
            lambda: self.store.reserve(req.action, req.device_id, limit=limit, now=now)
        )
        if exceeded is not None:
            await self._deny(
                req,
                Decision("denied", exceeded, None, "rate_limit"),
                exceeded,
                approval_id=req.approval_id,
            )

    async def _ask_approver(self, req: ActionRequest, decision: Decision) -> str | None:
        assert self.approver is not None
        payload = {
            **req.as_dict(),
            "approval_level": decision.approval_level,
            "reason": decision.reason,
        }
        approver = self.approver
        if inspect.iscoroutinefunction(approver):
            answer = await approver(payload)
        else:
            # May block (an interactive prompt): keep it off the event loop.
            answer = await anyio.to_thread.run_sync(approver, payload)
        if inspect.isawaitable(answer):
            answer = await answer
        if isinstance(answer, str) and answer.strip():
            return answer.strip()
        if answer is True:
            return "approver"
        return None

    async def _approve_inline(
        self, req: ActionRequest, decision: Decision, level: str, identity: str, now: float
    ) -> GateResult:
        ttl = self.engine.policy.approval_expiry_seconds

        def file_and_approve() -> ApprovalRecord:
            rec = self.store.create(
                action=req.action,
                device_id=req.device_id,
                hostname=req.hostname,
                level=level,
                requester=req.requester,
                reason=decision.reason,
                now=now,
                ttl=ttl,
            )
            return self.store.decide(
                rec.id, approved=True, by=identity, reason="approver callback", now=now
            )

        rec = await self._store_call(file_and_approve)
        await self._audit(
            req,
            event="approval",
            decision="approved",
            approval_id=rec.id,
            approver=identity,
            approval_level=level,
            via="callback",
        )
        return await self._use_approval(attrs.evolve(req, approval_id=rec.id), decision, level, now)

    async def _use_approval(
        self, req: ActionRequest, decision: Decision, level: str, now: float
    ) -> GateResult:
        approval_id = req.approval_id
        assert approval_id is not None
        if req.dry_run:
            rec = await self._store_call(lambda: self.store.get(approval_id))
            outcome = self._peek(rec, req, level, now)
        else:
            limit = self.engine.rate_limit(req.action)

            def reserve_and_consume() -> tuple[str | None, ConsumeOutcome | None]:
                exceeded = self.store.reserve(req.action, req.device_id, limit=limit, now=now)
                if exceeded is not None:
                    return exceeded, None
                out = self.store.consume(
                    approval_id,
                    action=req.action,
                    device_id=req.device_id,
                    hostname=req.hostname,
                    required_level=level,
                    now=now,
                )
                if not out.ok:
                    self.store.release(req.action, req.device_id, success=False)
                return None, out

            exceeded, maybe = await self._store_call(reserve_and_consume)
            if exceeded is not None:
                return await self._deny(
                    req,
                    Decision("denied", exceeded, None, "rate_limit"),
                    exceeded,
                    approval_id=approval_id,
                )
            assert maybe is not None
            outcome = maybe
        rec = outcome.record
        if outcome.ok and rec is not None:
            await self._audit(
                req,
                event="decision",
                decision="approved",
                rule=decision.rule,
                approval_id=approval_id,
                approver=rec.decided_by,
                approval_level=level,
            )
            return GateResult(
                "approved", approval_id, rec.decided_by, decision.reason, level, decision.rule
            )
        problem = outcome.problem
        if problem in ("pending", "expired") and not req.dry_run:
            note = "is still pending" if problem == "pending" else "has expired"
            if problem == "expired":
                return await self._file_request(
                    req, decision, level, now, note=f"approval {approval_id} {note}"
                )
            await self._audit(
                req,
                event="decision",
                decision="requires_approval",
                rule=decision.rule,
                approval_id=approval_id,
                approval_level=level,
                reason=f"approval {note}",
            )
            raise ApprovalRequired(
                f"{req.action} on {self._target(req)} requires {level} approval and approval "
                f"{approval_id} {note}: {_approve_hint(approval_id)}",
                request_id=approval_id,
                approval_level=level,
            )
        if problem in ("pending", "expired"):
            await self._audit(
                req,
                event="decision",
                decision="requires_approval",
                rule=decision.rule,
                approval_id=approval_id,
                approval_level=level,
                reason=f"approval {problem}",
            )
            return GateResult(
                "requires_approval", approval_id, None, f"approval {problem}", level, decision.rule
            )
        message = self._refusal(approval_id, problem, rec, req, level)
        return await self._deny(
            req, Decision("denied", message, None, "approval"), message, approval_id=approval_id
        )

    @staticmethod
    def _peek(
        rec: ApprovalRecord | None, req: ActionRequest, level: str, now: float
    ) -> ConsumeOutcome:
        from ._store import _diagnose

        problem = _diagnose(rec, req.action, req.device_id, req.hostname, level, now)
        return ConsumeOutcome(problem is None, rec, problem)

    def _refusal(
        self,
        approval_id: str,
        problem: str | None,
        rec: ApprovalRecord | None,
        req: ActionRequest,
        level: str,
    ) -> str:
        if problem == "not_found" or rec is None:
            return (
                f"no approval request {approval_id} in this approval store "
                "(is TW_POLICY_DB the same for both processes?)"
            )
        if problem == "used":
            return (
                f"approval {approval_id} was already used at {iso(rec.used_at)}; "
                "an approval is single use"
            )
        if problem == "denied":
            why = f": {rec.decision_reason}" if rec.decision_reason else ""
            return f"approval {approval_id} was denied by {rec.decided_by}{why}"
        if problem == "action":
            return f"approval {approval_id} is for {rec.action}, not {req.action}"
        if problem == "target":
            return f"approval {approval_id} is for {rec.target}, not {self._target(req)}"
        if problem == "level":
            return (
                f"approval {approval_id} is at {rec.level} level; "
                f"{req.action} on {self._target(req)} needs {level}"
            )
        return f"approval {approval_id} cannot be used ({problem})"

    async def _file_request(
        self,
        req: ActionRequest,
        decision: Decision,
        level: str,
        now: float,
        note: str | None = None,
    ) -> GateResult:
        ttl = self.engine.policy.approval_expiry_seconds
        rec = await self._store_call(
            lambda: self.store.create(
                action=req.action,
                device_id=req.device_id,
                hostname=req.hostname,
                level=level,
                requester=req.requester,
                reason=decision.reason,
                now=now,
                ttl=ttl,
            )
        )
        await self._audit(
            req,
            event="decision",
            decision="requires_approval",
            rule=decision.rule,
            approval_id=rec.id,
            approval_level=level,
            reason=decision.reason,
        )
        prefix = f"{note}; " if note else ""
        why = ""
        if decision.reason and decision.reason != f"Action requires {level} approval":
            why = f" ({decision.reason})"
        log.info(
            "approval %s filed for %s on %s (%s)", rec.id, req.action, self._target(req), level
        )
        raise ApprovalRequired(
            f"{prefix}{req.action} on {self._target(req)} requires {level} approval{why}: "
            f"{_approve_hint(rec.id)}",
            request_id=rec.id,
            approval_level=level,
        )

    # ------------------------------------------------------------------ outcome

    async def record_outcome(
        self,
        req: ActionRequest,
        result: GateResult,
        *,
        success: bool,
        message: str,
        trace_id: str | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Audit what happened after ``authorize``; a successful action counts toward the
        rate limits, a failed one gives its slot back."""
        if result.decision in ("allowed", "approved") and not req.dry_run:
            await self._store_call(
                lambda: self.store.release(req.action, req.device_id, success=success)
            )
        await self._audit(
            req,
            event="outcome",
            decision=result.decision,
            rule=result.rule,
            approval_id=result.request_id,
            approver=result.approved_by,
            result="success" if success else "failure",
            message=redact(message),
            trace_id=trace_id,
            error=None if error is None else redact(f"{type(error).__name__}: {error}"),
        )
