"""`recsys` command line. Commands stay thin: parse, build settings, call the library, print."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from recsys.cli_common import console, out, parse_instant
from recsys.cli_common import fail as _fail
from recsys.cli_common import load_rules_or_fail as _rules
from recsys.cli_common import load_settings as _settings
from recsys.cli_common import open_store as _engine
from recsys.cli_common import parse_date as _parse_date
from recsys.progress import Tracker, progress_for

app = typer.Typer(help="Loyalty and personalized-offer recommender.", no_args_is_help=True)


def _progress(transient: bool = False) -> Tracker:
    return progress_for(console, "rows", transient=transient)


@app.command()
def ingest(
    kind: Annotated[str, typer.Argument(help="transactions, catalog or customers")],
    path: Annotated[Path, typer.Argument(help="CSV, gzip CSV or Parquet file")],
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", help="SOURCE=canonical (repeatable); A+B+C=category joins levels"),
    ] = None,
    chunk_rows: Annotated[int | None, typer.Option(help="rows per batch")] = None,
) -> None:
    """Validate a file and load it into the store; prints accepted / rejected counts."""
    from recsys.ingest import IngestError, ingest_file, parse_map
    from recsys.ingest.schema import KINDS

    if kind not in KINDS:
        raise _fail(f"unknown kind {kind!r}; choose from {', '.join(KINDS)}")
    settings = _settings()
    try:
        column_map = parse_map(map_ or [], kind)
        engine = _engine(settings)
        with _progress() as progress:
            task = progress.add_task(f"ingest {kind}", total=None)
            summary = ingest_file(
                engine,
                kind,
                path,
                column_map,
                rejects_dir=settings.rejects_dir,
                chunk_rows=chunk_rows or settings.ingest_chunk_rows,
                progress=lambda n: progress.advance(task, n),
                bounds=settings.order_bounds,
            )
    except IngestError as exc:
        raise _fail(f"{exc}; nothing was loaded") from exc
    out.print(
        f"{kind}: read {summary.read:,}  accepted {summary.accepted:,}  "
        f"new {summary.inserted:,}  updated {summary.updated:,}  "
        f"unchanged {summary.unchanged:,}  merged {summary.merged:,}  "
        f"rejected {summary.rejected:,}"
    )
    for warning, count in summary.warnings.items():
        out.print(f"  warning: {warning}: {count:,}")
    for reason, count in summary.top_reasons():
        out.print(f"  rejected: {reason}: {count:,}")
    if summary.rejects_path:
        out.print(f"  rejects file: {summary.rejects_path}")


@app.command("demo-data")
def demo_data(
    out_dir: Annotated[Path, typer.Option("--out", help="directory for the three CSV files")],
    customers: Annotated[int, typer.Option(min=1)] = 5000,
    items: Annotated[int, typer.Option(min=60)] = 600,
    seed: int = 7,
    due_date: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD: skew joined dates onto this day")
    ] = None,
    due_share: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.0,
    end: Annotated[
        str | None,
        typer.Option(help="YYYY-MM-DD: the history's last day (default 2026-11-20)"),
    ] = None,
) -> None:
    """Write the deterministic demo retailer (catalog, customers, transactions)."""
    from recsys.data.demo import HISTORY_END, generate_demo

    _settings()
    due = _parse_date(due_date) if due_date else None
    history_end = _parse_date(end) if end else HISTORY_END
    with _progress() as progress:
        task = progress.add_task("demo customers", total=customers)
        summary = generate_demo(
            out_dir,
            customers=customers,
            items=items,
            seed=seed,
            due_date=due,
            due_share=due_share,
            progress=lambda n: progress.advance(task, n),
            end=history_end,
        )
    out.print(
        f"demo retailer in {summary.out_dir}: {summary.customers:,} customers, "
        f"{summary.items:,} items, {summary.orders:,} orders, {summary.lines:,} lines"
    )


@app.command("demo-responses")
def demo_responses(
    offers: Annotated[Path, typer.Option("--offers", help="a campaign's JSON Lines output")],
    uplift: Annotated[float, typer.Option(min=-1.0, max=1.0)] = 0.03,
    base_rate: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.10,
    redeem_rate: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.6,
    window_days: Annotated[int, typer.Option(min=1)] = 14,
    seed: int = 7,
) -> None:
    """Simulate the demo's responses to a campaign (a planted uplift) and record the orders."""
    import json
    from datetime import date, datetime

    from recsys.data.responses import (
        ResponseModel,
        held_out_of,
        recipients_from_offers,
        record_orders,
        simulate_orders,
    )
    from recsys.feedback.events import FeedbackError
    from recsys.store.catalog import load_items
    from recsys.store.purchases import OrderConflict

    settings = _settings()
    try:
        lines = [json.loads(t) for t in offers.read_text(encoding="utf-8").splitlines() if t]
        model = ResponseModel(base_rate, uplift, redeem_rate, window_days, seed)
    except (OSError, ValueError) as exc:
        raise _fail(f"{offers}: {exc}") from exc
    if not lines:
        raise _fail(f"{offers} holds no offers")
    occasion, day = str(lines[0]["occasion"]), date.fromisoformat(str(lines[0]["date"]))
    engine = _engine(settings)
    with engine.connect() as conn:
        held = held_out_of(conn, occasion, day)
        prices = {i.item_id: i.price for i in load_items(conn).values() if i.price}
    at = datetime(day.year, day.month, day.day, 9)
    # Order ids name the campaign and seed: a rerun records nothing new.
    orders = simulate_orders(recipients_from_offers(lines, held, at), prices, model,
                             order_prefix=f"SIM-{occasion}-{day.isoformat()}-{seed}")
    try:
        recorded = record_orders(engine, orders)
    except (FeedbackError, OrderConflict) as exc:
        raise _fail(str(exc)) from exc
    out.print(
        f"{occasion} {day.isoformat()}: {len(lines):,} sent, {len(held):,} held out; "
        f"{recorded:,} simulated orders recorded "
        f"({sum('voucher_code' in o for o in orders):,} redeeming a voucher)"
    )


