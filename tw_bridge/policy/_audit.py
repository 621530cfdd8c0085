"""A hash-chained, append-only audit trail.

Each entry carries ``seq`` (1, 2, …), ``prev_hash`` and ``hash`` =
``sha256(prev_hash + canonical_json(entry without prev_hash and hash))``; the first entry's
``prev_hash`` is 64 zeros. Editing an entry breaks its hash; deleting one breaks the link
(and the sequence) of the next. The SQLite trail also keeps the head (last seq and hash)
in the same transaction, so deleting the newest entries is detected too.

Backends: :class:`SqliteAudit` (the ``audit`` table of ``TW_POLICY_DB``),
:class:`JsonlAudit` (``TW_AUDIT_LOG``, one JSON object a line, appended under a file
lock), :class:`MemoryAudit` (default, one per process).
"""

from __future__ import annotations

import abc
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import attrs

from ._store import ThreadConnections, iso, transaction

try:  # POSIX; elsewhere the in-process lock is all there is
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "GENESIS",
    "AuditTrail",
    "JsonlAudit",
    "MemoryAudit",
    "SqliteAudit",
    "VerifyResult",
    "canonical_json",
    "entry_hash",
    "get_default_audit",
    "reset_default_audits",
]

GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept: the same entry always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_hash(prev_hash: str, body: Mapping[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(body)).encode("utf-8")).hexdigest()


def _body(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k not in ("hash", "prev_hash")}


@attrs.frozen
class VerifyResult:
    """``ok`` and the number of entries checked, or the first broken entry's ``seq``
    (for a deletion: the entry after the gap) and why."""

    ok: bool
    entries: int
    broken_seq: int | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def verify_entries(
    entries: list[dict[str, Any]], head: tuple[int, str] | None = None
) -> VerifyResult:
    prev = GENESIS
    expected_seq = 1
    for entry in entries:
        seq = entry.get("seq")
        if seq != expected_seq:
            return VerifyResult(
                False,
                len(entries),
                seq if isinstance(seq, int) else expected_seq,
                f"expected entry {expected_seq}, found {seq!r}: an entry was deleted or reordered",
            )
        if entry.get("prev_hash") != prev:
            return VerifyResult(
                False,
                len(entries),
                seq,
                f"entry {seq} does not link to the entry before it: an entry was deleted or edited",
            )
        if entry_hash(prev, _body(entry)) != entry.get("hash"):
            return VerifyResult(
                False, len(entries), seq, f"entry {seq} was edited: its hash does not match"
            )
        prev = str(entry["hash"])
        expected_seq += 1
    if head is not None and head != (expected_seq - 1, prev):
        return VerifyResult(
            False,
            len(entries),
            expected_seq,
            f"the trail ends at entry {expected_seq - 1} but its head records entry {head[0]}: "
            "the newest entries were deleted",
        )
    return VerifyResult(True, len(entries))


