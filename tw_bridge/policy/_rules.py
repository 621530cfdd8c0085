"""The rule model, the built-in defaults and the TOML loader.

A policy is an ordered list of rules (first match wins), a deny list, per-action rate
limits, the operation mode and the decision for actions no rule matches. A TOML file
(``TW_POLICY_FILE``) replaces the built-in value of each top-level section it names and
keeps the defaults for the sections it leaves out. A bad file raises
:class:`~tw_bridge._errors.ConfigError` naming the file, the line and the field.
"""

from __future__ import annotations

import fnmatch
import math
import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from .._errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = [
    "APPROVAL_LEVELS",
    "DECISIONS",
    "MODES",
    "Policy",
    "RateLimit",
    "Rule",
    "default_policy",
    "level_rank",
    "load_policy",
    "normalize_level",
    "parse_policy",
    "policy_from_env",
]

#: Approval levels, lowest first (the older API's names).
APPROVAL_LEVELS = ("analyst", "senior", "manager", "executive")
#: Decisions a rule may give.
DECISIONS = ("allowed", "denied", "requires_approval")
#: Operation modes; ``supervised`` is the default, as in the older implementation.
MODES = ("assisted", "supervised", "autonomous")

_DECISION_SYNONYMS = {
    "allowed": "allowed",
    "allow": "allowed",
    "denied": "denied",
    "deny": "denied",
    "requires_approval": "requires_approval",
    "require_approval": "requires_approval",
}

DEFAULT_EXPIRY_SECONDS = 3600.0


def normalize_level(level: object) -> str:
    """Return the canonical approval level name, or raise ``ValueError``."""
    if isinstance(level, str) and level.strip().lower() in APPROVAL_LEVELS:
        return level.strip().lower()
    raise ValueError(
        f"Invalid approval level: {level!r}. Must be one of: {', '.join(APPROVAL_LEVELS)}"
    )


def level_rank(level: str) -> int:
    """0 for ``analyst`` … 3 for ``executive``."""
    return APPROVAL_LEVELS.index(level)


@attrs.frozen
class RateLimit:
    """At most ``max_per_hour`` / ``max_per_day`` executions of one action (None: no limit)."""

    max_per_hour: int | None = None
    max_per_day: int | None = None


@attrs.frozen
class Rule:
    """One policy rule. Every condition given must hold for the rule to match.

    ``action`` is an exact action name, ``action_patterns`` are shell globs; a rule with
    neither matches every action. ``target_patterns`` are regular expressions searched in
    the hostname and the device id. ``target_tags`` match when the target carries any of
    them (case-insensitive). ``confidence_min`` is inclusive and never matches a request
    without a confidence. ``modes`` limits the rule to some operation modes.
    """

    name: str
    decision: str
    description: str | None = None
    action: str | None = None
    action_patterns: tuple[str, ...] = ()
    target_patterns: tuple[re.Pattern[str], ...] = ()
    target_tags: tuple[str, ...] = ()
    severity: tuple[str, ...] = ()
    confidence_min: float | None = None
    proposer_type: tuple[str, ...] = ()
    approval_level: str | None = None
    reason: str | None = None
    modes: tuple[str, ...] = ()

    def matches(
        self,
        *,
        action: str,
        hostname: str | None,
        device_id: str | None,
        tags: Iterable[str],
        confidence: float | None,
        severity: str | None,
        proposer: str | None,
        mode: str,
    ) -> bool:
        if self.modes and mode not in self.modes:
            return False
        if self.action is not None or self.action_patterns:
            by_name = self.action is not None and action == self.action
            by_glob = any(fnmatch.fnmatchcase(action, p) for p in self.action_patterns)
            if not (by_name or by_glob):
                return False
        if self.target_patterns:
            ids = [t for t in (hostname, device_id) if t]
            if not any(p.search(t) for p in self.target_patterns for t in ids):
                return False
        if self.target_tags:
            have = {t.lower() for t in tags}
            if not any(t.lower() in have for t in self.target_tags):
                return False
        if self.severity and (severity is None or severity.lower() not in self.severity):
            return False
        if self.confidence_min is not None and (
            confidence is None or not confidence >= self.confidence_min
        ):
            return False
        if self.proposer_type and (proposer is None or proposer.lower() not in self.proposer_type):
            return False
        return True


