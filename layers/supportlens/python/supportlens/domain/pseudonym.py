"""Identifiers that are personal data (an e-mail address or a phone number used as a customer or
agent id, as helpdesk and call-centre exports do) are replaced by a keyed hash before anything is
stored, counted or logged: the same person keeps the same id everywhere (joinable), but the
address or number cannot be read back or guessed from it without the key (HMAC-SHA256; the key
lives in AWS Secrets Manager, see README "PII").

Ids that are not personal data (tweet author numbers, "C-501", "A-17") are kept as they are, so
reports stay readable.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from .text import EMAIL

PREFIX = "pid-"
PERSON_FIELDS = ("author_id", "agent_id", "responder")  # who wrote or answered: an e-mail address or a phone number
RECORD_FIELDS = ("ticket_id", "conversation_id", "in_reply_to")  # which message: an e-mail address (numbers are ids)
ID_FIELDS = PERSON_FIELDS + RECORD_FIELDS
# A whole id that is a phone number: digits with the usual separators, 9 to 15 digits ("+44 20 7946 0958").
PHONE_ID = re.compile(r"\+?[\d\s().-]{9,24}")
_DIGITS = re.compile(r"\d")


def is_personal(value: str, person: bool = True) -> bool:
    """An e-mail address anywhere in the id; for a person's id also an id that is a phone number.
    A number inside a longer id ("INC-1796166316", "twcs:8") is an id, not a phone: message ids are
    often long numbers, and hashing them would lose the upstream system's handle on its ticket."""
    if EMAIL.search(value):
        return True
    return person and bool(PHONE_ID.fullmatch(value.strip())) and 9 <= len(_DIGITS.findall(value)) <= 15


def pseudonymous_id(value: str, key: bytes, person: bool = True) -> str:
    """`value` itself, or `pid-` + 24 hex of HMAC-SHA256(key, value normalised) when it is personal."""
    if not value or value.startswith(PREFIX) or not is_personal(value, person):
        return value
    normalised = value.strip().lower()
    return PREFIX + hmac.new(key, normalised.encode("utf-8"), hashlib.sha256).hexdigest()[:24]


class Pseudonymiser:
    """Applies pseudonymous_id to a ticket's id fields (and ids embedded in a ticket id, e.g. 'crm:ann@x.io')."""

    def __init__(self, key: bytes):
        if len(key) < 16:
            raise ValueError("the id hashing key must be at least 16 bytes")
        self._key = key

    def __call__(self, value: str, field: str = "author_id") -> str:
        return pseudonymous_id(value, self._key, person=field in PERSON_FIELDS)

    def fields(self, values: dict[str, object]) -> dict[str, object]:
        return {k: self(v, k) if k in ID_FIELDS and isinstance(v, str) else v for k, v in values.items()}