@app.command()
def migrate() -> None:
    """Create or upgrade the store's schema (every command also does this)."""
    settings = _settings()
    engine = _engine(settings)
    out.print(f"store ready: {engine.url.render_as_string(hide_password=True)}")


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1)] = 1,
    access_log: Annotated[
        bool, typer.Option(help="log every request (costs about 1 ms a request)")
    ] = False,
) -> None:
    """Start the HTTP API.

    The workers (one by default) run under uvicorn's supervisor: one that dies is
    logged ("Child process [...] died") and replaced. They count metrics in
    prometheus-client's multiprocess mode, so any worker's `/metrics` sums them all.
    """
    import os
    import shutil
    import tempfile

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    # One request scores one customer: a multi-threaded BLAS only fights the other
    # workers for the cores. Set before any worker imports numpy.
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
    _settings()
    # Set before any worker imports prometheus_client (it picks its value store then).
    own_dir = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    if own_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="recsys-metrics-")
    config = uvicorn.Config(
        "api.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=access_log,
    )
    try:
        # Supervised even with one worker (uvicorn.run would serve one in this process,
        # where a crash ends the service).
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    finally:
        if own_dir:
            shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    # Cells never wrap or truncate: a table wider than the terminal scrolls instead of
    # losing columns (`out` is created wide enough, see recsys.cli_common).
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    return table


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(tzinfo=None)


