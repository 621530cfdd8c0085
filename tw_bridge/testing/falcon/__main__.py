"""``python -m tw_bridge.testing.falcon``: run the Falcon emulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from . import FalconEmulator


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tw_bridge.testing.falcon",
                                description="Loopback CrowdStrike Falcon API emulator")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback)")
    p.add_argument("--port", type=int, default=0, help="port (0 = pick a free one)")
    p.add_argument("--hosts", type=int, default=50, help="fleet size")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--client-id", default="emulator-client-id")
    p.add_argument("--client-secret", default="emulator-client-secret")
    p.add_argument("--region", default="us-1")
    p.add_argument("--token-lifetime", type=float, default=1799)
    p.add_argument("--no-rate-limits", action="store_true",
                   help="disable the per-client rate limits (for benchmarks)")
    p.add_argument("--log-level", default="WARNING")
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)

    rate_limits = None
    if args.no_rate_limits:
        rate_limits = {g: (10**12, 60.0) for g in
                       ("token", "host_query", "alert_query", "action", "rtr", "default")}

    async def serve() -> None:
        emu = FalconEmulator(hosts=args.hosts, seed=args.seed, latency_ms=args.latency_ms,
                             rate_limits=rate_limits,
                             client_id=args.client_id, client_secret=args.client_secret,
                             region=args.region, token_lifetime=args.token_lifetime,
                             port=args.port, host=args.host)
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
