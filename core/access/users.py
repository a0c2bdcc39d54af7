"""User accounts and passwords (argon2id through passlib's CryptContext)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import msgspec
from passlib.context import CryptContext

from flashfusion.core.access import views
from flashfusion.core.config import AuthConfig
from flashfusion.core.ids import new_id
from flashfusion.core.storage.db import iso, to_db_time, utcnow
from flashfusion.core.storage.models import Session, User

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
MIN_PASSWORD = 12
MAX_PASSWORD_BYTES = 4096


class UserError(ValueError):
    pass


@dataclass
class Passwords:
    """Hashing policy. Hashes made with older parameters are upgraded at the next login."""

    context: CryptContext
    dummy_hash: str

    @classmethod
    def from_config(cls, auth: AuthConfig) -> Passwords:
        context = CryptContext(
            schemes=["argon2"],
            argon2__type="ID",
            argon2__memory_cost=auth.argon2_memory_kib,
            argon2__rounds=auth.argon2_time_cost,
            argon2__parallelism=1,
        )
        return cls(context=context, dummy_hash=context.hash("flashfusion-timing-equaliser"))

    def hash(self, password: str) -> str:
        check_password(password)
        return self.context.hash(password)

    def verify(self, password: str, stored: str | None) -> tuple[bool, str | None]:
        """(ok, upgraded hash or None). With no stored hash it still spends the same time."""
        if stored is None:
            self.context.verify(password, self.dummy_hash)
            return False, None
        return self.context.verify_and_update(password, stored)


def check_password(password: str) -> None:
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise UserError(f"passwords are at most {MAX_PASSWORD_BYTES} bytes")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"passwords need at least {MIN_PASSWORD} characters")


def create_user(passwords: Passwords, username: str, password: str, *, admin: bool = False) -> User:
    if not USERNAME.match(username):
        raise UserError("usernames are 1-100 of letters, digits, '_', '.', '@', '-'")
    if User.get_or_none(User.username == username) is not None:
        raise UserError(f"user {username!r} already exists")
    now = to_db_time(utcnow())
    return User.create(
        id=new_id("usr"),
        username=username,
        password_hash=passwords.hash(password),
        is_admin=admin,
        created_at=now,
        password_changed_at=now,
    )


def set_password(passwords: Passwords, username: str, password: str) -> None:
    user = get_user(username)
    user.password_hash = passwords.hash(password)
    user.password_changed_at = to_db_time(utcnow())
    user.save()
    Session.delete().where(Session.user_id == user.id).execute()


def disable_user(username: str, now: datetime | None = None) -> User:
    user = get_user(username)
    user.disabled_at = user.disabled_at or to_db_time(now or utcnow())
    user.save()
    Session.delete().where(Session.user_id == user.id).execute()
    return user


def get_user(username: str) -> User:
    user = User.get_or_none(User.username == username)
    if user is None:
        raise UserError(f"no user {username!r}")
    return user


def usernames_by_id() -> dict[str, str]:
    """Every user's name by id (to show who owns an API key)."""
    # peewee's stubs type ``.tuples()`` as yielding models
    rows = cast(Iterable[tuple[str, str]], User.select(User.id, User.username).tuples())
    return dict(rows)


def user_to_dict(user: User) -> dict[str, Any]:
    return msgspec.to_builtins(
        views.User(
            id=user.id,
            username=user.username,
            is_admin=bool(user.is_admin),
            created_at=iso(user.created_at),
            disabled=user.disabled_at is not None,
        )
    )
