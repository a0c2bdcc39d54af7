"""Client commands for CI jobs and people: ``trigger``, ``status``, ``runs``, ``config``,
``cancel``, ``outputs``, ``artifacts``. They talk to a running gateway over HTTP
(``FLASHFUSION_URL``, ``FLASHFUSION_API_KEY``) and never read the gateway's configuration file.
Exit codes are listed in this package's ``__init__`` and in docs/client.md.

Two commands share these definitions: the server's ``flashfusion`` (via :func:`register`) and
the light distribution's ``flashfusion-client`` (:func:`main`, clients/python).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata

from . import DEFAULT_URL
from .handlers import DEFAULT_TIMEOUT, run_command

#: the light distribution (clients/python) and its console script
DISTRIBUTION = "flashfusion-client"

EXIT_CODES = """\
exit codes:
  0  success (the run succeeded)
  1  the run failed or was cancelled
  2  usage, authentication or permission error (the server's message is shown)
  3  --timeout passed (after cancelling the run with --cancel-on-timeout)
  4  the gateway or its provider unreachable after retries
  5  (status without --wait) the run has not finished yet
  130/143  SIGINT/SIGTERM while waiting (after cancelling the runs it started, unless --detach-on-exit)

environment: FLASHFUSION_URL, FLASHFUSION_API_KEY, FLASHFUSION_IDEMPOTENCY_KEY,
FLASHFUSION_RETRIES (5), FLASHFUSION_RETRY_DELAY (1 s), FLASHFUSION_CANCEL_GRACE (60 s)
"""


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection")
    group.add_argument(
        "--url",
        help="the gateway, e.g. https://ci.example.com (default: $FLASHFUSION_URL, else "
        f"{DEFAULT_URL}, where `flashfusion serve` listens by default)",
    )
    group.add_argument(
        "--api-key",
        metavar="KEY",
        help="the API key (default: $FLASHFUSION_API_KEY, which is safer: "
        "an option shows in the process list and shell history)",
    )
    group.add_argument("-v", "--verbose", action="store_true", help="log every request to stderr (never the key)")
    return common


def _waiting(parser: argparse.ArgumentParser, wait_help: str) -> None:
    parser.add_argument("--wait", action="store_true", help=wait_help)
    parser.add_argument(
        "--timeout",
        default=DEFAULT_TIMEOUT,
        help=f"give up waiting after this long: 90s, 30m, 1h30m; 0 for never (default {DEFAULT_TIMEOUT})",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress while waiting, only the summary")
    parser.add_argument("--json", action="store_true", help="print only the final status object (JSON) on stdout")


def register(sub: argparse._SubParsersAction, program: str = "flashfusion") -> None:
    common = _common()
    fmt = argparse.RawDescriptionHelpFormatter

    def add(name: str, help: str) -> argparse.ArgumentParser:
        parser = sub.add_parser(
            name, help=help, description=help, parents=[common], epilog=EXIT_CODES, formatter_class=fmt
        )
        parser.set_defaults(handler=run_command, needs_config=False, client_command=name, program=program)
        return parser

    trigger = add(
        "trigger", "trigger a pipeline run, or several as a group (and with --wait, follow them to their end)"
    )
    trigger.add_argument("pipeline_ids", nargs="+", metavar="pipeline_id")
    trigger.add_argument("--branch", help="git ref to run (default: the pipeline's branch)")
    trigger.add_argument("--input", action="append", metavar="NAME=VALUE", help="an input; repeat for more")
    trigger.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="default: derived from the CI job (GitHub Actions, GitLab CI), else random",
    )
    trigger.add_argument(
        "--cancel-on-timeout",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="cancel the run when --timeout passes (default: on when CI=true)",
    )
    trigger.add_argument(
        "--detach-on-exit",
        action="store_true",
        help="on SIGINT/SIGTERM leave the runs going (default: cancel them, wait up to "
        "$FLASHFUSION_CANCEL_GRACE to see them stop, exit 130/143)",
    )
    trigger.add_argument("--fail-fast", action="store_true", help="several pipelines: cancel the others when one fails")
    trigger.add_argument(
        "--outputs-file",
        metavar="FILE",
        help="write the run's outputs to FILE as dotenv (several pipelines: PIPELINE_NAME=...)",
    )
    _waiting(trigger, "follow the run until it ends; the exit code tells how it ended")

    status = add("status", "show a run (and with --wait, follow it to its end)")
    status.add_argument("run_id")
    _waiting(status, "follow the run until it ends")

    runs = add("runs", "list runs, newest first")
    runs.add_argument("--pipeline", help="only this pipeline's runs")
    runs.add_argument("--status", choices=("running", "success", "failed"))
    runs.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    runs.add_argument("--json", action="store_true", help="print the runs as a JSON array")

    config = add("config", "show a pipeline's configuration")
    config.add_argument("pipeline_id")
    config.add_argument("--json", action="store_true")

    outputs = add("outputs", "show a finished run's outputs (dotenv, or --json)")
    outputs.add_argument("run_id")
    outputs.add_argument("--json", action="store_true")

    artifacts = add("artifacts", "list a run's artifacts, or download them all")
    artifacts.add_argument("run_id")
    artifacts.add_argument("--download", metavar="DIR", help="save every artifact under DIR")
    artifacts.add_argument("--json", action="store_true")

    cancel = add("cancel", "cancel a run")
    cancel.add_argument("run_id")
    _waiting(cancel, "wait until the run has stopped")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=DISTRIBUTION,
        description="FlashFusion client for CI jobs: trigger pipelines on a FlashFusion gateway and follow their runs",
    )
    try:
        version = metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        version = "unknown (not installed)"
    parser.add_argument("--version", action="version", version=f"%(prog)s {version}")
    register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"), program=DISTRIBUTION)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``flashfusion-client``: the client commands alone, for a CI job that should not install the server."""
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
