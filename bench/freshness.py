"""Freshness: time from a run completing upstream (in the fake GitHub) to get-status showing
it completed, and to the ``run.completed`` webhook arriving at a local receiver.

    python bench/freshness.py [--intervals 10,2] [--runs 24] [--modes poll,hooks]

A real ``flashfusion serve`` (gunicorn + one worker) is started per poll interval, with
``[providers.github] base_url`` pointing at the fake GitHub (real clock) and the token in the
environment. The worker and the webhook dispatcher use their default ticks (0.5 s and 0.2 s).
``--runs`` runs are triggered through the API and followed until the gateway has seen them
in progress; then they are completed one at a time, spaced by a random 0.2-0.6 poll
intervals, so completions fall at random points of the poll cycle. Each finished run's
get-status is read every 50 ms until it shows ``phase = completed`` (the resolution of the
get-status figure); the receiver time-stamps each webhook on arrival.

``--modes``: ``poll`` as above; ``hooks`` the same with ``webhook_secret_env`` set and the fake
GitHub sending its signed ``workflow_run`` / ``workflow_job`` hooks to ``/hooks/github`` (so
polling is only the reconciler). Each interval is measured in both modes, one after the other.

Expected: with a poll every I seconds a completion waits a uniform 0..I for the next list,
so p50 about I/2 and p95 about 0.95 I, plus the worker tick and the requests of the cycle.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from common import gateway, machine  # noqa: E402
from testkit.fake_github import DEFAULT_TOKEN, FakeGitHub  # noqa: E402
from testkit.receiver import Receiver  # noqa: E402

REPO = "acme/web"
TOKEN_ENV = "FFBENCH_GITHUB_TOKEN"
OBSERVE_EVERY = 0.05
HOOK_SECRET_ENV = "FFBENCH_HOOK_SECRET"
HOOK_SECRET = "bench-hook-secret-0123456789"

EXTRA = """
[providers.github]
base_url = "{url}"
token_env = "{token_env}"
poll_interval_seconds = {interval}
{hooks}
[pipelines.web]
name = "Web"
provider = "github"
repository_name = "{repo}"
workflow = "deploy.yml"
branch = "main"

