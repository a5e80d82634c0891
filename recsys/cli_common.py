"""What every `recsys` command shares: consoles, settings, errors, the store and the rules.

Used by `recsys/cli.py` and the campaign sub-app, so both fail the same way.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from recsys.rules._time import replay_range, replayable
from recsys.settings import Settings

console = Console(stderr=True)
# Tables stay readable when stdout is a file or a pipe (no terminal width to follow).
# Wide enough that report tables print whole instead of cutting columns at 80.
out = Console(width=max(shutil.get_terminal_size((200, 24)).columns, 200))


def load_settings() -> Settings:
    """Settings from the environment, with logging configured from them."""
    from recsys.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    return settings


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print an error and return the exit to raise."""
    # escape: messages quote key paths such as `loyalty.tiers[2]`, which rich reads as markup
    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True, highlight=False)
    return typer.Exit(code)


def parse_date(value: str, code: int = 2) -> date:
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise fail(f"{value!r} is not a date (YYYY-MM-DD)", code) from exc
    _in_range(day, value, code)
    return day


def _in_range(moment: date, value: str, code: int) -> None:
    if not replayable(moment):
        raise fail(f"{value!r} is outside the years {replay_range()}", code)


def parse_instant(value: str, code: int = 2) -> datetime:
    """An ISO 8601 date or timestamp as naive UTC (a date means its midnight, UTC)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise fail(f"{value!r} is not an ISO 8601 date or timestamp", code) from exc
    _in_range(moment, value, code)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def open_store(settings: Settings, code: int = 2) -> Any:
    """The migrated store engine, or a clear error naming the store (password hidden)."""
    from recsys.store.engine import create_store_engine, migrate

    engine = create_store_engine(settings.database_url)
    try:
        migrate(engine)
    except Exception as exc:  # the driver's errors vary; the message is what matters
        url = engine.url.render_as_string(hide_password=True)
        raise fail(f"cannot open the store {url}: {exc}", code) from exc
    return engine


def load_rules_or_fail(settings: Settings, code: int = 2) -> Any:
    from recsys.rules.config import RulesConfigError, load_rules

    try:
        return load_rules(settings.rules_path)
    except RulesConfigError as exc:
        raise fail(str(exc), code) from exc
