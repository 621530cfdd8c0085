"""Hosts API: lookups by AID and hostname, search, reachability.

* Details: ``POST /devices/entities/devices/v2`` (≤ 5000 ids per call).
* Reachability: ``GET /devices/entities/online-state/v1`` (≤ 100 ids per call).
  Containment is the device record's ``status``; reachability never is.
* Hostnames and searches: ``GET /devices/combined/devices/v1``, which returns full
  records (one round trip instead of a query plus a details call) and pages past
  10,000 results with its ``next`` token. Hostname filters use the quoted form
  ``hostname:'X'`` (case-insensitive at Falcon; the list form ``hostname:['X']`` is
  case-sensitive) and every answer is post-filtered to exact case-insensitive
  equality, so an over-match never becomes a false match.
* No status filter is ever added: contained hosts are found like any other.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Sequence

import attrs

from ..._convert import parse_timestamp
from ..._errors import ConnectorError
from ..._models import HostInfo, IsolationStatus, Reachability
from ..._redact import get_logger
from ._falcon_models import Device, OnlineState, structure_list
from ._http import FalconHTTP, FalconResponse
from ._operations import OPS

__all__ = ["HostsAPI", "hostname_filter", "normalize_mac", "to_host"]

log = get_logger("tw_bridge.crowdstrike")

DETAILS_BATCH = 5000
ONLINE_BATCH = 100
PAGE_MAX = 10_000
#: Hostname terms per OR-joined filter, and the filter length budget: Falcon caps a
#: filter at 20 properties (terms, to be safe) and URLs must stay well under 8 kB.
NAMES_PER_QUERY = 20
FILTER_BUDGET = 2000

_CONTAINMENT = {
    "normal": IsolationStatus.NORMAL,
    "containment_pending": IsolationStatus.ISOLATION_PENDING,
    "contained": IsolationStatus.ISOLATED,
    "lift_containment_pending": IsolationStatus.RELEASE_PENDING,
}
_REACH = {"online": Reachability.ONLINE, "offline": Reachability.OFFLINE}


_HEX12 = re.compile(r"[0-9a-f]{12}")


def normalize_mac(value: str | None) -> str | None:
    """``00-50-56-A2-94-8D`` -> ``00:50:56:a2:94:8d`` (other shapes returned lower-cased)."""
    if not value:
        return None
    text = value.strip().lower().replace("-", ":").replace(".", "")
    bare = text.replace(":", "")
    if len(bare) == 12 and _HEX12.fullmatch(bare):
        return f"{bare[0:2]}:{bare[2:4]}:{bare[4:6]}:{bare[6:8]}:{bare[8:10]}:{bare[10:12]}"
    return text or None


def _unique(values: Iterable[str | None]) -> tuple[str, ...]:
    out: list[str] = []
    for v in values:
        if v and v not in out:
            out.append(v)
    return tuple(out)


def containment(status: str | None) -> IsolationStatus:
    if not status:
        return IsolationStatus.NORMAL
    found = _CONTAINMENT.get(status.strip().lower())
    if found is None:
        log.warning("unknown Falcon containment status %r; reporting 'normal'", status)
        return IsolationStatus.NORMAL
    return found


def to_host(d: Device, reach: Reachability = Reachability.UNKNOWN) -> HostInfo:
    """A Falcon device record as the contract's host.

    ``ip_addresses``: ``local_ip`` then ``connection_ip`` when different. The
    ``external_ip`` is left out: it is the NAT egress address many hosts share, so
    it would make "which host has this address" ambiguous.
    """
    last_seen = None
    if d.last_seen:
        try:
            last_seen = parse_timestamp(d.last_seen)
        except (ValueError, OverflowError):  # OverflowError: year 1 / 9999 with an offset
            log.debug("unparseable last_seen %r on %s", d.last_seen, d.device_id)
    return HostInfo(
        id=d.device_id.lower(),
        hostname=d.hostname or "",
        platform=d.platform_name or "",
        os_version=d.os_version or d.os_product_name or "",
        agent_version=d.agent_version or "",
        last_seen=last_seen,
        isolation_status=containment(d.status),
        status=reach,
        ip_addresses=_unique([d.local_ip, d.connection_ip]),
        mac_addresses=_unique([normalize_mac(d.mac_address),
                               normalize_mac(d.connection_mac_address)]),
        tags=tuple(d.tags or ()),
    )


def hostname_filter(names: Sequence[str]) -> str:
    """``hostname:'a',hostname:'b'`` — names are pre-validated to ``[A-Za-z0-9._-]``."""
    for n in names:
        if not n or any(not (c.isascii() and (c.isalnum() or c in "._-")) for c in n):
            raise ValueError(f"not a valid hostname for a filter: {n!r}")
    return ",".join(f"hostname:'{n}'" for n in names)


def _variants(name: str) -> list[str]:
    return list(dict.fromkeys((name, name.lower(), name.upper())))


def list_filter(names: Sequence[str]) -> str:
    """``hostname:['a','b']`` — exact, case-sensitive; names pre-validated."""
    for n in names:
        if not n or any(not (c.isascii() and (c.isalnum() or c in "._-")) for c in n):
            raise ValueError(f"not a valid hostname for a filter: {n!r}")
    return "hostname:[" + ",".join(f"'{n}'" for n in names) + "]"


#: Encoded characters of one list filter (a quote is %27, a comma %2C): the URL stays
#: well under 8 kB.
LIST_BUDGET = 5000


def _list_chunks(groups: Sequence[Sequence[str]]) -> list[list[str]]:
    out: list[list[str]] = []
    cur: list[str] = []
    size = 0
    for group in groups:
        cost = sum(len(v) + 9 for v in group)
        if cur and size + cost > LIST_BUDGET:
            out.append(cur)
            cur, size = [], 0
        cur.extend(group)
        size += cost
    if cur:
        out.append(cur)
    return out


def _chunks(names: Sequence[str]) -> list[list[str]]:
    out: list[list[str]] = []
    cur: list[str] = []
    size = 0
    for n in names:
        cost = len(n) + 12
        if cur and (len(cur) >= NAMES_PER_QUERY or size + cost > FILTER_BUDGET):
            out.append(cur)
            cur, size = [], 0
        cur.append(n)
        size += cost
    if cur:
        out.append(cur)
    return out


DEVICE_FIELDS = ",".join(f.name for f in attrs.fields(Device))


class HostsAPI:
    def __init__(self, http: FalconHTTP) -> None:
        self._http = http

    async def details(self, ids: Sequence[str]) -> dict[str, Device]:
        """Device records by AID (unknown ids are simply absent)."""
        unique = list(dict.fromkeys(ids))
        batches = [unique[i:i + DETAILS_BATCH] for i in range(0, len(unique), DETAILS_BATCH)]
        pages = await asyncio.gather(*(self._details(b) for b in batches))
        return {d.device_id.lower(): d for page in pages for d in page}

    async def _details(self, ids: list[str]) -> list[Device]:
        resp = await self._http.send(OPS["PostDeviceDetailsV2"], json_body={"ids": ids},
                                     accept=(404,))
        return structure_list(resp.resources, Device, what="a malformed device record",
                              trace_id=resp.trace_id)

    async def online(self, ids: Sequence[str]) -> dict[str, Reachability]:
        """Reachability by AID; failures degrade to ``unknown`` (logged), never raise."""
        unique = list(dict.fromkeys(ids))
        batches = [unique[i:i + ONLINE_BATCH] for i in range(0, len(unique), ONLINE_BATCH)]
        results = await asyncio.gather(*(self._online(b) for b in batches),
                                       return_exceptions=True)
        out: dict[str, Reachability] = {}
        for res in results:
            if isinstance(res, ConnectorError):
                log.warning("online state unavailable, reporting 'unknown': %s", res)
                continue
            if isinstance(res, BaseException):
                raise res
            out.update(res)
        return out

    async def _online(self, ids: list[str]) -> dict[str, Reachability]:
        resp = await self._http.send(OPS["GetOnlineState_V1"], params=[("ids", i) for i in ids],
                                     accept=(404,))
        states = structure_list(resp.resources, OnlineState, what="a malformed online state",
                                trace_id=resp.trace_id)
        return {s.id.lower(): _REACH.get((s.state or "").lower(), Reachability.UNKNOWN)
                for s in states}

    async def combined(
        self,
        fql: str,
        limit: int,
        on_page: Callable[[list[Device]], None] | None = None,
    ) -> list[Device]:
        """Every device matching ``fql`` (up to ``limit``), following ``next`` tokens.

        Pipelined: as soon as a page's ``next`` token is known the next page is
        requested, and the current page is structured (and handed to ``on_page``)
        while Falcon prepares it.
        """
        out: list[Device] = []
        resp = await self._page(fql, min(PAGE_MAX, limit), None)
        offset: str | None = None
        while True:
            pag = resp.envelope.meta.pagination if resp.envelope and resp.envelope.meta else None
            nxt = pag.next if pag else None
            fetched = len(out) + (len(resp.resources) if isinstance(resp.resources, list) else 0)
            ahead: asyncio.Task[FalconResponse] | None = None
            if resp.resources and nxt and nxt != offset and fetched < limit:
                ahead = asyncio.ensure_future(
                    self._page(fql, min(PAGE_MAX, limit - fetched), nxt)
                )
                offset = nxt
            try:
                page = structure_list(resp.resources, Device, what="a malformed device record",
                                      trace_id=resp.trace_id)[:limit - len(out)]
                out.extend(page)
                if on_page is not None:
                    on_page(page)
            except BaseException:
                if ahead is not None:
                    ahead.cancel()
                    await asyncio.gather(ahead, return_exceptions=True)
                raise
            if ahead is None:
                break
            resp = await ahead
        return out[:limit]

    async def _page(self, fql: str, limit: int, offset: str | None) -> FalconResponse:
        # Only the fields a host dict needs: a full record carries dozens more
        # (policies, BIOS, ...), which made JSON decoding the bulk of a fleet search.
        params = [("limit", str(limit)), ("fields", DEVICE_FIELDS)]
        if fql:  # an empty query lists every device
            params.insert(0, ("filter", fql))
        if offset:
            params.append(("offset", offset))
        return await self._http.send(OPS["CombinedDevicesByFilter"], params=params)

    async def by_hostnames(self, names: Sequence[str]) -> dict[str, list[Device]]:
        """Devices whose hostname equals one of ``names`` (case-insensitively), by lower name.

        Many names (``get_hosts``) go first through the exact list form,
        ``hostname:['a','A',...]`` — one property however many names, so about 75
        names a request instead of 20 — with each name as given, lower- and
        upper-cased; names it does not find are looked up again case-insensitively.
        A lookup of one or a few names (and so every response action) always uses
        the case-insensitive form, which sees every device of that name.
        """
        wanted = list(dict.fromkeys(n.lower() for n in names))
        out: dict[str, list[Device]] = {n: [] for n in wanted}
        seen: set[str] = set()

        def collect(pages: Sequence[Sequence[Device]]) -> None:
            for page in pages:
                for d in page:
                    key = (d.hostname or "").lower()
                    if key in out and d.device_id not in seen:
                        seen.add(d.device_id)
                        out[key].append(d)

        rest = wanted
        if len(wanted) > NAMES_PER_QUERY:
            given = {n.lower(): n for n in names}
            pages = await asyncio.gather(*(
                self.combined(list_filter(c), PAGE_MAX)
                for c in _list_chunks([_variants(given[n]) for n in wanted])
            ))
            collect(pages)
            rest = [n for n in wanted if not out[n]]
        if rest:
            collect(await asyncio.gather(
                *(self.combined(hostname_filter(c), PAGE_MAX) for c in _chunks(rest))
            ))
        return out

    async def search(self, fql: str, limit: int, online_max: int) -> list[HostInfo]:
        """Hosts matching ``fql``; each page becomes hosts while the next one is served.

        Reachability (the online-state API, 100 ids a call) is fetched only for
        results of at most ``online_max`` hosts; larger ones report ``unknown``.
        """
        hosts: list[HostInfo] = []
        await self.combined(fql, limit, lambda page: hosts.extend(to_host(d) for d in page))
        if len(hosts) > online_max:
            log.info("search matched %d hosts; reachability (online state) is reported as "
                     "'unknown' above %d", len(hosts), online_max)
            return hosts
        if not hosts:
            return hosts
        reach = await self.online([h.id for h in hosts])
        return [attrs.evolve(h, status=reach.get(h.id, Reachability.UNKNOWN)) for h in hosts]

    async def to_hosts(self, devices: Sequence[Device], *, reachability: bool = True
                       ) -> list[HostInfo]:
        reach: dict[str, Reachability] = {}
        if reachability and devices:
            reach = await self.online([d.device_id for d in devices])
        return [to_host(d, reach.get(d.device_id.lower(), Reachability.UNKNOWN))
                for d in devices]

    async def hosts_by_id(self, ids: Sequence[str]) -> dict[str, HostInfo]:
        """Details and reachability fetched concurrently."""
        if not ids:
            return {}
        details, reach = await asyncio.gather(self.details(ids), self.online(ids))
        return {aid: to_host(d, reach.get(aid, Reachability.UNKNOWN))
                for aid, d in details.items()}
