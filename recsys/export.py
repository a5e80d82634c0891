"""`recsys export purchases PATH`: the store's purchase lines as one Parquet file.

The same columns and types as `recsys.store.purchases.purchase_frame` (the training
input), streamed from either store in batches, so an export of 25M lines never holds
them all in memory. Spark (`recsys train --engine spark`) and other tools read it
natively. The file is written under a temporary name and renamed into place: a
reader never sees half an export.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, select

from recsys.store.tables import order_lines, orders

__all__ = ["ExportError", "ExportSummary", "export_purchases"]

_BATCH_ROWS = 200_000


class ExportError(Exception):
    """The export could not be written; no file was left at the target path."""


@dataclass(frozen=True, slots=True)
class ExportSummary:
    path: Path
    rows: int
    bytes: int


def export_purchases(
    conn: Connection, path: Path, *, batch_rows: int = _BATCH_ROWS
) -> ExportSummary:
    """Write every order line joined with its order to `path` (Parquet, zstd).

    Columns: customer_id, item_id, order_id (string), quantity, unit_price (double),
    purchased_at (timestamp[us], naive UTC). An empty store writes an empty file
    with that schema. Raises ExportError when the target cannot be written.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("customer_id", pa.string()),
            ("item_id", pa.string()),
            ("order_id", pa.string()),
            ("quantity", pa.float64()),
            ("unit_price", pa.float64()),
            ("purchased_at", pa.timestamp("us")),
        ]
    )
    query = select(
        orders.c.customer_id,
        order_lines.c.item_id,
        order_lines.c.order_id,
        order_lines.c.quantity,
        order_lines.c.unit_price,
        orders.c.purchased_at,
    ).join(orders, orders.c.order_id == order_lines.c.order_id)
    if path.is_dir():
        raise ExportError(f"{path} is a directory; give a file name such as purchases.parquet")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create {path.parent}: {exc}") from exc
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    rows = 0
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            result = conn.execution_options(yield_per=batch_rows).execute(query)
            for batch in result.partitions(batch_rows):
                columns = list(zip(*batch, strict=True))
                writer.write_table(
                    pa.Table.from_arrays(
                        [pa.array(values, type=field.type)
                         for values, field in zip(columns, schema, strict=True)],
                        schema=schema,
                    )
                )
                rows += len(batch)
            if rows == 0:
                writer.write_table(schema.empty_table())
        os.replace(tmp, path)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return ExportSummary(path, rows, path.stat().st_size)
