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

Closed days of a chunk are packed. A backfill chunk spreads its tickets over weeks of days and
hundreds of (day, hour, company) cells, ~0.35 tickets a cell: ADDed in the chunk's transaction
each cell costs 2 WRU for one ticket. Rows of days older than the day before the chunk's newest
day (`split_closed`: decided by the chunk's own rows, never the clock, so a redelivery splits the
same way) are instead written as one item per partition and chunk (`packed_items`: pk the
partition shard, sk "~packed#<chunk hash>#<part>", `rows` = {sort key: counters}), with a plain
BatchWriteItem: idempotent by its key (a redelivery rewrites the same item), no transaction, no
marker. `merge_rows` unpacks them, so every reader sums them with the other rows. Live chunks
(their tickets of today and yesterday) keep the transactional ADD: their rows are dense and read
by alerts every few minutes, and a day's packed items grow only with the backfill chunks that
touch it (one item per partition per chunk). The day index (pk "days") is packed the same way:
a chunk's index rows all sit in its one shard partition ("days#s17"), so a backfill chunk's closed
days cost one item (~1 WRU) instead of 2 WRU each in the transaction (0.073 WRU a ticket on the
50k e2e backfill). Every report reads the whole index, so it grows by one small item (~0.5 KB)
per backfill chunk: 101 items for the 50,020-ticket upload, ~20,000 (~10 MB, ~2,500 RRU
eventually consistent, $0.0003 a report) after a 10M-ticket backfill; a live stream adds none.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from datetime import date, timedelta
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .batching import bounded_groups

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


PACKED = "~packed#"  # sk prefix of a packed item: "~" sorts after every row's sort key, and none starts so
MAX_PACKED_BYTES = 300_000  # a packed item's rows, measured as JSON: well under DynamoDB's 400 KB
# A packed item's rows as zlib-compressed compact JSON (a Binary attribute), not a map: WRU are per
# started KB, and a backfill chunk's rows of one day (company names, counter names, sort keys
# repeated) compress 3-4x, so most items cost 1 WRU instead of 1-2. Items written before hold `rows`.
PACKED_ROWS = "rows_z"


def row_day(pk: str, sk: str) -> str | None:
    """The day a counter row counts: pk day#<day> / hours#<day> (shard suffix allowed), or pk days sk <day>."""
    base = base_pk(pk)
    if base == "days" or base.startswith("days#"):
        return base_sk(pk, sk)
    for family in ("day#", "hours#"):
        if base.startswith(family):
            return base[len(family):]
    return None


def split_closed(rows: Mapping[tuple[str, str], Any]) -> tuple[dict[tuple[str, str], Any], dict[tuple[str, str], Any]]:
    """(rows to ADD in the chunk's transaction, rows to pack): rows of days before the day before the
    newest day among `rows` are packed. Depends on the rows only: a redelivery splits them the same way."""
    days = {(pk, sk): row_day(pk, sk) for pk, sk in rows}
    newest = max((d for d in days.values() if d), default=None)
    if newest is None:
        return dict(rows), {}
    cutoff = (date.fromisoformat(newest) - timedelta(days=1)).isoformat()
    # The day index (pk "days") too: a chunk's rows of it are all in one shard partition, so its closed days
    # are one packed item (~1 WRU) instead of 2 WRU a day; reports read it whole (see the module's note).
    live = {key: value for key, value in rows.items() if not days[key] or days[key] >= cutoff}
    return live, {key: value for key, value in rows.items() if key not in live}


def packed_items(rows: Mapping[tuple[str, str], Mapping[str, Any]], chunk_id: str,
                 max_bytes: int = MAX_PACKED_BYTES) -> list[dict[str, Any]]:
    """One chunk's rows -> one item per partition (split in parts under `max_bytes`), keyed by the
    chunk: written again by a redelivery, the same items with the same content."""
    digest = hashlib.sha256(chunk_id.encode()).hexdigest()[:16]
    by_pk: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for (pk, sk), counters in sorted(rows.items()):
        by_pk.setdefault(pk, []).append((sk, counters))
    size = lambda entry: len(json.dumps({entry[0]: entry[1]}, default=sorted))  # noqa: E731 - at least its share of the item
    return [{"pk": pk, "sk": f"{PACKED}{digest}#{number}", PACKED_ROWS: pack_rows({sk: dict(counters) for sk, counters in group})}
            for pk, entries in by_pk.items()
            for number, group in enumerate(bounded_groups(entries, size, len(entries), max_bytes))]


def pack_rows(rows: Mapping[str, Mapping[str, Any]]) -> bytes:
    """{sort key: counters} -> compressed JSON (sets as sorted lists); the same rows give the same bytes."""
    return zlib.compress(json.dumps(rows, sort_keys=True, separators=(",", ":"), default=sorted).encode(), 9)


def unpack_rows(blob: Any) -> dict[str, dict[str, Any]]:
    """pack_rows' inverse; whole floats come back as ints, as from_dynamo reads DynamoDB numbers."""
    raw = getattr(blob, "value", blob)  # boto3's Binary or bytes
    rows = json.loads(zlib.decompress(bytes(raw)))
    return {sk: {k: (int(v) if isinstance(v, float) and v.is_integer() else v) for k, v in counters.items()}
            for sk, counters in rows.items()}


def unpack(rows: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Rows as read, packed items replaced by the rows they hold (in their partition)."""
    for row in rows:
        packed = str(row.get("sk", "")).startswith(PACKED)
        if packed and row.get(PACKED_ROWS) is not None:
            for sk, counters in unpack_rows(row[PACKED_ROWS]).items():
                yield {**counters, "pk": row["pk"], "sk": sk}
        elif packed and isinstance(row.get("rows"), Mapping):  # written before compression
            for sk, counters in row["rows"].items():
                yield {**counters, "pk": row["pk"], "sk": sk}
        else:
            yield row


def merge_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows of one logical partition read from its shards -> one row per sort key: numbers summed,
    example-id sets (ex_*) united, pk and sk without shard suffixes; packed items unpacked first.
    Order: first appearance."""
    merged: dict[str, dict[str, Any]] = {}
    for row in unpack(rows):
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
