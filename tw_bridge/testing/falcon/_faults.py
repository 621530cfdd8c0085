"""Run-time fault injection for the Falcon emulator."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Faults", "FaultAction"]


@dataclass
class _Counted:
    kind: str
    remaining: int
    path: str | None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class FaultAction:
    """What the server should do to one request (decided by :meth:`Faults.take`)."""

    delay: float = 0.0
    kind: str | None = None  # fail, rate_limit, drop, slow, malformed, truncated
    params: dict[str, Any] = field(default_factory=dict)


class Faults:
    """Fault controls; thread-safe, callable from the test thread while the server runs.

    ``path`` arguments are prefix filters on the request path ("/devices/" hits every hosts
    endpoint but not "/oauth2/token").  Counted faults ("next n") are consumed in the order
    they were added, one per matching request.
    """

    def __init__(self, seed: int = 1) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(f"faults:{seed}")
        self._counted: list[_Counted] = []
        self._latency_ms = 0.0
        self._jitter_ms = 0.0
        self._error_rates: list[tuple[float, int, str | None]] = []
        self._revocations = 0
        self._wrong_region: list[str] = []
        self._active = False

    # -- controls --------------------------------------------------------------------------

    def latency(self, ms: float, jitter_ms: float = 0) -> None:
        """Delay every reply by ``ms`` plus a uniform random 0..``jitter_ms``."""
        with self._lock:
            self._latency_ms = float(ms)
            self._jitter_ms = float(jitter_ms)
            self._update()

    def fail_next(self, n: int, status: int = 500, path: str | None = None) -> None:
        """The next ``n`` matching requests get ``status`` with an error envelope."""
        self._add("fail", n, path, status=int(status))

    def error_rate(self, p: float, status: int = 503, path: str | None = None) -> None:
        """Each matching request fails with probability ``p`` (seeded RNG). p=0 removes it."""
        with self._lock:
            self._error_rates = [e for e in self._error_rates if e[2] != path]
            if p > 0:
                self._error_rates.append((float(p), int(status), path))
            self._update()

    def rate_limit_storm(self, n: int, retry_after: float = 1.0, ms: bool = False,
                         path: str | None = None) -> None:
        """The next ``n`` matching requests get 429 with ``X-Ratelimit-Retryafter`` set to the
        absolute epoch time (seconds, or milliseconds when ``ms``) ``retry_after`` s from now."""
        self._add("rate_limit", n, path, retry_after=float(retry_after), ms=bool(ms))

    def drop_next(self, n: int, path: str | None = None) -> None:
        """Close the connection of the next ``n`` matching requests without any response."""
        self._add("drop", n, path)

    def slow_next(self, n: int, seconds: float, path: str | None = None) -> None:
        """Hold the next ``n`` matching replies for ``seconds`` before answering normally."""
        self._add("slow", n, path, seconds=float(seconds))

    def malformed_next(self, n: int, path: str | None = None) -> None:
        """The next ``n`` matching replies are 200 with a body that is not valid JSON."""
        self._add("malformed", n, path)

    def truncated_next(self, n: int, path: str | None = None) -> None:
        """The next ``n`` matching replies announce a Content-Length larger than the body they
        send, then the connection is closed."""
        self._add("truncated", n, path)

    def revoke_tokens(self) -> None:
        """Invalidate every token issued so far (their next use gets 401)."""
        with self._lock:
            self._revocations += 1

    def wrong_region_next_token(self, region: str = "eu-1") -> None:
        """The next successful token reply carries ``X-Cs-Region: <region>``; the token is bound
        to that region, and since the emulator is ``emu.region`` it answers 401 to it (as a
        token used on another cloud's host does)."""
        with self._lock:
            self._wrong_region.append(region)

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._counted.clear()
            self._latency_ms = self._jitter_ms = 0.0
            self._error_rates.clear()
            self._wrong_region.clear()
            self._update()

    # -- server side -----------------------------------------------------------------------

    @property
    def revocations(self) -> int:
        return self._revocations

    def take_wrong_region(self) -> str | None:
        with self._lock:
            return self._wrong_region.pop(0) if self._wrong_region else None

    def _add(self, kind: str, n: int, path: str | None, **params: Any) -> None:
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            if n:
                self._counted.append(_Counted(kind, int(n), path, params))
            self._update()

    def _update(self) -> None:
        self._active = bool(self._counted or self._latency_ms or self._jitter_ms
                            or self._error_rates)

    def take(self, path: str) -> FaultAction | None:
        """Decide the faults for one request (None when there is nothing to do)."""
        if not self._active:
            return None
        with self._lock:
            act = FaultAction()
            if self._latency_ms or self._jitter_ms:
                act.delay = (self._latency_ms + self._rng.uniform(0, self._jitter_ms)) / 1000.0
            for c in self._counted:
                if c.path is None or path.startswith(c.path):
                    c.remaining -= 1
                    act.kind = c.kind
                    act.params = dict(c.params)
                    if c.remaining <= 0:
                        self._counted.remove(c)
                    break
            else:
                for p, status, fpath in self._error_rates:
                    if (fpath is None or path.startswith(fpath)) and self._rng.random() < p:
                        act.kind = "fail"
                        act.params = {"status": status}
                        break
            self._update()
            return act

    def configure(self, spec: dict[str, Any]) -> None:
        """Apply a JSON fault spec (the admin route): ``{"fault": "fail_next", "n": 2, ...}``
        or ``{"clear": true}``; a list of specs is applied in order."""
        if spec.get("clear"):
            self.clear()
            if "fault" not in spec:
                return
        name = spec.get("fault")
        allowed = {
            "latency", "fail_next", "error_rate", "rate_limit_storm", "drop_next", "slow_next",
            "malformed_next", "truncated_next", "revoke_tokens", "wrong_region_next_token", "clear",
        }
        if name not in allowed:
            raise ValueError(f"unknown fault {name!r}; expected one of {sorted(allowed)}")
        kwargs = {k: v for k, v in spec.items() if k not in ("fault", "clear")}
        getattr(self, str(name))(**kwargs)
