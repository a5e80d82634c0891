"""API keys for `/v1`: checked before anything reads the request; a failure reveals nothing.

The check is an ASGI middleware, not a route dependency: FastAPI parses and validates
the body and the query before it solves a route's dependencies, so a dependency would
let an unauthenticated caller learn what the body failed (422) or that a method or path
exists (405, 404). `document_api_key` declares the header in the OpenAPI document (as a
security scheme on every `/v1` operation) without a per-request dependency.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any

from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import error_response

HEADER = "X-API-Key"
PROTECTED_PREFIX = "/v1"

SCHEME = "ApiKey"


def document_api_key(schema: dict[str, Any], *, required: bool) -> dict[str, Any]:
    """`schema` (an OpenAPI document) with the key declared on every `/v1` operation.

    Without configured keys the scheme is listed as optional (`{}` is "no security").
    """
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SCHEME] = {
        "type": "apiKey",
        "in": "header",
        "name": HEADER,
        "description": "one of the keys in RECSYS_API_KEYS; required only when that is set",
    }
    for path, operations in schema.get("paths", {}).items():
        if _protected(path):
            for operation in operations.values():
                operation["security"] = [{SCHEME: []}] if required else [{SCHEME: []}, {}]
    return schema


def key_matches(presented: bytes, keys: Sequence[SecretStr]) -> bool:
    # Compare against every key so the time taken does not depend on which one matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented, key.get_secret_value().encode())
    return matched


class ApiKeyMiddleware:
    """401 for any `/v1` request without a valid `X-API-Key`, before routing or parsing."""

    def __init__(self, app: ASGIApp, keys: Sequence[SecretStr]) -> None:
        self.app = app
        self.keys = tuple(keys)
        self._header = HEADER.lower().encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.keys or scope["type"] != "http" or not _protected(scope["path"]):
            await self.app(scope, receive, send)
            return
        presented = b""
        for name, value in scope.get("headers") or ():
            if name == self._header:
                presented = value
                break
        if key_matches(presented, self.keys):
            await self.app(scope, receive, send)
            return
        response = error_response(401, "unauthorized", "missing or invalid API key")
        await response(scope, receive, send)


def _protected(path: str) -> bool:
    return path == PROTECTED_PREFIX or path.startswith(PROTECTED_PREFIX + "/")
