"""gunicorn's ``gthread`` worker, made safe against slow clients, with JSON error answers.

The stock worker hands a connection to a thread as soon as it is accepted (or a kept-alive one
becomes readable), and the thread then waits, with no time limit, for the rest of the request
headers. 32 clients sending one header line every few seconds take every thread of a default
``serve`` and the API stops answering. Here the main loop collects each request's header block
with non-blocking reads, at most ``MAX_HEADER_BYTES`` and for at most ``HEADER_TIMEOUT``
seconds, and only a complete header block is given to a thread. From then on every socket read
and write in the thread (the body, the response) times out after ``IO_TIMEOUT`` seconds.

gunicorn's own error answers (a malformed request line, headers too large) are HTML; here
they are the API's ``{"error", "message"}`` JSON. TLS connections keep gunicorn's behaviour.
"""

from __future__ import annotations

import errno
import json
import selectors
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from gunicorn.glogging import Logger
from gunicorn.http import errors as http_errors
from gunicorn.http2 import negotiation
from gunicorn.workers.gthread import TConn, ThreadWorker

from flashfusion.core.observability import logs

HEADER_TIMEOUT = 10.0
MAX_HEADER_BYTES = 64 * 1024
IO_TIMEOUT = 10.0
#: Unread request body the worker discards before answering, so that a kept-alive
#: connection stays usable; past it (or ``DRAIN_TIMEOUT``) the answer says Connection: close.
DRAIN_MAX_BYTES = 64 * 1024
DRAIN_TIMEOUT = 2.0
RECV_SIZE = 16 * 1024


def error_response(status: int, reason: str, message: str) -> bytes:
    """A complete HTTP/1.1 answer in the API's error shape that closes the connection."""
    body = json.dumps({"error": reason, "message": message}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\r\n"
    )
    return head.encode("latin-1") + body


def header_block_complete(data: bytes | bytearray) -> bool:
    """Whether ``data`` holds a whole header block. Empty lines before the request line are
    skipped (RFC 9112 2.2); a block ended by bare LFs counts too, so gunicorn's parser is the
    one that refuses it."""
    start = len(data) - len(data.lstrip(b"\r\n"))
    return data.find(b"\n\r\n", start) >= 0 or data.find(b"\n\n", start) >= 0


class Connection(TConn):
    """A client connection and the header bytes read for its next request."""

    def __init__(self, cfg: Any, sock: socket.socket, client: Any, server: Any) -> None:
        super().__init__(cfg, sock, client, server)
        self.head: bytearray | None = None
        self.head_deadline = 0.0
        self.head_ready = False


