"""Start the real thing: ``flashfusion serve`` (gunicorn + worker) or a lone worker, as
child processes, on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

FLASHFUSION = str(Path(sys.executable).with_name("flashfusion"))

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli(
    *args: str, config: Path, env: dict | None = None, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, **(env or {}))
    result = subprocess.run(
        [FLASHFUSION, "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=full_env,
        input=input,
        timeout=60,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"flashfusion {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


def cli_key_answer(
    config: Path,
    permissions: str = "trigger_pipeline,read_runs",
    *,
    name: str = "k",
    pipelines: str = "",
    env: dict | None = None,
) -> dict:
    """What ``flashfusion keys create --json`` prints: the new key's id, name, preview and
    plaintext (shown once)."""
    args = ["keys", "create", "--name", name, "--permissions", permissions, "--json"]
    if pipelines:
        args += ["--pipelines", pipelines]
    return json.loads(cli(*args, config=config, env=env).stdout)


def cli_key(config: Path, *args: Any, **kwargs: Any) -> str:
    """A new API key's plaintext, made by ``flashfusion keys create`` (arguments as ``cli_key_answer``)."""
    return cli_key_answer(config, *args, **kwargs)["plaintext_key"]


def terminate_when(proc: subprocess.Popen, ready: Callable[[str], T], timeout: float = 60) -> tuple[T, str, str]:
    """Read ``proc``'s first line of output, call ``ready`` with it (to wait for, or assert,
    what the test needs), then SIGTERM ``proc``: ``ready``'s answer, the rest of standard
    output, standard error. ``proc`` is killed if it is still running after that."""
    try:
        answer = ready(proc.stdout.readline())
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return answer, out, err


@dataclass
class Process:
    proc: subprocess.Popen
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Server:
    url: str
    config: Path
    process: Process
    extra: dict = field(default_factory=dict)

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"X-API-Key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def spawn(args: list[str], log: Path, env: dict | None = None, cwd: Path | None = None) -> Process:
    handle = open(log, "ab")
    proc = subprocess.Popen(
        args,
        stdout=handle,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, **(env or {})),
        cwd=cwd,
        start_new_session=True,
    )
    return Process(proc=proc, log=log)


def start_server(config: Path, tmp_path: Path, *extra_args: str, env: dict | None = None) -> Server:
    port = free_port()
    process = spawn(
        [FLASHFUSION, "--config", str(config), "serve", "--bind", f"127.0.0.1:{port}", *extra_args],
        tmp_path / "serve.log",
        env=env,
        cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise AssertionError(f"serve exited early:\n{process.output()}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return Server(url=url, config=config, process=process)
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.stop(signal.SIGKILL)
    raise AssertionError(f"serve did not answer within 30 s:\n{process.output()}")


def wait_for(predicate, timeout: float = 30, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")
