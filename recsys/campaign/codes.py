"""Voucher codes: random, unguessable, and easy to read aloud or type from an email."""

from __future__ import annotations

import secrets

# No 0/O, 1/I/L, 5/S, 8/B, 2/Z: the characters people confuse when typing a code.
ALPHABET = "34679ACDEFGHJKMNPQRTUVWXY"
GROUPS = 3
GROUP_LENGTH = 4
PREFIXES = {"anniversary": "ANNIV", "birthday": "BDAY"}
DRY_RUN_PREFIX = "DRYRUN"


def voucher_code(occasion: str, *, dry_run: bool = False) -> str:
    """A fresh code such as `ANNIV-7Q3K-9XJD-MFPA` (dry runs: `DRYRUN-...`).

    12 symbols of a 25-letter alphabet are about 56 bits from `secrets`: not
    guessable, and a collision between two codes is so unlikely that the store's
    primary key turning one down (the batch is then retried) is a formality.
    """
    prefix = DRY_RUN_PREFIX if dry_run else PREFIXES.get(occasion, occasion.upper())
    groups = (
        "".join(secrets.choice(ALPHABET) for _ in range(GROUP_LENGTH)) for _ in range(GROUPS)
    )
    return "-".join((prefix, *groups))
