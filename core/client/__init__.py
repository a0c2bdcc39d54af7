"""The ``flashfusion`` client for CI jobs: trigger a pipeline, follow it, and exit with a
code a CI pipeline can trust. Talks to a running gateway over HTTP only (never reads the
gateway's configuration file).

    http       -- the API over httpx: retries with backoff, Retry-After, errors -> exit codes
    ci_env     -- Idempotency-Key derived from GitHub Actions / GitLab CI variables
    progress   -- live display on a terminal, one plain line per change in CI logs
    commands   -- trigger, status, runs, config, cancel
"""

EXIT_SUCCESS = 0  # the run succeeded (or the command did what was asked)
EXIT_RUN_FAILED = 1  # the run failed or was cancelled
EXIT_USAGE = 2  # bad arguments, missing/invalid key, missing permission, unknown pipeline/run
EXIT_TIMEOUT = 3  # --timeout passed before the run finished (after cancelling it when asked)
EXIT_UNREACHABLE = 4  # gateway or provider unreachable / failing after retries
EXIT_RUNNING = 5  # `status` without --wait: the run has not finished yet

#: ``flashfusion serve``'s default bind ([server] bind), so a local gateway needs no --url.
DEFAULT_URL = "http://127.0.0.1:8080"
