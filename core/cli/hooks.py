"""``flashfusion hooks``: set up provider webhooks (``show`` what to enter upstream,
``register`` the hook through upstream's API)."""

from __future__ import annotations

import sys

from flashfusion.plugins import ProviderError


def register(sub) -> None:
    hooks = sub.add_parser("hooks", help="set up provider webhooks (GitHub, GitLab) that push run state in")
    hsub = hooks.add_subparsers(dest="hooks_command", required=True, metavar="COMMAND")
    show = hsub.add_parser("show", help="print the URL, the events to select and the secret's variable")
    show.add_argument("provider")
    show.add_argument("--url", help="the gateway's public base URL (default: http://server.bind)")
    show.set_defaults(handler=_show, migrate_first=False)
    reg = hsub.add_parser("register", help="create the repository's or project's webhook through the API")
    reg.add_argument("pipeline")
    reg.add_argument("--url", help="the gateway's public base URL (default: http://server.bind)")
    reg.set_defaults(handler=_register, migrate_first=False)


def hook_url(gateway, provider: str, base: str | None) -> str:
    return f"{(base or 'http://' + gateway.config.server.bind).rstrip('/')}/hooks/{provider}"


def _show(args, gateway) -> int:
    provider = gateway.providers.instances.get(args.provider)
    if provider is None or not provider.webhook_events:
        print(f"flashfusion hooks: provider {args.provider!r} is not configured or takes no webhooks", file=sys.stderr)
        return 2
    settings = provider.settings
    print(f"URL:    {hook_url(gateway, args.provider, args.url)}")
    print(f"Events: {', '.join(provider.webhook_events)}")
    secret = getattr(settings, "webhook_secret_env", None)
    print(
        f"Secret: the value of ${secret}"
        if secret
        else f"Secret: none configured; set webhook_secret_env in [providers.{args.provider}]"
    )
    signing = getattr(settings, "webhook_signing_token_env", None)
    if signing:
        print(f"Signing token: the value of ${signing}")
    return 0 if secret else 1


def _register(args, gateway) -> int:
    pipeline = gateway.config.pipeline(args.pipeline)
    if pipeline is None:
        print(f"flashfusion hooks: unknown pipeline {args.pipeline!r}", file=sys.stderr)
        return 2
    try:
        print(gateway.provider_for(pipeline).register_webhook(pipeline, hook_url(gateway, pipeline.provider, args.url)))
    except NotImplementedError as exc:
        print(f"flashfusion hooks: {exc}", file=sys.stderr)
        return 2
    except ProviderError as exc:
        print(f"flashfusion hooks: {exc.message}", file=sys.stderr)
        return 1
    return 0
