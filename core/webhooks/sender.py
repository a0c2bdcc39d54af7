"""One webhook POST to an address that ``ssrf.check_url`` approved.

The TCP connection goes to the checked IP address itself; the Host header and the TLS
server name (SNI and certificate check) carry the URL's host name. Redirects are never
followed (a 3xx is a failed attempt), the whole attempt is bounded by ``timeout``, and at
most ``EXCERPT`` characters of the response are read and kept. Connections the receiver
keeps alive are reused for the next delivery to the same checked address (``_KeepAlive``).
"""

from __future__ import annotations

import email.utils
import heapq
import http.client
import itertools
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import UTC

from flashfusion.core.webhooks.ssrf import Target

EXCERPT = 1024


@dataclass(frozen=True)
class Outcome:
    status: int | None
    latency_ms: int
    error: str | None = None
    excerpt: str | None = None
    retry_after: float | None = None
    location: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


_TLS = ssl.create_default_context()


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else time.time()
    return max(0.0, when.timestamp() - current)


def _clean(text: str) -> str:
    return "".join(ch if ch.isprintable() or ch in "\n\t" else "?" for ch in text)[:EXCERPT]


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"timed out after {timeout:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not valid: {exc.verify_message}"[:200]
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc.__class__.__name__}"[:200]
    if isinstance(exc, http.client.HTTPException):
        return f"invalid HTTP response ({exc.__class__.__name__})"
    if isinstance(exc, OSError) and exc.strerror:
        return f"network error: {exc.strerror}"[:200]
    return f"network error: {exc.__class__.__name__}"


class _Watchdog:
    """Shuts down the sockets of attempts that outlive their deadline: one thread for all
    attempts (a ``threading.Timer`` per request cost a thread start per delivery)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, http.client.HTTPConnection]] = []
        self._active: set[int] = set()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: float, conn: http.client.HTTPConnection) -> int:
        token = next(self._seq)
        with self._cond:
            if self._thread is None or not self._thread.is_alive():  # also after a fork
                self._thread = threading.Thread(target=self._run, name="webhook-watchdog", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (deadline, token, conn))
            self._active.add(token)
            self._cond.notify()
        return token

    def cancel(self, token: int) -> None:
        with self._cond:
            self._active.discard(token)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][1] not in self._active:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, token, conn = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                self._active.discard(token)
            _abort(conn)


class _KeepAlive:
    """Idle connections kept open per (scheme, host, port, checked address), so consecutive
    deliveries to an endpoint skip the TCP (and TLS) handshake. A connection is reused only
    if it went idle less than ``IDLE_SECONDS`` ago and the receiver has not closed it."""

    IDLE_SECONDS = 2.0
    PER_KEY = 16

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[tuple, list[tuple[float, http.client.HTTPConnection]]] = {}

    def take(self, key: tuple) -> http.client.HTTPConnection | None:
        while True:
            with self._lock:
                stack = self._idle.get(key)
                if not stack:
                    return None
                since, conn = stack.pop()
            if time.monotonic() - since < self.IDLE_SECONDS and conn.sock is not None and not _readable(conn.sock):
                return conn
            conn.close()

    def give(self, key: tuple, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            stack = self._idle.setdefault(key, [])
            if len(stack) < self.PER_KEY:
                stack.append((time.monotonic(), conn))
                return
        conn.close()


def _readable(sock: socket.socket) -> bool:
    """An idle kept-alive socket that is readable was closed (or spoken on) by the receiver."""
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


_WATCHDOG = _Watchdog()
_KEPT = _KeepAlive()


def post(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> Outcome:
    started = time.monotonic()
    deadline = started + timeout
    last_error = "no address to connect to"
    for address in target.addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        key = (target.scheme, target.host, target.port, address)
        conn = _KEPT.take(key)
        if conn is None:
            if target.scheme == "https":
                conn = _PinnedHTTPS(target.host, target.port, address, remaining, _TLS)
            else:
                conn = _PinnedHTTP(target.host, target.port, address, remaining)
        else:
            conn.timeout = remaining
            conn.sock.settimeout(remaining)
        watch = _WATCHDOG.watch(deadline, conn)
        reusable = False
        try:
            if conn.sock is None:
                try:
                    conn.connect()
                except OSError as exc:
                    last_error = _describe(exc, timeout)
                    continue  # the next checked address, if any
            try:
                conn.putrequest("POST", target.path, skip_accept_encoding=True)
                for name, value in headers.items():
                    conn.putheader(name, value)
                conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body)
                response = conn.getresponse()
                excerpt = response.read(EXCERPT * 4).decode("utf-8", "replace")
                latency = int((time.monotonic() - started) * 1000)
                # kept only when the whole answer was read and the receiver keeps the connection
                reusable = response.isclosed() and not response.will_close
                return Outcome(
                    status=response.status,
                    latency_ms=latency,
                    excerpt=_clean(excerpt),
                    retry_after=parse_retry_after(response.getheader("Retry-After")),
                    location=(response.getheader("Location") or "")[:300] or None,
                )
            except (OSError, http.client.HTTPException) as exc:
                error = _describe(exc, timeout) if time.monotonic() < deadline else f"timed out after {timeout:g} s"
                return Outcome(status=None, latency_ms=int((time.monotonic() - started) * 1000), error=error)
        finally:
            _WATCHDOG.cancel(watch)
            if reusable and time.monotonic() < deadline:
                _KEPT.give(key, conn)
            else:
                conn.close()
    if time.monotonic() >= deadline:
        last_error = f"timed out after {timeout:g} s"
    return Outcome(status=None, latency_ms=int((time.monotonic() - started) * 1000), error=last_error)


def _abort(conn: http.client.HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
