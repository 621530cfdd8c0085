"""A loopback emulator of the CrowdStrike Falcon API subset tw_bridge uses.

::

    from tw_bridge.testing.falcon import FalconEmulator

    with FalconEmulator(hosts=200, seed=1) as emu:      # own thread + own event loop
        hosts = Hosts(client_id=emu.client_id, client_secret=emu.client_secret,
                      base_url=emu.base_url)

    async with FalconEmulator(hosts=200) as emu:        # on the running loop
        ...

See ``docs/emulator.md`` for endpoints, scopes and fault controls.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from aiohttp import web

from ._app import ADMIN_ROUTES, ROUTES, App, Route, build_app
from ._faults import Faults
from ._fleet import Fleet
from ._state import (
    ALL_SCOPES,
    ApiClient,
    RateLimiter,
    RequestLog,
    RequestRecord,
    TokenStore,
    normalize_scopes,
)

__all__ = [
    "ADMIN_ROUTES",
    "ALL_SCOPES",
    "FalconEmulator",
    "Faults",
    "Fleet",
    "ROUTES",
    "RequestRecord",
    "Route",
]

log = logging.getLogger("tw_bridge.testing.falcon")


class FalconEmulator:
    """A real aiohttp server on loopback speaking (a subset of) the Falcon API.

    Use as a context manager: ``with`` runs the server on its own thread and event loop,
    ``async with`` starts it on the running loop.
    """

    def __init__(
        self,
        hosts: int = 50,
        seed: int = 1,
        *,
        latency_ms: float = 0,
        token_lifetime: float = 1799,
        containment_delay: float = 0.2,
        scan_delay: float = 0.2,
        rtr_delay: float = 0.1,
        rtr_session_ttl: float = 600.0,
        rate_limits: dict[str, tuple[int, float]] | None = None,
        region: str = "us-1",
        client_id: str = "emulator-client-id",
        client_secret: str = "emulator-client-secret",  # noqa: S107 - test credential
        port: int = 0,
        host: str = "127.0.0.1",
        reference_time: float | None = None,
    ) -> None:
        self.seed = seed
        self.latency_ms = float(latency_ms)
        self.token_lifetime = float(token_lifetime)
        self.containment_delay = float(containment_delay)
        self.scan_delay = float(scan_delay)
        self.rtr_delay = float(rtr_delay)
        self.rtr_session_ttl = float(rtr_session_ttl)
        self.region = region
        self.client_id = client_id
        self.client_secret = client_secret
        self.host = host
        self.port = port
        self.fleet = Fleet(hosts, seed, reference_time=reference_time)
        self.faults = Faults(seed)
        self.rate = RateLimiter(rate_limits or {})
        self.tokens = TokenStore()
        self.clients: dict[str, ApiClient] = {}
        self._log = RequestLog()
        self.add_client(client_id, client_secret, ALL_SCOPES)
        self._aiohttp_app, self._app = build_app(self)
        self.fleet._settle = self._app.settle
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None

    # -- configuration ------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._runner is None:
            raise RuntimeError("emulator is not running")
        return f"http://{self.host}:{self.port}"

    def add_client(self, client_id: str, client_secret: str, scopes: Iterable[str]) -> None:
        """Register an API client with the given scopes (see ``ALL_SCOPES``; "*" = all)."""
        self.clients[client_id] = ApiClient(client_id, client_secret, normalize_scopes(scopes))

    # -- fleet ----------------------------------------------------------------------------

    def add_host(self, **fields: Any) -> dict[str, Any]:
        """Add a device; missing fields are generated.  ``online=False`` adds it offline."""
        return self.fleet.add_host(**fields)

    def add_alert(self, aid: str, **fields: Any) -> dict[str, Any]:
        return self.fleet.add_alert(aid, **fields)

    def get_host(self, aid: str) -> dict[str, Any]:
        h = self.fleet.get(aid)
        if h is None:
            raise KeyError(aid)
        return h

    def set_online(self, aid: str, online: bool) -> None:
        """Bring a host online or take it offline.  Pending containment changes on a host
        complete ``containment_delay`` after it comes (back) online."""
        with self.fleet.lock:
            h = self.fleet.by_id[aid]
            was = self.fleet.online.get(aid, False)
            self.fleet.online[aid] = bool(online)
            if online and not was:
                now = time.time()
                self.fleet.online_since[aid] = now
                h["last_seen"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))

    def is_online(self, aid: str) -> bool:
        return self.fleet.online.get(aid, False)

    # -- request log ----------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the request log (oldest first)."""
        return self._log.snapshot()

    def clear_requests(self) -> None:
        self._log.clear()

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Number of logged requests matching ``method`` and (exact) ``path``."""
        return sum(1 for r in self._log.snapshot()
                   if (method is None or r.method == method.upper())
                   and (path is None or r.path == path))

    def wait_for_requests(self, n: int, method: str | None = None, path: str | None = None,
                          timeout: float = 5.0) -> bool:
        """Block until at least ``n`` matching requests are logged."""
        def pred(entries: list[RequestRecord]) -> bool:
            return sum(1 for r in entries if (method is None or r.method == method.upper())
                       and (path is None or r.path == path)) >= n
        return self._log.wait_for(pred, timeout)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start serving on the running loop."""
        runner = web.AppRunner(self._aiohttp_app, access_log=None, handle_signals=False,
                               shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        server: Any = site._server
        if server is not None and getattr(server, "sockets", None):
            self.port = int(server.sockets[0].getsockname()[1])
        self._runner = runner
        log.info("Falcon emulator listening on http://%s:%s", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> FalconEmulator:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    def __enter__(self) -> FalconEmulator:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # noqa: BLE001 - reported to the caller
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.stop())
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="falcon-emulator", daemon=True)
        self._thread.start()
        ready.wait()
        if errors:
            raise errors[0]
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
        self._loop = self._thread = None

    @property
    def app(self) -> App:
        return self._app
