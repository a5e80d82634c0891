"""`?exclude=` and `?category=`: the filters email tools expect, checked into `ItemFilters`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import StringConstraints

from api.errors import InvalidRequest
from recsys.offers import NO_FILTERS, ItemFilters
from recsys.rules.hierarchy import category_problem

MAX_CATEGORIES = 20
# The rules these values must follow are in the OpenAPI document as patterns, so a
# client (or a schema-driven test) knows them: no control characters anywhere; a
# category without empty levels and without leading or trailing spaces
# (`recsys.rules.hierarchy.category_problem` has the last word).
# C1 controls (\x80-\x9f) are out too: regex dialects disagree on whether \s covers U+0085.
_NO_CONTROL = r"^[^\x00-\x1f\x7f-\x9f]*$"
_N = r"[^\s/\x00-\x1f\x7f-\x9f]"  # neither a space, nor a slash, nor a control character
_A = r"[^/\x00-\x1f\x7f-\x9f]"  # not a slash, not a control character
_CATEGORY = rf"^(?:{_N}(?:{_A}*{_N})?|{_N}{_A}*(?:/{_A}*{_N}{_A}*)*/{_A}*{_N})$"

Exclude = Annotated[
    list[Annotated[str, StringConstraints(pattern=_NO_CONTROL)]] | None,
    Query(
        description="item ids never to return: comma-separated (`exclude=I1,I2`) or repeated"
    ),
]
Category = Annotated[
    list[Annotated[str, StringConstraints(pattern=_CATEGORY)]] | None,
    Query(
        max_length=MAX_CATEGORIES,
        description="only items in this category or under it (`electronics` covers "
        "`electronics/tv`, not `electronics-outlet`); repeat for several (at most "
        f"{MAX_CATEGORIES}); a narrow category may return fewer than `limit` items",
    ),
]


def item_filters(exclude: list[str] | None, category: list[str] | None) -> ItemFilters:
    """The request's filters (the query's patterns already held), or a 422 saying what is wrong."""
    if not exclude and not category:
        return NO_FILTERS
    # An id the catalog cannot hold (empty, over-long) excludes nothing: it is dropped.
    ids = frozenset(part.strip() for value in exclude or () for part in value.split(","))
    categories = tuple(dict.fromkeys(category or ()))
    for value in categories:
        problem = category_problem(value)
        if problem is not None:
            raise InvalidRequest(f"category: {problem}")
    return ItemFilters(ids - {""}, categories)
