"""The policy engine: one pure evaluation over a :class:`~._rules.Policy`.

Order of evaluation (that of the older engine): kill switch, denied actions, protected
targets, rate limits, then the rules in order (first match wins), then the policy's
default decision. In ``assisted`` mode nothing runs on its own: an ``allowed`` decision
becomes ``requires_approval`` at the default level.
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from ._rules import Policy, RateLimit, policy_from_env

__all__ = ["Decision", "EvalContext", "PolicyEngine", "kill_switch_source"]

HOUR = 3600.0
DAY = 86400.0

_TRUE = {"1", "true", "yes", "on"}


def kill_switch_source(env: Mapping[str, str] | None = None) -> str | None:
    """Why the kill switch is on from the environment (``TW_KILL_SWITCH``, the flag file),
    or None. The API switch lives in the approval store."""
    env = os.environ if env is None else env
    if env.get("TW_KILL_SWITCH", "").strip().lower() in _TRUE:
        return "TW_KILL_SWITCH is set"
    flag = env.get("TW_KILL_SWITCH_FILE")
    if flag and Path(flag).exists():
        return f"flag file {flag} exists"
    return None


@attrs.frozen
class EvalContext:
    """What a decision is about."""

    action: str
    hostname: str | None = None
    device_id: str | None = None
    tags: tuple[str, ...] = ()
    confidence: float | None = None
    severity: str | None = None
    proposer: str | None = None

    @property
    def target(self) -> str:
        if self.hostname and self.device_id and self.hostname != self.device_id:
            return f"{self.hostname} ({self.device_id})"
        return self.hostname or self.device_id or "?"


@attrs.frozen
class Decision:
    """``decision`` is ``allowed``, ``denied`` or ``requires_approval``; ``rule`` names
    what decided (a rule name, ``deny_list``, ``target_protection``, ``rate_limit``,
    ``kill_switch``, ``mode`` or ``default``)."""

    decision: str
    reason: str | None
    approval_level: str | None
    rule: str | None

    def as_dict(self) -> dict[str, str | None]:
        """The older ``check_action`` shape."""
        return {
            "decision": self.decision,
            "reason": self.reason,
            "approval_level": self.approval_level,
        }


KILL_SWITCH_REASON = "Kill switch is active - all automation halted"

#: ``count(action, since)``: executions of ``action`` at or after epoch ``since``.
Counter = Callable[[str, float], int]


class PolicyEngine:
    """Evaluates actions against a policy. Stateless: counts and the kill switch are passed
    in, so one engine serves every store.

    >>> engine = PolicyEngine()
    >>> engine.evaluate(EvalContext("isolate_host", hostname="ws1")).decision
    'requires_approval'
    """

    def __init__(self, policy: Policy | None = None) -> None:
        self.policy = policy if policy is not None else policy_from_env()

    @classmethod
    def from_env(
        cls, *, policy_file: str | os.PathLike[str] | None = None, mode: str | None = None
    ) -> PolicyEngine:
        return cls(policy_from_env(policy_file, mode))

    @property
    def mode(self) -> str:
        return self.policy.mode

    def rate_limit(self, action: str) -> RateLimit | None:
        return self.policy.rate_limits.get(action)

    def evaluate(
        self,
        ctx: EvalContext,
        *,
        kill_switch: str | None = None,
        count: Counter | None = None,
        now: float | None = None,
    ) -> Decision:
        """Decide ``ctx``. ``kill_switch`` is the reason it is on (None: off)."""
        p = self.policy
        if kill_switch is not None:
            return Decision("denied", KILL_SWITCH_REASON, None, "kill_switch")
        if any(fnmatch.fnmatchcase(ctx.action, pat) for pat in p.deny_actions):
            return Decision("denied", f"Action '{ctx.action}' is not allowed", None, "deny_list")
        ids = [t for t in (ctx.hostname, ctx.device_id) if t]
        if any(pat.search(t) for pat in p.deny_target_patterns for t in ids):
            return Decision(
                "denied", f"Target '{ctx.target}' is protected", None, "target_protection"
            )
        if count is not None:
            exceeded = self.rate_limit_exceeded(
                ctx.action, count, time.time() if now is None else now
            )
            if exceeded is not None:
                return Decision("denied", exceeded, None, "rate_limit")
        decision = None
        for rule in p.rules:
            if rule.matches(
                action=ctx.action,
                hostname=ctx.hostname,
                device_id=ctx.device_id,
                tags=ctx.tags,
                confidence=ctx.confidence,
                severity=ctx.severity,
                proposer=ctx.proposer,
                mode=p.mode,
            ):
                decision = self._from_rule(
                    rule.decision, rule.approval_level, rule.reason, rule.name
                )
                break
        if decision is None:
            decision = self._from_rule(
                p.default_decision, p.default_approval_level, None, "default"
            )
        if decision.decision == "allowed" and p.mode == "assisted":
            level = p.default_approval_level
            return Decision(
                "requires_approval",
                f"Action requires {level} approval (operation mode 'assisted': nothing runs "
                "without approval)",
                level,
                "mode",
            )
        return decision

    def rate_limit_exceeded(self, action: str, count: Counter, now: float) -> str | None:
        """The reason ``action`` is over its limit, or None."""
        limit = self.rate_limit(action)
        if limit is None:
            return None
        if limit.max_per_hour is not None and count(action, now - HOUR) >= limit.max_per_hour:
            return f"Rate limit exceeded: {action} hourly limit ({limit.max_per_hour}) exceeded"
        if limit.max_per_day is not None and count(action, now - DAY) >= limit.max_per_day:
            return f"Rate limit exceeded: {action} daily limit ({limit.max_per_day}) exceeded"
        return None

    @staticmethod
    def _from_rule(decision: str, level: str | None, reason: str | None, name: str) -> Decision:
        if decision == "requires_approval":
            level = level or "analyst"
            return Decision(decision, reason or f"Action requires {level} approval", level, name)
        if decision == "denied":
            return Decision(decision, reason or f"Denied by policy rule '{name}'", None, name)
        return Decision("allowed", reason, None, name)
