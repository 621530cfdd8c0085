"""Policy gate, approvals and audit trail for tw_bridge response actions.

::

    PolicyGate.authorize(ActionRequest)      async; used by the connectors
      └── PolicyEngine.evaluate              rules, deny list, rate limits, mode, kill switch
      └── ApprovalStore                      MemoryStore (per process) | SqliteStore (TW_POLICY_DB)
      └── AuditTrail                         MemoryAudit | SqliteAudit | JsonlAudit (TW_AUDIT_LOG)
    PolicyBridge                             the older synchronous API over the same pieces
"""

from __future__ import annotations

from ._audit import (
    AuditTrail,
    JsonlAudit,
    MemoryAudit,
    SqliteAudit,
    VerifyResult,
    get_default_audit,
)
from ._bridge import PolicyBridge
from ._engine import Decision, EvalContext, PolicyEngine
from ._gate import ActionRequest, GateResult, PolicyGate
from ._rules import (
    APPROVAL_LEVELS,
    MODES,
    Policy,
    RateLimit,
    Rule,
    default_policy,
    load_policy,
    parse_policy,
    policy_from_env,
)
from ._store import (
    ApprovalError,
    ApprovalRecord,
    ApprovalStore,
    MemoryStore,
    SqliteStore,
    get_default_store,
)

__all__ = [
    "APPROVAL_LEVELS",
    "MODES",
    "ActionRequest",
    "ApprovalError",
    "ApprovalRecord",
    "ApprovalStore",
    "AuditTrail",
    "Decision",
    "EvalContext",
    "GateResult",
    "JsonlAudit",
    "MemoryAudit",
    "MemoryStore",
    "Policy",
    "PolicyBridge",
    "PolicyEngine",
    "PolicyGate",
    "RateLimit",
    "Rule",
    "SqliteAudit",
    "SqliteStore",
    "VerifyResult",
    "default_policy",
    "get_default_audit",
    "get_default_store",
    "load_policy",
    "parse_policy",
    "policy_from_env",
    "reset_process_state",
]


def reset_process_state() -> None:
    """Forget the process's default approval store and audit trail (for tests)."""
    from ._audit import reset_default_audits
    from ._store import reset_default_stores

    reset_default_stores()
    reset_default_audits()
