"""Routes match falconpy's endpoint tables; fleet; CLI; async start."""

from __future__ import annotations

import asyncio
import importlib
import os
import pkgutil
import signal
import subprocess
import sys
import time
from collections import Counter

import aiohttp
import falconpy._endpoint as endpoint_pkg

from tw_bridge.testing.falcon import ROUTES, FalconEmulator, Fleet


def _falconpy_operations() -> dict[tuple[str, str], dict[str, set[str]]]:
    ops: dict[tuple[str, str], dict[str, set[str]]] = {}
    for mod_info in pkgutil.iter_modules(endpoint_pkg.__path__):
        if mod_info.ispkg:
            continue
        mod = importlib.import_module(f"falconpy._endpoint.{mod_info.name}")
        for name, value in vars(mod).items():
            if not (name.endswith("_endpoints") and isinstance(value, list)):
                continue
            for row in value:
                op_id, method, path, _desc, _coll, params = row[:6]
                query = {p["name"] for p in params if p.get("in") == "query"}
                ops.setdefault((method.upper(), path), {})[op_id] = query
    return ops


def test_every_route_is_a_falconpy_operation() -> None:
    ops = _falconpy_operations()
    for route in ROUTES:
        assert not route.path.startswith("/_emulator/")
        key = (route.method, route.path)
        assert key in ops, f"{key} is not in falconpy's endpoint tables"
        assert route.operation in ops[key], (route, sorted(ops[key]))
        declared = ops[key][route.operation]
        undeclared = set(route.params) - declared
        assert not undeclared, f"{route.operation} reads undeclared params {undeclared}"


def test_served_routes_are_the_registry(emu: FalconEmulator) -> None:
    served = {(m, p) for (m, p) in emu.app.routes if not p.startswith("/_emulator/")}
    assert served == {(r.method, r.path) for r in ROUTES}


def test_fleet_is_deterministic_and_realistic() -> None:
    a, b = Fleet(500, seed=3), Fleet(500, seed=3)
    assert [h["device_id"] for h in a.hosts] == [h["device_id"] for h in b.hosts]
    assert [h["hostname"] for h in a.hosts] == [h["hostname"] for h in b.hosts]
    assert Fleet(500, seed=4).hosts[0]["device_id"] != a.hosts[0]["device_id"]
    hosts = a.hosts
    assert all(len(h["device_id"]) == 32 for h in hosts)
    assert {h["platform_name"] for h in hosts} == {"Windows", "Mac", "Linux"}
    names = Counter(h["hostname"] for h in hosts)
    assert any(n > 1 for n in names.values())  # duplicated hostnames exist
    lower = Counter(h["hostname"].lower() for h in hosts)
    assert sum(lower.values()) - len(lower) > sum(names.values()) - len(names)  # case twins
    offline = sum(not a.online[h["device_id"]] for h in hosts) / len(hosts)
    assert 0.05 < offline < 0.2
    contained = sum(h["status"] == "contained" for h in hosts) / len(hosts)
    assert 0.005 < contained < 0.08
    assert all(t.startswith("FalconGroupingTags/") for h in hosts for t in h["tags"])
    assert a.alerts and all(1 <= x["severity"] <= 100 for x in a.alerts)
    assert [x["composite_id"] for x in a.alerts] == [x["composite_id"] for x in b.alerts]


def test_fleet_generation_speed() -> None:
    t0 = time.perf_counter()
    Fleet(20000, seed=1)
    assert time.perf_counter() - t0 < 4.0  # target < 2 s; slack for loaded CI machines


def test_async_context_manager() -> None:
    async def main() -> None:
        async with FalconEmulator(hosts=10) as emu:
            async with aiohttp.ClientSession() as s:
                async with s.post(f"{emu.base_url}/oauth2/token", data={
                        "client_id": emu.client_id, "client_secret": emu.client_secret}) as r:
                    assert r.status == 201
                    tok = (await r.json())["access_token"]
                async with s.get(f"{emu.base_url}/devices/queries/devices/v1",
                                 params={"filter": "platform_name:'Windows'+status:!'x'"},
                                 headers={"Authorization": f"Bearer {tok}"}) as r:
                    assert r.status == 200
                    assert (await r.json())["meta"]["pagination"]["total"] > 0

    asyncio.run(main())


def test_cli_prints_url_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tw_bridge.testing.falcon", "--port", "0", "--hosts", "50",
         "--seed", "1", "--client-id", "cli-id", "--client-secret", "cli-secret"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("Falcon emulator listening on http://127.0.0.1:")
        url = line.split()[-1]
        import requests

        r = requests.post(f"{url}/oauth2/token", timeout=5,
                          data={"client_id": "cli-id", "client_secret": "cli-secret"})
        assert r.status_code == 201
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
