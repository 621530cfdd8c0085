"""tw_bridge benchmarks against falconpy and plain asyncio (issue 6).

    python bench/run.py                 # every workload, >= 5 interleaved runs, writes docs/benchmarks.md
    python bench/run.py --smoke         # a tiny version of everything (CI); writes nothing unless --out
    python bench/run.py --only bulk     # one workload (facade, bulk, fleet, triage, ratelimit, costs)

HTTP workloads drive the Falcon emulator in a separate process (``bench/_emu_server.py``,
the shell mode plus server-side rate limits), so client and server do not share a GIL.
Baseline and tw_bridge alternate within each run (the order flips every run); figures are
min / median / max over the runs, ratios are tw_bridge median / baseline median.
Request counts come from the emulator's request log and cover the timed part only.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
FILTER_ALL = "first_seen:>'2000-01-01T00:00:00Z'"  # matches every emulated device
#: Guards counters that several benchmark threads update.
tally = threading.Lock()
LIFTED = [f"{g}=1000000000/60" for g in ("host_query", "alert_query", "token", "default")]


# ---------------------------------------------------------------------------------------
# results


@dataclass
class Side:
    name: str
    times: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    extra: dict[str, list[Any]] = field(default_factory=lambda: collections.defaultdict(list))
    unit: str = "s"
    note: str = ""
    error: str = ""

    def add(self, seconds: float, requests: int | None = None, **extra: Any) -> None:
        self.times.append(seconds)
        if requests is not None:
            self.requests.append(requests)
        for k, v in extra.items():
            self.extra[k].append(v)

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")

    @property
    def median_requests(self) -> float | None:
        return statistics.median(self.requests) if self.requests else None


@dataclass
class Target:
    text: str
    met: bool | None  # None: not measured (e.g. connector unavailable)
    detail: str


@dataclass
class Result:
    key: str
    title: str
    setup: str
    sides: list[Side]
    baseline: str  # name of the baseline side
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    table: list[list[str]] | None = None  # custom table (costs)

    def side(self, name: str) -> Side:
        return next(s for s in self.sides if s.name == name)

    def ratio(self, name: str, base: str | None = None) -> float | None:
        a, b = self.side(name), self.side(base or self.baseline)
        if not a.times or not b.times or b.median == 0:
            return None
        return a.median / b.median


def fmt_t(x: float, unit: str = "s") -> str:
    if x != x:  # nan
        return "—"
    if unit == "us":
        return f"{x * 1e6:.1f} µs"
    if x >= 10:
        return f"{x:.1f} s"
    if x >= 1:
        return f"{x:.2f} s"
    return f"{x * 1000:.1f} ms"


# ---------------------------------------------------------------------------------------
# emulator process


class Emulator:
    """``bench/_emu_server.py`` in a child process."""

    def __init__(self, hosts: int, latency_ms: float, rate_limits: list[str] | None = None,
                 extra_clients: int = 0) -> None:
        cmd = [PY, str(HERE / "_emu_server.py"), "--port", "0", "--hosts", str(hosts),
               "--seed", "1", "--latency-ms", str(latency_ms),
               "--extra-clients", str(extra_clients)]
        for spec in rate_limits or []:
            cmd += ["--rate-limit", spec]
        self.args = f"hosts={hosts} seed=1 latency_ms={latency_ms:g}" + (
            f" server limits {' '.join(rate_limits)}" if rate_limits else "")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        prefix = "Falcon emulator listening on "
        if not line.startswith(prefix):
            self.proc.kill()
            raise RuntimeError(f"emulator did not start: {line!r}")
        self.url = line[len(prefix):]
        self.client_id = "emulator-client-id"
        self.client_secret = "emulator-client-secret"  # noqa: S105 - emulator credential

    def _admin(self, method: str, path: str) -> Any:
        req = urllib.request.Request(self.url + path, method=method)
        with urllib.request.urlopen(req, timeout=60) as r:  # noqa: S310 - loopback
            return json.loads(r.read())

    def requests(self) -> list[dict[str, Any]]:
        return list(self._admin("GET", "/_emulator/requests")["resources"])

    def clear(self) -> None:
        self._admin("DELETE", "/_emulator/requests")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def counted(emu: Emulator, into: dict[str, Any]) -> Iterator[None]:
    """Clear the request log, run the block, then count what it sent (excluding /oauth2)."""
    emu.clear()
    yield
    reqs = emu.requests()
    api = [r for r in reqs if not r["path"].startswith("/oauth2/")]
    into["requests"] = len(reqs)
    into["api_requests"] = len(api)
    into["429"] = sum(1 for r in reqs if r["status"] == 429)
    into["paths"] = collections.Counter(r["path"] for r in reqs)
    into["log"] = reqs


def falconpy_service(cls: type, emu: Emulator, client_id: str | None = None,
                     client_secret: str | None = None) -> Any:
    """A falconpy service class pointed at the emulator, built the documented way.

    falconpy's region autodiscovery follows the token reply's ``X-Cs-Region`` to the real
    cloud, so after the constructor's login the base URL is pinned back to the emulator
    (as ``tests/emulator/conftest.py`` does).
    """
    svc = cls(client_id=client_id or emu.client_id,
              client_secret=client_secret or emu.client_secret, base_url=emu.url)
    svc.base_url = emu.url
    return svc


def cs_bridge(emu: Emulator, **kw: Any) -> Any:
    from tw_bridge import EDRBridge

    kw.setdefault("client_id", emu.client_id)
    kw.setdefault("client_secret", emu.client_secret)
    return EDRBridge("crowdstrike", base_url=emu.url, **kw)


def crowdstrike_available(emu: Emulator) -> str:
    """'' when ``EDRBridge("crowdstrike", base_url=...)`` works, else why not."""
    try:
        b = cs_bridge(emu, rate_limits=None)
    except Exception as exc:  # noqa: BLE001 - reported in the table
        return f"{type(exc).__name__}: {exc}"
    try:
        b.health_check()
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"
    finally:
        b.close()
    return ""


def fleet_listing(emu: Emulator) -> list[dict[str, Any]]:
    """Every device (hostname, id) via combined paging; setup only, not timed."""
    from falconpy import Hosts

    h = falconpy_service(Hosts, emu)
    out: list[dict[str, Any]] = []
    offset = None
    while True:
        kw: dict[str, Any] = {"limit": 10000, "fields": "device_id,hostname"}
        if offset:
            kw["offset"] = offset
        r = h.query_devices_by_filter_combined(**kw)
        assert r["status_code"] == 200, r
        out += r["body"]["resources"]
        offset = r["body"]["meta"]["pagination"].get("next")
        if not offset:
            return out


def unique_hosts(listing: list[dict[str, Any]], n: int, skip: int = 0) -> list[dict[str, Any]]:
    """``n`` devices whose hostname no other device shares (deterministic stride)."""
    counts = collections.Counter(d["hostname"].lower() for d in listing)
    uniq = [d for d in listing if counts[d["hostname"].lower()] == 1]
    uniq.sort(key=lambda d: d["device_id"])
    step = max(1, len(uniq) // (n + skip))
    picked = uniq[skip * step::step][:n]
    assert len(picked) == n, (len(picked), n)
    return picked


def run_threads(n_threads: int, items: list[Any], work: Callable[[int, Any], None]) -> float:
    """Run ``work(thread_index, item)`` over ``items`` from ``n_threads`` threads; wall time."""
    q: queue.SimpleQueue[Any] = queue.SimpleQueue()
    for it in items:
        q.put(it)
    errors: list[BaseException] = []
    start = threading.Barrier(n_threads + 1)

    def worker(i: int) -> None:
        start.wait()
        while True:
            try:
                it = q.get_nowait()
            except queue.Empty:
                return
            try:
                work(i, it)
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                errors.append(exc)
                return

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return wall


def interleave(runs: int, fns: list[Callable[[], None]]) -> None:
    """Call every ``fn`` once per run; the order rotates each run."""
    for i in range(runs):
        k = i % len(fns)
        for fn in fns[k:] + fns[:k]:
            fn()


# ---------------------------------------------------------------------------------------
# 1. facade overhead


def w_facade(cfg: Config) -> Result:
    from anyio.from_thread import start_blocking_portal

    from tw_bridge import EDRBridge, MockConnector, to_dict

    n = cfg.facade_calls
    name = "workstation-001"
    bridge = EDRBridge("mock")

    loop = asyncio.new_event_loop()
    lt = threading.Thread(target=loop.run_forever, daemon=True)
    lt.start()
    conn = MockConnector()
    asyncio.run_coroutine_threadsafe(conn.open(), loop).result()

    base = Side("asyncio.run_coroutine_threadsafe round trip", unit="us")
    tw = Side('EDRBridge("mock").get_host_info', unit="us")
    ref = Side("anyio BlockingPortal.call (reference)", unit="us")
    portal_cm = start_blocking_portal()
    portal = portal_cm.__enter__()
    pconn = MockConnector()
    portal.call(pconn.open)

    def run_base() -> None:
        rct, get = asyncio.run_coroutine_threadsafe, conn.get_host_info
        t0 = time.perf_counter()
        for _ in range(n):
            to_dict(rct(get(name), loop).result())
        base.add((time.perf_counter() - t0) / n)

    def run_tw() -> None:
        call = bridge.get_host_info
        t0 = time.perf_counter()
        for _ in range(n):
            call(name)
        tw.add((time.perf_counter() - t0) / n)

    def run_ref() -> None:
        pcall, get = portal.call, pconn.get_host_info
        t0 = time.perf_counter()
        for _ in range(n):
            to_dict(pcall(get, name))
        ref.add((time.perf_counter() - t0) / n)

    for f in (run_base, run_tw, run_ref):  # warm-up
        f()
    base.times.clear(), tw.times.clear(), ref.times.clear()
    interleave(cfg.runs, [run_base, run_tw, run_ref])
    bridge.close()
    portal_cm.__exit__(None, None, None)
    loop.call_soon_threadsafe(loop.stop)
    lt.join(5)

    res = Result("facade", "1. Facade overhead (per call)",
                 f"{n} calls per run of `get_host_info('{name}')` on the mock; the baseline runs "
                 "the same `MockConnector.get_host_info` coroutine on a loop thread via "
                 "`asyncio.run_coroutine_threadsafe(...).result()` plus the same `to_dict`.",
                 [base, tw, ref], base.name)
    r = res.ratio(tw.name)
    res.targets.append(Target("tw_bridge / run_coroutine_threadsafe ≤ 1.3×",
                              r is not None and r <= 1.3, f"{r:.2f}×"))
    return res


# ---------------------------------------------------------------------------------------
# 2. bulk lookups


def w_bulk(cfg: Config, emu: Emulator, cs_error: str, listing: list[dict[str, Any]]) -> Result:
    from falconpy import Hosts

    names = [d["hostname"] for d in unique_hosts(listing, cfg.bulk_names)]
    warm_name = unique_hosts(listing, 1, skip=cfg.bulk_names + 7)[0]["hostname"]
    fp = Side("falconpy loop (query by hostname, then details)")
    bulk = Side("tw_bridge get_hosts(names)")
    seq = Side("tw_bridge sequential get_host loop")
    svc = falconpy_service(Hosts, emu)
    svc.query_devices_by_filter(filter=f"hostname:'{warm_name}'")  # warm the connection

    def run_fp() -> None:
        c: dict[str, Any] = {}
        found = 0
        with counted(emu, c):
            t0 = time.perf_counter()
            for name in names:
                ids = svc.query_devices_by_filter(filter=f"hostname:'{name}'")["body"]["resources"]
                if ids:
                    r = svc.get_device_details(ids=ids)
                    found += len(r["body"]["resources"]) > 0
            dt = time.perf_counter() - t0
        fp.add(dt, c["requests"], found=found)

    def run_bulk() -> None:
        b = cs_bridge(emu)  # default client-side limits: get_hosts needs few requests
        b.get_host(warm_name)  # token + connection, outside the timed part
        c: dict[str, Any] = {}
        with counted(emu, c):
            t0 = time.perf_counter()
            out = b.get_hosts(names)
            dt = time.perf_counter() - t0
        b.close()
        bulk.add(dt, c["requests"], found=sum(1 for h in out if h))

    def run_seq() -> None:
        b = cs_bridge(emu, rate_limits=None)  # fresh bridge: the cache starts cold
        b.get_host(warm_name)
        c: dict[str, Any] = {}
        with counted(emu, c):
            t0 = time.perf_counter()
            out = [b.get_host(n) for n in names]
            dt = time.perf_counter() - t0
        b.close()
        seq.add(dt, c["requests"], found=sum(1 for h in out if h))

    fns: list[Callable[[], None]] = [run_fp]
    if not cs_error:
        fns += [run_bulk, run_seq]
    else:
        bulk.error = seq.error = cs_error
    interleave(cfg.runs, fns)

    res = Result("bulk", f"2. Bulk lookups ({len(names)} hostnames)",
                 f"Emulator {emu.args}; {len(names)} distinct hostnames that name one device "
                 "each. A fresh bridge per run (cold hostname cache), warmed with one lookup of "
                 "another host (token, connection) before timing; falconpy's `Hosts` logs in at "
                 "construction. `get_hosts` runs with the default client-side limits, the "
                 "sequential loop with `rate_limits=None` (the default 100 host queries per "
                 "60 s would make 500 sequential lookups take ≥ 4 min by design).",
                 [fp, bulk, seq], fp.name)
    add_found_note(res)
    if cs_error:
        res.targets.append(Target("get_hosts ≥ 50× less wall time and ≥ 50× fewer requests",
                                  None, "crowdstrike connector unavailable"))
        return res
    r = res.ratio(bulk.name)
    rr = (bulk.median_requests or 0) / (fp.median_requests or 1)
    res.targets.append(Target("get_hosts: ≥ 50× less wall time (ratio ≤ 0.02)",
                              r is not None and r <= 0.02, f"{r:.4f}× ({1 / r:.0f}× less)"))
    res.targets.append(Target("get_hosts: ≥ 50× fewer requests",
                              rr <= 0.02, f"{bulk.median_requests:g} vs "
                              f"{fp.median_requests:g} ({1 / rr if rr else float('inf'):.0f}× "
                              "fewer)"))
    r2 = res.ratio(seq.name)
    res.targets.append(Target("sequential get_host loop no slower than the falconpy loop",
                              r2 is not None and r2 <= 1.0, f"{r2:.2f}×"))
    return res


def add_found_note(res: Result) -> None:
    for s in res.sides:
        if "found" in s.extra:
            res.notes.append(f"{s.name}: hosts found per run {sorted(set(s.extra['found']))}")


# ---------------------------------------------------------------------------------------
# 3. fleet search


def w_fleet(cfg: Config, emu: Emulator, cs_error: str) -> Result:
    from falconpy import Hosts

    total = cfg.fleet_hosts
    fp = Side("falconpy: id pages of 5000, then details in batches of 5000")
    tw = Side(f'tw_bridge search_hosts(FILTER, limit={total})')
    svc = falconpy_service(Hosts, emu)
    svc.query_devices_by_filter(limit=1)

    def run_fp() -> None:
        c: dict[str, Any] = {}
        with counted(emu, c):
            t0 = time.perf_counter()
            ids: list[str] = []
            last = ""
            while True:
                flt = FILTER_ALL + (f"+device_id:>'{last}'" if last else "")
                page = svc.query_devices_by_filter(filter=flt, sort="device_id.asc",
                                                   limit=5000)["body"]["resources"]
                ids += page
                if len(page) < 5000:
                    break
                last = page[-1]
            hosts: list[dict[str, Any]] = []
            for i in range(0, len(ids), 5000):
                hosts += svc.get_device_details(ids=ids[i:i + 5000])["body"]["resources"]
            dt = time.perf_counter() - t0
        fp.add(dt, c["requests"], found=len(hosts))

    def run_tw() -> None:
        b = cs_bridge(emu, rate_limits=None)
        b.health_check()  # token + connection, outside the timed part
        c: dict[str, Any] = {}
        with counted(emu, c):
            t0 = time.perf_counter()
            out = b.search_hosts(FILTER_ALL, limit=total)
            dt = time.perf_counter() - t0
        b.close()
        tw.add(dt, c["requests"], found=len(out), paths=dict(c["paths"]))

    fns: list[Callable[[], None]] = [run_fp]
    if not cs_error:
        fns.append(run_tw)
    else:
        tw.error = cs_error
    interleave(cfg.runs, fns)
    res = Result("fleet", f"3. Fleet search (all {total} hosts)",
                 f"Emulator {emu.args}; FILTER = `{FILTER_ALL}` (matches every device). "
                 "falconpy pages ids with `query_devices_by_filter` (limit 5000) and fetches "
                 "records with `get_device_details` (PostDeviceDetailsV2, 5000 ids a call). "
                 "Falcon and the emulator refuse offset + limit ≥ 10000 and the emulator does "
                 "not serve the scroll endpoint, so the baseline pages by key (sort "
                 "`device_id.asc`, next page `device_id:>'<last id>'`) — the same request "
                 "count as offset paging. Both sides warmed up (token, connection) before "
                 "timing.", [fp, tw], fp.name)
    add_found_note(res)
    if cs_error:
        res.targets.append(Target("no more requests than falconpy; ≤ 0.5× its wall time",
                                  None, "crowdstrike connector unavailable"))
        return res
    r = res.ratio(tw.name)
    res.targets.append(Target("requests ≤ falconpy's",
                              (tw.median_requests or 0) <= (fp.median_requests or 0),
                              f"{tw.median_requests:g} vs {fp.median_requests:g}"))
    res.targets.append(Target("wall time ≤ 0.5× falconpy's", r is not None and r <= 0.5,
                              f"{r:.2f}×"))
    if tw.extra.get("paths"):
        res.notes.append(f"tw_bridge requests by path (last run): {tw.extra['paths'][-1]}")
    return res


# ---------------------------------------------------------------------------------------
# 4. triage sweep


def w_triage(cfg: Config, emu: Emulator, cs_error: str, listing: list[dict[str, Any]]) -> Result:
    from falconpy import Alerts, Hosts

    n, nt = cfg.triage_hosts, cfg.threads
    names = [d["hostname"] for d in unique_hosts(listing, n, skip=3)]
    warm = unique_hosts(listing, 1, skip=n + 11)[0]["hostname"]
    fp = Side(f"falconpy, {nt} threads (a Hosts + Alerts per thread)")
    tw = Side(f"tw_bridge, {nt} threads sharing one bridge")
    clients = [(falconpy_service(Hosts, emu), falconpy_service(Alerts, emu)) for _ in range(nt)]
    for h, a in clients:
        h.query_devices_by_filter(limit=1)
        a.query_alerts_v2(limit=1)

    def run_fp() -> None:
        c: dict[str, Any] = {}
        dets = [0]

        def work(i: int, name: str) -> None:
            hosts, alerts = clients[i]
            ids = hosts.query_devices_by_filter(filter=f"hostname:'{name}'")["body"]["resources"]
            hosts.get_device_details(ids=ids)
            aid = ids[0]
            q = alerts.query_alerts_v2(filter=f"device.device_id:'{aid}'",
                                       sort="created_timestamp|desc", limit=100)
            cids = q["body"]["resources"]
            if cids:
                got = len(alerts.get_alerts_v2(composite_ids=cids)["body"]["resources"])
                with tally:
                    dets[0] += got

        with counted(emu, c):
            wall = run_threads(nt, names, work)
        fp.add(wall, c["requests"], found=dets[0])

    def run_tw() -> None:
        b = cs_bridge(emu, rate_limits=None)
        b.get_detections(warm)
        c: dict[str, Any] = {}
        dets = [0]

        def work(i: int, name: str) -> None:
            b.get_host(name)
            got = len(b.get_detections(name))
            with tally:
                dets[0] += got

        with counted(emu, c):
            wall = run_threads(nt, names, work)
        b.close()
        tw.add(wall, c["requests"], found=dets[0], paths=dict(c["paths"]))

    fns: list[Callable[[], None]] = [run_fp]
    if not cs_error:
        fns.append(run_tw)
    else:
        tw.error = cs_error
    interleave(cfg.runs, fns)
    res = Result("triage", f"4. Triage sweep ({n} hosts × host info + detections)",
                 f"Emulator {emu.args}; {n} hostnames, {nt} threads pulling from one queue. "
                 "falconpy per host: `query_devices_by_filter(hostname)`, "
                 "`get_device_details`, `query_alerts_v2(device.device_id)`, "
                 "`get_alerts_v2` (when there are alerts). tw_bridge per host: "
                 "`get_host(name)`, `get_detections(name)`. Client-side limits lifted "
                 "(`rate_limits=None`; falconpy has none). Both warmed up before timing.",
                 [fp, tw], fp.name)
    for s in res.sides:
        if "found" in s.extra:
            res.notes.append(f"{s.name}: detections returned per run "
                             f"{sorted(set(s.extra['found']))}")
    if cs_error:
        res.targets.append(Target("≥ 2× falconpy's throughput", None,
                                  "crowdstrike connector unavailable"))
        return res
    r = res.ratio(tw.name)
    res.targets.append(Target("≥ 2× falconpy's throughput (wall ratio ≤ 0.5)",
                              r is not None and r <= 0.5,
                              f"{r:.2f}× wall ({1 / r:.2f}× throughput)"))
    res.notes.append(f"throughput (median): falconpy {n / fp.median:.0f} hosts/s, "
                     f"tw_bridge {n / tw.median:.0f} hosts/s")
    if tw.extra.get("paths"):
        res.notes.append(f"tw_bridge requests by path (last run): {tw.extra['paths'][-1]}")
    return res


# ---------------------------------------------------------------------------------------
# 5. rate-limit fidelity


def w_ratelimit(cfg: Config, cs_error_probe: Callable[[Emulator], str],
                listing_hosts: int) -> Result:
    from falconpy import Hosts

    calls, window, n, nt = cfg.rl_calls, cfg.rl_window, cfg.rl_lookups, cfg.threads
    with Emulator(listing_hosts, cfg.rl_latency_ms, [f"host_query={calls}/{window:g}"],
                  extra_clients=2 * cfg.runs + 2) as emu:
        cs_error = cs_error_probe(emu)
        listing = fleet_listing(emu)
        aids = [d["device_id"] for d in unique_hosts(listing, n)]
        fp = Side(f"falconpy get_device_details per host, {nt} threads, no client limit")
        tw = Side(f"tw_bridge get_host('aid:…'), {nt} threads, rate_limits="
                  f"{{'host_query': ({calls}, {window:g})}}")
        client_no = iter(range(1, 2 * cfg.runs + 3))

        def run_fp() -> None:
            cid = f"bench-client-{next(client_no)}"
            svc = falconpy_service(Hosts, emu, cid, "bench-secret")
            c: dict[str, Any] = {}
            ok = [0]

            def work(i: int, aid: str) -> None:
                good = svc.get_device_details(ids=[aid])["status_code"] == 200
                with tally:
                    ok[0] += good

            with counted(emu, c):
                wall = run_threads(nt, aids, work)
            fp.add(wall, c["requests"], e429=c["429"], ok=ok[0])

        def run_tw() -> None:
            cid = f"bench-client-{next(client_no)}"
            b = cs_bridge(emu, client_id=cid, client_secret="bench-secret",
                          rate_limits={"host_query": (calls, window)})
            c: dict[str, Any] = {}
            ok = [0]

            def work(i: int, aid: str) -> None:
                b.get_host("aid:" + aid)
                with tally:
                    ok[0] += 1

            with counted(emu, c):
                wall = run_threads(nt, aids, work)
            b.close()
            hq = sum(1 for r in c["log"] if r["path"].startswith("/devices/"))
            tw.add(wall, c["requests"], e429=c["429"], ok=ok[0], host_query=hq)

        fns: list[Callable[[], None]] = [run_fp]
        if not cs_error:
            fns.append(run_tw)
        else:
            tw.error = cs_error
        interleave(cfg.runs, fns)
        args = emu.args
    res = Result("ratelimit", f"5. Rate-limit fidelity ({n} host lookups, {calls} per "
                 f"{window:g} s)",
                 f"Emulator {args}; every run uses a fresh API client on both sides, so each "
                 f"starts with an empty server window. {n} distinct AIDs from {nt} threads. "
                 "Timing starts before the first call (tw_bridge's token fetch included).",
                 [fp, tw], fp.name)
    res.notes.append(f"falconpy: 429 responses per run {fp.extra['e429']}, successful "
                     f"lookups per run {fp.extra['ok']} (falconpy returns the 429, no retry)")
    if cs_error:
        res.targets.append(Target("zero 429s; total ≤ 1.05× the minimum the limit allows",
                                  None, "crowdstrike connector unavailable"))
        return res
    hq = int(statistics.median(tw.extra["host_query"]))
    minimum = (-(-hq // calls) - 1) * window
    res.notes.append(f"tw_bridge: 429 responses per run {tw.extra['e429']}, host_query "
                     f"requests per run {tw.extra['host_query']}; minimum the limit allows "
                     f"for {hq} requests = (⌈{hq}/{calls}⌉ − 1) × {window:g} s = "
                     f"{minimum:g} s")
    zero = all(e == 0 for e in tw.extra["e429"])
    res.targets.append(Target("zero 429s", zero, f"{tw.extra['e429']}"))
    if minimum > 0:
        r = tw.median / minimum
        res.targets.append(Target(f"total ≤ 1.05× the minimum ({minimum:g} s)", r <= 1.05,
                                  f"{tw.median:.2f} s = {r:.3f}×"))
        if hq > n:
            min_n = (-(-n // calls) - 1) * window
            res.notes.append(f"tw_bridge sent {hq / n:.2f} host_query requests per lookup; at "
                             f"one request per lookup the minimum would be {min_n:g} s "
                             f"({tw.median / min_n:.3f}× of it)")
    return res


# ---------------------------------------------------------------------------------------
# 6. costs


def child(*args: str, stdin: str | None = None) -> tuple[dict[str, Any], float]:
    t0 = time.perf_counter()
    p = subprocess.run([PY, str(HERE / "_child.py"), *args], capture_output=True, text=True,
                       input=stdin, cwd=ROOT, check=False)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"_child.py {args[0]} failed: {p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1]), wall


def w_costs(cfg: Config, cs_emu_hosts: int) -> Result:
    base = Side("import aiohttp (in-process time)")
    tw = Side("import tw_bridge + EDRBridge('mock') + one lookup (in-process time)")
    base_p = Side("python -c 'import aiohttp' (whole process)")
    tw_p = Side("python -c tw_bridge + lookup (whole process)")
    aio_seen: list[bool] = []

    def run_base() -> None:
        out, wall = child("import-aiohttp")
        base.add(out["seconds"])
        base_p.add(wall)

    def run_tw() -> None:
        out, wall = child("import-tw")
        tw.add(out["seconds"])
        tw_p.add(wall)
        aio_seen.append(out["aiohttp_imported"])

    interleave(cfg.import_procs, [run_base, run_tw])
    res = Result("costs", "6. Costs", "", [base, tw, base_p, tw_p], base.name)
    res.setup = (f"{cfg.import_procs} fresh interpreters per side, interleaved. In-process time "
                 "= `perf_counter` around the import (and, for tw_bridge, constructing the mock "
                 "bridge and one `get_host_info`) inside the fresh interpreter; whole process = "
                 "spawn to exit, interpreter start-up included.")
    r = res.ratio(tw.name)
    res.targets.append(Target("import tw_bridge + one mock lookup ≤ 0.5× import aiohttp",
                              r is not None and r <= 0.5, f"{r:.2f}×"))
    res.targets.append(Target("mock mode never imports aiohttp", not any(aio_seen),
                              f"aiohttp in sys.modules: {sorted(set(aio_seen))}"))

    # RSS growth on the mock
    n1, n2 = cfg.rss_n1, cfg.rss_n2
    growth: list[float] = []
    rss2: list[int] = []
    calls_list = 0
    for _ in range(cfg.rss_runs):
        out, _w = child("rss-mock", str(n1), str(n2))
        growth.append((out["rss2_kib"] - out["rss1_kib"]) / 1024)
        rss2.append(out["rss2_kib"])
        calls_list = out["connector_calls_list"]
    g = statistics.median(growth)
    res.targets.append(Target(f"RSS after {n2:,} mock calls − after {n1:,} ≤ 5 MB", g <= 5,
                              f"median {g:.2f} MiB (runs: "
                              f"{', '.join(f'{x:.2f}' for x in growth)})"))
    if calls_list:
        res.notes.append(f"MockConnector.calls holds {calls_list:,} entries after {n2:,} calls "
                         f"(≈ {calls_list * 8 / 2**20:.1f} MiB of list slots): it grows without "
                         "bound.")
    rows = [["measurement", "min", "median", "max", "ratio"]]
    for s in (base, tw, base_p, tw_p):
        rows.append([s.name, fmt_t(min(s.times)), fmt_t(s.median), fmt_t(max(s.times)),
                     "1.00×" if s in (base, base_p) else
                     f"{s.median / (base.median if s is tw else base_p.median):.2f}×"])
    rows.append([f"RSS growth, mock, {n1:,} → {n2:,} calls",
                 f"{min(growth):.2f} MiB", f"{g:.2f} MiB", f"{max(growth):.2f} MiB",
                 f"RSS at {n2:,}: {statistics.median(rss2) / 1024:.1f} MiB"])

    # steady RSS of one crowdstrike bridge
    with Emulator(cs_emu_hosts, 0, LIFTED) as emu:
        err = crowdstrike_available(emu)
        if err:
            rows.append(["crowdstrike bridge RSS", "—", "—", "—", f"unavailable: {err}"])
        else:
            aids = [d["device_id"] for d in fleet_listing(emu)][:1000]
            out, _w = child("rss-cs", emu.url, emu.client_id, emu.client_secret,
                            str(cfg.cs_calls), stdin=json.dumps(aids))
            marks = out["rss_kib"]
            txt = ", ".join(f"{int(k):,} calls: {v / 1024:.1f} MiB" for k, v in marks.items())
            rows.append([f"crowdstrike bridge RSS over {cfg.cs_calls:,} `get_host('aid:…')` "
                         f"(cycling {len(aids)} AIDs, emulator {emu.args})",
                         f"{out['rss_before_kib'] / 1024:.1f} MiB before the bridge", "", "",
                         txt])
            res.notes.append(f"crowdstrike bridge steady RSS: {txt}")
    res.table = rows
    return res


# ---------------------------------------------------------------------------------------
# report


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break

    def ver(d: str) -> str:
        try:
            return metadata.version(d)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {"CPU": cpu, "cores": str(os.cpu_count()),
            "Python": f"{platform.python_version()} ({platform.python_implementation()})",
            "OS": platform.platform(), "aiohttp": ver("aiohttp"),
            "crowdstrike-falconpy": ver("crowdstrike-falconpy"), "anyio": ver("anyio"),
            "tw_bridge": ver("tw_bridge")}


def render(results: list[Result], command: str, started: str, elapsed: float) -> str:
    m = machine()
    out = ["# Benchmarks: tw_bridge against falconpy and plain asyncio", "",
           "Generated by `bench/run.py` (issue 6). Do not edit by hand; rerun:", "",
           f"```sh\n{command}\n```", "",
           f"Run started {started}, took {elapsed:.0f} s. Figures are min / median / max over "
           "the runs of one invocation, baseline and tw_bridge interleaved (order rotating "
           "every run); ratio = tw_bridge median / baseline median. Request counts are from the "
           "emulator's request log for the timed part of each run (median over runs; token "
           "requests included). The emulator runs in its own process.", "",
           "## Machine", "", "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in m.items()]
    out += ["", "## Summary", "", "| workload | target | result | met |", "|---|---|---|---|"]
    for r in results:
        for t in r.targets:
            met = "—" if t.met is None else ("yes" if t.met else "**no**")
            out.append(f"| {r.title} | {t.text} | {t.detail} | {met} |")
    for r in results:
        out += ["", f"## {r.title}", "", r.setup, ""]
        if r.table is not None:
            out += ["| " + " | ".join(r.table[0]) + " |",
                    "|" + "---|" * len(r.table[0])]
            out += ["| " + " | ".join(row) + " |" for row in r.table[1:]]
        else:
            out += ["| side | runs | min | median | max | ratio | HTTP requests |",
                    "|---|---|---|---|---|---|---|"]
            for s in r.sides:
                if s.error or not s.times:
                    out.append(f"| {s.name} | 0 | — | — | — | — | not run: {s.error} |")
                    continue
                ratio = r.ratio(s.name)
                req = "—" if s.median_requests is None else f"{s.median_requests:g}"
                if s.requests and min(s.requests) != max(s.requests):
                    req += f" ({min(s.requests)}–{max(s.requests)})"
                out.append(f"| {s.name} | {len(s.times)} | {fmt_t(min(s.times), s.unit)} | "
                           f"{fmt_t(s.median, s.unit)} | {fmt_t(max(s.times), s.unit)} | "
                           f"{'1.00×' if s.name == r.baseline else f'{ratio:.3f}×'} | {req} |")
        out.append("")
        for t in r.targets:
            met = "not measured" if t.met is None else ("met" if t.met else "**missed**")
            out.append(f"- Target: {t.text} — {t.detail} — {met}")
        for note in r.notes:
            out.append(f"- {note}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------


@dataclass
class Config:
    runs: int = 5
    facade_calls: int = 20000
    emu_hosts: int = 20000
    latency_ms: float = 20
    bulk_names: int = 500
    fleet_hosts: int = 20000
    triage_hosts: int = 100
    threads: int = 16
    rl_calls: int = 100
    rl_window: float = 10.0
    rl_lookups: int = 300
    rl_latency_ms: float = 20
    rl_hosts: int = 2000
    import_procs: int = 15
    rss_n1: int = 1000
    rss_n2: int = 100000
    rss_runs: int = 5
    cs_calls: int = 10000
    cs_hosts: int = 2000


SMOKE = Config(runs=2, facade_calls=300, emu_hosts=300, latency_ms=0, bulk_names=10,
               fleet_hosts=300, triage_hosts=8, threads=4, rl_calls=5, rl_window=0.5,
               rl_lookups=12, rl_latency_ms=0, rl_hosts=100, import_procs=2, rss_n1=100,
               rss_n2=1000, rss_runs=1, cs_calls=100, cs_hosts=100)

WORKLOADS = ("facade", "bulk", "fleet", "triage", "ratelimit", "costs")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny version, no targets asserted")
    p.add_argument("--only", choices=WORKLOADS, action="append",
                   help="run only this workload (repeatable)")
    p.add_argument("--runs", type=int, help="runs per side (default 5, smoke 2)")
    p.add_argument("--out", help="write the report here (default docs/benchmarks.md unless "
                   "--smoke or --only)")
    a = p.parse_args(argv)
    cfg = Config() if not a.smoke else SMOKE
    if a.runs:
        cfg.runs = a.runs
    if not a.smoke and cfg.runs < 5:
        print("warning: fewer than 5 runs per side", file=sys.stderr)
    only = set(a.only or WORKLOADS)
    command = "python bench/run.py" + "".join(
        f" {x}" for x in (argv if argv is not None else sys.argv[1:]))
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    t_start = time.perf_counter()
    results: list[Result] = []

    def step(label: str) -> None:
        print(f"[{time.perf_counter() - t_start:6.1f}s] {label}", file=sys.stderr, flush=True)

    if "facade" in only:
        step("facade")
        results.append(w_facade(cfg))
    if only & {"bulk", "fleet", "triage"}:
        step(f"starting emulator ({cfg.emu_hosts} hosts, {cfg.latency_ms:g} ms)")
        with Emulator(cfg.emu_hosts, cfg.latency_ms, LIFTED) as emu:
            cs_error = crowdstrike_available(emu)
            if cs_error:
                step(f"crowdstrike bridge unavailable: {cs_error}")
            listing = fleet_listing(emu)
            if "bulk" in only:
                step("bulk")
                results.append(w_bulk(cfg, emu, cs_error, listing))
            if "fleet" in only:
                step("fleet")
                results.append(w_fleet(cfg, emu, cs_error))
            if "triage" in only:
                step("triage")
                results.append(w_triage(cfg, emu, cs_error, listing))
    if "ratelimit" in only:
        step("ratelimit")
        results.append(w_ratelimit(cfg, crowdstrike_available, cfg.rl_hosts))
    if "costs" in only:
        step("costs")
        results.append(w_costs(cfg, cfg.cs_hosts))
    elapsed = time.perf_counter() - t_start
    step("done")
    text = render(results, command, started, elapsed)
    out = a.out or (None if a.smoke or a.only else str(ROOT / "docs" / "benchmarks.md"))
    if out:
        Path(out).write_text(text)
        step(f"wrote {out}")
    for r in results:
        for t in r.targets:
            met = "n/a" if t.met is None else ("met" if t.met else "MISSED")
            print(f"{r.key:10s} {met:6s} {t.text}: {t.detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
