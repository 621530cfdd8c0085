"""Fixtures for the Falcon emulator tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

import pytest
import requests

from tw_bridge.testing.falcon import FalconEmulator

T = TypeVar("T")


@pytest.fixture(scope="module")
def _shared_emu() -> Iterator[FalconEmulator]:
    with FalconEmulator(hosts=200, seed=1, containment_delay=0.05, scan_delay=0.1,
                        rtr_delay=0.05) as e:
        yield e


@pytest.fixture
def emu(_shared_emu: FalconEmulator) -> Iterator[FalconEmulator]:
    """A module-wide emulator (200 hosts); faults are cleared after each test."""
    yield _shared_emu
    _shared_emu.faults.clear()


@pytest.fixture
def fresh_emu() -> Iterator[FalconEmulator]:
    with FalconEmulator(hosts=30, seed=7, containment_delay=0.05, scan_delay=0.1,
                        rtr_delay=0.05) as e:
        yield e


def falcon(cls: type[T], emu: FalconEmulator, **kw: Any) -> T:
    """A falconpy service class pointed at the emulator.

    falconpy follows the X-Cs-Region header of the token reply to the *real* cloud (its
    autodiscovery compares "us1" with "US1" and always switches), so after the constructor's
    login we pin base_url back to the emulator.
    """
    kw.setdefault("client_id", emu.client_id)
    kw.setdefault("client_secret", emu.client_secret)
    svc = cls(base_url=emu.base_url, **kw)  # type: ignore[call-arg]
    svc.base_url = emu.base_url  # type: ignore[attr-defined]
    return svc


def token(emu: FalconEmulator, client_id: str | None = None, secret: str | None = None) -> str:
    r = requests.post(f"{emu.base_url}/oauth2/token",
                      data={"client_id": client_id or emu.client_id,
                            "client_secret": secret or emu.client_secret}, timeout=10)
    assert r.status_code == 201, r.text
    return str(r.json()["access_token"])


def api(emu: FalconEmulator, method: str, path: str, tok: str | None = None,
        **kw: Any) -> requests.Response:
    headers = kw.pop("headers", {})
    if tok is not None:
        headers["Authorization"] = f"Bearer {tok}"
    kw.setdefault("timeout", 10)
    return requests.request(method, emu.base_url + path, headers=headers, **kw)
