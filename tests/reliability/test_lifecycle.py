"""Lifecycle: Ctrl-C during a slow call, exit without close(), fork."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from typing import Any

import pytest

from tests._support import cs_bridge, unique_host
from tw_bridge import BridgeError
from tw_bridge.testing.falcon import FalconEmulator

DETAILS = "/devices/entities/devices/v2"
RTR_CMD = "/real-time-response/entities/command/v1"


def _interrupt_main_after(delay: float) -> threading.Timer:
    main = threading.main_thread().ident
    assert main is not None
    t = threading.Timer(delay, signal.pthread_kill, args=(main, signal.SIGINT))
    t.start()
    return t


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="needs the main thread for SIGINT")
@pytest.mark.parametrize("op", ["get_host", "get_processes"])
@pytest.mark.usefixtures("sigint_raises")
def test_keyboard_interrupt_cancels_the_request(emu: FalconEmulator, report: Any,
                                                op: str) -> None:
    aid = unique_host(emu, "Windows", skip=5)["device_id"]
    path = DETAILS if op == "get_host" else RTR_CMD
    with cs_bridge(emu, timeout=10) as bridge:
        bridge.get_host("aid:" + aid)  # token and connection ready
        emu.clear_requests()
        emu.faults.slow_next(1, 8.0, path=path)
        timer = _interrupt_main_after(0.3)
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            getattr(bridge, op)("aid:" + aid)
        back = time.monotonic() - t0
        timer.join()
        assert back < 1.0, f"control came back after {back:.2f} s"
        # the emulator saw the client go away (logged as 499 client_disconnect), long
        # before the 8 s it would have held the reply
        assert emu.wait_for_requests(1, None, path, timeout=2)
        held = [r for r in emu.requests if r.path == path]
        assert held[0].status == 499 and held[0].fault == "client_disconnect", held
        if op == "get_processes":  # the RTR session is still deleted (shielded finally)
            assert emu.wait_for_requests(1, "DELETE",
                                         "/real-time-response/entities/sessions/v1", timeout=2)
        # the same bridge keeps working
        assert getattr(bridge, op)("aid:" + aid)
    report.figure(f"Ctrl-C during a slow {op}",
                  f"control back in {back * 1000:.0f} ms; emulator logged the disconnect; "
                  "next call on the same bridge succeeded")


def test_exit_without_close(emu: FalconEmulator, report: Any) -> None:
    aid = unique_host(emu, "Linux", skip=5)["device_id"]
    script = textwrap.dedent(f"""
        from tw_bridge import EDRBridge
        b = EDRBridge("crowdstrike", base_url={emu.base_url!r}, client_id={emu.client_id!r},
                      client_secret={emu.client_secret!r}, timeout=2, rate_limits=None)
        assert b.get_host("aid:{aid}")["id"] == "{aid}"
        b.search_hosts("platform_name:'Linux'", limit=3)
        b2 = EDRBridge("crowdstrike", base_url={emu.base_url!r}, client_id={emu.client_id!r},
                       client_secret={emu.client_secret!r}, timeout=2, rate_limits=None)
        b2.get_host("aid:{aid}")
        print("done")
        # no close(): the interpreter exits with both bridges open
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TW_")}
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-W", "always::ResourceWarning", "-c", script],
                          capture_output=True, text=True, timeout=30, env=env)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout == "done\n"
    # the exit hook still closed both bridges, revoking their tokens
    assert emu.wait_for_requests(2, "POST", "/oauth2/revoke", timeout=5)
    report.figure("interpreter exit without close()",
                  f"exit 0, empty stderr, {elapsed:.1f} s; both tokens revoked at exit")


def test_forked_child_gets_a_clear_error(emu: FalconEmulator, report: Any) -> None:
    aid = unique_host(emu, "Mac", skip=3)["device_id"]
    with cs_bridge(emu) as bridge:
        bridge.get_host("aid:" + aid)
        r, w = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 3.12: fork with threads
            pid = os.fork()
        if pid == 0:  # child: report what the first call did, then leave without cleanup
            code = 1
            try:
                os.close(r)
                try:
                    bridge.get_host("aid:" + aid)
                    msg = "no error"
                except BridgeError as exc:
                    msg = "BridgeError: " + str(exc)
                    code = 0
                except BaseException as exc:  # noqa: BLE001
                    msg = f"{type(exc).__name__}: {exc}"
                os.write(w, msg.encode()[:4000])
                os.close(w)
            finally:
                os._exit(code)
        os.close(w)
        with os.fdopen(r, "rb") as fh:
            msg = fh.read().decode()
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, msg
        assert msg.startswith("BridgeError: ") and "forked child" in msg, msg
        assert "create a new EDRBridge in the child" in msg
        # the parent is unaffected
        assert bridge.get_host("aid:" + aid)["id"] == aid
    report.figure("forked child", f"first call: {msg[:90]}…; parent keeps working")
