"""EDRBridge: the synchronous facade.

One event loop per bridge runs on a background thread inside an anyio
``BlockingPortal`` that lives as long as the bridge; the connector is opened and
closed on that loop. Calls hop onto the loop with
``asyncio.run_coroutine_threadsafe`` (leaner than ``portal.call``, which costs
about 1.5× as much per call) and block for the result. The facade does nothing
else: it hops threads, turns models into dicts and maps unexpected errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import weakref
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from ._convert import to_dict
from ._errors import BridgeError, ConfigError, ConnectorError, RequestTimeout
from ._redact import get_logger
from .connectors._base import EDRConnector

__all__ = ["EDRBridge", "resolve_mode"]

log = get_logger("tw_bridge.bridge")

T = TypeVar("T")

MODES = ("mock", "crowdstrike")


def resolve_mode(connector_type: object) -> str:
    """``None`` -> ``$TW_EDR_MODE`` (default mock); ``""`` -> mock; else validated."""
    source = "connector_type"
    if connector_type is None:
        connector_type = os.environ.get("TW_EDR_MODE", "") or "mock"
        source = "TW_EDR_MODE"
    if not isinstance(connector_type, str):
        raise ConfigError(
            f"connector_type must be a str ('mock' or 'crowdstrike'), "
            f"not {type(connector_type).__name__}"
        )
    mode = connector_type.strip().lower() or "mock"
    if mode not in MODES:
        raise ConfigError(
            f"Unsupported connector type: {connector_type!r} (from {source}). "
            "Supported: 'mock', 'crowdstrike'"
        )
    return mode


class _Box:
    """One call's result slot; ``lock`` is released when it is filled."""

    __slots__ = ("lock", "result", "error", "task")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.result: Any = None
        self.error: BaseException | None = None
        self.task: asyncio.Task[Any] | None = None

    def done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            self.error = asyncio.CancelledError()
        else:
            exc = task.exception()
            if exc is not None:
                self.error = exc
            else:
                self.result = task.result()
        self.task = None
        self.lock.release()

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()


