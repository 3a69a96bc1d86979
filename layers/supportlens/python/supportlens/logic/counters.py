"""Read the aggregate counter partitions, merged over their write shards (domain/shards.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..adapters import dynamo
from ..domain import shards

WORKERS = 8  # below the client's max_pool_connections (20)


def read_partitions(table: str, pks: list[str]) -> dict[str, list[dict[str, Any]]]:
    """pk -> its rows, one per sort key, summed over the legacy partition and every shard.
    The queries run a few at a time: a 30-day report reads 30 x (SHARDS + 1) partitions."""
    wanted = [(pk, part) for pk in pks for part in shards.partitions(pk)]
    if len(wanted) > 1:
        with ThreadPoolExecutor(max_workers=min(WORKERS, len(wanted))) as pool:
            pages = list(pool.map(lambda pair: dynamo.query_pk(table, pair[1]), wanted))
    else:
        pages = [dynamo.query_pk(table, part) for _, part in wanted]
    found: dict[str, list[dict[str, Any]]] = {pk: [] for pk in pks}
    for (pk, _), rows in zip(wanted, pages):
        found[pk].extend(rows)
    return {pk: shards.merge_rows(rows) for pk, rows in found.items()}


def read_partition(table: str, pk: str) -> list[dict[str, Any]]:
    return read_partitions(table, [pk])[pk]
