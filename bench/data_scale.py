"""Scale of data: get-status latency and trigger throughput with 10^3 and 10^6 runs in the
database (the ratio should stay <= 1.2), database size per run, and the memory of a worker
tracking 10,000 active runs.

    python bench/data_scale.py [--database-url postgresql://...] [--big 1000000] [--skip-memory]

With --database-url the database must be empty and disposable: the benchmark fills it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import gateway, machine, require, wrk  # noqa: E402

POST_LUA = (
    'wrk.method = "POST"\nwrk.body = \'{"pipeline_id": "demo"}\'\nwrk.headers["Content-Type"] = "application/json"\n'
)
STEPS = json.dumps(
    [
        {
            "name": "build",
            "status": "success",
            "conclusion": "success",
            "exit_code": 0,
            "duration_seconds": 41.2,
            "started_at": "2026-01-01T00:00:00Z",
            "completed_at": "2026-01-01T00:00:41Z",
            "log_tail": "ok\n",
        },
        {
            "name": "test",
            "status": "success",
            "conclusion": "success",
            "exit_code": 0,
            "duration_seconds": 77.9,
            "started_at": "2026-01-01T00:00:41Z",
            "completed_at": "2026-01-01T00:01:59Z",
            "log_tail": "120 passed\n",
        },
    ],
    separators=(",", ":"),
)


def fill(config: Path, count: int) -> list[str]:
    """Insert ``count`` finished runs straight into the database; return a sample of ids."""
    from flashfusion.core.config import load_config
    from flashfusion.core.ids import new_id
    from flashfusion.core.storage import db as dbmod

    cfg = load_config(str(config))
    database = dbmod.open_database(cfg.server.database_url)
    p = database.param
    columns = (
        "id",
        "pipeline_id",
        "provider",
        "ref",
        "inputs",
        "status",
        "phase",
        "conclusion",
        "provider_status",
        "workflow_id",
        "upstream_id",
        "steps",
        "state",
        "cancel_requested",
        "cancel_sent",
        "version",
        "created_at",
        "updated_at",
        "started_at",
        "finished_at",
    )
    sql = f"INSERT INTO run ({', '.join(columns)}) VALUES ({', '.join([p] * len(columns))})"
    start = datetime(2025, 1, 1)
    sample: list[str] = []
    batch = 20_000
    with database.connection_context():
        for offset in range(0, count, batch):
            rows = []
            for i in range(offset, min(count, offset + batch)):
                run_id = new_id("run")
                created = start + timedelta(seconds=i * 30)
                ok = i % 7 != 0
                rows.append(
                    (
                        run_id,
                        "demo",
                        "local",
                        "main",
                        "{}",
                        "success" if ok else "failed",
                        "completed",
                        "success" if ok else "failure",
                        "completed",
                        "demo",
                        run_id,
                        STEPS,
                        "{}",
                        False,
                        False,
                        3,
                        created,
                        created + timedelta(seconds=120),
                        created + timedelta(seconds=1),
                        created + timedelta(seconds=120),
                    )
                )
                if i % max(1, count // 2000) == 0:
                    sample.append(run_id)
            with database.atomic():
                database.cursor().executemany(sql, rows)
        database.execute_sql("ANALYZE")
    return sample


def size_per_run(config: Path, count: int) -> float:
    from flashfusion.core.config import load_config
    from flashfusion.core.storage import db as dbmod

    cfg = load_config(str(config))
    database = dbmod.open_database(cfg.server.database_url)
    with database.connection_context():
        if dbmod.is_sqlite():
            database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            path = cfg.server.database_url[len("sqlite:///") :]
            size = os.path.getsize(path)
        else:
            size = database.execute_sql("SELECT pg_total_relation_size('run')").fetchone()[0]
    return size / max(1, count)


def latency(url: str, key: str, ids: list[str], n: int = 1500) -> tuple[float, float]:
    times = []
    with httpx.Client(base_url=url, headers={"X-API-Key": key}) as http:
        for _ in range(100):
            http.get("/api/get-status", params={"run_id": random.choice(ids)})
        for _ in range(n):
            run_id = random.choice(ids)
            t = time.perf_counter()
            answer = http.get("/api/get-status", params={"run_id": run_id})
            times.append((time.perf_counter() - t) * 1000)
            assert answer.status_code == 200, answer.text
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99)]


def measure(database_url: str | None, count: int, seconds: int) -> dict:
    with gateway(database_url) as gw:
        t = time.monotonic()
        ids = fill(gw.config, count)
        filled = time.monotonic() - t
        key = gw.key()
        p50, p99 = latency(gw.url, key, ids)
        lua = gw.root / "post.lua"
        lua.write_text(POST_LUA)
        trig = wrk(gw.url + "/api/trigger-pipeline", seconds=seconds, headers={"X-API-Key": key}, script=str(lua))
        per_run = size_per_run(gw.config, count)
        if database_url:
            from flashfusion.core.storage import db as dbmod

            with dbmod.open_database(database_url).connection_context():
                dbmod.database.execute_sql("TRUNCATE run, event, api_key, idempotency_key, rate_limit, audit_event")
    return {
        "runs": count,
        "fill_s": filled,
        "p50_ms": p50,
        "p99_ms": p99,
        "trigger_rps": trig.rps,
        "bytes_per_run": per_run,
    }


def worker_memory(active: int) -> dict:
    """RSS of a worker process before and after it tracks ``active`` running runs."""
    script = Path(__file__).resolve().parent / "worker_memory.py"
    out = subprocess.run([sys.executable, str(script), str(active)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url")
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    require("wrk", "apt-get install wrk")
    print(machine())
    backend = "PostgreSQL" if args.database_url else "SQLite"
    small = measure(args.database_url, args.small, args.seconds)
    big = measure(args.database_url, args.big, args.seconds)
    print(f"\n{backend}: get-status latency (sequential, random run ids) and trigger throughput (wrk, 32 conns)")
    print(f"{'runs':>10} {'p50 ms':>8} {'p99 ms':>8} {'trigger/s':>10} {'bytes/run':>10} {'fill s':>7}")
    for row in (small, big):
        print(
            f"{row['runs']:>10} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} {row['trigger_rps']:10.0f} "
            f"{row['bytes_per_run']:10.0f} {row['fill_s']:7.1f}"
        )
    print(
        f"ratio {args.big}/{args.small}: get-status p50 {big['p50_ms'] / small['p50_ms']:.2f} (target <= 1.2), "
        f"trigger throughput {small['trigger_rps'] / big['trigger_rps']:.2f} (slowdown; target <= 1.2)"
    )
    if not args.skip_memory:
        mem = worker_memory(10_000)
        print(
            f"\nworker memory: {mem['idle_mib']:.1f} MiB idle, {mem['tracking_mib']:.1f} MiB tracking "
            f"{mem['active']} active runs ({mem['kib_per_run']:.2f} KiB per run); one tick over all of them "
            f"took {mem['tick_s']:.2f} s"
        )


if __name__ == "__main__":
    main()
