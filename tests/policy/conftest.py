from __future__ import annotations

from collections.abc import Iterator

import pytest

from tw_bridge.policy import MemoryAudit, MemoryStore, PolicyEngine, PolicyGate, reset_process_state
from tw_bridge.policy._rules import default_policy

ENV = (
    "TW_POLICY_FILE",
    "TW_POLICY_DB",
    "TW_AUDIT_LOG",
    "TW_OPERATION_MODE",
    "TW_KILL_SWITCH",
    "TW_KILL_SWITCH_FILE",
)


@pytest.fixture(autouse=True)
def clean_policy_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    reset_process_state()
    yield
    reset_process_state()


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def audit(clock: Clock) -> MemoryAudit:
    return MemoryAudit(clock)


@pytest.fixture
def gate(store: MemoryStore, audit: MemoryAudit, clock: Clock) -> PolicyGate:
    return PolicyGate(engine=PolicyEngine(default_policy()), store=store, audit=audit, clock=clock)
