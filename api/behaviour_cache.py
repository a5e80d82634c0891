"""Resolved category behaviours per item, shared by a worker's requests.

Which behaviour applies to an item (`RuleContext.behaviour_of`) depends only on the
model's learned table, the rules' category settings and the item's category in the
catalog snapshot; resolving it again for every candidate of every request cost a tenth
of a request. The resolved values are kept for as long as the served model, rules and
catalog snapshot are the very same objects (a reload, a rules change or a catalog
refresh with changes starts afresh), which is the campaign job's `behaviour_cache`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from recsys.offers import ServingModel
from recsys.records import Item
from recsys.rules.categories import CategoryBehaviour
from recsys.rules.config import RulesConfig

Resolved = dict[str, CategoryBehaviour | None]


class BehaviourCache:
    #: distinct (model, rules, catalog) kept at once: the served one and experiment arms
    KEEP = 4

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._caches: list[tuple[ServingModel, RulesConfig, Mapping[str, Item], Resolved]] = []

    def for_serving(
        self, model: ServingModel, rules: RulesConfig, catalog: Mapping[str, Item]
    ) -> Resolved:
        for cached_model, cached_rules, cached_catalog, resolved in self._caches:
            if cached_model is model and cached_rules is rules and cached_catalog is catalog:
                return resolved
        with self._lock:
            resolved = {}
            self._caches = [(model, rules, catalog, resolved), *self._caches[: self.KEEP - 1]]
            return resolved
