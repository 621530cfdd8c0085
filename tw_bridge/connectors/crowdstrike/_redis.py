"""Shared rate budget and token through Redis (``TW_BRIDGE_REDIS_URL``).

Many worker processes, often on several machines, share one Falcon API client.
With per-process caches N workers fetch N tokens and spend N times the budget.
With a Redis URL configured:

* **Rate limits**: one sliding window per API client and endpoint group, kept in
  a Redis sorted set and updated by one Lua script (atomic, so no lost updates).
  Slot times come from Redis's own clock (``TIME``), so hosts whose clocks
  disagree still agree on the window. Each caller reserves its slot and then
  waits locally for the *relative* delay the script returned.
* **Token**: one token per API client, stored in Redis and refreshed by exactly
  one worker under a lock (``SET NX PX``, released by compare-and-delete); the
  others wait for it. A 401 deletes the shared token only if it is still the one
  that failed. The shared token is not revoked when one worker closes.
* **Redis lost at run time**: each limiter falls back to a local sliding window
  holding its fair share of the budget (``calls // live workers``, workers counted
  by heartbeat), logs one warning, and retries Redis every few seconds; when it
  answers again the worker rejoins the shared window (one info line). The token
  falls back to a per-process fetch.

Operators must protect Redis like a secret store: it holds a live bearer token
for the API client (key ``tw_bridge:<client>:token``). Use Redis ACLs and TLS
(``rediss://``), and do not share the instance with untrusted clients.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..._errors import ConfigError, ConnectorError
from ..._redact import get_logger, register_secret
from ._ratelimit import SlidingWindow

__all__ = ["RedisCoordinator", "RedisSlidingWindow", "safe_url"]

log = get_logger("tw_bridge.crowdstrike.redis")

_RETRY_AFTER_LOSS = 3.0  # seconds between attempts to rejoin Redis
_HEARTBEAT = 5.0
_WORKER_TTL = 20.0
_LOCK_MS = 15_000

# KEYS[1] = window zset; ARGV = calls, window_ms, member, max_wait_ms (-1 = no limit)
# Returns {granted (1|0), wait_ms}.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local calls = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
local slot = now
if n >= calls then
  local e = redis.call('ZRANGE', KEYS[1], n - calls, n - calls, 'WITHSCORES')
  slot = math.max(slot, tonumber(e[2]) + window)
end
if n > 0 then
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  slot = math.max(slot, tonumber(last[2]))
end
local wait = slot - now
if max_wait >= 0 and wait > max_wait then
  return {0, wait}
end
redis.call('ZADD', KEYS[1], slot, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window * 2 + wait)
return {1, wait}
"""

