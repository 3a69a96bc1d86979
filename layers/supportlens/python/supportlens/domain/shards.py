"""Write-sharding of the hot aggregate counter partitions, and merging them back when read.

Every chunk's counter transaction updates the same few items (pk "days", "day#<day>",
"hours#<day>"); at 10 million tickets a day, most of them arriving as single-ticket events,
those items would take more than DynamoDB's 1,000 WRU/s per item and its transactions would
conflict (bench/hotkeys.py measures it). So each chunk writes its counters to one of SHARDS
partitions chosen by a stable hash of the chunk id: pk "day#2017-11-03#s5". A redelivered chunk
lands on the same shard, and its marker keeps it counted once.

Readers query the unsharded partition (rows written before sharding: migration-free) and every
shard, and sum the rows that share a sort key. A count in SHARDS may grow but never shrink: rows
in a shard above the current count would no longer be read.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

# Write shards per partition (pk "days" exactly; the others by prefix), the least counts that keep
# every item under 50 % of 1,000 WRU/s and its transactions mostly conflict-free at 10M tickets/day
# (bench/hotkeys.py, docs/bench.md). "days" is in every chunk's transaction and is read once per
# report, so it has the most; a day's rows are read once per day of a report or alert window.
SHARDS: dict[str, int] = {"days": 32, "day#": 8, "hours#": 8}
_SUFFIX = re.compile(r"#s\d+$")
Shards = int | Mapping[str, int]


def shard_of(chunk_id: str, shards: int) -> int:
    """The shard of one chunk among `shards`: stable across processes and redeliveries (not hash())."""
    return int(hashlib.sha256(chunk_id.encode()).hexdigest()[:8], 16) % shards


def shards_for(pk: str, shards: Shards | None = None) -> int:
    """How many write shards partition `pk` has (1: not sharded). An int applies to every sharded partition."""
    table = SHARDS if shards is None else shards
    for name in SHARDS:
        if pk == name or (name.endswith("#") and pk.startswith(name)):
            return max(1, table if isinstance(table, int) else table.get(name, 1))
    return 1


def sharded_pk(pk: str, chunk_id: str, shards: Shards | None = None) -> str:
    """The partition one chunk writes `pk`'s counters to."""
    count = shards_for(pk, shards)
    return f"{pk}#s{shard_of(chunk_id, count)}" if count > 1 else pk


def partitions(pk: str) -> list[str]:
    """Every partition that may hold rows of `pk`: the legacy unsharded one first, then the shards."""
    return [pk] + [f"{pk}#s{i}" for i in range(shards_for(pk))] if shards_for(pk) > 1 else [pk]


def base_pk(pk: str) -> str:
    """`pk` without its shard suffix."""
    base = _SUFFIX.sub("", pk)
    return base if base != pk and shards_for(base) > 1 else pk


def shard_rows(rows: Mapping[tuple[str, str], Any], chunk_id: str, shards: Shards | None = None) -> dict[tuple[str, str], Any]:
    """One chunk's counter rows with the hot partitions moved to the chunk's shards."""
    return {(sharded_pk(pk, chunk_id, shards), sk): counters for (pk, sk), counters in rows.items()}


def merge_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows of one logical partition read from its shards -> one row per sort key: numbers summed,
    example-id sets (ex_*) united, pk without the shard suffix. Order: first appearance of each sk."""
    merged: dict[str, dict[str, Any]] = {}
    for row in rows:
        sk = str(row.get("sk", ""))
        into = merged.get(sk)
        if into is None:
            into = merged[sk] = {k: (sorted(set(v)) if _is_set(v) else v) for k, v in row.items()}
            into["pk"] = base_pk(str(row.get("pk", "")))
            continue
        for name, value in row.items():
            if name in ("pk", "sk"):
                continue
            have = into.get(name)
            if have is None:
                into[name] = sorted(set(value)) if _is_set(value) else value
            elif _is_set(value):
                into[name] = sorted(set(have) | set(value))
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and isinstance(have, (int, float)):
                into[name] = have + value
    return list(merged.values())


def _is_set(value: Any) -> bool:
    return isinstance(value, (list, set, tuple, frozenset))
