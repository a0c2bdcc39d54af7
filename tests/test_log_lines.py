"""The access log's fast path (``logs.emit_line``) writes exactly the line the logging module
would, in text and JSON, and steps aside for any other logging setup; buffered, its lines keep
their place before later lines and are written when the process exits."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flashfusion.core.observability import logs

FIELDS = {"method": "GET", "route": "/api/get-status", "status": 200, "caller": "key:ffai_abcd…"}
MESSAGE = "GET /api/get-status 200 1.5ms caller=key:ffai_abcd… ünïcode"


@pytest.fixture
def logfile(tmp_path: Path):
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logs._installed, logs.current_format, logs.access_lines.flush_seconds)
    logs.access_lines.flush_seconds = 0  # each line at once, unless a test says otherwise
    path = tmp_path / "log"
    stream = path.open("w", encoding="utf-8")

    def setup(fmt: str, level: str = "info") -> None:
        logs.configure(fmt, level)
        logs._installed.setStream(stream)

    def lines() -> list[str]:
        stream.flush()
        return path.read_text(encoding="utf-8").splitlines()

    yield setup, lines
    stream.close()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logs._installed, logs.current_format, logs.access_lines.flush_seconds = saved[2], saved[3], saved[4]


def test_text_line_is_what_logging_writes(logfile):
    setup, lines = logfile
    setup("text")
    logger = logging.getLogger("flashfusion.access")
    logs.emit_line(logger, logging.INFO, MESSAGE, FIELDS)
    logger.info(MESSAGE)
    fast, slow = lines()
    stamp = len("2026-12-06 02:40:00,123")
    assert fast[stamp:] == slow[stamp:] == f" INFO flashfusion.access: {MESSAGE}"
    for line in (fast, slow):
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}", line[:stamp])


def test_json_line_is_what_logging_writes(logfile):
    setup, lines = logfile
    setup("json")
    logger = logging.getLogger("flashfusion.access")
    logs.emit_line(logger, logging.INFO, MESSAGE, FIELDS)
    logger.info(MESSAGE, extra=FIELDS)
    fast, slow = (json.loads(line) for line in lines())
    assert fast.pop("time")[:16] == slow.pop("time")[:16]
    assert fast == slow == {"level": "info", "logger": "flashfusion.access", "message": MESSAGE, **FIELDS}


def test_below_the_level_nothing_is_written(logfile):
    setup, lines = logfile
    setup("text", "warning")
    logs.emit_line(logging.getLogger("flashfusion.access"), logging.INFO, MESSAGE, FIELDS)
    assert lines() == []


def test_another_handler_gets_the_line_through_logging(logfile):
    setup, lines = logfile
    setup("json")
    seen: list[logging.LogRecord] = []
    capture = logging.Handler()
    capture.emit = seen.append  # type: ignore[method-assign]
    logger = logging.getLogger("flashfusion.access")
    logger.addHandler(capture)
    try:
        logs.emit_line(logger, logging.INFO, MESSAGE, FIELDS)
    finally:
        logger.removeHandler(capture)
    assert [r.getMessage() for r in seen] == [MESSAGE] and seen[0].route == "/api/get-status"
    assert json.loads(lines()[0])["route"] == "/api/get-status"  # and the installed handler still writes it


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_buffered_access_lines_come_before_any_later_line(logfile, fmt):
    setup, lines = logfile
    setup(fmt)
    logs.access_lines.flush_seconds = 60.0
    access = logging.getLogger("flashfusion.access")
    for n in range(3):
        logs.emit_line(access, logging.INFO, f"line {n}", FIELDS)
    logging.getLogger("flashfusion.runs").warning("later")
    written = lines()
    messages = [json.loads(line)["message"] if fmt == "json" else line.split(": ", 1)[1] for line in written]
    assert messages == ["line 0", "line 1", "line 2", "later"]


def test_buffered_access_lines_are_written_when_the_process_exits():
    program = (
        "import logging\n"
        "from flashfusion.core.observability import logs\n"
        "logs.configure('text', 'info')\n"
        "logs.access_lines.flush_seconds = 60\n"
        "for n in range(2000):\n"
        "    logs.emit_line(logging.getLogger('flashfusion.access'), logging.INFO, f'line {n}', {})\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60)
    assert [line.split(": ", 1)[1] for line in done.stderr.splitlines()] == [f"line {n}" for n in range(2000)]
