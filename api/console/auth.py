"""Console sign-in: an API key typed once into a form becomes a signed session cookie.

The cookie holds an expiry and an HMAC of it under the key that signed in, so the
server keeps no session state, and removing a key from `RECSYS_API_KEYS` ends the
sessions it opened. Without configured keys the console is open (and says so).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote

from fastapi import Request

from recsys.settings import Settings

COOKIE = "recsys_console"
SESSION_SECONDS = 8 * 3600
_PURPOSE = b"recsys-console-session:"


class LoginRequired(Exception):
    """Raised by a console page without a valid session; answered with the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def is_open(settings: Settings) -> bool:
    return not settings.api_keys


def key_matches(settings: Settings, presented: str) -> bool:
    """True when `presented` is one of the keys (every key compared: constant time)."""
    matched = False
    for key in settings.api_keys:
        matched |= hmac.compare_digest(presented.encode(), key.get_secret_value().encode())
    return matched


def _signature(key: str, expires: int) -> str:
    return hmac.new(key.encode(), _PURPOSE + str(expires).encode(), hashlib.sha256).hexdigest()


def session_token(key: str, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + SESSION_SECONDS)
    return f"{expires}.{_signature(key, expires)}"


def valid_session(settings: Settings, token: str | None, now: float | None = None) -> bool:
    if not token or "." not in token:
        return False
    raw_expires, signature = token.split(".", 1)
    if not raw_expires.isdigit() or int(raw_expires) < (time.time() if now is None else now):
        return False
    expires = int(raw_expires)
    matched = False
    for key in settings.api_keys:
        matched |= hmac.compare_digest(signature, _signature(key.get_secret_value(), expires))
    return matched


def safe_next(path: str | None) -> str:
    """Where to go after signing in: a console path only (no open redirect)."""
    if path and path.startswith("/console") and "//" not in path and "\\" not in path:
        return path
    return "/console"


def login_url(next_path: str) -> str:
    return f"/console/login?next={quote(safe_next(next_path), safe='')}"


async def require_session(request: Request) -> None:
    """Dependency of every console page except the login form."""
    settings: Settings = request.app.state.settings
    if is_open(settings) or valid_session(settings, request.cookies.get(COOKIE)):
        return
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raise LoginRequired(target)
