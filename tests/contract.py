"""The contract's dict tables (../shared/contract.md), pinned once for every test."""

from __future__ import annotations

import json
import re
from typing import Any

OPT_STR = (str, type(None))

HOST = {
    "id": str,
    "host_id": str,
    "hostname": str,
    "platform": str,
    "os": str,
    "os_version": str,
    "agent_version": str,
    "last_seen": "ts",
    "isolation_status": str,
    "isolated": bool,
    "status": str,
    "ip_addresses": "list[str]",
    "mac_addresses": "list[str]",
    "tags": "list[str]",
}
DETECTION = {
    "id": str,
    "name": str,
    "timestamp": "ts",
    "severity": str,
    "tactic": str,
    "technique": str,
    "technique_name": str,
    "description": str,
    "process_name": OPT_STR,
    "file_path": OPT_STR,
    "file_hash": OPT_STR,
    "status": str,
    "details": dict,
}
ACTION = {
    "success": bool,
    "action_id": str,
    "action": str,
    "host_id": str,
    "hostname": str,
    "message": str,
    "timestamp": "ts",
    "status": str,
    "approval": (dict, type(None)),
    "rollback": OPT_STR,
}
PROCESS = {
    "pid": int,
    "name": str,
    "command_line": str,
    "parent_pid": (int, type(None)),
    "user": str,
    "start_time": "ts",
    "file_hash": OPT_STR,
    "file_path": OPT_STR,
}
CONNECTION = {
    "pid": (int, type(None)),
    "process_name": str,
    "local_address": str,
    "local_port": int,
    "remote_address": str,
    "remote_port": int,
    "protocol": str,
    "state": str,
    "timestamp": "ts",
}
HEALTH = {"status": str, "connector_type": str, "message": OPT_STR}

ISOLATION_STATUSES = {"normal", "isolation_pending", "isolated", "release_pending"}
REACHABILITY = {"online", "offline", "unknown"}
SEVERITIES = {"critical", "high", "medium", "low", "informational"}
HEALTH_STATES = {"healthy", "degraded", "unhealthy", "unknown"}
ACTIONS = {"isolate_host", "unisolate_host", "scan_host"}
ROLLBACK = {"isolate_host": "unisolate_host", "unisolate_host": "isolate_host", "scan_host": None}

TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def _check(d: Any, table: dict[str, Any], what: str) -> None:
    assert type(d) is dict, f"{what} is {type(d).__name__}, not dict"
    missing = set(table) - set(d)
    assert not missing, f"{what} lacks keys {sorted(missing)}"
    for key, kind in table.items():
        v = d[key]
        if kind == "ts":
            assert isinstance(v, str) and TS.match(v), f"{what}[{key!r}]={v!r} is not ISO 8601 Z"
        elif kind == "list[str]":
            assert type(v) is list and all(type(x) is str for x in v), f"{what}[{key!r}]={v!r}"
        elif isinstance(kind, tuple):
            assert type(v) in kind, f"{what}[{key!r}]={v!r} is {type(v).__name__}"
        else:
            assert type(v) is kind, f"{what}[{key!r}]={v!r} is {type(v).__name__}, not {kind}"
    json.dumps(d)  # plain values only


def check_host(d: Any) -> None:
    _check(d, HOST, "host")
    assert d["host_id"] == d["id"]
    assert d["os"] == d["platform"]
    assert d["isolation_status"] in ISOLATION_STATUSES
    assert d["isolated"] is (d["isolation_status"] in ("isolated", "release_pending"))
    assert d["status"] in REACHABILITY


def check_detection(d: Any) -> None:
    _check(d, DETECTION, "detection")
    assert d["severity"] in SEVERITIES


def check_action(d: Any, action: str | None = None) -> None:
    _check(d, ACTION, "action")
    assert d["action"] in ACTIONS
    if action is not None:
        assert d["action"] == action
    assert d["rollback"] == ROLLBACK[d["action"]]
    if d["approval"] is not None:
        assert set(d["approval"]) >= {"decision", "request_id", "approved_by"}


def check_process(d: Any) -> None:
    _check(d, PROCESS, "process")


def check_connection(d: Any) -> None:
    _check(d, CONNECTION, "connection")


def check_health(d: Any, connector_type: str) -> None:
    _check(d, HEALTH, "health")
    assert d["status"] in HEALTH_STATES
    assert d["connector_type"] == connector_type
