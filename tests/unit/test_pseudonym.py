"""Personal data used as ids becomes a keyed hash: joinable, not readable, not guessable without the key."""

from __future__ import annotations

import pytest

from supportlens.domain.pseudonym import PREFIX, Pseudonymiser, is_personal, pseudonymous_id
from supportlens.domain.text import mask_pii

KEY = b"k" * 32


@pytest.mark.parametrize("value", ["ann.lee@example.com", "crm:ann.lee@example.com", "+44 20 7946 0958", "(555) 123-4567",
                                   "0612345678", "+1.415.555.0100"])
def test_emails_and_phone_numbers_are_personal(value):
    assert is_personal(value)
    hashed = pseudonymous_id(value, KEY)
    assert hashed.startswith(PREFIX) and len(hashed) == len(PREFIX) + 24
    assert not any(part in hashed for part in ("@", "example", "4567", "0958"))


@pytest.mark.parametrize("value", ["115712", "sprintcare", "C-501", "A-17", "twcs:8", "airline:570306133677760513",
                                   "HD-2001", "ESC-1001", "2987947", "e2e-after-cluster-1796166316", "INC-0612345678", ""])
def test_ordinary_ids_stay_readable(value):
    assert not is_personal(value) and pseudonymous_id(value, KEY) == value


def test_a_long_number_is_a_phone_only_as_a_persons_id():
    assert pseudonymous_id("0612345678", KEY, person=True).startswith(PREFIX)
    assert pseudonymous_id("0612345678", KEY, person=False) == "0612345678"  # a ticket number stays the upstream's handle
    assert pseudonymous_id("ann@example.com", KEY, person=False).startswith(PREFIX)
    p = Pseudonymiser(KEY)
    out = p.fields({"ticket_id": "1796166316", "author_id": "1796166316"})
    assert out["ticket_id"] == "1796166316" and out["author_id"].startswith(PREFIX)


def test_joinable_case_insensitive_and_keyed():
    a = pseudonymous_id("Ann.Lee@Example.com ", KEY)
    assert a == pseudonymous_id("ann.lee@example.com", KEY)  # the same person everywhere
    assert a != pseudonymous_id("ann.lee@example.com", b"x" * 32)  # without the key it cannot be recomputed
    assert pseudonymous_id(a, KEY) == a  # idempotent: a redelivered, already hashed id stays the same


def test_fields_hashes_only_id_fields():
    p = Pseudonymiser(KEY)
    out = p.fields({"author_id": "ann@example.com", "agent_id": "A-17", "text": "mail me at ann@example.com",
                    "responder": "+1 415 555 0100", "company": "acme"})
    assert out["author_id"].startswith(PREFIX) and out["responder"].startswith(PREFIX)
    assert out["agent_id"] == "A-17" and out["company"] == "acme" and out["text"] == "mail me at ann@example.com"
    with pytest.raises(ValueError):
        Pseudonymiser(b"short")


@pytest.mark.parametrize("card", ["4111.1111.1111.1111", "4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111"])
def test_card_numbers_are_masked_whatever_the_separator(card):
    masked, kinds = mask_pii(f"my card {card} was charged twice")
    assert masked == "my card [CARD] was charged twice" and "card" in kinds
