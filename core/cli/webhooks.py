"""``flashfusion webhooks ...``: manage endpoints and deliveries as the operator (every
endpoint, no pipeline scope). The secret is printed once, by ``create`` and ``rotate``."""

from __future__ import annotations

import json
import sys
from typing import Any

from flashfusion.core.cli.output import print_rows
from flashfusion.core.cli.parsers import action_group, command
from flashfusion.core.errors import ApiError
from flashfusion.core.webhooks.callers import Caller
from flashfusion.core.webhooks.management import WebhookService
from flashfusion.core.webhooks.outbox import EVENT_TYPES


def register(sub) -> None:
    wsub = action_group(sub, "webhooks", "manage webhook endpoints and deliveries")
    create = command(wsub, "create", "add an endpoint and print its secret once", _create)
    create.add_argument("--url", required=True)
    create.add_argument("--events", default="", help=f"comma-separated (default: all): {','.join(EVENT_TYPES)}")
    create.add_argument("--pipelines", default="", help="comma-separated pipeline ids (default: all)")
    create.add_argument("--description", default="")
    create.add_argument("--json", action="store_true")
    command(wsub, "list", "list endpoints (never their secrets)", _list, json=True)
    update = command(wsub, "update", "change an endpoint; --enable re-enables a disabled one", _update, "id")
    for option in ("--url", "--events", "--pipelines", "--description"):
        update.add_argument(option)
    state = update.add_mutually_exclusive_group()
    state.add_argument("--enable", action="store_true")
    state.add_argument("--disable", action="store_true")
    command(wsub, "delete", "delete an endpoint", _delete, "id")
    command(wsub, "rotate", "new secret; the old one also signs for 24 h", _rotate, "id")
    command(wsub, "test", "send a ping event", _test, "id")
    send = command(wsub, "send", "send an event, as POST /functions/sendWebhook", _send)
    send.add_argument("--event", required=True, choices=EVENT_TYPES)
    send.add_argument("--pipeline", required=True)
    send.add_argument("--payload", default="{}", help="a JSON object")
    deliveries = command(wsub, "deliveries", "the delivery log of an endpoint, newest first", _deliveries, "id")
    deliveries.add_argument("--status", choices=("pending", "succeeded", "failed"))
    deliveries.add_argument("--limit", type=int, default=20)
    deliveries.add_argument("--json", action="store_true")
    command(wsub, "redeliver", "send one delivery again", _redeliver, "delivery_id")
    replay = command(wsub, "replay", "send again everything an endpoint got since a time", _replay, "id")
    replay.add_argument("--since", required=True, help="ISO 8601, e.g. 2025-11-21T10:30:00Z")
    replay.add_argument("--failed-only", action="store_true")


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [p.strip() for p in text.split(",") if p.strip()]


def _run(fn) -> int:
    try:
        result = fn()
    except ApiError as exc:
        print(f"flashfusion: {exc.error}: {exc.message}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


def _service(gateway) -> WebhookService:
    return gateway.webhooks


def _create(args, gateway) -> int:
    body = {
        "url": args.url,
        "events": _split(args.events) or None,
        "pipeline_ids": _split(args.pipelines) or None,
        "description": args.description,
    }
    if args.json:
        return _run(lambda: _service(gateway).create(Caller(), body))
    try:
        made = _service(gateway).create(Caller(), body)
    except ApiError as exc:
        print(f"flashfusion: {exc.error}: {exc.message}", file=sys.stderr)
        return 2
    print(f"created webhook {made['id']} -> {made['webhook']['url']}")
    print(f"secret (shown once): {made['secret']}")
    return 0


def _list(args, gateway) -> int:
    rows = _service(gateway).list(Caller())
    return print_rows(
        rows,
        args.json,
        lambda row: (
            f"{row['id']}  {row['url']}  "
            + ("enabled" if row["enabled"] else f"DISABLED ({row['disabled_reason']})")
            + f"  events={','.join(row['events'])}  pipelines={','.join(row['pipeline_ids']) or 'all'}"
        ),
        document={"success": True, "webhooks": rows},
    )


def _update(args, gateway) -> int:
    body: dict = {"id": args.id}
    for key, value in (("url", args.url), ("description", args.description)):
        if value is not None:
            body[key] = value
    if args.events is not None:
        body["events"] = _split(args.events)
    if args.pipelines is not None:
        body["pipeline_ids"] = _split(args.pipelines)
    if args.enable or args.disable:
        body["enabled"] = bool(args.enable)
    return _run(lambda: _service(gateway).update(Caller(), body))


def _delete(args, gateway) -> int:
    return _run(lambda: _service(gateway).delete(Caller(), args.id))


def _rotate(args, gateway) -> int:
    return _run(lambda: _service(gateway).rotate(Caller(), args.id))


def _test(args, gateway) -> int:
    return _run(lambda: _service(gateway).test(Caller(), args.id))


def _send(args, gateway) -> int:
    try:
        payload = json.loads(args.payload)
    except json.JSONDecodeError:
        print("flashfusion: --payload is not valid JSON", file=sys.stderr)
        return 2
    return _run(
        lambda: _service(gateway).send(
            Caller(), {"event_type": args.event, "pipeline_id": args.pipeline, "payload": payload}
        )
    )


def _deliveries(args, gateway) -> int:
    def fetch() -> dict[str, Any]:
        return _service(gateway).deliveries(
            Caller(), args.id, status=args.status, limit=max(1, min(200, args.limit)), cursor=None
        )

    if args.json:
        return _run(fetch)
    try:
        result = fetch()
    except ApiError as exc:
        print(f"flashfusion: {exc.error}: {exc.message}", file=sys.stderr)
        return 2
    for d in result["deliveries"]:
        print(
            f"{d['id']}  {d['event']:<22} {d['status']:<9} attempts={d['attempt']} "
            f"code={d['status_code']} {d['latency_ms']}ms {d['error'] or ''} next={d['next_attempt_at'] or '-'}"
        )
    return 0


def _redeliver(args, gateway) -> int:
    return _run(lambda: _service(gateway).redeliver(Caller(), args.delivery_id))


def _replay(args, gateway) -> int:
    return _run(
        lambda: _service(gateway).replay(
            Caller(), {"webhook_id": args.id, "since": args.since, "failed_only": args.failed_only}
        )
    )
