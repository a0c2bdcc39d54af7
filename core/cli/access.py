"""Keys, users and the audit log from the command line (what an administrator may do)."""

from __future__ import annotations

import getpass
import json
import sys
from datetime import timedelta

from flashfusion.core.access import apikeys, audit
from flashfusion.core.access.users import (
    UserError,
    create_user,
    disable_user,
    set_password,
    user_to_dict,
    usernames_by_id,
)
from flashfusion.core.cli.output import print_answer, print_rows
from flashfusion.core.cli.parsers import action_group, command
from flashfusion.core.storage.models import AuditEvent, User

PERMISSION_HELP = "comma-separated: trigger_pipeline,read_runs,read_config,webhook"


def register(sub) -> None:
    keys = action_group(sub, "keys", "manage API keys")
    create = command(keys, "create", "create a key and print it once", _keys_create)
    create.add_argument("--name", required=True)
    create.add_argument("--permissions", required=True, help=PERMISSION_HELP)
    create.add_argument("--pipelines", default="", help="comma-separated pipeline ids (default: all)")
    create.add_argument("--expires-in-days", type=int, default=apikeys.DEFAULT_EXPIRY_DAYS)
    create.add_argument("--owner", help="username that owns the key (default: none, an operator key)")
    create.add_argument("--json", action="store_true", help="print JSON (id, name, plaintext_key, key_preview)")
    command(keys, "list", "list keys (never the key itself)", _keys_list, json=True)
    command(keys, "revoke", "revoke a key at once", _keys_revoke, "id")
    command(
        keys, "rotate", "new secret for a key; the old one works for the grace period", _keys_rotate, "id", json=True
    )
    prune = command(keys, "prune", "disable keys not used for N days", _keys_prune)
    prune.add_argument("--unused-days", type=int, required=True)

    users = action_group(sub, "users", "manage user accounts (for the dashboard and management API)")
    ucreate = command(users, "create", "create a user", _users_create, "name")
    ucreate.add_argument("--admin", action="store_true")
    ucreate.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    passwd = command(users, "passwd", "set a user's password (ends their sessions)", _users_passwd, "name")
    passwd.add_argument("--password-stdin", action="store_true")
    command(users, "disable", "disable a user: ends their sessions, their keys stop working", _users_disable, "name")
    command(users, "list", "list users", _users_list, json=True)

    aud = sub.add_parser("audit", help="show the audit log, newest first")
    aud.add_argument("--limit", type=int, default=50)
    aud.add_argument("--action")
    aud.add_argument("--json", action="store_true")
    aud.set_defaults(handler=_audit)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _fail(message: str) -> int:
    print(f"flashfusion: {message}", file=sys.stderr)
    return 2


def _keys_create(args, gateway) -> int:
    try:
        owner = User.get_or_none(User.username == args.owner) if args.owner else None
        if args.owner and owner is None:
            return _fail(f"no user {args.owner!r}")
        answer = apikeys.create_key(
            args.name,
            _split(args.permissions),
            _split(args.pipelines),
            args.expires_in_days,
            known_pipelines=gateway.config.pipelines,
            owner=owner,
            actor="cli",
        )
    except apikeys.KeyRequestError as exc:
        return _fail(str(exc))
    return print_answer(
        answer,
        args.json,
        (
            f"Created key {answer['id']} ({answer['name']}).",
            f"  {answer['plaintext_key']}",
            "Save it now: it is shown only once. Send it as the X-API-Key header.",
        ),
    )


def _keys_list(args, gateway) -> int:
    owners = usernames_by_id()
    rows = [apikeys.key_to_dict(r, owners) for r in apikeys.visible_keys(None)]
    return print_rows(
        rows,
        args.json,
        lambda row: (
            f"{row['id']}  {row['key_preview']}  {row['name']}  [{','.join(row['permissions'])}]  "
            f"uses={row['usage_count']}  last_used={row['last_used'] or '-'}  "
            + ("revoked" if row["revoked"] else f"expires {row['expires_at']}")
        ),
    )


def _keys_revoke(args, gateway) -> int:
    try:
        row = apikeys.revoke_key(apikeys.find_key(args.id, None), actor="cli")
    except (LookupError, apikeys.KeyRequestError) as exc:
        return _fail(str(exc))
    print(f"revoked {row.id} ({row.key_preview})")
    return 0


def _keys_rotate(args, gateway) -> int:
    grace = timedelta(hours=gateway.config.auth.rotation_grace_hours)
    try:
        answer = apikeys.rotate_key(apikeys.find_key(args.id, None), grace, actor="cli")
    except (LookupError, apikeys.KeyRequestError) as exc:
        return _fail(str(exc))
    return print_answer(
        answer,
        args.json,
        (
            f"New secret for {answer['id']}:\n  {answer['plaintext_key']}",
            f"The previous secret keeps working until {answer['previous_key_expires_at']}.",
        ),
    )


def _keys_prune(args, gateway) -> int:
    try:
        pruned = apikeys.prune_keys(args.unused_days)
    except apikeys.KeyRequestError as exc:
        return _fail(str(exc))
    for row in pruned:
        print(f"disabled {row.id} ({row.key_preview}, {row.name})")
    print(f"{len(pruned)} keys disabled")
    return 0


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise UserError("no terminal to ask for the password: pass --password-stdin and send it on standard input")
    try:
        first = getpass.getpass("Password: ")
        again = getpass.getpass("Again: ")
    except EOFError:
        raise UserError("no password given (input ended)") from None
    if again != first:
        raise UserError("the passwords differ")
    return first


def _users_create(args, gateway) -> int:
    try:
        user = create_user(gateway.passwords, args.name, _read_password(args.password_stdin), admin=args.admin)
    except UserError as exc:
        return _fail(str(exc))
    audit.record("user.created", "cli", target=user.username, is_admin=bool(user.is_admin))
    print(f"created {'administrator' if user.is_admin else 'user'} {user.username} ({user.id})")
    return 0


def _users_passwd(args, gateway) -> int:
    return _user_change(
        args.name,
        lambda: set_password(gateway.passwords, args.name, _read_password(args.password_stdin)),
        "user.password_changed",
        f"password of {args.name} changed; their sessions have ended",
    )


def _users_disable(args, gateway) -> int:
    return _user_change(args.name, lambda: disable_user(args.name), "user.disabled", f"disabled {args.name}")


def _user_change(name: str, change, action: str, done: str) -> int:
    """Apply ``change`` to a user; audit it and say ``done``, or print why not (exit 1)."""
    try:
        change()
    except UserError as exc:
        return _fail(str(exc))
    audit.record(action, "cli", target=name)
    print(done)
    return 0


def _users_list(args, gateway) -> int:
    rows = [user_to_dict(u) for u in User.select().order_by(User.username)]
    return print_rows(
        rows,
        args.json,
        lambda row: (
            f"{row['username']}  {'admin' if row['is_admin'] else 'user'}  "
            f"{'disabled' if row['disabled'] else 'active'}  created {row['created_at']}"
        ),
    )


def _audit(args, gateway) -> int:
    rows = AuditEvent.select().order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(max(1, args.limit))
    if args.action:
        rows = rows.where(AuditEvent.action == args.action)
    events = [audit.event_to_dict(e) for e in rows]
    if args.json:
        print(json.dumps(events))
        return 0
    for e in events:
        print(
            f"{e['at']}  {e['action']:<22} actor={e['actor']} target={e['target'] or '-'} "
            f"addr={e['client_addr'] or '-'} key={e['key_preview'] or '-'} {json.dumps(e['detail'])}"
        )
    return 0
