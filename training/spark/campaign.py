"""The campaign job's drafting on Spark executors (`recsys campaign ... --engine spark`).

The driver selects the due customers with the same SQL as one machine; Spark
hash-partitions them by customer id across the executors, and each partition runs the
local drafting code (`recsys.campaign.drafting.draft_batch`: the store's reads, one
batched model call, the rules) in batches. Executors only read the store. The driver
then records the drafts exactly as `recsys.campaign.job.run_campaign` does on one
machine (journal, contact log with `ON CONFLICT DO NOTHING`, output), so exactly-once is
the local guarantee, unchanged:

- a task that fails or whose executor dies is retried by Spark; it recorded nothing,
  and only a finished attempt's rows ever reach the driver;
- a rerun finds the customers already sent in the contact log, and a killed driver's
  committed batch is finished from its journal;
- two jobs at once: the contact log's unique key decides which one records a customer.

Every executor loads the models by version from the shared artifacts folder (the
versions the driver serves, experiment variants included, even if `current` moves
meanwhile) and connects to the store itself; the catalog is broadcast. A drafted batch
travels back to the driver as one row, the pickled `DraftedBatch` (drafts, held-out
contacts, skips), so the driver records exactly what the local drafting would hand it.
"""

from __future__ import annotations

import functools
import math
import pickle
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from recsys.campaign.drafting import DraftContext, DraftedBatch, draft_batch
from recsys.campaign.job import CampaignError, DraftedBatches, DraftSource
from recsys.offers import ServingModel
from recsys.records import Customer, Item
from recsys.rules.config import RulesConfig
from recsys.store.campaigns import DueCustomer, Occasion
from training.spark.session import failure_message

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark import Broadcast
    from pyspark.sql import SparkSession

__all__ = ["DRAFTED_SCHEMA", "DUE_SCHEMA", "spark_drafting"]

DUE_SCHEMA = (
    "customer_id string, email string, joined_at date, birthday date, "
    "marketing_opt_in boolean, since date"
)
#: One row per drafted batch: the pickled `DraftedBatch` and the customers it covers.
DRAFTED_SCHEMA = "batch binary, customers long"
#: Partitions per core at most: enough that a retried task redoes little, few enough
#: that fetching them one by one to the driver costs little.
_PARTITIONS_PER_CORE = 4

Drafting = Callable[[DraftContext, Engine, Sequence[DueCustomer]], DraftedBatch]


@dataclass(frozen=True, slots=True)
class _PartitionTask:
    """What every partition needs besides the models and catalog (pickled with the task)."""

    models_dir: str
    version: str
    variant_versions: tuple[str, ...]
    store_url: str
    rules: RulesConfig
    occasion: Occasion
    day: date
    now: datetime
    dry_run: bool
    limit_items: int
    valid_days: int
    batch_size: int
    draft: Drafting


@functools.lru_cache(maxsize=8)
def _serving_model(models_dir: str, version: str) -> ServingModel:
    """A run's model in this executor's Python worker, loaded once (Spark reuses workers)."""
    from training.serving import load_serving_model

    return load_serving_model(Path(models_dir), version)


def _due(row: dict[str, Any]) -> DueCustomer:
    customer = Customer(row["customer_id"], row["email"], row["joined_at"], row["birthday"],
                        bool(row["marketing_opt_in"]))
    return DueCustomer(customer, row["since"])


def _drafted_row(batch: DraftedBatch, customers: int) -> pa.RecordBatch:
    import pyarrow as pa

    return pa.RecordBatch.from_pydict(
        {"batch": [pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)],
         "customers": [customers]},
        schema=pa.schema([("batch", pa.binary()), ("customers", pa.int64())]),
    )


