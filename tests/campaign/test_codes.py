"""Voucher codes: the documented shape, no repeats, every symbol at every position."""

from __future__ import annotations

import re

from recsys.campaign.codes import ALPHABET, GROUP_LENGTH, GROUPS, voucher_code


def test_codes_have_the_documented_shape_and_do_not_repeat() -> None:
    shape = re.compile(rf"^ANNIV(-[{ALPHABET}]{{{GROUP_LENGTH}}}){{{GROUPS}}}$")
    codes = [voucher_code("anniversary") for _ in range(5000)]
    assert all(shape.match(code) for code in codes)
    assert len(set(codes)) == len(codes)
    assert voucher_code("birthday").startswith("BDAY-")
    assert voucher_code("anniversary", dry_run=True).startswith("DRYRUN-")


def test_every_symbol_turns_up_at_every_position() -> None:
    """A draw that left some digits out (too small a range) would show here."""
    bodies = [voucher_code("anniversary").split("-", 1)[1].replace("-", "") for _ in range(3000)]
    for position in range(GROUPS * GROUP_LENGTH):
        assert {body[position] for body in bodies} == set(ALPHABET)
