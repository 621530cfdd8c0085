"""``tw-edr``: quick EDR lookups and approvals from a shell.

Exit status: 0 success, 1 connector error, 2 usage or configuration error.
Output is JSON (indented on a terminal); ``--table`` prints a readable table.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from ._errors import ApprovalRequired, ConfigError, ConnectorError

__all__ = ["main"]

_TABLE_COLUMNS = {
    "host": ["hostname", "id", "platform", "status", "isolation_status", "last_seen"],
    "detection": ["timestamp", "severity", "name", "technique", "process_name", "status"],
    "process": ["pid", "parent_pid", "name", "user", "start_time"],
    "connection": ["protocol", "local_address", "local_port", "remote_address", "remote_port",
                   "state", "pid", "process_name"],
}


def _build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS defaults: the options may come before or after the subcommand,
    # and a subparser's default must not overwrite what the main parser read.
    common.add_argument(
        "--mode",
        default=argparse.SUPPRESS,
        help="connector: mock or crowdstrike (default: $TW_EDR_MODE, else mock)",
    )
    common.add_argument(
        "--table", action="store_true", default=argparse.SUPPRESS,
        help="print a table instead of JSON",
    )
    common.add_argument(
        "--no-sample-data", action="store_true", default=argparse.SUPPRESS,
        help="mock mode: start with an empty mock",
    )

    parser = argparse.ArgumentParser(
        prog="tw-edr",
        description="Look up hosts and detections in an EDR and take policy-gated actions.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("host", parents=[common], help="one host")
    p.add_argument("host", help="aid:<id>, hostname:<name>, a bare id or a hostname")
    p = sub.add_parser("hosts", parents=[common], help="many hosts at once")
    p.add_argument("hosts", nargs="+")
    p = sub.add_parser("search", parents=[common], help="search hosts (FQL or a plain term)")
    p.add_argument("query")
    p.add_argument("--limit", type=int, default=100)
    p = sub.add_parser("detections", parents=[common], help="detections on a host")
    p.add_argument("host")
    p.add_argument("--hours", type=float, default=None)
    p.add_argument("--limit", type=int, default=100)
    for name, helptext in (
        ("isolate", "network-isolate a host (policy-gated)"),
        ("unisolate", "lift isolation (policy-gated)"),
        ("scan", "start an on-demand scan (policy-gated)"),
    ):
        p = sub.add_parser(name, parents=[common], help=helptext)
        p.add_argument("host")
        p.add_argument("--approval-id", default=None, help="an approved request id")
        p.add_argument("--dry-run", action="store_true", help="show what would be sent")
        p.add_argument(
            "--confirm", action="store_true", help="approve interactively (terminal only)"
        )
        if name != "scan":
            p.add_argument("--wait", type=float, default=None, help="seconds to await confirmation")
    for name in ("processes", "connections"):
        p = sub.add_parser(name, parents=[common], help=f"{name} on a host (RTR)")
        p.add_argument("host")
        p.add_argument("--hours", type=float, default=24)
    sub.add_parser("health", parents=[common], help="connector health")

    try:
        from .policy._cli import add_policy_commands
    except ImportError:  # pragma: no cover - the policy package ships with tw_bridge
        pass
    else:
        add_policy_commands(sub)
    return parser


def _kind(command: str) -> str:
    return {
        "host": "host",
        "hosts": "host",
        "search": "host",
        "detections": "detection",
        "processes": "process",
        "connections": "connection",
    }.get(command, "")


def _print(value: Any, *, table: bool, kind: str) -> None:
    if table and kind and isinstance(value, (list, dict)):
        rows = value if isinstance(value, list) else [value]
        cols = _TABLE_COLUMNS[kind]
        cells = [[("" if r is None else str(r.get(c, ""))) for c in cols] for r in rows if r]
        widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
        print("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip())
        for row in cells:
            print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        return
    if table and isinstance(value, dict):
        width = max((len(k) for k in value), default=0)
        for k, v in value.items():
            print(f"{k.ljust(width)}  {v if not isinstance(v, (list, dict)) else json.dumps(v)}")
        return
    indent = 2 if sys.stdout.isatty() else None
    print(json.dumps(value, indent=indent))


def _confirm_approver(request: dict[str, Any]) -> str | None:
    prompt = (
        f"Approve {request.get('action')} on {request.get('hostname')} "
        f"({request.get('device_id')})? [y/N] "
    )
    sys.stderr.write(prompt)
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    if answer in ("y", "yes"):
        return os.environ.get("TW_APPROVER") or getpass.getuser()
    return None


def _run_edr(args: argparse.Namespace) -> int:
    from ._bridge import EDRBridge

    approver = None
    if getattr(args, "confirm", False):
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            print("tw-edr: --confirm needs an interactive terminal", file=sys.stderr)
            return 2
        approver = _confirm_approver
    with EDRBridge(
        args.mode, with_sample_data=not args.no_sample_data, approver=approver
    ) as bridge:
        cmd = args.command
        result: Any
        if cmd == "host":
            result = bridge.get_host(args.host)
        elif cmd == "hosts":
            result = bridge.get_hosts(args.hosts)
        elif cmd == "search":
            result = bridge.search_hosts(args.query, limit=args.limit)
        elif cmd == "detections":
            result = bridge.get_detections(args.host, hours=args.hours, limit=args.limit)
        elif cmd == "isolate":
            result = bridge.isolate_host(
                args.host, approval_id=args.approval_id, wait=args.wait, dry_run=args.dry_run
            )
        elif cmd == "unisolate":
            result = bridge.unisolate_host(
                args.host, approval_id=args.approval_id, wait=args.wait, dry_run=args.dry_run
            )
        elif cmd == "scan":
            result = bridge.scan_host(args.host, approval_id=args.approval_id, dry_run=args.dry_run)
        elif cmd == "processes":
            result = bridge.get_processes(args.host, hours=args.hours)
        elif cmd == "connections":
            result = bridge.get_network_connections(args.host, hours=args.hours)
        elif cmd == "health":
            result = bridge.health_check()
        else:  # pragma: no cover - argparse rejects unknown commands
            raise AssertionError(cmd)
    _print(result, table=args.table, kind=_kind(cmd))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    for name, default in (("mode", None), ("table", False), ("no_sample_data", False)):
        if not hasattr(args, name):
            setattr(args, name, default)
    try:
        handler = getattr(args, "func", None)
        if handler is not None:
            return int(handler(args))
        return _run_edr(args)
    except ApprovalRequired as exc:
        print(f"tw-edr: {exc}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        print(f"tw-edr: configuration error: {exc}", file=sys.stderr)
        return 2
    except ConnectorError as exc:
        print(f"tw-edr: {exc}", file=sys.stderr)
        return 1
    except (ValueError, TypeError) as exc:
        print(f"tw-edr: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tw-edr: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `tw-edr search x | head`
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
