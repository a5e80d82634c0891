"""`recsys report impact`: read the period from the store, compute, write the two files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from recsys.feedback.impact import compute_impact
from recsys.feedback.impact_html import render_impact_html
from recsys.feedback.impact_store import load_impact_data
from recsys.rules.config import RulesConfig


class ReportError(Exception):
    """The report cannot be made (bad period); nothing was written."""


@dataclass(frozen=True, slots=True)
class ImpactFiles:
    json_path: Path
    html_path: Path
    report: dict[str, Any]


def impact_report(
    engine: Engine,
    start: date,
    end: date,
    rules: RulesConfig,
    *,
    voucher_days: int = 30,
    now: datetime | None = None,
) -> dict[str, Any]:
    """impact.json's content for exposures shown from `start` to `end` (UTC days, inclusive)."""
    if end < start:
        raise ReportError(f"--to {end.isoformat()} is before --from {start.isoformat()}")
    with engine.connect() as conn:
        data = load_impact_data(conn, start, end, rules.attribution, voucher_days=voucher_days)
    attribution = rules.attribution
    return compute_impact(
        data.touches,
        data.orders,
        data.clicked,
        start=start,
        end=end,
        windows={
            "placement_days": attribution.placement_window_days,
            "campaign_days": attribution.campaign_window_days,
        },
        generated_at=now,
        first_variants={e.name: e.variants[0].name for e in rules.experiments},
    )


def write_impact_report(report: dict[str, Any], out_dir: Path) -> ImpactFiles:
    """Write `impact.json` and a self-contained `impact.html` into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "impact.json"
    html_path = out_dir / "impact.html"
    # Written under temporary names and renamed: a reader never sees half a file.
    for path, text in (
        (json_path, json.dumps(report, indent=2, ensure_ascii=False)),
        (html_path, render_impact_html(report)),
    ):
        partial = path.with_name(path.name + ".partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    return ImpactFiles(json_path, html_path, report)
