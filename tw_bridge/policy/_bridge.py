"""``PolicyBridge``: the older native module's policy API, over the same engine and stores.

Every bridge and gate in a process shares one approval store (SQLite when
``TW_POLICY_DB`` names a file), so a request filed here can be used by ``EDRBridge``.
All return values are plain JSON-able dicts, lists and strings.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from ._audit import AuditTrail, get_default_audit
from ._engine import KILL_SWITCH_REASON, EvalContext, PolicyEngine, kill_switch_source
from ._rules import normalize_level
from ._store import STATUSES, ApprovalError, ApprovalStore, get_default_store, iso, parse_request_id

__all__ = ["PolicyBridge"]


def _split_target(target: object) -> tuple[str | None, str | None]:
    """``aid:<id>`` → device id, ``hostname:<name>`` → hostname, bare → hostname (matched
    later against both the device id and the hostname)."""
    if not isinstance(target, str):
        raise TypeError(f"target must be a string, got {type(target).__name__}")
    value = target.strip()
    if not value or len(value) > 512 or any(ord(c) < 32 for c in value):
        raise ValueError(f"target {target!r} is empty, too long or has control characters")
    low = value.lower()
    if low.startswith("aid:") and value[4:].strip():
        return value[4:].strip(), None
    if low.startswith("hostname:") and value[9:].strip():
        return None, value[9:].strip()
    return None, value


def _check_action(action_type: object) -> str:
    if not isinstance(action_type, str):
        raise TypeError(f"action_type must be a string, got {type(action_type).__name__}")
    if not action_type.strip():
        raise ValueError("action_type must not be empty")
    return action_type.strip()


class PolicyBridge:
    """Policy checks, approvals and the kill switch.

    >>> policy = PolicyBridge()
    >>> policy.check_action("isolate_host", "workstation-001", 0.95)["decision"]
    'requires_approval'
    >>> policy.get_operation_mode()
    'supervised'
    """

    def __init__(
        self,
        *,
        policy_file: str | os.PathLike[str] | None = None,
        db: str | os.PathLike[str] | None = None,
        mode: str | None = None,
        audit_log: str | os.PathLike[str] | None = None,
        engine: PolicyEngine | None = None,
        store: ApprovalStore | None = None,
        audit: AuditTrail | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._engine = (
            engine
            if engine is not None
            else PolicyEngine.from_env(policy_file=policy_file, mode=mode)
        )
        self._store = store if store is not None else get_default_store(db)
        self._audit = audit if audit is not None else get_default_audit(db, audit_log)
        self._clock = clock or time.time

    @property
    def engine(self) -> PolicyEngine:
        return self._engine

    @property
    def store(self) -> ApprovalStore:
        return self._store

    @property
    def audit(self) -> AuditTrail:
        return self._audit

    def _kill_reason(self) -> str | None:
        return kill_switch_source() or self._store.kill_switch()

    # ----------------------------------------------------------- older API

    def check_action(
        self,
        action_type: str,
        target: str,
        confidence: float,
        *,
        tags: Iterable[str] = (),
        severity: str | None = "high",
        proposer: str | None = "ai",
    ) -> dict[str, Any]:
        """``{"decision", "reason", "approval_level"}`` for ``action_type`` on ``target``.

        Advisory: nothing is filed or consumed. Rate limits count executed actions.
        ``severity``/``proposer`` default to what the older bridge assumed ("high", "ai").
        """
        action = _check_action(action_type)
        device_id, hostname = _split_target(target)
        if isinstance(confidence, bool) or not isinstance(confidence, (int, float)):
            raise TypeError(f"confidence must be a number, got {type(confidence).__name__}")
        if math.isnan(confidence):
            raise ValueError("confidence must be a number between 0.0 and 1.0, got nan")
        ctx = EvalContext(
            action=action,
            hostname=hostname,
            device_id=device_id,
            tags=tuple(str(t) for t in tags),
            confidence=float(confidence),
            severity=severity,
            proposer=proposer,
        )
        kill = self._kill_reason()
        decision = self._engine.evaluate(
            ctx, kill_switch=kill, count=self._store.count, now=self._clock()
        )
        self._audit.append(
            {
                "event": "check",
                "action": action,
                "device_id": device_id,
                "hostname": hostname,
                "decision": decision.decision,
                "rule": decision.rule,
                "reason": decision.reason,
                "approval_level": decision.approval_level,
                "confidence": float(confidence),
            }
        )
        out = decision.as_dict()
        if decision.rule == "kill_switch":
            out["reason"] = KILL_SWITCH_REASON
        return out

    def get_operation_mode(self) -> str:
        """``"assisted"``, ``"supervised"`` (default) or ``"autonomous"``."""
        return self._engine.mode

    def is_kill_switch_active(self) -> bool:
        """True when ``TW_KILL_SWITCH=1``, the flag file exists, or the API switched it on."""
        return self._kill_reason() is not None

    def submit_approval_request(
        self,
        action_type: str,
        target: str,
        level: str,
        *,
        requester: str = "ai-agent",
        reason: str | None = None,
        expires_in: float | None = None,
    ) -> str:
        """File a pending request; return its id (a UUID string). ``ValueError`` for a bad level."""
        approval_level = normalize_level(level)
        action = _check_action(action_type)
        device_id, hostname = _split_target(target)
        ttl = (
            self._engine.policy.approval_expiry_seconds if expires_in is None else float(expires_in)
        )
        if not ttl > 0:
            raise ValueError(f"expires_in must be a positive number of seconds, got {expires_in!r}")
        rec = self._store.create(
            action=action,
            device_id=device_id,
            hostname=hostname,
            level=approval_level,
            requester=requester,
            reason=reason,
            now=self._clock(),
            ttl=ttl,
        )
        self._audit.append(
            {
                "event": "approval_request",
                "action": action,
                "device_id": device_id,
                "hostname": hostname,
                "requester": requester,
                "approval_id": rec.id,
                "approval_level": approval_level,
                "decision": "requires_approval",
            }
        )
        return rec.id

    def check_approval_status(self, request_id: str) -> dict[str, Any]:
        """``{"status": "pending"|"approved"|"denied"|"expired", "decided_by": str|None}``.

        An unknown id reads as expired, as in the older bridge; a malformed one is a ``ValueError``.
        """
        rid = parse_request_id(request_id)
        rec = self._store.get(rid)
        if rec is None:
            return {"status": "expired", "decided_by": None}
        return {"status": rec.effective_status(self._clock()), "decided_by": rec.decided_by}

    # ----------------------------------------------------------- additions

    def get_approval(self, request_id: str) -> dict[str, Any]:
        """The full request as a dict; ``ApprovalError`` (a ``ValueError``) when unknown."""
        rid = parse_request_id(request_id)
        rec = self._store.get(rid)
        if rec is None:
            raise ApprovalError(f"no approval request {rid}")
        return rec.as_dict(self._clock())

    def approve(self, request_id: str, by: str) -> dict[str, Any]:
        """Approve a pending request as ``by``; return it. ``ApprovalError`` when it is
        unknown, already decided or expired."""
        return self._decide(request_id, approved=True, by=by, reason=None)

    def deny(self, request_id: str, by: str, reason: str | None = None) -> dict[str, Any]:
        """Deny a pending request as ``by`` with ``reason``; return it."""
        return self._decide(request_id, approved=False, by=by, reason=reason)

    def _decide(
        self, request_id: str, *, approved: bool, by: str, reason: str | None
    ) -> dict[str, Any]:
        rid = parse_request_id(request_id)
        if not isinstance(by, str) or not by.strip():
            raise ValueError("by must name who decides, e.g. by='soc-lead'")
        now = self._clock()
        rec = self._store.decide(rid, approved=approved, by=by.strip(), reason=reason, now=now)
        self._audit.append(
            {
                "event": "approval_decision",
                "action": rec.action,
                "device_id": rec.device_id,
                "hostname": rec.hostname,
                "requester": rec.requester,
                "approval_id": rec.id,
                "decision": "approved" if approved else "denied",
                "approver": rec.decided_by,
                "reason": reason,
                "approval_level": rec.level,
            }
        )
        return rec.as_dict(now)

    def list_approvals(self, status: str | None = None) -> list[dict[str, Any]]:
        """Every request (oldest first), or those with ``status``."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
        now = self._clock()
        return [r.as_dict(now) for r in self._store.list(status=status, now=now)]

    def activate_kill_switch(self, reason: str | None = None) -> None:
        """Deny every action until :meth:`deactivate_kill_switch` (shared through the store)."""
        self._store.set_kill_switch(True, reason, self._clock())
        self._audit.append({"event": "kill_switch", "decision": "activated", "reason": reason})

    def deactivate_kill_switch(self) -> None:
        """Clear the API switch. ``TW_KILL_SWITCH`` and the flag file still apply."""
        self._store.set_kill_switch(False, None, self._clock())
        self._audit.append({"event": "kill_switch", "decision": "deactivated"})

    def kill_switch_status(self) -> dict[str, Any]:
        return {
            "active": self.is_kill_switch_active(),
            "reason": self._kill_reason(),
            "checked_at": iso(self._clock()),
        }

    def verify_audit(self) -> dict[str, Any]:
        return self._audit.verify().as_dict()
