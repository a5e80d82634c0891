"""`recsys campaign {anniversary,birthday}`: a Typer sub-app that `recsys.cli` registers.

Thin like the other commands: parse, build settings, load model/rules/catalog,
call `run_campaign`, print the summary to stderr (stdout may carry the offers).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from recsys.cli_common import (
    console,
    fail,
    load_rules_or_fail,
    load_settings,
    open_store,
    parse_date,
    parse_instant,
)
from recsys.progress import Tracker, progress_for
from recsys.settings import Settings

if TYPE_CHECKING:  # the store module pulls in the rules and numpy; a type is all we need
    from recsys.store.campaigns import Occasion

campaign_app = typer.Typer(
    help="Write the day's anniversary or birthday offers (JSON Lines).", no_args_is_help=True
)
DateOption = Annotated[str, typer.Option("--date", help="the campaign day, YYYY-MM-DD")]
OutOption = Annotated[
    Path | None,
    typer.Option("--out", help="JSON Lines file, appended to (default: stdout)", dir_okay=False),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="write the offers but record nothing, issue no voucher")
]
LimitOption = Annotated[int, typer.Option("--limit-items", min=1, max=50, help="items per offer")]
BatchOption = Annotated[int, typer.Option("--batch-size", min=1, help="customers per batch")]
AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="ISO instant the rules, tiers and contact cap are evaluated at (replays; "
        "default: the clock, or 09:00 UTC of a past --date; it is the send time recorded)",
    ),
]
WorkersOption = Annotated[
    int,
    typer.Option("--workers", min=0, help="processes running the rules (0: one per core)"),
]
EngineOption = Annotated[
    str,
    typer.Option("--engine", help="local (this machine's --workers) or spark (executors)"),
]
MasterOption = Annotated[
    str, typer.Option(help="with --engine spark: local[N], local[N,retries], spark://host:7077...")
]
ConfOption = Annotated[
    list[str] | None,
    typer.Option("--spark-conf", help="with --engine spark: key=value (repeatable)"),
]


@dataclass(frozen=True, slots=True)
class _Engine:
    """Where the drafting runs: `name` local or spark, with Spark's master and conf."""

    name: str = "local"
    master: str = "local[*]"
    conf: list[str] | None = None


@campaign_app.command()
def anniversary(
    day: DateOption,
    out: OutOption = None,
    dry_run: DryRunOption = False,
    limit_items: LimitOption = 4,
    batch_size: BatchOption = 500,
    workers: WorkersOption = 0,
    as_of: AsOfOption = None,
    engine: EngineOption = "local",
    spark_master: MasterOption = "local[*]",
    spark_conf: ConfOption = None,
) -> None:
    """Offers for customers whose membership anniversary is --date."""
    _run("anniversary", day, out, dry_run, limit_items, batch_size, workers, as_of,
         _Engine(engine, spark_master, spark_conf))


@campaign_app.command()
def birthday(
    day: DateOption,
    out: OutOption = None,
    dry_run: DryRunOption = False,
    limit_items: LimitOption = 4,
    batch_size: BatchOption = 500,
    workers: WorkersOption = 0,
    as_of: AsOfOption = None,
    engine: EngineOption = "local",
    spark_master: MasterOption = "local[*]",
    spark_conf: ConfOption = None,
) -> None:
    """Offers for customers whose birthday is --date."""
    _run("birthday", day, out, dry_run, limit_items, batch_size, workers, as_of,
         _Engine(engine, spark_master, spark_conf))


