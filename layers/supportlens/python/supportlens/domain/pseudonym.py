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

from .text import EMAIL, PHONE

PREFIX = "pid-"
ID_FIELDS = ("ticket_id", "author_id", "agent_id", "conversation_id", "in_reply_to", "responder")
_DIGITS = re.compile(r"\d")


def is_personal(value: str) -> bool:
    """An e-mail address or a phone number (9+ digits, as mask_pii counts them) anywhere in the id.
    Long numbers are not taken for cards here: 13-19-digit tweet ids would pass Luhn one time in ten."""
    if EMAIL.search(value):
        return True
    return any(len(_DIGITS.findall(m.group(0))) >= 9 for m in PHONE.finditer(value))


def pseudonymous_id(value: str, key: bytes) -> str:
    """`value` itself, or `pid-` + 24 hex of HMAC-SHA256(key, value normalised) when it is personal."""
    if not value or value.startswith(PREFIX) or not is_personal(value):
        return value
    normalised = value.strip().lower()
    return PREFIX + hmac.new(key, normalised.encode("utf-8"), hashlib.sha256).hexdigest()[:24]


class Pseudonymiser:
    """Applies pseudonymous_id to a ticket's id fields (and ids embedded in a ticket id, e.g. 'crm:ann@x.io')."""

    def __init__(self, key: bytes):
        if len(key) < 16:
            raise ValueError("the id hashing key must be at least 16 bytes")
        self._key = key

    def __call__(self, value: str) -> str:
        return pseudonymous_id(value, self._key)

    def fields(self, values: dict[str, object]) -> dict[str, object]:
        return {k: self(v) if k in ID_FIELDS and isinstance(v, str) else v for k, v in values.items()}
