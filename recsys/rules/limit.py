"""Limit: at most N candidates, in order."""

from __future__ import annotations

from collections.abc import Sequence

from recsys.rules.candidates import Candidate, Rule, RuleContext


def limit_to(n: int) -> Rule:
    """A rule that keeps the first `n` candidates (`run_pipeline` already applies its limit)."""
    if n < 0:
        raise ValueError(f"limit must be >= 0, got {n}")

    def limit(candidates: Sequence[Candidate], ctx: RuleContext) -> list[Candidate]:
        return list(candidates[:n])

    return limit
