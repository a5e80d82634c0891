"""Find the newest evaluation and impact reports under `RECSYS_HOME/reports`.

`recsys evaluate` writes `reports/<timestamp>/report.json` (+ report.html);
`recsys report impact` writes `impact.json` (+ impact.html) into its `--out`
directory, by default also under `reports/`. The console shows the newest of each
by modification time; a file that cannot be read as JSON is reported, not raised.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MAX_SCAN = 5000


@dataclass(frozen=True, slots=True)
class FoundReport:
    path: Path
    modified: datetime
    data: dict[str, Any] | None
    error: str | None

    @property
    def html(self) -> Path | None:
        page = self.path.with_suffix(".html")
        return page if page.is_file() else None


def newest(root: Path, name: str) -> FoundReport | None:
    """The newest file called `name` under `root` (any depth), read as a JSON object."""
    if not root.is_dir():
        return None
    best: tuple[float, Path] | None = None
    for number, path in enumerate(root.rglob(name)):
        if number >= MAX_SCAN:
            break
        try:
            mtime = path.stat().st_mtime
        except OSError:
            continue
        if best is None or mtime > best[0]:
            best = (mtime, path)
    if best is None:
        return None
    mtime, path = best
    modified = datetime.fromtimestamp(mtime, UTC).replace(tzinfo=None)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return FoundReport(path, modified, None, f"cannot read {path.name}: {exc}")
    if not isinstance(data, dict):
        return FoundReport(path, modified, None, f"{path.name} is not a JSON object")
    return FoundReport(path, modified, data, None)


def scalars(data: dict[str, Any]) -> list[tuple[str, Any]]:
    """Top-level entries that are plain values (for a report of unknown shape)."""
    return [(k, v) for k, v in data.items() if isinstance(v, str | int | float | bool) or v is None]


def tables(data: dict[str, Any]) -> list[tuple[str, list[str], list[list[Any]]]]:
    """Entries that are lists of objects or objects of objects, as (title, columns, rows)."""
    out: list[tuple[str, list[str], list[list[Any]]]] = []
    for key, value in data.items():
        rows: list[dict[str, Any]] = []
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            rows = value
        elif isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            rows = [{"": name, **entry} for name, entry in value.items()]
        elif isinstance(value, dict) and value:
            rows = [{"": name, "value": entry} for name, entry in value.items()]
        if not rows:
            continue
        columns = list(dict.fromkeys(c for row in rows for c in row))
        out.append((key, columns, [[_cell(row.get(c)) for c in columns] for row in rows[:200]]))
    return out


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict | list):
        return json.dumps(value)[:200]
    return value
