"""The facade's threading and lifecycle guarantees (mock mode)."""

from __future__ import annotations

import asyncio
import gc
import os
import random
import signal
import subprocess
import sys
import threading
import time
import warnings

import pytest

from tests import contract
from tw_bridge import BridgeError, EDRBridge, HostNotFound, MockConnector


def _wait_for(cond, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.001)


def test_many_threads_share_one_bridge(thread_baseline: int) -> None:
    errors: list[BaseException] = []
    with EDRBridge("mock") as b:
        def worker(seed: int) -> None:
            rng = random.Random(seed)
            try:
                for _ in range(200):
                    op = rng.randrange(6)
                    if op == 0:
                        assert b.get_host("workstation-001")["host_id"] == "host-12345"
                    elif op == 1:
                        assert len(b.search_hosts("workstation", limit=1)) == 1
                    elif op == 2:
                        assert len(b.get_detections("workstation-001")) == 2
                    elif op == 3:
                        assert len(b.get_processes("workstation-001")) == 3
                    elif op == 4:
                        try:
                            b.get_host("missing-host")
                        except HostNotFound:
                            pass
                        else:
                            raise AssertionError("expected HostNotFound")
                    else:
                        got = b.get_hosts(["dc01", "server-001"])
                        assert [h["id"] for h in got] == ["host-99999", "host-67890"]
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert threading.active_count() == thread_baseline


def test_call_from_inside_a_running_event_loop() -> None:
    async def main() -> dict:
        with EDRBridge("mock") as b:
            return b.get_host("dc01")

    host = asyncio.run(main())
    contract.check_host(host)


def test_reentrant_call_from_the_loop_thread_raises_quickly() -> None:
    with EDRBridge("mock") as b:
        done = threading.Event()
        outcome: list[BaseException | object] = []

        def on_loop() -> None:
            try:
                outcome.append(b.get_host("dc01"))
            except BaseException as exc:
                outcome.append(exc)
            done.set()

        loop = b._runner.loop
        assert loop is not None
        loop.call_soon_threadsafe(on_loop)
        assert done.wait(1.0), "re-entrant call deadlocked"
        assert isinstance(outcome[0], BridgeError)
        assert "own event-loop thread" in str(outcome[0])
        # and the bridge still works afterwards
        assert b.get_host("dc01")["id"] == "host-99999"


def test_close_releases_the_thread_and_later_calls_raise(thread_baseline: int) -> None:
    b = EDRBridge("mock")
    assert threading.active_count() == thread_baseline + 1
    b.close()
    b.close()  # idempotent
    assert threading.active_count() == thread_baseline
    with pytest.raises(BridgeError, match="closed"):
        b.get_host("dc01")
    assert "closed" in repr(b)


def test_fifty_bridges_leave_nothing_behind(thread_baseline: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for i in range(50):
            if i % 2:
                with EDRBridge("mock") as b:
                    b.get_host("dc01")
            else:
                b = EDRBridge("mock")
                b.get_host("dc01")
                del b  # the weakref.finalize safety net closes it
                gc.collect()
    _wait_for(lambda: threading.active_count() == thread_baseline)


def test_connector_exception_types_are_kept() -> None:
    connector = MockConnector()
    with EDRBridge(connector=connector) as b:
        connector.fail_next(1, HostNotFound("injected"))
        with pytest.raises(HostNotFound, match="injected"):
            b.get_host("dc01")
        connector.fail_next(1, KeyError("boom"))
        with pytest.raises(RuntimeError, match="KeyError"):
            b.get_host("dc01")
        assert b.get_host("dc01")["id"] == "host-99999"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_gets_a_clear_error() -> None:
    with EDRBridge("mock") as b:
        b.get_host("dc01")
        r, w = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # child
            os.close(r)
            code = 3
            try:
                b.get_host("dc01")
            except BridgeError as exc:
                code = 0 if "forked child" in str(exc) else 4
            except BaseException:
                code = 5
            os.write(w, bytes([code]))
            os._exit(0)
        os.close(w)
        code = os.read(r, 1)
        os.close(r)
        os.waitpid(pid, 0)
        assert code == b"\x00"
        assert b.get_host("dc01")["id"] == "host-99999"  # the parent keeps working


def test_keyboard_interrupt_returns_promptly_and_the_bridge_recovers() -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals go to the main thread")
    # A shell that starts us in the background ignores SIGINT; Python then installs
    # no KeyboardInterrupt handler. Install it for this test.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    connector = MockConnector()
    try:
        _interrupt_slow_call(connector)
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupt_slow_call(connector: MockConnector) -> None:
    with EDRBridge(connector=connector) as b:
        connector.set_latency(30)
        main = threading.main_thread().ident
        assert main is not None

        def interrupt() -> None:
            _wait_for(lambda: "find" in connector.calls)
            signal.pthread_kill(main, signal.SIGINT)

        t = threading.Thread(target=interrupt)
        t.start()
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            b.get_host("dc01")
        assert time.monotonic() - start < 5
        t.join()
        connector.set_latency(0)
        assert b.get_host("dc01")["id"] == "host-99999"


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_interpreter_exit_without_close_is_clean() -> None:
    proc = _run_python(
        "import tw_bridge\n"
        "b = tw_bridge.EDRBridge('mock')\n"
        "b.get_host('workstation-001')\n"
    )
    assert proc.returncode == 0
    assert proc.stderr == ""


def test_mock_mode_never_imports_aiohttp() -> None:
    proc = _run_python(
        "import sys, tw_bridge; tw_bridge.EDRBridge('mock').get_host('workstation-001'); "
        "assert 'aiohttp' not in sys.modules"
    )
    assert proc.returncode == 0, proc.stderr
