"""Server-side login sessions for people (the management API and the dashboard).

The cookie holds a random token; the database holds only its SHA-256. The CSRF token is an
HMAC of the session token, so it needs no storage and changes with every login.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flashfusion.core.config import AuthConfig
from flashfusion.core.errors import Unauthorized
from flashfusion.core.ids import new_id
from flashfusion.core.storage.db import from_db_time, to_db_time
from flashfusion.core.storage.models import Session, User

COOKIE = "ff_session"
TOUCH_EVERY = timedelta(seconds=60)
NOT_LOGGED_IN = Unauthorized(
    "Log in first (POST /functions/login); sessions end after inactivity", error="Not logged in"
)


@dataclass(frozen=True)
class NewSession:
    token: str
    csrf_token: str
    session: Session


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def csrf_for(token: str) -> str:
    return hmac.new(token.encode("utf-8"), b"flashfusion-csrf", hashlib.sha256).hexdigest()


def start(user: User, client_addr: str | None, now: datetime, auth: AuthConfig) -> NewSession:
    """A fresh session (and so a fresh id) at every login."""
    token = secrets.token_urlsafe(32)
    session = Session.create(
        id=new_id("ses"),
        token_hash=token_hash(token),
        user_id=user.id,
        created_at=to_db_time(now),
        last_seen_at=to_db_time(now),
        expires_at=to_db_time(now + timedelta(hours=auth.session_absolute_hours)),
        client_addr=client_addr,
    )
    return NewSession(token=token, csrf_token=csrf_for(token), session=session)


def resume(token: str | None, now: datetime, auth: AuthConfig) -> tuple[User, Session]:
    """The user behind a session cookie, or ``Unauthorized``. Expired sessions are deleted."""
    if not token or len(token) > 200:
        raise NOT_LOGGED_IN
    session = Session.get_or_none(Session.token_hash == token_hash(token))
    if session is None:
        raise NOT_LOGGED_IN
    idle_deadline = from_db_time(session.last_seen_at) + timedelta(minutes=auth.session_idle_minutes)
    if now >= from_db_time(session.expires_at) or now >= idle_deadline:
        session.delete_instance()
        raise NOT_LOGGED_IN
    user = User.get_or_none(User.id == session.user_id)
    if user is None or user.disabled_at is not None:
        session.delete_instance()
        raise NOT_LOGGED_IN
    if now - from_db_time(session.last_seen_at) >= TOUCH_EVERY:
        Session.update(last_seen_at=to_db_time(now)).where(Session.id == session.id).execute()
    return user, session


def end(token: str | None) -> None:
    if token:
        Session.delete().where(Session.token_hash == token_hash(token)).execute()


def csrf_ok(token: str, presented: str | None) -> bool:
    if not presented:
        return False
    return hmac.compare_digest(csrf_for(token), presented)
