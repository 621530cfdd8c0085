"""Emulator state: API clients, tokens, rate limits and the request log."""

from __future__ import annotations

import collections
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ALL_SCOPES",
    "ApiClient",
    "RateLimiter",
    "RequestLog",
    "RequestRecord",
    "Token",
    "TokenStore",
]

#: Scope names understood by the emulator (Falcon's API-client scopes, lower-cased).
ALL_SCOPES: tuple[str, ...] = (
    "hosts:read",       # Hosts: Read
    "hosts:write",      # Hosts: Write (containment)
    "alerts:read",      # Alerts: Read
    "alerts:write",     # Alerts: Write
    "ods:read",         # On-demand scans (ODS): Read
    "ods:write",        # On-demand scans (ODS): Write
    "rtr:read",         # Real time response: Read (sessions, read-only commands)
    "rtr:write",        # Real time response: Write (active-responder commands)
    "rtr-admin:write",  # Real time response (admin): Write (admin commands)
)

DEFAULT_RATE_LIMITS: dict[str, tuple[int, float]] = {
    "token": (300, 60.0),
    "host_query": (6000, 60.0),
    "alert_query": (6000, 60.0),
    "action": (6000, 60.0),
    "rtr": (6000, 60.0),
    "default": (6000, 60.0),
}


@dataclass
class ApiClient:
    client_id: str
    client_secret: str
    scopes: frozenset[str]


@dataclass
class Token:
    value: str
    client_id: str
    expires_at: float  # monotonic
    region: str
    generation: int  # Faults.revocations at issue time
    member_cid: str | None = None


class TokenStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, Token] = {}
        #: Every token value issued, revoked and expired ones included (for leak checks).
        self.issued: list[str] = []

    def issue(self, client_id: str, lifetime: float, region: str, generation: int,
              member_cid: str | None) -> Token:
        value = "eyJ" + secrets.token_urlsafe(48)
        tok = Token(value, client_id, time.monotonic() + lifetime, region, generation, member_cid)
        with self._lock:
            now = time.monotonic()
            if len(self._tokens) > 10000:
                self._tokens = {k: t for k, t in self._tokens.items() if t.expires_at > now}
            self._tokens[value] = tok
            self.issued.append(value)
        return tok

    def get(self, value: str) -> Token | None:
        return self._tokens.get(value)

    def revoke(self, value: str) -> bool:
        with self._lock:
            return self._tokens.pop(value, None) is not None


class RateLimiter:
    """Sliding-window limiter keyed by (client id, endpoint group)."""

    def __init__(self, limits: dict[str, tuple[int, float]]) -> None:
        self.limits = dict(DEFAULT_RATE_LIMITS)
        self.limits.update(limits)
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], collections.deque[float]] = {}

    def hit(self, key: str, group: str) -> tuple[bool, int, int, float]:
        """Count one request.  Returns (allowed, limit, remaining, retry_at_epoch)."""
        limit, window = self.limits.get(group, self.limits["default"])
        now = time.monotonic()
        with self._lock:
            dq = self._windows.get((key, group))
            if dq is None:
                dq = self._windows[(key, group)] = collections.deque()
            cutoff = now - window
            while dq and dq[0] <= cutoff:
                dq.popleft()
            if len(dq) >= limit:
                retry = dq[0] + window - now
                return False, limit, 0, time.time() + max(retry, 0.0)
            dq.append(now)
            return True, limit, limit - len(dq), 0.0

    def peek(self, key: str, group: str) -> tuple[int, int]:
        limit, window = self.limits.get(group, self.limits["default"])
        dq = self._windows.get((key, group))
        used = 0
        if dq:
            cutoff = time.monotonic() - window
            used = sum(1 for t in dq if t > cutoff)
        return limit, max(0, limit - used)


@dataclass
class RequestRecord:
    """One entry of the request log."""

    time: float  # epoch seconds the request arrived
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any  # parsed JSON, form dict (client_secret redacted) or None
    status: int  # 0 when the connection was dropped without a response
    client_id: str | None
    fault: str | None = None
    trace_id: str = ""
    headers: dict[str, str] = field(default_factory=dict)


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[RequestRecord] = []
        self._cond = threading.Condition(self._lock)

    def append(self, rec: RequestRecord) -> None:
        with self._cond:
            self._entries.append(rec)
            self._cond.notify_all()

    def snapshot(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def wait_for(self, predicate: Any, timeout: float) -> bool:
        """Block until ``predicate(entries)`` is true (or timeout); for tests."""
        with self._cond:
            return bool(self._cond.wait_for(lambda: predicate(self._entries), timeout))


def normalize_scopes(scopes: Iterable[str]) -> frozenset[str]:
    out: set[str] = set()
    for s in scopes:
        s = s.strip().lower()
        if s == "*":
            out.update(ALL_SCOPES)
            continue
        if s not in ALL_SCOPES:
            raise ValueError(f"unknown scope {s!r}; expected one of {ALL_SCOPES}")
        out.add(s)
    return frozenset(out)
