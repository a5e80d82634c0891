from __future__ import annotations

from datetime import datetime

import pytest

from recsys.rules import RulesConfig

from ._data import NOW, SHIPPED


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def rules() -> RulesConfig:
    return SHIPPED
