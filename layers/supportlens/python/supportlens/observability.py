"""One Logger and one Metrics per process (Powertools), created on first use."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools import Logger, Metrics


@cache
def logger() -> Logger:
    return Logger()


@cache
def metrics() -> Metrics:
    return Metrics()
