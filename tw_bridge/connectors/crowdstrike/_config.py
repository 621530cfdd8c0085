"""CrowdStrike configuration, built from the environment in one place.

:meth:`CrowdStrikeConfig.from_env` reads ``TW_CROWDSTRIKE_*`` variables; keyword
arguments override them. Every mistake is a :class:`~tw_bridge.ConfigError` that
names the variable (or keyword) and the accepted values, raised at construction
before any network traffic. ``repr`` never shows the client secret.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from ..._errors import ConfigError
from ..._redact import register_secret

__all__ = [
    "DEFAULT_RATE_LIMITS",
    "OPTIONS",
    "REGIONS",
    "CrowdStrikeConfig",
    "RateLimit",
]

#: Canonical region name -> API base URL (falcon-api.md §1).
REGIONS: dict[str, str] = {
    "us-1": "https://api.crowdstrike.com",
    "us-2": "https://api.us-2.crowdstrike.com",
    "eu-1": "https://api.eu-1.crowdstrike.com",
    "usgov-1": "https://api.laggar.gcw.crowdstrike.com",
    "us-gov-2": "https://api.us-gov-2.crowdstrike.mil",
}
_REGION_ALIASES = {"us-gov-1": "usgov-1"}
#: Clouds that ``X-Cs-Region`` autodiscovery may switch between (GovCloud never is).
COMMERCIAL = frozenset({"us-1", "us-2", "eu-1"})
_REGION_CHOICES = "us-1, us-2, eu-1, usgov-1 (or us-gov-1), us-gov-2"

_LOOPBACK_NAMES = {"localhost"}


@attrs.frozen
class RateLimit:
    """At most ``calls`` requests in any ``seconds``-long sliding window."""

    calls: int
    seconds: float

    def __str__(self) -> str:
        return f"{self.calls}/{self.seconds:g}s"


#: Client-side budgets (per connector). ``action`` covers containment and scans.
DEFAULT_RATE_LIMITS: dict[str, RateLimit] = {
    "host_query": RateLimit(100, 60.0),
    "detection_query": RateLimit(50, 60.0),
    "action": RateLimit(10, 60.0),
    "rtr": RateLimit(60, 60.0),
    "token": RateLimit(20, 60.0),
}
_BUCKET_ALIASES = {"containment": "action", "scan": "action", "detection": "detection_query",
                   "host": "host_query", "alerts": "detection_query", "oauth2": "token"}

_ENV = {
    "client_id": "TW_CROWDSTRIKE_CLIENT_ID",
    "client_secret": "TW_CROWDSTRIKE_CLIENT_SECRET",
    "region": "TW_CROWDSTRIKE_REGION",
    "base_url": "TW_CROWDSTRIKE_BASE_URL",
    "member_cid": "TW_CROWDSTRIKE_MEMBER_CID",
    "timeout": "TW_CROWDSTRIKE_TIMEOUT",
    "proxy": "TW_CROWDSTRIKE_PROXY",
    "ca_bundle": "TW_CROWDSTRIKE_CA_BUNDLE",
    "rate_limits": "TW_CROWDSTRIKE_RATE_LIMITS",
    "max_retries": "TW_CROWDSTRIKE_MAX_RETRIES",
    "rtr_timeout": "TW_CROWDSTRIKE_RTR_TIMEOUT",
    "redis_url": "TW_BRIDGE_REDIS_URL",
}
#: Keyword options accepted by ``from_env`` (and ``EDRBridge("crowdstrike", ...)``).
OPTIONS = (
    *_ENV,
    "poll_interval",
    "slow_threshold",
    "online_state_max",
)

_CID = re.compile(r"[0-9a-fA-F]{32}(-[0-9a-fA-F]{2})?")


def _source(key: str, from_kw: bool) -> str:
    return f"{key}=" if from_kw else f"{_ENV[key]}="


@attrs.frozen(repr=False)
class CrowdStrikeConfig:
    """Validated settings of one CrowdStrike connector.

    >>> cfg = CrowdStrikeConfig.from_env(client_id="id", client_secret="s3cret!", region="eu-1")
    >>> cfg.base_url
    'https://api.eu-1.crowdstrike.com'
    """

    client_id: str
    client_secret: str
    region: str = "us-1"
    base_url: str = REGIONS["us-1"]
    #: True when the user set the base URL: ``X-Cs-Region`` then never moves it.
    base_url_explicit: bool = False
    member_cid: str | None = None
    timeout: float = 30.0
    proxy: str | None = None
    ca_bundle: str | None = None
    #: ``None``: no client-side limits.
    rate_limits: Mapping[str, RateLimit] | None = attrs.field(
        factory=lambda: dict(DEFAULT_RATE_LIMITS)
    )
    #: Extra attempts after a retryable failure (5xx, timeout, dropped connection, 429).
    max_retries: int = 3
    #: Bound on one RTR command (session, execution and polling).
    rtr_timeout: float = 60.0
    #: Seconds between polls while waiting for containment or an RTR command.
    poll_interval: float = 1.0
    #: ``health_check`` reports ``degraded`` when the probe takes longer than this.
    slow_threshold: float = 2.0
    #: Reachability (online-state API, 100 ids a call) is fetched for search results of
    #: at most this many hosts; larger results report ``status: unknown``.
    online_state_max: int = 1000
    #: ``TW_BRIDGE_REDIS_URL``: share the rate budget and the token through Redis.
    redis_url: str | None = None

    def __repr__(self) -> str:
        limits = (
            "off" if self.rate_limits is None
            else ", ".join(f"{k}={v}" for k, v in sorted(self.rate_limits.items()))
        )
        return (
            f"CrowdStrikeConfig(client_id={self.client_id!r}, client_secret='***', "
            f"region={self.region!r}, base_url={self.base_url!r}, "
            f"member_cid={self.member_cid!r}, timeout={self.timeout:g}, proxy="
            f"{_safe_url(self.proxy)!r}, ca_bundle={self.ca_bundle!r}, rate_limits=[{limits}], "
            f"redis_url={_safe_url(self.redis_url)!r})"
        )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> CrowdStrikeConfig:
        """Build from ``TW_CROWDSTRIKE_*`` (or ``environ``); keyword arguments win."""
        unknown = sorted(set(overrides) - set(OPTIONS))
        if unknown:
            raise TypeError(
                f"unexpected keyword arguments for the crowdstrike connector: "
                f"{', '.join(unknown)}; accepted: {', '.join(OPTIONS)}"
            )
        env = os.environ if environ is None else environ

        def get(key: str) -> tuple[Any, bool]:
            if key in overrides and overrides[key] is not None:
                return overrides[key], True
            if key == "rate_limits" and key in overrides:
                return None, True  # rate_limits=None explicitly lifts the limits
            var = _ENV.get(key)
            raw = env.get(var) if var else None
            if raw is None or raw.strip() == "":
                return None, False
            return raw.strip(), False

        client_id = _credential(*get("client_id"), "client_id")
        client_secret = _credential(*get("client_secret"), "client_secret")
        register_secret(client_secret)

        region_raw, region_kw = get("region")
        region = _region(region_raw, region_kw)
        base_raw, base_kw = get("base_url")
        if base_raw is not None:
            base_url, explicit = _base_url(base_raw, base_kw), True
        else:
            base_url, explicit = REGIONS[region], False

        cid_raw, cid_kw = get("member_cid")
        member_cid = None
        if cid_raw is not None:
            if not isinstance(cid_raw, str) or _CID.fullmatch(cid_raw.strip()) is None:
                raise ConfigError(
                    f"{_source('member_cid', cid_kw)}{cid_raw!r} is not a customer id; use the "
                    "child CID: 32 hexadecimal characters (optionally with its -XX checksum)"
                )
            member_cid = cid_raw.strip().lower()

        timeout = _seconds(*get("timeout"), "timeout", 30.0, hi=600.0)
        rtr_timeout = _seconds(*get("rtr_timeout"), "rtr_timeout", 60.0, hi=3600.0)
        proxy = _proxy(*get("proxy"))
        ca_bundle = _ca_bundle(*get("ca_bundle"))
        rl_value, rl_kw = get("rate_limits")
        if "rate_limits" in overrides:
            rate_limits = _rate_limits(overrides["rate_limits"], True)
        else:
            rate_limits = _rate_limits(rl_value, rl_kw) if rl_value is not None else dict(
                DEFAULT_RATE_LIMITS
            )
        max_retries = _int(*get("max_retries"), "max_retries", 3, 0, 10)
        poll = _seconds(overrides.get("poll_interval"), True, "poll_interval", 1.0, hi=60.0)
        slow = _seconds(overrides.get("slow_threshold"), True, "slow_threshold", 2.0, hi=600.0)
        online_max = _int(overrides.get("online_state_max"), True, "online_state_max", 1000,
                          0, 1_000_000)
        redis_raw, _redis_kw = get("redis_url")
        redis_url = None
        if redis_raw is not None:
            from ._redis import check_url

            if not isinstance(redis_raw, str):
                raise ConfigError(f"redis_url must be a str, not {type(redis_raw).__name__}")
            redis_url = check_url(redis_raw)
        return cls(
            client_id=client_id,
            client_secret=client_secret,
            region=region,
            base_url=base_url,
            base_url_explicit=explicit,
            member_cid=member_cid,
            timeout=timeout,
            proxy=proxy,
            ca_bundle=ca_bundle,
            rate_limits=rate_limits,
            max_retries=max_retries,
            rtr_timeout=rtr_timeout,
            poll_interval=poll,
            slow_threshold=slow,
            online_state_max=online_max,
            redis_url=redis_url,
        )

    def ssl_context(self) -> ssl.SSLContext:
        """Verification always on; the CA bundle, when given, replaces the system roots."""
        ctx = ssl.create_default_context(cafile=self.ca_bundle)
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx


# -- validators ----------------------------------------------------------------------------
def _credential(value: Any, from_kw: bool, key: str) -> str:
    var = _ENV[key]
    if value is None:
        raise ConfigError(
            f"{var} is not set: the CrowdStrike connector needs an OAuth2 API client; set "
            f"{_ENV['client_id']} and {_ENV['client_secret']} (or pass client_id= and "
            "client_secret=)"
        )
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a str, not {type(value).__name__}")
    text: str = value.strip()
    if not text or any(ord(c) < 33 or ord(c) == 127 for c in text) or len(text) > 256:
        what = f"{key}=" if from_kw else var
        raise ConfigError(
            f"{what} is not a usable credential: use the API client's value without "
            "spaces or control characters (at most 256 characters)"
        )
    return text


def _region(value: Any, from_kw: bool) -> str:
    if value is None:
        return "us-1"
    if not isinstance(value, str):
        raise ConfigError(f"region must be a str ({_REGION_CHOICES}), not {type(value).__name__}")
    key = value.strip().lower()
    key = _REGION_ALIASES.get(key, key)
    if key not in REGIONS:
        raise ConfigError(
            f"{_source('region', from_kw)}{value!r} is not a region; use one of {_REGION_CHOICES}"
        )
    return key


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _base_url(value: Any, from_kw: bool) -> str:
    src = _source("base_url", from_kw)
    if not isinstance(value, str):
        raise ConfigError(f"base_url must be a str, not {type(value).__name__}")
    text = value.strip().rstrip("/")
    try:
        parts = urlsplit(text)
        host = parts.hostname
        _ = parts.port
    except ValueError as exc:
        raise ConfigError(f"{src}{value!r} is not a URL ({exc}); use https://<host>") from None
    if parts.scheme not in ("https", "http") or not host:
        raise ConfigError(
            f"{src}{value!r} is not an API base URL; use https://<host>, e.g. "
            f"{REGIONS['us-1']} (or set TW_CROWDSTRIKE_REGION instead)"
        )
    if parts.scheme == "http" and not is_loopback(host):
        raise ConfigError(
            f"{src}{value!r} uses plain http; use https:// (http is accepted only for "
            "loopback: 127.0.0.1, ::1, localhost)"
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError(
            f"{src}{_safe_url(text)!r} must not contain credentials, a query or a fragment; "
            "use https://<host>[:port][/path]"
        )
    return text


def _safe_url(url: str | None) -> str | None:
    if url is None:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (
            f":{parts.port}" if parts.port else ""
        )
        return parts._replace(netloc=netloc).geturl()
    return url


def _seconds(value: Any, from_kw: bool, key: str, default: float, *, hi: float) -> float:
    if value is None:
        return default
    src = f"{key}=" if from_kw or key not in _ENV else f"{_ENV[key]}="
    if isinstance(value, bool):
        raise ConfigError(f"{src}{value!r} is not a number of seconds; use a number in (0, {hi:g}]")
    try:
        num = float(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{src}{value!r} is not a number of seconds; use a number in (0, {hi:g}]"
        ) from None
    if not math.isfinite(num) or not 0 < num <= hi:
        raise ConfigError(f"{src}{value!r} is out of range; use a number of seconds in (0, {hi:g}]")
    return num


def _int(value: Any, from_kw: bool, key: str, default: int, lo: int, hi: int) -> int:
    if value is None:
        return default
    src = f"{key}=" if from_kw or key not in _ENV else f"{_ENV[key]}="
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        num = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{src}{value!r} is not an integer; use {lo}..{hi}") from None
    if not lo <= num <= hi:
        raise ConfigError(f"{src}{value!r} is out of range; use {lo}..{hi}")
    return num


def _proxy(value: Any, from_kw: bool) -> str | None:
    if value is None:
        return None
    src = _source("proxy", from_kw)
    if not isinstance(value, str):
        raise ConfigError(f"proxy must be a str URL, not {type(value).__name__}")
    try:
        parts = urlsplit(value.strip())
        _ = parts.port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{src}{_safe_url(value)!r} is not a proxy URL; use http://host:port or "
            "https://host:port"
        )
    if parts.password:
        register_secret(parts.password)
    return value.strip()


def _ca_bundle(value: Any, from_kw: bool) -> str | None:
    if value is None:
        return None
    src = _source("ca_bundle", from_kw)
    path = os.fspath(value)
    if not isinstance(path, str):
        raise ConfigError(f"ca_bundle must be a path, not {type(value).__name__}")
    if not os.path.isfile(path):
        raise ConfigError(f"{src}{path!r} is not a file; use the path of a PEM CA bundle")
    try:
        ssl.create_default_context(cafile=path)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"{src}{path!r} could not be loaded as a PEM CA bundle ({exc})"
        ) from None
    return path


def _rate_limits(value: Any, from_kw: bool) -> dict[str, RateLimit] | None:
    """``None``/``False``/"off" lifts them; a mapping (or ``name=n/seconds,...``) overrides."""
    src = _source("rate_limits", from_kw)
    accepted = ", ".join(DEFAULT_RATE_LIMITS)
    if value is None or value is False:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("off", "none", "false", "0", "disabled"):
            return None
        items: dict[str, Any] = {}
        for part in text.split(","):
            name, sep, spec = part.partition("=")
            calls, sep2, secs = spec.partition("/")
            if not sep or not sep2:
                raise ConfigError(
                    f"{src}{value!r} is not a rate-limit list; use 'off' or "
                    f"name=calls/seconds,... with names {accepted}, e.g. host_query=100/60"
                )
            items[name.strip()] = (calls.strip(), secs.strip())
        value = items
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{src}{value!r} is not a rate-limit mapping; use None (no limits) or "
            f"{{name: (calls, seconds)}} with names {accepted}"
        )
    out = dict(DEFAULT_RATE_LIMITS)
    for name, spec in value.items():
        key = _BUCKET_ALIASES.get(str(name), str(name))
        if key not in DEFAULT_RATE_LIMITS:
            raise ConfigError(f"{src} unknown rate limit {name!r}; use one of {accepted}")
        if isinstance(spec, RateLimit):
            out[key] = spec
            continue
        try:
            calls, secs = spec
            n = int(calls)
            s = float(secs)
            if isinstance(calls, bool) or n != float(calls):
                raise ValueError
        except (TypeError, ValueError):
            raise ConfigError(
                f"{src} rate limit {name!r}={spec!r} must be (calls, seconds), e.g. (100, 60)"
            ) from None
        if n < 1 or not math.isfinite(s) or s <= 0:
            raise ConfigError(
                f"{src} rate limit {name!r}={spec!r} needs calls >= 1 and seconds > 0"
            )
        out[key] = RateLimit(n, s)
    return out


