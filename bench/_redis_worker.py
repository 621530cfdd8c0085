"""One worker process of the shared-budget tests: N host lookups, a JSON report."""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    cfg = json.loads(sys.argv[1])
    from tw_bridge import EDRBridge

    opts = {
        "base_url": cfg["base_url"],
        "client_id": cfg["client_id"],
        "client_secret": cfg["client_secret"],
        "rate_limits": {"host_query": (cfg["limit"], cfg["window"])},
        "timeout": 60,
    }
    if cfg.get("redis_url"):
        opts["redis_url"] = cfg["redis_url"]
    errors = 0
    with EDRBridge("crowdstrike", **opts) as bridge:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        sys.stdin.readline()  # start together
        start = time.monotonic()
        for name in cfg["hosts"]:
            try:
                bridge.get_host("aid:" + name)
            except Exception:  # noqa: BLE001 - counted and reported
                errors += 1
        elapsed = time.monotonic() - start
    sys.stdout.write(json.dumps({"errors": errors, "elapsed": elapsed}) + "\n")


if __name__ == "__main__":
    main()
