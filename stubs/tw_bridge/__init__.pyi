import abc
import enum
import os
import ssl
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

import cattrs


__version__: str
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

converter: cattrs.Converter
to_dict: Callable[[Any], Any]

# -- errors ----------------------------------------------------------------------------
class ConfigError(ValueError):
    def __init__(self, message: str) -> None: ...

class ConnectorError(RuntimeError):
    message: str
    status: int | None
    trace_id: str | None
    def __init__(self, message: str, *, status: int | None = None, trace_id: str | None = None) -> None: ...

class HostNotFound(ConnectorError, LookupError): ...

class AmbiguousHost(ConnectorError):
    candidates: tuple[str, ...]
    def __init__(self, message: str, *, candidates: tuple[str, ...] = (), **kw: Any) -> None: ...

class AuthenticationError(ConnectorError): ...

class PermissionDenied(ConnectorError):
    scope: str | None
    def __init__(self, message: str, *, scope: str | None = None, **kw: Any) -> None: ...

class RateLimited(ConnectorError):
    retry_after: float | None
    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None: ...

class RequestTimeout(ConnectorError): ...
class InvalidResponse(ConnectorError): ...

class PolicyDenied(ConnectorError):
    rule: str | None
    def __init__(self, message: str, *, rule: str | None = None, **kw: Any) -> None: ...

class ApprovalRequired(ConnectorError):
    request_id: str
    approval_level: str
    def __init__(self, message: str, *, request_id: str, approval_level: str, **kw: Any) -> None: ...

class ActionConflict(ConnectorError): ...
class BridgeError(ConnectorError): ...

# -- models ----------------------------------------------------------------------------
class IsolationStatus(str, enum.Enum):
    NORMAL = "normal"
    ISOLATION_PENDING = "isolation_pending"
    ISOLATED = "isolated"
    RELEASE_PENDING = "release_pending"
    @property
    def isolated(self) -> bool: ...

class Reachability(str, enum.Enum):
    ONLINE = "online"
    OFFLINE = "offline"
    UNKNOWN = "unknown"

