"""Webhook throughput: signed, durable deliveries per second from real ``flashfusion worker``
processes (1 and 2) to a fast local receiver, against a plain httpx loop posting the same
bodies and headers to the same receiver, alternating in one run; and the latency from an
event being committed to its delivery arriving.

    python bench/webhook_throughput.py [--events 2000] [--rounds 2] [--rate 20] [--seconds 10]

Events are outbox rows (``runs.emit("run.completed", ...)``, the path a run transition
takes), inserted into the gateway's SQLite database by this process; one endpoint
subscribed to them is created with ``flashfusion webhooks create``. The workers run the
default ``[webhooks]`` settings (concurrency 8, batch 50, tick 0.2 s) except ``allow_http``
and ``allow_private_networks``; the endpoint's event limit is lifted through
``FLASHFUSION_RATE_LIMITS__WEBHOOK_EVENTS_PER_MINUTE``.

* burst: ``--events`` events committed at once while the workers idle; throughput = events /
  (last delivery arrival - commit). The httpx loop posts the bodies and headers the workers
  sent, one after another on one client.
* latency: ``--rate`` events per second, each in its own transaction, for ``--seconds``;
  event-to-delivery p50/p95 (commit to arrival at the receiver).

The receiver (tests/testkit/receiver.py, answering 200) runs in its own process so that it
shares no interpreter with either sender.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from common import FLASHFUSION, gateway, machine  # noqa: E402

EXTRA = """
[webhooks]
allow_http = true
allow_private_networks = true
"""
ENV = {"FLASHFUSION_RATE_LIMITS__WEBHOOK_EVENTS_PER_MINUTE": "100000000"}


# ----------------------------------------------------------------------------- receiver process


def serve_receiver(backlog: int) -> None:
    """Child mode: run the receiver; on stdin "count" / "dump" / "clear" answer on stdout."""
    from testkit.receiver import Receiver

    with Receiver() as rx:
        # The listen backlog (testkit's Receiver: 128). socketserver's default of 5 made deliveries
        # beyond it wait 1 s for a SYN retransmit; --backlog 5 reproduces that (see RESULTS.md).
        rx.server.socket.listen(backlog)
        print(json.dumps({"url": rx.url("/hook"), "plain": rx.url("/plain")}), flush=True)
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "count":
                print(json.dumps({"count": len(rx.requests)}), flush=True)
            elif cmd == "dump":
                out = [
                    {
                        "path": r.path,
                        "id": r.webhook_id,
                        "at": r.at,
                        "body": r.body.decode(),
                        "headers": r.headers,
                        "status": r.answered,
                    }
                    for r in rx.snapshot()
                ]
                print(json.dumps(out), flush=True)
            elif cmd == "clear":
                with rx._lock:
                    rx.requests.clear()
                print("{}", flush=True)


class ReceiverProcess:
    def __init__(self, backlog: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-receiver", str(backlog)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        urls = json.loads(self.proc.stdout.readline())
        self.url, self.plain = urls["url"], urls["plain"]
        self._lock = threading.Lock()

    def ask(self, cmd: str):
        with self._lock:
            self.proc.stdin.write(cmd + "\n")
            self.proc.stdin.flush()
            return json.loads(self.proc.stdout.readline())

    def count(self) -> int:
        return self.ask("count")["count"]

    def wait_count(self, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.count() < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"receiver got {self.count()} of {n} requests")
            time.sleep(0.01)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)


# ----------------------------------------------------------------------------- gateway side


class Outbox:
    """Writes outbox rows into the gateway's database, as a run transition does."""

    def __init__(self, config: Path) -> None:
        from flashfusion.core.config import load_config
        from flashfusion.core.storage.db import open_database

        open_database(load_config(str(config), env={}).server.database_url)
        self._seq = 0

    def emit(self, count: int) -> tuple[list[int], float]:
        """``count`` events in one transaction; returns their numbers and the commit time."""
        from flashfusion.core.runs import transitions as runs
        from flashfusion.core.storage.db import database, write_tx

        seqs = []
        with database.connection_context():
            with write_tx():
                for _ in range(count):
                    self._seq += 1
                    seqs.append(self._seq)
                    runs.emit("run.completed", "demo", None, {"run_id": f"run_bench_{self._seq:07d}", "seq": self._seq})
        return seqs, time.monotonic()