@app.command()
def train(
    model: Annotated[
        str,
        typer.Option(
            help="auto (default: chosen on a validation window), hybrid, als, bpr, item-knn, "
            "tifu-knn, popular, repurchase or paired (tifu-knn for the newsletter, als for "
            "anniversaries)"
        ),
    ] = "auto",
    factors: Annotated[int | None, typer.Option(min=1)] = None,
    iterations: Annotated[int | None, typer.Option(min=1)] = None,
    regularization: Annotated[float | None, typer.Option(min=0.0)] = None,
    alpha: Annotated[float | None, typer.Option(min=0.0, help="confidence scaling")] = None,
    weighting: Annotated[str | None, typer.Option(help="none, bm25 or tfidf")] = None,
    half_life_days: Annotated[float | None, typer.Option(help="recency decay half-life")] = None,
    threads: Annotated[int, typer.Option(help="implicit's threads (0 = all cores)")] = 0,
    candidates: Annotated[
        int,
        typer.Option(
            min=0,
            help="items precomputed per customer for serving (0: none; each request "
            "searches the model's norm-sorted index)",
        ),
    ] = 0,  # training.train.DEFAULT_CANDIDATES, not imported here to keep the CLI lazy
    as_of: Annotated[
        str | None,
        typer.Option(
            help="ISO date/time: train on purchases before it, decay measured from it "
            "(default: from the newest purchase)"
        ),
    ] = None,
    auto_models: Annotated[
        str | None, typer.Option(help="comma-separated candidates of --model auto")
    ] = None,
    validation_days: Annotated[
        int, typer.Option(min=1, help="--model auto: the last N days validate the choice")
    ] = 30,
    engine_name: Annotated[
        str, typer.Option("--engine", help="local (implicit, this machine) or spark (MLlib ALS)")
    ] = "local",
    spark_master: Annotated[
        str, typer.Option(help="with --engine spark: local[N], spark://host:7077, yarn...")
    ] = "local[*]",
    spark_conf: Annotated[
        list[str] | None,
        typer.Option("--spark-conf", help="with --engine spark: key=value (repeatable)"),
    ] = None,
    purchases_path: Annotated[
        Path | None,
        typer.Option(
            "--purchases",
            help="with --engine spark: read this Parquet export (`recsys export purchases`) "
            "instead of the store",
        ),
    ] = None,
) -> None:
    """Train from the store, save a versioned artifact and make it current."""
    if engine_name not in ("local", "spark"):
        raise _fail(f"unknown engine {engine_name!r}; choose local or spark")
    from recsys.store.catalog import catalog_frame
    from recsys.store.purchases import PurchaseRead

    settings = _settings()
    rules = _rules(settings)
    engine = _engine(settings)
    cutoff = parse_instant(as_of) if as_of is not None else None
    overrides = {
        key: value
        for key, value in {
            "factors": factors,
            "iterations": iterations,
            "regularization": regularization,
            "alpha": alpha,
            "weighting": weighting,
            "half_life_days": half_life_days,
        }.items()
        if value is not None
    }
    if engine_name == "spark":
        _train_spark(settings, rules, engine, model, overrides, spark_master, spark_conf,
                     purchases_path, candidates, cutoff)
        return
    import time

    started = time.perf_counter()
    # A SQLite store's purchases are read by a child process from here on, while the
    # training code (about a second of imports) loads.
    reading = PurchaseRead(engine)
    from training.errors import TrainingPipelineError
    from training.rules_learning import learn_rule_extras
    from training.selection import AUTO_MODELS, select_model
    from training.train import reference_time, resolve_params, train_model

    with _progress(transient=True) as progress:
        task = progress.add_task("reading purchases", total=None)
        with engine.connect() as conn:
            purchases = reading.frame(conn)
            catalog = catalog_frame(conn)
        stages = {"read": time.perf_counter() - started}
        if cutoff is not None:
            purchases = purchases.filter(purchases["purchased_at"] < cutoff)
        if purchases.is_empty():
            raise _fail(
                "the store has no purchases"
                + (f" before {cutoff:%Y-%m-%d %H:%M}" if cutoff else "")
                + "; run `recsys ingest transactions` first; the current model was not changed"
            )

        def report(stage: str, done: int, total: int) -> None:
            progress.update(task, description=stage, completed=done, total=total)

        try:
            default_half_life = resolve_params(
                "hybrid" if model == "auto" else model, overrides
            ).matrix.half_life_days
            now = reference_time(purchases, cutoff, half_life_days=default_half_life)
            selection = None
            chosen, params = model, dict(overrides)
            if model == "auto":
                names = (
                    [m.strip() for m in auto_models.split(",") if m.strip()]
                    if auto_models is not None
                    else list(AUTO_MODELS)
                )
                per_model = {name: _accepted(name, overrides) for name in names}
                started = time.perf_counter()
                selection = select_model(
                    purchases,
                    catalog,
                    rules,
                    candidates=names,
                    validation_days=validation_days,
                    end=now,
                    params=per_model,
                    num_threads=threads,
                    progress=report,
                )
                chosen, params = selection.chosen, dict(selection.params)
                stages["model selection"] = time.perf_counter() - started
            progress.update(task, description="learning category behaviour and complements")
            started = time.perf_counter()
            extras = learn_rule_extras(purchases, catalog, rules)
            stages["rule learning"] = time.perf_counter() - started
            result = train_model(
                purchases,
                catalog,
                model=chosen,
                params=params,
                now=now,
                models_dir=settings.models_dir,
                progress=report,
                num_threads=threads,
                extras=extras,
                metrics={"selection": selection.to_json()} if selection is not None else None,
                keep=settings.model_retention,
                candidates=candidates,
            )
        except TrainingPipelineError as exc:
            raise _fail(f"{exc}; the current model was not changed") from exc
    _warn_if_stale(now, settings.stale_data_days, cutoff is not None)
    # The stages in the order they ran: reading the store, learning the rules' data, then
    # train_model's own (matrix, fit, precompute, save, verify).
    timings = ", ".join(f"{k} {v:.2f}s" for k, v in {**stages, **result.timings}.items())
    if selection is not None:
        out.print(f"auto chose {selection.chosen}: {selection.reason}")
        if selection.skipped:
            out.print(
                "  not tried: "
                + "; ".join(f"{m} ({why})" for m, why in selection.skipped.items())
            )
    out.print(
        f"trained {result.model} -> {result.version} (current)\n"
        f"  {result.counts['users']:,} customers x {result.counts['items']:,} items, "
        f"{result.counts['nnz']:,} pairs from {result.counts['purchases']:,} lines, "
        f"as of {now:%Y-%m-%d %H:%M}\n"
        f"  {timings}"
    )
    if result.pruned:
        out.print(f"  pruned: {', '.join(result.pruned)}")


