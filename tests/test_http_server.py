"""The HTTP layer of a real ``flashfusion serve`` (default settings: 2 gunicorn workers x 16
threads): slow clients, request framing, and gunicorn's own error answers."""

from __future__ import annotations

import json
import re
import signal
import socket
import time

import httpx
import pytest
from conftest import write_config
from testkit.db import database_url, fresh_database
from testkit.server import start_server

pytestmark = pytest.mark.e2e

SLOW_CLIENTS = 200
HOLD_SECONDS = 15


@pytest.fixture
def server(tmp_path):
    """On SQLite only: what is tested here happens in the HTTP layer, before and after any
    database work (the suite's time budget)."""
    db_url = database_url("sqlite", tmp_path)
    fresh_database(db_url)
    running = start_server(write_config(tmp_path, db_url), tmp_path)
    yield running
    assert running.process.stop(signal.SIGTERM) == 0


def address(server) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def connect(server) -> socket.socket:
    return socket.create_connection(address(server), timeout=30)


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body, read off the socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def healthz_over(sock: socket.socket) -> int:
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    return read_response(sock)[0]


def post_json(sock: socket.socket, path: str, framing: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    """A JSON POST to ``path`` framed by ``framing``, its Content-Length or Transfer-Encoding header (a
    Content-Length may promise more than ``body`` holds), and the response read back."""
    head = f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
    sock.sendall(head.encode() + body)
    return read_response(sock)


def assert_api_error(status: int, headers: dict, body: bytes, expected: int) -> dict:
    assert status == expected, body
    assert headers["content-type"].startswith("application/json")
    answer = json.loads(body)
    assert set(answer) == {"error", "message"}, answer
    return answer


def assert_reusable_or_closed(sock: socket.socket, headers: dict) -> None:
    """A response that announced keep-alive leaves the connection usable; one that did not
    says Connection: close."""
    if headers.get("connection", "").lower() == "close":
        return
    assert healthz_over(sock) == 200


def test_slow_header_clients_do_not_take_the_api_down(server):
    """The probe of issue #14: connections that send their headers a line at a time used to
    hold every gunicorn thread; /healthz went unanswered."""
    slow = []
    try:
        for _ in range(SLOW_CLIENTS):
            sock = connect(server)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
            slow.append(sock)
        answered = []
        hold_until = time.monotonic() + HOLD_SECONDS
        next_line = time.monotonic()
        while time.monotonic() < hold_until:
            if time.monotonic() >= next_line:
                next_line += 2
                for sock in slow:
                    try:
                        sock.sendall(b"X-Slow: 1\r\n")
                    except OSError:
                        pass  # the server gave up on this one (the header deadline)
            started = time.monotonic()
            try:
                status = httpx.get(server.url + "/healthz", timeout=5).status_code
            except httpx.TransportError as exc:
                status = repr(exc)
            answered.append((status, time.monotonic() - started))
            time.sleep(0.1)
        late = [(status, round(took, 2)) for status, took in answered if status != 200 or took >= 1]
        assert not late, f"{len(late)} of {len(answered)} /healthz calls failed or took 1 s or more: {late[:5]}"
        assert len(answered) >= 10
    finally:
        for sock in slow:
            sock.close()


def test_headers_that_never_finish_get_408_and_are_closed(server):
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        status, headers, body = read_response(sock)  # the deadline is 10 s; the socket waits 30
        assert_api_error(status, headers, body, 408)
        assert headers["connection"] == "close"
        assert sock.recv(1) == b""


def test_a_stalled_body_is_answered_408_and_frees_the_thread(server):
    with connect(server) as sock:
        status, headers, body = post_json(sock, "/functions/login", "Content-Length: 100", b'{"username":')
        answer = assert_api_error(status, headers, body, 408)
        assert answer["error"] == "Request Timeout"
        assert headers["connection"] == "close"
    assert "Traceback" not in server.process.output()


def test_413_says_connection_close_or_keeps_the_connection_usable(server):
    for size in (70_000, 300_000):  # the API's limit is 64 KiB
        with connect(server) as sock:
            body = b"{" + b" " * (size - 2) + b"}"
            status, headers, answer = post_json(sock, "/functions/login", f"Content-Length: {size}", body)
            assert_api_error(status, headers, answer, 413)
            assert_reusable_or_closed(sock, headers)


def test_an_error_before_the_body_is_read_keeps_a_small_body_connection_usable(server):
    with connect(server) as sock:
        status, headers, answer = post_json(
            sock, "/api/trigger-pipeline", "Content-Length: 25", b'{"pipeline_id": "demo"}  '
        )
        assert_api_error(status, headers, answer, 401)
        assert headers["connection"] == "keep-alive"
        assert healthz_over(sock) == 200


def chunked(body: bytes, size: int = 1000) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces) + b"0\r\n\r\n"


def test_a_chunked_body_is_read(server):
    with connect(server) as sock:
        body = json.dumps({"username": "nobody", "password": "x" * 3000}).encode()
        status, headers, answer = post_json(sock, "/functions/login", "Transfer-Encoding: chunked", chunked(body))
        assert status == 401, answer  # the credentials were read (and are wrong), not "must be a JSON object"
        assert healthz_over(sock) == 200

        big = json.dumps({"username": "nobody", "password": "x" * 70_000}).encode()
        status, headers, answer = post_json(sock, "/functions/login", "Transfer-Encoding: chunked", chunked(big, 8000))
        assert_api_error(status, headers, answer, 413)
        assert_reusable_or_closed(sock, headers)


@pytest.mark.parametrize(
    "request_bytes, expected",
    [
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
        (b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + b"X-Many: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n" * 2000 + b"\r\n", 431),
        (b"NOT A REQUEST\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nHost: t\r\nBad Header Name: x\r\n\r\n", 400),
    ],
)
def test_gunicorn_errors_answer_in_the_api_error_shape(server, request_bytes, expected):
    with connect(server) as sock:
        try:
            sock.sendall(request_bytes)
        except OSError:
            pass  # the server may answer and close before taking all of it
        status, headers, body = read_response(sock)
        assert_api_error(status, headers, body, expected)
        assert headers["connection"] == "close"
    assert "Traceback" not in server.process.output()


def test_bad_json_on_the_real_server_is_400_without_a_traceback(server):
    answer = httpx.post(
        server.url + "/functions/login",
        content=b'{"username": "a", "password": ' + b"9" * 5000 + b"}",
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "Invalid JSON"
    assert "Traceback" not in server.process.output()


def test_the_startup_log_names_the_address(server):
    host, port = address(server)
    log = server.process.output()
    assert re.search(rf"Listening at: http://{re.escape(host)}:{port} \(\d+\)", log), log