[webhooks]
allow_http = true
allow_private_networks = true
"""


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def wait_until(predicate, timeout: float, what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise RuntimeError(f"timed out waiting for {what}")


def measure(interval: float, count: int, rng: random.Random, hooks: bool = False) -> dict:
    with FakeGitHub() as fake, Receiver() as rx:
        fake.add_repo(REPO)
        fake.add_workflow(REPO, "deploy.yml", jobs=[("build", ["Set up job", "Run tests", "Complete job"])])
        extra = EXTRA.format(
            url=fake.url,
            token_env=TOKEN_ENV,
            interval=interval,
            repo=REPO,
            hooks=f'webhook_secret_env = "{HOOK_SECRET_ENV}"' if hooks else "",
        )
        # worker tick back to its default (bench/common's config speeds it up for other benches)
        env = {TOKEN_ENV: DEFAULT_TOKEN, "FLASHFUSION_WORKER__TICK_SECONDS": "0.5", HOOK_SECRET_ENV: HOOK_SECRET}
        with gateway(with_worker=True, extra=extra, env=env) as gw:
            if hooks:
                fake.hooks.add_target(f"{gw.url}/hooks/github", HOOK_SECRET)
            key = gw.key("trigger_pipeline,read_runs,webhook")
            headers = {"X-API-Key": key}
            with httpx.Client(base_url=gw.url, headers=headers, timeout=30) as api:
                made = api.post("/functions/createWebhook", json={"url": rx.url("/hook"), "events": ["run.completed"]})
                assert made.status_code == 200, made.text
                run_ids = []
                for _ in range(count):
                    answer = api.post("/api/trigger-pipeline", json={"pipeline_id": "web"})
                    assert answer.status_code in (200, 201, 202), answer.text
                    run_ids.append(answer.json()["run_id"])

                def status(run_id: str) -> dict:
                    return api.get("/api/get-status", params={"run_id": run_id}).json()["run"]

                upstream: dict[str, int] = {}

                def dispatched() -> bool:
                    for run_id in run_ids:
                        if run_id not in upstream:
                            up = status(run_id).get("upstream_run_id")
                            if up:
                                upstream[run_id] = int(up)
                    return len(upstream) == count

                wait_until(dispatched, 60 + 3 * interval, "every run to be dispatched")
                for run_id in run_ids:
                    fake.advance(upstream[run_id], 2)  # in progress, the job has started
                wait_until(
                    lambda: all(status(r)["provider_status"] == "in_progress" for r in run_ids),
                    60 + 3 * interval,
                    "the gateway to see every run in progress",
                    every=0.5,
                )
                time.sleep(rng.uniform(0, interval))  # start at a random point of the cycle

                finished_at: dict[str, float] = {}
                seen_at: dict[str, float] = {}
                observations = 0
                pending = list(run_ids)
                next_finish = time.monotonic()
                deadline = time.monotonic() + count * interval + 60
                while (pending or len(seen_at) < count) and time.monotonic() < deadline:
                    now = time.monotonic()
                    if pending and now >= next_finish:
                        run_id = pending.pop(0)
                        fake.finish(upstream[run_id])
                        finished_at[run_id] = time.monotonic()
                        next_finish = finished_at[run_id] + rng.uniform(0.2, 0.6) * interval
                    for run_id in [r for r in finished_at if r not in seen_at]:
                        observations += 1
                        if status(run_id)["phase"] == "completed":
                            seen_at[run_id] = time.monotonic()
                    time.sleep(OBSERVE_EVERY)
                if len(seen_at) < count:
                    raise RuntimeError(f"only {len(seen_at)} of {count} runs were seen completed")

                def delivered() -> dict[str, float]:
                    out = {}
                    for r in rx.snapshot():
                        body = json.loads(r.body)
                        if body.get("event") == "run.completed":
                            out.setdefault(
                                (body.get("data") or {}).get("id") or (body.get("data") or {}).get("run_id"), r.at
                            )
                    return out

                wait_until(lambda: set(run_ids) <= set(delivered()), 60, "every run.completed webhook")
                arrived = delivered()
                sample = next(r for r in rx.snapshot())
                signed = "webhook-signature" in sample.headers
    status_lat = [seen_at[r] - finished_at[r] for r in run_ids]
    hook_lat = [arrived[r] - finished_at[r] for r in run_ids]
    refused = [r for r in fake.hooks.sent if r[2] != 202]
    if refused:
        raise RuntimeError(f"{len(refused)} hooks were not accepted: {refused[:3]}")
    return {
        "interval": interval,
        "mode": "hooks" if hooks else "poll",
        "runs": count,
        "status": status_lat,
        "webhook": hook_lat,
        "observations": observations,
        "signed": signed,
        "hooks_sent": len(fake.hooks.sent),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--intervals", default="10,2", help="poll_interval_seconds values, comma-separated")
    parser.add_argument("--runs", type=int, default=24)
    parser.add_argument("--modes", default="poll,hooks", help="poll (hooks off), hooks (the fake's hooks on)")
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args()
    print(machine())
    rng = random.Random(args.seed)
    rows = []
    for interval in [float(i) for i in args.intervals.split(",")]:
        for mode in args.modes.split(","):
            print(f"  poll_interval_seconds = {interval:g}, {mode}: {args.runs} runs ...", flush=True)
            rows.append(measure(interval, args.runs, rng, hooks=mode == "hooks"))
    print(
        f"\nfreshness after the upstream run completes (fake GitHub, {args.runs} runs per interval, "
        f"get-status resolution {OBSERVE_EVERY * 1000:.0f} ms)"
    )
    head = (
        f"{'poll interval':>13} {'mode':>5} | {'get-status p50':>14} {'p95':>7} {'max':>7} | "
        f"{'webhook p50':>11} {'p95':>7} {'max':>7} | {'p50 / interval':>14}"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        s, w = row["status"], row["webhook"]
        print(
            f"{row['interval']:>12g}s {row['mode']:>5} | {pct(s, 50):>13.2f}s {pct(s, 95):>6.2f}s {max(s):>6.2f}s | "
            f"{pct(w, 50):>10.2f}s {pct(w, 95):>6.2f}s {max(w):>6.2f}s | {pct(s, 50) / row['interval']:>14.2f}"
        )
    print(
        f"(webhooks signed: {all(r['signed'] for r in rows)}; get-status reads made while waiting: "
        f"{', '.join(str(r['observations']) for r in rows)}; provider hooks sent and accepted: "
        f"{', '.join(str(r['hooks_sent']) for r in rows if r['mode'] == 'hooks') or '-'})"
    )


if __name__ == "__main__":
    main()
