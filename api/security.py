"""API keys for `/v1`: compared in constant time; a failure reveals nothing."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Header, Request

from api.errors import Unauthorized
from recsys.settings import Settings


async def require_api_key(
    request: Request, x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None
) -> None:
    settings: Settings = request.app.state.settings
    if not settings.api_keys:
        return
    presented = (x_api_key or "").encode()
    # Compare against every key so the time taken does not depend on which one matched.
    matched = False
    for key in settings.api_keys:
        matched |= hmac.compare_digest(presented, key.get_secret_value().encode())
    if not matched:
        raise Unauthorized("missing or invalid API key")
