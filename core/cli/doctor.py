"""``flashfusion doctor``: ask every pipeline's provider whether it can work (credentials,
repository or project, workflow and its ``workflow_dispatch`` trigger, ...), one line each."""

from __future__ import annotations

import sys

import peewee

from flashfusion.core.checks import run_checks
from flashfusion.core.hooks import activity
from flashfusion.core.storage.db import iso, utcnow


def register(sub) -> None:
    doctor = sub.add_parser(
        "doctor",
        help="check each pipeline against its provider (credentials, workflow, project)",
        description="Calls each pipeline's provider check and prints one line per pipeline: "
        "'ID: ok', or 'ID: problem' for each problem. Exit code 1 if any problem.",
    )
    doctor.add_argument(
        "--pipeline", action="append", metavar="ID", dest="pipelines", help="check only this pipeline (repeatable)"
    )
    doctor.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="give up on a pipeline's check after this long (default 30)",
    )
    doctor.set_defaults(handler=_doctor, migrate_first=False)


def _doctor(args, gateway) -> int:
    configured = gateway.config.pipelines
    wanted = args.pipelines or sorted(configured)
    unknown = [pid for pid in wanted if pid not in configured]
    if unknown:
        print(
            f"flashfusion doctor: unknown pipeline {unknown[0]!r} (configured: {', '.join(sorted(configured))})",
            file=sys.stderr,
        )
        return 2
    if not wanted:
        print("no pipelines configured")
        return 0
    results = run_checks(gateway, [configured[pid] for pid in wanted], timeout=args.timeout)
    bad = 0
    for pid in wanted:
        result = results[pid]
        if result.ok:
            print(f"{pid}: ok ({result.provider})")
            continue
        bad += 1
        for problem in result.problems:
            print(f"{pid}: {problem}" if result.finished else f"{pid}: {result.provider} check: {problem}")
    _hooks(gateway)
    print(f"{len(wanted)} pipelines checked: {len(wanted) - bad} ok, {bad} with problems")
    return 1 if bad else 0


def _hooks(gateway) -> None:
    """One line per provider that takes webhooks: when the last one arrived, or that they are silent."""
    try:
        entries = activity.report(gateway.providers.instances)
    except peewee.DatabaseError:
        return  # not migrated yet: nothing received
    now = utcnow()
    for entry in entries:
        last = iso(entry.last_received) if entry.last_received else "never"
        state = "silent: polling at poll_interval_seconds" if entry.silent(now) else "arriving"
        print(f"hooks {entry.provider}: last received {last} ({state})")