def start_workers(gw, count: int) -> list[subprocess.Popen]:
    procs = []
    for n in range(count):
        log = open(gw.root / f"worker-{len(gw.procs)}-{n}.log", "wb")
        procs.append(
            subprocess.Popen(
                [FLASHFUSION, "--config", str(gw.config), "worker"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=dict(os.environ, **ENV),
            )
        )
    gw.procs.extend(procs)  # stopped by common.gateway on exit in any case
    return procs


def stop_workers(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def seq_of(body: str) -> int:
    return json.loads(body)["data"]["seq"]


def burst(rx: ReceiverProcess, outbox: Outbox, gw, workers: int, events: int) -> dict:
    procs = start_workers(gw, workers)
    try:
        rx.ask("clear")
        _, t0 = outbox.emit(1)  # warm-up: wait until the workers deliver
        rx.wait_count(1, 60)
        time.sleep(0.5)
        rx.ask("clear")
        seqs, committed = outbox.emit(events)
        rx.wait_count(events, 600)
        got = [r for r in rx.ask("dump") if r["path"] == "/hook"]
    finally:
        stop_workers(procs)
    arrivals = sorted(r["at"] for r in got)
    firsts: dict[int, float] = {}
    for r in got:
        firsts.setdefault(seq_of(r["body"]), r["at"])
    assert set(seqs) <= set(firsts), "some events were not delivered"
    elapsed = max(firsts[s] for s in seqs) - committed
    return {
        "rate": events / elapsed,
        "elapsed": elapsed,
        "received": len(got),
        "first": arrivals[0] - committed,
        "bodies": [(r["body"], r["headers"]) for r in got],
        "signed": all("webhook-signature" in r["headers"] for r in got),
    }


def plain_loop(rx: ReceiverProcess, bodies: list[tuple[str, dict]]) -> dict:
    rx.ask("clear")
    keep = (
        "content-type",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "user-agent",
        "x-flashfusion-signature",
        "x-flashfusion-event",
    )
    prepared = [(body.encode(), {k: v for k, v in headers.items() if k in keep}) for body, headers in bodies]
    with httpx.Client(timeout=15) as client:
        started = time.monotonic()
        for body, headers in prepared:
            answer = client.post(rx.plain, content=body, headers=headers)
            answer.raise_for_status()
        elapsed = time.monotonic() - started
    rx.wait_count(len(prepared), 30)
    return {"rate": len(prepared) / elapsed, "elapsed": elapsed}


def latency(rx: ReceiverProcess, outbox: Outbox, gw, workers: int, rate: float, seconds: float) -> dict:
    procs = start_workers(gw, workers)
    try:
        rx.ask("clear")
        outbox.emit(1)
        rx.wait_count(1, 60)
        time.sleep(0.5)
        rx.ask("clear")
        committed: dict[int, float] = {}
        step = 1.0 / rate
        start = time.monotonic()
        for i in range(int(rate * seconds)):
            delay = start + i * step - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            [seq], at = outbox.emit(1)
            committed[seq] = at
        rx.wait_count(len(committed), 60)
        got = [r for r in rx.ask("dump") if r["path"] == "/hook"]
    finally:
        stop_workers(procs)
    firsts: dict[int, float] = {}
    for r in got:
        firsts.setdefault(seq_of(r["body"]), r["at"])
    lat = sorted(firsts[s] - committed[s] for s in committed)
    q = statistics.quantiles(lat, n=100, method="inclusive")
    return {"p50": q[49], "p95": q[94], "max": lat[-1], "n": len(lat)}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-receiver":
        serve_receiver(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rate", type=float, default=20.0, help="events per second for the latency run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency run")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--backlog", type=int, default=128, help="the receiver's listen backlog")
    args = parser.parse_args()
    print(machine())
    print(f"receiver listen backlog {args.backlog}")
    worker_counts = [int(w) for w in args.workers.split(",")]
    rx = ReceiverProcess(args.backlog)
    results: dict[str, list[dict]] = {"plain": []} | {f"w{w}": [] for w in worker_counts}
    lat: dict[int, dict] = {}
    try:
        with gateway(with_worker=False, workers=1, threads=2, extra=EXTRA, env=ENV) as gw:
            gw.cli("webhooks", "create", "--url", rx.url, "--events", "run.completed", "--json")
            outbox = Outbox(gw.config)
            for rnd in range(args.rounds):
                for w in worker_counts:
                    result = burst(rx, outbox, gw, w, args.events)
                    results[f"w{w}"].append(result)
                    print(
                        f"  round {rnd + 1}: {w} worker(s): {result['rate']:.0f} deliveries/s "
                        f"({args.events} in {result['elapsed']:.2f} s, {result['received'] - args.events} "
                        f"duplicates)",
                        flush=True,
                    )
                    plain = plain_loop(rx, result["bodies"][: args.events])
                    results["plain"].append(plain)
                    print(f"  round {rnd + 1}: plain httpx loop: {plain['rate']:.0f} posts/s", flush=True)
            for w in worker_counts:
                lat[w] = latency(rx, outbox, gw, w, args.rate, args.seconds)
    finally:
        rx.close()

    plain_rate = statistics.median(r["rate"] for r in results["plain"])
    print(
        f"\nburst of {args.events} events, median of {args.rounds} rounds (plain loop: median of all its runs, "
        f"each right after a worker run)"
    )
    head = f"{'sender':28} | {'deliveries/s':>12} | {'ratio to plain loop':>19}"
    print(head)
    print("-" * len(head))
    print(f"{'plain httpx loop':28} | {plain_rate:>12.0f} | {1:>19.2f}")
    for w in worker_counts:
        rate = statistics.median(r["rate"] for r in results[f"w{w}"])
        print(f"{f'{w} flashfusion worker(s)':28} | {rate:>12.0f} | {rate / plain_rate:>19.2f}")
    signed = all(r["signed"] for w in worker_counts for r in results[f"w{w}"])
    print(f"(every delivery carried webhook-signature: {signed})")
    print(f"\nevent-to-delivery latency at {args.rate:g} events/s for {args.seconds:g} s")
    for w, row in lat.items():
        print(
            f"  {w} worker(s): p50 {row['p50'] * 1000:.0f} ms, p95 {row['p95'] * 1000:.0f} ms, "
            f"max {row['max'] * 1000:.0f} ms ({row['n']} events)"
        )


if __name__ == "__main__":
    main()
