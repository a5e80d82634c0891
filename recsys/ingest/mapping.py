"""`--map SOURCE=canonical` pairs: rename source columns, or join several into a category path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from recsys.ingest.errors import IngestError
from recsys.ingest.schema import SCHEMAS, Kind


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Canonical column -> the source column(s) it is read from.

    A target with several sources (`A+B+C=category`) is a hierarchical path:
    the non-empty values joined by `/`, each with its own `/` replaced so a
    value cannot add a level.
    """

    targets: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def sources(self) -> set[str]:
        return {source for sources in self.targets.values() for source in sources}


def parse_map(pairs: Sequence[str], kind: Kind) -> ColumnMap:
    """Parse `SOURCE=canonical` strings; raise IngestError on a malformed pair or unknown target."""
    allowed = SCHEMAS[kind].columns
    targets: dict[str, tuple[str, ...]] = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        source, target = source.strip(), target.strip()
        if not sep or not source or not target:
            raise IngestError(f"--map {pair!r}: expected SOURCE=canonical, e.g. InvoiceNo=order_id")
        if target not in allowed:
            raise IngestError(
                f"--map {pair!r}: {target!r} is not a {kind} column; "
                f"choose from {', '.join(allowed)}"
            )
        if target in targets:
            raise IngestError(f"--map {pair!r}: {target!r} is mapped twice")
        parts = tuple(part.strip() for part in source.split("+"))
        if any(not part for part in parts):
            raise IngestError(f"--map {pair!r}: empty column name in {source!r}")
        targets[target] = parts
    return ColumnMap(targets)


def resolve_columns(
    header: Sequence[str], column_map: ColumnMap, kind: Kind
) -> dict[str, tuple[str, ...]]:
    """Canonical column -> source columns for this file; raises when required ones are absent.

    A header column already named canonically is used as is unless the map
    redirects that canonical name elsewhere.
    """
    present = set(header)
    missing_sources = sorted(column_map.sources() - present)
    if missing_sources:
        raise IngestError(
            f"the file has no column {', '.join(map(repr, missing_sources))} named in --map; "
            f"its columns are: {', '.join(header)}"
        )
    resolved = dict(column_map.targets)
    mapped_sources = column_map.sources()
    for column in SCHEMAS[kind].columns:
        if column not in resolved and column in present and column not in mapped_sources:
            resolved[column] = (column,)
    missing = [c for c in SCHEMAS[kind].required if c not in resolved]
    if missing:
        raise IngestError(
            f"missing required {kind} column(s): {', '.join(missing)}; "
            f"the file has: {', '.join(header)} (use --map SOURCE=canonical)"
        )
    return resolved


def apply_columns(batch: pl.DataFrame, resolved: dict[str, tuple[str, ...]]) -> pl.DataFrame:
    """Select and rename to canonical columns (all strings, stripped, empty -> null)."""
    exprs: list[pl.Expr] = []
    for target, sources in resolved.items():
        cleaned = [pl.col(s).cast(pl.Utf8).str.strip_chars().replace("", None) for s in sources]
        if len(sources) == 1:
            exprs.append(cleaned[0].alias(target))
        else:
            levels = [c.str.replace_all("/", "-", literal=True) for c in cleaned]
            exprs.append(
                pl.concat_str(levels, separator="/", ignore_nulls=True)
                .replace("", None)
                .alias(target)
            )
    return batch.select(exprs)
