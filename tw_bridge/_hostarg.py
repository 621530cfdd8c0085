"""Host arguments, shared by every connector (contract § Host argument).

A host argument is ``"aid:<id>"``, a bare device id, ``"hostname:<name>"`` or a
bare hostname. Everything is validated here, before any connector does work:
non-strings raise ``TypeError``; empty, over-long, control characters and
anything outside the hostname alphabet raise ``ValueError``. The alphabet
(ASCII letters, digits, ``.``, ``_``, ``-``) contains no FQL metacharacter, so a
validated value cannot change the meaning of a filter it is quoted into.
"""

from __future__ import annotations

import enum
import re

import attrs

__all__ = ["HostRef", "RefKind", "parse_host", "validate_search_term", "MAX_HOST_LEN"]

MAX_HOST_LEN = 253
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
_AID = re.compile(r"[0-9a-fA-F]{32}")


class RefKind(enum.Enum):
    ID = "id"              # "aid:<id>": a device id and nothing else
    HOSTNAME = "hostname"  # "hostname:<name>": a hostname and nothing else
    ANY = "any"            # bare: a device id if one matches, else a hostname


@attrs.frozen
class HostRef:
    kind: RefKind
    value: str
    original: str

    @property
    def looks_like_aid(self) -> bool:
        return _AID.fullmatch(self.value) is not None

    def __str__(self) -> str:
        return self.original


def _describe(value: str) -> str:
    text = value if len(value) <= 60 else value[:57] + "..."
    return repr(text)


def _check_value(value: str, what: str, original: str) -> str:
    if not value:
        raise ValueError(f"host argument {_describe(original)} has an empty {what}")
    if len(value) > MAX_HOST_LEN:
        raise ValueError(
            f"host argument is {len(value)} characters long; a {what} has at most {MAX_HOST_LEN}"
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"host argument {_describe(original)} contains control characters")
    if _NAME.fullmatch(value) is None:
        raise ValueError(
            f"host argument {_describe(original)} is not a valid {what}: use ASCII letters, "
            "digits, '.', '_' and '-', starting with a letter or digit"
        )
    return value


def parse_host(host: object) -> HostRef:
    """Parse and validate a host argument.

    >>> parse_host("aid:abc123")
    HostRef(kind=<RefKind.ID: 'id'>, value='abc123', original='aid:abc123')
    """
    if not isinstance(host, str):
        raise TypeError(f"host must be a str (a device id or hostname), not {type(host).__name__}")
    if len(host) > MAX_HOST_LEN + 9:
        raise ValueError(
            f"host argument is {len(host)} characters long; at most {MAX_HOST_LEN} are allowed"
        )
    if not host:
        raise ValueError("host argument is empty: pass a device id or a hostname")
    prefix, sep, rest = host.partition(":")
    if sep:
        p = prefix.lower()
        if p in ("aid", "id"):
            return HostRef(RefKind.ID, _check_value(rest, "device id", host), host)
        if p in ("hostname", "host"):
            return HostRef(RefKind.HOSTNAME, _check_value(rest, "hostname", host), host)
        raise ValueError(
            f"host argument {_describe(host)} has an unknown prefix {prefix!r}: "
            "use 'aid:<id>', 'hostname:<name>', a bare id or a bare hostname"
        )
    return HostRef(RefKind.ANY, _check_value(host, "device id or hostname", host), host)


def validate_search_term(term: object) -> str:
    """Validate a search query (an FQL filter, or a hostname fragment, IP, tag or id)."""
    if not isinstance(term, str):
        raise TypeError(f"query must be a str, not {type(term).__name__}")
    # An empty query lists every host (up to ``limit``), as the older module did.
    if len(term) > 1024:
        raise ValueError(f"query is {len(term)} characters long; at most 1024 are allowed")
    if any(ord(c) < 32 or ord(c) == 127 for c in term):
        raise ValueError(f"query {_describe(term)} contains control characters")
    try:
        term.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate cannot be sent: the URL encoder drops it, and
        # hostname:*'*<term>*' would become hostname:*'**' -- every host.
        raise ValueError(f"query {_describe(term)} is not valid Unicode (lone surrogate)"
                         ) from None
    return term