class _LoopThread:
    """The background loop, its portal, and the connector opened on it."""

    def __init__(self, connector: EDRConnector) -> None:
        self.connector = connector
        self.pid = os.getpid()
        self.closed = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread_id: int | None = None
        self._portal: Any = None
        self._stopped: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="tw-bridge-loop", daemon=True)
        self.thread.start()
        self._ready.wait()
        if self._error is not None:
            self.thread.join()
            self.closed = True
            raise self._error

    def _run(self) -> None:
        import anyio

        anyio.run(self._main)

    async def _main(self) -> None:
        import anyio
        from anyio.from_thread import BlockingPortal

        async with BlockingPortal() as portal:
            self._portal = portal
            self.loop = asyncio.get_running_loop()
            self.thread_id = threading.get_ident()
            try:
                await self.connector.open()
            except BaseException as exc:  # reported to the constructor's thread
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            try:
                await portal.sleep_until_stopped()
            finally:
                with anyio.CancelScope(shield=True):
                    try:
                        await self.connector.close()
                    except Exception:
                        log.exception("error while closing the %s connector",
                                      self.connector.connector_type)

    def check(self) -> asyncio.AbstractEventLoop:
        if os.getpid() != self.pid:
            raise BridgeError(
                f"this EDRBridge was created in process {self.pid} and cannot be used in a "
                f"forked child (pid {os.getpid()}); create a new EDRBridge in the child"
            )
        if self.closed or self.loop is None:
            raise BridgeError("this EDRBridge is closed; create a new one")
        if threading.get_ident() == self.thread_id:
            raise BridgeError(
                "EDRBridge was called from its own event-loop thread (e.g. from an approver "
                "callback or a connector hook); that would deadlock. Use the async connector "
                "(bridge.connector) with await there instead"
            )
        return self.loop

    def call(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kw: Any) -> T:
        """Run ``fn(*args, **kw)`` on the loop and block for its result.

        A leaner hop than ``run_coroutine_threadsafe`` (no concurrent Future, no
        Condition, no chained callbacks): the task's done-callback fills a box
        and releases a plain lock the caller is blocked on.
        """
        loop = self.check()
        coro = fn(*args, **kw)
        box = _Box()

        def start() -> None:
            try:
                task = loop.create_task(coro)
            except BaseException as exc:  # loop shutting down
                coro.close()
                box.error = exc
                box.lock.release()
                return
            box.task = task
            task.add_done_callback(box.done)

        try:
            loop.call_soon_threadsafe(start)
        except RuntimeError:  # the loop closed under us
            coro.close()
            raise BridgeError("this EDRBridge is closed; create a new one") from None
        try:
            box.lock.acquire()
        except BaseException:
            # KeyboardInterrupt (or another async exception) while waiting:
            # cancel the request on the loop so nothing keeps running.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(box.cancel)
            raise
        if box.error is not None:
            if isinstance(box.error, asyncio.CancelledError) and self.closed:
                raise BridgeError("this EDRBridge was closed during the call") from None
            raise box.error
        return box.result  # type: ignore[no-any-return]

    def stop(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
        if os.getpid() != self.pid or self.loop is None:
            return  # a forked child must not touch the parent's loop thread
        if threading.get_ident() == self.thread_id:
            # close() from a callback on the loop: stop without waiting for ourselves.
            self.loop.create_task(self._portal.stop())
            return
        try:
            asyncio.run_coroutine_threadsafe(self._portal.stop(), self.loop).result(30)
        except Exception:  # the loop already stopped (interpreter shutting down)
            log.debug("loop already stopped while closing the bridge", exc_info=True)
        self.thread.join(30)


class EDRBridge:
    """Synchronous access to an EDR, returning the contract's plain dicts.

    >>> bridge = EDRBridge("mock")
    >>> bridge.get_host("aid:abc123")["hostname"]
    'example-host'
    >>> bridge.close()

    ``connector_type``: ``"mock"`` or ``"crowdstrike"``; ``""`` means mock and
    ``None`` means ``$TW_EDR_MODE`` (default mock). CrowdStrike settings come
    from the environment; keyword arguments (``client_id=``, ``region=``, ...)
    override it. ``approver`` is called (with the request as a dict) when an
    action needs approval; it returns the approver's identity to approve.
    """

    def __init__(
        self,
        connector_type: str | None = None,
        with_sample_data: bool = True,
        *,
        approver: Callable[[dict[str, Any]], str | bool | None] | None = None,
        policy: Any = None,
        requester: str | None = None,
        connector: EDRConnector | None = None,
        **options: Any,
    ) -> None:
        if connector is not None:
            if approver is not None or policy is not None or requester is not None or options:
                raise TypeError(
                    "approver=, policy=, requester= and connector options configure the "
                    "connector the bridge builds; with connector= set them on that connector"
                )
        else:
            mode = resolve_mode(connector_type)
            if mode == "mock":
                if options:
                    raise TypeError(
                        f"unexpected keyword arguments for the mock connector: "
                        f"{', '.join(sorted(options))}"
                    )
                from .connectors._mock import MockConnector

                connector = MockConnector(
                    with_sample_data=bool(with_sample_data),
                    policy=policy,
                    approver=approver,
                    requester=requester,
                )
            else:
                from .connectors.crowdstrike import CrowdStrikeConnector

                connector = CrowdStrikeConnector.from_env(
                    policy=policy, approver=approver, requester=requester, **options
                )
        self._connector = connector
        self._runner = _LoopThread(connector)
        self._finalizer = weakref.finalize(self, self._runner.stop)

    def __repr__(self) -> str:
        state = "closed" if self._runner.closed else "open"
        return f"<EDRBridge {self._connector.connector_type} ({state})>"

    # -- lifecycle -----------------------------------------------------------------
    def close(self) -> None:
        """Stop the background loop, closing the HTTP session and revoking the token."""
        self._finalizer()

    def __enter__(self) -> EDRBridge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._runner.closed

    @property
    def connector(self) -> EDRConnector:
        """The async connector behind this bridge (use it only on the bridge's loop)."""
        return self._connector

    def _call(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kw: Any) -> T:
        try:
            return self._runner.call(fn, *args, **kw)
        except (ConnectorError, ValueError, TypeError):
            raise
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise RequestTimeout(f"the {self._connector.connector_type} call timed out") from exc
        except Exception as exc:
            raise ConnectorError(f"{type(exc).__name__}: {exc}") from exc

    # -- lookups -------------------------------------------------------------------
    def get_host(self, host: str) -> dict[str, Any]:
        """The host dict for ``aid:<id>``, a bare id, ``hostname:<name>`` or a hostname."""
        return to_dict(self._call(self._connector.get_host, host))  # type: ignore[no-any-return]

    def get_host_info(self, hostname: str) -> dict[str, Any]:
        """Older name of :meth:`get_host`."""
        return to_dict(self._call(self._connector.get_host, hostname))  # type: ignore[no-any-return]

    def get_hosts(self, hosts: Sequence[str]) -> list[dict[str, Any] | None]:
        """Host dicts aligned with ``hosts`` (``None`` where nothing matched)."""
        return to_dict(self._call(self._connector.get_hosts, hosts))  # type: ignore[no-any-return]

    def search_hosts(self, query: str, limit: int = 100) -> list[dict[str, Any]]:
        """Hosts matching an FQL filter or a plain term."""
        return to_dict(self._call(self._connector.search_hosts, query, limit))  # type: ignore[no-any-return]

    def get_detections(
        self, host: str, *, hours: float | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Detection dicts for ``host``, newest first."""
        return to_dict(  # type: ignore[no-any-return]
            self._call(self._connector.get_detections, host, hours=hours, limit=limit)
        )

    def get_processes(self, host: str, hours: float = 24) -> list[dict[str, Any]]:
        return to_dict(self._call(self._connector.get_processes, host, hours))  # type: ignore[no-any-return]

    def get_network_connections(self, host: str, hours: float = 24) -> list[dict[str, Any]]:
        return to_dict(  # type: ignore[no-any-return]
            self._call(self._connector.get_network_connections, host, hours)
        )

    # -- response actions (policy-gated in the connector) ----------------------------
    def isolate_host(
        self,
        host: str,
        *,
        approval_id: str | None = None,
        wait: float | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Network-isolate ``host``. Requires policy approval (see README)."""
        return to_dict(  # type: ignore[no-any-return]
            self._call(
                self._connector.isolate_host,
                host,
                approval_id=approval_id,
                wait=wait,
                dry_run=dry_run,
            )
        )

    def unisolate_host(
        self,
        host: str,
        *,
        approval_id: str | None = None,
        wait: float | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Lift network isolation of ``host``. Requires policy approval."""
        return to_dict(  # type: ignore[no-any-return]
            self._call(
                self._connector.unisolate_host,
                host,
                approval_id=approval_id,
                wait=wait,
                dry_run=dry_run,
            )
        )

    def scan_host(
        self, host: str, *, approval_id: str | None = None, dry_run: bool = False
    ) -> dict[str, Any]:
        """Start an on-demand scan of ``host``. Requires policy approval."""
        return to_dict(  # type: ignore[no-any-return]
            self._call(
                self._connector.scan_host, host, approval_id=approval_id, dry_run=dry_run
            )
        )

    # -- status ----------------------------------------------------------------------
    def health_check(self) -> dict[str, Any]:
        """``{"status", "connector_type", "message"}``."""
        return to_dict(self._call(self._connector.health_check))  # type: ignore[no-any-return]

    def get_connector_type(self) -> str:
        return self._connector.connector_type
