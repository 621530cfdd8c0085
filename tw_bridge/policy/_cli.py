"""``tw-edr approvals list|show|approve|deny`` and ``tw-edr audit [--verify]``.

:func:`add_policy_commands` registers them on the main CLI's subparsers; each command
prints JSON and returns an exit code (0 ok, 1 refused or verification failed).
``python -m tw_bridge.policy._cli ...`` runs them on their own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from ._bridge import PolicyBridge
from ._store import STATUSES

__all__ = ["add_policy_commands", "main"]


def _emit(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def _bridge(args: argparse.Namespace) -> PolicyBridge:
    db = getattr(args, "db", None)
    if db is None and not os.environ.get("TW_POLICY_DB"):
        print(
            "warning: TW_POLICY_DB is not set, so this command sees only this process's "
            "in-memory store; set TW_POLICY_DB (or --db) to the file the bridge uses",
            file=sys.stderr,
        )
    return PolicyBridge(db=db)


def _fail(message: str) -> int:
    _emit({"error": message})
    return 1


def cmd_list(args: argparse.Namespace) -> int:
    _emit(_bridge(args).list_approvals(args.status))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    try:
        _emit(_bridge(args).get_approval(args.request_id))
    except ValueError as exc:
        return _fail(str(exc))
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    try:
        _emit(_bridge(args).approve(args.request_id, args.by))
    except ValueError as exc:
        return _fail(str(exc))
    return 0


def cmd_deny(args: argparse.Namespace) -> int:
    try:
        _emit(_bridge(args).deny(args.request_id, args.by, args.reason))
    except ValueError as exc:
        return _fail(str(exc))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    bridge = PolicyBridge(db=args.db, audit_log=args.log)
    if args.verify:
        result = bridge.audit.verify()
        _emit(result.as_dict())
        return 0 if result.ok else 1
    entries = bridge.audit.entries()
    if args.limit is not None:
        entries = entries[-args.limit :] if args.limit > 0 else []
    _emit(entries)
    return 0


def add_policy_commands(subparsers: Any) -> None:
    """Register ``approvals`` and ``audit`` on an ``argparse`` subparsers object. Each
    leaf parser sets ``func`` to a function ``(args) -> int``."""
    db_help = "SQLite policy database (default: $TW_POLICY_DB)"

    approvals = subparsers.add_parser("approvals", help="list and decide approval requests")
    sub = approvals.add_subparsers(dest="approvals_command", metavar="{list,show,approve,deny}")
    sub.required = True

    p = sub.add_parser("list", help="list approval requests")
    p.add_argument("--status", choices=STATUSES)
    p.add_argument("--db", help=db_help)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="show one approval request")
    p.add_argument("request_id")
    p.add_argument("--db", help=db_help)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("approve", help="approve a pending request")
    p.add_argument("request_id")
    p.add_argument("--by", required=True, help="who approves (recorded in the audit trail)")
    p.add_argument("--db", help=db_help)
    p.set_defaults(func=cmd_approve)

    p = sub.add_parser("deny", help="deny a pending request")
    p.add_argument("request_id")
    p.add_argument("--by", required=True, help="who denies")
    p.add_argument("--reason", help="why (recorded)")
    p.add_argument("--db", help=db_help)
    p.set_defaults(func=cmd_deny)

    p = subparsers.add_parser("audit", help="print or verify the audit trail")
    p.add_argument("--verify", action="store_true", help="check the hash chain; exit 1 if broken")
    p.add_argument("--limit", type=int, help="print only the newest N entries")
    p.add_argument("--db", help=db_help)
    p.add_argument("--log", help="JSON-lines audit log (default: $TW_AUDIT_LOG)")
    p.set_defaults(func=cmd_audit)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tw-edr", description="tw_bridge policy commands")
    subparsers = parser.add_subparsers(dest="command", metavar="{approvals,audit}")
    subparsers.required = True
    add_policy_commands(subparsers)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
