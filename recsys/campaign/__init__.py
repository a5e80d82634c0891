"""The daily anniversary and birthday campaign job (SPEC "Campaign output")."""

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
