"""Helpers shared by test folders (reliability suite, CrowdStrike tests).

* :func:`cs_bridge`: ``EDRBridge("crowdstrike", ...)`` pointed at a FalconEmulator, with the
  *real* policy gate and an approver callback (unless ``policy=`` / ``approver=None`` say
  otherwise), client-side limits lifted and small timeouts.
* Process resources: :func:`open_fds`, :func:`rss_kib`, :func:`thread_names`.
* :func:`issued_tokens`: every bearer token the emulator has handed out (for leak checks).
* :func:`unique_host`: an online device with a hostname unique in the fleet.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from tw_bridge import EDRBridge
from tw_bridge.testing.falcon import FalconEmulator

APPROVER_NAME = "reliability-test"


def approve(request: dict[str, Any]) -> str:
    """Approver callback: approves everything (the audit trail names it)."""
    return APPROVER_NAME


def cs_bridge(emu: FalconEmulator, **kw: Any) -> EDRBridge:
    """A crowdstrike-mode bridge against ``emu`` (real PolicyGate, inline approver)."""
    kw.setdefault("client_id", emu.client_id)
    kw.setdefault("client_secret", emu.client_secret)
    kw.setdefault("base_url", emu.base_url)
    kw.setdefault("rate_limits", None)
    kw.setdefault("poll_interval", 0.05)
    kw.setdefault("timeout", 1)
    if "policy" not in kw:
        kw.setdefault("approver", approve)
    return EDRBridge("crowdstrike", **kw)


def open_fds() -> int:
    """Number of open file descriptors of this process (Linux)."""
    return len(os.listdir("/proc/self/fd"))


def fd_targets() -> list[str]:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return sorted(out)


def rss_kib() -> int:
    """Resident set size of this process in KiB (Linux)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("VmRSS not found")


def thread_names() -> list[str]:
    return sorted(t.name for t in threading.enumerate())


def issued_tokens(emu: FalconEmulator) -> list[str]:
    """Every access token the emulator issued (revoked ones included)."""
    return list(emu.tokens.issued)


def unique_host(emu: FalconEmulator, platform: str = "Windows", *, skip: int = 0,
                status: str | None = "normal") -> dict[str, Any]:
    """The ``skip``-th online device of ``platform`` whose hostname is unique in the fleet."""
    names: dict[str, int] = {}
    for h in emu.fleet.hosts:
        names[h["hostname"].lower()] = names.get(h["hostname"].lower(), 0) + 1
    found = 0
    for h in emu.fleet.hosts:
        if (h["platform_name"] == platform and emu.fleet.online[h["device_id"]]
                and (status is None or h["status"] == status)
                and names[h["hostname"].lower()] == 1):
            if found == skip:
                return h
            found += 1
    raise LookupError(platform)


def set_containment(emu: FalconEmulator, aid: str, status: str) -> None:
    """Force a device's containment state (and forget pending transitions)."""
    with emu.fleet.lock:
        emu.app.pending.pop(aid, None)
        emu.fleet.by_id[aid]["status"] = status