class HeaderFirstWorker(ThreadWorker):
    """``gthread`` with the header block read in the main loop (see the module docstring)."""

    wsgi: Callable  # set by gunicorn's Worker.load_wsgi

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reading_heads: deque[Connection] = deque()  # oldest deadline first

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.wsgi = closing_truthfully(self.wsgi)

    def run(self) -> None:
        """Serve; on a graceful stop, write the access lines still waiting and the process's
        pending key usage, and give its unused rate-limit cells back (see ``access.keycheck``)."""
        try:
            super().run()
        finally:
            from flashfusion.core.access import keycheck
            from flashfusion.core.observability import logs

            logs.access_lines.flush()

            try:
                keycheck.flush()
            except Exception as exc:  # noqa: BLE001 - exiting anyway; a SIGKILL would lose the same
                self.log.warning("final usage flush failed: %s", type(exc).__name__)

    # --- main loop ----------------------------------------------------------------------

    def accept(self, listener: socket.socket) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self.enqueue_req(Connection(self.cfg, client_sock, client_addr, listener.getsockname()))

    def enqueue_req(self, conn: TConn) -> None:
        """Every path to a thread (new, kept-alive, pipelined) passes here: a connection
        without a complete header block reads it in the main loop first."""
        if not isinstance(conn, Connection) or conn.head_ready or self._parent_reads_headers(conn):
            if isinstance(conn, Connection):
                conn.head_ready = False
            super().enqueue_req(conn)
            return
        buffered = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        conn.head = bytearray(buffered)
        conn.head_deadline = time.monotonic() + HEADER_TIMEOUT
        conn.sock.setblocking(False)
        # A kept-alive connection is handed here because it became readable: its next
        # header block is usually all there, and goes to a thread without a trip through
        # the poller.
        if (buffered and self._head_done(conn)) or self._read_head(conn):
            return
        self.reading_heads.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_head_readable, conn))

    def _parent_reads_headers(self, conn: TConn) -> bool:
        return bool(
            self.cfg.is_ssl
            or conn.is_http2
            or negotiation.prior_knowledge_allowed(self.cfg, conn.client)
            or negotiation.upgrade_allowed(self.cfg, conn.client)
        )

    def _on_head_readable(self, conn: Connection, sock: socket.socket) -> None:
        if self._read_head(conn):
            self._stop_reading(conn)

    def _read_head(self, conn: Connection) -> bool:
        """Read what the client has sent so far: True once the header block is handed over
        (or refused, or the client has gone), False while more is awaited."""
        try:
            data = conn.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return True
        assert conn.head is not None
        conn.head += data
        return self._head_done(conn)

    def _head_done(self, conn: Connection) -> bool:
        """Hand over a complete header block, refuse one too large; False while waiting."""
        assert conn.head is not None
        if header_block_complete(conn.head):
            conn.head_ready = True
            super().enqueue_req(conn)
            return True
        if len(conn.head) > MAX_HEADER_BYTES:
            if b"\n" in conn.head:
                answer = error_response(
                    431,
                    "Request Header Fields Too Large",
                    f"The request headers are larger than {MAX_HEADER_BYTES} bytes",
                )
            else:
                answer = error_response(
                    414, "URI Too Long", f"The request line is longer than {MAX_HEADER_BYTES} bytes"
                )
            self.log.warning("Invalid request from ip=%s: header block over %s bytes", _ip(conn), MAX_HEADER_BYTES)
            self._close(conn, answer)
            return True
        return False

    def _stop_reading(self, conn: Connection) -> None:
        self.poller.unregister(conn.sock)
        self.reading_heads.remove(conn)

    def _close(self, conn: Connection, answer: bytes = b"") -> None:
        """Close from the main loop, never blocking: the answer is small enough for the
        socket's send buffer, and what the client sent is discarded first so that closing
        does not reset the connection before the client reads the answer."""
        self.nr_conns -= 1
        sock = conn.sock
        try:
            if answer:
                sock.send(answer)
                sock.shutdown(socket.SHUT_WR)
                for _ in range(16):
                    if not sock.recv(RECV_SIZE):
                        break
        except OSError:
            pass
        sock.close()

    def murder_pending(self) -> None:
        """Also closes connections whose header block is late (408 if it had begun) and, once
        the worker stops, those that have not begun one."""
        super().murder_pending()
        now = time.monotonic()
        while self.reading_heads and self.reading_heads[0].head_deadline <= now:
            conn = self.reading_heads[0]
            self._stop_reading(conn)
            if conn.head:
                self.log.info(
                    "Closing connection from ip=%s: request headers not complete within %ss", _ip(conn), HEADER_TIMEOUT
                )
                self._close(
                    conn,
                    error_response(
                        408, "Request Timeout", f"The request headers did not arrive within {HEADER_TIMEOUT:g} seconds"
                    ),
                )
            else:
                self._close(conn)
        if not self.alive:
            for conn in [c for c in self.reading_heads if not c.head]:
                self._stop_reading(conn)
                self._close(conn)

    # --- threads ------------------------------------------------------------------------

    def handle(self, conn: TConn) -> Any:
        if isinstance(conn, Connection) and conn.head is not None:
            head, conn.head = bytes(conn.head), None
            conn.data_ready = True
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(head)
        return super().handle(conn)

    def handle_request(self, req: Any, conn: TConn) -> bool:
        if not self.cfg.is_ssl:
            conn.sock.settimeout(IO_TIMEOUT)  # the body and the response; headers are in memory
        return super().handle_request(req, conn)

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        status, reason, message = _error_for(exc)
        if status == 500:
            self.log.exception("Error handling request %s", getattr(req, "uri", "(no URI read)"))
            message = "Something went wrong while reading the request"
        else:
            self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], exc)
        try:
            client.settimeout(IO_TIMEOUT)
            client.sendall(error_response(status, reason, message))
        except OSError:
            self.log.debug("Failed to send error message.")


