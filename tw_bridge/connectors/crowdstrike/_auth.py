"""OAuth2 client-credentials token lifecycle.

* Cached; stale ``renew_window`` seconds before expiry: 120 s for Falcon's
  30-minute tokens (half the lifetime for tokens shorter than 240 s, so a short
  test token is not refetched on every request).
* Single flight: however many tasks need a token at once, one request is made
  (an :class:`asyncio.Lock`, re-checked after acquiring).
* ``X-Cs-Region`` on the token reply: the cloud the API client lives in. When the
  user chose a commercial region (not an explicit base URL) and Falcon names
  another commercial cloud, later calls go to that cloud, as FalconPy does.
  With an explicit ``TW_CROWDSTRIKE_BASE_URL`` (a proxy, a private endpoint, the
  emulator on loopback) the host is never changed; the region is only recorded
  in :attr:`TokenManager.region` and logged. GovCloud is never autodiscovered.
* A refused credential (``AuthenticationError``) is shared with every task queued
  behind that fetch and repeated for 5 s, so a bad secret does not burn Falcon's
  per-IP budget for token requests.
* Revoked on close (``POST /oauth2/revoke``, basic auth, short timeout, best effort).
* The client secret and every token are registered for redaction.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import TYPE_CHECKING

from ..._errors import AuthenticationError, ConnectorError
from ..._redact import get_logger, register_secret
from ._config import COMMERCIAL, REGIONS
from ._falcon_models import Token, structure
from ._http import FalconHTTP
from ._operations import OPS

if TYPE_CHECKING:
    from ._redis import RedisCoordinator

__all__ = ["TokenManager"]

log = get_logger("tw_bridge.crowdstrike")

_RENEW_WINDOW = 120.0
_REVOKE_TIMEOUT = 5.0
#: After Falcon refuses the credentials, token() repeats that error this long.
_NEGATIVE_CACHE = 5.0


class TokenManager:
    def __init__(self, http: FalconHTTP) -> None:
        self._http = http
        self._config = http.config
        self._token: str | None = None
        self._expires_at = 0.0  # monotonic
        self._renew_at = 0.0  # monotonic
        self._lock = asyncio.Lock()
        self._generation = 0
        self._error: ConnectorError | None = None
        self._error_until = 0.0
        #: Region Falcon reported on the last token reply (``X-Cs-Region``), if any.
        self.region: str | None = None
        #: Number of token requests made (for tests and diagnostics).
        self.requests = 0
        #: Set by the connector when ``TW_BRIDGE_REDIS_URL`` shares the token.
        self.shared: RedisCoordinator | None = None
        self._stale: str | None = None
        self._shared_failed = False

    def __repr__(self) -> str:
        state = "cached" if self._token else "none"
        return f"<TokenManager token={state} region={self.region!r}>"

    @property
    def has_token(self) -> bool:
        return self._token is not None and time.monotonic() < self._renew_at

    async def token(self) -> str:
        tok = self._token
        if tok is not None and time.monotonic() < self._renew_at:
            return tok
        seen = self._generation
        async with self._lock:
            tok = self._token
            if tok is not None and time.monotonic() < self._renew_at:
                return tok  # another task refreshed it while we waited
            if self._error is not None and (
                self._generation != seen or time.monotonic() < self._error_until
            ):
                # The fetch we queued behind failed, or Falcon refused the credentials a
                # moment ago: share that error rather than spend the per-IP token budget.
                raise self._error
            try:
                tok = await (self._fetch_shared() if self.shared is not None else self._fetch())
            except ConnectorError as exc:
                self._error = exc
                if isinstance(exc, AuthenticationError):
                    self._error_until = time.monotonic() + _NEGATIVE_CACHE
                raise
            finally:
                self._generation += 1  # counts finished fetches
            self._error = None
            return tok

    def invalidate(self, token: str) -> None:
        """Forget ``token`` after a 401 (only if it is still the current one)."""
        if self._token == token:
            self._token = None
            self._renew_at = 0.0
            self._stale = token  # and, when shared, drop it from Redis before refetching

    async def _fetch_shared(self) -> str:
        """The token every worker shares through Redis; one of them fetches it."""
        assert self.shared is not None
        try:
            if self._stale is not None:
                await self.shared.invalidate_token(self._stale)
                self._stale = None
            tok, left = await self.shared.shared_token(
                self._fetch_lifetime, self._window(left=None)
            )
        except ConnectorError:
            raise
        except Exception as exc:  # noqa: BLE001 - Redis lost: a token of our own
            if not self._shared_failed:
                log.warning(
                    "Redis unreachable for the shared token (%s): fetching one for this "
                    "process until it returns", type(exc).__name__,
                )
                self._shared_failed = True
            return await self._fetch()
        if self._shared_failed:
            log.info("Redis is back: using the shared token again")
            self._shared_failed = False
        register_secret(tok)
        now = time.monotonic()
        self._token = tok
        self._expires_at = now + left
        self._renew_at = now + max(0.0, left - self._window(left=left))
        return tok

    @staticmethod
    def _window(left: float | None) -> float:
        if left is None:
            return _RENEW_WINDOW
        return _RENEW_WINDOW if left > 2 * _RENEW_WINDOW else left / 2

    async def _fetch_lifetime(self) -> tuple[str, float]:
        tok = await self._fetch()
        return tok, max(0.0, self._expires_at - time.monotonic())

    async def _fetch(self) -> str:
        cfg = self._config
        form = {"client_id": cfg.client_id, "client_secret": cfg.client_secret}
        if cfg.member_cid:
            form["member_cid"] = cfg.member_cid
        self.requests += 1
        resp = await self._http.send(OPS["oauth2AccessToken"], form=form)
        tok = structure(resp.data or {}, Token, what="a malformed token reply",
                        trace_id=resp.trace_id)
        if not tok.access_token:
            raise AuthenticationError(
                f"Falcon answered the token request with {resp.status} but no access token "
                "(region autodiscovery failure?): set TW_CROWDSTRIKE_REGION to the API client's "
                "cloud",
                status=resp.status, trace_id=resp.trace_id,
            )
        register_secret(tok.access_token)
        lifetime = float(tok.expires_in) if tok.expires_in else 1799.0
        window = _RENEW_WINDOW if lifetime > 2 * _RENEW_WINDOW else lifetime / 2
        now = time.monotonic()
        self._token = tok.access_token
        self._expires_at = now + lifetime
        self._renew_at = now + lifetime - window
        self._note_region(resp.headers.get("X-Cs-Region"))
        log.debug("obtained a Falcon token valid for %.0f s (trace id %s)", lifetime,
                  resp.trace_id or "-")
        return tok.access_token

    def _note_region(self, raw: str | None) -> None:
        if not raw:
            return
        region = raw.strip().lower()
        region = {"us-gov-1": "usgov-1", "us1": "us-1", "us2": "us-2", "eu1": "eu-1"}.get(
            region, region
        )
        self.region = region
        cfg = self._config
        if cfg.base_url_explicit:
            if region != cfg.region:
                log.debug("Falcon reports region %s; keeping the configured base URL %s",
                          region, self._http.base_url)
            return
        if cfg.region not in COMMERCIAL or region not in COMMERCIAL:
            if region != cfg.region:
                log.warning(
                    "Falcon reports region %s but TW_CROWDSTRIKE_REGION is %s; GovCloud is "
                    "never autodiscovered: set the region explicitly", region, cfg.region,
                )
            return
        target = REGIONS[region]
        if self._http.base_url != target:
            log.info("the API client belongs to %s; using %s from now on", region, target)
            self._http.base_url = target

    async def revoke(self) -> None:
        """Revoke the cached token (best effort, short timeout, never raises)."""
        tok, self._token = self._token, None
        self._renew_at = 0.0
        if tok is None or not self._http.is_open:
            return
        if self.shared is not None:
            return  # the token is shared by every worker: leave it to its expiry
        cfg = self._config
        basic = base64.b64encode(f"{cfg.client_id}:{cfg.client_secret}".encode()).decode()
        register_secret(basic)
        try:
            await self._http.send(
                OPS["oauth2RevokeToken"],
                form={"token": tok, "client_id": cfg.client_id},
                headers={"Authorization": f"basic {basic}"},
                timeout=_REVOKE_TIMEOUT,
                max_wait=0.5,
                retries=0,
            )
        except (ConnectorError, asyncio.TimeoutError, OSError) as exc:
            log.debug("token revocation failed (ignored): %s", exc)
