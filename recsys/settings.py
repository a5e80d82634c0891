"""Runtime configuration, read once by each entry point and passed down."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from recsys.order_bounds import OrderBounds


def normalise_database_url(url: str) -> str:
    """Map the URLs people paste (`postgresql://`, `postgres://`) onto the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Settings(BaseSettings):
    """Every knob of the service. Environment variables use the `RECSYS_` prefix.

    `home` is the working directory for the embedded store, model artifacts and
    ingest rejects; everything else defaults to a path inside it.
    """

    model_config = SettingsConfigDict(
        env_prefix="RECSYS_", env_nested_delimiter="__", extra="ignore"
    )

    home: Path = Path("var")
    database_url: str = ""
    artifacts_dir: Path | None = None
    rules_path: Path | None = None
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    model_retention: int = Field(default=5, ge=1, description="model versions kept on disk")
    ingest_chunk_rows: int = Field(default=100_000, ge=1)
    log_format: str = Field(default="console", pattern="^(console|json)$")
    log_level: str = Field(default="info", pattern="^(debug|info|warning|error)$")
    max_request_bytes: int = Field(default=64 * 1024, ge=1024)
    voucher_valid_days: int = Field(default=30, ge=1)
    max_line_quantity: float = Field(
        default=100_000.0, gt=0, allow_inf_nan=False, description="largest |quantity| of a line"
    )
    max_unit_price: float = Field(
        default=1_000_000.0, gt=0, allow_inf_nan=False, description="largest unit price"
    )
    catalog_refresh_seconds: float = Field(
        default=30.0, ge=0.0, description="how often the service re-reads stock and prices"
    )
    stale_data_days: int = Field(
        default=30, ge=0, description="training warns when the newest order is older (0: never)"
    )
    as_of: datetime | None = Field(
        default=None, description="serve as of this instant (replays); default: the wall clock"
    )
    exposure_log: bool = Field(default=True, description="record every served list")
    exposure_retention_days: int = Field(default=365, ge=1, description="exposures kept")
    exposure_flush_seconds: float = Field(
        default=0.5, gt=0.0, description="how often the service writes queued exposures"
    )
    rules_check_seconds: float = Field(
        default=2.0, ge=0.0, description="how often the service looks for a changed rules file"
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.home / 'recsys.db').as_posix()}"
        self.database_url = normalise_database_url(self.database_url)
        if self.artifacts_dir is None:
            self.artifacts_dir = self.home / "models"
        return self

    @property
    def models_dir(self) -> Path:
        assert self.artifacts_dir is not None
        return self.artifacts_dir

    @property
    def order_bounds(self) -> OrderBounds:
        return OrderBounds(self.max_line_quantity, self.max_unit_price)

    @property
    def rejects_dir(self) -> Path:
        return self.home / "rejects"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"