def _ip(conn: TConn) -> str:
    return conn.client[0] if isinstance(conn.client, tuple) else str(conn.client)


_CLIENT_ERRORS: list[tuple[tuple[type, ...], int, str]] = [
    ((http_errors.LimitRequestLine,), 414, "URI Too Long"),
    ((http_errors.LimitRequestHeaders,), 431, "Request Header Fields Too Large"),
    ((http_errors.UnsupportedTransferCoding,), 501, "Not Implemented"),
    ((http_errors.ExpectationFailed,), 417, "Expectation Failed"),
    ((http_errors.ForbiddenProxyRequest,), 403, "Forbidden"),
    ((ssl.SSLError,), 403, "Forbidden"),
    ((http_errors.ParseException,), 400, "Bad Request"),
]


def _error_for(exc: BaseException) -> tuple[int, str, str]:
    """(status, reason, message) for an error raised while reading a request."""
    if isinstance(
        exc,
        (http_errors.InvalidResponseHeader, http_errors.InvalidResponseHeaderName, http_errors.ConfigurationProblem),
    ):
        return 500, "Internal Server Error", ""
    for kinds, status, reason in _CLIENT_ERRORS:
        if isinstance(exc, kinds):
            return status, reason, (str(exc) or reason)[:300]
    return 500, "Internal Server Error", ""


def closing_truthfully(app: Callable) -> Callable:
    """Wrap the WSGI app so that an answer on a connection gunicorn is going to close says so.

    An answer given before the request body was read (413, 401, 415, ...) leaves the body on
    the socket. gunicorn discards at most 64 KiB of it after answering and otherwise closes the
    connection, although the answer announced ``Connection: keep-alive``. The body is discarded
    here, before the status line goes out, and if it cannot be (too large, too slow) the answer
    says ``Connection: close``."""

    def wrapped(environ: dict, start_response: Callable) -> Iterable[bytes]:
        def start(status: str, headers: list, exc_info: Any = None) -> Any:
            response = getattr(start_response, "__self__", None)
            if response is not None and not _drain(environ):
                response.force_close()
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return wrapped


def _drain(environ: dict) -> bool:
    """Whether the rest of the request body could be read and thrown away, within bounds."""
    body = environ.get("wsgi.input")
    sock = environ.get("gunicorn.socket")
    if body is None or sock is None:
        return True
    if environ.get("CONTENT_LENGTH", "") in ("", "0") and "HTTP_TRANSFER_ENCODING" not in environ:
        return True  # no body announced: nothing to read (and no socket timeouts to change per request)
    prior = sock.gettimeout()
    deadline = time.monotonic() + DRAIN_TIMEOUT
    drained = 0
    try:
        while drained <= DRAIN_MAX_BYTES:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            sock.settimeout(min(remaining, prior) if prior else remaining)
            data = body.read(min(RECV_SIZE, DRAIN_MAX_BYTES + 1 - drained))
            if not data:
                return True
            drained += len(data)
        return False
    except Exception:  # a timeout or a malformed chunk: where the next request starts is unknown
        return False
    finally:
        try:
            sock.settimeout(prior)
        except OSError:
            pass


class AddressLogger(Logger):
    """gunicorn's logger in the gateway's log format (``FLASHFUSION_LOGGING__FORMAT``, set by
    ``serve``), naming the bound address where the arbiter has no shared socket
    (``--reuse-port``: each worker opens its own and the arbiter logs ``Listening at:  (pid)``)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        fmt, _ = logs.configure_from_env()
        for handler in self.error_log.handlers:
            handler.setFormatter(logs.formatter(fmt))

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if msg.startswith("Listening at: %s") and args and not args[0]:
            args = (",".join(f"http://{address}" for address in self.cfg.bind), *args[1:])
        super().info(msg, *args, **kwargs)
