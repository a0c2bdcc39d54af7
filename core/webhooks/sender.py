"""One webhook POST to an address that ``ssrf.check_url`` approved.

The TCP connection goes to the checked IP address itself; the Host header and the TLS
server name (SNI and certificate check) carry the URL's host name. Redirects are never
followed (a 3xx is a failed attempt), the whole attempt is bounded by ``timeout``, and at
most ``EXCERPT`` characters of the response are read and kept.
"""

from __future__ import annotations

import email.utils
import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import timezone

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

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


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
        when = when.replace(tzinfo=timezone.utc)
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


def post(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> Outcome:
    started = time.monotonic()
    deadline = started + timeout
    last_error = "no address to connect to"
    for address in target.addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        if target.scheme == "https":
            conn: http.client.HTTPConnection = _PinnedHTTPS(target.host, target.port, address, remaining, _TLS)
        else:
            conn = _PinnedHTTP(target.host, target.port, address, remaining)
        watchdog = threading.Timer(remaining, _abort, args=(conn,))
        watchdog.daemon = True
        watchdog.start()
        try:
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
                return Outcome(status=response.status, latency_ms=latency, excerpt=_clean(excerpt),
                               retry_after=parse_retry_after(response.getheader("Retry-After")),
                               location=(response.getheader("Location") or "")[:300] or None)
            except (OSError, http.client.HTTPException) as exc:
                error = _describe(exc, timeout) if time.monotonic() < deadline else f"timed out after {timeout:g} s"
                return Outcome(status=None, latency_ms=int((time.monotonic() - started) * 1000), error=error)
        finally:
            watchdog.cancel()
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