class AuditTrail(abc.ABC):
    """Append entries, read them back, verify the chain."""

    blocking: bool = False

    def __init__(self, clock: Any = None) -> None:
        self._clock = clock or time.time

    def append(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        """Chain and store ``entry`` (JSON-able values); return it with seq and hashes.
        A ``time`` is added when missing."""
        body = {k: v for k, v in entry.items() if k not in ("seq", "hash", "prev_hash")}
        body.setdefault("time", iso(self._clock()))
        return self._append(body)

    @abc.abstractmethod
    def _append(self, body: dict[str, Any]) -> dict[str, Any]: ...

    @abc.abstractmethod
    def entries(self) -> list[dict[str, Any]]: ...

    def verify(self) -> VerifyResult:
        return verify_entries(self.entries())

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    @staticmethod
    def _chain(body: dict[str, Any], seq: int, prev: str) -> dict[str, Any]:
        body = {**body, "seq": seq}
        return {**body, "prev_hash": prev, "hash": entry_hash(prev, body)}


class MemoryAudit(AuditTrail):
    def __init__(self, clock: Any = None) -> None:
        super().__init__(clock)
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []

    def _append(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            prev = self._entries[-1]["hash"] if self._entries else GENESIS
            entry = self._chain(body, len(self._entries) + 1, prev)
            self._entries.append(entry)
            return dict(entry)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._entries]


_AUDIT_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER, hash TEXT
);
"""


class SqliteAudit(AuditTrail):
    """The ``audit`` table; ``body`` holds the canonical JSON of the entry."""

    blocking = True

    def __init__(self, path: str | os.PathLike[str], clock: Any = None) -> None:
        super().__init__(clock)
        self.path = str(path)
        self._pool = ThreadConnections(self.path)
        self._conn = self._pool.get
        self._conn().executescript(_AUDIT_SCHEMA)

    def close(self) -> None:
        self._pool.close()

    def _append(self, body: dict[str, Any]) -> dict[str, Any]:
        with transaction(self._conn()) as conn:
            row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (int(row[0]) + 1, str(row[1])) if row else (1, GENESIS)
            entry = self._chain(body, seq, prev)
            conn.execute(
                "INSERT INTO audit (seq, time, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?)",
                (seq, str(body.get("time")), canonical_json(_body(entry)), prev, entry["hash"]),
            )
            conn.execute(
                "INSERT OR REPLACE INTO audit_head (id, seq, hash) VALUES (1, ?, ?)",
                (seq, entry["hash"]),
            )
        return entry

    def entries(self) -> list[dict[str, Any]]:
        out = []
        for seq, body, prev, digest in self._conn().execute(
            "SELECT seq, body, prev_hash, hash FROM audit ORDER BY seq"
        ):
            try:
                entry = json.loads(body)
            except ValueError:
                entry = {"_unreadable": body}
            if not isinstance(entry, dict):
                entry = {"_unreadable": body}
            # The row's seq column wins, so renumbering rows cannot hide a deletion.
            entry["seq"] = seq if entry.get("seq") == seq else entry.get("seq", seq)
            out.append({**entry, "prev_hash": prev, "hash": digest})
        return out

    def verify(self) -> VerifyResult:
        row = self._conn().execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        head = (int(row[0]), str(row[1])) if row else None
        return verify_entries(self.entries(), head or (0, GENESIS))


class JsonlAudit(AuditTrail):
    """JSON lines in a file; appends hold an exclusive ``flock`` so processes can share it."""

    def __init__(self, path: str | os.PathLike[str], clock: Any = None) -> None:
        super().__init__(clock)
        self.path = str(path)
        self._lock = threading.Lock()

    blocking = True

    @contextmanager
    def _locked(self) -> Iterator[Any]:
        with self._lock, open(self.path, "a+b") as fh:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield fh
            finally:
                if fcntl is not None:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    @staticmethod
    def _last_line(fh: Any) -> bytes | None:
        fh.seek(0, os.SEEK_END)
        end = fh.tell()
        pos, chunk, data = end, 4096, b""
        while pos > 0:
            step = min(chunk, pos)
            pos -= step
            fh.seek(pos)
            data = fh.read(step) + data
            lines = data.rstrip(b"\n").split(b"\n")
            if len(lines) > 1 or pos == 0:
                last = lines[-1].strip()
                return last or None
        return None

    def _append(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._locked() as fh:
            last = self._last_line(fh)
            seq, prev = 1, GENESIS
            if last:
                tail = json.loads(last)
                seq, prev = int(tail["seq"]) + 1, str(tail["hash"])
            entry = self._chain(body, seq, prev)
            fh.seek(0, os.SEEK_END)
            fh.write((canonical_json(entry) + "\n").encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        return entry

    def entries(self) -> list[dict[str, Any]]:
        if not os.path.exists(self.path):
            return []
        out: list[dict[str, Any]] = []
        with open(self.path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    entry = {"seq": None, "_unreadable": f"line {n}"}
                out.append(entry if isinstance(entry, dict) else {"seq": None})
        return out


# --------------------------------------------------------------- process singletons

_lock = threading.Lock()
_memory: MemoryAudit | None = None
_files: dict[tuple[str, str], AuditTrail] = {}


def get_default_audit(
    db: str | os.PathLike[str] | None = None, log: str | os.PathLike[str] | None = None
) -> AuditTrail:
    """The SQLite trail in ``db``/``TW_POLICY_DB``, else JSON lines at ``log``/``TW_AUDIT_LOG``,
    else the process's in-memory trail."""
    global _memory
    db_path = str(db) if db is not None else (os.environ.get("TW_POLICY_DB") or None)
    log_path = str(log) if log is not None else (os.environ.get("TW_AUDIT_LOG") or None)
    with _lock:
        if db_path is not None and log is None:
            key = ("db", os.path.abspath(db_path))
            trail = _files.get(key)
            if trail is None:
                trail = _files[key] = SqliteAudit(db_path)
            return trail
        if log_path is not None:
            key = ("log", os.path.abspath(log_path))
            trail = _files.get(key)
            if trail is None:
                trail = _files[key] = JsonlAudit(log_path)
            return trail
        if _memory is None:
            _memory = MemoryAudit()
        return _memory


def reset_default_audits() -> None:
    global _memory
    with _lock:
        _memory = None
        for trail in _files.values():
            trail.close()
        _files.clear()
