"""A webhook receiver on loopback: records every request (raw body bytes, headers, time)
and answers from a script, so tests and benchmarks can make it fail, throttle (429 with
Retry-After), vanish (410) or redirect.

    with Receiver() as rx:
        rx.script("/hook", [(500, {}, b"boom"), (200, {}, b"ok")])   # then 200 for ever
        url = rx.url("/hook")
        ...
        rx.wait_for(lambda r: len(r.requests) >= 2)
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from flashfusion.core.storage.db import database
from flashfusion.core.webhooks.dispatcher import Dispatcher

Response = tuple[int, dict, bytes]


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float  # time.monotonic()
    answered: int

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str | None:
        return self.headers.get("webhook-id")


class Receiver:
    def __init__(self, host: str = "127.0.0.1", default: Response = (200, {}, b"ok"), delay: float = 0.0) -> None:
        self.host = host
        self.default = default
        self.delay = delay
        self.requests: list[Received] = []
        self._scripts: dict[str, deque[Response]] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if receiver.delay:
                    time.sleep(receiver.delay)
                status, headers, payload = receiver._next(self.path)
                with receiver._lock:
                    receiver.requests.append(
                        Received(
                            self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic(), status
                        )
                    )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Connection", "close")
                try:
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the sender went away (a killed worker): the request still arrived

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            # socketserver's default backlog is 5: with more deliveries in flight than that,
            # new connections wait for a SYN retransmit (1 s). Real receivers have room.
            request_queue_size = 128

            def handle_error(self, request, client_address) -> None:
                pass

        self.server = Server((host, 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _next(self, path: str) -> Response:
        with self._lock:
            queue = self._scripts.get(path.split("?")[0])
            if queue:
                return queue.popleft()
        return self.default

    def script(self, path: str, responses: list[Response]) -> None:
        with self._lock:
            self._scripts.setdefault(path, deque()).extend(responses)

    def url(self, path: str = "/hook") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.server.server_address[1]}{path}"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.requests)

    def ids(self, ok_only: bool = True) -> Counter:
        return Counter(r.webhook_id for r in self.snapshot() if not ok_only or 200 <= r.answered < 300)

    def wait_for(self, predicate: Callable[[Receiver], bool], timeout: float = 30, interval: float = 0.02) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return
            time.sleep(interval)
        raise AssertionError(f"receiver: condition not met within {timeout} s ({len(self.requests)} requests)")


# --- helpers for the webhook tests -------------------------------------------------------


REPO = Path(__file__).resolve().parents[2]
SPEC = REPO.parent / "shared" / "spec" / "API.md"
DOCS = REPO / "docs" / "webhooks.md"

WEBHOOK_CONFIG = """
[webhooks]
allow_http = true
allow_private_networks = true
tick_seconds = 0.05

[rate_limits]
webhook_events_per_minute = {per_minute}
"""

# The spec's Node.js verifier, verbatim (used when ../shared/spec/API.md is not beside the repo).
SPEC_NODE_VERIFIER = """const crypto = require('crypto');

function verifyWebhook(req, secret) {
  const signature = req.headers['x-flashfusion-signature'];
  const payload = JSON.stringify(req.body);
  
  const expectedSignature = crypto
    .createHmac('sha256', secret)
    .update(payload)
    .digest('hex');
  
  return signature === expectedSignature;
}"""


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def dispatcher(gateway, clock=None, **kw) -> Dispatcher:
    kw.setdefault("jitter", 0.0)
    return Dispatcher(gateway, worker_id="test-dispatcher", clock=clock or gateway.clock, **kw)


def post(client, path, body, key=None, headers=None):
    h = dict(headers or {})
    if key:
        h["X-API-Key"] = key
    return client.simulate_post(path, json=body, headers=h)


def get(client, path, key=None, **params):
    return client.simulate_get(path, params=params, headers={"X-API-Key": key} if key else {})


def spec_block(language: str) -> str:
    """The spec's verifier for ``language`` ("javascript" or "python"), verbatim."""
    if SPEC.exists():
        text = SPEC.read_text()
        return re.search(rf"```{language}\n(.*?)```", text, re.S).group(1).rstrip("\n")
    assert language == "javascript"
    return SPEC_NODE_VERIFIER


def docs_verifier() -> dict:
    text = DOCS.read_text()
    code = re.search(r"<!-- verifier:python -->\n```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, str(DOCS), "exec"), namespace)
    return namespace


def node_verify(requests, secret: str, tmp_path: Path) -> list[bool]:
    """Run the spec's verifier with node over received requests, as an express.json() app
    would call it: ``req.headers`` lower-cased, ``req.body`` the parsed JSON."""
    script = tmp_path / "verify.js"
    script.write_text(
        spec_block("javascript")
        + """

const fs = require('fs');
const cases = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const results = cases.map(c => verifyWebhook({headers: c.headers, body: JSON.parse(c.body)}, c.secret));
process.stdout.write(JSON.stringify(results));
"""
    )
    cases = tmp_path / "cases.json"
    cases.write_text(
        json.dumps([{"headers": r.headers, "body": r.body.decode("utf-8"), "secret": secret} for r in requests])
    )
    out = subprocess.run(["node", str(script), str(cases)], capture_output=True, text=True, timeout=30, check=True)
    return json.loads(out.stdout)


def db_dump() -> str:
    """Every value in every table, as text."""
    chunks = []
    for table in database.get_tables():
        for row in database.execute_sql(f'SELECT * FROM "{table}"').fetchall():
            chunks.append(" ".join(str(v) for v in row))
    return "\n".join(chunks)
