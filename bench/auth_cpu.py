"""CPU time per request inside one process (WSGI calls in a loop, no server, no network):
``GET /api/get-config`` with an ample key, with a key whose rate limit is spent, and a bare
Falcon app answering the same bytes. Process CPU time, so the figure hardly depends on
what else the machine runs (unlike ``api_overhead.py``'s requests per second).

    python bench/auth_cpu.py [--calls 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import falcon
import falcon.testing

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import write_config  # noqa: E402
from testkit.db import fresh_database  # noqa: E402

from flashfusion.core.access import apikeys  # noqa: E402
from flashfusion.core.access import keyformat as keys  # noqa: E402
from flashfusion.core.access.ratelimit import sql_now  # noqa: E402
from flashfusion.core.app import build_gateway, create_app  # noqa: E402
from flashfusion.core.config import load_config  # noqa: E402
from flashfusion.core.storage.db import database  # noqa: E402


def caller(app, headers: dict):
    environ = falcon.testing.create_environ("/api/get-config", query_string="pipeline_id=demo", headers=headers)
    statuses: list[str] = []

    def call() -> bytes:
        body = app(dict(environ), lambda status, headers, exc_info=None: statuses.append(status))
        try:
            return b"".join(body)
        finally:
            getattr(body, "close", lambda: None)()

    return call, statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ffbench-"))
    url = f"sqlite:///{root / 'bench.db'}"
    fresh_database(url)
    config = write_config(root, url, "[rate_limits]\napi_requests_per_hour = 1000000000\n")
    gateway = build_gateway(load_config(str(config), env={}))
    app = create_app(gateway)
    with database.connection_context():
        ample, spent = (
            apikeys.create_key(name, ["read_config"], known_pipelines=gateway.config.pipelines)["plaintext_key"]
            for name in ("ample", "spent")
        )
        database.execute_sql(
            f"UPDATE api_key SET rl_tat = {sql_now()} + 7200 WHERE key_hash = ?", (keys.hash_key(spent),)
        )
    gateway_call, ok = caller(app, {"X-API-Key": ample})
    spent_call, refused = caller(app, {"X-API-Key": spent})
    body = gateway_call()
    spent_call()
    assert ok[-1].startswith("200") and refused[-1].startswith("429"), (ok[-1], refused[-1])

    class Fixed:
        def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
            resp.data = body
            resp.content_type = falcon.MEDIA_JSON

    bare_app = falcon.App()
    bare_app.add_sink(Fixed().on_get, "/")
    bare_call, _ = caller(bare_app, {})
    results: dict[str, list[float]] = {"gateway": [], "exhausted": [], "bare": []}
    for _ in range(args.rounds):
        for name, call in (("gateway", gateway_call), ("exhausted", spent_call), ("bare", bare_call)):
            started = time.process_time()
            for _ in range(args.calls):
                call()
            results[name].append((time.process_time() - started) / args.calls * 1e6)
    for name, values in results.items():
        print(f"{name:10} {statistics.median(values):7.1f} µs CPU per request")


if __name__ == "__main__":
    main()
