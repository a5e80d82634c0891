"""`/v1` routes answer 422 for a query parameter they do not declare, instead of ignoring it.

A typo (`?limt=10`, `?exlude=I1`) silently served the defaults; email tools then shipped
the wrong list without anyone noticing. The check is a route class, so it costs one set
lookup per parameter and no extra dependency to solve per request.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from api.errors import InvalidRequest


def declared_query_params(dependant: Dependant) -> frozenset[str]:
    """The query parameter names a route (with its dependencies) reads."""
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        names.update(field.alias for field in current.query_params)
        pending.extend(current.dependencies)
    return frozenset(names)


class StrictQueryRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        allowed = declared_query_params(self.dependant)
        listed = ", ".join(sorted(allowed)) or "none"

        async def strict_handler(request: Request) -> Response:
            if request.scope.get("query_string"):
                unknown = sorted({key for key in request.query_params if key not in allowed})
                if unknown:
                    named = ", ".join(repr(key[:40]) for key in unknown[:5])
                    raise InvalidRequest(
                        f"unknown query parameter(s) {named}; this endpoint takes: {listed}"
                    )
            return await handler(request)

        return strict_handler
