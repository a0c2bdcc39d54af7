"""The ``flashfusion`` command.

Each command module has ``register(subparsers)``, which adds its sub-commands and sets
``handler`` on them: ``handler(args, gateway)`` for commands that read the configuration,
or ``handler(args)`` together with ``needs_config=False`` for client commands that only
talk to a running gateway over HTTP.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from importlib import metadata

from flashfusion.core.errors import ConfigError
from flashfusion.core.observability import logs

COMMAND_MODULES = (
    "flashfusion.core.cli.admin",
    "flashfusion.core.cli.access",
    "flashfusion.core.client.commandline",
    "flashfusion.core.cli.webhooks",
    "flashfusion.core.cli.doctor",
    "flashfusion.core.cli.hooks",
)


def installed_version() -> str:
    """The installed distribution's version (what ``pip show flashfusion`` says)."""
    try:
        return metadata.version("flashfusion")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flashfusion", description="FlashFusion CI/CD gateway")
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    parser.add_argument("--config", help="configuration file (default: $FLASHFUSION_CONFIG or ./flashfusion.toml)")
    parser.add_argument(
        "--log-level",
        choices=logs.LEVELS,
        type=str.lower,
        help="log level (default: [logging] level in the configuration, or info)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env = dict(os.environ)
    if args.log_level:
        env[logs.LEVEL_VAR] = args.log_level
    logs.configure_from_env(env)
    if not getattr(args, "needs_config", True):
        return args.handler(args)
    from flashfusion.core.app import build_gateway
    from flashfusion.core.config import load_config
    from flashfusion.core.storage import migrations
    from flashfusion.core.storage.db import database

    try:
        config = load_config(args.config, env)
        logs.configure(config.logging.format, config.logging.level)
        if getattr(args, "before_gateway", None):
            return args.before_gateway(args, config)
        gateway = build_gateway(config)
        if getattr(args, "migrate_first", True):
            migrations.migrate(database.obj)
        return args.handler(args, gateway)
    except ConfigError as exc:
        print(f"flashfusion: configuration error: {exc}", file=sys.stderr)
        return 2
    except migrations.SchemaTooNew as exc:
        print(f"flashfusion: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
