"""Telling an FQL filter from a plain search term."""

from __future__ import annotations

import re

__all__ = ["looks_like_fql"]

# Falcon property names are lowercase snake case, possibly dotted
# (``platform_name``, ``device.device_id``), followed by ``:``. A plain term such
# as a MAC address (``AA:BB:CC``) or an IPv6 address does not start that way.
_FQL_START = re.compile(r"\s*[!(]*\s*[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*\s*:")


def looks_like_fql(query: str) -> bool:
    """True when ``query`` starts like an FQL filter (``property:...``)."""
    return _FQL_START.match(query) is not None
