"""AWS clients with one retry policy.

Endpoints come from botocore's own configuration (AWS_ENDPOINT_URL, profiles), so the
same code runs on real AWS, LocalStack or the local moto-based cloud unchanged.
Throttling and 5xx are retried by botocore (adaptive mode), never by hand loops.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any, TypeVar

import botocore.session
from botocore.config import Config

from ..domain.batching import bounded_groups  # noqa: F401  (re-exported: the batch shapes the adapters send)

RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 10},
    connect_timeout=5,
    read_timeout=60,
    max_pool_connections=20,
)


@cache
def client(service: str) -> Any:
    # A botocore client, as boto3's Session().client() builds it (same credential chain, endpoint
    # and config); boto3 would add only its resource layer and S3 transfer methods, which this code
    # does not use, and importing boto3 (s3transfer, multiprocessing) is ~0.05 s of every cold start.
    return botocore.session.get_session().create_client(service, config=RETRY_CONFIG)


T = TypeVar("T")
R = TypeVar("R")
CALL_WORKERS = 8  # concurrent single-item calls; below the client's max_pool_connections (20)


def parallel_calls(fn: Callable[[T], R], args: list[T], workers: int = CALL_WORKERS) -> list[R]:
    """fn over args in order, `workers` calls at a time (boto3 clients are thread-safe); one call runs inline."""
    if len(args) <= 1:
        return [fn(a) for a in args]
    with ThreadPoolExecutor(max_workers=min(workers, len(args))) as pool:
        return list(pool.map(fn, args))
