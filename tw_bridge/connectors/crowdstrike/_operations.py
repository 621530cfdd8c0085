"""The Falcon operations the connector uses: path, scope, budget and retry class.

Operation ids are FalconPy's (``falconpy._endpoint``), so a request can be traced
to the vendor's table; ``tests/crowdstrike/test_contract.py`` checks every request
the suite sends against those tables.
"""

from __future__ import annotations

import enum

import attrs

__all__ = ["OPS", "Operation", "Retry"]


class Retry(enum.Enum):
    """When a failed attempt may be repeated.

    ``READ``: anything transient (5xx, 429, timeouts, dropped or refused connections).
    ``IDEMPOTENT``: containment. Falcon answers a repeat with 409 "already in that
    state", so a repeat is harmless — but we repeat only when the first attempt
    provably did not act: the connection was refused (or the connect timed out),
    Falcon said 429, or Falcon said 5xx. A timeout or dropped connection after the
    request was sent is reported, not retried, so the caller sees that the outcome is
    unknown. A 409 on a repeat after a 5xx counts as success (the first attempt acted).
    ``ONCE``: ODS scan creation. A repeat after an ambiguous failure starts a second
    scan, so only a refused connection and 429 (Falcon rejected it unprocessed) retry.
    """

    READ = "read"
    IDEMPOTENT = "idempotent"
    ONCE = "once"


@attrs.frozen
class Operation:
    id: str
    method: str
    path: str
    scope: str | None
    bucket: str
    retry: Retry = Retry.READ
    auth: bool = True


HOSTS_READ = "Hosts: Read"
HOSTS_WRITE = "Hosts: Write"
ALERTS_READ = "Alerts: Read"
ODS_WRITE = "On-demand scans (ODS): Write"
RTR_READ = "Real time response: Read"

_OPS = [
    Operation("oauth2AccessToken", "POST", "/oauth2/token", None, "token", auth=False),
    Operation("oauth2RevokeToken", "POST", "/oauth2/revoke", None, "token", auth=False),
    Operation("QueryDevicesByFilter", "GET", "/devices/queries/devices/v1", HOSTS_READ,
              "host_query"),
    Operation("CombinedDevicesByFilter", "GET", "/devices/combined/devices/v1", HOSTS_READ,
              "host_query"),
    Operation("PostDeviceDetailsV2", "POST", "/devices/entities/devices/v2", HOSTS_READ,
              "host_query"),
    Operation("GetOnlineState_V1", "GET", "/devices/entities/online-state/v1", HOSTS_READ,
              "host_query"),
    Operation("PerformActionV2", "POST", "/devices/entities/devices-actions/v2", HOSTS_WRITE,
              "action", Retry.IDEMPOTENT),
    Operation("GetQueriesAlertsV2", "GET", "/alerts/queries/alerts/v2", ALERTS_READ,
              "detection_query"),
    Operation("PostEntitiesAlertsV2", "POST", "/alerts/entities/alerts/v2", ALERTS_READ,
              "detection_query"),
    Operation("create_scan", "POST", "/ods/entities/scans/v1", ODS_WRITE, "action", Retry.ONCE),
    Operation("RTR_InitSession", "POST", "/real-time-response/entities/sessions/v1", RTR_READ,
              "rtr"),
    Operation("RTR_ExecuteCommand", "POST", "/real-time-response/entities/command/v1", RTR_READ,
              "rtr"),
    Operation("RTR_CheckCommandStatus", "GET", "/real-time-response/entities/command/v1",
              RTR_READ, "rtr"),
    Operation("RTR_DeleteSession", "DELETE", "/real-time-response/entities/sessions/v1",
              RTR_READ, "rtr"),
]
OPS: dict[str, Operation] = {op.id: op for op in _OPS}
