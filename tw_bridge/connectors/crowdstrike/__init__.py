"""The CrowdStrike Falcon connector.

::

    _config         CrowdStrikeConfig.from_env: TW_CROWDSTRIKE_* + keyword overrides
    _http           one aiohttp session; envelope, errors, retries, trace ids
    _auth           OAuth2 token: cached, single-flight, region, revoke
    _ratelimit      client-side sliding-window budgets
    _operations     the Falcon operations used (scope, budget, retry class)
    _falcon_models  attrs models of Falcon records (cattrs)
    _hosts _alerts _actions _rtr _rtr_parse   the features
    _connector      CrowdStrikeConnector (EDRConnector)
"""

from __future__ import annotations

from ._config import DEFAULT_RATE_LIMITS, REGIONS, CrowdStrikeConfig, RateLimit
from ._connector import CrowdStrikeConnector

__all__ = [
    "DEFAULT_RATE_LIMITS",
    "REGIONS",
    "CrowdStrikeConfig",
    "CrowdStrikeConnector",
    "RateLimit",
]
