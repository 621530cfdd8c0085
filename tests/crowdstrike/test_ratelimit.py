"""The client-side sliding window, and why it is not aiolimiter's leaky bucket."""

from __future__ import annotations

import asyncio
import time

import aiolimiter
import pytest

from tw_bridge import RateLimited
from tw_bridge.connectors.crowdstrike._ratelimit import Limiters, SlidingWindow


def _window_max(times: list[float], seconds: float) -> int:
    """Most sends inside any window of ``seconds``."""
    times = sorted(times)
    best = 0
    j = 0
    for i, t in enumerate(times):
        while times[j] <= t - seconds:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_aiolimiter_overshoots_sliding_window() -> None:
    """A leaky bucket of 10/0.5 s lets more than 10 through inside 0.5 s."""
    async def main() -> list[float]:
        lim = aiolimiter.AsyncLimiter(10, 0.5)
        out = []
        for _ in range(15):
            await lim.acquire()
            out.append(time.monotonic())
        return out

    assert _window_max(asyncio.run(main()), 0.5) > 10


def test_sliding_window_never_overshoots() -> None:
    async def main() -> list[float]:
        win = SlidingWindow("t", 10, 0.5)
        out: list[float] = []

        async def one() -> None:
            await win.acquire()
            out.append(time.monotonic())

        await asyncio.gather(*(one() for _ in range(25)))
        return out

    times = asyncio.run(main())
    assert len(times) == 25 and _window_max(times, 0.5) <= 10
    assert max(times) - min(times) >= 1.0  # 25 sends need two full windows


def test_wait_beyond_max_wait_raises_and_reserves_nothing() -> None:
    async def main() -> None:
        win = SlidingWindow("action", 1, 30)
        await win.acquire()
        with pytest.raises(RateLimited) as ei:
            await win.acquire(max_wait=0.1)
        assert ei.value.retry_after is not None and ei.value.retry_after > 29
        assert len(win._slots) == 1

    asyncio.run(main())


def test_limiters_none_is_unlimited() -> None:
    async def main() -> float:
        lim = Limiters(None)
        t0 = time.monotonic()
        for _ in range(1000):
            await lim.acquire("host_query")
        return time.monotonic() - t0

    assert asyncio.run(main()) < 1.0
