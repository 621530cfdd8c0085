"""Shared fixtures. Area fixtures live in each folder's own conftest.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tw_bridge import EDRBridge


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees the developer's TW_* settings."""
    import os

    for key in list(os.environ):
        if key.startswith("TW_"):
            monkeypatch.delenv(key)


@pytest.fixture(autouse=True)
def _fresh_policy_state() -> Iterator[None]:
    """Each test starts with an empty in-memory approval store and audit trail."""
    try:
        from tw_bridge.policy import reset_process_state as _reset_process_state
    except ImportError:
        yield
        return
    _reset_process_state()
    yield
    _reset_process_state()


def approve_all(request: dict) -> str:
    return "test-analyst"


@pytest.fixture
def mock_bridge() -> Iterator[EDRBridge]:
    with EDRBridge("mock", with_sample_data=True, approver=approve_all) as bridge:
        yield bridge


@pytest.fixture
def thread_baseline() -> int:
    return threading.active_count()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Long soaks (marker ``slow``) run when selected with ``-m slow`` or when
    ``TW_SOAK_SECONDS`` gives their duration (``.ci/run`` sets 20); otherwise they are
    deselected (not skipped), keeping the default suite short."""
    import os

    if os.environ.get("TW_SOAK_SECONDS") or "slow" in (config.option.markexpr or ""):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt during the test, even when a background shell
    started us with SIGINT ignored (Python then installs no handler of its own)."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
