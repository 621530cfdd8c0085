"""The error tree of tw_bridge.

::

    ValueError
     └── ConfigError                 bad connector type, credential, region, base URL
    RuntimeError
     └── ConnectorError              every runtime failure; str() starts "Connector error: "
          ├── HostNotFound (+ LookupError)
          ├── AmbiguousHost          a response action named a hostname shared by devices
          ├── AuthenticationError    credentials rejected
          ├── PermissionDenied       API client lacks a scope (message names it)
          ├── RateLimited            still limited after waiting; .retry_after seconds
          ├── RequestTimeout         the EDR did not answer in time
          ├── InvalidResponse        the EDR answered something we cannot understand
          ├── PolicyDenied           the policy forbids this action on this target
          ├── ApprovalRequired       approval needed; .request_id, .approval_level
          ├── ActionConflict         the device is already in the requested state
          └── BridgeError            misuse of a bridge: closed, forked, re-entered

Every connector error may carry ``status`` (HTTP status) and ``trace_id`` (Falcon's
``X-Cs-Traceid``). Messages never contain secrets or bearer tokens: the text that
goes in is passed through :func:`tw_bridge._redact.redact` first.
"""

from __future__ import annotations

from typing import Any

from ._redact import redact

__all__ = [
    "ActionConflict",
    "AmbiguousHost",
    "ApprovalRequired",
    "AuthenticationError",
    "BridgeError",
    "ConfigError",
    "ConnectorError",
    "HostNotFound",
    "InvalidResponse",
    "PermissionDenied",
    "PolicyDenied",
    "RateLimited",
    "RequestTimeout",
]

_PREFIX = "Connector error: "


class ConfigError(ValueError):
    """Configuration is wrong; the message names the setting and the accepted values."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class ConnectorError(RuntimeError):
    """Base of every runtime failure. ``str()`` starts with ``Connector error: ``."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        trace_id: str | None = None,
    ) -> None:
        message = redact(str(message))
        if not message.startswith(_PREFIX):
            message = _PREFIX + message
        super().__init__(message)
        self.message = message
        self.status = status
        self.trace_id = trace_id

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        extra = ""
        if self.status is not None:
            extra += f", status={self.status}"
        if self.trace_id is not None:
            extra += f", trace_id={self.trace_id!r}"
        return f"{type(self).__name__}({self.message!r}{extra})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[ConnectorError], state: dict[str, Any]) -> ConnectorError:
    obj = cls.__new__(cls)
    RuntimeError.__init__(obj, state.get("message", ""))
    obj.__dict__.update(state)
    return obj


class HostNotFound(ConnectorError, LookupError):
    """No device matches the host argument."""


class AmbiguousHost(ConnectorError):
    """A response action named a hostname that several devices share."""

    def __init__(self, message: str, *, candidates: tuple[str, ...] = (), **kw: Any) -> None:
        super().__init__(message, **kw)
        self.candidates = tuple(candidates)


class AuthenticationError(ConnectorError):
    """The EDR rejected the credentials (or a fresh token)."""


class PermissionDenied(ConnectorError):
    """The API client lacks a scope; ``scope`` names it."""

    def __init__(self, message: str, *, scope: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.scope = scope


class RateLimited(ConnectorError):
    """The rate limit was still exceeded after waiting; ``retry_after`` in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class RequestTimeout(ConnectorError):
    """The EDR did not answer in time."""


class InvalidResponse(ConnectorError):
    """The EDR answered something that cannot be understood."""


class PolicyDenied(ConnectorError):
    """The policy forbids this action on this target."""

    def __init__(self, message: str, *, rule: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.rule = rule


class ApprovalRequired(ConnectorError):
    """Approval is needed; ``request_id`` is the approval request filed for it."""

    def __init__(
        self,
        message: str,
        *,
        request_id: str,
        approval_level: str,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.request_id = request_id
        self.approval_level = approval_level


class ActionConflict(ConnectorError):
    """The device is already in the state the action asks for (isolating an isolated host)."""


class BridgeError(ConnectorError):
    """The bridge was used in a way it cannot serve: closed, forked, or re-entered."""
