"""The HTTP core: one aiohttp session, Falcon's envelope, errors, retries, budgets.

Every request goes through :meth:`FalconHTTP.send`, which

* waits for the operation's client-side budget (``_ratelimit``);
* adds ``Authorization: Bearer`` from the token provider and, on a 401, refreshes
  the token once and repeats the request;
* retries according to the operation's :class:`~._operations.Retry` class with
  bounded exponential backoff and full jitter; a 429 waits until
  ``X-Ratelimit-Retryafter`` (epoch seconds, or milliseconds when > 1e11) plus jitter;
* maps the answer onto the contract's errors, with Falcon's trace id attached::

    401 -> AuthenticationError   (after one refresh)      429 -> RateLimited (budget spent)
    403 -> PermissionDenied      (names the scope)        5xx -> ConnectorError (after retries)
    404 -> HostNotFound          409 -> ActionConflict    400/413/other -> ConnectorError
    timeout -> RequestTimeout    unparseable body -> InvalidResponse

* logs one DEBUG line per attempt: method, path, status, latency, trace id.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import aiohttp
import attrs

from ..._errors import (
    ActionConflict,
    AuthenticationError,
    ConnectorError,
    HostNotFound,
    InvalidResponse,
    PermissionDenied,
    RateLimited,
    RequestTimeout,
)
from ..._redact import get_logger, redact
from ..._version import __version__
from ._config import CrowdStrikeConfig
from ._falcon_models import Envelope, structure
from ._operations import Operation, Retry
from ._ratelimit import Limiters

__all__ = ["FalconHTTP", "FalconResponse", "TokenProvider", "USER_AGENT", "parse_retry_after"]

log = get_logger("tw_bridge.crowdstrike")

USER_AGENT = f"tw-bridge/{__version__}"
_BACKOFF_BASE = 0.25
_BACKOFF_CAP = 4.0
_RATE_JITTER = 0.25
Params = Sequence[tuple[str, str]] | Mapping[str, str]


class TokenProvider(Protocol):
    async def token(self) -> str: ...

    def invalidate(self, token: str) -> None: ...


@attrs.frozen
class FalconResponse:
    status: int
    data: Any
    envelope: Envelope | None
    headers: Mapping[str, str]
    trace_id: str | None
    latency: float
    #: What went wrong on earlier attempts of this call ("503", "refused", ...).
    history: tuple[str, ...] = ()

    @property
    def resources(self) -> list[Any]:
        if self.envelope is None or self.envelope.resources is None:
            return []
        return self.envelope.resources


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``X-Ratelimit-Retryafter`` (epoch s or ms) or ``Retry-After``."""
    now = time.time() if now is None else now
    raw = headers.get("X-Ratelimit-Retryafter")
    if raw is not None:
        try:
            value = float(raw)
        except ValueError:
            value = None
        if value is not None:
            if value > 1e11:  # epoch milliseconds
                value /= 1000.0
            if value > 1e9:  # epoch seconds
                return max(0.0, value - now)
            return max(0.0, value)  # a small number: a delay, as Retry-After gives it
    raw = headers.get("Retry-After")
    if raw is not None:
        try:
            return max(0.0, float(raw))
        except ValueError:
            return None
    return None


def _backoff(attempt: int) -> float:
    return random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * (2 ** attempt)))


class _Failure(Exception):
    """One failed attempt, before deciding whether to retry."""

    def __init__(self, kind: str, error: ConnectorError) -> None:
        super().__init__(kind)
        self.kind = kind  # "unreached", "timeout", "dropped", "429", "5xx"
        self.error = error


def _may_retry(kind: str, policy: Retry) -> bool:
    if kind in ("unreached", "429"):
        return True
    if kind == "5xx":
        return policy is not Retry.ONCE
    return policy is Retry.READ  # timeout, dropped: the request may have been processed


