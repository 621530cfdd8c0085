"""Approval requests, execution counts for rate limits, and the API kill switch.

Two stores with one interface: :class:`MemoryStore` (one per process, the default) and
:class:`SqliteStore` (``TW_POLICY_DB``; WAL mode, so a second process can approve while
the first waits). Consuming an approval is a single conditional update, so two callers
racing on one approval cannot both win.

Times are epoch seconds; every method that depends on the time takes ``now``.
"""

from __future__ import annotations

import abc
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs

from ._rules import APPROVAL_LEVELS, RateLimit, level_rank

__all__ = [
    "ApprovalError",
    "ApprovalRecord",
    "ApprovalStore",
    "ConsumeOutcome",
    "MemoryStore",
    "SqliteStore",
    "get_default_store",
    "iso",
    "parse_request_id",
    "reset_default_stores",
]

STATUSES = ("pending", "approved", "denied", "expired")


class ApprovalError(ValueError):
    """An approval request cannot be decided: unknown, already decided or expired."""


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC ending in ``Z``."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def parse_request_id(request_id: object) -> str:
    """The canonical form of a request id, or ``ValueError`` (the older API's error)."""
    if not isinstance(request_id, str):
        raise ValueError(
            f"Invalid request_id: expected a UUID string, got {type(request_id).__name__}"
        )
    try:
        return str(uuid.UUID(request_id.strip()))
    except ValueError as exc:
        raise ValueError(f"Invalid request_id: {request_id!r} is not a UUID") from exc


@attrs.frozen
class ApprovalRecord:
    """One approval request. ``status`` is as stored (``pending``, ``approved``,
    ``denied``); :meth:`effective_status` adds ``expired``."""

    id: str
    action: str
    device_id: str | None
    hostname: str | None
    level: str
    requester: str | None
    reason: str | None
    created_at: float
    expires_at: float
    status: str = "pending"
    decided_by: str | None = None
    decided_at: float | None = None
    decision_reason: str | None = None
    used_at: float | None = None

    @classmethod
    def new(
        cls,
        action: str,
        device_id: str | None,
        hostname: str | None,
        level: str,
        requester: str | None,
        reason: str | None,
        now: float,
        ttl: float,
    ) -> ApprovalRecord:
        """A pending request with a fresh UUID, expiring ``ttl`` seconds after ``now``."""
        return cls(
            id=str(uuid.uuid4()),
            action=action,
            device_id=device_id,
            hostname=hostname,
            level=level,
            requester=requester,
            reason=reason,
            created_at=now,
            expires_at=now + ttl,
        )

    def effective_status(self, now: float) -> str:
        # An approval that can no longer be used reads as expired; a used one stays approved.
        if (
            self.status in ("pending", "approved")
            and self.used_at is None
            and now >= self.expires_at
        ):
            return "expired"
        return self.status

    def matches_target(self, device_id: str, hostname: str | None) -> bool:
        if self.device_id is not None:
            return self.device_id == device_id
        # Filed without a resolved device (the older API): match the name it was filed for.
        key = (self.hostname or "").lower()
        return key in {device_id.lower(), (hostname or "").lower()} and key != ""

    @property
    def target(self) -> str:
        if self.hostname and self.device_id:
            return f"{self.hostname} ({self.device_id})"
        return self.hostname or self.device_id or "?"

    def as_dict(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "request_id": self.id,
            "action": self.action,
            "device_id": self.device_id,
            "hostname": self.hostname,
            "target": self.target,
            "approval_level": self.level,
            "requester": self.requester,
            "reason": self.reason,
            "created_at": iso(self.created_at),
            "expires_at": iso(self.expires_at),
            "status": self.effective_status(now),
            "decided_by": self.decided_by,
            "decided_at": iso(self.decided_at),
            "decision_reason": self.decision_reason,
            "used_at": iso(self.used_at),
        }


@attrs.frozen
class ConsumeOutcome:
    """``ok``: the approval was marked used by this call. Otherwise ``problem`` is one of
    ``not_found``, ``pending``, ``denied``, ``expired``, ``used``, ``action``, ``target``,
    ``level``."""

    ok: bool
    record: ApprovalRecord | None
    problem: str | None = None


def _diagnose(
    rec: ApprovalRecord | None,
    action: str,
    device_id: str,
    hostname: str | None,
    required_level: str,
    now: float,
) -> str | None:
    """Why ``rec`` cannot be consumed for this action, or None when it can."""
    if rec is None:
        return "not_found"
    if rec.used_at is not None:
        return "used"
    if rec.action != action:
        return "action"
    if not rec.matches_target(device_id, hostname):
        return "target"
    status = rec.effective_status(now)
    if status != "approved":
        return status
    if level_rank(rec.level) < level_rank(required_level):
        return "level"
    return None