def _run(
    occasion: Occasion,
    value: str,
    out: Path | None,
    dry_run: bool,
    limit_items: int,
    batch_size: int,
    workers: int,
    as_of: str | None = None,
    where: _Engine = _Engine(),
) -> None:
    import os

    from recsys.campaign.job import CampaignError, run_campaign
    from recsys.campaign.output import open_output

    if where.name not in ("local", "spark"):
        raise fail(f"unknown engine {where.name!r}; choose local or spark", 2)
    day = parse_date(value)
    now = parse_instant(as_of) if as_of is not None else None
    settings = load_settings()
    # Everything that can fail up front is checked before the first batch is recorded.
    try:
        with open_output(out) as stream, contextlib.ExitStack() as spark_stack:
            drafting = _spark_drafting(settings, where, spark_stack) if where.name == "spark" \
                else None
            engine, model, rules, catalog, variant_models = _load(settings, occasion)
            with _progress() as progress:
                task = progress.add_task(f"{occasion} {day.isoformat()}", total=None)

                def report(done: int, total: int) -> None:
                    progress.update(task, completed=done, total=total)

                summary = run_campaign(
                    engine,
                    model,
                    rules,
                    catalog,
                    occasion=occasion,
                    day=day,
                    out=stream,
                    journal_dir=settings.home / "campaigns",
                    out_path=out,
                    dry_run=dry_run,
                    limit_items=limit_items,
                    valid_days=settings.voucher_valid_days,
                    batch_size=batch_size,
                    progress=report,
                    workers=workers or os.cpu_count() or 1,
                    now=now,
                    variant_models=variant_models,
                    drafting=drafting,
                )
    except CampaignError as exc:
        raise fail(str(exc), 1) from exc
    skipped = ", ".join(f"{reason} {count:,}" for reason, count in summary.skipped.items())
    console.print(
        f"{occasion} {day.isoformat()}{' (dry run)' if dry_run else ''}: "
        f"selected {summary.selected:,}  written {summary.written:,}  "
        f"recovered {summary.recovered:,}  skipped: {skipped}  "
        f"elapsed {summary.elapsed_s:.2f}s"
    )


def _spark_drafting(settings: Settings, where: _Engine, stack: contextlib.ExitStack) -> Any:
    """The Spark draft source; pyspark, Java and the master are checked now, and the
    session starts once there are due customers (closed with `stack`)."""
    from training.errors import TrainingPipelineError

    try:
        from training.spark.session import preflight

        preflight(where.master)  # in seconds, before the store is touched
        from training.spark.campaign import spark_drafting
        from training.spark.job import parse_conf
        from training.spark.session import spark_session

        conf = parse_conf(where.conf)
    except TrainingPipelineError as exc:
        raise fail(str(exc), 1) from exc

    def start() -> Any:
        try:
            return stack.enter_context(
                spark_session(where.master, app_name="recsys-campaign", conf=conf)
            )
        except TrainingPipelineError as exc:
            raise fail(str(exc), 1) from exc

    return spark_drafting(start, models_dir=settings.models_dir,
                          store_url=settings.database_url)


def _load(settings: Settings, occasion: str) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
    """Store, current model, rules, catalog and the occasion's variant models; a clear
    error (exit 1) for each failure."""
    from recsys.experiments import check_model_versions
    from recsys.rules.config import RulesConfigError
    from recsys.store.catalog import load_items
    from training.artifacts import list_versions
    from training.errors import ArtifactError
    from training.serving import load_serving_model

    rules = load_rules_or_fail(settings, 1)
    engine = open_store(settings, 1)
    try:
        model = load_serving_model(settings.models_dir)
    except (ArtifactError, OSError) as exc:
        raise fail(f"{exc}; run `recsys train` first", 1) from exc
    versions = {
        v.model_version
        for e in rules.experiments
        if e.placement == occasion
        for v in e.variants
        if v.model_version is not None and v.model_version != model.version
    }
    variant_models: dict[str, Any] = {}
    if versions:
        try:
            check_model_versions(rules, [v.version for v in list_versions(settings.models_dir)])
            variant_models = {v: load_serving_model(settings.models_dir, v) for v in versions}
        except RulesConfigError as exc:
            raise fail(str(exc), 1) from exc
        except (ArtifactError, OSError) as exc:
            raise fail(f"an experiment's model version cannot be loaded: {exc}", 1) from exc
    with engine.connect() as conn:
        catalog = load_items(conn)
    return engine, model, rules, catalog, variant_models


def _progress() -> Tracker:
    return progress_for(console, "customers")