@attrs.frozen
class Policy:
    """Everything the engine needs to decide; built by :func:`load_policy`."""

    rules: tuple[Rule, ...]
    deny_actions: tuple[str, ...] = ()
    deny_target_patterns: tuple[re.Pattern[str], ...] = ()
    rate_limits: Mapping[str, RateLimit] = attrs.field(factory=dict)
    mode: str = "supervised"
    default_decision: str = "requires_approval"
    default_approval_level: str = "analyst"
    approval_expiry_seconds: float = DEFAULT_EXPIRY_SECONDS
    source: str | None = None

    def with_mode(self, mode: str) -> Policy:
        return attrs.evolve(self, mode=_check_mode(mode, "mode="))


def _check_mode(mode: str, where: str) -> str:
    value = mode.strip().lower()
    if value not in MODES:
        raise ConfigError(
            f"{where}{mode!r} is not an operation mode; use one of {', '.join(MODES)}"
        )
    return value


_RESPONSE_ACTIONS = ("isolate_host", "unisolate_host", "scan_host")


def default_policy() -> Policy:
    """The policy used when no file is configured (see ``docs/policy.md``)."""
    return Policy(
        rules=(
            Rule(
                name="critical_targets_senior_approval",
                description="Targets tagged critical or domain-controller need senior approval",
                target_tags=("critical", "domain-controller"),
                decision="requires_approval",
                approval_level="senior",
            ),
            Rule(
                name="auto_approve_low_risk_high_confidence",
                description="Tickets and notifications run on their own above 0.9 confidence",
                action_patterns=("create_ticket", "add_ticket_comment", "send_notification"),
                # The older engine compared "confidence > 0.9"; the next float up keeps
                # exactly that boundary with an inclusive minimum.
                confidence_min=math.nextafter(0.9, 1.0),
                decision="allowed",
            ),
            Rule(
                name="response_actions_require_approval",
                description="Isolation, release and scans need analyst approval",
                action_patterns=_RESPONSE_ACTIONS,
                decision="requires_approval",
                approval_level="analyst",
            ),
        ),
        deny_actions=("wipe_host", "delete_*"),
        rate_limits={
            "isolate_host": RateLimit(max_per_hour=5, max_per_day=20),
            "disable_user": RateLimit(max_per_hour=10, max_per_day=50),
        },
    )


# --------------------------------------------------------------------------- loading

_TOP_KEYS = (
    "mode",
    "default_decision",
    "default_approval_level",
    "approval_expiry_seconds",
    "deny",
    "rate_limits",
    "rules",
)
_RULE_KEYS = (
    "name",
    "description",
    "action",
    "action_patterns",
    "target_patterns",
    "target_tags",
    "severity",
    "confidence_min",
    "proposer_type",
    "decision",
    "approval_level",
    "reason",
    "modes",
)
_DENY_KEYS = ("actions", "target_patterns")
_LIMIT_KEYS = ("max_per_hour", "max_per_day")

_Path = tuple[str | int, ...]