def _train_spark(
    settings: Any,
    rules: Any,
    engine: Any,
    model: str,
    overrides: dict[str, Any],
    master: str,
    conf: list[str] | None,
    purchases: Path | None,
    candidates: int,
    as_of: Any,
) -> None:
    from training.errors import TrainingPipelineError
    from training.spark.session import require_pyspark

    try:
        require_pyspark()  # before anything else: the message says how to install it
        from training.spark.job import parse_conf, train_on_spark

        with _progress(transient=True) as progress:
            task = progress.add_task("starting Spark", total=None)

            def report(stage: str, done: int, total: int) -> None:
                progress.update(task, description=stage, completed=done, total=total)

            result = train_on_spark(
                settings,
                engine,
                rules,
                # auto on Spark: ALS, the one model MLlib fits
                model="als" if model == "auto" else model,
                params=overrides,
                as_of=as_of,
                master=master,
                conf=parse_conf(conf),
                purchases=purchases,
                candidates=candidates,
                progress=report,
            )
    except TrainingPipelineError as exc:
        raise _fail(f"{exc}; the current model was not changed") from exc
    timings = ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items())
    out.print(
        f"trained {result.model} on Spark -> {result.version} (current)\n"
        f"  {result.counts['users']:,} customers x {result.counts['items']:,} items, "
        f"{result.counts['nnz']:,} pairs from {result.counts['purchases']:,} lines\n"
        f"  {timings}"
    )


