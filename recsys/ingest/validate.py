"""Vectorised row validation: each batch splits into typed valid rows and rejects with reasons.

A reject is `(line, reason)`; the first failing check of a row names it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from recsys.order_bounds import OrderBounds

LINE = "_line"
REASON = "_reason"
_TS = "_purchased_at"
_NUMBER = "_number_"  # prefix of a parsed numeric column

#: The longest id the API accepts (`api.schemas.Id`).
MAX_ID_CHARS = 128

_TRUE = ["true", "t", "1", "yes", "y"]
_FALSE = ["false", "f", "0", "no", "n"]

# ISO 8601 shapes seen in exports. Aware values are converted to UTC; naive ones are UTC.
_AWARE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%:z")
_NAIVE_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)


@dataclass(frozen=True, slots=True)
class Checked:
    """Outcome of validating one batch."""

    valid: pl.DataFrame
    rejects: pl.DataFrame  # columns: _line (Int64), _reason (Utf8)


def _timestamp_attempts(text: pl.Expr) -> list[pl.Expr]:
    # Only the aware shapes read a `Z` (the naive ones reject any suffix, `Z` or `+00:00`
    # alike): a naive export does not pay a regex over every value.
    aware = text.str.replace(r"Z$", "+00:00")
    return [
        aware.str.to_datetime(fmt, strict=False, time_unit="us").dt.convert_time_zone("UTC")
        for fmt in _AWARE_FORMATS
    ] + [
        text.str.to_datetime(fmt, strict=False, time_unit="us").dt.replace_time_zone("UTC")
        for fmt in _NAIVE_FORMATS
    ]


def parse_timestamp(col: str) -> pl.Expr:
    """Naive-UTC datetime[us] from ISO 8601 text; null where it does not parse."""
    return pl.coalesce(_timestamp_attempts(pl.col(col))).dt.replace_time_zone(None)


def parse_timestamps(values: pl.Series) -> pl.Series:
    """`parse_timestamp` for a whole column, fast when (as in any export) one format dominates.

    Every shape is tried only on the values the first value's shape did not parse.
    """
    frame = values.to_frame("v")
    attempts = _timestamp_attempts(pl.col("v"))
    sample = values.drop_nulls().head(1)
    first = 0
    if sample.len():
        probe = sample.to_frame("v").select(a.alias(f"a{i}") for i, a in enumerate(attempts))
        first = next((i for i, c in enumerate(probe.iter_columns()) if c[0] is not None), 0)
    parsed = frame.select(attempts[first].dt.replace_time_zone(None)).to_series()
    missing = parsed.is_null() & values.is_not_null()
    if missing.any():
        retry = frame.filter(missing).select(pl.coalesce(attempts).dt.replace_time_zone(None))
        parsed = parsed.scatter(missing.arg_true(), retry.to_series())
    return parsed.alias(values.name)


def parse_number(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Float64, strict=False)


def parse_bool(col: str) -> pl.Expr:
    lowered = pl.col(col).str.to_lowercase()
    return (
        pl.when(lowered.is_in(_TRUE))
        .then(True)
        .when(lowered.is_in(_FALSE))
        .then(False)
        .otherwise(None)
    )


def normalise_category(col: str) -> pl.Expr:
    """Lower-case path with trimmed, non-empty levels (`Electronics / TV` -> `electronics/tv`)."""
    return (
        pl.col(col)
        .str.to_lowercase()
        .str.replace_all(r"\s*/\s*", "/")
        .str.replace_all(r"/{2,}", "/")
        .str.strip_chars("/ ")
        .replace("", None)
    )


def _quoted(col: str) -> pl.Expr:
    return pl.lit("'") + pl.col(col).str.slice(0, 40) + pl.lit("'")


class _Checks:
    """An ordered list of (failed?, reason) pairs; the first failing one wins."""

    def __init__(self) -> None:
        self._items: list[tuple[pl.Expr, pl.Expr]] = []

    def add(self, failed: pl.Expr, reason: pl.Expr | str) -> None:
        self._items.append((failed, pl.lit(reason) if isinstance(reason, str) else reason))

    def required(self, columns: Sequence[str], present: Sequence[str]) -> None:
        for column in columns:
            if column in present:
                self.add(pl.col(column).is_null(), f"empty {column}")

    def ids(self, columns: Sequence[str], present: Sequence[str]) -> None:
        """Ids the API can be asked about: no control characters (NUL included), not too long.

        The API answers 422 for such an id, so a row carrying one could never be
        queried; PostgreSQL cannot store a NUL at all.
        """
        for column in columns:
            if column in present:
                self.add(
                    pl.col(column).str.contains(r"[\x00-\x1f\x7f]"),
                    f"{column} contains a control character",
                )
                self.add(
                    pl.col(column).str.len_chars() > MAX_ID_CHARS,
                    f"{column} is longer than {MAX_ID_CHARS} characters",
                )

    def number(
        self,
        column: str,
        present: Sequence[str],
        *,
        non_negative: bool,
        parsed: pl.Expr | None = None,
    ) -> None:
        """`parsed`: the column already parsed (`parse_number`), when the frame holds it."""
        if column not in present:
            return
        if parsed is None:
            parsed = parse_number(column)
        self.add(
            pl.col(column).is_not_null()
            & (parsed.is_null() | parsed.is_nan() | parsed.is_infinite()),
            pl.lit(f"{column} is not a number: ") + _quoted(column),
        )
        if non_negative:
            self.add(parsed < 0, pl.lit(f"{column} is negative: ") + _quoted(column))

    def first_failed(self) -> pl.Expr:
        """The index of the row's first failing check; null when every check passes."""
        if not self._items:
            return pl.lit(None, dtype=pl.UInt16)
        (first_failed, _), *rest = self._items
        chain: Any = pl.when(first_failed).then(pl.lit(0, pl.UInt16))
        for index, (failed, _) in enumerate(rest, start=1):
            chain = chain.when(failed).then(pl.lit(index, pl.UInt16))
        result: pl.Expr = chain.otherwise(None)
        return result

    def reason(self, failed: pl.Expr) -> pl.Expr:
        """The reason of check number `failed` (what `first_failed` gave)."""
        if not self._items:
            return pl.lit(None, dtype=pl.Utf8)
        (_, first_reason), *rest = self._items
        chain: Any = pl.when(failed == 0).then(first_reason)
        for index, (_, reason) in enumerate(rest, start=1):
            chain = chain.when(failed == index).then(reason)
        result: pl.Expr = chain.otherwise(None)
        return result


