"""tw_bridge: look up hosts and detections in an EDR and take response actions safely.

Synchronous code uses :class:`EDRBridge`; async code uses the connectors
(:class:`MockConnector`, :class:`CrowdStrikeConnector`) directly. Response
actions pass the policy gate (:mod:`tw_bridge.policy`, :class:`PolicyBridge`).

Mock mode never imports aiohttp: the CrowdStrike connector and the policy engine
load on first use.
"""

from __future__ import annotations

from typing import Any

from ._bridge import EDRBridge
from ._convert import converter, to_dict
from ._errors import (
    ActionConflict,
    AmbiguousHost,
    ApprovalRequired,
    AuthenticationError,
    BridgeError,
    ConfigError,
    ConnectorError,
    HostNotFound,
    InvalidResponse,
    PermissionDenied,
    PolicyDenied,
    RateLimited,
    RequestTimeout,
)
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
from ._version import __version__
from .connectors import EDRConnector, MockConnector

__all__ = [
    "ActionConflict",
    "ActionResult",
    "AmbiguousHost",
    "ApprovalInfo",
    "ApprovalRequired",
    "AuthenticationError",
    "BridgeError",
    "ConfigError",
    "ConnectorError",
    "CrowdStrikeConfig",
    "CrowdStrikeConnector",
    "Detection",
    "EDRBridge",
    "EDRConnector",
    "HealthState",
    "HealthStatus",
    "HostInfo",
    "HostNotFound",
    "InvalidResponse",
    "IsolationStatus",
    "MockConnector",
    "NetworkConnection",
    "PermissionDenied",
    "PolicyBridge",
    "PolicyDenied",
    "ProcessInfo",
    "RateLimited",
    "Reachability",
    "RequestTimeout",
    "Severity",
    "__version__",
    "converter",
    "to_dict",
]

_LAZY = {
    "CrowdStrikeConnector": ("tw_bridge.connectors.crowdstrike", "CrowdStrikeConnector"),
    "CrowdStrikeConfig": ("tw_bridge.connectors.crowdstrike", "CrowdStrikeConfig"),
    "PolicyBridge": ("tw_bridge.policy", "PolicyBridge"),
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'tw_bridge' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
