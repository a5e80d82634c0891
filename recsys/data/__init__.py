"""Data sources bundled with recsys: the deterministic demo retailer."""

from recsys.data.demo import (
    CATALOG_COLUMNS,
    CATEGORIES,
    CATEGORY_BY_PATH,
    CUSTOMER_COLUMNS,
    TRANSACTION_COLUMNS,
    CategoryKind,
    CategorySpec,
    DemoSummary,
    categories_of_kind,
    generate_demo,
)

__all__ = [
    "CATALOG_COLUMNS",
    "CATEGORIES",
    "CATEGORY_BY_PATH",
    "CUSTOMER_COLUMNS",
    "TRANSACTION_COLUMNS",
    "CategoryKind",
    "CategorySpec",
    "DemoSummary",
    "categories_of_kind",
    "generate_demo",
]
