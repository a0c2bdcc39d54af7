"""One log setup for every process of a gateway: the API (gunicorn's workers and arbiter),
the worker and the CLI write ``text`` or ``json`` lines at one level.

``flashfusion serve`` passes the chosen format and level to its children as
``FLASHFUSION_LOGGING__FORMAT`` / ``FLASHFUSION_LOGGING__LEVEL``, the same variables that
override ``[logging]`` in ``flashfusion.toml``, so gunicorn's own logger follows them too.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

FORMATS = ("text", "json")
LEVELS = ("debug", "info", "warning", "error")
FORMAT_VAR = "FLASHFUSION_LOGGING__FORMAT"
LEVEL_VAR = "FLASHFUSION_LOGGING__LEVEL"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: LogRecord attributes that are not fields a caller passed with ``extra=``.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and every ``extra`` field."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)


def level_number(level: str) -> int:
    return logging.getLevelNamesMapping()[level.upper()]


def configure(fmt: str, level: str) -> None:
    """Send every ``flashfusion`` log line to stderr in ``fmt`` at ``level`` (replacing any
    earlier setup of the root logger)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level_number(level))


def configure_from_env(env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The format and level ``serve`` handed down (defaults: text, info), applied; returned."""
    env = os.environ if env is None else env
    fmt = env.get(FORMAT_VAR, "text") if env.get(FORMAT_VAR) in FORMATS else "text"
    level = env.get(LEVEL_VAR, "info").lower()
    level = level if level in LEVELS else "info"
    configure(fmt, level)
    return fmt, level
