"""`?exclude=` and `?category=`: the filters email tools expect, checked into `ItemFilters`."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Query

from api.errors import InvalidRequest
from recsys.offers import NO_FILTERS, ItemFilters
from recsys.rules.hierarchy import category_problem

MAX_EXCLUDED = 200
MAX_CATEGORIES = 20
_ID = re.compile(r"^[^\x00-\x1f\x7f]{1,128}$")

Exclude = Annotated[
    list[str] | None,
    Query(
        description="item ids never to return: comma-separated (`exclude=I1,I2`) or repeated; "
        f"at most {MAX_EXCLUDED}"
    ),
]
Category = Annotated[
    list[str] | None,
    Query(
        description="only items in this category or under it (`electronics` covers "
        "`electronics/tv`, not `electronics-outlet`); repeat for several; a narrow category "
        "may return fewer than `limit` items"
    ),
]


def item_filters(exclude: list[str] | None, category: list[str] | None) -> ItemFilters:
    """The request's filters, or a 422 saying which value is wrong."""
    if not exclude and not category:
        return NO_FILTERS
    ids = [part.strip() for value in exclude or () for part in value.split(",")]
    ids = [i for i in ids if i]
    for item_id in ids:
        if not _ID.match(item_id):
            raise InvalidRequest(
                "exclude: item ids are 1-128 characters without control characters"
            )
    if len(ids) > MAX_EXCLUDED:
        raise InvalidRequest(f"exclude: at most {MAX_EXCLUDED} item ids, got {len(ids)}")
    categories = tuple(dict.fromkeys(category or ()))
    if len(categories) > MAX_CATEGORIES:
        raise InvalidRequest(f"category: at most {MAX_CATEGORIES}, got {len(categories)}")
    for value in categories:
        if not _ID.match(value):
            raise InvalidRequest("category: 1-128 characters without control characters")
        problem = category_problem(value)
        if problem is not None:
            raise InvalidRequest(f"category: {problem}")
    return ItemFilters(frozenset(ids), categories)
