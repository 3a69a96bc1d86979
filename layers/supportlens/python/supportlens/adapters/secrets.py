"""Secrets Manager adapter: read one secret's string (never logged, never cached outside the caller)."""

from __future__ import annotations

from .aws import client


def secret_string(secret_id: str) -> str:
    return str(client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])
