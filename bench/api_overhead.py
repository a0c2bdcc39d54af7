"""API overhead: authenticated get-status (auth, rate limit and usage counting on) against a
bare Falcon app returning the same bytes, same gunicorn settings, same wrk, alternating.

    python bench/api_overhead.py [--database-url postgresql://...] [--seconds 8] [--rounds 3] [--split]

``--split`` (SQLite) also runs the gateway with its key step changed (``auth_variants.py``):
the same key UPDATE on a per-process copy of the database, and a read-only key lookup, to
show what the shared per-request write costs.
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

from flashfusion.core.config import ServerConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BIN, free_port, gateway, machine, require, wait_http, wrk  # noqa: E402

VARIANTS = ("private", "read-only")

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


def run_variant(config: Path, variant: str, workers: int, threads: int):
    """The gateway app under exactly the gunicorn command ``serve`` uses, key step swapped."""
    from flashfusion.core.config import load_config
    from flashfusion.core.serve import gunicorn_command
    port = free_port()
    command = gunicorn_command(load_config(str(config)), f"127.0.0.1:{port}", workers, threads)
    command[-1] = "auth_variants:app"
    proc = subprocess.Popen(command, cwd=Path(__file__).resolve().parent, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                            env=dict(os.environ, FLASHFUSION_CONFIG=str(config), BENCH_AUTH_VARIANT=variant))
    wait_http(f"http://127.0.0.1:{port}/healthz")
    return proc, f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=ServerConfig.workers)
    parser.add_argument("--threads", type=int, default=ServerConfig.threads)
    parser.add_argument("--split", action="store_true", help="also the per-process-write and read-only variants (SQLite)")
    args = parser.parse_args()
    if args.split and args.database_url:
        parser.error("--split measures SQLite only")
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
        servers = [run_bare(body, args.workers, args.threads)]
        urls = {"gateway": gw.url, "bare": servers[0][1]}
        try:
            for variant in (VARIANTS if args.split else ()):
                servers.append(run_variant(gw.config, variant, args.workers, args.threads))
                urls[variant] = servers[-1][1]
            target = f"/api/get-status?run_id={run_id}"
            results = {name: [] for name in urls}
            for _ in range(args.rounds):
                for name, url in urls.items():
                    results[name].append(wrk(url + target, seconds=args.seconds, connections=args.connections,
                                             headers=headers))
            trigger = wrk(gw.url + "/api/trigger-pipeline", seconds=args.seconds, connections=args.connections,
                          headers=headers, script=_lua())
        finally:
            for proc, _ in servers:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait()
    print(f"\nGET /api/get-status, {backend}, gunicorn {args.workers} workers x {args.threads} threads, "
          f"wrk {args.connections} connections, {args.rounds} alternating rounds of {args.seconds} s")
    bare_rps = statistics.median(r.rps for r in results["bare"])
    print(f"{'':10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}  non-2xx  / bare")
    for name, runs in results.items():
        rps = statistics.median(r.rps for r in runs)
        p50 = statistics.median(r.p50_ms for r in runs)
        p99 = statistics.median(r.p99_ms for r in runs)
        print(f"{name:10} {rps:9.0f} {p50:8.2f} {p99:8.2f}  {sum(r.non_2xx for r in runs):7}  {rps / bare_rps:6.2f}")
    ratio = statistics.median(r.rps for r in results["gateway"]) / bare_rps
    print(f"ratio gateway/bare: {ratio:.2f}  (target >= 0.60)")
    if args.split:
        print("private = the same key UPDATE on a per-process copy of the database; "
              "read-only = a SELECT of the key, no rate limit or usage count (auth_variants.py)")
    print(f"\nPOST /api/trigger-pipeline (local provider, worker running): {trigger.rps:.0f} req/s, "
          f"p50 {trigger.p50_ms:.2f} ms, p99 {trigger.p99_ms:.2f} ms, non-2xx {trigger.non_2xx}")


def _lua() -> str:
    path = Path(tempfile.mkstemp(prefix="ffbench-", suffix=".lua")[1])
    path.write_text(POST_LUA)
    return str(path)


if __name__ == "__main__":
    main()
