"""Parse RTR ``ps`` and ``netstat`` output (Windows and Linux/macOS) into contract models.

Falcon does not document RTR's output formats. The parsers therefore key on the
header line, not on fixed columns:

* Windows ``ps`` — a PowerShell ``Get-Process``-style table
  (``Name  Id  Start Time (UTC-0)  WorkingMemory  CPU(s)  HandleCount  Path``);
  start times as ISO 8601 or ``M/D/YYYY h:mm:ss AM``; a blank start time is allowed.
* Unix ``ps`` — ``ps -ef`` or ``ps aux`` (any header with ``PID`` and ``CMD``/
  ``COMMAND``): split on whitespace, the last column keeps its spaces.
* ``netstat`` — Windows (``Proto  Local Address  Foreign Address  State  PID``) and
  Linux ``netstat -anp`` (``Recv-Q Send-Q`` ... ``PID/Program name``); UDP rows
  have no state.

Lines that do not fit are skipped (and counted at DEBUG), never guessed at.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from ..._convert import parse_timestamp
from ..._models import NetworkConnection, ProcessInfo
from ..._redact import get_logger

__all__ = ["parse_netstat", "parse_ps", "parse_start_time", "split_address"]

log = get_logger("tw_bridge.crowdstrike")

_WIN_TIME = (r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
             r"|\d{1,2}/\d{1,2}/\d{4}\s+\d{1,2}:\d{2}(?::\d{2})?(?:\s*[AaPp][Mm])?")
_WIN_PS = re.compile(
    rf"^(?P<name>\S.*?)\s+(?P<pid>\d+)\s+(?:(?P<start>{_WIN_TIME})\s+)?"
    r"(?P<mem>[\d.,]+)\s+(?P<cpu>[\d.,]+)\s+(?P<handles>\d+)(?:\s+(?P<path>\S.*?))?\s*$"
)
_STATE = re.compile(r"[A-Z][A-Z0-9_]*")
_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def parse_start_time(text: str, now: datetime | None = None) -> datetime | None:
    """A ps start time: ISO, ``M/D/YYYY h:mm[:ss] [AM|PM]``, ``HH:MM``, ``MonDD``, ``YYYY``."""
    now = now or _now()
    t = text.strip()
    if not t:
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ].*", t):
            iso = t.replace(" ", "T", 1)
            if not re.search(r"(Z|[+-]\d{2}:?\d{2})$", iso):
                iso += "Z"
            return parse_timestamp(iso)
        m = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?"
                         r"(?:\s*([AaPp])[Mm])?", t)
        if m:
            mo, d, y, hh, mi, ss, ampm = m.groups()
            hour = int(hh) % 12 + (12 if ampm and ampm.lower() == "p" else 0) if ampm else int(hh)
            return datetime(int(y), int(mo), int(d), hour, int(mi), int(ss or 0),
                            tzinfo=timezone.utc)
        m = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", t)
        if m:
            hh, mi, ss = m.groups()
            dt = now.replace(hour=int(hh), minute=int(mi), second=int(ss or 0), microsecond=0)
            return dt - timedelta(days=1) if dt > now else dt
        m = re.fullmatch(r"([A-Za-z]{3})\s?(\d{1,2})", t)
        if m and m.group(1).lower() in _MONTHS:
            dt = datetime(now.year, _MONTHS[m.group(1).lower()], int(m.group(2)),
                          tzinfo=timezone.utc)
            return dt.replace(year=now.year - 1) if dt > now else dt
        if re.fullmatch(r"\d{4}", t):
            return datetime(int(t), 1, 1, tzinfo=timezone.utc)
    except ValueError:
        return None
    return None


def parse_ps(text: str, platform: str, *, now: datetime | None = None) -> list[ProcessInfo]:
    """Processes from RTR ``ps`` output; unknown start times become ``now``."""
    now = now or _now()
    lines = [ln.rstrip("\r") for ln in text.splitlines() if ln.strip()]
    header_idx = next((i for i, ln in enumerate(lines) if _is_ps_header(ln)), None)
    if header_idx is None:
        if lines:
            log.debug("ps output without a recognisable header (%d lines) skipped", len(lines))
        return []
    header = lines[header_idx]
    body = lines[header_idx + 1:]
    if header.split()[0].lower() == "name":
        return _ps_windows(body, now)
    return _ps_unix(header, body, now)


def _is_ps_header(line: str) -> bool:
    cols = line.split()
    upper = [c.upper() for c in cols]
    if cols and cols[0].lower() == "name" and "Id" in cols:
        return True
    return "PID" in upper and any(c in upper for c in ("CMD", "COMMAND", "ARGS"))


def _basename(path: str) -> str:
    return re.split(r"[\\/]", path.rstrip("\\/"))[-1] if path else path


def _ps_windows(body: list[str], now: datetime) -> list[ProcessInfo]:
    out: list[ProcessInfo] = []
    skipped = 0
    for ln in body:
        if set(ln.replace(" ", "")) <= {"-"}:
            continue
        m = _WIN_PS.match(ln)
        if m is None:
            skipped += 1
            continue
        path = m.group("path") or None
        start = parse_start_time(m.group("start") or "", now) or now
        name = m.group("name").strip()
        if path and not name.lower().endswith(".exe") and _basename(path).lower().endswith(
            ".exe"
        ):
            name = _basename(path)
        out.append(ProcessInfo(
            pid=int(m.group("pid")), name=name, command_line=path or "", parent_pid=None,
            user="", start_time=start, file_hash=None, file_path=path,
        ))
    if skipped:
        log.debug("skipped %d unparseable Windows ps line(s)", skipped)
    return out


def _ps_unix(header: str, body: list[str], now: datetime) -> list[ProcessInfo]:
    cols = [c.upper() for c in header.split()]
    idx = {c: i for i, c in enumerate(cols)}
    cmd_col = next(c for c in ("CMD", "COMMAND", "ARGS") if c in idx)
    if idx[cmd_col] != len(cols) - 1:
        log.debug("ps header %r: command is not the last column", header)
        return []
    out: list[ProcessInfo] = []
    skipped = 0
    for ln in body:
        parts = ln.split(None, len(cols) - 1)
        if len(parts) != len(cols) or not parts[idx["PID"]].isdigit():
            skipped += 1
            continue
        cmd = parts[-1].strip()
        ppid_text = parts[idx["PPID"]] if "PPID" in idx else ""
        user = next((parts[idx[c]] for c in ("UID", "USER") if c in idx), "")
        start_col = next((c for c in ("STIME", "START", "STARTED") if c in idx), None)
        start = parse_start_time(parts[idx[start_col]], now) if start_col else None
        first = cmd.split()[0] if cmd.split() else cmd
        if first.startswith("[") and first.endswith("]"):
            name, path = first[1:-1], None
        else:
            first = first.rstrip(":").lstrip("-")
            name = _basename(first) or first
            path = first if first.startswith("/") else None
        out.append(ProcessInfo(
            pid=int(parts[idx["PID"]]), name=name, command_line=cmd,
            parent_pid=int(ppid_text) if ppid_text.isdigit() else None, user=user,
            start_time=start or now, file_hash=None, file_path=path,
        ))
    if skipped:
        log.debug("skipped %d unparseable ps line(s)", skipped)
    return out


def split_address(text: str) -> tuple[str, int]:
    """``10.0.0.5:443`` / ``[::1]:22`` / ``:::22`` / ``*:*`` -> (address, port; 0 for ``*``)."""
    t = text.strip()
    if t.startswith("["):
        host, _, rest = t[1:].partition("]")
        port = rest.lstrip(":")
    else:
        host, sep, port = t.rpartition(":")
        if not sep:
            return t, 0
    return host, int(port) if port.isdigit() else 0


def parse_netstat(text: str, *, now: datetime | None = None,
                  names: dict[int, str] | None = None) -> list[NetworkConnection]:
    """Connections from RTR ``netstat`` output; ``names`` fills in process names by pid."""
    now = now or _now()
    names = names or {}
    out: list[NetworkConnection] = []
    skipped = 0
    for raw in text.splitlines():
        tokens = raw.split()
        if not tokens or not re.fullmatch(r"(?i)(tcp|udp)6?", tokens[0]):
            continue
        proto = tokens[0].upper()
        rest = tokens[1:]
        if len(rest) >= 2 and rest[0].isdigit() and rest[1].isdigit() and len(rest) >= 4:
            rest = rest[2:]  # Linux: Recv-Q Send-Q
        if len(rest) < 2:
            skipped += 1
            continue
        local, remote, rest = rest[0], rest[1], rest[2:]
        state = ""
        if rest and _STATE.fullmatch(rest[0]) and not rest[0].isdigit():
            state, rest = rest[0], rest[1:]
        pid: int | None = None
        prog = ""
        if rest:
            head, _, tail = " ".join(rest).partition("/")
            if head.isdigit():
                pid = int(head)
                prog = tail.strip()
            elif head != "-":
                skipped += 1
                continue
        try:
            laddr, lport = split_address(local)
            raddr, rport = split_address(remote)
        except ValueError:
            skipped += 1
            continue
        if not prog and pid is not None:
            prog = names.get(pid, "")
        out.append(NetworkConnection(
            pid=pid, process_name=prog, local_address=laddr, local_port=lport,
            remote_address=raddr, remote_port=rport, protocol=proto, state=state,
            timestamp=now,
        ))
    if skipped:
        log.debug("skipped %d unparseable netstat line(s)", skipped)
    return out
