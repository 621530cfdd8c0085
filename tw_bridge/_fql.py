"""A small, pure-Python implementation of a subset of Falcon Query Language (FQL).

Used by the Falcon emulator (to evaluate filters over device and alert records) and by the
connector (to validate user-supplied FQL before sending it).  No third-party imports.

Supported subset::

    expr     := and_expr (',' and_expr)*          # ',' is OR
    and_expr := term (('+' | <space>) term)*      # '+' is AND, binds tighter than OR
    term     := '(' expr ')' | prop ':' [op] value
    op       := '!' | '>' | '>=' | '<' | '<=' | '~' | '!~' | '*'   ('*' only before a quote)
    value    := 'quoted' | "quoted" | number | true | false | null | word
              | '[' value (',' value)* ']'

A bare space between two complete terms is AND: a client that does not percent-encode ``+`` in
the query string has its ``+`` decoded to a space by the server.

Matching semantics (mirroring Falcon as far as it is documented):

* ``prop:'value'`` -- string equality, case-insensitive; unescaped ``*`` is a wildcard.
* ``prop:*'*x*'`` -- case-insensitive wildcard match.
* ``prop:['a','b']`` -- exact, case-sensitive membership (no wildcards).
* ``prop:!...`` -- negation of the above.
* ``prop:>5`` / ``>=`` / ``<`` / ``<=`` -- numbers, ISO-8601 timestamps (and ``'now-7d'``-style
  relative times), otherwise plain string order.
* ``prop:~'x'`` -- case-insensitive substring ("text match").
* Dotted properties (``device.device_id``) walk nested dicts; a list-valued field matches if any
  element matches.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "And",
    "Compare",
    "FQLSyntaxError",
    "Node",
    "Or",
    "matches",
    "parse",
    "quote",
]

MAX_FILTER_LENGTH = 65536


class FQLSyntaxError(ValueError):
    """Raised when a filter is not valid FQL (in the supported subset)."""

    def __init__(self, message: str, filter_text: str = "", position: int | None = None) -> None:
        self.filter_text = filter_text
        self.position = position
        if position is not None:
            message = f"{message} at position {position}"
        super().__init__(message)


# --------------------------------------------------------------------------------------------
# AST


class Node:
    """Base class of FQL AST nodes."""

    __slots__ = ()

    def evaluate(self, record: dict[str, Any]) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class Or(Node):
    children: tuple[Node, ...]

    def evaluate(self, record: dict[str, Any]) -> bool:
        return any(c.evaluate(record) for c in self.children)


@dataclass(frozen=True)
class And(Node):
    children: tuple[Node, ...]

    def evaluate(self, record: dict[str, Any]) -> bool:
        return all(c.evaluate(record) for c in self.children)


@dataclass(frozen=True)
class Literal:
    """A value in a filter.  ``kind`` is 'str', 'num', 'bool' or 'null'."""

    kind: str
    value: Any
    quoted: bool = False
    # compiled regex when the quoted value contains unescaped '*'
    pattern: re.Pattern[str] | None = None


@dataclass(frozen=True)
class Compare(Node):
    """``prop:<op>value``.

    op is one of: 'eq' (scalar, case-insensitive, wildcards), 'ieq' (``*'...'``), 'in' (list,
    exact), 'gt', 'ge', 'lt', 'le', 'text' (``~``).
    """

    prop: str
    op: str
    values: tuple[Literal, ...]
    negate: bool = False

    def evaluate(self, record: dict[str, Any]) -> bool:
        hit = any(_match_value(self, v) for v in _lookup(record, self.prop))
        return hit != self.negate


# --------------------------------------------------------------------------------------------
# Tokenizer

_PROP_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_WORD_RE = re.compile(r"[A-Za-z0-9_.\-@/]+")
_VALUE_WORD_RE = re.compile(r"[A-Za-z0-9_.\-:@/]+")
_NUM_RE = re.compile(r"-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


@dataclass
class _Tok:
    kind: str  # 'prop' handled by parser; kinds: '(', ')', '[', ']', ',', '+', ':', 'op', 'str',
    # 'word', 'eof'
    text: str
    pos: int
    space_before: bool
    raw_value: str = ""
    wildcard_pattern: re.Pattern[str] | None = None


def _read_quoted(s: str, i: int) -> tuple[str, re.Pattern[str] | None, int]:
    """Read a quoted literal starting at s[i] (the quote).  Returns (value, pattern, next_i)."""
    q = s[i]
    j = i + 1
    out: list[str] = []
    regex_parts: list[str] = []
    has_wild = False
    n = len(s)
    while j < n:
        c = s[j]
        if c == "\\":
            if j + 1 >= n:
                raise FQLSyntaxError("unterminated escape in quoted value", s, j)
            nxt = s[j + 1]
            out.append(nxt)
            regex_parts.append(re.escape(nxt))
            j += 2
            continue
        if c == q:
            value = "".join(out)
            pat = None
            if has_wild:
                pat = re.compile("".join(regex_parts), re.IGNORECASE | re.DOTALL)
            return value, pat, j + 1
        if c == "*":
            has_wild = True
            regex_parts.append(".*")
        else:
            regex_parts.append(re.escape(c))
        out.append(c)
        j += 1
    raise FQLSyntaxError("unterminated quoted value", s, i)


def _tokenize(s: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i = 0
    n = len(s)
    space = False
    in_value = False  # after ':' (or inside a list) unquoted words may contain ':'
    in_list = False
    while i < n:
        c = s[i]
        if c in " \t\r\n":
            space = True
            i += 1
            continue
        if c in "()[],+:":
            toks.append(_Tok(c, c, i, space))
            if c == "[":
                in_list = True
            elif c == "]":
                in_list = False
            in_value = c == ":" or c == "[" or (c == "," and in_list)
            i += 1
        elif c in "'\"":
            value, pat, j = _read_quoted(s, i)
            toks.append(_Tok("str", s[i:j], i, space, value, pat))
            i = j
            in_value = False
        elif c in "><":
            if i + 1 < n and s[i + 1] == "=":
                toks.append(_Tok("op", c + "=", i, space))
                i += 2
            else:
                toks.append(_Tok("op", c, i, space))
                i += 1
        elif c == "!":
            if i + 1 < n and s[i + 1] == "~":
                toks.append(_Tok("op", "!~", i, space))
                i += 2
            else:
                toks.append(_Tok("op", "!", i, space))
                i += 1
        elif c in "~*":
            toks.append(_Tok("op", c, i, space))
            i += 1
        else:
            m = (_VALUE_WORD_RE if in_value else _WORD_RE).match(s, i)
            if not m:
                raise FQLSyntaxError(f"unexpected character {c!r}", s, i)
            toks.append(_Tok("word", m.group(0), i, space))
            i = m.end()
            in_value = False
        space = False
    toks.append(_Tok("eof", "", n, space))
    return toks


# --------------------------------------------------------------------------------------------
# Parser


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def error(self, msg: str, tok: _Tok | None = None) -> FQLSyntaxError:
        t = tok or self.peek()
        return FQLSyntaxError(msg, self.text, t.pos)

    def parse(self) -> Node:
        if self.peek().kind == "eof":
            raise FQLSyntaxError("empty filter", self.text, 0)
        node = self.parse_or()
        t = self.peek()
        if t.kind != "eof":
            raise self.error(f"unexpected {t.text!r}")
        return node

    def parse_or(self) -> Node:
        children = [self.parse_and()]
        while self.peek().kind == ",":
            self.next()
            children.append(self.parse_and())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def parse_and(self) -> Node:
        children = [self.parse_term()]
        while True:
            t = self.peek()
            if t.kind == "+":
                self.next()
                children.append(self.parse_term())
            elif t.space_before and t.kind in ("word", "("):
                # '+' decoded to a space by a client that did not percent-encode it
                children.append(self.parse_term())
            else:
                break
        return children[0] if len(children) == 1 else And(tuple(children))

    def parse_term(self) -> Node:
        t = self.next()
        if t.kind == "(":
            node = self.parse_or()
            close = self.next()
            if close.kind != ")":
                raise self.error("expected ')'", close)
            return node
        if t.kind != "word" or not _PROP_RE.fullmatch(t.text):
            if t.kind == "eof":
                raise self.error("expected a property name, got end of filter", t)
            raise self.error(f"expected a property name, got {t.text!r}", t)
        prop = t.text
        colon = self.next()
        if colon.kind != ":":
            raise self.error(f"expected ':' after property {prop!r}", colon)
        return self.parse_comparison(prop)

    def parse_comparison(self, prop: str) -> Node:
        negate = False
        op = "eq"
        t = self.peek()
        if t.kind == "op" and not t.space_before:
            self.next()
            if t.text == "!":
                negate = True
                t2 = self.peek()
                if t2.kind == "op" and t2.text in ("*", "~", ">", ">=", "<", "<="):
                    if t2.text in (">", ">=", "<", "<="):
                        raise self.error("'!' cannot be combined with a comparison", t2)
                    self.next()
                    op = "ieq" if t2.text == "*" else "text"
            elif t.text == "!~":
                negate, op = True, "text"
            elif t.text == "*":
                op = "ieq"
            elif t.text == "~":
                op = "text"
            else:
                op = {">": "gt", ">=": "ge", "<": "lt", "<=": "le"}[t.text]
        v = self.peek()
        if v.kind == "[":
            if op != "eq":
                raise self.error("a list cannot follow an operator other than '!'", v)
            self.next()
            values: list[Literal] = []
            if self.peek().kind == "]":
                raise self.error("empty list")
            while True:
                values.append(self.parse_literal(in_list=True))
                sep = self.next()
                if sep.kind == "]":
                    break
                if sep.kind != ",":
                    raise self.error("expected ',' or ']' in list", sep)
            return Compare(prop, "in", tuple(values), negate)
        lit = self.parse_literal(in_list=False)
        if op == "ieq" and not lit.quoted:
            raise self.error("'*' must be followed by a quoted value", v)
        if op == "ieq" and lit.pattern is None:
            lit = Literal("str", lit.value, True, re.compile(re.escape(lit.value), re.IGNORECASE))
        if op in ("gt", "ge", "lt", "le") and lit.kind not in ("num", "str"):
            raise self.error("comparison needs a number, timestamp or string", v)
        if op in ("gt", "ge", "lt", "le") and lit.kind == "str":
            _check_comparable_str(lit.value)
        return Compare(prop, op, (lit,), negate)

    def parse_literal(self, in_list: bool) -> Literal:
        t = self.next()
        if t.kind == "str":
            if in_list:
                return Literal("str", t.raw_value, True, None)
            return Literal("str", t.raw_value, True, t.wildcard_pattern)
        if t.kind == "word":
            w = t.text
            if _NUM_RE.fullmatch(w):
                try:
                    num: float | int = float(w) if any(ch in w for ch in ".eE") else int(w)
                except ValueError:  # e.g. more digits than int() accepts
                    raise self.error("number out of range", t) from None
                return Literal("num", num)
            lw = w.lower()
            if lw in ("true", "false"):
                return Literal("bool", lw == "true")
            if lw == "null":
                return Literal("null", None)
            return Literal("str", w)
        if t.kind == "eof":
            raise self.error("expected a value, got end of filter", t)
        raise self.error(f"expected a value, got {t.text!r}", t)


def _check_comparable_str(value: str) -> None:
    # Any string is comparable (lexicographically); nothing to validate beyond being a string.
    return None


@functools.lru_cache(maxsize=1024)
def parse(filter: str) -> Node:  # noqa: A002 - name fixed by the public interface
    """Parse an FQL filter into an AST.  Raises :class:`FQLSyntaxError` on invalid input."""
    if not isinstance(filter, str):
        raise FQLSyntaxError("filter must be a string")
    if len(filter) > MAX_FILTER_LENGTH:
        raise FQLSyntaxError(f"filter longer than {MAX_FILTER_LENGTH} characters")
    try:
        return _Parser(filter).parse()
    except RecursionError:
        raise FQLSyntaxError("filter nested too deeply", filter) from None


# --------------------------------------------------------------------------------------------
# Evaluation


def matches(node: Node, record: dict[str, Any]) -> bool:
    """Evaluate a parsed filter against a (nested) record."""
    return node.evaluate(record)


def _lookup(record: Any, prop: str) -> Iterator[Any]:
    """Yield the leaf values at a dotted path; lists are flattened (any element may match)."""
    if isinstance(record, dict) and prop in record:
        yield from _flatten(record[prop])
        return
    head, sep, rest = prop.partition(".")
    if not sep:
        return
    if isinstance(record, dict):
        if head not in record:
            return
        sub = record[head]
        items = sub if isinstance(sub, list) else [sub]
        for item in items:
            yield from _lookup(item, rest)


def _flatten(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        for v in value:
            yield from _flatten(v)
    else:
        yield value


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def _match_value(cmp: Compare, value: Any) -> bool:
    op = cmp.op
    if op == "in":
        return any(_exact(lit, value) for lit in cmp.values)
    lit = cmp.values[0]
    if op == "eq":
        return _loose_eq(lit, value)
    if op == "ieq":
        assert lit.pattern is not None
        if not isinstance(value, (str, int, float)):
            return False
        return lit.pattern.fullmatch(_as_text(value)) is not None
    if op == "text":
        if value is None or isinstance(value, (dict, list)):
            return False
        return _as_text(lit.value).casefold() in _as_text(value).casefold()
    return _compare(op, lit, value)


def _exact(lit: Literal, value: Any) -> bool:
    if lit.kind == "null":
        return value is None
    if lit.kind == "bool":
        return isinstance(value, bool) and value is bool(lit.value)
    if lit.kind == "num":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return bool(value == lit.value)
        return isinstance(value, str) and value == _as_text(lit.value)
    if isinstance(value, (dict, list)) or value is None:
        return False
    return _as_text(value) == str(lit.value)


def _loose_eq(lit: Literal, value: Any) -> bool:
    if lit.kind == "null":
        return value is None
    if isinstance(value, (dict, list)):
        return False
    if lit.kind == "bool":
        if isinstance(value, bool):
            return value is lit.value
        return isinstance(value, str) and value.lower() == _as_text(lit.value)
    if lit.kind == "num" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return bool(value == lit.value)
    if value is None:
        return False
    text = _as_text(value)
    if lit.pattern is not None:
        return bool(lit.pattern.fullmatch(text))
    if lit.kind == "num":
        # e.g. record value "70" (string) vs literal 70
        try:
            return float(text) == float(lit.value)
        except ValueError:
            return False
    return text.casefold() == str(lit.value).casefold()


_TS_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"\s*(Z|z|[+-]\d{2}:?\d{2})?"
)
_REL_RE = re.compile(r"now(?:\s*([+-])\s*(\d+)\s*([smhdwy]))?", re.IGNORECASE)
_REL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


@functools.lru_cache(maxsize=65536)
def _parse_absolute_ts(text: str) -> float | None:
    m = _TS_RE.fullmatch(text.strip())
    if not m:
        return None
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    try:
        dt = _dt.datetime(
            int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0),
            tzinfo=_dt.timezone.utc,
        )
    except ValueError:
        return None
    ts = dt.timestamp()
    if frac:
        ts += int(frac) / (10 ** len(frac))
    if tz and tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        ts -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return ts


def _parse_ts(text: str) -> float | None:
    rel = _REL_RE.fullmatch(text.strip())
    if rel:
        import time

        now = time.time()
        sign, amount, unit = rel.groups()
        if sign:
            delta = int(amount) * _REL_UNITS[unit.lower()]
            now = now + delta if sign == "+" else now - delta
        return now
    return _parse_absolute_ts(text)


def _compare(op: str, lit: Literal, value: Any) -> bool:
    if value is None or isinstance(value, (bool, dict, list)):
        return False
    a: Any
    b: Any
    if isinstance(value, (int, float)):
        if lit.kind != "num":
            try:
                b = float(lit.value)
            except (TypeError, ValueError):
                return False
        else:
            b = lit.value
        a = value
    else:
        text = str(value)
        if lit.kind == "num":
            try:
                a = float(text)
            except ValueError:
                return False
            b = lit.value
        else:
            lt = _parse_ts(str(lit.value))
            vt = _parse_absolute_ts(text) if lt is not None else None
            if lt is not None and vt is not None:
                a, b = vt, lt
            else:
                a, b = text, str(lit.value)
    if op == "gt":
        return bool(a > b)
    if op == "ge":
        return bool(a >= b)
    if op == "lt":
        return bool(a < b)
    return bool(a <= b)


# --------------------------------------------------------------------------------------------
# Quoting

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def quote(value: str) -> str:
    """Escape ``value`` for use inside single quotes in FQL (the quotes are not added).

    ``\\`` becomes ``\\\\`` and ``'`` becomes ``\\'``.  ``*`` (a wildcard that can turn "this
    host" into "all hosts"), NUL and other control characters are rejected with ValueError.
    """
    if not isinstance(value, str):
        raise ValueError("FQL literal must be a string")
    if "*" in value:
        raise ValueError("FQL literal must not contain '*' (wildcard)")
    if _CONTROL_RE.search(value):
        raise ValueError("FQL literal must not contain NUL or control characters")
    return value.replace("\\", "\\\\").replace("'", "\\'")
