"""CrowdStrikeConfig: environment, keyword overrides, and ConfigError messages."""

from __future__ import annotations

import asyncio

import pytest

from tw_bridge import ConfigError, EDRBridge
from tw_bridge.connectors.crowdstrike import (
    DEFAULT_RATE_LIMITS,
    CrowdStrikeConfig,
    CrowdStrikeConnector,
    RateLimit,
)

CREDS = {"client_id": "abc", "client_secret": "s3cr3t-value-xyz"}


def env(**kw: str) -> dict[str, str]:
    base = {"TW_CROWDSTRIKE_CLIENT_ID": "abc", "TW_CROWDSTRIKE_CLIENT_SECRET": "s3cr3t-value-xyz"}
    base.update(kw)
    return base


@pytest.mark.parametrize(("raw", "region", "url"), [
    (None, "us-1", "https://api.crowdstrike.com"),
    ("us-2", "us-2", "https://api.us-2.crowdstrike.com"),
    ("EU-1", "eu-1", "https://api.eu-1.crowdstrike.com"),
    (" usgov-1 ", "usgov-1", "https://api.laggar.gcw.crowdstrike.com"),
    ("us-gov-1", "usgov-1", "https://api.laggar.gcw.crowdstrike.com"),
    ("US-GOV-2", "us-gov-2", "https://api.us-gov-2.crowdstrike.mil"),
])
def test_regions(raw: str | None, region: str, url: str) -> None:
    e = env() if raw is None else env(TW_CROWDSTRIKE_REGION=raw)
    cfg = CrowdStrikeConfig.from_env(e)
    assert (cfg.region, cfg.base_url, cfg.base_url_explicit) == (region, url, False)


def test_bad_region_names_variable_and_choices() -> None:
    with pytest.raises(ConfigError) as ei:
        CrowdStrikeConfig.from_env(env(TW_CROWDSTRIKE_REGION="eu1"))
    msg = str(ei.value)
    assert "TW_CROWDSTRIKE_REGION='eu1' is not a region" in msg
    for r in ("us-1", "us-2", "eu-1", "usgov-1", "us-gov-2"):
        assert r in msg
    with pytest.raises(ConfigError, match=r"region='mars' is not a region"):
        CrowdStrikeConfig.from_env({}, region="mars", **CREDS)


@pytest.mark.parametrize("missing", ["TW_CROWDSTRIKE_CLIENT_ID", "TW_CROWDSTRIKE_CLIENT_SECRET"])
def test_missing_credentials(missing: str) -> None:
    e = env()
    del e[missing]
    with pytest.raises(ConfigError) as ei:
        CrowdStrikeConfig.from_env(e)
    assert missing in str(ei.value)
    assert "TW_CROWDSTRIKE_CLIENT_ID" in str(ei.value)
    assert "TW_CROWDSTRIKE_CLIENT_SECRET" in str(ei.value)


def test_bridge_missing_credentials_is_value_error_before_network() -> None:
    with pytest.raises(ValueError, match="TW_CROWDSTRIKE_CLIENT_ID"):
        EDRBridge("crowdstrike")


def test_keywords_override_env() -> None:
    cfg = CrowdStrikeConfig.from_env(env(TW_CROWDSTRIKE_REGION="eu-1", TW_CROWDSTRIKE_TIMEOUT="9"),
                                     region="us-2", timeout=3, client_id="other")
    assert (cfg.region, cfg.timeout, cfg.client_id) == ("us-2", 3.0, "other")


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:1/", "http://[::1]:9",
                                 "https://falcon-proxy.example.com/api/"])
def test_base_url_accepted(url: str) -> None:
    cfg = CrowdStrikeConfig.from_env(env(TW_CROWDSTRIKE_BASE_URL=url))
    assert cfg.base_url == url.rstrip("/")
    assert cfg.base_url_explicit


@pytest.mark.parametrize(("url", "why"), [
    ("http://api.crowdstrike.com", "plain http"),
    ("ftp://x", "not an API base URL"),
    ("api.crowdstrike.com", "not an API base URL"),
    ("https://user:pw@host", "must not contain credentials"),
    ("https://host/?a=1", "must not contain credentials, a query"),
])
def test_base_url_rejected(url: str, why: str) -> None:
    with pytest.raises(ConfigError, match="TW_CROWDSTRIKE_BASE_URL") as ei:
        CrowdStrikeConfig.from_env(env(TW_CROWDSTRIKE_BASE_URL=url))
    assert why in str(ei.value)
    assert "pw@" not in str(ei.value)


