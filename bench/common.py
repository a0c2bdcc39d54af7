"""Shared helpers for the benchmarks: machine description, temporary gateways, wrk."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from flashfusion.core.config import ServerConfig

BIN = Path(sys.executable).parent
FLASHFUSION = str(BIN / "flashfusion")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, AttributeError):
        pass
    return (
        f"{platform.node()}: {os.cpu_count()} CPUs ({cpu}){mem}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_options(port: int, workers: int, threads: int) -> list[str]:
    """The listening address and pool size, spelled alike for gunicorn and ``flashfusion serve``."""
    return ["--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads)]


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


CONFIG = """
[server]
database_url = "{database_url}"
[rate_limits]
api_requests_per_hour = {limit}
[worker]
tick_seconds = {tick}
[providers.local]
workdir = "{workdir}"
poll_interval_seconds = {tick}
[pipelines.demo]
provider = "local"
repository_name = "local/demo"
steps = [{{ name = "build", run = "true" }}]
{extra}
"""


@dataclass
class Gateway:
    root: Path
    config: Path
    url: str
    procs: list

    def cli(self, *args: str) -> str:
        return subprocess.run(
            [FLASHFUSION, "--config", str(self.config), *args], check=True, capture_output=True, text=True
        ).stdout

    def key(self, permissions: str = "trigger_pipeline,read_runs,read_config") -> str:
        return json.loads(self.cli("keys", "create", "--name", "bench", "--permissions", permissions, "--json"))[
            "plaintext_key"
        ]


@contextmanager
def gateway(
    database_url: str | None = None,
    *,
    workers: int = ServerConfig.workers,
    threads: int = ServerConfig.threads,
    with_worker: bool = False,
    limit: int = 1_000_000_000,
    extra: str = "",
    env: dict | None = None,
    tick: float = 0.05,
) -> Iterator[Gateway]:
    """A ``flashfusion serve`` on a fresh database. ``tick``: the run worker's tick and the local
    provider's poll interval (short, so that benchmarks' runs finish quickly)."""
    root = Path(tempfile.mkdtemp(prefix="ffbench-"))
    url = database_url or f"sqlite:///{root / 'bench.db'}"
    config = root / "flashfusion.toml"
    config.write_text(CONFIG.format(database_url=url, limit=limit, workdir=root / "runs", extra=extra, tick=tick))
    port = free_port()
    args = [FLASHFUSION, "--config", str(config), "serve", *serve_options(port, workers, threads)]
    if not with_worker:
        args.append("--no-worker")
    log = open(root / "serve.log", "wb")
    proc = subprocess.Popen(
        args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=dict(os.environ, **(env or {}))
    )
    gw = Gateway(root=root, config=config, url=f"http://127.0.0.1:{port}", procs=[proc])
    try:
        wait_http(gw.url + "/healthz")
        yield gw
    finally:
        for p in gw.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in gw.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    requests: int = 0
    cpu_us: float = 0.0  # server CPU per request (wrk(server_pid=...))


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _tree_stats(pid: int) -> dict[int, list[str]]:
    """``/proc/<pid>/stat`` fields (after the command name) of ``pid`` and its live descendants."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = fields
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = {}, [pid]
    while todo:
        current = todo.pop()
        if current in stats:
            found[current] = stats[current]
        todo += children.get(current, [])
    return found


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and all its descendants that are alive now."""
    tick = os.sysconf("SC_CLK_TCK")
    return sum(int(fields[11]) + int(fields[12]) for fields in _tree_stats(pid).values()) / tick


def pin_tree(pid: int, cpu: int) -> None:
    """Every thread of ``pid`` and of its descendants onto ``cpu`` (threads started later
    inherit it from the thread that starts them)."""
    for process in _tree_stats(pid):
        try:
            for task in Path(f"/proc/{process}/task").iterdir():
                os.sched_setaffinity(int(task.name), {cpu})
        except OSError:
            continue


def wrk(
    url: str,
    *,
    seconds: int = 8,
    connections: int = 32,
    threads: int = 2,
    headers: dict | None = None,
    script: str | None = None,
    server_pid: int | None = None,
    cpu: int | None = None,
) -> WrkResult:
    """One wrk round. With ``server_pid``, also the CPU time that process tree spent per
    request: unlike requests per second, hardly changed by other work on the machine. With
    ``cpu``, wrk runs on that CPU alone."""
    args = [
        *(["taskset", "-c", str(cpu)] if cpu is not None else []),
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "--latency",
    ]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    if script:
        args += ["-s", script]
    cpu_before = tree_cpu_seconds(server_pid) if server_pid else 0.0
    out = subprocess.run(args + [url], check=True, capture_output=True, text=True).stdout
    cpu = tree_cpu_seconds(server_pid) - cpu_before if server_pid else 0.0
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    done = re.search(r"(\d+) requests in", out)
    requests = int(done.group(1)) if done else 0
    return WrkResult(
        rps=rps,
        p50_ms=p50,
        p99_ms=p99,
        non_2xx=int(bad.group(1)) if bad else 0,
        requests=requests,
        cpu_us=cpu / requests * 1e6 if server_pid and requests else 0.0,
    )


def require(tool: str, hint: str) -> None:
    if shutil.which(tool) is None:
        sys.exit(f"{tool} is needed: {hint}")


def wrk_options(parser: argparse.ArgumentParser, *, seconds: int, rounds: int) -> argparse.Namespace:
    """Adds the options of every wrk benchmark (round length and count, the server's shape) and
    parses; checks that wrk is installed and prints the machine."""
    parser.add_argument("--seconds", type=int, default=seconds)
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--workers", type=int, default=ServerConfig.workers)
    parser.add_argument("--threads", type=int, default=ServerConfig.threads)
    args = parser.parse_args()
    require("wrk", "apt-get install wrk")
    print(machine())
    return args


def empty_database(url: str) -> str:
    """An empty database ``url`` on its PostgreSQL server (dropped first if it exists)."""
    import psycopg2

    admin, name = url.rsplit("/", 1)
    conn = psycopg2.connect(admin + "/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return url