_FAILED = "_failed"


def _split(frame: pl.DataFrame, checks: _Checks) -> tuple[pl.DataFrame, pl.DataFrame]:
    marked = frame.with_columns(checks.first_failed().alias(_FAILED))
    failed = pl.col(_FAILED).is_not_null()
    # Reasons are spelled out for the rejected rows only (a valid row's would be dropped).
    rejects = marked.filter(failed).select(LINE, checks.reason(pl.col(_FAILED)).alias(REASON))
    valid = marked.filter(~failed).drop(_FAILED)
    return valid, rejects


def with_lines(
    frame: pl.DataFrame, first_line: int, lines: pl.Series | None = None
) -> pl.DataFrame:
    """`frame` with its file lines first: consecutive from `first_line`, or `lines`."""
    if lines is not None:
        return frame.insert_column(0, lines.alias(LINE).cast(pl.Int64))
    return frame.with_row_index(LINE, offset=first_line).with_columns(pl.col(LINE).cast(pl.Int64))


def with_rejects(checked: Checked, rejects: Sequence[tuple[int, str]]) -> Checked:
    """`checked` plus lines rejected before validation (by the reader)."""
    if not rejects:
        return checked
    extra = pl.DataFrame(
        {LINE: [line for line, _ in rejects], REASON: [reason for _, reason in rejects]},
        schema={LINE: pl.Int64, REASON: pl.Utf8},
    )
    return Checked(checked.valid, pl.concat([checked.rejects, extra]).sort(LINE))


