"""Client-side rate limits: a sliding window per budget.

Why not :class:`aiolimiter.AsyncLimiter`: it is a leaky bucket. A bucket of 10 per
second lets 10 requests through at once and then one more every 0.1 s, so 11 or
more land inside one second — exactly what a server enforcing "10 in any sliding
second" (Falcon's documented window) answers with 429
(``tests/crowdstrike/test_ratelimit.py::test_aiolimiter_overshoots_sliding_window``
shows it). :class:`SlidingWindow` instead guarantees that no window of
``seconds`` (plus a small safety margin for network jitter) holds more than
``calls`` sends.

Each call *reserves* its slot synchronously (no ``await`` between the check and
the reservation), so concurrent callers are served first come, first served, with
no lock. A caller waits for its slot rather than failing — unless the wait would
exceed ``max_wait``, in which case it raises :class:`~tw_bridge.RateLimited`
immediately, reserving nothing.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..._errors import RateLimited
from ._config import RateLimit

if TYPE_CHECKING:
    from ._redis import RedisCoordinator

__all__ = ["Limiters", "SlidingWindow"]


class SlidingWindow:
    """At most ``calls`` acquisitions in any ``seconds`` (+ margin) window."""

    def __init__(self, name: str, calls: int, seconds: float) -> None:
        if calls < 1 or seconds <= 0:
            raise ValueError("calls must be >= 1 and seconds > 0")
        self.name = name
        self.calls = calls
        self.seconds = seconds
        # Requests reach the server a little after we send them and not all with the
        # same delay; a margin (10 %, at most 0.25 s) keeps the server's window from
        # seeing n+1 even on a loaded host.
        self.window = seconds + min(0.25, 0.1 * seconds)
        self._slots: collections.deque[float] = collections.deque(maxlen=calls)

    def __repr__(self) -> str:
        return f"SlidingWindow({self.name!r}, {self.calls}/{self.seconds:g}s)"

    def delay(self) -> float:
        """Seconds the next caller would wait (0 when budget is free)."""
        now = time.monotonic()
        if len(self._slots) < self.calls:
            return 0.0
        return max(0.0, self._slots[0] + self.window - now)

    async def acquire(self, max_wait: float | None = None) -> float:
        """Wait for budget; return the seconds waited."""
        now = time.monotonic()
        if len(self._slots) < self.calls:
            slot = now if not self._slots else max(now, self._slots[-1])
        else:
            slot = max(now, self._slots[0] + self.window, self._slots[-1])
        wait = slot - now
        if max_wait is not None and wait > max_wait:
            raise RateLimited(
                f"client-side {self.name} budget ({self.calls} per {self.seconds:g} s) is "
                f"spent; next slot in {wait:.1f} s, beyond this call's {max_wait:g} s limit",
                retry_after=round(wait, 3),
            )
        self._slots.append(slot)  # reserved before awaiting: first come, first served
        if wait > 0:
            await asyncio.sleep(wait)
        return wait


class Limiters:
    """The connector's budgets by name; unknown names and ``None`` config are unlimited."""

    def __init__(self, limits: Mapping[str, RateLimit] | None) -> None:
        self._windows: dict[str, Any] = {}
        for name, lim in (limits or {}).items():
            self._windows[name] = SlidingWindow(name, lim.calls, lim.seconds)

    def get(self, name: str) -> SlidingWindow | None:
        return self._windows.get(name)  # type: ignore[return-value]

    def share(self, coord: RedisCoordinator) -> None:
        """Replace every window with one shared through Redis (same budget)."""
        from ._redis import RedisSlidingWindow

        for name, w in list(self._windows.items()):
            self._windows[name] = RedisSlidingWindow(coord, name, w.calls, w.seconds)

    @property
    def windows(self) -> dict[str, Any]:
        return dict(self._windows)

    async def acquire(self, name: str, max_wait: float | None = None) -> float:
        window = self._windows.get(name)
        if window is None:
            return 0.0
        waited: float = await window.acquire(max_wait)
        return waited
