"""Holds the rules and their experiments, and follows the rules file (hot reload).

Every `check_seconds` a request stats the rules file; when its modification time
or size changed, the file is read, validated (model versions named by variants
must be saved) and swapped in. A file that fails is refused with a logged error
naming the problem, and the previous rules keep serving: ending an experiment is
deleting it from the file, with no restart.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import structlog

from recsys.experiments import ExperimentPlan, check_model_versions
from recsys.rules.config import DEFAULT_RULES_PATH, RulesConfig, RulesConfigError, load_rules
from training.artifacts import list_versions

log = structlog.get_logger(__name__)


def saved_versions(models_dir: Path) -> list[str]:
    try:
        return [v.version for v in list_versions(models_dir)]
    except OSError:
        return []


def load_checked_rules(path: Path | None, models_dir: Path) -> RulesConfig:
    """The rules file, with its experiments' model versions checked; raises RulesConfigError."""
    rules = load_rules(path)
    if any(v.model_version for e in rules.experiments for v in e.variants):
        try:
            check_model_versions(rules, saved_versions(models_dir))
        except RulesConfigError as exc:
            raise RulesConfigError(path or DEFAULT_RULES_PATH, list(exc.problems)) from None
    return rules


class RulesHolder:
    def __init__(
        self,
        rules: RulesConfig,
        *,
        path: Path | None = None,
        models_dir: Path | None = None,
        check_seconds: float = 2.0,
    ) -> None:
        """`path` None: fixed rules (tests, or rules handed in by the caller)."""
        self._path = path
        self._models_dir = models_dir
        self._check_seconds = check_seconds
        self._lock = threading.Lock()
        self._plan = ExperimentPlan.from_rules(rules)
        self._stamp = self._stat()
        self._checked_at = time.monotonic()

    def _stat(self) -> tuple[int, int] | None:
        if self._path is None:
            return None
        try:
            info = os.stat(self._path)
        except OSError:
            return None
        return info.st_mtime_ns, info.st_size

    @property
    def plan(self) -> ExperimentPlan:
        if self._path is not None and time.monotonic() - self._checked_at >= self._check_seconds:
            self.refresh()
        return self._plan

    @property
    def rules(self) -> RulesConfig:
        return self.plan.rules

    def refresh(self) -> None:
        if not self._lock.acquire(blocking=False):
            return  # another request is reloading; serve the current rules meanwhile
        try:
            self._checked_at = time.monotonic()
            stamp = self._stat()
            if stamp is None or stamp == self._stamp:
                return
            self._stamp = stamp
            try:
                assert self._models_dir is not None
                rules = load_checked_rules(self._path, self._models_dir)
                plan = ExperimentPlan.from_rules(rules)
            except RulesConfigError as exc:
                log.error("rules_refused", path=str(self._path), error=str(exc))
                return
            self._plan = plan
            log.info(
                "rules_reloaded",
                path=str(self._path),
                experiments=[e.name for e in rules.experiments],
            )
        finally:
            self._lock.release()
