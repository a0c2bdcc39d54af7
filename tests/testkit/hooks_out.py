"""Outgoing provider webhooks of the fakes: signed the way GitHub and GitLab sign, sent from a
background thread to 127.0.0.1, with switches to drop, duplicate, delay and reorder.

    hooks = HookSender(github_headers)           # or gitlab_headers
    hooks.add_target(url, secret)
    hooks.drop_rate = 0.2; hooks.duplicates = 2; hooks.delay = 0.5; hooks.reorder = True
    hooks.send("workflow_run", payload)          # queued; delivered by the thread
    hooks.wait_idle()
    headers, body = signed_delivery(github_headers, Target(url, secret), "workflow_run", payload)  # not sent

``reorder`` holds each delivery back until the next one arrives and sends the two in swapped
order (the held one is flushed by ``wait_idle``). ``sent`` lists ``(event, delivery id, status)``
of every attempt, ``dropped`` the deliveries never sent.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import http.client
import json
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Target:
    url: str
    secret: str
    signing_key: str | None = None  # GitLab's Standard Webhooks signing token (whsec_...)


def github_headers(target: Target, event: str, delivery_id: str, body: bytes) -> dict[str, str]:
    digest = hmac.new(target.secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Hook-ID": "1",
        "User-Agent": "GitHub-Hookshot/fake",
        "Content-Type": "application/json",
    }


def gitlab_headers(target: Target, event: str, delivery_id: str, body: bytes) -> dict[str, str]:
    headers = {
        "X-Gitlab-Event": event,
        "X-Gitlab-Event-UUID": delivery_id,
        "X-Gitlab-Token": target.secret,
        "X-Gitlab-Instance": "http://127.0.0.1",
        "User-Agent": "GitLab/fake",
        "Content-Type": "application/json",
    }
    if target.signing_key:
        stamp = str(int(time.time()))
        key = base64.b64decode(target.signing_key.removeprefix("whsec_"))
        sig = base64.b64encode(hmac.new(key, f"{delivery_id}.{stamp}.".encode() + body, hashlib.sha256).digest())
        headers.update(
            {"webhook-id": delivery_id, "webhook-timestamp": stamp, "webhook-signature": f"v1,{sig.decode()}"}
        )
    return headers


def signed_delivery(
    sign: Callable[[Target, str, str, bytes], dict[str, str]], target: Target, event: str, payload: Any
) -> tuple[dict[str, str], bytes]:
    """One delivery as a ``HookSender`` would POST it (a fresh delivery id), with lower-case
    header names as a receiver hands them on: for giving a provider a delivery directly."""
    body = json.dumps(payload).encode()
    return {k.lower(): v for k, v in sign(target, event, str(uuid.uuid4()), body).items()}, body


class HookSender:
    def __init__(self, sign: Callable[[Target, str, str, bytes], dict[str, str]], *, seed: int = 7) -> None:
        self.sign = sign
        self.targets: list[Target] = []
        self.drop_rate = 0.0
        self.duplicates = 1
        self.delay = 0.0
        self.reorder = False
        self.sent: list[tuple[str, str, int]] = []
        self.dropped: list[tuple[str, str]] = []
        self._rng = random.Random(seed)
        self._queue: queue.Queue[tuple[str, bytes, str] | None] = queue.Queue()
        self._held: tuple[str, bytes, str] | None = None
        self._busy = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add_target(self, url: str, secret: str, signing_key: str | None = None) -> None:
        with self._lock:
            self.targets.append(Target(url, secret, signing_key))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fake-hooks", daemon=True)
                self._thread.start()

    def send(self, event: str, payload: Any) -> None:
        if not self.targets:
            return
        with self._lock:
            self._busy += 1
        self._queue.put((event, json.dumps(payload).encode(), str(uuid.uuid4())))

    def wait_idle(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._busy == 0:
                    return
                held, self._held = self._held, None
            if held is not None:
                self._deliver(*held)
                with self._lock:
                    self._busy -= 1
            time.sleep(0.02)
        raise TimeoutError("hooks still being delivered")

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self.delay:
                time.sleep(self.delay)
            if self.reorder:
                with self._lock:
                    held, self._held = self._held, item
                if held is None:
                    continue
                self._deliver(*item)
                with self._lock:
                    self._held = None
                self._deliver(*held)
                with self._lock:
                    self._busy -= 2
                continue
            self._deliver(*item)
            with self._lock:
                self._busy -= 1

    def _deliver(self, event: str, body: bytes, delivery_id: str) -> None:
        if self.drop_rate and self._rng.random() < self.drop_rate:
            self.dropped.append((event, delivery_id))
            return
        for target in list(self.targets):
            headers = self.sign(target, event, delivery_id, body)
            for _ in range(max(1, self.duplicates)):
                self.sent.append((event, delivery_id, _post(target.url, headers, body)))


class FakeHooks(HookSender):
    """A fake's webhooks: the documented payloads it fills in (``<fixtures>/<name>.json``, read
    once) and the status each object was last announced with, so that only changes are sent."""

    def __init__(
        self, sign: Callable[[Target, str, str, bytes], dict[str, str]], fixtures: Path, names: Iterable[str]
    ) -> None:
        super().__init__(sign)
        self._seen: dict[Any, str] = {}
        self._templates = {name: json.loads((fixtures / f"{name}.json").read_text()) for name in names}

    def template(self, name: str) -> dict[str, Any]:
        """A fresh copy of the documented payload ``name``, to fill in."""
        return copy.deepcopy(self._templates[name])

    def changed(self, key: Any, status: str) -> bool:
        """Whether ``status`` is news about ``key``; it is remembered as announced."""
        if self._seen.get(key) == status:
            return False
        self._seen[key] = status
        return True


def _post(url: str, headers: dict[str, str], body: bytes) -> int:
    parts = urlsplit(url)
    assert parts.hostname in ("127.0.0.1", "::1", "localhost"), "the fakes only send hooks to this machine"
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("POST", parts.path or "/", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return 0
    finally:
        conn.close()
