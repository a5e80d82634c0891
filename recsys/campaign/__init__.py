"""The daily anniversary and birthday campaign job (SPEC "Campaign output").

The names below are imported on first use: `recsys.campaign.cli` lives in this
package, and every `recsys` command (and `recsys serve`'s supervisor process)
would otherwise import the job, the rules and numpy just to build the CLI.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recsys.campaign.job import (
        OCCASIONS,
        SKIP_REASONS,
        CampaignError,
        CampaignSummary,
        default_now,
        run_campaign,
    )
    from recsys.store.campaigns import Occasion

__all__ = [
    "OCCASIONS",
    "SKIP_REASONS",
    "CampaignError",
    "CampaignSummary",
    "Occasion",
    "default_now",
    "run_campaign",
]


def __getattr__(name: str) -> Any:
    if name == "Occasion":
        return import_module("recsys.store.campaigns").Occasion
    if name in __all__:
        return getattr(import_module("recsys.campaign.job"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