def check_transactions(
    frame: pl.DataFrame, known_items: pl.Series, bounds: OrderBounds | None = None
) -> Checked:
    """Typed order lines; quantity and unit price within `bounds` (default `OrderBounds()`).

    Columns: order_id, customer_id, item_id, quantity, unit_price, purchased_at, _line.
    """
    numbers = [c for c in ("quantity", "unit_price", "line_total") if c in frame.columns]
    # Parsed once, for the checks and the typed columns alike.
    frame = frame.with_columns(
        parse_timestamps(frame["purchased_at"]).alias(_TS),
        *(parse_number(c).alias(_NUMBER + c) for c in numbers),
    )
    present = frame.columns

    def number(column: str) -> pl.Expr:
        return pl.col(_NUMBER + column)

    checks = _Checks()
    checks.required(("order_id", "customer_id", "item_id", "purchased_at"), present)
    checks.ids(("order_id", "customer_id", "item_id"), present)
    checks.add(
        pl.col(_TS).is_null(),
        pl.lit("purchased_at is not an ISO 8601 date or timestamp: ") + _quoted("purchased_at"),
    )
    for column in numbers:
        checks.number(column, present, non_negative=column == "unit_price", parsed=number(column))
    bounds = bounds or OrderBounds()
    if "quantity" in present:
        checks.add(number("quantity") == 0, "quantity is 0 (not a purchase)")
        checks.add(
            number("quantity").abs() > bounds.max_quantity,
            pl.lit(f"quantity is beyond ±{bounds.max_quantity:g}: ") + _quoted("quantity"),
        )
    if "unit_price" in present:
        checks.add(
            number("unit_price") > bounds.max_unit_price,
            pl.lit(f"unit_price is over {bounds.max_unit_price:g}: ") + _quoted("unit_price"),
        )
    if "line_total" in present:
        quantity_or_1 = number("quantity").fill_null(1.0) if "quantity" in present else pl.lit(1.0)
        checks.add(
            (number("line_total") / quantity_or_1).abs() > bounds.max_unit_price,
            pl.lit(f"line_total / quantity is over {bounds.max_unit_price:g}: ")
            + _quoted("line_total"),
        )
    checks.add(
        ~pl.col("item_id").is_in(known_items.implode()),
        pl.lit("item_id ") + _quoted("item_id") + pl.lit(" is not in the catalog"),
    )
    valid, rejects = _split(frame, checks)
    quantity = number("quantity").fill_null(1.0) if "quantity" in present else pl.lit(1.0)
    unit_price = number("unit_price") if "unit_price" in present else pl.lit(None, pl.Float64)
    if "line_total" in present:
        # Exports giving the line's total: unit price = total / quantity (signed for returns).
        unit_price = pl.coalesce(unit_price, (number("line_total") / quantity).abs())
    typed = valid.select(
        pl.col("order_id"),
        pl.col("customer_id"),
        pl.col("item_id"),
        quantity.alias("quantity"),
        unit_price.cast(pl.Float64).alias("unit_price"),
        pl.col(_TS).alias("purchased_at"),
        pl.col(LINE),
    )
    return Checked(typed, rejects)


CATALOG_OUTPUT = (
    "item_id",
    "name",
    "category",
    "price",
    "in_stock",
    "url",
    "image_url",
    "brand",
    "cost",
)


def check_catalog(frame: pl.DataFrame) -> Checked:
    present = frame.columns
    checks = _Checks()
    checks.required(("item_id",), present)
    checks.ids(("item_id",), present)
    checks.number("price", present, non_negative=True)
    checks.number("cost", present, non_negative=True)
    if "in_stock" in present:
        checks.add(
            pl.col("in_stock").is_not_null() & parse_bool("in_stock").is_null(),
            pl.lit("in_stock is not a boolean: ") + _quoted("in_stock"),
        )
    valid, rejects = _split(frame, checks)
    exprs: list[pl.Expr] = [pl.col("item_id")]
    for column in ("name", "url", "image_url", "brand"):
        if column in present:
            exprs.append(pl.col(column))
    if "category" in present:
        exprs.append(normalise_category("category").alias("category"))
    for column in ("price", "cost"):
        if column in present:
            exprs.append(parse_number(column).alias(column))
    if "in_stock" in present:
        exprs.append(parse_bool("in_stock").fill_null(True).alias("in_stock"))
    exprs.append(pl.col(LINE))
    return Checked(valid.select(exprs), rejects)


def check_customers(frame: pl.DataFrame) -> Checked:
    present = frame.columns
    checks = _Checks()
    checks.required(("customer_id",), present)
    checks.ids(("customer_id",), present)
    if "email" in present:
        checks.add(
            pl.col("email").is_not_null() & ~pl.col("email").str.contains(r"^[^@\s]+@[^@\s]+$"),
            pl.lit("email is not an address: ") + _quoted("email"),
        )
    for column in ("joined_at", "birthday"):
        if column in present:
            checks.add(
                pl.col(column).is_not_null() & parse_timestamp(column).is_null(),
                pl.lit(f"{column} is not an ISO 8601 date: ") + _quoted(column),
            )
    if "marketing_opt_in" in present:
        checks.add(
            pl.col("marketing_opt_in").is_not_null() & parse_bool("marketing_opt_in").is_null(),
            pl.lit("marketing_opt_in is not a boolean: ") + _quoted("marketing_opt_in"),
        )
    valid, rejects = _split(frame, checks)
    exprs: list[pl.Expr] = [pl.col("customer_id")]
    if "email" in present:
        exprs.append(pl.col("email"))
    for column in ("joined_at", "birthday"):
        if column in present:
            exprs.append(parse_timestamp(column).dt.date().alias(column))
    if "marketing_opt_in" in present:
        exprs.append(parse_bool("marketing_opt_in").fill_null(True).alias("marketing_opt_in"))
    exprs.append(pl.col(LINE))
    return Checked(valid.select(exprs), rejects)
