"""``flashfusion serve``: gunicorn (the API) and one worker, supervised together.

Both run as child processes. SIGTERM or SIGINT is passed on to both and the supervisor
waits for them; a worker that dies unexpectedly is restarted, a gunicorn that dies ends
the whole service with its exit code.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from flashfusion.core.config import Config
from flashfusion.core.observability import logs
from flashfusion.core.observability.metrics import MULTIPROC_VAR

RESTART_DELAY = 1.0


class AddressInUse(Exception):
    pass


def tcp_address(bind: str) -> tuple[str, int] | None:
    """``(host, port)`` of a ``host:port`` bind (IPv6 as ``[::1]:8080``); None for ``unix:``
    paths and anything else gunicorn may understand."""
    if bind.startswith(("unix:", "fd://")) or ":" not in bind:
        return None
    host, _, port = bind.rpartition(":")
    if not port.isdigit():
        return None
    return host.strip("[]") or "0.0.0.0", int(port)


def spread_connections(bind: str) -> bool:
    """Whether each gunicorn worker should listen on its own ``SO_REUSEPORT`` socket.

    With one shared socket, whichever worker wakes first accepts a burst of new connections;
    kept-alive clients then stay on it, and one process can end up serving 31 of 32
    connections while the other idles (measured under wrk). With a socket per worker the
    kernel spreads new connections across workers. Only for a TCP bind with a fixed port:
    port 0 would give every worker a different port."""
    address = tcp_address(bind)
    return address is not None and address[1] != 0 and hasattr(socket, "SO_REUSEPORT")


def check_address_free(bind: str) -> None:
    """Refuse a TCP address some other server (another FlashFusion included) listens on.
    Needed with per-worker ``SO_REUSEPORT`` sockets, which would otherwise quietly share the
    port with any earlier server that also set the option."""
    address = tcp_address(bind)
    if address is None:
        return
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise AddressInUse("the address is already in use by another server") from None
            raise


def gunicorn_command(config: Config, bind: str, workers: int, threads: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        bind,
        *(["--reuse-port"] if spread_connections(bind) else []),
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--worker-class",
        "flashfusion.core.web.gunicorn_worker.HeaderFirstWorker",
        "--logger-class",
        "flashfusion.core.web.gunicorn_worker.AddressLogger",
        "--graceful-timeout",
        "10",
        "--timeout",
        "90",
        "--keep-alive",
        "5",
        "--limit-request-field_size",
        "8190",
        "--name",
        "flashfusion-api",
        "--log-level",
        config.logging.level,
        "--config",
        "python:flashfusion.core.web.gunicorn_hooks",
        "--no-control-socket",
        "flashfusion.core.app:get_app()",
    ]


def worker_command() -> list[str]:
    return [sys.executable, "-m", "flashfusion.core.cli", "worker"]


def serve(config: Config, bind: str, workers: int, threads: int, with_worker: bool) -> int:
    try:
        check_address_free(bind)
    except (AddressInUse, OSError) as exc:
        print(f"cannot listen on {bind}: {exc}", file=sys.stderr, flush=True)
        return 2
    metrics_dir = tempfile.mkdtemp(prefix="flashfusion-metrics-")
    try:
        return _supervise(config, bind, workers, threads, with_worker, child_env(config, metrics_dir))
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def child_env(config: Config, metrics_dir: str) -> dict[str, str]:
    """The children's environment: the configuration, the log format and level (which the
    CLI's ``--log-level`` may have changed) and the private multiprocess metrics folder."""
    return dict(
        os.environ,
        FLASHFUSION_CONFIG=str(Path(config.path).resolve()),
        **{logs.FORMAT_VAR: config.logging.format, logs.LEVEL_VAR: config.logging.level, MULTIPROC_VAR: metrics_dir},
    )


def _supervise(config: Config, bind: str, workers: int, threads: int, with_worker: bool, env: dict[str, str]) -> int:
    api = subprocess.Popen(gunicorn_command(config, bind, workers, threads), env=env)
    worker = subprocess.Popen(worker_command(), env=env) if with_worker else None
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(
        f"FlashFusion listening on http://{bind}  (gunicorn: {workers} workers x {threads} threads"
        f"{', plus 1 worker' if with_worker else ''})",
        flush=True,
    )
    print(
        "Create an API key:  flashfusion keys create --name my-key "
        "--permissions trigger_pipeline,read_runs,read_config",
        flush=True,
    )
    print(
        f"Dashboard:          http://{bind}/dashboard  (make a login: flashfusion users create NAME --admin)",
        flush=True,
    )
    code = 0
    try:
        while not stopping:
            if api.poll() is not None:
                code = api.returncode or 1
                print(f"gunicorn exited with code {api.returncode}; stopping", file=sys.stderr, flush=True)
                break
            if worker is not None and worker.poll() is not None:
                print(f"worker exited with code {worker.returncode}; restarting", file=sys.stderr, flush=True)
                time.sleep(RESTART_DELAY)
                worker = subprocess.Popen(worker_command(), env=env)
            time.sleep(0.2)
    finally:
        for child in (api, worker):
            if child is not None and child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in (api, worker):
            if child is not None:
                try:
                    child.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
    return code
