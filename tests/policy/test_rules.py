from __future__ import annotations

from pathlib import Path

import pytest

from tw_bridge._errors import ConfigError
from tw_bridge.policy import EvalContext, PolicyEngine, load_policy, parse_policy, policy_from_env


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "policy.toml"
    p.write_text(text)
    return p


GOOD = """
mode = "autonomous"
approval_expiry_seconds = 600

[deny]
actions = ["wipe_host"]
target_patterns = ["^prod-db-"]

[rate_limits.scan_host]
max_per_hour = 2

[[rules]]
name = "lab hosts run freely"
action_patterns = ["*_host"]
target_patterns = ["^lab-"]
decision = "allowed"

[[rules]]
name = "confident ai scans"
action = "scan_host"
confidence_min = 0.8
proposer_type = "ai"
decision = "allowed"
modes = ["autonomous"]

[[rules]]
name = "high severity needs manager"
severity = ["critical"]
decision = "requires_approval"
approval_level = "manager"
reason = "critical incidents go to the manager"
"""


def test_good_file_loads_and_decides(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, GOOD))
    assert policy.mode == "autonomous"
    assert policy.approval_expiry_seconds == 600
    assert [r.name for r in policy.rules][0] == "lab hosts run freely"
    engine = PolicyEngine(policy)

    def decide(**kw: object) -> tuple[str, str | None, str | None]:
        d = engine.evaluate(EvalContext(**kw))  # type: ignore[arg-type]
        return d.decision, d.approval_level, d.rule

    assert decide(action="isolate_host", hostname="lab-7") == ("allowed", None, "lab hosts run freely")
    assert decide(action="wipe_host", hostname="lab-7")[0] == "denied"
    assert decide(action="isolate_host", hostname="prod-db-1")[2] == "target_protection"
    assert decide(action="scan_host", hostname="ws", confidence=0.8, proposer="ai")[0] == "allowed"
    assert decide(action="scan_host", hostname="ws", confidence=0.79, proposer="ai")[2] == "default"
    assert decide(action="scan_host", hostname="ws", confidence=None, proposer="ai")[2] == "default"
    assert decide(action="x", hostname="ws", severity="critical") == (
        "requires_approval", "manager", "high severity needs manager",
    )
    # sections the file leaves out keep their defaults? no: the file named [[rules]], so
    # the default rules are gone, but the default decision remains requires_approval/analyst
    assert decide(action="isolate_host", hostname="ws") == ("requires_approval", "analyst", "default")


def test_omitted_sections_keep_defaults(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, 'mode = "assisted"\n'))
    assert policy.rate_limits["isolate_host"].max_per_hour == 5
    assert "wipe_host" in policy.deny_actions
    assert policy.rules[0].name == "critical_targets_senior_approval"


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        ('[[rules]]\nname = "a"\ndecision = "alow"\n', 3, "rules[0].decision", "allowed"),
        ('[[rules]]\nname = "a"\ndecision = "allowed"\n\n[[rules]]\nname = "b"\n'
         'decision = "requires_approval"\napproval_level = "boss"\n', 8,
         "rules[1].approval_level", "executive"),
        ('[[rules]]\nname = "a"\ndecison = "allowed"\n', 3, "rules[0].decison", "unknown field"),
        ('[[rules]]\nname = "a"\n', 1, "rules[0]", "missing required field 'decision'"),
        ('[[rules]]\nname = "a"\ndecision = "allowed"\ntarget_patterns = ["("]\n', 4,
         "rules[0].target_patterns", "regular expression"),
        ('[[rules]]\nname = "a"\ndecision = "allowed"\nconfidence_min = 1.5\n', 4,
         "rules[0].confidence_min", "out of range"),
        ('\n\n[rate_limits.isolate_host]\nmax_per_hour = -1\n', 4,
         "rate_limits.isolate_host.max_per_hour", "whole number"),
        ('mode = "yolo"\n', 1, "mode", "supervised"),
        ('# comment\n[deny]\nactions = "wipe_host"\ntargets = []\n', 4, "deny.targets", "unknown"),
        ('[[rules]]\nname = "a"\ndecision = "allowed"\n[[rules]]\nname = "a"\ndecision = "denied"\n',
         5, "rules[1].name", "duplicate"),
    ],
)
def test_field_errors_name_file_line_field(
    tmp_path: Path, text: str, line: int, field: str, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    msg = str(info.value)
    assert str(path) in msg
    assert f"line {line}," in msg
    assert f"field {field}:" in msg
    assert words in msg
    assert isinstance(info.value, ValueError)


def test_syntax_error_names_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[[rules]]\nname = "a"\ndecision = allowed\n')
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    msg = str(info.value)
    assert str(path) in msg and "line 3," in msg and "rules[0].decision" in msg
    assert "invalid TOML" in msg


def test_multiline_string_does_not_confuse_lines(tmp_path: Path) -> None:
    text = '[[rules]]\nname = "a"\ndescription = """\ndecision = "x"\n"""\ndecision = "nope"\n'
    with pytest.raises(ConfigError, match=r"line 6, field rules\[0\]\.decision"):
        load_policy(write(tmp_path, text))


def test_missing_file_names_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_POLICY_FILE", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="TW_POLICY_FILE"):
        policy_from_env()


def test_mode_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert policy_from_env().mode == "supervised"
    path = write(tmp_path, 'mode = "assisted"\n')
    monkeypatch.setenv("TW_POLICY_FILE", str(path))
    assert policy_from_env().mode == "assisted"
    monkeypatch.setenv("TW_OPERATION_MODE", "Autonomous")
    assert policy_from_env().mode == "autonomous"
    assert policy_from_env(mode="supervised").mode == "supervised"
    monkeypatch.setenv("TW_OPERATION_MODE", "manual")
    with pytest.raises(ConfigError, match="TW_OPERATION_MODE"):
        policy_from_env()


def test_parse_policy_string_source() -> None:
    with pytest.raises(ConfigError, match="<string>"):
        parse_policy("rules = 3")