class ApprovalStore(abc.ABC):
    """The interface both stores implement."""

    #: True when calls block on I/O; async callers then run them in a worker thread.
    blocking: bool = False

    @abc.abstractmethod
    def create(
        self,
        *,
        action: str,
        device_id: str | None,
        hostname: str | None,
        level: str,
        requester: str | None,
        reason: str | None,
        now: float,
        ttl: float,
    ) -> ApprovalRecord: ...

    @abc.abstractmethod
    def get(self, request_id: str) -> ApprovalRecord | None: ...

    @abc.abstractmethod
    def decide(
        self, request_id: str, *, approved: bool, by: str, reason: str | None, now: float
    ) -> ApprovalRecord: ...

    @abc.abstractmethod
    def consume(
        self,
        request_id: str,
        *,
        action: str,
        device_id: str,
        hostname: str | None,
        required_level: str,
        now: float,
    ) -> ConsumeOutcome: ...

    @abc.abstractmethod
    def list(self, *, status: str | None, now: float) -> list[ApprovalRecord]: ...

    @abc.abstractmethod
    def reserve(
        self, action: str, device_id: str, *, limit: RateLimit | None, now: float
    ) -> str | None:
        """Count one execution of ``action`` unless that would exceed ``limit``; return
        the reason when it would (nothing recorded then)."""

    @abc.abstractmethod
    def release(self, action: str, device_id: str, *, success: bool) -> None:
        """Settle a reservation: keep it as an execution, or drop it if the action failed."""

    @abc.abstractmethod
    def count(self, action: str, since: float) -> int: ...

    @abc.abstractmethod
    def set_kill_switch(self, active: bool, reason: str | None, now: float) -> None: ...

    @abc.abstractmethod
    def kill_switch(self) -> str | None:
        """The reason the API kill switch is on, or None."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    # helpers shared by both stores
    @staticmethod
    def _decide_checks(rec: ApprovalRecord | None, request_id: str, now: float) -> ApprovalRecord:
        if rec is None:
            raise ApprovalError(f"no approval request {request_id}")
        status = rec.effective_status(now)
        if status == "expired":
            raise ApprovalError(
                f"approval request {request_id} expired at {iso(rec.expires_at)}; "
                "call the action again to file a new one"
            )
        if status != "pending":
            raise ApprovalError(
                f"approval request {request_id} was already {status} by {rec.decided_by}"
            )
        return rec


def _exceeded(limit: RateLimit | None, action: str, hour: int, day: int) -> str | None:
    if limit is None:
        return None
    if limit.max_per_hour is not None and hour >= limit.max_per_hour:
        return f"Rate limit exceeded: {action} hourly limit ({limit.max_per_hour}) exceeded"
    if limit.max_per_day is not None and day >= limit.max_per_day:
        return f"Rate limit exceeded: {action} daily limit ({limit.max_per_day}) exceeded"
    return None


class MemoryStore(ApprovalStore):
    """Process-local store guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[str, ApprovalRecord] = {}
        # [action, device_id, at, settled]
        self._executions: list[list[Any]] = []
        self._kill: str | None = None

    def create(
        self,
        *,
        action: str,
        device_id: str | None,
        hostname: str | None,
        level: str,
        requester: str | None,
        reason: str | None,
        now: float,
        ttl: float,
    ) -> ApprovalRecord:
        rec = ApprovalRecord.new(action, device_id, hostname, level, requester, reason, now, ttl)
        with self._lock:
            self._requests[rec.id] = rec
        return rec

    def get(self, request_id: str) -> ApprovalRecord | None:
        with self._lock:
            return self._requests.get(request_id)

    def decide(
        self, request_id: str, *, approved: bool, by: str, reason: str | None, now: float
    ) -> ApprovalRecord:
        with self._lock:
            rec = self._decide_checks(self._requests.get(request_id), request_id, now)
            rec = attrs.evolve(
                rec,
                status="approved" if approved else "denied",
                decided_by=by,
                decided_at=now,
                decision_reason=reason,
            )
            self._requests[request_id] = rec
            return rec

    def consume(
        self,
        request_id: str,
        *,
        action: str,
        device_id: str,
        hostname: str | None,
        required_level: str,
        now: float,
    ) -> ConsumeOutcome:
        with self._lock:
            rec = self._requests.get(request_id)
            problem = _diagnose(rec, action, device_id, hostname, required_level, now)
            if rec is not None and problem is None:
                rec = attrs.evolve(rec, used_at=now)
                self._requests[request_id] = rec
                return ConsumeOutcome(True, rec)
            return ConsumeOutcome(False, rec, problem)

    def list(self, *, status: str | None, now: float) -> list[ApprovalRecord]:
        with self._lock:
            recs = sorted(self._requests.values(), key=lambda r: r.created_at)
        return [r for r in recs if status is None or r.effective_status(now) == status]

    def reserve(
        self, action: str, device_id: str, *, limit: RateLimit | None, now: float
    ) -> str | None:
        with self._lock:
            hour = sum(1 for e in self._executions if e[0] == action and e[2] >= now - 3600)
            day = sum(1 for e in self._executions if e[0] == action and e[2] >= now - 86400)
            exceeded = _exceeded(limit, action, hour, day)
            if exceeded is None:
                self._executions.append([action, device_id, now, False])
            return exceeded

    def release(self, action: str, device_id: str, *, success: bool) -> None:
        with self._lock:
            for i, e in enumerate(self._executions):
                if e[0] == action and e[1] == device_id and not e[3]:
                    if success:
                        e[3] = True
                    else:
                        del self._executions[i]
                    return

    def count(self, action: str, since: float) -> int:
        with self._lock:
            return sum(1 for e in self._executions if e[0] == action and e[2] >= since)

    def set_kill_switch(self, active: bool, reason: str | None, now: float) -> None:
        with self._lock:
            self._kill = (reason or "activated through the API") if active else None

    def kill_switch(self) -> str | None:
        return self._kill


