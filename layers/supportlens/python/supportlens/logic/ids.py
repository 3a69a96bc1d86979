"""The container's Pseudonymiser: its key from the settings (CLI, tests) or Secrets Manager (Lambda), read once."""

from __future__ import annotations

from functools import lru_cache

from ..adapters import secrets
from ..domain.pseudonym import Pseudonymiser
from ..settings import Settings


class IdKeyMissing(RuntimeError):
    """No key configured: storing raw e-mail/phone ids is not an option, so the batch fails loudly."""


def pseudonymiser_for(settings: Settings) -> Pseudonymiser:
    if settings.id_hash_key is not None:
        return _cached(settings.id_hash_key.get_secret_value(), "")
    if settings.id_hash_key_secret:
        return _cached("", settings.id_hash_key_secret)
    raise IdKeyMissing("no key for pseudonymous ids: set ID_HASH_KEY_SECRET (the template's IdHashKey secret) or ID_HASH_KEY")


@lru_cache(maxsize=4)
def _cached(key: str, secret_id: str) -> Pseudonymiser:
    return Pseudonymiser((key or secrets.secret_string(secret_id)).encode("utf-8"))
