"""`recsys report impact`: a Typer sub-app that `recsys.cli` registers (thin, like the others)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from recsys.cli_common import (
    console,
    fail,
    load_rules_or_fail,
    load_settings,
    open_store,
    out,
    parse_date,
)

report_app = typer.Typer(help="Reports on what the offers did.", no_args_is_help=True)


@report_app.command()
def impact(
    start: Annotated[str, typer.Option("--from", help="first day of exposures, YYYY-MM-DD")],
    end: Annotated[str, typer.Option("--to", help="last day of exposures, YYYY-MM-DD")],
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="directory (default: $RECSYS_HOME/reports/impact)"),
    ] = None,
) -> None:
    """impact.json and impact.html: per placement, campaign and variant, treated vs control."""
    from recsys.feedback.report import ReportError, impact_report, write_impact_report

    first, last = parse_date(start), parse_date(end)
    settings = load_settings()
    rules = load_rules_or_fail(settings)
    engine = open_store(settings)
    try:
        report = impact_report(
            engine, first, last, rules,
            voucher_days=settings.voucher_valid_days,
            now=datetime.now(UTC).replace(tzinfo=None, microsecond=0),
        )
    except ReportError as exc:
        raise fail(str(exc)) from exc
    finally:
        engine.dispose()
    files = write_impact_report(report, out_dir or settings.reports_dir / "impact")
    for group in report["groups"]:
        verdict = group["vs_control"]["verdict"] if group["vs_control"] else "no control group"
        console.print(
            f"{group['name']}: {group['exposures']:,} exposures, "
            f"{group['attributed']['orders']:,} attributed orders; {verdict}"
        )
    out.print(str(files.json_path))
    out.print(str(files.html_path))