# KEYS[1] = key; ARGV[1] = expected value. Delete only if unchanged.
_COMPARE_DELETE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS[1] = workers zset; ARGV = member, ttl_ms. Heartbeat and count live workers.
_HEARTBEAT_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return redis.call('ZCARD', KEYS[1])
"""

# KEYS[1] = token key; returns {token or false, remaining ttl ms}
_GET_SHARED = """
local v = redis.call('GET', KEYS[1])
if not v then return {false, 0} end
return {v, redis.call('PTTL', KEYS[1])}
"""


def safe_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (for messages and logs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable Redis URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{user}:***@{host}" if user else f":***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(
            f"TW_BRIDGE_REDIS_URL={safe_url(url)!r} is not a Redis URL; use "
            "redis://[user:password@]host:port/db, rediss://... for TLS, or unix://path"
        )
    if parts.password:
        register_secret(parts.password)
    return url


class RedisCoordinator:
    """One Redis connection pool and the keys of one API client."""

    def __init__(self, url: str, client_id: str, base_url: str) -> None:
        self.url = check_url(url)
        digest = hashlib.sha256(f"{client_id}@{base_url}".encode()).hexdigest()[:16]
        self.prefix = f"tw_bridge:{digest}"
        self.member = uuid.uuid4().hex
        self._redis: Any = None
        self._scripts: dict[str, Any] = {}
        self.workers = 1
        self._heartbeat_task: asyncio.Task[None] | None = None
        self.token_fetches = 0

    def __repr__(self) -> str:
        return f"RedisCoordinator({safe_url(self.url)!r})"

    async def open(self) -> None:
        """Connect and check Redis answers; a clear error naming the URL if not."""
        try:
            import redis.asyncio as aioredis
        except ImportError as exc:
            raise ConfigError(
                "TW_BRIDGE_REDIS_URL is set but redis-py is not installed: "
                "pip install 'tw_bridge[redis]'"
            ) from exc
        self._redis = aioredis.Redis.from_url(
            self.url, socket_timeout=2.0, socket_connect_timeout=2.0, decode_responses=True
        )
        try:
            await self._redis.ping()
        except Exception as exc:
            await self._redis.aclose()
            self._redis = None
            raise ConnectorError(
                f"Redis at {safe_url(self.url)} is unreachable ({type(exc).__name__}); "
                "start it, fix TW_BRIDGE_REDIS_URL, or unset it to use per-process limits"
            ) from None
        for name, src in (
            ("acquire", _ACQUIRE),
            ("cad", _COMPARE_DELETE),
            ("heartbeat", _HEARTBEAT_SCRIPT),
            ("get_token", _GET_SHARED),
        ):
            self._scripts[name] = self._redis.register_script(src)
        await self._beat()
        self._heartbeat_task = asyncio.get_running_loop().create_task(self._heartbeat_loop())

    async def close(self) -> None:
        task, self._heartbeat_task = self._heartbeat_task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: S110 - shutting down
                pass
        if self._redis is not None:
            try:
                await self._redis.zrem(f"{self.prefix}:workers", self.member)
            except Exception:  # noqa: BLE001 - best effort on the way out
                log.debug("could not deregister from Redis", exc_info=True)
            await self._redis.aclose()
            self._redis = None

    async def _beat(self) -> None:
        n = await self._scripts["heartbeat"](
            keys=[f"{self.prefix}:workers"], args=[self.member, int(_WORKER_TTL * 1000)]
        )
        self.workers = max(1, int(n))

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(_HEARTBEAT)
            try:
                await self._beat()
            except Exception:  # noqa: BLE001 - the limiters report Redis loss
                log.debug("Redis heartbeat failed", exc_info=True)

    # -- rate windows ------------------------------------------------------------------
    async def acquire(
        self, group: str, calls: int, window: float, max_wait: float | None
    ) -> tuple[bool, float]:
        res = await self._scripts["acquire"](
            keys=[f"{self.prefix}:rl:{group}"],
            args=[calls, int(window * 1000), uuid.uuid4().hex,
                  -1 if max_wait is None else int(max_wait * 1000)],
        )
        return bool(int(res[0])), int(res[1]) / 1000.0

    # -- the shared token --------------------------------------------------------------
    async def get_token(self) -> tuple[str | None, float]:
        value, pttl = await self._scripts["get_token"](keys=[f"{self.prefix}:token"])
        if not value:
            return None, 0.0
        register_secret(value)
        return str(value), max(0.0, int(pttl) / 1000.0)

    async def shared_token(
        self, fetch: Callable[[], Awaitable[tuple[str, float]]], renew_window: float
    ) -> tuple[str, float]:
        """The shared token, fetched by exactly one worker under a lock.

        ``fetch`` returns ``(token, lifetime_seconds)``. Returns ``(token, seconds
        left)``.
        """
        key = f"{self.prefix}:token"
        lock_key = f"{self.prefix}:token-lock"
        deadline = time.monotonic() + _LOCK_MS / 1000 * 2
        while True:
            token, left = await self.get_token()
            if token is not None and left > renew_window:
                return token, left
            owner = uuid.uuid4().hex
            if await self._redis.set(lock_key, owner, nx=True, px=_LOCK_MS):
                try:
                    token, left = await self.get_token()  # re-check under the lock
                    if token is not None and left > renew_window:
                        return token, left
                    self.token_fetches += 1
                    token, lifetime = await fetch()
                    await self._redis.set(key, token, px=max(1, int(lifetime * 1000)))
                    return token, lifetime
                finally:
                    await self._scripts["cad"](keys=[lock_key], args=[owner])
            if time.monotonic() > deadline:
                raise ConnectorError(
                    "timed out waiting for another worker to refresh the shared Falcon token"
                )
            await asyncio.sleep(0.05)

    async def invalidate_token(self, token: str) -> None:
        await self._scripts["cad"](keys=[f"{self.prefix}:token"], args=[token])


class RedisSlidingWindow:
    """A :class:`SlidingWindow` shared through Redis, with a bounded local fallback."""

    def __init__(self, coord: RedisCoordinator, name: str, calls: int, seconds: float) -> None:
        self.coord = coord
        self.name = name
        self.calls = calls
        self.seconds = seconds
        # Workers sleep for the delay Redis granted, so a send lands a scheduling
        # delay after its slot; with several processes on a busy host that is
        # more than one process sees, hence a wider margin than the local window.
        self.window = seconds + min(0.5, 0.1 * seconds)
        self._local: SlidingWindow | None = None
        self._retry_at = 0.0
        self.fallbacks = 0

    def __repr__(self) -> str:
        mode = "local fallback" if self._local is not None else "shared"
        return f"RedisSlidingWindow({self.name!r}, {self.calls}/{self.seconds:g}s, {mode})"

    @property
    def degraded(self) -> bool:
        return self._local is not None

    def delay(self) -> float:
        return self._local.delay() if self._local is not None else 0.0

    async def acquire(self, max_wait: float | None = None) -> float:
        if self._local is None or time.monotonic() >= self._retry_at:
            try:
                granted, wait = await self.coord.acquire(
                    self.name, self.calls, self.window, max_wait
                )
            except Exception as exc:  # noqa: BLE001 - any Redis failure: fall back
                self._fall_back(exc)
            else:
                if self._local is not None:
                    log.info("Redis at %s is back: rejoined the shared %s budget",
                             safe_url(self.coord.url), self.name)
                    self._local = None
                if not granted:
                    from ..._errors import RateLimited

                    raise RateLimited(
                        f"shared {self.name} budget ({self.calls} per {self.seconds:g} s) is "
                        f"spent; next slot in {wait:.1f} s, beyond this call's {max_wait:g} s "
                        "limit",
                        retry_after=round(wait, 3),
                    )
                if wait > 0:
                    await asyncio.sleep(wait)
                return wait
        assert self._local is not None
        return await self._local.acquire(max_wait)

    def _fall_back(self, exc: BaseException) -> None:
        self._retry_at = time.monotonic() + _RETRY_AFTER_LOSS
        if self._local is None:
            share = max(1, self.calls // max(1, self.coord.workers))
            self._local = SlidingWindow(self.name, share, self.seconds)
            self.fallbacks += 1
            log.warning(
                "Redis at %s is unreachable (%s): the %s budget falls back to a local "
                "window of %d per %g s (1/%d of the shared budget) until it returns",
                safe_url(self.coord.url), type(exc).__name__, self.name, share,
                self.seconds, self.coord.workers,
            )
