"""Issue 8 benchmark: many workers, one API client, with and without Redis.

    python bench/redis_shared.py [--procs 8] [--lookups 100] [--limit 100] [--window 10]

Starts a Falcon emulator enforcing ``limit`` device reads per ``window`` seconds
for the API client, and a Redis server on a free loopback port; runs ``procs``
worker processes, each doing ``lookups`` host lookups with the same client-side
limit, once sharing budget and token through Redis and once without. Writes
``docs/benchmarks-redis.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from tw_bridge.testing.falcon import FalconEmulator  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    proc = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, f"redis://127.0.0.1:{port}/0"


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best = j = 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def run(procs: int, lookups: int, limit: int, window: float, redis_url: str | None) -> dict:
    with FalconEmulator(hosts=procs * lookups, seed=8,
                        rate_limits={"host_query": (limit, window)}) as emu:
        aids = [h["device_id"] for h in emu.fleet.hosts]
        workers = []
        for i in range(procs):
            cfg = {"base_url": emu.base_url, "client_id": emu.client_id,
                   "client_secret": emu.client_secret, "limit": limit, "window": window,
                   "redis_url": redis_url, "hosts": aids[i * lookups:(i + 1) * lookups]}
            workers.append(subprocess.Popen(
                [sys.executable, str(HERE / "_redis_worker.py"), json.dumps(cfg)], cwd=ROOT,
                text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE))
        for w in workers:
            assert w.stdout is not None and w.stdout.readline().strip() == "ready"
        start = time.monotonic()
        for w in workers:
            assert w.stdin is not None
            w.stdin.write("go\n")
            w.stdin.flush()
        reports = [json.loads(w.communicate()[0].strip().splitlines()[-1]) for w in workers]
        elapsed = time.monotonic() - start
        reqs = list(emu.requests)
    reads = [r.time for r in reqs if r.path.startswith("/devices/") and r.status != 429]
    return {
        "elapsed": elapsed,
        "errors": sum(r["errors"] for r in reports),
        "tokens": sum(r.path == "/oauth2/token" for r in reqs),
        "429s": sum(r.status == 429 for r in reqs),
        "reads": len(reads),
        "max_in_window": max_in_window(reads, window),
        "minimum": (len(reads) / limit - 1) * window,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--procs", type=int, default=8)
    ap.add_argument("--lookups", type=int, default=100)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--window", type=float, default=10.0)
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks-redis.md"))
    a = ap.parse_args()
    redis_proc, url = start_redis()
    try:
        shared = run(a.procs, a.lookups, a.limit, a.window, url)
    finally:
        redis_proc.kill()
        redis_proc.wait()
    local = run(a.procs, a.lookups, a.limit, a.window, None)
    cmd = "python bench/redis_shared.py " + " ".join(sys.argv[1:])
    lines = [
        "# Many workers, one API client: Redis-shared budget and token (issue 8)",
        "",
        f"{a.procs} worker processes × {a.lookups} host lookups (`get_host('aid:…')`) against the "
        f"Falcon emulator, which enforces {a.limit} device reads per {a.window:g} s sliding "
        f"window for the API client; every worker's client-side limit is the same "
        f"{a.limit}/{a.window:g} s.",
        "",
        "| | with Redis (`TW_BRIDGE_REDIS_URL`) | without Redis |",
        "|---|---|---|",
        f"| token requests | {shared['tokens']} | {local['tokens']} |",
        f"| 429 replies | {shared['429s']} | {local['429s']} |",
        f"| device reads served | {shared['reads']} | {local['reads']} |",
        f"| most reads in any {a.window:g} s window (limit {a.limit}) | "
        f"{shared['max_in_window']} | {local['max_in_window']} |",
        f"| wall time | {shared['elapsed']:.1f} s | {local['elapsed']:.1f} s |",
        f"| minimum the limit allows | {shared['minimum']:.1f} s | {local['minimum']:.1f} s |",
        f"| failed lookups | {shared['errors']} | {local['errors']} |",
        "",
        "Without Redis each worker fetches its own token and spends its own budget, so together "
        "they send several times what the API client may, and Falcon answers with 429s that "
        "every worker then waits out. With Redis one worker fetches the token and every send "
        "takes a slot in one window kept on Redis's clock.",
        "",
        f"Machine: {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}. Command: `{cmd.strip()}`.",
        "",
    ]
    Path(a.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
