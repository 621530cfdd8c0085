"""Detections through the Alerts API v2 (the Detects API was decommissioned 2025-09-30).

``GET /alerts/queries/alerts/v2`` with ``filter=device.device_id:'<aid>'`` (and
``+timestamp:>='<iso>'`` for ``hours=``), ``sort=timestamp|desc``, then
``POST /alerts/entities/alerts/v2`` with ``composite_ids`` in batches of ≤ 1000.
Falcon returns entities in arbitrary order, so they are put back in the query's
order (and then stably sorted by event time, newest first).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

from ..._convert import format_timestamp, parse_timestamp
from ..._models import Detection, HostInfo, Severity
from ..._redact import get_logger
from ._falcon_models import Alert, structure_list
from ._http import FalconHTTP
from ._operations import OPS

__all__ = ["AlertsAPI", "alert_filter", "to_detection"]

log = get_logger("tw_bridge.crowdstrike")

ENTITY_BATCH = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_STATUS = {"new": "new", "in_progress": "in_progress", "reopened": "reopened",
           "closed": "closed", "true_positive": "closed", "false_positive": "closed",
           "ignored": "closed"}


def alert_filter(aid: str, hours: float | None, now: datetime | None = None) -> str:
    """``device.device_id:'<aid>'`` (+ ``timestamp:>='<iso>'``); ``aid`` is validated hex."""
    if not (len(aid) == 32 and all(c in "0123456789abcdef" for c in aid)):
        raise ValueError(f"not a CrowdStrike device id: {aid!r}")
    fql = f"device.device_id:'{aid}'"
    if hours is not None:
        since = (now or datetime.now(timezone.utc)) - timedelta(hours=hours)
        fql += f"+timestamp:>='{format_timestamp(since.replace(microsecond=0))}'"
    return fql


def _ts(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_timestamp(value)
    except (ValueError, OverflowError):  # OverflowError: year 1 / 9999 with an offset
        return None


def _severity(a: Alert) -> Severity:
    if a.severity_name:
        try:
            return Severity.parse(a.severity_name)
        except ValueError:
            pass
    if a.severity is not None:
        return Severity.from_score(a.severity)
    return Severity.INFORMATIONAL


def to_detection(a: Alert, host: HostInfo | None = None) -> Detection:
    """An alert as the contract's detection (everything else worth keeping in ``details``)."""
    when = _ts(a.timestamp) or _ts(a.created_timestamp) or _EPOCH
    device = a.device or {}
    details: dict[str, Any] = {
        "cmdline": a.cmdline,
        "parent_details": a.parent_details,
        "user_name": a.user_name,
        "product": a.product,
        "falcon_host_link": a.falcon_host_link,
        "severity_score": a.severity,
        "severity_name": a.severity_name,
        "confidence": a.confidence,
        "tactic_id": a.tactic_id,
        "objective": a.objective,
        "md5": a.md5,
        "alert_id": a.id,
        "aggregate_id": a.aggregate_id,
        "pattern_id": a.pattern_id,
        "type": a.type,
        "created_timestamp": a.created_timestamp,
        "updated_timestamp": a.updated_timestamp,
        "mitre_attack": a.mitre_attack,
        "raw_status": a.status,
    }
    return Detection(
        id=a.composite_id,
        name=a.display_name or a.name or a.technique or "Falcon alert",
        timestamp=when,
        severity=_severity(a),
        description=a.description or "",
        tactic=a.tactic or "",
        technique=a.technique_id or "",
        technique_name=a.technique or "",
        process_name=a.filename or None,
        file_path=a.filepath or None,
        file_hash=a.sha256 or None,
        status=_STATUS.get((a.status or "new").lower(), (a.status or "new").lower()),
        host_id=(a.agent_id or device.get("device_id") or (host.id if host else "")),
        hostname=str(device.get("hostname") or (host.hostname if host else "")),
        details={k: v for k, v in details.items() if v is not None},
    )


class AlertsAPI:
    def __init__(self, http: FalconHTTP) -> None:
        self._http = http

    async def ids(self, aid: str, *, hours: float | None, limit: int) -> list[str]:
        params = [("filter", alert_filter(aid, hours)), ("sort", "timestamp|desc"),
                  ("limit", str(limit))]
        resp = await self._http.send(OPS["GetQueriesAlertsV2"], params=params)
        return [str(r) for r in resp.resources]

    async def entities(self, ids: list[str]) -> list[Alert]:
        batches = [ids[i:i + ENTITY_BATCH] for i in range(0, len(ids), ENTITY_BATCH)]
        pages = await asyncio.gather(*(self._entities(b) for b in batches))
        by_id = {a.composite_id: a for page in pages for a in page}
        missing = len(ids) - sum(1 for i in ids if i in by_id)
        if missing:
            log.debug("%d alert(s) listed by the query were not returned by the entities call",
                      missing)
        return [by_id[i] for i in ids if i in by_id]

    async def _entities(self, ids: list[str]) -> list[Alert]:
        resp = await self._http.send(OPS["PostEntitiesAlertsV2"], json_body={"composite_ids": ids})
        return structure_list(resp.resources, Alert, what="a malformed alert",
                              trace_id=resp.trace_id)

    async def detections(self, host: HostInfo, *, hours: float | None, limit: int
                         ) -> list[Detection]:
        ids = await self.ids(host.id, hours=hours, limit=limit)
        if not ids:
            return []
        found = [to_detection(a, host) for a in await self.entities(ids)]
        found.sort(key=lambda d: d.timestamp, reverse=True)  # stable: ties keep query order
        return found