class Severity(str, enum.Enum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFORMATIONAL = "informational"
    @classmethod
    def from_score(cls, score: int | float) -> Severity: ...
    @classmethod
    def parse(cls, value: str) -> Severity: ...

class HealthState(str, enum.Enum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"

class HostInfo:
    id: str
    hostname: str
    platform: str
    os_version: str
    agent_version: str
    last_seen: datetime | None
    isolation_status: IsolationStatus
    status: Reachability
    ip_addresses: tuple[str, ...]
    mac_addresses: tuple[str, ...]
    tags: tuple[str, ...]
    def __init__(
        self,
        id: str,
        hostname: str,
        platform: str,
        os_version: str = "",
        agent_version: str = "",
        last_seen: datetime | None = None,
        isolation_status: IsolationStatus = ...,
        status: Reachability = ...,
        ip_addresses: Sequence[str] = (),
        mac_addresses: Sequence[str] = (),
        tags: Sequence[str] = (),
    ) -> None: ...
    @property
    def isolated(self) -> bool: ...

class Detection:
    id: str
    name: str
    timestamp: datetime
    severity: Severity
    description: str
    tactic: str
    technique: str
    technique_name: str
    process_name: str | None
    file_path: str | None
    file_hash: str | None
    status: str
    host_id: str
    hostname: str
    details: dict[str, Any]
    def __init__(
        self,
        id: str,
        name: str,
        timestamp: datetime,
        severity: Severity,
        description: str = "",
        tactic: str = "",
        technique: str = "",
        technique_name: str = "",
        process_name: str | None = None,
        file_path: str | None = None,
        file_hash: str | None = None,
        status: str = "new",
        host_id: str = "",
        hostname: str = "",
        details: dict[str, Any] = ...,
    ) -> None: ...

class ApprovalInfo:
    decision: str
    request_id: str | None
    approved_by: str | None
    def __init__(self, decision: str, request_id: str | None = None, approved_by: str | None = None) -> None: ...

class ActionResult:
    success: bool
    action_id: str
    action: str
    host_id: str
    hostname: str
    message: str
    timestamp: datetime
    status: str
    approval: ApprovalInfo | None
    dry_run: bool
    scan_id: str | None
    trace_id: str | None
    request: dict[str, Any] | None
    def __init__(
        self,
        success: bool,
        action_id: str,
        action: str,
        host_id: str,
        hostname: str,
        message: str,
        timestamp: datetime,
        status: str,
        approval: ApprovalInfo | None = None,
        dry_run: bool = False,
        scan_id: str | None = None,
        trace_id: str | None = None,
        request: dict[str, Any] | None = None,
    ) -> None: ...
    @property
    def rollback(self) -> str | None: ...

class ProcessInfo:
    pid: int
    name: str
    command_line: str
    parent_pid: int | None
    user: str
    start_time: datetime
    file_hash: str | None
    file_path: str | None
    def __init__(
        self,
        pid: int,
        name: str,
        command_line: str = "",
        parent_pid: int | None = None,
        user: str = "",
        file_hash: str | None = None,
        file_path: str | None = None,
        *,
        start_time: datetime,
    ) -> None: ...

class NetworkConnection:
    pid: int | None
    process_name: str
    local_address: str
    local_port: int
    remote_address: str
    remote_port: int
    protocol: str
    state: str
    timestamp: datetime
    def __init__(
        self,
        pid: int | None,
        process_name: str,
        local_address: str,
        local_port: int,
        remote_address: str,
        remote_port: int,
        protocol: str,
        state: str,
        timestamp: datetime,
    ) -> None: ...

class HealthStatus:
    status: HealthState
    connector_type: str
    message: str | None
    def __init__(self, status: HealthState, connector_type: str, message: str | None = None) -> None: ...

# -- connectors ------------------------------------------------------------------------
_Approver = Callable[[dict[str, Any]], str | bool | None]

class EDRConnector(abc.ABC):
    connector_type: ClassVar[str]
    def __init__(self, *, policy: Any = None, approver: _Approver | None = None, requester: str | None = None) -> None: ...
    async def __aenter__(self) -> EDRConnector: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    @property
    def gate(self) -> Any: ...
    async def resolve(self, host: object, *, for_action: bool = False) -> HostInfo: ...
    async def get_host(self, host: str) -> HostInfo: ...
    async def get_host_info(self, host: str) -> HostInfo: ...
    async def get_hosts(self, hosts: Sequence[str]) -> list[HostInfo | None]: ...
    async def search_hosts(self, query: str, limit: int = 100) -> list[HostInfo]: ...
    async def get_detections(self, host: str, *, hours: float | None = None, limit: int = 100) -> list[Detection]: ...
    async def get_processes(self, host: str, hours: float = 24) -> list[ProcessInfo]: ...
    async def get_network_connections(self, host: str, hours: float = 24) -> list[NetworkConnection]: ...
    async def isolate_host(
        self, host: str, *, approval_id: str | None = None, wait: float | None = None,
        dry_run: bool = False, requester: str | None = None, confidence: float | None = None,
    ) -> ActionResult: ...
    async def unisolate_host(
        self, host: str, *, approval_id: str | None = None, wait: float | None = None,
        dry_run: bool = False, requester: str | None = None, confidence: float | None = None,
    ) -> ActionResult: ...
    async def scan_host(
        self, host: str, *, approval_id: str | None = None, dry_run: bool = False,
        requester: str | None = None, confidence: float | None = None,
    ) -> ActionResult: ...
    @abc.abstractmethod
    async def health_check(self) -> HealthStatus: ...

class MockConnector(EDRConnector):
    calls: list[str]
    actions: list[tuple[str, str]]
    def __init__(
        self, *, with_sample_data: bool = True, policy: Any = None,
        approver: _Approver | None = None, requester: str | None = None,
    ) -> None: ...
    def add_host(self, host: HostInfo | None = None, **fields: Any) -> HostInfo: ...
    def add_detection(self, detection: Detection | None = None, **fields: Any) -> Detection: ...
    def add_processes(self, host_id: str, processes: Any) -> None: ...
    def add_connections(self, host_id: str, connections: Any) -> None: ...
    def set_latency(self, seconds: float) -> None: ...
    def fail_next(self, n: int = 1, error: BaseException | type[BaseException] | None = None) -> None: ...
    @property
    def hosts(self) -> list[HostInfo]: ...
    async def health_check(self) -> HealthStatus: ...

# -- the sync facade -------------------------------------------------------------------
class EDRBridge:
    def __init__(
        self,
        connector_type: str | None = None,
        with_sample_data: bool = True,
        *,
        approver: _Approver | None = None,
        policy: Any = None,
        requester: str | None = None,
        connector: EDRConnector | None = None,
        **options: Any,
    ) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> EDRBridge: ...
    def __exit__(self, *exc: object) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def connector(self) -> EDRConnector: ...
    def get_host(self, host: str) -> dict[str, Any]: ...
    def get_host_info(self, hostname: str) -> dict[str, Any]: ...
    def get_hosts(self, hosts: Sequence[str]) -> list[dict[str, Any] | None]: ...
    def search_hosts(self, query: str, limit: int = 100) -> list[dict[str, Any]]: ...
    def get_detections(self, host: str, *, hours: float | None = None, limit: int = 100) -> list[dict[str, Any]]: ...
    def get_processes(self, host: str, hours: float = 24) -> list[dict[str, Any]]: ...
    def get_network_connections(self, host: str, hours: float = 24) -> list[dict[str, Any]]: ...
    def isolate_host(self, host: str, *, approval_id: str | None = None, wait: float | None = None, dry_run: bool = False) -> dict[str, Any]: ...
    def unisolate_host(self, host: str, *, approval_id: str | None = None, wait: float | None = None, dry_run: bool = False) -> dict[str, Any]: ...
    def scan_host(self, host: str, *, approval_id: str | None = None, dry_run: bool = False) -> dict[str, Any]: ...
    def health_check(self) -> dict[str, Any]: ...
    def get_connector_type(self) -> str: ...

# -- the policy API (older tw_bridge) ---------------------------------------------------
class PolicyBridge:
    def __init__(
        self,
        *,
        policy_file: str | os.PathLike[str] | None = None,
        db: str | os.PathLike[str] | None = None,
        mode: str | None = None,
        audit_log: str | os.PathLike[str] | None = None,
        engine: Any = None,
        store: Any = None,
        audit: Any = None,
        clock: Callable[[], float] | None = None,
    ) -> None: ...
    @property
    def engine(self) -> Any: ...
    @property
    def store(self) -> Any: ...
    @property
    def audit(self) -> Any: ...
    def check_action(
        self,
        action_type: str,
        target: str,
        confidence: float,
        *,
        tags: Iterable[str] = (),
        severity: str | None = "high",
        proposer: str | None = "ai",
    ) -> dict[str, Any]: ...
    def get_operation_mode(self) -> str: ...
    def is_kill_switch_active(self) -> bool: ...
    def submit_approval_request(
        self,
        action_type: str,
        target: str,
        level: str,
        *,
        requester: str = "ai-agent",
        reason: str | None = None,
        expires_in: float | None = None,
    ) -> str: ...
    def check_approval_status(self, request_id: str) -> dict[str, Any]: ...
    def get_approval(self, request_id: str) -> dict[str, Any]: ...
    def approve(self, request_id: str, by: str) -> dict[str, Any]: ...
    def deny(self, request_id: str, by: str, reason: str | None = None) -> dict[str, Any]: ...
    def list_approvals(self, status: str | None = None) -> list[dict[str, Any]]: ...
    def activate_kill_switch(self, reason: str | None = None) -> None: ...
    def deactivate_kill_switch(self) -> None: ...
    def kill_switch_status(self) -> dict[str, Any]: ...
    def verify_audit(self) -> dict[str, Any]: ...

# -- CrowdStrike -------------------------------------------------------------------------
class CrowdStrikeConfig:
    client_id: str
    client_secret: str
    region: str
    base_url: str
    base_url_explicit: bool
    member_cid: str | None
    timeout: float
    proxy: str | None
    ca_bundle: str | None
    rate_limits: Mapping[str, Any] | None
    max_retries: int
    rtr_timeout: float
    poll_interval: float
    slow_threshold: float
    online_state_max: int
    redis_url: str | None
    def __init__(
        self,
        client_id: str,
        client_secret: str,
        region: str = "us-1",
        base_url: str = "https://api.crowdstrike.com",
        base_url_explicit: bool = False,
        member_cid: str | None = None,
        timeout: float = 30.0,
        proxy: str | None = None,
        ca_bundle: str | None = None,
        rate_limits: Mapping[str, Any] | None = ...,
        max_retries: int = 3,
        rtr_timeout: float = 60.0,
        poll_interval: float = 1.0,
        slow_threshold: float = 2.0,
        online_state_max: int = 1000,
        redis_url: str | None = None,
    ) -> None: ...
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> CrowdStrikeConfig: ...
    def ssl_context(self) -> ssl.SSLContext: ...

class CrowdStrikeConnector(EDRConnector):
    config: CrowdStrikeConfig
    def __init__(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        region: str | None = None,
        *,
        config: CrowdStrikeConfig | None = None,
        policy: Any = None,
        approver: _Approver | None = None,
        requester: str | None = None,
        **options: Any,
    ) -> None: ...
    @classmethod
    def from_env(
        cls, *, policy: Any = None, approver: _Approver | None = None,
        requester: str | None = None, **options: Any,
    ) -> CrowdStrikeConnector: ...
    @property
    def redis(self) -> Any: ...
    @property
    def base_url(self) -> str: ...
    @property
    def region(self) -> str | None: ...
    @property
    def token_requests(self) -> int: ...
    async def health_check(self) -> HealthStatus: ...
