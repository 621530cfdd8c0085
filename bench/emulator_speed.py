"""Falcon emulator speed: fleet generation and device-detail requests per second.

Runs the emulator in its own process (``python -m tw_bridge.testing.falcon``, one core) and
drives it from this process with an aiohttp client over keep-alive connections.

    python bench/emulator_speed.py [--hosts 20000] [--seconds 5] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

import aiohttp

from tw_bridge.testing.falcon import Fleet


def bench_fleet(n: int, rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        Fleet(n, seed=1)
        best = min(best, time.perf_counter() - t0)
    return best


async def bench_details(url: str, seconds: float, concurrency: int, batch: int) -> float:
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as s:
        async with s.post(f"{url}/oauth2/token", data={
                "client_id": "emulator-client-id",
                "client_secret": "emulator-client-secret"}) as r:
            tok = (await r.json())["access_token"]
        headers = {"Authorization": f"Bearer {tok}"}
        async with s.get(f"{url}/devices/queries/devices/v1", params={"limit": 1000},
                         headers=headers) as r:
            ids = (await r.json())["resources"]
        count = 0
        errors = 0
        deadline = time.perf_counter() + seconds

        async def worker(k: int) -> None:
            nonlocal count, errors
            i = k
            while time.perf_counter() < deadline:
                params = [("ids", ids[(i + j) % len(ids)]) for j in range(batch)]
                i += concurrency
                async with s.get(f"{url}/devices/entities/devices/v2", params=params,
                                 headers=headers) as r:
                    await r.read()
                    if r.status == 200:
                        count += 1
                    else:
                        errors += 1

        # warm-up
        async with s.get(f"{url}/devices/entities/devices/v2", params={"ids": ids[0]},
                         headers=headers) as r:
            await r.read()
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - t0
        if errors:
            print(f"  ({errors} non-200 replies)")
        return count / elapsed


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--hosts", type=int, default=20000)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=16)
    args = p.parse_args()

    print(f"fleet generation, {args.hosts} hosts: {bench_fleet(args.hosts):.2f} s (best of 3)")

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "tw_bridge.testing.falcon", "--port", "0",
                             "--hosts", str(args.hosts), "--seed", "1",
                             "--no-rate-limits"],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[-1]
        # --no-rate-limits: Falcon's 6000/min would otherwise cap the run after 4 s
        for batch in (1, 10):
            rps = asyncio.run(bench_details(url, args.seconds, args.concurrency, batch))
            print(f"device details GET, {batch} id(s)/request, concurrency "
                  f"{args.concurrency}: {rps:,.0f} requests/s")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
