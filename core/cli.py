"""The ``flashfusion`` command."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from typing import Sequence

from flashfusion.core import apikeys
from flashfusion.core.errors import ConfigError

PERMISSION_HELP = "comma-separated: trigger_pipeline,read_runs,read_config,webhook"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flashfusion", description="FlashFusion CI/CD gateway")
    parser.add_argument("--config", help="configuration file (default: $FLASHFUSION_CONFIG or ./flashfusion.toml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="migrate, then run the API (gunicorn) and a worker")
    serve.add_argument("--bind", help="host:port (default from [server].bind)")
    serve.add_argument("--workers", type=int, help="gunicorn worker processes")
    serve.add_argument("--threads", type=int, help="threads per gunicorn worker")
    serve.add_argument("--no-worker", action="store_true", help="run only the API")

    worker = sub.add_parser("worker", help="dispatch and poll runs (run one per host, or several)")
    worker.add_argument("--once", action="store_true", help="run one cycle and exit")

    sub.add_parser("migrate", help="apply pending database migrations")
    sub.add_parser("plugins", help="list loaded plugins and providers")
    sub.add_parser("check", help="validate the configuration and exit")

    keys = sub.add_parser("keys", help="manage API keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = ksub.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--permissions", required=True, help=PERMISSION_HELP)
    create.add_argument("--pipelines", default="", help="comma-separated pipeline ids (default: all)")
    create.add_argument("--expires-in-days", type=int, default=apikeys.DEFAULT_EXPIRY_DAYS)
    create.add_argument("--json", action="store_true", help="print JSON (id, name, plaintext_key, key_preview)")
    listing = ksub.add_parser("list", help="list keys (never the key itself)")
    listing.add_argument("--json", action="store_true")
    return parser


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    from flashfusion.core.config import load_config
    try:
        config = load_config(args.config)
        if args.command == "serve":
            return _serve(config, args)
        from flashfusion.core.app import build_gateway
        gateway = build_gateway(config)
    except ConfigError as exc:
        print(f"flashfusion: configuration error: {exc}", file=sys.stderr)
        return 2
    from flashfusion.core import migrations
    from flashfusion.core.db import database
    if args.command == "migrate":
        applied = migrations.migrate(database.obj)
        print("applied: " + ", ".join(applied) if applied else "database is up to date")
        return 0
    if args.command == "check":
        print(f"{config.path}: OK ({len(config.pipelines)} pipelines)")
        return 0
    if args.command == "plugins":
        return _plugins(gateway)
    missing = migrations.pending(database.obj)
    if missing:
        migrations.migrate(database.obj)
    if args.command == "worker":
        return _worker(gateway, args.once)
    if args.command == "keys":
        return _keys(gateway, args)
    return 2


def _serve(config, args) -> int:
    from flashfusion.core import migrations
    from flashfusion.core.app import build_gateway
    from flashfusion.core.db import database
    from flashfusion.core.serve import serve
    build_gateway(config)  # fail fast on a bad provider or pipeline block
    applied = migrations.migrate(database.obj)
    if applied:
        print("applied migrations: " + ", ".join(applied), flush=True)
    database.close()
    server = config.server
    return serve(config, args.bind or server.bind, args.workers or server.workers, args.threads or server.threads,
                 with_worker=server.embedded_worker and not args.no_worker)


def _worker(gateway, once: bool) -> int:
    from flashfusion.core.worker import Worker
    gateway.pm.hook.startup(app=None, config=gateway.config)
    worker = Worker(gateway)
    if once:
        worker.tick()
        return 0
    signal.signal(signal.SIGTERM, lambda *_: worker.stop_event.set())
    signal.signal(signal.SIGINT, lambda *_: worker.stop_event.set())
    worker.run_forever()
    return 0


def _plugins(gateway) -> int:
    pm = gateway.pm
    print("plugins:")
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: str(item[0])):
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        print(f"  {name}  ({getattr(plugin, '__name__', type(plugin).__name__)}; hooks: {', '.join(hooks)})")
    print("providers:")
    for name, cls in sorted(gateway.providers.classes.items()):
        caps = ", ".join(sorted(cls.capabilities))
        print(f"  {name}  {cls.__module__}.{cls.__qualname__}  [{caps}]")
    return 0


def _keys(gateway, args) -> int:
    if args.keys_command == "create":
        try:
            answer = apikeys.create_key(args.name, _split(args.permissions), _split(args.pipelines),
                                        args.expires_in_days, known_pipelines=gateway.config.pipelines)
        except apikeys.KeyRequestError as exc:
            print(f"flashfusion: {exc}", file=sys.stderr)
            return 2
        if args.json:
            print(json.dumps(answer))
        else:
            print(f"Created key {answer['id']} ({answer['name']}).")
            print(f"  {answer['plaintext_key']}")
            print("Save it now: it is shown only once. Use it as the X-API-Key header.")
        return 0
    from flashfusion.core.models import ApiKey
    rows = [apikeys.key_to_dict(r) for r in ApiKey.select().order_by(ApiKey.created_at)]
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            state = "revoked" if row["revoked"] else f"expires {row['expires_at']}"
            print(f"{row['id']}  {row['key_preview']}  {row['name']}  [{','.join(row['permissions'])}]  "
                  f"uses={row['usage_count']}  {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
