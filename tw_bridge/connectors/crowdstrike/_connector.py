"""CrowdStrikeConnector: the Falcon implementation of :class:`EDRConnector`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ..._errors import ConnectorError, RateLimited
from ..._fql import parse as parse_fql
from ..._fql import quote as fql_quote
from ..._hostarg import HostRef, RefKind
from ..._models import (
    ActionResult,
    Detection,
    HealthState,
    HealthStatus,
    HostInfo,
    NetworkConnection,
    ProcessInfo,
)
from ..._query import looks_like_fql
from ..._redact import get_logger
from .._base import Approver, EDRConnector
from ._actions import ActionsAPI, containment_request, scan_request
from ._alerts import AlertsAPI
from ._auth import TokenManager
from ._config import CrowdStrikeConfig
from ._hosts import HostsAPI
from ._http import FalconHTTP
from ._operations import OPS
from ._ratelimit import Limiters
from ._rtr import RTRClient
from ._rtr_parse import parse_netstat, parse_ps

if TYPE_CHECKING:
    from ._redis import RedisCoordinator

__all__ = ["CrowdStrikeConnector"]

log = get_logger("tw_bridge.crowdstrike")

_HEX = frozenset("0123456789abcdef")


def _is_aid(value: str) -> bool:
    return len(value) == 32 and all(c in _HEX for c in value.lower())


class CrowdStrikeConnector(EDRConnector):
    """Falcon through its REST API. No network traffic until the first call.

    >>> async with CrowdStrikeConnector("id", "secret", region="eu-1") as cs:  # doctest: +SKIP
    ...     host = await cs.get_host("WEB-01")

    Keyword options (``base_url=``, ``member_cid=``, ``timeout=``, ``proxy=``,
    ``ca_bundle=``, ``rate_limits=``, ...) override ``TW_CROWDSTRIKE_*``; see
    :class:`CrowdStrikeConfig`. Pass ``config=`` to use a prepared configuration.
    """

    connector_type = "crowdstrike"

    def __init__(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        region: str | None = None,
        *,
        config: CrowdStrikeConfig | None = None,
        policy: Any = None,
        approver: Approver | None = None,
        requester: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(policy=policy, approver=approver, requester=requester)
        if config is None:
            config = CrowdStrikeConfig.from_env(
                client_id=client_id, client_secret=client_secret, region=region, **options
            )
        elif client_id or client_secret or region or options:
            raise TypeError("pass either config= or individual settings, not both")
        self.config = config
        self._limiters = Limiters(config.rate_limits)
        self._http = FalconHTTP(config, self._limiters)
        self._auth = TokenManager(self._http)
        self._http.auth = self._auth
        self._hosts = HostsAPI(self._http)
        self._alerts = AlertsAPI(self._http)
        self._actions = ActionsAPI(self._http, self._hosts, config.poll_interval)
        self._rtr = RTRClient(self._http, timeout=config.rtr_timeout,
                              poll_interval=config.poll_interval)
        self._redis: RedisCoordinator | None = None

    @classmethod
    def from_env(
        cls,
        *,
        policy: Any = None,
        approver: Approver | None = None,
        requester: str | None = None,
        **options: Any,
    ) -> CrowdStrikeConnector:
        """Settings from ``TW_CROWDSTRIKE_*``; keyword options override them."""
        return cls(config=CrowdStrikeConfig.from_env(**options), policy=policy,
                   approver=approver, requester=requester)

    def __repr__(self) -> str:
        state = "open" if self._http.is_open else "closed"
        return (f"<CrowdStrikeConnector {self._http.base_url} client_id="
                f"{self.config.client_id!r} ({state})>")

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        """Create the HTTP session on the running loop (no traffic to Falcon).

        With ``TW_BRIDGE_REDIS_URL`` set, connect to Redis (a clear error naming the
        URL, without its password, when it does not answer) and share the rate
        budget and the token through it.
        """
        if self.config.redis_url and self._redis is None:
            from ._redis import RedisCoordinator

            coord = RedisCoordinator(self.config.redis_url, self.config.client_id,
                                     self.config.base_url)
            await coord.open()
            self._redis = coord
            self._limiters.share(coord)
            self._auth.shared = coord
        await self._http.open()

    async def close(self) -> None:
        """Revoke the token (best effort; not a shared one) and close the session."""
        try:
            await self._auth.revoke()
        finally:
            try:
                await self._http.close()
            finally:
                if self._redis is not None:
                    await self._redis.close()
                    self._redis = None

    @property
    def redis(self) -> RedisCoordinator | None:
        """The Redis coordinator when the budget and token are shared, else ``None``."""
        return self._redis

    @property
    def base_url(self) -> str:
        """The API base URL in use (it may follow ``X-Cs-Region`` after the first token)."""
        return self._http.base_url

    @property
    def region(self) -> str | None:
        """The region Falcon reported on the last token reply (``X-Cs-Region``)."""
        return self._auth.region

    @property
    def token_requests(self) -> int:
        return self._auth.requests

    # -- host references -------------------------------------------------------------------
    def _validate_ref(self, ref: HostRef) -> HostRef:
        if ref.kind is RefKind.ID:
            if not _is_aid(ref.value):
                raise ValueError(
                    f"host argument {ref.original!r} is not a CrowdStrike device id: an AID is "
                    "32 hexadecimal characters, e.g. aid:4a6f2c1e9b0d4e7fa1c2d3e4f5a6b7c8"
                )
            return attrs.evolve(ref, value=ref.value.lower())
        if ref.kind is RefKind.ANY and _is_aid(ref.value):
            return attrs.evolve(ref, value=ref.value.lower())
        return ref

    async def _find(self, ref: HostRef) -> list[HostInfo]:
        return (await self._find_many([ref]))[0]

    async def _find_many(self, refs: Sequence[HostRef]) -> list[list[HostInfo]]:
        ids = [r.value for r in refs if r.kind is not RefKind.HOSTNAME and _is_aid(r.value)]
        by_id = await self._hosts.hosts_by_id(ids) if ids else {}
        names = [r.value for r in refs
                 if r.kind is RefKind.HOSTNAME
                 or (r.kind is RefKind.ANY and r.value.lower() not in by_id)]
        by_name: dict[str, list[HostInfo]] = {}
        if names:
            devices = await self._hosts.by_hostnames(names)
            flat = [d for ds in devices.values() for d in ds]
            hosts = {h.id: h for h in await self._hosts.to_hosts(flat)}
            by_name = {n: [hosts[d.device_id.lower()] for d in ds] for n, ds in devices.items()}
        out: list[list[HostInfo]] = []
        for r in refs:
            if r.kind is not RefKind.HOSTNAME and r.value in by_id:
                out.append([by_id[r.value]])
            elif r.kind is RefKind.ID:
                out.append([])
            else:
                out.append(list(by_name.get(r.value.lower(), [])))
        return out

    # -- queries ------------------------------------------------------------------------------
    async def _search(self, query: str, limit: int) -> list[HostInfo]:
        if not query.strip():
            fql = ""  # an empty query lists every host, as the older module did
        elif looks_like_fql(query):
            parse_fql(query)  # FQLSyntaxError (a ValueError) before anything is sent
            fql = query.strip()
        else:
            term = query.strip()
            if "*" in term:
                raise ValueError(
                    f"plain search term {term!r} contains '*'; plain terms already match "
                    "anywhere in the hostname; for wildcards use FQL, e.g. hostname:*'web-*'"
                )
            fql = f"hostname:*'*{fql_quote(term)}*'"
        return await self._hosts.search(fql, limit, self.config.online_state_max)

    async def _detections(
        self, host: HostInfo, *, hours: float | None, limit: int
    ) -> list[Detection]:
        return await self._alerts.detections(host, hours=hours, limit=limit)

    async def _processes(self, host: HostInfo, *, hours: float) -> list[ProcessInfo]:
        # ps is a snapshot of what runs now; ``hours`` does not narrow it (see docs).
        out = await self._rtr.run(host, ["ps"])
        return parse_ps(out["ps"], host.platform)

    async def _connections(self, host: HostInfo, *, hours: float) -> list[NetworkConnection]:
        windows = host.platform.lower().startswith("win")
        # Windows netstat names only the pid: run ps in the same session for the names.
        out = await self._rtr.run(host, ["netstat", "ps"] if windows else ["netstat"])
        names: dict[int, str] = {}
        if windows:
            names = {p.pid: p.name for p in parse_ps(out["ps"], host.platform)}
        return parse_netstat(out["netstat"], names=names)

    # -- actions ------------------------------------------------------------------------------
    def _describe_action(self, action: str, host: HostInfo) -> dict[str, Any]:
        if action == "scan_host":
            req = scan_request(host)
        else:
            req = containment_request(action, host.id)
        return {"connector": "crowdstrike", "action": action, "device_id": host.id, **req}

    async def _perform(self, action: str, host: HostInfo, *, wait: float | None) -> ActionResult:
        if action == "scan_host":
            return await self._actions.scan(host)
        return await self._actions.containment(action, host, wait)

    # -- health -------------------------------------------------------------------------------
    async def health_check(self) -> HealthStatus:
        """A token and one cheap query; ``degraded`` when slow or rate-limited. Never raises."""
        ctype = self.connector_type
        start = time.monotonic()
        try:
            resp = await self._http.send(OPS["QueryDevicesByFilter"], params=[("limit", "1")],
                                         max_wait=0.0, retries=0)
        except RateLimited as exc:
            return HealthStatus(HealthState.DEGRADED, ctype, f"rate-limited: {exc}")
        except ConnectorError as exc:
            return HealthStatus(HealthState.UNHEALTHY, ctype, str(exc))
        except Exception as exc:  # noqa: BLE001 - health reports, never raises
            return HealthStatus(HealthState.UNHEALTHY, ctype, f"{type(exc).__name__}: {exc}")
        elapsed = time.monotonic() - start
        where = self._http.base_url
        if elapsed > self.config.slow_threshold:
            return HealthStatus(
                HealthState.DEGRADED, ctype,
                f"Falcon at {where} answered in {elapsed:.1f} s (slower than "
                f"{self.config.slow_threshold:g} s)",
            )
        remaining = resp.headers.get("X-Ratelimit-Remaining")
        limit = resp.headers.get("X-Ratelimit-Limit")
        if remaining is not None and limit and remaining.isdigit() and limit.isdigit() and (
            int(remaining) < max(1, int(limit) // 20)
        ):
            return HealthStatus(
                HealthState.DEGRADED, ctype,
                f"Falcon at {where} is close to its rate limit ({remaining} of {limit} left)",
            )
        return HealthStatus(
            HealthState.HEALTHY, ctype,
            f"Falcon at {where} answered in {elapsed * 1000:.0f} ms",
        )