def _field_name(path: _Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


_BARE = r"[A-Za-z0-9_-]+"
_QUOTED = r"\"(?:[^\"\\]|\\.)*\"|'[^']*'"
_KEY = rf"(?:{_BARE}|{_QUOTED})"
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_KEY_LINE = re.compile(rf"^\s*({_DOTTED})\s*=")
_TABLE_LINE = re.compile(rf"^\s*\[\s*({_DOTTED})\s*\]")
_ARRAY_LINE = re.compile(rf"^\s*\[\[\s*({_DOTTED})\s*\]\]")
_KEY_PART = re.compile(_KEY)


def _split_key(dotted: str) -> tuple[str, ...]:
    parts = []
    for m in _KEY_PART.finditer(dotted):
        k = m.group(0)
        parts.append(k[1:-1] if k[:1] in "\"'" else k)
    return tuple(parts)


class _Locator:
    """Line numbers of tables and keys: tomllib reports none for well-formed TOML."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.where: dict[_Path, int] = {}
        self.key_on_line: dict[int, _Path] = {}
        counts: dict[tuple[str, ...], int] = {}
        prefix: _Path = ()
        in_string: str | None = None
        for n, raw in enumerate(self.lines, start=1):
            if in_string is not None:
                if raw.count(in_string) % 2 == 1:
                    in_string = None
                continue
            stripped = raw.strip()
            if not stripped or stripped.startswith("#"):
                continue
            m = _ARRAY_LINE.match(raw)
            if m:
                parts = _split_key(m.group(1))
                idx = counts.get(parts, 0)
                counts[parts] = idx + 1
                prefix = (*parts, idx)
                self.where.setdefault(prefix, n)
                self.where.setdefault(parts, n)
                continue
            m = _TABLE_LINE.match(raw)
            if m:
                prefix = _split_key(m.group(1))
                self.where.setdefault(prefix, n)
                continue
            m = _KEY_LINE.match(raw)
            if m:
                path = (*prefix, *_split_key(m.group(1)))
                self.where.setdefault(path, n)
                self.key_on_line[n] = path
                rest = raw[m.end() :]
                for delim in ('"""', "'''"):
                    if rest.count(delim) % 2 == 1:
                        in_string = delim
                        break

    def line_of(self, path: _Path) -> int | None:
        for cut in range(len(path), -1, -1):
            line = self.where.get(path[:cut])
            if line is not None:
                return line
        return None


class _Loader:
    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.loc = _Locator(text)

    def fail(self, path: _Path, problem: str, line: int | None = None) -> ConfigError:
        line = line if line is not None else self.loc.line_of(path)
        where = f"line {line}" if line is not None else "line ?"
        return ConfigError(
            f"policy file {self.source}, {where}, field {_field_name(path)}: {problem}"
        )

    # -- typed getters ------------------------------------------------------------

    def table(self, value: object, path: _Path) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a table, got {type(value).__name__}")
        return value

    def check_keys(self, table: Mapping[str, Any], allowed: tuple[str, ...], path: _Path) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(
                    (*path, key), f"unknown field {key!r}; accepted fields: {', '.join(allowed)}"
                )

    def string(self, value: object, path: _Path) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, f"expected a non-empty string, got {value!r}")
        return value

    def strings(self, value: object, path: _Path) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise self.fail(path, f"expected a string or a list of strings, got {value!r}")
        return tuple(self.string(v, path) for v in value)

    def regexes(self, value: object, path: _Path) -> tuple[re.Pattern[str], ...]:
        out = []
        for pattern in self.strings(value, path):
            try:
                out.append(re.compile(pattern))
            except re.error as exc:
                raise self.fail(path, f"{pattern!r} is not a regular expression: {exc}") from exc
        return tuple(out)

    def number(self, value: object, path: _Path, *, low: float, high: float | None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise self.fail(path, f"expected a number, got {value!r}")
        if value < low or (high is not None and value > high):
            upper = f" and {high}" if high is not None else ""
            raise self.fail(path, f"{value!r} is out of range; use a number between {low}{upper}")
        return float(value)

    def count(self, value: object, path: _Path) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(path, f"expected a whole number >= 0, got {value!r}")
        return value

    def choice(self, value: object, path: _Path, choices: Mapping[str, str], what: str) -> str:
        key = value.strip().lower() if isinstance(value, str) else None
        if key is None or key not in choices:
            accepted = ", ".join(dict.fromkeys(choices.values()))
            raise self.fail(path, f"{value!r} is not {what}; use one of {accepted}")
        return choices[key]

    # -- sections -----------------------------------------------------------------

    def policy(self, data: dict[str, Any]) -> Policy:
        self.check_keys(data, _TOP_KEYS, ())
        base = default_policy()
        changes: dict[str, Any] = {"source": self.source}
        levels = {lv: lv for lv in APPROVAL_LEVELS}
        if "mode" in data:
            changes["mode"] = self.choice(data["mode"], ("mode",), {m: m for m in MODES}, "a mode")
        if "default_decision" in data:
            changes["default_decision"] = self.choice(
                data["default_decision"], ("default_decision",), _DECISION_SYNONYMS, "a decision"
            )
        if "default_approval_level" in data:
            changes["default_approval_level"] = self.choice(
                data["default_approval_level"], ("default_approval_level",), levels, "a level"
            )
        if "approval_expiry_seconds" in data:
            changes["approval_expiry_seconds"] = self.number(
                data["approval_expiry_seconds"], ("approval_expiry_seconds",), low=1, high=None
            )
        if "deny" in data:
            deny = self.table(data["deny"], ("deny",))
            self.check_keys(deny, _DENY_KEYS, ("deny",))
            changes["deny_actions"] = self.strings(deny.get("actions", []), ("deny", "actions"))
            changes["deny_target_patterns"] = self.regexes(
                deny.get("target_patterns", []), ("deny", "target_patterns")
            )
        if "rate_limits" in data:
            limits = self.table(data["rate_limits"], ("rate_limits",))
            out: dict[str, RateLimit] = {}
            for action, spec in limits.items():
                path: _Path = ("rate_limits", action)
                spec = self.table(spec, path)
                self.check_keys(spec, _LIMIT_KEYS, path)
                hour = spec.get("max_per_hour")
                day = spec.get("max_per_day")
                out[action] = RateLimit(
                    max_per_hour=None
                    if hour is None
                    else self.count(hour, (*path, "max_per_hour")),
                    max_per_day=None if day is None else self.count(day, (*path, "max_per_day")),
                )
            changes["rate_limits"] = out
        if "rules" in data:
            raw_rules = data["rules"]
            if not isinstance(raw_rules, list):
                raise self.fail(("rules",), "expected an array of tables ([[rules]])")
            rules = [self.rule(r, ("rules", i)) for i, r in enumerate(raw_rules)]
            seen: set[str] = set()
            for i, rule in enumerate(rules):
                if rule.name in seen:
                    raise self.fail(("rules", i, "name"), f"duplicate rule name {rule.name!r}")
                seen.add(rule.name)
            changes["rules"] = tuple(rules)
        return attrs.evolve(base, **changes)

    def rule(self, value: object, path: _Path) -> Rule:
        spec = self.table(value, path)
        self.check_keys(spec, _RULE_KEYS, path)
        for required in ("name", "decision"):
            if required not in spec:
                raise self.fail(path, f"missing required field {required!r}")

        def opt_str(key: str) -> str | None:
            return None if key not in spec else self.string(spec[key], (*path, key))

        def lower_list(key: str) -> tuple[str, ...]:
            return tuple(s.lower() for s in self.strings(spec.get(key, []), (*path, key)))

        decision = self.choice(
            spec["decision"], (*path, "decision"), _DECISION_SYNONYMS, "a decision"
        )
        level: str | None = None
        if "approval_level" in spec:
            level = self.choice(
                spec["approval_level"],
                (*path, "approval_level"),
                {lv: lv for lv in APPROVAL_LEVELS},
                "an approval level",
            )
            if decision != "requires_approval":
                raise self.fail(
                    (*path, "approval_level"),
                    f'approval_level is only meaningful with decision = "requires_approval" '
                    f"(this rule's decision is {decision!r})",
                )
        elif decision == "requires_approval":
            level = "analyst"
        modes = lower_list("modes")
        for m in modes:
            if m not in MODES:
                raise self.fail(
                    (*path, "modes"), f"{m!r} is not a mode; use one of {', '.join(MODES)}"
                )
        confidence = None
        if "confidence_min" in spec:
            confidence = self.number(
                spec["confidence_min"], (*path, "confidence_min"), low=0, high=1
            )
        return Rule(
            name=self.string(spec["name"], (*path, "name")),
            description=opt_str("description"),
            action=opt_str("action"),
            action_patterns=self.strings(
                spec.get("action_patterns", []), (*path, "action_patterns")
            ),
            target_patterns=self.regexes(
                spec.get("target_patterns", []), (*path, "target_patterns")
            ),
            target_tags=lower_list("target_tags"),
            severity=lower_list("severity"),
            confidence_min=confidence,
            proposer_type=lower_list("proposer_type"),
            decision=decision,
            approval_level=level,
            reason=opt_str("reason"),
            modes=modes,
        )


_TOML_POS = re.compile(r"at line (\d+), column (\d+)")


def parse_policy(text: str, source: str = "<string>") -> Policy:
    """Parse policy TOML ``text``; ``source`` names it in error messages."""
    loader = _Loader(source, text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        m = _TOML_POS.search(str(exc))
        if line is None and m:
            line = int(m.group(1))
        path: _Path = loader.loc.key_on_line.get(line or -1, ())
        if not path and line is not None:
            # The enclosing table: the nearest header or key above the bad line.
            above = [p for p, n in loader.loc.where.items() if n <= line]
            if above:
                path = max(above, key=lambda p: loader.loc.where[p])
        raise loader.fail(path, f"invalid TOML: {exc}", line=line) from exc
    return loader.policy(data)


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read and parse the policy file at ``path``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"policy file {p} cannot be read ({exc.strerror or exc}); "
            "set TW_POLICY_FILE to a readable TOML file or unset it for the defaults"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"policy file {p}, line ?, field (file): not UTF-8 text: {exc}") from exc
    return parse_policy(text, str(p))


def policy_from_env(
    policy_file: str | os.PathLike[str] | None = None,
    mode: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Policy:
    """The policy from ``policy_file`` or ``TW_POLICY_FILE`` (else the defaults), with the
    mode from ``mode=``, then ``TW_OPERATION_MODE``, then the file, then ``supervised``."""
    env = os.environ if env is None else env
    source = policy_file if policy_file is not None else (env.get("TW_POLICY_FILE") or None)
    policy = load_policy(source) if source else default_policy()
    if mode is not None:
        return policy.with_mode(mode)
    env_mode = env.get("TW_OPERATION_MODE")
    if env_mode:
        return attrs.evolve(policy, mode=_check_mode(env_mode, "TW_OPERATION_MODE="))
    return policy
