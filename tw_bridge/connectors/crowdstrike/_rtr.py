"""Real Time Response on the read-only tier (scope "Real time response: Read").

One session per call: init, run ``ps`` / ``netstat`` through
``/real-time-response/entities/command/v1``, poll ``GET`` with the
``cloud_request_id`` until ``complete`` (bounded by ``rtr_timeout``), and always
delete the session — in a ``finally``, shielded so a cancelled caller still
closes it. The older implementation used the admin tier (and so needed the
admin scope) for the same read-only commands.
"""

from __future__ import annotations

import asyncio
import time

from ..._errors import ConnectorError, HostNotFound, RequestTimeout
from ..._models import HostInfo
from ..._redact import get_logger
from ._falcon_models import RTRCommandResult, RTRSession, structure_list
from ._http import FalconHTTP
from ._operations import OPS

__all__ = ["RTRClient"]

log = get_logger("tw_bridge.crowdstrike")

_ORIGIN = "tw-bridge"


class RTRClient:
    def __init__(self, http: FalconHTTP, *, timeout: float, poll_interval: float) -> None:
        self._http = http
        self._timeout = timeout
        self._poll = poll_interval
        # Falcon hands the same API client the same session for a device, so two concurrent
        # runs on one device share it and the first to finish would delete it under the
        # other ("Could not find session"). Runs on one device are serialized; the lock is
        # dropped when nobody waits for it.
        self._device_locks: dict[str, tuple[asyncio.Lock, int]] = {}

    async def run(self, host: HostInfo, commands: list[str]) -> dict[str, str]:
        """Run read-only ``commands`` in one session; stdout by base command."""
        deadline = time.monotonic() + self._timeout
        lock, users = self._device_locks.get(host.id, (asyncio.Lock(), 0))
        self._device_locks[host.id] = (lock, users + 1)
        try:
            remaining = deadline - time.monotonic()
            try:
                await asyncio.wait_for(lock.acquire(), remaining)
            except asyncio.TimeoutError:
                raise RequestTimeout(
                    f"RTR on {host.hostname} waited {self._timeout:g} s for another RTR "
                    "call on the same device (TW_CROWDSTRIKE_RTR_TIMEOUT)"
                ) from None
            try:
                return await self._run(host, commands, deadline)
            finally:
                lock.release()
        finally:
            lock, users = self._device_locks[host.id]
            if users <= 1:
                del self._device_locks[host.id]
            else:
                self._device_locks[host.id] = (lock, users - 1)

    async def _run(self, host: HostInfo, commands: list[str], deadline: float) -> dict[str, str]:
        session = await self._init(host)
        try:
            out: dict[str, str] = {}
            for cmd in commands:
                out[cmd] = await self._execute(host, session, cmd, deadline)
            return out
        finally:
            await asyncio.shield(self._delete(session))

    async def _init(self, host: HostInfo) -> str:
        try:
            resp = await self._http.send(
                OPS["RTR_InitSession"],
                params=[("timeout", "30")],
                json_body={"device_id": host.id, "queue_offline": False, "origin": _ORIGIN},
            )
        except HostNotFound as exc:
            text = str(exc)
            if "sensor comms" in text.lower() or "40401" in text:
                raise ConnectorError(
                    f"Real Time Response could not reach {host.hostname} ({host.id}): the "
                    "sensor is offline (Falcon: could not establish sensor comms)",
                    status=exc.status, trace_id=exc.trace_id,
                ) from exc
            raise
        sessions = structure_list(resp.resources, RTRSession, what="a malformed RTR session",
                                  trace_id=resp.trace_id)
        if not sessions:
            why = resp.envelope.error_text if resp.envelope else "(no message)"
            raise ConnectorError(f"Falcon opened no RTR session for {host.hostname}: {why}",
                                 status=resp.status, trace_id=resp.trace_id)
        return sessions[0].session_id

    async def _execute(self, host: HostInfo, session: str, cmd: str, deadline: float) -> str:
        resp = await self._http.send(
            OPS["RTR_ExecuteCommand"],
            json_body={"base_command": cmd, "command_string": cmd, "session_id": session,
                       "device_id": host.id, "persist": False},
        )
        started = structure_list(resp.resources, RTRCommandResult,
                                 what="a malformed RTR command reply", trace_id=resp.trace_id)
        request_id = started[0].cloud_request_id if started else None
        if not request_id:
            raise ConnectorError(f"Falcon did not start RTR {cmd!r} on {host.hostname}",
                                 status=resp.status, trace_id=resp.trace_id)
        delay = min(0.1, self._poll)
        while True:
            poll = await self._http.send(
                OPS["RTR_CheckCommandStatus"],
                params=[("cloud_request_id", request_id), ("sequence_id", "0")],
            )
            results = structure_list(poll.resources, RTRCommandResult,
                                     what="a malformed RTR status", trace_id=poll.trace_id)
            if results and results[0].complete:
                res = results[0]
                if res.stderr and not res.stdout:
                    raise ConnectorError(
                        f"RTR {cmd!r} failed on {host.hostname}: {res.stderr.strip()[:300]}",
                        trace_id=poll.trace_id,
                    )
                return res.stdout or ""
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RequestTimeout(
                    f"RTR {cmd!r} on {host.hostname} did not complete within "
                    f"{self._timeout:g} s (TW_CROWDSTRIKE_RTR_TIMEOUT)",
                    trace_id=poll.trace_id,
                )
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, self._poll)

    async def _delete(self, session: str) -> None:
        try:
            await self._http.send(OPS["RTR_DeleteSession"], params=[("session_id", session)],
                                  accept=(404,), max_wait=5.0)
        except (ConnectorError, OSError, asyncio.TimeoutError) as exc:
            log.warning("could not delete RTR session %s: %s", session, exc)