def _draft_partition(
    task: _PartitionTask, catalog: Broadcast[dict[str, Item]], batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """One partition of due customers -> one row per `task.batch_size` customers drafted."""
    from threadpoolctl import threadpool_limits

    from recsys.store.engine import create_store_engine

    ctx = DraftContext(
        _serving_model(task.models_dir, task.version), task.rules, catalog.value,
        task.occasion, task.day, task.now, task.dry_run, task.limit_items, task.valid_days,
        {v: _serving_model(task.models_dir, v) for v in task.variant_versions},
    )
    engine = create_store_engine(task.store_url)
    try:
        # Spark runs one task per core: threads inside one (BLAS, OpenMP) would fight them.
        with threadpool_limits(limits=1):
            pending: list[DueCustomer] = []
            for batch in batches:
                for row in batch.to_pylist():
                    pending.append(_due(row))
                    if len(pending) == task.batch_size:
                        yield _drafted_row(task.draft(ctx, engine, pending), len(pending))
                        pending = []
            if pending:
                yield _drafted_row(task.draft(ctx, engine, pending), len(pending))
    finally:
        engine.dispose()


def _due_frame(spark: SparkSession, due: Sequence[DueCustomer]) -> Any:
    import pyarrow as pa

    table = pa.table(
        {
            "customer_id": pa.array([d.customer.customer_id for d in due], pa.string()),
            "email": pa.array([d.customer.email for d in due], pa.string()),
            "joined_at": pa.array([d.customer.joined_at for d in due], pa.date32()),
            "birthday": pa.array([d.customer.birthday for d in due], pa.date32()),
            "marketing_opt_in": pa.array([d.customer.marketing_opt_in for d in due], pa.bool_()),
            "since": pa.array([d.since for d in due], pa.date32()),
        }
    )
    return spark.createDataFrame(table, schema=DUE_SCHEMA)


def spark_drafting(
    spark: Callable[[], SparkSession],
    *,
    models_dir: Path,
    store_url: str,
    partitions: int | None = None,
    draft: Drafting = draft_batch,
) -> DraftSource:
    """A `run_campaign(drafting=...)` source drafting on the executors of `spark()`.

    `spark` is called once there are due customers (a job with nobody due starts no
    Spark). `models_dir` and `store_url` must be reachable from every executor (shared
    storage, PostgreSQL; a SQLite file only in local mode). `partitions`: default
    the due customers' batches, at most 4 per core. `draft` is the per-batch drafting
    (the local `draft_batch`). Raises CampaignError when the Spark job fails; nothing is
    recorded then for the batches not yet handed over.
    """

    def batches(
        ctx: DraftContext, engine: Engine, due: Sequence[DueCustomer], batch_size: int
    ) -> DraftedBatches:
        if not due:
            return
        from py4j.protocol import Py4JJavaError
        from pyspark import StorageLevel
        from pyspark.errors import PySparkException

        session = spark()
        task = _PartitionTask(
            str(models_dir), ctx.model.version, tuple(ctx.variant_models), store_url,
            ctx.rules, ctx.occasion, ctx.day, ctx.now, ctx.dry_run, ctx.limit_items,
            ctx.valid_days, batch_size, draft,
        )
        cores = session.sparkContext.defaultParallelism
        n = partitions or max(1, min(math.ceil(len(due) / batch_size),
                                     _PARTITIONS_PER_CORE * cores))
        catalog = session.sparkContext.broadcast(dict(ctx.catalog))
        drafted = (
            _due_frame(session, due)
            .repartition(n, "customer_id")  # Spark's hash of the customer id
            .mapInArrow(functools.partial(_draft_partition, task, catalog), DRAFTED_SCHEMA)
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        try:
            # Every partition drafted at once across the executors; then they come to
            # the driver one by one, each partition whole, to be recorded batch by batch.
            drafted.count()
            done = 0
            for row in drafted.toLocalIterator(prefetchPartitions=True):
                done += row["customers"]
                yield done, pickle.loads(row["batch"])  # our own executors' batches
        except (Py4JJavaError, PySparkException) as exc:
            raise CampaignError(f"the Spark job failed: {failure_message(exc)}") from exc
        finally:
            drafted.unpersist()
            catalog.unpersist()

    return batches
