"""The server half of a fake CI: a real HTTP server on 127.0.0.1, on a free port, served from
a daemon thread and stopped as a context manager. Subclass ``LoopbackFake``, keep the fake's
state on it, and have ``start`` call ``serve`` with a ``LoopbackHandler`` subclass: its ``respond(method)``
answers each request, and reaches the fake as ``self.fake``::

    class MyFakeCI(LoopbackFake):
        def start(self) -> MyFakeCI:
            return self.serve(_Handler, name="fake-myci")

    with MyFakeCI() as fake:
        provider = MyProvider(url=fake.origin)
"""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self, cast


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 refuses bursts of concurrent clients


class LoopbackHandler(BaseHTTPRequestHandler):
    """A fake's request handler: every method goes to ``respond``, nothing is logged, and
    ``self.fake`` is the ``LoopbackFake`` that serves it."""

    fake: Any

    def respond(self, method: str) -> None:
        raise NotImplementedError

    def request_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.respond("GET")

    def do_POST(self) -> None:
        self.respond("POST")

    def do_PUT(self) -> None:
        self.respond("PUT")

    def do_PATCH(self) -> None:
        self.respond("PATCH")

    def do_DELETE(self) -> None:
        self.respond("DELETE")


class LoopbackFake:
    """Lifecycle and address of a fake CI's server; the requests are the handler's business."""

    _server: LoopbackServer | None = None
    scheme = "http"

    def start(self) -> Self:
        """Start serving (subclasses: ``return self.serve(TheirHandler)``)."""
        raise NotImplementedError

    def serve(
        self,
        handler: type[BaseHTTPRequestHandler],
        *,
        tls: ssl.SSLContext | None = None,
        name: str = "fake-ci",
        poll_interval: float = 0.05,
    ) -> Self:
        """Serve ``handler`` (given this fake as ``fake``), over HTTPS with the server context
        ``tls`` if there is one. ``poll_interval`` bounds how long ``stop`` waits."""
        bound = cast(type[BaseHTTPRequestHandler], type("Handler", (handler,), {"fake": self}))
        server = LoopbackServer(("127.0.0.1", 0), bound)
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self._server = server
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": poll_interval}, name=name, daemon=True
        )
        thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the fake first"
        return int(self._server.server_address[1])

    @property
    def origin(self) -> str:
        """``scheme://127.0.0.1:port``, the root every request goes to."""
        return f"{self.scheme}://127.0.0.1:{self.port}"
