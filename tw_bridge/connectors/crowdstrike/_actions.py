"""Response actions: containment (``PerformActionV2``) and on-demand scans (ODS).

Containment is asynchronous at Falcon: a 202 means "requested"; the device's
``status`` goes ``containment_pending`` -> ``contained`` once the sensor confirms.
``wait=`` polls the device record until then. Falcon answers "already in that
state" with 409 (overall, or per host inside ``errors``); that is the mock's
outcome too: :class:`~tw_bridge.ActionConflict`. Retry rules: see
:class:`~._operations.Retry`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..._errors import ActionConflict, ConnectorError, InvalidResponse
from ..._models import ActionResult, HostInfo, IsolationStatus
from ..._redact import get_logger
from .._base import new_action_id, now_utc
from ._falcon_models import ScanRecord, structure_list
from ._hosts import HostsAPI, containment
from ._http import FalconHTTP, FalconResponse
from ._operations import OPS

__all__ = ["ActionsAPI", "containment_request", "scan_request"]

log = get_logger("tw_bridge.crowdstrike")

_FALCON_ACTION = {"isolate_host": "contain", "unisolate_host": "lift_containment"}
_TARGET = {"isolate_host": IsolationStatus.ISOLATED, "unisolate_host": IsolationStatus.NORMAL}
_PENDING = {"isolate_host": IsolationStatus.ISOLATION_PENDING,
            "unisolate_host": IsolationStatus.RELEASE_PENDING}

#: Whole-host on-demand scan defaults (documented in docs/crowdstrike.md).
SCAN_DEFAULTS: dict[str, Any] = {
    "scan_inclusions": ["**"],
    "scan_exclusions": [],
    "cloud_ml_level_detection": 2,   # moderate
    "cloud_ml_level_prevention": 2,
    "sensor_ml_level_detection": 2,
    "sensor_ml_level_prevention": 2,
    "cpu_priority": 2,               # low: up to 25 % of a CPU
    "max_file_size": 60,             # MB
    "max_duration": 4,               # hours
    "pause_duration": 2,             # hours
    "quarantine": True,
    "endpoint_notification": True,
    "initiated_from": "cloud_scan",
    "description": "tw-bridge scan_host",
}


def _scan_paths(platform: str) -> list[str]:
    return ["C:\\"] if platform.lower().startswith("win") else ["/"]


def containment_request(action: str, aid: str) -> dict[str, Any]:
    return {
        "method": "POST",
        "path": OPS["PerformActionV2"].path,
        "params": {"action_name": _FALCON_ACTION[action]},
        "body": {"ids": [aid]},
    }


def scan_request(host: HostInfo) -> dict[str, Any]:
    body = {"hosts": [host.id], "file_paths": _scan_paths(host.platform), **SCAN_DEFAULTS}
    return {"method": "POST", "path": OPS["create_scan"].path, "params": {}, "body": body}


def _conflict_text(action: str, host: HostInfo) -> str:
    if action == "isolate_host":
        return f"Request failed: Host {host.hostname} is already isolated (or isolation is pending)"
    return f"Request failed: Host {host.hostname} is not isolated (or release is pending)"


class ActionsAPI:
    def __init__(self, http: FalconHTTP, hosts: HostsAPI, poll_interval: float) -> None:
        self._http = http
        self._hosts = hosts
        self._poll = poll_interval

    async def containment(self, action: str, host: HostInfo, wait: float | None) -> ActionResult:
        req = containment_request(action, host.id)
        verb = "containment" if action == "isolate_host" else "lifting containment"
        try:
            resp = await self._http.send(
                OPS["PerformActionV2"], params=list(req["params"].items()),
                json_body=req["body"], accept=(409,),
            )
        except ActionConflict as exc:  # pragma: no cover - 409 is accepted above
            raise ActionConflict(_conflict_text(action, host), trace_id=exc.trace_id,
                                 status=409) from exc
        self._check_per_host(action, host, resp)
        started = time.monotonic()
        status = _PENDING[action]
        if wait:
            status = await self._wait_for(action, host, wait)
        elapsed = time.monotonic() - started
        target = _TARGET[action]
        if status is target:
            word = "isolated" if action == "isolate_host" else "released from isolation"
            message = f"Host {host.hostname} {word} (Falcon confirmed after {elapsed:.1f} s)"
            out = target.value
        elif wait:
            message = (f"Falcon accepted {verb} for {host.hostname} but did not confirm it "
                       f"within {wait:g} s (device status {status.value}); the sensor applies "
                       "it when it next checks in")
            out = "unverified"
        else:
            message = (f"Falcon accepted {verb} for {host.hostname}; it takes effect when the "
                       f"sensor confirms (status {status.value})")
            out = status.value
        return ActionResult(
            success=True, action_id=new_action_id(action), action=action, host_id=host.id,
            hostname=host.hostname, message=message, timestamp=now_utc(), status=out,
            trace_id=resp.trace_id,
        )

    def _check_per_host(self, action: str, host: HostInfo, resp: FalconResponse) -> None:
        errors = resp.envelope.errors if resp.envelope and resp.envelope.errors else []
        mine = [e for e in errors if e.id in (None, host.id) or host.id in (e.message or "")]
        accepted = any(isinstance(r, dict) and r.get("id") == host.id for r in resp.resources)
        conflict = resp.status == 409 or any(e.code == 409 for e in mine)
        if conflict and not accepted:
            if "5xx" in resp.history:
                # An earlier attempt answered 5xx but acted: the state is what we asked for.
                log.info("%s on %s: 409 after a 5xx retry; the first attempt took effect",
                         action, host.id)
                return
            raise ActionConflict(_conflict_text(action, host), status=409,
                                 trace_id=resp.trace_id)
        if mine and not accepted:
            raise ConnectorError(
                f"Falcon refused {action} on {host.hostname} ({host.id}): "
                + "; ".join(f"{e.code}: {e.message}" for e in mine),
                status=resp.status, trace_id=resp.trace_id,
            )
        if not accepted and not resp.resources and resp.status >= 300:
            raise InvalidResponse(  # pragma: no cover - defensive
                f"Falcon answered {resp.status} to {action} without a result",
                status=resp.status, trace_id=resp.trace_id,
            )

    async def _wait_for(self, action: str, host: HostInfo, wait: float) -> IsolationStatus:
        target = _TARGET[action]
        deadline = time.monotonic() + wait
        status = _PENDING[action]
        delay = min(self._poll, 0.2)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return status
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, self._poll)
            try:
                found = await self._hosts.details([host.id])
            except ConnectorError as exc:
                log.debug("poll for %s on %s failed: %s", action, host.id, exc)
                continue
            rec = found.get(host.id)
            if rec is not None:
                status = containment(rec.status)
                if status is target:
                    return status

    async def scan(self, host: HostInfo) -> ActionResult:
        req = scan_request(host)
        resp = await self._http.send(OPS["create_scan"], json_body=req["body"])
        scans = structure_list(resp.resources, ScanRecord, what="a malformed scan record",
                               trace_id=resp.trace_id)
        if not scans:
            raise InvalidResponse(
                f"Falcon accepted the scan of {host.hostname} ({resp.status}) but returned no "
                "scan id; check On-demand scans in the console before repeating",
                status=resp.status, trace_id=resp.trace_id,
            )
        scan_id = scans[0].id
        return ActionResult(
            success=True, action_id=new_action_id("scan_host"), action="scan_host",
            host_id=host.id, hostname=host.hostname,
            message=(f"On-demand scan {scan_id} started on host {host.hostname} "
                     f"(Falcon status: {scans[0].status or 'pending'})"),
            timestamp=now_utc(), status="scan_pending", scan_id=scan_id,
            trace_id=resp.trace_id,
        )
