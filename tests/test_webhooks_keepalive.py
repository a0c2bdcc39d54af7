"""The webhook client keeps connections alive per checked address: consecutive deliveries to
a receiver that keeps connections open share one TCP connection, and a connection the
receiver closed while idle is not reused (the next delivery still arrives)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from flashfusion.core.webhooks import sender as client
from flashfusion.core.webhooks.ssrf import Target


class KeepAliveReceiver:
    """HTTP/1.1 on loopback that keeps connections open (unless told to close), counting them."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests = 0
        self.closed = 0
        self.close_after_answer = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                receiver.connections += 1

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                if receiver.close_after_answer:  # closes after answering, without saying so
                    self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def shutdown_request(self, request) -> None:
                super().shutdown_request(request)
                receiver.closed += 1

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def target(self) -> Target:
        port = self.server.server_address[1]
        return Target(scheme="http", host="127.0.0.1", port=port, path="/hook", addresses=("127.0.0.1",))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_deliveries_to_one_receiver_share_a_kept_alive_connection():
    rx = KeepAliveReceiver()
    try:
        outcomes = [client.post(rx.target(), b"{}", {"Content-Type": "application/json"}, timeout=5) for _ in range(5)]
        assert [o.status for o in outcomes] == [200] * 5
        assert rx.requests == 5 and rx.connections == 1
    finally:
        rx.stop()


def test_a_connection_the_receiver_closed_while_idle_is_not_reused():
    rx = KeepAliveReceiver()
    rx.close_after_answer = True
    try:
        first = client.post(rx.target(), b"{}", {}, timeout=5)
        deadline = time.monotonic() + 10
        while not rx.closed and time.monotonic() < deadline:  # the receiver has closed its side
            time.sleep(0.01)
        assert rx.closed == 1
        second = client.post(rx.target(), b"{}", {}, timeout=5)
        assert (first.status, second.status) == (200, 200)
        assert rx.requests == 2 and rx.connections >= 2
    finally:
        rx.stop()
