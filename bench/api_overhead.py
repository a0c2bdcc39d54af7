"""API overhead: authenticated get-status (key check, rate limit and usage counting on)
against a bare Falcon app returning the same bytes, same gunicorn settings, same wrk,
alternating.

    python bench/api_overhead.py [--database-url postgresql://...] [--seconds 8] [--rounds 3]

Rows, each the median of ``--rounds`` alternating rounds:

* ``gateway``: ``GET /api/get-status`` of a finished run with a key whose budget is ample; its
  run worker runs beside it at the default tick (its CPU is counted in the gateway's).
* ``exhausted``: the same request with a key whose rate limit is spent (every answer a 429),
  on a second gateway started with a limit of 1 request per hour.
* ``bare``: the baseline.
* ``gateway @half`` / ``bare @half``: both paced at half the gateway's peak rate (each wrk
  connection waits between requests), to compare latency when neither is saturated; the
  difference of their p99 is the latency the gateway adds.

Then ``POST /api/trigger-pipeline`` (every request creates a run) once.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from flashfusion.core.config import WorkerConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BIN, WrkResult, empty_database, free_port, gateway, serve_options, wait_http, wrk, wrk_options  # noqa: E402

POST_LUA = """
wrk.method = "POST"
wrk.body = '{"pipeline_id": "demo"}'
wrk.headers["Content-Type"] = "application/json"
"""


def run_bare(body: bytes, workers: int, threads: int):
    body_file = Path(tempfile.mkstemp(prefix="ffbench-body-")[1])
    body_file.write_bytes(body)
    port = free_port()
    proc = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            *serve_options(port, workers, threads),
            "--worker-class",
            "gthread",
            "--keep-alive",
            "5",
            "--reuse-port",
            "--no-control-socket",
            "--log-level",
            "warning",
            "bare_app:app",
        ],
        cwd=Path(__file__).resolve().parent,
        env=dict(os.environ, BENCH_BODY_FILE=str(body_file)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_http(f"http://127.0.0.1:{port}/")
    return proc, f"http://127.0.0.1:{port}"


def _script(text: str) -> str:
    path = Path(tempfile.mkstemp(prefix="ffbench-", suffix=".lua")[1])
    path.write_text(text)
    return str(path)


def paced(rate: float, connections: int) -> str:
    """A wrk script holding the total rate near ``rate``: each connection waits
    ``connections / rate`` seconds before each request (wrk's ``delay``)."""
    return _script(f"function delay() return {max(1, round(connections / rate * 1000))} end\n")


def finished_run(url: str, headers: dict) -> tuple[str, bytes]:
    run_id = httpx.post(url + "/api/trigger-pipeline", json={"pipeline_id": "demo"}, headers=headers).json()["run_id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = httpx.get(url + "/api/get-status", params={"run_id": run_id}, headers=headers)
        if answer.json()["run"]["phase"] == "completed":
            break
        time.sleep(0.1)
    return run_id, answer.content


def alternate(rounds: int, targets: dict[str, tuple[str, dict]], **load: Any) -> dict[str, list[WrkResult]]:
    """``rounds`` rounds of one wrk run per target in turn (url, wrk options), the results by target:
    alternating spreads the machine's changing background load over all targets alike."""
    rows: dict[str, list[WrkResult]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, (url, options) in targets.items():
            rows[name].append(wrk(url, **options, **load))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--connections", type=int, default=32)
    args = wrk_options(parser, seconds=8, rounds=3)
    print(f"load average at start: {Path('/proc/loadavg').read_text().split()[:3]}")
    backend = "PostgreSQL" if args.database_url else "SQLite"
    exhausted_db = None
    if args.database_url:  # the second gateway needs an empty database of its own, beside the first
        exhausted_db = args.database_url + "_exhausted"
        empty_database(exhausted_db)
    with (
        gateway(
            args.database_url,
            workers=args.workers,
            threads=args.threads,
            with_worker=True,
            tick=WorkerConfig.tick_seconds,
        ) as gw,
        gateway(exhausted_db, workers=args.workers, threads=args.threads, limit=1) as spent,
    ):
        headers = {"X-API-Key": gw.key()}
        run_id, body = finished_run(gw.url, headers)
        spent_headers = {"X-API-Key": spent.key()}
        httpx.get(spent.url + "/api/get-status", params={"run_id": run_id}, headers=spent_headers)
        assert (
            httpx.get(spent.url + "/api/get-status", params={"run_id": run_id}, headers=spent_headers).status_code
            == 429
        )
        bare, bare_url = run_bare(body, args.workers, args.threads)
        target = f"/api/get-status?run_id={run_id}"
        try:
            load = {"seconds": args.seconds, "connections": args.connections}
            rows = alternate(
                args.rounds,
                {
                    "gateway": (gw.url + target, {"headers": headers, "server_pid": gw.procs[0].pid}),
                    "exhausted": (spent.url + target, {"headers": spent_headers, "server_pid": spent.procs[0].pid}),
                    "bare": (bare_url + target, {"server_pid": bare.pid}),
                },
                **load,
            )
            half = statistics.median(r.rps for r in rows["gateway"]) / 2
            script = paced(half, args.connections)
            rows |= alternate(
                args.rounds,
                {"gateway @half": (gw.url + target, {"headers": headers}), "bare @half": (bare_url + target, {})},
                script=script,
                **load,
            )
            trigger = wrk(gw.url + "/api/trigger-pipeline", headers=headers, script=_script(POST_LUA), **load)
        finally:
            os.killpg(bare.pid, signal.SIGTERM)
            bare.wait()
    print(
        f"\nGET /api/get-status, {backend}, gunicorn {args.workers} workers x {args.threads} threads, "
        f"wrk {args.connections} connections, {args.rounds} alternating rounds of {args.seconds} s"
    )
    bare_rps = statistics.median(r.rps for r in rows["bare"])
    print(f"{'':14} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}  non-2xx  / bare  server CPU us/req")
    p99 = {}
    cpu = {}
    for name, runs in rows.items():
        rps = statistics.median(r.rps for r in runs)
        p99[name] = statistics.median(r.p99_ms for r in runs)
        cpu[name] = statistics.median(r.cpu_us for r in runs)
        print(
            f"{name:14} {rps:9.0f} {statistics.median(r.p50_ms for r in runs):8.2f} {p99[name]:8.2f}  "
            f"{sum(r.non_2xx for r in runs):7}  {rps / bare_rps:6.2f}  "
            + (f"{cpu[name]:8.0f}" if cpu[name] else "       -")
        )
    ratio = statistics.median(r.rps for r in rows["gateway"]) / bare_rps
    spent_ratio = statistics.median(r.rps for r in rows["exhausted"]) / bare_rps
    print(f"ratio gateway/bare: {ratio:.2f}  (target >= 0.60, aim 0.75)")
    print(
        f"server CPU per request, bare/gateway: {cpu['bare'] / cpu['gateway']:.2f}, bare/exhausted: "
        f"{cpu['bare'] / cpu['exhausted']:.2f} (what the ratios above would be if the server had the cores to "
        "itself; the gateway's tree includes its run worker)"
    )
    print(f"ratio exhausted key/bare: {spent_ratio:.2f}  (target >= 0.80)")
    print(
        f"p99 added at half the gateway's peak ({half:.0f} req/s): {p99['gateway @half'] - p99['bare @half']:.2f} ms "
        f"(target <= 2 ms)"
    )
    print(
        f"\nPOST /api/trigger-pipeline (local provider, worker running): {trigger.rps:.0f} req/s, "
        f"p50 {trigger.p50_ms:.2f} ms, p99 {trigger.p99_ms:.2f} ms, non-2xx {trigger.non_2xx}"
    )
    print(f"load average at end: {Path('/proc/loadavg').read_text().split()[:3]}")


if __name__ == "__main__":
    main()
