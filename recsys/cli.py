"""`recsys` command line. Commands stay thin: parse, build settings, call the library, print."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from recsys.settings import Settings

app = typer.Typer(help="Loyalty and personalized-offer recommender.", no_args_is_help=True)
console = Console(stderr=True)
out = Console()


def _settings() -> Settings:
    from recsys.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_format)
    return settings


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def _engine(settings: Settings) -> Any:
    from recsys.store.engine import StoreError, create_store_engine, migrate

    engine = create_store_engine(settings.database_url)
    try:
        migrate(engine)
    except Exception as exc:
        raise _fail(str(StoreError(f"cannot open the store {engine.url!r}: {exc}"))) from exc
    return engine


def _progress(transient: bool = False) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f} rows"),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
        disable=not console.is_terminal,
    )


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
        column_map = parse_map(map_ or [], kind)  # type: ignore[arg-type]
        engine = _engine(settings)
        with _progress() as progress:
            task = progress.add_task(f"ingest {kind}", total=None)
            summary = ingest_file(
                engine,
                kind,  # type: ignore[arg-type]
                path,
                column_map,
                rejects_dir=settings.rejects_dir,
                chunk_rows=chunk_rows or settings.ingest_chunk_rows,
                progress=lambda n: progress.advance(task, n),
            )
    except IngestError as exc:
        raise _fail(f"{exc}; nothing was loaded") from exc
    out.print(
        f"{kind}: read {summary.read:,}  accepted {summary.accepted:,}  "
        f"new {summary.inserted:,}  updated {summary.updated:,}  "
        f"merged {summary.merged:,}  rejected {summary.rejected:,}"
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
) -> None:
    """Write the deterministic demo retailer (catalog, customers, transactions)."""
    from recsys.data.demo import generate_demo

    _settings()
    due = _parse_date(due_date) if due_date else None
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
        )
    out.print(
        f"demo retailer in {summary.out_dir}: {summary.customers:,} customers, "
        f"{summary.items:,} items, {summary.orders:,} orders, {summary.lines:,} lines"
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
) -> None:
    """Start the HTTP API."""
    import uvicorn

    _settings()
    uvicorn.run(
        "api.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise _fail(f"{value!r} is not a date (YYYY-MM-DD)") from exc


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    return table
