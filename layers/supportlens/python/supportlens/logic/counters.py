"""Read the aggregate counter partitions, merged over their write shards (domain/shards.py)."""

from __future__ import annotations

from typing import Any

from ..adapters import dynamo
from ..adapters.aws import parallel_calls
from ..domain import shards

def read_partitions(table: str, pks: list[str]) -> dict[str, list[dict[str, Any]]]:
    """pk -> its rows, one per sort key, summed over the legacy partition and every shard.
    The queries run a few at a time: a 30-day report reads 30 x (SHARDS + 1) partitions."""
    wanted = [(pk, part) for pk in pks for part in shards.partitions(pk)]
    pages = parallel_calls(lambda pair: dynamo.query_pk(table, pair[1]), wanted)
    found: dict[str, list[dict[str, Any]]] = {pk: [] for pk in pks}
    for (pk, _), rows in zip(wanted, pages):
        found[pk].extend(rows)
    return {pk: shards.merge_rows(rows) for pk, rows in found.items()}


def read_partition(table: str, pk: str) -> list[dict[str, Any]]:
    return read_partitions(table, [pk])[pk]
