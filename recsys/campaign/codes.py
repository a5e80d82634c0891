"""Voucher codes: random, unguessable, and easy to read aloud or type from an email."""

from __future__ import annotations

import secrets

# No 0/O, 1/I/L, 5/S, 8/B, 2/Z: the characters people confuse when typing a code.
ALPHABET = "34679ACDEFGHJKMNPQRTUVWXY"
GROUPS = 3
GROUP_LENGTH = 4
PREFIXES = {"anniversary": "ANNIV", "birthday": "BDAY"}
DRY_RUN_PREFIX = "DRYRUN"
_CODES = len(ALPHABET) ** (GROUPS * GROUP_LENGTH)


def voucher_code(occasion: str, *, dry_run: bool = False) -> str:
    """A fresh code such as `ANNIV-7Q3K-9XJD-MFPA` (dry runs: `DRYRUN-...`).

    12 symbols of a 25-letter alphabet are about 56 bits from `secrets`: not
    guessable, and a collision between two codes is so unlikely that the store's
    primary key turning one down (the batch is then retried) is a formality.
    """
    prefix = DRY_RUN_PREFIX if dry_run else PREFIXES.get(occasion, occasion.upper())
    # One uniform draw over all codes, written in base 25: the same distribution as a
    # `secrets.choice` per symbol, at one call to the OS random source instead of 12.
    value = secrets.randbelow(_CODES)
    symbols = []
    for _ in range(GROUPS * GROUP_LENGTH):
        value, digit = divmod(value, len(ALPHABET))
        symbols.append(ALPHABET[digit])
    groups = ("".join(symbols[i : i + GROUP_LENGTH]) for i in range(0, len(symbols), GROUP_LENGTH))
    return "-".join((prefix, *groups))
