"""Async EDR connectors. ``CrowdStrikeConnector`` is imported lazily (it needs aiohttp)."""

from __future__ import annotations

from typing import Any

from ._base import EDRConnector
from ._mock import MockConnector

__all__ = ["CrowdStrikeConnector", "EDRConnector", "MockConnector"]


def __getattr__(name: str) -> Any:
    if name == "CrowdStrikeConnector":
        from .crowdstrike import CrowdStrikeConnector

        return CrowdStrikeConnector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
