"""``flashfusion serve``: gunicorn (the API) and one worker, supervised together.

Both run as child processes. SIGTERM or SIGINT is passed on to both and the supervisor
waits for them; a worker that dies unexpectedly is restarted, a gunicorn that dies ends
the whole service with its exit code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from flashfusion.core.config import Config

RESTART_DELAY = 1.0


def gunicorn_command(config: Config, bind: str, workers: int, threads: int) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn",
        "--bind", bind,
        "--workers", str(workers),
        "--threads", str(threads),
        "--worker-class", "gthread",
        "--graceful-timeout", "10",
        "--timeout", "90",
        "--keep-alive", "5",
        "--limit-request-field_size", "8190",
        "--name", "flashfusion-api",
        "--no-control-socket",
        "flashfusion.core.app:get_app()",
    ]


def worker_command() -> list[str]:
    return [sys.executable, "-m", "flashfusion.core.cli", "worker"]


def serve(config: Config, bind: str, workers: int, threads: int, with_worker: bool) -> int:
    env = dict(os.environ, FLASHFUSION_CONFIG=str(Path(config.path).resolve()))
    api = subprocess.Popen(gunicorn_command(config, bind, workers, threads), env=env)
    worker = subprocess.Popen(worker_command(), env=env) if with_worker else None
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"FlashFusion listening on http://{bind}  (gunicorn: {workers} workers x {threads} threads"
          f"{', plus 1 worker' if with_worker else ''})", flush=True)
    print("Create an API key:  flashfusion keys create --name my-key "
          "--permissions trigger_pipeline,read_runs,read_config", flush=True)
    print(f"Dashboard:          http://{bind}/dashboard  (make a login: flashfusion users create NAME --admin)",
          flush=True)
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
