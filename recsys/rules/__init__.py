"""The rules layer: pure business rules between model candidates and the response.

Every function here takes plain data and an explicit `now` (UTC); none reads
the database, the clock or the settings. Public surface:

- config: `load_rules`, `RulesConfig`, `RulesConfigError`
- pipeline: `Candidate`, `RuleContext`, `Rule`, `run_pipeline`, `OfferList`, `DEFAULT_RULES`
- learning (training time): `learn_category_behaviour`, `learn_complements`
- loyalty and campaigns: `loyalty_status`, `LoyaltyStatus`, `voucher_percent`,
  `is_anniversary`, `is_birthday`, `years_of_membership`, `may_contact`
"""

from recsys.rules.already_bought import already_bought
from recsys.rules.basket import basket_exclusion
from recsys.rules.boost import complement_boost
from recsys.rules.candidates import Candidate, Rule, RuleContext, candidates_from_scored
from recsys.rules.categories import (
    CategoryBehaviour,
    behaviours_from_dict,
    behaviours_to_dict,
    learn_category_behaviour,
    resolve_behaviour,
)
from recsys.rules.complements import complementary_categories, complements_for, is_complement
from recsys.rules.config import (
    DEFAULT_RULES_PATH,
    PLACEMENTS,
    RulesConfig,
    RulesConfigError,
    load_rules,
    parse_rules,
)
from recsys.rules.contact import ContactDecision, is_marketing, may_contact
from recsys.rules.cooldown import durable_blocks, durable_cooldown
from recsys.rules.dedupe import dedupe
from recsys.rules.eligibility import eligibility
from recsys.rules.learned_complements import Complement, LearnedComplements, learn_complements
from recsys.rules.limit import limit_to
from recsys.rules.occasions import (
    age_on,
    anniversary_on,
    birthday_on,
    is_anniversary,
    is_birthday,
    next_anniversary,
    next_birthday,
    years_of_membership,
)
from recsys.rules.pipeline import DEFAULT_RULES, OfferList, run_pipeline
from recsys.rules.tiers import LoyaltyStatus, loyalty_status, voucher_percent

__all__ = [
    "DEFAULT_RULES",
    "DEFAULT_RULES_PATH",
    "PLACEMENTS",
    "Candidate",
    "CategoryBehaviour",
    "Complement",
    "ContactDecision",
    "LearnedComplements",
    "LoyaltyStatus",
    "OfferList",
    "Rule",
    "RuleContext",
    "RulesConfig",
    "RulesConfigError",
    "age_on",
    "already_bought",
    "anniversary_on",
    "basket_exclusion",
    "behaviours_from_dict",
    "behaviours_to_dict",
    "birthday_on",
    "candidates_from_scored",
    "complement_boost",
    "complementary_categories",
    "complements_for",
    "dedupe",
    "durable_blocks",
    "durable_cooldown",
    "eligibility",
    "is_anniversary",
    "is_birthday",
    "is_complement",
    "is_marketing",
    "learn_category_behaviour",
    "learn_complements",
    "limit_to",
    "load_rules",
    "loyalty_status",
    "may_contact",
    "next_anniversary",
    "next_birthday",
    "parse_rules",
    "resolve_behaviour",
    "run_pipeline",
    "voucher_percent",
    "years_of_membership",
]