_SCHEMA = """
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    device_id TEXT,
    hostname TEXT,
    level TEXT NOT NULL,
    level_rank INTEGER NOT NULL,
    requester TEXT,
    reason TEXT,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    status TEXT NOT NULL,
    decided_by TEXT,
    decided_at REAL,
    decision_reason TEXT,
    used_at REAL
);
CREATE TABLE IF NOT EXISTS executions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    action TEXT NOT NULL,
    device_id TEXT NOT NULL,
    at REAL NOT NULL,
    settled INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS executions_action_at ON executions (action, at);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT);
"""

_COLUMNS = (
    "id, action, device_id, hostname, level, requester, reason, created_at, expires_at, "
    "status, decided_by, decided_at, decision_reason, used_at"
)


def connect(path: str) -> sqlite3.Connection:
    """A connection in autocommit mode with WAL and a busy timeout (shared with the audit)."""
    conn = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


class ThreadConnections:
    """One :func:`connect` connection per thread for a database file, all closed together."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def get(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
        self._local = threading.local()


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``: the write lock is taken up front, so a
    read-then-write cannot interleave with another process."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class SqliteStore(ApprovalStore):
    """Store in a SQLite file shared by every process that names it."""

    blocking = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(Path(path))
        self._pool = ThreadConnections(self.path)
        self._conn = self._pool.get
        self._conn().executescript(_SCHEMA)

    def close(self) -> None:
        self._pool.close()

    @staticmethod
    def _row(row: tuple[Any, ...] | None) -> ApprovalRecord | None:
        if row is None:
            return None
        return ApprovalRecord(*row)

    def create(
        self,
        *,
        action: str,
        device_id: str | None,
        hostname: str | None,
        level: str,
        requester: str | None,
        reason: str | None,
        now: float,
        ttl: float,
    ) -> ApprovalRecord:
        rec = ApprovalRecord.new(action, device_id, hostname, level, requester, reason, now, ttl)
        self._conn().execute(
            "INSERT INTO approvals (id, action, device_id, hostname, level, level_rank, "
            "requester, reason, created_at, expires_at, status) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
            (
                rec.id,
                action,
                device_id,
                hostname,
                level,
                APPROVAL_LEVELS.index(level),
                requester,
                reason,
                now,
                rec.expires_at,
            ),
        )
        return rec

    def get(self, request_id: str) -> ApprovalRecord | None:
        cur = self._conn().execute(f"SELECT {_COLUMNS} FROM approvals WHERE id = ?", (request_id,))  # noqa: S608
        return self._row(cur.fetchone())

    def decide(
        self, request_id: str, *, approved: bool, by: str, reason: str | None, now: float
    ) -> ApprovalRecord:
        with transaction(self._conn()) as conn:
            self._decide_checks(self.get(request_id), request_id, now)
            conn.execute(
                "UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?, "
                "decision_reason = ? WHERE id = ? AND status = 'pending'",
                ("approved" if approved else "denied", by, now, reason, request_id),
            )
        rec = self.get(request_id)
        assert rec is not None
        return rec

    def consume(
        self,
        request_id: str,
        *,
        action: str,
        device_id: str,
        hostname: str | None,
        required_level: str,
        now: float,
    ) -> ConsumeOutcome:
        cur = self._conn().execute(
            "UPDATE approvals SET used_at = ? WHERE id = ? AND used_at IS NULL "
            "AND status = 'approved' AND action = ? AND expires_at > ? AND level_rank >= ? "
            "AND (device_id = ? OR (device_id IS NULL AND hostname IS NOT NULL "
            "AND lower(hostname) IN (lower(?), lower(?))))",
            (
                now,
                request_id,
                action,
                now,
                APPROVAL_LEVELS.index(required_level),
                device_id,
                device_id,
                hostname or "",
            ),
        )
        rec = self.get(request_id)
        if cur.rowcount == 1:
            return ConsumeOutcome(True, rec)
        # Nothing updated: either a check failed or another caller consumed it first.
        problem = _diagnose(rec, action, device_id, hostname, required_level, now)
        return ConsumeOutcome(False, rec, problem or "used")

    def list(self, *, status: str | None, now: float) -> list[ApprovalRecord]:
        cur = self._conn().execute(f"SELECT {_COLUMNS} FROM approvals ORDER BY created_at")  # noqa: S608
        recs = [ApprovalRecord(*row) for row in cur.fetchall()]
        return [r for r in recs if status is None or r.effective_status(now) == status]

    def reserve(
        self, action: str, device_id: str, *, limit: RateLimit | None, now: float
    ) -> str | None:
        with transaction(self._conn()) as conn:
            hour, day = conn.execute(
                "SELECT COALESCE(SUM(at >= ?), 0), COUNT(*) FROM executions "
                "WHERE action = ? AND at >= ?",
                (now - 3600, action, now - 86400),
            ).fetchone()
            exceeded = _exceeded(limit, action, int(hour), int(day))
            if exceeded is None:
                conn.execute(
                    "INSERT INTO executions (action, device_id, at) VALUES (?, ?, ?)",
                    (action, device_id, now),
                )
            return exceeded

    def release(self, action: str, device_id: str, *, success: bool) -> None:
        sub = (
            "(SELECT id FROM executions WHERE action = ? AND device_id = ? AND settled = 0 "
            "ORDER BY id LIMIT 1)"
        )
        if success:
            sql = f"UPDATE executions SET settled = 1 WHERE id = {sub}"  # noqa: S608
        else:
            sql = f"DELETE FROM executions WHERE id = {sub}"  # noqa: S608
        self._conn().execute(sql, (action, device_id))

    def count(self, action: str, since: float) -> int:
        row = (
            self._conn()
            .execute(
                "SELECT COUNT(*) FROM executions WHERE action = ? AND at >= ?", (action, since)
            )
            .fetchone()
        )
        return int(row[0])

    def set_kill_switch(self, active: bool, reason: str | None, now: float) -> None:
        conn = self._conn()
        if active:
            conn.execute(
                "INSERT OR REPLACE INTO settings (key, value) VALUES ('kill_switch', ?)",
                (reason or "activated through the API",),
            )
        else:
            conn.execute("DELETE FROM settings WHERE key = 'kill_switch'")

    def kill_switch(self) -> str | None:
        row = (
            self._conn().execute("SELECT value FROM settings WHERE key = 'kill_switch'").fetchone()
        )
        return None if row is None else str(row[0])


# --------------------------------------------------------------- process singletons

_singleton_lock = threading.Lock()
_memory_store: MemoryStore | None = None
_sqlite_stores: dict[str, SqliteStore] = {}


def get_default_store(db: str | os.PathLike[str] | None = None) -> ApprovalStore:
    """The process's store: SQLite at ``db`` or ``TW_POLICY_DB``, else the one in-memory
    store. The same object is returned for the same file, so every bridge and gate in a
    process shares it."""
    global _memory_store
    path = str(db) if db is not None else (os.environ.get("TW_POLICY_DB") or None)
    with _singleton_lock:
        if path is None:
            if _memory_store is None:
                _memory_store = MemoryStore()
            return _memory_store
        key = os.path.abspath(path)
        store = _sqlite_stores.get(key)
        if store is None:
            store = _sqlite_stores[key] = SqliteStore(path)
        return store


def reset_default_stores() -> None:
    """Forget the process's stores (closing SQLite connections). For tests."""
    global _memory_store
    with _singleton_lock:
        _memory_store = None
        for store in _sqlite_stores.values():
            store.close()
        _sqlite_stores.clear()
