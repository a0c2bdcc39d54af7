"""Running the gateway: serve, worker, migrate, check, plugins."""

from __future__ import annotations

import signal
import sys

from flashfusion.core.storage import migrations
from flashfusion.core.storage.db import database


def register(sub) -> None:
    serve = sub.add_parser("serve", help="migrate, then run the API (gunicorn) and a worker")
    serve.add_argument("--bind", help="host:port (default from [server].bind)")
    serve.add_argument("--workers", type=int, help="gunicorn worker processes")
    serve.add_argument("--threads", type=int, help="threads per gunicorn worker")
    serve.add_argument("--no-worker", action="store_true", help="run only the API")
    serve.set_defaults(before_gateway=_serve)

    worker = sub.add_parser("worker", help="dispatch and poll runs (run one per host, or several)")
    worker.add_argument("--once", action="store_true", help="run one cycle and exit")
    worker.set_defaults(handler=_worker)

    migrate = sub.add_parser(
        "migrate",
        help="apply pending database migrations (asks for a recent backup first)",
        description="Apply pending database migrations. A database that holds data must have "
        "a recent backup (flashfusion backup DEST: at most 24 hours old and at the current "
        "schema version) unless --without-backup is given.",
    )
    migrate.add_argument(
        "--without-backup", action="store_true", help="migrate even though no recent backup was recorded"
    )
    migrate.set_defaults(handler=_migrate, migrate_first=False)
    backup = sub.add_parser("backup", help="copy the database while it runs (SQLite online backup, or pg_dump)")
    backup.add_argument("dest", help="a new file, or a directory to put a time-stamped file in")
    backup.set_defaults(handler=_backup, migrate_first=False)
    sub.add_parser("plugins", help="list loaded plugins and providers").set_defaults(
        handler=_plugins, migrate_first=False
    )
    sub.add_parser("check", help="validate the configuration and exit").set_defaults(
        handler=_check, migrate_first=False
    )


def _serve(args, config) -> int:
    from flashfusion.core.app import build_gateway
    from flashfusion.core.serve import serve

    build_gateway(config)  # fail fast on a bad provider or pipeline block
    applied = migrations.migrate(database.obj)
    if applied:
        print("applied migrations: " + ", ".join(applied), flush=True)
    database.close()
    server = config.server
    return serve(
        config,
        args.bind or server.bind,
        args.workers or server.workers,
        args.threads or server.threads,
        with_worker=server.embedded_worker and not args.no_worker,
    )


def _worker(args, gateway) -> int:
    from flashfusion.core.worker import Worker

    gateway.pm.hook.startup(app=None, config=gateway.config)
    worker = Worker(gateway)
    if args.once:
        worker.tick()
        return 0
    signal.signal(signal.SIGTERM, lambda *_: worker.stop_event.set())
    signal.signal(signal.SIGINT, lambda *_: worker.stop_event.set())
    worker.run_forever()
    return 0


def _migrate(args, gateway) -> int:
    from flashfusion.core.storage import backup

    db = database.obj
    if migrations.pending(db) and migrations.applied_versions(db) and not args.without_backup:
        missing = backup.missing_backup(db)
        if missing:
            print(
                f"flashfusion: refusing to migrate: {missing}. Take one with `flashfusion backup DEST` "
                "(or pass --without-backup)",
                file=sys.stderr,
            )
            return 2
    applied = migrations.migrate(db)
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


def _backup(args, gateway) -> int:
    from flashfusion.core.storage import backup

    try:
        record = backup.take_backup(database.obj, gateway.config.server.database_url, args.dest)
    except backup.BackupError as exc:
        print(f"flashfusion: backup failed: {exc}", file=sys.stderr)
        return 1
    print(f"backup written to {record.destination} (schema version {record.schema_version})")
    return 0


def _check(args, gateway) -> int:
    print(f"{gateway.config.path}: OK ({len(gateway.config.pipelines)} pipelines)")
    return 0


def _plugins(args, gateway) -> int:
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
