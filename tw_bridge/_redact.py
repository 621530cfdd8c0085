"""Secret redaction.

Secrets (client secrets, bearer tokens) are registered here when they enter the
process; every error message and every log record of the ``tw_bridge`` logger is
scrubbed of them. The registry keeps no references that could leak through a
``repr``: it is module state, and ``repr()`` of it shows only a count.
"""

from __future__ import annotations

import logging
import re
import threading

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None

# Shapes that look like credentials even when we were never told about them.
_GENERIC = re.compile(
    r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"
    r"|(client_secret=)[^&\s]+"
    r"|(access_token[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9._~+/=-]{8,}"
)

REDACTED = "***"


def register_secret(value: str | None) -> None:
    """Remember ``value`` so it is scrubbed from messages and logs from now on."""
    global _pattern
    if not value or len(value) < 4:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def redact(text: str) -> str:
    """Return ``text`` with every registered secret and token-like value replaced."""
    pat = _pattern
    if pat is not None:
        text = pat.sub(REDACTED, text)
    return _GENERIC.sub(lambda m: (m.group(1) or m.group(2) or m.group(3) or "") + REDACTED, text)


class RedactingFilter(logging.Filter):
    """Logging filter that scrubs secrets from a record's rendered message."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is still logged
            return True
        clean = redact(msg)
        if clean != msg or record.args:
            record.msg = clean
            record.args = None
        return True


def get_logger(name: str = "tw_bridge") -> logging.Logger:
    """A logger under ``tw_bridge`` with the redacting filter attached.

    Filters run only on the logger a record is created on, so every module's
    logger gets its own filter.
    """
    log = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in log.filters):
        log.addFilter(RedactingFilter())
    return log


logger = get_logger()
