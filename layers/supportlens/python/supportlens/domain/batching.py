"""Grouping items under a count and a byte limit: the shape of AWS's batch limits and of items
packed up to DynamoDB's 400 KB. Pure: the adapters use it for requests, domain code for items."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def bounded_groups(items: Iterable[T], size_of: Callable[[T], int], max_count: int, max_bytes: int) -> Iterator[list[T]]:
    """Consecutive groups of at most `max_count` items whose sizes add up to `max_bytes` or less: the
    shape of AWS's batch limits (SendMessageBatch: 10 and 1 MiB; TransactWriteItems: 100 and 4 MB)."""
    group: list[T] = []
    size = 0
    for item in items:
        item_size = size_of(item)
        if group and (len(group) == max_count or size + item_size > max_bytes):
            yield group
            group, size = [], 0
        group.append(item)
        size += item_size
    if group:
        yield group
