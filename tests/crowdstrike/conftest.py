"""Fixtures for the CrowdStrike connector tests.

* ``mocked``: aioresponses, made to work with aiohttp >= 3.14 (see ``_aioresponses_compat``).
* ``emu``: a fresh FalconEmulator per test (200 hosts, fast containment/RTR); on teardown
  every request the test sent is checked against FalconPy's endpoint tables.
* ``bridge`` / ``make_bridge``: ``EDRBridge("crowdstrike", ...)`` pointed at the emulator
  with an allow-all policy gate and the client-side limits lifted.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest

from tw_bridge import EDRBridge
from tw_bridge.testing.falcon import FalconEmulator

# -- aioresponses compatibility ---------------------------------------------------------------


class _WriterStub:
    """What ClientResponse reads from ``stream_writer`` when the request was already sent."""

    output_size = 0


def _needs_stream_writer_patch() -> bool:
    """True only while aiohttp requires ``stream_writer`` and aioresponses does not pass it."""
    from aioresponses.core import RequestMatch

    param = inspect.signature(aiohttp.ClientResponse.__init__).parameters.get("stream_writer")
    if param is None or param.default is not inspect.Parameter.empty:
        return False
    return "stream_writer" not in inspect.getsource(RequestMatch._build_response)


@pytest.fixture
def mocked(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """aioresponses; keep mocked bodies small (aiohttp 3.14 asserts on bodies > 64 KiB)."""
    import aioresponses.core as core
    from aioresponses import aioresponses

    if _needs_stream_writer_patch():
        base = core.ClientResponse

        class CompatResponse(base):  # type: ignore[misc, valid-type]
            def __init__(self, method: str, url: Any, **kw: Any) -> None:
                kw.setdefault("stream_writer", _WriterStub())
                super().__init__(method, url, **kw)

        monkeypatch.setattr(core, "ClientResponse", CompatResponse)
    with aioresponses() as m:
        yield m


# -- policy test double -------------------------------------------------------------------------


class _Allowed:
    decision = "allowed"
    request_id = None
    approved_by = None
    reason = None
    approval_level = None
    rule = None


class AllowAllGate:
    """Allows every action and remembers the outcomes."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.outcomes: list[dict[str, Any]] = []

    async def authorize(self, req: Any) -> _Allowed:
        self.requests.append(req)
        return _Allowed()

    async def record_outcome(self, req: Any, result: Any, *, success: bool, message: str,
                             trace_id: str | None = None, error: Any = None) -> None:
        self.outcomes.append({"action": req.action, "device_id": req.device_id,
                              "success": success, "message": message, "trace_id": trace_id,
                              "error": error})


@pytest.fixture
def gate() -> AllowAllGate:
    return AllowAllGate()


# -- FalconPy endpoint tables (the request-shape oracle) ---------------------------------------


def _falconpy_operations() -> dict[tuple[str, str], list[tuple[str, set[str]]]]:
    import falconpy._endpoint as ep

    table: dict[tuple[str, str], list[tuple[str, set[str]]]] = {}
    for info in pkgutil.iter_modules(ep.__path__):
        if not info.name.startswith("_") or info.name.startswith("__"):
            continue
        mod = importlib.import_module(f"falconpy._endpoint.{info.name}")
        for name, value in vars(mod).items():
            if not (name.endswith("_endpoints") and isinstance(value, list)):
                continue
            for row in value:
                if not (isinstance(row, list) and len(row) >= 6):
                    continue
                op, method, path, _desc, _coll, params = row[:6]
                names = {p["name"] for p in params if isinstance(p, dict) and p.get("in") ==
                         "query"}
                table.setdefault((method.upper(), path), []).append((op, names))
    return table


_OPS: dict[tuple[str, str], list[tuple[str, set[str]]]] | None = None


def falconpy_ops() -> dict[tuple[str, str], list[tuple[str, set[str]]]]:
    global _OPS
    if _OPS is None:
        _OPS = _falconpy_operations()
    return _OPS


def contract_violations(requests: list[Any]) -> list[str]:
    """Requests that match no FalconPy operation by method, path and query names."""
    ops = falconpy_ops()
    bad: list[str] = []
    for r in requests:
        if r.path.startswith("/_emulator/"):
            continue
        candidates = ops.get((r.method, r.path))
        if not candidates:
            bad.append(f"{r.method} {r.path}: no FalconPy operation")
            continue
        names = set(r.query)
        if not any(names <= allowed for _op, allowed in candidates):
            bad.append(f"{r.method} {r.path}: query {sorted(names)} not in "
                       f"{[sorted(a) for _o, a in candidates]}")
    return bad


#: Every request the integration tests sent (for the summary contract test).
ALL_REQUESTS: list[Any] = []


# -- emulator and bridge -------------------------------------------------------------------------


@pytest.fixture
def emu_factory() -> Iterator[Callable[..., FalconEmulator]]:
    started: list[FalconEmulator] = []

    def make(**kw: Any) -> FalconEmulator:
        kw.setdefault("hosts", 200)
        kw.setdefault("seed", 1)
        kw.setdefault("containment_delay", 0.05)
        kw.setdefault("scan_delay", 0.05)
        kw.setdefault("rtr_delay", 0.02)
        e = FalconEmulator(**kw)
        e.__enter__()
        started.append(e)
        return e

    yield make
    for e in started:
        reqs = e.requests
        e.__exit__(None, None, None)
        ALL_REQUESTS.extend(reqs)
        bad = contract_violations(reqs)
        assert not bad, "requests outside FalconPy's endpoint tables:\n" + "\n".join(bad)


@pytest.fixture
def emu(emu_factory: Callable[..., FalconEmulator]) -> FalconEmulator:
    return emu_factory()


@pytest.fixture
def make_bridge(gate: AllowAllGate) -> Iterator[Callable[..., EDRBridge]]:
    bridges: list[EDRBridge] = []

    def make(emu: FalconEmulator, **kw: Any) -> EDRBridge:
        kw.setdefault("client_id", emu.client_id)
        kw.setdefault("client_secret", emu.client_secret)
        kw.setdefault("base_url", emu.base_url)
        kw.setdefault("rate_limits", None)
        kw.setdefault("poll_interval", 0.05)
        kw.setdefault("timeout", 5)
        kw.setdefault("policy", gate)
        b = EDRBridge("crowdstrike", **kw)
        bridges.append(b)
        return b

    yield make
    for b in bridges:
        b.close()


@pytest.fixture
def bridge(emu: FalconEmulator, make_bridge: Callable[..., EDRBridge]) -> EDRBridge:
    return make_bridge(emu)


def online_host(emu: FalconEmulator, platform: str) -> dict[str, Any]:
    """An online, uncontained device of ``platform`` with a hostname unique in the fleet."""
    names: dict[str, int] = {}
    for h in emu.fleet.hosts:
        names[h["hostname"].lower()] = names.get(h["hostname"].lower(), 0) + 1
    for h in emu.fleet.hosts:
        if (h["platform_name"] == platform and emu.fleet.online[h["device_id"]]
                and h["status"] == "normal" and names[h["hostname"].lower()] == 1):
            return h
    raise LookupError(platform)
