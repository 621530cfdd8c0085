"""Run the Falcon emulator in its own process for the benchmarks.

Like ``python -m tw_bridge.testing.falcon`` (which it mirrors and whose first line it
prints), plus what the shell mode cannot set yet: server-side rate limits
(``--rate-limit GROUP=CALLS/SECONDS``) and extra API clients (``--extra-clients N``:
``bench-client-1`` .. ``bench-client-N``, secret ``bench-secret``), so interleaved runs of
the rate-limit workload each get a fresh server-side window without sleeping.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from tw_bridge.testing.falcon import ALL_SCOPES, FalconEmulator


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--hosts", type=int, default=50)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--rate-limit", action="append", default=[],
                   help="GROUP=CALLS/SECONDS, e.g. host_query=100/10")
    p.add_argument("--extra-clients", type=int, default=0)
    a = p.parse_args()
    limits: dict[str, tuple[int, float]] = {}
    for spec in a.rate_limit:
        group, _, rest = spec.partition("=")
        calls, _, secs = rest.partition("/")
        limits[group] = (int(calls), float(secs))

    async def serve() -> None:
        emu = FalconEmulator(hosts=a.hosts, seed=a.seed, latency_ms=a.latency_ms,
                             rate_limits=limits, port=a.port)
        for i in range(1, a.extra_clients + 1):
            emu.add_client(f"bench-client-{i}", "bench-secret", ALL_SCOPES)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with emu:
            print(f"Falcon emulator listening on {emu.base_url}", flush=True)
            await stop.wait()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
