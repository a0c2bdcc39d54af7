"""The shape every admin subcommand shares: ``flashfusion GROUP ACTION [ARGS] [--json]``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

Handler = Callable[[argparse.Namespace, Any], int]


def action_group(sub: Any, name: str, help: str) -> Any:
    """Add ``flashfusion NAME`` whose ACTION (required) picks one of its subcommands."""
    group = sub.add_parser(name, help=help)
    return group.add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION")


def command(
    actions: Any, name: str, help: str, handler: Handler, *positionals: str, json: bool = False
) -> argparse.ArgumentParser:
    """Add the ACTION ``name`` running ``handler``: its positional arguments, then ``--json``
    if asked (options added to the returned parser come after)."""
    parser: argparse.ArgumentParser = actions.add_parser(name, help=help)
    for positional in positionals:
        parser.add_argument(positional)
    if json:
        parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=handler)
    return parser