@pytest.mark.parametrize(("var", "value", "text"), [
    ("TW_CROWDSTRIKE_TIMEOUT", "abc", "TW_CROWDSTRIKE_TIMEOUT='abc' is not a number"),
    ("TW_CROWDSTRIKE_TIMEOUT", "0", "out of range"),
    ("TW_CROWDSTRIKE_TIMEOUT", "nan", "out of range"),
    ("TW_CROWDSTRIKE_MEMBER_CID", "xyz", "TW_CROWDSTRIKE_MEMBER_CID='xyz' is not a customer id"),
    ("TW_CROWDSTRIKE_PROXY", "socks5://h:1", "is not a proxy URL"),
    ("TW_CROWDSTRIKE_CA_BUNDLE", "/nonexistent/ca.pem", "is not a file"),
    ("TW_CROWDSTRIKE_RATE_LIMITS", "host_query=fast", "name=calls/seconds"),
    ("TW_CROWDSTRIKE_RATE_LIMITS", "bogus=1/1", "unknown rate limit 'bogus'"),
    ("TW_CROWDSTRIKE_MAX_RETRIES", "99", "out of range"),
])
def test_bad_values_name_the_variable(var: str, value: str, text: str) -> None:
    with pytest.raises(ConfigError) as ei:
        CrowdStrikeConfig.from_env(env(**{var: value}))
    assert text in str(ei.value)


def test_bad_ca_bundle_content(tmp_path: pytest.TempPathFactory) -> None:
    p = tmp_path / "ca.pem"  # type: ignore[operator]
    p.write_text("not a certificate")
    with pytest.raises(ConfigError, match="could not be loaded as a PEM CA bundle"):
        CrowdStrikeConfig.from_env(env(TW_CROWDSTRIKE_CA_BUNDLE=str(p)))


def test_member_cid_and_proxy() -> None:
    cfg = CrowdStrikeConfig.from_env(env(TW_CROWDSTRIKE_MEMBER_CID="ABCDEF0123456789ABCDEF0123456789",
                                         TW_CROWDSTRIKE_PROXY="http://u:proxypass@proxy:3128"))
    assert cfg.member_cid == "abcdef0123456789abcdef0123456789"
    assert "proxypass" not in repr(cfg)


def test_rate_limits() -> None:
    assert CrowdStrikeConfig.from_env(env()).rate_limits == DEFAULT_RATE_LIMITS
    assert DEFAULT_RATE_LIMITS["host_query"] == RateLimit(100, 60.0)
    assert DEFAULT_RATE_LIMITS["detection_query"] == RateLimit(50, 60.0)
    assert DEFAULT_RATE_LIMITS["action"] == RateLimit(10, 60.0)
    assert CrowdStrikeConfig.from_env(env(), rate_limits=None).rate_limits is None
    assert CrowdStrikeConfig.from_env(env(), rate_limits=False).rate_limits is None
    assert CrowdStrikeConfig.from_env(env(TW_CROWDSTRIKE_RATE_LIMITS="off")).rate_limits is None
    cfg = CrowdStrikeConfig.from_env(env(TW_CROWDSTRIKE_RATE_LIMITS="host_query=10/1,action=2/5"))
    assert cfg.rate_limits is not None
    assert cfg.rate_limits["host_query"] == RateLimit(10, 1.0)
    assert cfg.rate_limits["action"] == RateLimit(2, 5.0)
    assert cfg.rate_limits["detection_query"] == DEFAULT_RATE_LIMITS["detection_query"]
    cfg = CrowdStrikeConfig.from_env(env(), rate_limits={"containment": (3, 1)})
    assert cfg.rate_limits is not None and cfg.rate_limits["action"] == RateLimit(3, 1.0)
    with pytest.raises(ConfigError, match=r"rate_limits= rate limit 'action'=\(0, 1\)"):
        CrowdStrikeConfig.from_env(env(), rate_limits={"action": (0, 1)})


def test_unknown_keyword_is_type_error() -> None:
    with pytest.raises(TypeError, match="regoin"):
        CrowdStrikeConfig.from_env(env(), regoin="us-1")


def test_repr_never_shows_secret() -> None:
    cfg = CrowdStrikeConfig.from_env(env())
    conn = CrowdStrikeConnector(config=cfg)
    for text in (repr(cfg), str(cfg), repr(conn)):
        assert "s3cr3t-value-xyz" not in text
    assert "client_secret='***'" in repr(cfg)


def test_no_network_at_construction_or_open() -> None:
    # Port 9 on loopback: nothing listens; any traffic would fail the calls below.
    async def main() -> None:
        conn = CrowdStrikeConnector("abc", "s3cr3t-value-xyz", base_url="http://127.0.0.1:9")
        await conn.open()
        assert conn.token_requests == 0
        await conn.close()

    asyncio.run(main())


def test_connector_positional_constructor() -> None:
    conn = CrowdStrikeConnector("abc", "s3cr3t-value-xyz", region="eu-1")
    assert conn.base_url == "https://api.eu-1.crowdstrike.com"
    assert conn.connector_type == "crowdstrike"
