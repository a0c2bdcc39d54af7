"""Logging in, shared by ``POST /functions/login`` and the dashboard's login form: throttling
of failures, one answer for unknown users and wrong passwords, hash upgrades, the session
cookie.

Failures are throttled per account *and* client address, and per client address, never per
account alone: someone guessing alice's password from one address cannot keep alice out
from another. Behind a reverse proxy the client address comes from ``X-Forwarded-For``
only with ``[server] trusted_proxies`` (see ``clientaddr``); otherwise every client shares
the proxy's budget."""

from __future__ import annotations

import ipaddress

import falcon

from flashfusion.core.access import audit, ratelimit, sessions
from flashfusion.core.access.clientaddr import client_addr
from flashfusion.core.errors import TooManyRequests, Unauthorized
from flashfusion.core.gateway import Gateway
from flashfusion.core.storage.models import User

WRONG_CREDENTIALS = "Wrong username or password"


def cookie_secure(gateway: Gateway) -> bool:
    mode = gateway.config.auth.cookie_secure
    if mode != "auto":
        return mode == "always"
    host = gateway.config.server.bind.rsplit(":", 1)[0].strip("[]")
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host != "localhost"


def check_password(gw: Gateway, req: falcon.Request, username: str, password: str) -> User:
    """The user, or ``TooManyRequests``/``Unauthorized``. An unknown user costs the same
    argon2 verification as a wrong password and gets the same answer."""
    auth = gw.config.auth
    period = auth.login_window_minutes * 60.0
    addr = client_addr(req)
    buckets = (
        (f"login:user:{username.lower()}:{addr}", auth.login_attempts_per_account, "for this account"),
        (f"login:addr:{addr}", auth.login_attempts_per_address, "for any account"),
    )
    for bucket, limit, scope in buckets:
        decision = ratelimit.peek(bucket, limit, period)
        if not decision.allowed:
            wait = max(1, decision.retry_after)
            raise TooManyRequests(
                f"Too many failed logins from your address {scope}; try again in {wait} s", retry_after=wait
            )
    user = User.get_or_none(User.username == username)
    usable = user is not None and user.disabled_at is None
    assert gw.passwords is not None, "Gateway.__post_init__ always sets passwords"
    ok, upgraded = gw.passwords.verify(password, user.password_hash if user is not None and usable else None)
    if not ok:
        for bucket, limit, _ in buckets:
            ratelimit.hit(bucket, limit, period)
        audit.record_failure("login.failed", f"{addr}:{username.lower()}", actor=username[:100], client_addr=addr)
        raise Unauthorized(WRONG_CREDENTIALS, error="Invalid credentials")
    assert user is not None, "verify() never accepts a missing password hash"
    if upgraded:
        User.update(password_hash=upgraded).where(User.id == user.id).execute()
    return user


def start_session(gw: Gateway, req: falcon.Request, resp: falcon.Response, user: User) -> sessions.NewSession:
    """A new session for ``user``, set as the hardened cookie."""
    auth = gw.config.auth
    new = sessions.start(user, client_addr(req), gw.clock(), auth)
    resp.set_cookie(
        sessions.COOKIE,
        new.token,
        http_only=True,
        secure=cookie_secure(gw),
        same_site="Lax",
        path="/",
        max_age=auth.session_absolute_hours * 3600,
    )
    return new