def _accepted(model: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The overrides `model` accepts (`--factors` means nothing to popularity)."""
    from training.errors import TrainingError
    from training.train import resolve_params

    kept = {}
    for key, value in overrides.items():
        try:
            resolve_params(model, {key: value})
        except TrainingError:
            continue
        kept[key] = value
    return kept


def _warn_if_stale(newest: Any, stale_days: int, explicit: bool) -> None:
    """Serving uses the wall clock: on an old export every learned cycle has run out."""
    age = (_now() - newest).days
    if explicit or stale_days <= 0 or age <= stale_days:
        return
    console.print(
        f"[yellow]warning:[/] the newest order is {age:,} days old ({newest:%Y-%m-%d}); "
        "decay and learned cycles are measured from it, but the API applies the rules at "
        "the wall clock: set RECSYS_AS_OF or pass as_of= to replay this export"
    )


@app.command()
def evaluate(
    holdout_days: Annotated[int, typer.Option(min=1, help="days at the end held out")] = 30,
    validation_days: Annotated[
        int | None,
        typer.Option(min=1, help="days before the test window that choose the served model"),
    ] = None,
    k: Annotated[int, typer.Option(min=1)] = 10,
    models: Annotated[
        str, typer.Option(help="comma-separated models to compare")
    ] = "popular,repurchase,tifu-knn,item-knn,bpr,als,hybrid",
    out_dir: Annotated[Path | None, typer.Option("--out", help="report directory")] = None,
    threads: Annotated[int, typer.Option(help="implicit's threads (0 = all cores)")] = 0,
    served: Annotated[
        str,
        typer.Option(help="the served model: auto (chosen on the validation window) or a name"),
    ] = "auto",
    as_of: Annotated[
        str | None,
        typer.Option(help="ISO date/time: the end of the test window (default: newest purchase)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print report.json instead")] = False,
    artifacts: Annotated[
        list[str] | None,
        typer.Option(
            "--artifact",
            help="also score this saved version as it is (e.g. trained on Spark with "
            "--as-of the test window's start); repeatable",
        ),
    ] = None,
) -> None:
    """Time-based holdout: served lists (rules on) and raw models against the baselines.

    Writes report.json and report.html; see docs/evaluation.md for the protocol.
    """
    import json

    from recsys.store.catalog import catalog_frame
    from recsys.store.purchases import purchase_frame
    from training.errors import TrainingPipelineError
    from training.evaluate import evaluate as run_evaluation
    from training.evaluate import saved_model

    settings = _settings()
    rules = _rules(settings)
    engine = _engine(settings)
    end = parse_instant(as_of) if as_of is not None else None
    target = out_dir or settings.home / "reports" / _now().strftime("%Y-%m-%dT%H-%M-%S")
    names = [m.strip() for m in models.split(",") if m.strip()]
    with _progress(transient=True) as progress:
        task = progress.add_task("reading purchases", total=None)
        with engine.connect() as conn:
            purchases = purchase_frame(conn)
            catalog = catalog_frame(conn)
        if end is not None:
            purchases = purchases.filter(purchases["purchased_at"] <= end)
        if purchases.is_empty():
            raise _fail("the store has no purchases; run `recsys ingest transactions` first")

        def report(stage: str, done: int, total: int) -> None:
            progress.update(task, description=stage, completed=done, total=total)

        try:
            saved = [saved_model(settings.models_dir, version) for version in artifacts or ()]
            result = run_evaluation(
                purchases,
                catalog,
                holdout_days=holdout_days,
                validation_days=validation_days,
                k=k,
                models=names,
                now=end,
                out_dir=target,
                progress=report,
                num_threads=threads,
                served=None if served == "none" else served,
                rules=rules,
                artifacts=saved,
            )
        except (TrainingPipelineError, ValueError) as exc:
            raise _fail(str(exc)) from exc
    if as_json:
        out.print_json(json.dumps(result.to_json()))
        return
    _print_evaluation(result, k, holdout_days)
    out.print(f"report: {target / 'report.json'} and {target / 'report.html'}")


def _print_evaluation(result: Any, k: int, holdout_days: int) -> None:
    from training.evaluate import SERVED_PREFIX

    metrics = ("precision", "recall", "ndcg", "map", "hit_rate", "coverage")
    columns = ["list", "target", "customers", *(f"{m}@{k}" for m in metrics)]

    def row(r: Any) -> list[Any]:
        return [r.model, r.target, r.users] + [
            f"{r.metrics.get(f'{m}@{k}', float('nan')):.4f}" for m in metrics
        ]

    if result.selection is not None:
        out.print(f"served model: {result.selection.chosen} ({result.selection.reason})")
    served = [r for r in result.results if r.model.startswith(SERVED_PREFIX)]
    ruled = [r for r in result.results if r.model.endswith("+rules")]
    raw = [r for r in result.results if r not in served and r not in ruled]
    window = f"test {result.cut:%Y-%m-%d} .. {result.end:%Y-%m-%d} ({holdout_days} days)"
    if served:
        out.print(_table(f"served lists, rules on, {window}", columns, [row(r) for r in served]))
    if ruled:
        out.print(
            _table("every model served (newsletter, rules on)", columns, [row(r) for r in ruled])
        )
    out.print(_table(f"raw models and baselines, {window}", columns, [row(r) for r in raw]))
    if result.care:
        kinds = ("durable_in_cooldown", "out_of_stock", "reoffered", "total")
        care_rows = [
            [model, counts.lists] + [f"{counts.per_1000()[f'{c}_per_1000']:.1f}" for c in kinds]
            for model, counts in result.care.items()
        ]
        out.print(
            _table(
                f"care violations per 1,000 top-{k} lists (stock as it is now)",
                ["list", "lists", *kinds],
                care_rows,
            )
        )
    if result.complements is not None and not result.complements.scores:
        out.print("complement precision: no item of a test order has complements to show")
    elif result.complements is not None:
        cp = result.complements
        out.print(
            _table(
                f"complement precision@{cp.k}: shown with an item of one of {cp.orders:,} test "
                "orders, bought in that order or the next",
                ["anchors", "count", "shown", "precision", "hit_rate"],
                [
                    [scope, scores.anchors, name, f"{s.precision:.4f}", f"{s.hit_rate:.4f}"]
                    for scope, scores in cp.scores.items()
                    for name, s in scores.methods.items()
                ],
            )
        )
    if result.rules is not None:
        share = result.rules.recall_new_share
        out.print(
            f"{result.rules.row}: recall@{k} on new items {result.rules.recall_new_rules:.4f} "
            f"vs {result.rules.recall_new_raw:.4f} raw"
            + (f" ({share:.1%} of raw)" if share is not None else "")
        )


export_app = typer.Typer(help="Write store data as files for other tools.",
                         no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("purchases")
def export_purchases_command(
    path: Annotated[Path, typer.Argument(help="the Parquet file to write (replaced)")],
) -> None:
    """Every purchase line (joined with its order) as Parquet, from either store."""
    from recsys.export import ExportError, export_purchases

    settings = _settings()
    engine = _engine(settings)
    try:
        with engine.connect() as conn:
            summary = export_purchases(conn, path)
    except ExportError as exc:
        raise _fail(str(exc)) from exc
    out.print(f"exported {summary.rows:,} purchase lines to {summary.path} "
              f"({summary.bytes / 1e6:.1f} MB)")


models_app = typer.Typer(
    help="List model versions or switch the current one.", no_args_is_help=True
)
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list() -> None:
    """Every saved model version; the current one is marked, unreadable ones listed as broken."""
    from training.artifacts import broken_versions, list_versions

    settings = _settings()
    versions = list_versions(settings.models_dir)
    broken = broken_versions(settings.models_dir)
    if not versions and not broken:
        out.print(f"no models in {settings.models_dir}; run `recsys train`")
        return
    rows = [
        ["*" if v.is_current else "", v.version, v.model, v.created_at.isoformat(), "ok",
         v.chosen_by or "named"]
        for v in versions
    ] + [
        ["*" if b.is_current else "", b.version, "?", "?", f"broken: {b.problem}", ""]
        for b in broken
    ]
    out.print(
        _table("models", ["current", "version", "model", "created", "status", "chosen"], rows)
    )


@models_app.command("use")
def models_use(version: str) -> None:
    """Make VERSION current (rollback); running services switch within a second."""
    from training.artifacts import use_version
    from training.errors import TrainingPipelineError

    settings = _settings()
    try:
        loaded = use_version(settings.models_dir, version)
    except TrainingPipelineError as exc:
        raise _fail(f"{exc}; the current model was not changed") from exc
    out.print(f"current model: {loaded.version}")


@app.command()
def tier(
    customer_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Print a customer's loyalty status (tier, spend, next tier, anniversary)."""
    import json

    from recsys.customer_view import loyalty_for

    settings = _settings()
    rules = _rules(settings)
    engine = _engine(settings)
    with engine.connect() as conn:
        status = loyalty_for(conn, customer_id, rules, _now())
    if status is None:
        raise _fail(f"customer {customer_id!r} is not known", code=1)
    data = {"customer_id": customer_id, **status.to_dict()}
    if as_json:
        out.print_json(json.dumps(data))
        return
    rows = [[key, value] for key, value in data.items()]
    out.print(_table(f"loyalty of {customer_id}", ["field", "value"], rows))


rules_app = typer.Typer(help="Validate rules.toml and inspect learned rules.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")


@rules_app.command("check")
def rules_check(path: Annotated[Path | None, typer.Argument()] = None) -> None:
    """Validate a rules file (default: RECSYS_RULES_PATH or the shipped one); print it."""
    import json

    from recsys.experiments import check_model_versions
    from recsys.rules.config import RulesConfigError, load_rules
    from training.artifacts import list_versions

    settings = _settings()
    try:
        config = load_rules(path or settings.rules_path)
        if any(v.model_version for e in config.experiments for v in e.variants):
            # A variant serving a model version that is not saved would fail at start.
            saved = [v.version for v in list_versions(settings.models_dir)]
            check_model_versions(config, saved)
    except RulesConfigError as exc:
        raise _fail(str(exc)) from exc
    out.print_json(json.dumps(config.model_dump(mode="json")))
    console.print(f"{path or settings.rules_path or 'shipped rules.toml'}: valid")


@rules_app.command("learned")
def rules_learned(
    version: Annotated[str | None, typer.Option(help="model version (default: current)")] = None,
) -> None:
    """The category behaviour learned at training time (class, repeat rate, interval, support)."""
    from recsys.offers import CATEGORY_BEHAVIOUR_KEY
    from recsys.rules.categories import ITEM_SCOPE, behaviours_from_dict, resolve_behaviour
    from training.artifacts import current_version, read_meta

    settings = _settings()
    version = version or current_version(settings.models_dir)
    if version is None:
        raise _fail("no current model; run `recsys train`")
    meta = read_meta(settings.models_dir, version)
    table = behaviours_from_dict(meta.extras.get(CATEGORY_BEHAVIOUR_KEY) or {})  # type: ignore[arg-type]
    rules = _rules(settings)

    def served(key: str) -> str:
        if key.startswith(ITEM_SCOPE):
            return "learned"
        found = resolve_behaviour(key, table, rules.categories)
        if found is None or found.source != "override":
            return "learned"
        days = found.interval_days or found.cooldown_days
        return f"override ({found.category}): {found.kind}" + (f" {days} d" if days else "")

    rows = [
        [
            category,
            b.kind,
            b.support,
            b.returning if b.returning is not None else "-",
            f"{b.repeat_rate:.2f}" if b.repeat_rate is not None else "-",
            f"{b.same_item_rate:.2f}" if b.same_item_rate is not None else "-",
            f"{b.median_interval_days:.0f}" if b.median_interval_days is not None else "-",
            f"{b.interval_spread:.2f}" if b.interval_spread is not None else "-",
            served(category),
        ]
        for category, b in sorted(table.items())
    ]
    out.print(
        _table(
            f"learned repurchase behaviour ({version}; item:<id> rows are items)",
            [
                "category / item",
                "learned class",
                "buyers (support)",
                "came back",
                "repeat rate (confidence)",
                "same item again",
                "median interval (days)",
                "interval spread",
                "served",
            ],
            rows,
        )
    )


def _register_campaign() -> None:
    # The campaign sub-app lives beside its job (recsys/campaign/cli.py); it is thin like these.
    from recsys.campaign.cli import campaign_app

    app.add_typer(campaign_app, name="campaign")


def _register_report() -> None:
    # `recsys report impact` lives beside the closed loop (recsys/feedback/cli.py).
    from recsys.feedback.cli import report_app

    app.add_typer(report_app, name="report")


_register_campaign()
_register_report()
