"""``flashfusion serve`` as an operator sees it: how connections reach the gunicorn workers,
and what happens when the address is taken."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import write_config
from testkit.server import FLASHFUSION, start_server

pytestmark = pytest.mark.e2e

WORKERS = 2


def _tcp_sockets(port: int) -> list[tuple[str, str]]:
    """(state, inode) of every IPv4 socket whose local port is ``port`` (Linux's /proc)."""
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port:
            found.append((fields[3], fields[9]))
    return found


def _owners(pids: list[int]) -> dict[str, int]:
    """socket inode -> the pid holding it."""
    owners = {}
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                owners[target[8:-1]] = pid
    return owners


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def _gunicorn_workers(serve_pid: int) -> list[int]:
    arbiters = [p for p in _children(serve_pid) if "gunicorn" in Path(f"/proc/{p}/cmdline").read_text()]
    assert len(arbiters) == 1
    return _children(arbiters[0])


def test_kept_alive_connections_are_spread_over_the_workers(tmp_path, db_url):
    config = write_config(tmp_path, db_url)
    server = start_server(config, tmp_path, "--no-worker", "--workers", str(WORKERS), "--threads", "2")
    port = int(server.url.rsplit(":", 1)[1])
    try:
        workers = _gunicorn_workers(server.process.proc.pid)
        assert len(workers) == WORKERS
        listening = [inode for state, inode in _tcp_sockets(port) if state == "0A"]
        owners = _owners(workers)
        assert sorted(owners[i] for i in listening) == sorted(workers)  # one listening socket per worker

        def connect(_: int) -> socket.socket:
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            return sock

        with ThreadPoolExecutor(32) as pool:  # a burst, as a load generator or proxy opens them
            clients = list(pool.map(connect, range(32)))
        try:
            client_ports = {c.getsockname()[1] for c in clients}
            served = Counter()
            for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
                fields = line.split()
                local, remote = fields[1], fields[2]
                if int(local.rsplit(":", 1)[1], 16) == port and int(remote.rsplit(":", 1)[1], 16) in client_ports:
                    served[_owners(workers).get(fields[9])] += 1
            assert sum(served.values()) == 32
            # the kernel hashes each connection to a worker: all 32 on one side has odds of 2^-31
            assert all(served[w] >= 4 for w in workers), served
        finally:
            for c in clients:
                c.close()
    finally:
        assert server.process.stop(signal.SIGTERM) == 0


def test_serve_refuses_an_address_in_use(tmp_path, db_url):
    config = write_config(tmp_path, db_url)
    server = start_server(config, tmp_path, "--no-worker")
    try:
        bind = server.url.removeprefix("http://")
        second = subprocess.run(
            [FLASHFUSION, "--config", str(config), "serve", "--no-worker", "--bind", bind],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 2
        assert f"cannot listen on {bind}: the address is already in use" in second.stderr
        assert "gunicorn" not in second.stdout  # nothing was started
        with server.client() as client:
            assert client.get("/healthz").status_code == 200
    finally:
        assert server.process.stop(signal.SIGTERM) == 0
