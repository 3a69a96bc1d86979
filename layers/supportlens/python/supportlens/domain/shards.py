"""Write-sharding of the hot aggregate counter items, and merging them back when read.

Every chunk's counter transaction updates the same few items (pk "days" sk <day>, and the rows
of pk "day#<day>" and "hours#<day>" of busy companies); at 10 million tickets a day, half of them
arriving as single-ticket events, those transactions conflict on the shared items and the
writers fall behind (bench/hotkeys.py measures it, docs/bench.md has the numbers). So each
chunk writes its counters to one of a few copies of each hot item, chosen by a stable hash of the
chunk id. A redelivered chunk lands on the same copies, and its marker keeps it counted once.

- pk "days" (the day index, in every chunk's transaction, read once per report): 32 copies,
  each in its own partition: pk "days#s17".
- pk "day#<day>", "hours#<day>" (read once per day of a report or alert window): 8 copies of
  each row over 4 partitions, pk "day#2017-11-03#s1" sk "company#acme#channel#email#~s5": 5
  Queries a day instead of 9, and no partition of a new day waits for DynamoDB to split it.

Readers query the unsharded partition and every pk shard and sum the rows whose sort keys agree
once the suffix is taken off: rows written before sharding (no suffix) still count, with no
migration. A count may grow but never shrink: rows in a shard above the current count would
no longer be read.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

@dataclass(frozen=True)
class Layout:
    """`items` copies of each hot item, spread over `partitions` partition keys (items % partitions == 0)."""

    items: int
    partitions: int = 1


# The least counts that keep every item under 50 % of 1,000 WRU/s and its transactions mostly
# conflict-free at 10M tickets/day, and every partition under 50 % of its 1,000 WCU/s without
# waiting for DynamoDB to split it (bench/hotkeys.py; docs/bench.md "Hot keys at 10M tickets/day").
SHARDS: dict[str, Layout] = {"days": Layout(32, 32), "day#": Layout(8, 4), "hours#": Layout(8, 4)}
_PK_SUFFIX = re.compile(r"#s\d+$")
_SK_SUFFIX = re.compile(r"#~s\d+$")  # "~": no id or name the counters hold ends like this
Shards = int | Layout | Mapping[str, int | Layout]


def shard_of(chunk_id: str, shards: int) -> int:
    """The shard of one chunk among `shards`: stable across processes and redeliveries (not hash())."""
    return int(hashlib.sha256(chunk_id.encode()).hexdigest()[:8], 16) % shards


def _family(pk: str) -> str | None:
    for name in SHARDS:
        if pk == name or (name.endswith("#") and pk.startswith(name)):
            return name
    return None


def layout_for(pk: str, shards: Shards | None = None) -> Layout:
    """How partition `pk`'s items are sharded (Layout(1, 1): not at all). An int n means n items over n partitions."""
    family = _family(pk)
    if family is None:
        return Layout(1, 1)
    value = SHARDS[family] if shards is None else shards if isinstance(shards, (int, Layout)) else shards.get(family, 1)
    return value if isinstance(value, Layout) else Layout(max(1, value), max(1, value))


def sharded_key(pk: str, sk: str, chunk_id: str, shards: Shards | None = None) -> tuple[str, str]:
    """The item one chunk writes (pk, sk)'s counters to."""
    layout = layout_for(pk, shards)
    if layout.items <= 1:
        return pk, sk
    shard = shard_of(chunk_id, layout.items)
    if layout.partitions > 1:
        pk = f"{pk}#s{shard % layout.partitions}"
    if layout.items > layout.partitions:
        sk = f"{sk}#~s{shard}"
    return pk, sk


def partitions(pk: str) -> list[str]:
    """Every partition that may hold rows of `pk`: the legacy unsharded one first, then the pk shards."""
    count = layout_for(pk).partitions
    return [pk] + [f"{pk}#s{i}" for i in range(count)] if count > 1 else [pk]


def base_pk(pk: str) -> str:
    """`pk` without its shard suffix."""
    base = _PK_SUFFIX.sub("", pk)
    return base if base != pk and _family(base) else pk


def base_sk(pk: str, sk: str) -> str:
    """`sk` without its shard suffix (only rows of sharded partitions carry one)."""
    return _SK_SUFFIX.sub("", sk) if _family(base_pk(pk)) else sk


def shard_rows(rows: Mapping[tuple[str, str], Any], chunk_id: str, shards: Shards | None = None) -> dict[tuple[str, str], Any]:
    """One chunk's counter rows moved to the chunk's shards."""
    return {sharded_key(pk, sk, chunk_id, shards): counters for (pk, sk), counters in rows.items()}


def merge_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows of one logical partition read from its shards -> one row per sort key: numbers summed,
    example-id sets (ex_*) united, pk and sk without shard suffixes. Order: first appearance."""
    merged: dict[str, dict[str, Any]] = {}
    for row in rows:
        pk = str(row.get("pk", ""))
        sk = base_sk(pk, str(row.get("sk", "")))
        into = merged.get(sk)
        if into is None:
            into = merged[sk] = {k: (sorted(set(v)) if _is_set(v) else v) for k, v in row.items()}
            into["pk"], into["sk"] = base_pk(pk), sk
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
