"""Hierarchical categories (`electronics/tv/oled`): prefix matching on `/` boundaries.

Every rule that talks about a category (complement map, overrides, durable
blocks, exclusions) means "this category and everything under it", so
`electronics/tv` covers `electronics/tv/oled` but not `electronics/tv-mounts`.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

SEPARATOR = "/"


@lru_cache(maxsize=65_536)
def ancestors(category: str) -> tuple[str, ...]:
    """The category itself, then each parent up to the root: `a/b/c` -> `(a/b/c, a/b, a)`.

    Cached: every rule asks this for every candidate, and catalogs reuse few categories.
    """
    parts = category.split(SEPARATOR)
    return tuple(SEPARATOR.join(parts[:n]) for n in range(len(parts), 0, -1))


def is_under(category: str, scope: str) -> bool:
    """True when `category` is `scope` or a descendant of it (never a sibling sharing a prefix)."""
    return category == scope or category.startswith(scope + SEPARATOR)


def under_any(category: str, scopes: Iterable[str]) -> bool:
    return any(is_under(category, scope) for scope in scopes)


def category_problem(category: str) -> str | None:
    """Why `category` is not a well-formed hierarchical category, or None when it is."""
    if not category:
        return "category must not be empty"
    if category != category.strip():
        return f"category {category!r} has leading or trailing spaces"
    if any(not part.strip() for part in category.split(SEPARATOR)):
        return f"category {category!r} has an empty level"
    return None
