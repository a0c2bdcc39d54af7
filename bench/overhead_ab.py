"""Before/after for ``api_overhead.py``: another tree's gateway against this one's, and the bare app,
in one run with every wrk round interleaved.

    python bench/overhead_ab.py --before /path/to/other/tree/.venv/bin/flashfusion [--rounds 7 --seconds 4]

On a small VM the ratio of one round to the next moves by a third (which core the scheduler wakes a
waiting thread on decides how much each hand-off of the GIL costs), so two separate runs of
``api_overhead.py`` cannot tell a change of 0.1 from noise. Here each round measures every target once,
one after the other (each round starting with the next target), and the figure is the median over
rounds of each round's ratio to the bare app.
Both gateways run their worker at the default tick; ``--database-url`` (a PostgreSQL server's URL
without a database name) gives each gateway fresh databases there instead of SQLite files. On
PostgreSQL the same tree against itself measured up to 0.2 lower in the pair started second: run it
once more with ``--after-first`` and report both.
``--pinned`` puts each server's processes on CPU 0 and wrk on CPU 1 before every round: what is left
is each server's own cost per request on one core (the spread of rounds drops from about a third
to a few percent), without the cross-core GIL hand-offs that an unpinned 2-core VM adds to both.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
from pathlib import Path

import httpx

from flashfusion.core.config import WorkerConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from api_overhead import finished_run, run_bare  # noqa: E402
from common import WrkResult, empty_database, gateway, pin_tree, wrk, wrk_options  # noqa: E402


def start(stack: contextlib.ExitStack, label: str, binary: str, server: str | None, workers: int, threads: int):
    """The two targets of one tree: an ample key's get-status and an exhausted key's."""
    common.FLASHFUSION = binary  # gateway() and its CLI calls use the tree's own executable
    shape = {"workers": workers, "threads": threads}
    gw = stack.enter_context(
        gateway(
            empty_database(f"{server}/ab_{label}") if server else None,
            with_worker=True,
            tick=WorkerConfig.tick_seconds,
            **shape,
        )
    )
    headers = {"X-API-Key": gw.key()}
    run_id, body = finished_run(gw.url, headers)
    spent = stack.enter_context(
        gateway(empty_database(f"{server}/ab_{label}_spent") if server else None, limit=1, **shape)
    )
    spent_headers = {"X-API-Key": spent.key()}
    httpx.get(spent.url + "/api/get-status", params={"run_id": run_id}, headers=spent_headers)
    target = f"/api/get-status?run_id={run_id}"
    return body, {
        f"gateway {label}": (gw.url + target, headers, gw.procs[0].pid),
        f"exhausted {label}": (spent.url + target, spent_headers, spent.procs[0].pid),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the other tree's flashfusion executable")
    parser.add_argument("--database-url", help="a PostgreSQL server, without a database name")
    parser.add_argument(
        "--after-first",
        action="store_true",
        help="start this tree's gateways first (on PostgreSQL the later-started pair measured slower)",
    )
    parser.add_argument(
        "--pinned",
        action="store_true",
        help="each server's processes on CPU 0 and wrk on CPU 1: no cross-core hand-offs of the GIL, no "
        "scheduler's choice; the ratio is that of one core each",
    )
    args = wrk_options(parser, seconds=4, rounds=7)
    this_tree = common.FLASHFUSION
    rows: dict[str, list[WrkResult]] = {}
    with contextlib.ExitStack() as stack:
        targets = {}
        trees = [("before", args.before), ("after", this_tree)]
        for label, binary in reversed(trees) if args.after_first else trees:
            body, more = start(stack, label, binary, args.database_url, args.workers, args.threads)
            targets.update(more)
        bare, bare_url = run_bare(body, args.workers, args.threads)
        stack.callback(lambda: (bare.terminate(), bare.wait()))
        targets["bare"] = (bare_url + "/api/get-status?run_id=run_0000000000000000", {}, bare.pid)
        names = list(targets)
        for number in range(1, args.rounds + 1):
            shift = (number - 1) % len(names)  # each round starts with another target: no place is always first
            for name in names[shift:] + names[:shift]:
                url, headers, pid = targets[name]
                if args.pinned:
                    pin_tree(pid, 0)
                result = wrk(url, seconds=args.seconds, headers=headers, server_pid=pid, cpu=1 if args.pinned else None)
                rows.setdefault(name, []).append(result)
            print(f"round {number} of {args.rounds} done", flush=True)
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"\nGET /api/get-status, {backend}, {args.workers} workers x {args.threads} threads, 32 connections"
        f"{', servers on CPU 0 and wrk on CPU 1' if args.pinned else ''}, "
        f"{args.rounds} interleaved rounds of {args.seconds} s; / bare: median of the per-round ratios"
    )
    print(f"{'':18} {'req/s':>7} {'/ bare':>7} {'CPU us/req':>11}  per round")
    for name, runs in rows.items():
        ratios = [run.rps / base.rps for run, base in zip(runs, rows["bare"], strict=True)]
        cpu = statistics.median(run.cpu_us for run in runs)
        print(
            f"{name:18} {statistics.median(run.rps for run in runs):7.0f} {statistics.median(ratios):7.2f} "
            f"{cpu:11.0f}  {' '.join(f'{r:.2f}' for r in ratios)}"
        )


if __name__ == "__main__":
    main()
