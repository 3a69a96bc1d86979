"""boto3 clients with one retry policy.

Endpoints come from boto3's own configuration (AWS_ENDPOINT_URL, profiles), so the
same code runs on real AWS, LocalStack or the local moto-based cloud unchanged.
Throttling and 5xx are retried by botocore (adaptive mode), never by hand loops.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 10},
    connect_timeout=5,
    read_timeout=60,
    max_pool_connections=20,
)


@cache
def client(service: str) -> Any:
    return boto3.session.Session().client(service, config=RETRY_CONFIG)


@cache
def resource(service: str) -> Any:
    return boto3.session.Session().resource(service, config=RETRY_CONFIG)
