"""One log setup for every process of a gateway: the API (gunicorn's workers and arbiter),
the worker and the CLI write ``text`` or ``json`` lines at one level.

``flashfusion serve`` passes the chosen format and level to its children as
``FLASHFUSION_LOGGING__FORMAT`` / ``FLASHFUSION_LOGGING__LEVEL``, the same variables that
override ``[logging]`` in ``flashfusion.toml``, so gunicorn's own logger follows them too.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import threading
import time
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


def json_entry(created: float, levelname: str, name: str, message: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "time": datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"),
        "level": levelname.lower(),
        "logger": name,
        "message": message,
    }
    entry.update(fields)
    return entry


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and every ``extra`` field."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}
        entry = json_entry(record.created, record.levelname, record.name, record.getMessage(), fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT``, with the date and time made once per second rather than per line:
    the access log writes a line for every request."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self._second: int | None = None
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        return self.stamp(record.created)

    def stamp(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            made = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(created))
            self._second, self._stamp = second, made  # a racing thread at worst makes it twice
        else:
            made = self._stamp
        return f"{made},{int((created - second) * 1000):03d}"


#: The format ``configure`` set up last: the access log passes its fields as ``extra`` only
#: when they are printed (``json``), which spares building them into every record.
current_format = "text"


def formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


def level_number(level: str) -> int:
    return logging.getLevelNamesMapping()[level.upper()]


_installed: logging.StreamHandler | None = None  # the handler ``configure`` put on the root logger


class LineBuffer:
    """Access lines waiting to be written: one ``os.write`` per ``flush_seconds`` (or per
    ``MAX_BYTES``) instead of one per request, as nginx's ``access_log ... buffer= flush=``.
    A write per request cost a served request more than the line's formatting (the system
    call, and the GIL handed to another thread meanwhile). Flushed by a thread of its own,
    before any other line the same handler writes (so lines keep their order), and when the
    process exits; a SIGKILLed process loses at most ``flush_seconds`` of lines."""

    MAX_BYTES = 64 * 1024

    def __init__(self) -> None:
        self.flush_seconds = 0.0
        self._lock = threading.Lock()  # the pending lines
        self._writing = threading.Lock()  # one flush at a time, so lines stay in order
        self._pending: list[bytes] = []
        self._size = 0
        self._fd = -1
        self._flusher_pid = 0

    def add(self, fd: int, data: bytes) -> bool:
        """Queue ``data`` for ``fd``; False when lines are written at once (flush_seconds 0)."""
        if self.flush_seconds <= 0:
            return False
        if self._flusher_pid != os.getpid():
            self._start_flusher()
        if fd != self._fd:
            self.flush()  # lines queued for an earlier stream go there first
        with self._lock:
            self._fd = fd
            self._pending.append(data)
            self._size += len(data)
            full = self._size >= self.MAX_BYTES
        if full:
            self.flush()
        return True

    @property
    def waiting(self) -> bool:
        return bool(self._pending)

    def after_fork(self) -> None:
        """In a new child: the parent's queued lines are the parent's to write."""
        self._lock, self._writing = threading.Lock(), threading.Lock()
        self._pending, self._size = [], 0

    def flush(self) -> None:
        """Write what waits; lines for a stream closed meanwhile are dropped."""
        with self._writing:
            with self._lock:
                pending, fd, self._pending, self._size = self._pending, self._fd, [], 0
            if pending:
                try:
                    _write_all(fd, b"".join(pending))
                except OSError:
                    pass

    def _start_flusher(self) -> None:
        with self._lock:
            if self._flusher_pid == os.getpid():
                return
            self._flusher_pid = os.getpid()
        threading.Thread(target=self._flush_every, name="flashfusion-log-flush", daemon=True).start()

    def _flush_every(self) -> None:
        while True:
            time.sleep(self.flush_seconds or 0.2)
            self.flush()


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


access_lines = LineBuffer()
atexit.register(access_lines.flush)
os.register_at_fork(after_in_child=access_lines.after_fork)


class _OrderedHandler(logging.StreamHandler):
    """The root handler: writes what the access log has buffered before its own line."""

    def emit(self, record: logging.LogRecord) -> None:
        if access_lines.waiting:
            access_lines.flush()
        super().emit(record)


def emit_line(logger: logging.Logger, level: int, message: str, fields: Mapping[str, Any]) -> None:
    """``logger.log(level, message, extra=fields)`` for lines written on every request (the
    access log). When the line would reach only the handler ``configure`` installed, it is
    formatted here, byte for byte as that handler would, and written by ``access_lines``
    (buffered for ``logging.access_flush_seconds``; at once with 0) with ``os.write``: no
    LogRecord, no handler lock (a single write is not interleaved with others on a pipe or an
    appended file). With any other logging setup (a test's capture, an added handler or
    filter), the line goes through ``logger`` as usual."""
    if not logger.isEnabledFor(level):
        return
    handler = _installed
    if handler is None or not _reaches_only(logger, handler):
        logger.log(level, "%s", message, extra=dict(fields) if current_format == "json" else None)
        return
    created = time.time()
    levelname = logging.getLevelName(level)
    formatter = handler.formatter
    if isinstance(formatter, TextFormatter):
        line = f"{formatter.stamp(created)} {levelname} {logger.name}: {message}\n"
    else:
        line = json.dumps(json_entry(created, levelname, logger.name, message, fields), default=str) + "\n"
    data = line.encode("utf-8", "backslashreplace")
    try:
        fd = handler.stream.fileno()
        if not access_lines.add(fd, data):
            _write_all(fd, data)
    except (OSError, ValueError):  # no file descriptor (a replaced stream) or a closed one
        logger.log(level, "%s", message)


def _reaches_only(logger: logging.Logger, handler: logging.Handler) -> bool:
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return False
        if current.handlers:
            return current.handlers == [handler] and current.parent is None and not handler.filters
        if not current.propagate:
            return False
        current = current.parent
    return False


def configure(fmt: str, level: str) -> None:
    """Send every ``flashfusion`` log line to stderr in ``fmt`` at ``level`` (replacing any
    earlier setup of the root logger)."""
    global current_format, _installed
    current_format = fmt
    # What no line of ours prints, the logging module need not look up for every record
    # (the "Optimization" section of its documentation): the caller's source line, the thread
    # and the multiprocessing process name. The process id stays: gunicorn's lines show it.
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    access_lines.flush()
    handler = _OrderedHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level_number(level))
    _installed = handler


def configure_from_env(env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The format and level ``serve`` handed down (defaults: text, info), applied; returned."""
    env = os.environ if env is None else env
    fmt = env.get(FORMAT_VAR, "text") if env.get(FORMAT_VAR) in FORMATS else "text"
    level = env.get(LEVEL_VAR, "info").lower()
    level = level if level in LEVELS else "info"
    configure(fmt, level)
    return fmt, level
