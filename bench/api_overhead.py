"""API overhead: authenticated get-status (auth, rate limit and usage counting on) against a
bare Falcon app returning the same bytes, same gunicorn settings, same wrk, alternating.

    python bench/api_overhead.py [--database-url postgresql://...] [--seconds 8] [--rounds 3]
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

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BIN, free_port, gateway, machine, require, wait_http, wrk  # noqa: E402

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
        [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
         "--worker-class", "gthread", "--keep-alive", "5", "--reuse-port", "--no-control-socket",
         "--log-level", "warning", "bare_app:app"],
        cwd=Path(__file__).resolve().parent, env=dict(os.environ, BENCH_BODY_FILE=str(body_file)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_http(f"http://127.0.0.1:{port}/")
    return proc, f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    require("wrk", "apt-get install wrk")
    print(machine())
    backend = "PostgreSQL" if args.database_url else "SQLite"
    with gateway(args.database_url, workers=args.workers, threads=args.threads, with_worker=True) as gw:
        key = gw.key()
        headers = {"X-API-Key": key}
        run_id = httpx.post(gw.url + "/api/trigger-pipeline", json={"pipeline_id": "demo"}, headers=headers).json()["run_id"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            answer = httpx.get(gw.url + "/api/get-status", params={"run_id": run_id}, headers=headers)
            if answer.json()["run"]["phase"] == "completed":
                break
            time.sleep(0.1)
        body = answer.content
        bare, bare_url = run_bare(body, args.workers, args.threads)
        target = f"/api/get-status?run_id={run_id}"
        results = {"gateway": [], "bare": []}
        try:
            for _ in range(args.rounds):
                results["gateway"].append(wrk(gw.url + target, seconds=args.seconds, connections=args.connections,
                                              headers=headers))
                results["bare"].append(wrk(bare_url + target, seconds=args.seconds, connections=args.connections,
                                           headers=headers))
            trigger = wrk(gw.url + "/api/trigger-pipeline", seconds=args.seconds, connections=args.connections,
                          headers=headers, script=_lua())
        finally:
            os.killpg(bare.pid, signal.SIGTERM)
            bare.wait()
    print(f"\nGET /api/get-status, {backend}, gunicorn {args.workers} workers x {args.threads} threads, "
          f"wrk {args.connections} connections, {args.rounds} alternating rounds of {args.seconds} s")
    print(f"{'':10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}  non-2xx")
    for name, runs in results.items():
        rps = statistics.median(r.rps for r in runs)
        p50 = statistics.median(r.p50_ms for r in runs)
        p99 = statistics.median(r.p99_ms for r in runs)
        print(f"{name:10} {rps:9.0f} {p50:8.2f} {p99:8.2f}  {sum(r.non_2xx for r in runs)}")
    ratio = statistics.median(r.rps for r in results["gateway"]) / statistics.median(r.rps for r in results["bare"])
    print(f"ratio gateway/bare: {ratio:.2f}  (target >= 0.60)")
    print(f"\nPOST /api/trigger-pipeline (local provider, worker running): {trigger.rps:.0f} req/s, "
          f"p50 {trigger.p50_ms:.2f} ms, p99 {trigger.p99_ms:.2f} ms, non-2xx {trigger.non_2xx}")


def _lua() -> str:
    path = Path(tempfile.mkstemp(prefix="ffbench-", suffix=".lua")[1])
    path.write_text(POST_LUA)
    return str(path)


if __name__ == "__main__":
    main()