class FalconHTTP:
    """One connector's HTTP plumbing (session created in :meth:`open`, on the running loop)."""

    def __init__(self, config: CrowdStrikeConfig, limiters: Limiters) -> None:
        self.config = config
        self.limiters = limiters
        self.base_url = config.base_url
        self.auth: TokenProvider | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            raise ConnectorError(
                "the CrowdStrike connector is not open: use 'async with CrowdStrikeConnector(...)'"
                " or await connector.open() first"
            )
        return self._session

    @property
    def is_open(self) -> bool:
        return self._session is not None and not self._session.closed

    async def open(self) -> None:
        if self.is_open:
            return
        cfg = self.config
        connector = aiohttp.TCPConnector(ssl=cfg.ssl_context(), limit=64)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=cfg.timeout, sock_connect=min(cfg.timeout, 10.0)
            ),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            trust_env=False,
        )

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    # -- the one request path ---------------------------------------------------------
    async def send(
        self,
        op: Operation,
        *,
        params: Params | None = None,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        accept: Sequence[int] = (),
        timeout: float | None = None,
        max_wait: float | None = None,
        retries: int | None = None,
    ) -> FalconResponse:
        """Send ``op`` and return the answer (2xx or a status in ``accept``), or raise."""
        budget = self.config.max_retries if retries is None else retries
        wait_limit = self.config.timeout if max_wait is None else max_wait
        attempt = 0
        refreshed = False
        history: list[str] = []
        while True:
            await self.limiters.acquire(op.bucket, wait_limit)
            token: str | None = None
            hdrs = dict(headers or {})
            if op.auth:
                if self.auth is None:  # pragma: no cover - wiring error
                    raise ConnectorError("no token provider configured")
                token = await self.auth.token()
                hdrs["Authorization"] = f"Bearer {token}"
            try:
                resp = await self._attempt(op, params, json_body, form, hdrs, timeout)
                if resp.status == 401 and op.auth and not refreshed and token is not None:
                    # Expired, revoked or wrong-cloud token: one fresh token, one repeat.
                    assert self.auth is not None
                    self.auth.invalidate(token)
                    refreshed = True
                    history.append("401")
                    continue
                return self._check(op, resp, accept, history)
            except _Failure as failure:
                history.append(failure.kind)
                if not _may_retry(failure.kind, op.retry) or attempt >= budget:
                    raise self._final(op, failure, attempt) from failure.__cause__
                delay = self._delay(failure, attempt)
                if failure.kind == "429" and delay > wait_limit:
                    err = failure.error
                    asked = getattr(err, "retry_after", None)
                    asked = delay if asked is None else float(asked)
                    raise RateLimited(
                        f"{err.message.removeprefix('Connector error: ')}; Falcon asks to wait "
                        f"{asked:.1f} s, beyond this call's {wait_limit:g} s limit",
                        retry_after=round(asked, 3),
                        status=429,
                        trace_id=err.trace_id,
                    ) from None
                log.debug("%s %s: retrying in %.2f s after %s (attempt %d of %d)",
                          op.method, op.path, delay, failure.kind, attempt + 1, budget + 1)
                attempt += 1
                await asyncio.sleep(delay)

    def _delay(self, failure: _Failure, attempt: int) -> float:
        if failure.kind == "429":
            after = getattr(failure.error, "retry_after", None)
            if after is not None:
                return float(after) + random.uniform(0, _RATE_JITTER)
            return 1.0 + _backoff(attempt + 1)
        return _backoff(attempt)

    def _final(self, op: Operation, failure: _Failure, attempt: int) -> ConnectorError:
        err = failure.error
        if attempt == 0 or failure.kind == "429":
            return err
        text = err.message.removeprefix("Connector error: ")
        new = type(err)(f"{text} (after {attempt + 1} attempts)", status=err.status,
                        trace_id=err.trace_id)
        if isinstance(err, RateLimited) and isinstance(new, RateLimited):
            new.retry_after = err.retry_after
        return new

    async def _attempt(
        self,
        op: Operation,
        params: Params | None,
        json_body: Any,
        form: Mapping[str, str] | None,
        headers: dict[str, str],
        timeout: float | None,
    ) -> FalconResponse:
        url = self.base_url + op.path
        kwargs: dict[str, Any] = {"headers": headers, "allow_redirects": not op.auth}
        if params is not None:
            kwargs["params"] = list(params.items()) if isinstance(params, Mapping) else list(
                params
            )
        if json_body is not None:
            kwargs["json"] = json_body
        if form is not None:
            kwargs["data"] = dict(form)
        if self.config.proxy:
            kwargs["proxy"] = self.config.proxy
        if timeout is not None:
            kwargs["timeout"] = aiohttp.ClientTimeout(total=timeout)
        start = time.monotonic()
        what = f"{op.method} {op.path}"
        try:
            async with self.session.request(op.method, url, **kwargs) as resp:
                body = await resp.read()
                status = resp.status
                rheaders: Mapping[str, str] = resp.headers
        except aiohttp.ClientSSLError as exc:
            raise ConnectorError(
                f"TLS verification failed for {what} ({type(exc).__name__}); check "
                "TW_CROWDSTRIKE_CA_BUNDLE and TW_CROWDSTRIKE_BASE_URL"
            ) from exc
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            self._log(op, "unreached", start, None)
            raise _Failure("unreached", ConnectorError(
                f"could not connect to Falcon for {what} ({type(exc).__name__}: "
                f"{redact(str(exc))[:200]})"
            )) from exc
        except (asyncio.TimeoutError, TimeoutError) as exc:
            self._log(op, "timeout", start, None)
            spent = time.monotonic() - start
            raise _Failure("timeout", RequestTimeout(
                f"Falcon did not answer {what} within {spent:.1f} s"
                + ("" if op.retry is Retry.READ else
                   "; the request may have reached Falcon: check the device before repeating")
            )) from exc
        except aiohttp.ClientPayloadError as exc:
            self._log(op, "truncated", start, None)
            raise _Failure("dropped", InvalidResponse(
                f"Falcon's reply to {what} was cut short ({type(exc).__name__})"
                + ("" if op.retry is Retry.READ else
                   "; the request may have reached Falcon: check the device before repeating")
            )) from exc
        except (aiohttp.ClientError, OSError) as exc:
            self._log(op, "dropped", start, None)
            raise _Failure("dropped", ConnectorError(
                f"the connection to Falcon dropped during {what} ({type(exc).__name__})"
                + ("" if op.retry is Retry.READ else
                   "; the request may have reached Falcon: check the device before repeating")
            )) from exc
        latency = time.monotonic() - start
        trace_id = rheaders.get("X-Cs-Traceid")
        data: Any = None
        envelope: Envelope | None = None
        parse_error: str | None = None
        if body.strip():
            try:
                data = json.loads(body)
            except (ValueError, UnicodeDecodeError) as exc:
                parse_error = f"{type(exc).__name__}: {exc}"
        if isinstance(data, dict) and ("meta" in data or "resources" in data or "errors" in data):
            envelope = structure(data, Envelope, what=f"a malformed reply to {what}",
                                 trace_id=trace_id)
            trace_id = trace_id or envelope.trace_id
        self._log(op, str(status), start, trace_id)
        if 200 <= status < 300 and (parse_error or (body.strip() and data is None)):
            raise InvalidResponse(
                f"Falcon answered {what} with {status} but the body is not JSON "
                f"({parse_error}; {len(body)} bytes)",
                status=status,
                trace_id=trace_id,
            )
        if 200 <= status < 300 and data is not None and not isinstance(data, dict):
            raise InvalidResponse(
                f"Falcon answered {what} with a JSON {type(data).__name__}, not an object",
                status=status, trace_id=trace_id,
            )
        result = FalconResponse(status, data, envelope, rheaders, trace_id, latency)
        if status == 429:
            wait = parse_retry_after(rheaders)
            err = RateLimited(
                f"Falcon rate limit exceeded for {what}"
                + (f" (limit {rheaders['X-Ratelimit-Limit']}/min)"
                   if "X-Ratelimit-Limit" in rheaders else ""),
                retry_after=wait, status=429, trace_id=trace_id,
            )
            raise _Failure("429", err)
        if status >= 500:
            raise _Failure("5xx", ConnectorError(
                f"Falcon failed {what} with {status}: {_message(result, body)}",
                status=status, trace_id=trace_id,
            ))
        return result

    def _check(
        self, op: Operation, resp: FalconResponse, accept: Sequence[int], history: list[str]
    ) -> FalconResponse:
        status = resp.status
        if history:
            resp = attrs.evolve(resp, history=tuple(history))
        if 200 <= status < 300 or status in accept:
            return resp
        what = f"{op.method} {op.path}"
        msg = _message(resp, b"")
        kw: dict[str, Any] = {"status": status, "trace_id": resp.trace_id}
        if not op.auth and status in (400, 401, 403):
            raise AuthenticationError(
                f"Falcon rejected the API client credentials ({status}: {msg}); check "
                "TW_CROWDSTRIKE_CLIENT_ID, TW_CROWDSTRIKE_CLIENT_SECRET and the region", **kw
            )
        if status == 401:
            raise AuthenticationError(
                f"Falcon rejected a freshly issued token for {what} (401: {msg}); the token "
                "may be for another cloud: check TW_CROWDSTRIKE_REGION / TW_CROWDSTRIKE_BASE_URL",
                **kw,
            )
        if status == 403:
            scope = op.scope or "unknown"
            raise PermissionDenied(
                f"the API client lacks the '{scope}' scope needed for {op.id} ({what}); grant "
                f"'{scope}' to the API client in the Falcon console (Falcon said: {msg})",
                scope=op.scope, **kw,
            )
        if status == 404:
            raise HostNotFound(f"Not found: Falcon answered 404 to {what}: {msg}", **kw)
        if status == 409:
            raise ActionConflict(f"Falcon answered 409 (conflict) to {what}: {msg}", **kw)
        raise ConnectorError(f"Falcon rejected {op.id} ({what}) with {status}: {msg}", **kw)

    def _log(self, op: Operation, outcome: str, start: float, trace_id: str | None) -> None:
        log.debug(
            "%s %s -> %s in %.1f ms (trace id %s)",
            op.method, op.path, outcome, (time.monotonic() - start) * 1000, trace_id or "-",
        )


def _message(resp: FalconResponse, body: bytes) -> str:
    if resp.envelope is not None and resp.envelope.errors:
        return redact(resp.envelope.error_text)[:500]
    if isinstance(resp.data, dict):
        for key in ("message", "error_description", "error"):
            if isinstance(resp.data.get(key), str):
                return redact(resp.data[key])[:500]
    text = body.decode("utf-8", "replace").strip() if body else ""
    return redact(text)[:200] if text else "(no message)"
