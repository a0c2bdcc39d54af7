"""Inbound provider webhooks accepted per second: ``POST /hooks/github`` on a real
``flashfusion serve`` (SQLite, serve's default workers and threads, no worker process so the
receiver is measured alone), driven by ``wrk`` on 127.0.0.1; ``GET /healthz`` of the same
server, alternating in the same run, is the baseline (the HTTP stack with no work).

    python bench/hooks_inbound.py [--seconds 5] [--rounds 3] [--connections 32]

Every request is a GitHub ``workflow_run`` delivery signed as GitHub signs it (HMAC-SHA256 of
the body, ``X-Hub-Signature-256``) with its own ``X-GitHub-Delivery`` id (GitHub does not sign
the id, so wrk's Lua script numbers them per thread and round); each must be verified, stored
in the inbox in its own committed INSERT and answered 202. Afterwards the inbox must hold
exactly one row per 202 "accepted", and a replay of already stored ids must all answer
"duplicate" and add nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sqlite3
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from common import gateway, machine, require, wrk  # noqa: E402
from testkit.fake_github_hooks import payload  # noqa: E402

SECRET_ENV, SECRET = "FFBENCH_HOOK_SECRET", "bench-hook-secret-0123456789"
EXTRA = f"""
[providers.github]
token_env = "FFBENCH_GITHUB_TOKEN"
webhook_secret_env = "{SECRET_ENV}"
"""

LUA = """
local n = 0
local tag = "%(round)s"
local counter = 1
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
wrk.method = "POST"
wrk.body = [==[%(body)s]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-GitHub-Event"] = "workflow_run"
wrk.headers["X-Hub-Signature-256"] = "%(signature)s"
request = function()
  n = n + 1
  wrk.headers["X-GitHub-Delivery"] = tag .. "-" .. tid .. "-" .. n
  return wrk.format()
end
"""


def signed_body() -> tuple[bytes, str]:
    body = payload("workflow_run-completed")
    body["repository"]["full_name"] = "acme/not-configured"
    raw = json.dumps(body, separators=(",", ":")).encode()
    return raw, "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()


def script(round_tag: str, body: bytes, signature: str) -> str:
    path = Path(tempfile.mkstemp(prefix="ffbench-", suffix=".lua")[1])
    path.write_text(LUA % {"round": round_tag, "body": body.decode(), "signature": signature})
    return str(path)


def inbox_rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM inbound_hook").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    require("wrk", "apt-get install wrk")
    print(machine())
    print("load average before:", Path("/proc/loadavg").read_text().strip())
    body, signature = signed_body()
    hooks, health = [], []
    with gateway(extra=EXTRA, env={SECRET_ENV: SECRET}) as gw:
        first = httpx.post(
            gw.url + "/hooks/github",
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-GitHub-Event": "workflow_run",
                "X-GitHub-Delivery": "probe",
                "X-Hub-Signature-256": signature,
            },
        )
        assert first.status_code == 202 and first.json()["status"] == "accepted", first.text
        bad = httpx.post(
            gw.url + "/hooks/github",
            content=body + b" ",
            headers={
                "Content-Type": "application/json",
                "X-GitHub-Event": "workflow_run",
                "X-GitHub-Delivery": "tampered",
                "X-Hub-Signature-256": signature,
            },
        )
        assert bad.status_code == 401, bad.text
        for r in range(args.rounds):
            hooks.append(
                wrk(
                    gw.url + "/hooks/github",
                    seconds=args.seconds,
                    connections=args.connections,
                    script=script(f"r{r}", body, signature),
                )
            )
            health.append(wrk(gw.url + "/healthz", seconds=args.seconds, connections=args.connections))
        stored = inbox_rows(gw.root / "bench.db")
        replay = wrk(gw.url + "/hooks/github", seconds=1, connections=4, script=script("r0", body, signature))
        after_replay = inbox_rows(gw.root / "bench.db")
    print(
        f"\nPOST /hooks/github (signed workflow_run, {len(body):,} bytes), SQLite, wrk {args.connections} "
        f"connections, {args.rounds} alternating rounds of {args.seconds} s"
    )
    print(f"{'':22} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for name, runs in (("hooks accepted", hooks), ("GET /healthz (baseline)", health)):
        print(
            f"{name:22} {statistics.median(r.rps for r in runs):9.0f} "
            f"{statistics.median(r.p50_ms for r in runs):8.2f} {statistics.median(r.p99_ms for r in runs):8.2f} "
            f"{sum(r.non_2xx for r in runs):8}"
        )
    print("rounds (hooks/s): " + ", ".join(f"{r.rps:.0f}" for r in hooks))
    ratio = statistics.median(r.rps for r in hooks) / statistics.median(r.rps for r in health)
    print(f"hooks / healthz: {ratio:.2f}; target >= 1,000 hooks/s")
    answered = sum(r.requests - r.non_2xx for r in hooks)
    print(
        f"inbox rows after the rounds: {stored:,}; 202s counted by wrk: {answered:,} + 1 probe (wrk does not "
        f"count requests still in flight when a round ends: at most {args.connections} a round)"
    )
    print(
        f"replay of {replay.requests:,} already stored ids ({replay.non_2xx} non-2xx): "
        f"{after_replay - stored} rows added"
    )
    print("load average after:", Path("/proc/loadavg").read_text().strip())


if __name__ == "__main__":
    main()
