"""Integer codes and packed keys for the training-time learners.

The learners group millions of (customer, item, day) rows. On string ids every
`unique`, `sort` and join hashes or compares strings; with the columns as integer
codes packed into one UInt64 per row they run several times faster and form the same
groups: the packing is a bijection of the codes, and no result depends on the codes'
values (names are joined back on the few rows that are kept).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# polars is imported inside the functions: the API's workers never need it.
if TYPE_CHECKING:
    import polars as pl

#: A packed key is a UInt64: the product of the columns' radixes must stay below this.
_KEY_LIMIT = 2**64


def string_codes(column: str) -> pl.Expr:
    """The column's strings as UInt32 codes, equal strings equal codes (polars' global
    categorical mapping, so the codes of one process agree between frames)."""
    import polars as pl

    return pl.col(column).cast(pl.String).cast(pl.Categorical).to_physical()


def bought_days(purchases: pl.DataFrame, code: str) -> pl.DataFrame:
    """The bought lines (quantity > 0; a missing quantity counts as 1) as `customer`
    (code), `item_id` (categorical), `code` (the item's code, under that name) and
    `day` (days since the first one, so packed keys take non-negative values)."""
    import polars as pl

    quantity = pl.col("quantity") if "quantity" in purchases.columns else pl.lit(1)
    return (
        purchases.lazy()
        .filter(quantity.fill_null(1) > 0)
        .select(
            string_codes("customer_id").alias("customer"),
            pl.col("item_id").cast(pl.String).cast(pl.Categorical).alias("item_id"),
            pl.col("purchased_at").cast(pl.Date).cast(pl.Int32).alias("day"),
        )
        .with_columns(
            pl.col("item_id").to_physical().alias(code), pl.col("day") - pl.col("day").min()
        )
        .collect()
    )


def radixes(frame: pl.DataFrame, columns: list[str]) -> list[int]:
    """The radix of each of `frame`'s `columns` (non-negative integers): one more than its
    largest value, so that `packed_key(columns, radixes)` is a bijection.

    Raises ValueError when the product does not fit in 64 bits: codes count distinct
    strings, so that takes, say, 10 million customers x 100,000 items x 18,000 days.
    """
    found = (
        [1 for _ in columns]
        if frame.is_empty()
        else [int(value) + 1 for value in frame.select(columns).max().row(0)]
    )
    check_fits(found)
    return found


def check_fits(radixes: list[int]) -> None:
    """Raise ValueError unless keys of these radixes fit in a UInt64."""
    product = 1
    for radix in radixes:
        product *= radix
    if product >= _KEY_LIMIT:
        raise ValueError(f"{' x '.join(map(str, radixes))} keys do not fit in 64 bits")


def packed_key(columns: list[str], radixes: list[int]) -> pl.Expr:
    """`columns` as one UInt64, the first most significant: sorting the key sorts by the
    columns in this order; `key // radixes[-1]` drops the last column, and so on."""
    import polars as pl

    key = pl.col(columns[0]).cast(pl.UInt64)
    for column, radix in zip(columns[1:], radixes[1:], strict=True):
        key = key * radix + pl.col(column).cast(pl.UInt64)
    return key
