"""`python -P _sqlite_arrow.py PATH`: a SQLite store's orders and lines as Arrow IPC streams.

Run as a child process by `recsys.store.purchases.purchase_frame`, never imported by it:
the ADBC driver carries its own copy of SQLite, and two copies of SQLite in one process
that open the same file release each other's POSIX locks (SQLite's "multiple copies of
SQLite linked into the same application"): a reader there saw stale pages and the
next connection a disk I/O error. In a process of its own it is one more reader.

Writes to stdout two streams, orders then lines (queries below). Only pyarrow and
adbc_driver_sqlite are imported, so it starts in a fraction of a second.
"""

from __future__ import annotations

import sys

# Both tables scanned in their own order and joined by the parent: SQLite's join looked
# each line's order up in the orders index and table (4-5 s of 2.4M random lookups at
# 100k customers), two plain scans take about 1.5 s. The lines come in primary-key order
# (order_id, item_id: no sort step), and a NULL price as a flag, because the driver
# infers a column's type from its first rows: a first batch without prices would make
# the column an integer one, and the first price a type error.
ORDERS = "SELECT order_id, customer_id, purchased_at FROM orders"
LINES = (
    "SELECT order_id, item_id, quantity, unit_price IS NULL AS no_price,"
    " ifnull(unit_price, 0.0) AS unit_price FROM order_lines ORDER BY order_id, item_id"
)


def main(argv: list[str]) -> int:
    import adbc_driver_sqlite.dbapi
    import pyarrow as pa

    (path,) = argv
    out = sys.stdout.buffer
    # One transaction (the driver's default): both scans see the same committed state.
    with adbc_driver_sqlite.dbapi.connect(path) as db, db.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout = 30000")  # as the store engine's `timeout`
        cursor.fetchall()
        for sql in (ORDERS, LINES):
            cursor.execute(sql)
            batches = cursor.fetch_record_batch()
            with pa.ipc.new_stream(out, batches.schema) as stream:
                for batch in batches:
                    stream.write_batch(batch)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
