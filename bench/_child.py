"""Measurements that need a fresh interpreter; run by ``bench/run.py``, print one JSON line.

``python bench/_child.py import-tw``      time of ``import tw_bridge`` + one mock lookup
``python bench/_child.py import-aiohttp`` time of ``import aiohttp`` alone
``python bench/_child.py rss-mock N1 N2`` RSS after N1 and after N2 mock calls
``python bench/_child.py rss-cs URL ID SECRET N`` RSS of one crowdstrike bridge over N calls
"""

from __future__ import annotations

import gc
import json
import sys
import time


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main(argv: list[str]) -> None:
    what = argv[0]
    if what == "import-tw":
        t0 = time.perf_counter()
        import tw_bridge

        b = tw_bridge.EDRBridge("mock")
        b.get_host_info("workstation-001")
        t1 = time.perf_counter()
        b.close()
        print(json.dumps({"seconds": t1 - t0, "aiohttp_imported": "aiohttp" in sys.modules,
                          "modules": len(sys.modules)}))
    elif what == "import-aiohttp":
        t0 = time.perf_counter()
        import aiohttp  # noqa: F401

        t1 = time.perf_counter()
        print(json.dumps({"seconds": t1 - t0, "modules": len(sys.modules)}))
    elif what == "rss-mock":
        n1, n2 = int(argv[1]), int(argv[2])
        import tw_bridge

        b = tw_bridge.EDRBridge("mock")
        call = b.get_host_info
        for _ in range(n1):
            call("workstation-001")
        gc.collect()
        r1 = rss_kib()
        for _ in range(n2 - n1):
            call("workstation-001")
        gc.collect()
        r2 = rss_kib()
        calls = len(getattr(b.connector, "calls", []))
        b.close()
        print(json.dumps({"rss1_kib": r1, "rss2_kib": r2, "n1": n1, "n2": n2,
                          "connector_calls_list": calls}))
    elif what == "rss-cs":
        url, cid, secret, n = argv[1], argv[2], argv[3], int(argv[4])
        aids = json.loads(sys.stdin.read())
        import tw_bridge

        r0 = rss_kib()
        b = tw_bridge.EDRBridge("crowdstrike", base_url=url, client_id=cid,
                                client_secret=secret, rate_limits=None)
        marks = {}
        points = sorted({max(1, n // 10), n // 2, n})
        for i in range(n):
            b.get_host("aid:" + aids[i % len(aids)])
            if i + 1 in points:
                gc.collect()
                marks[str(i + 1)] = rss_kib()
        b.close()
        print(json.dumps({"rss_before_kib": r0, "rss_kib": marks}))
    else:
        raise SystemExit(f"unknown measurement {what!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
