"""Hot keys and transaction conflicts of Enrich's counter writes at scale, simulated.

The local emulator never throttles a hot item and never raises TransactionConflict; AWS does
(1,000 WRU/s per item, concurrent transactions on one item conflict). This replays the write
pattern Enrich produces for a day of `--tickets-per-day` tickets and reports, per item, the peak
write rate, item size, conflicts and retries:

* the brand skew and the hour-of-day profile are measured from the Customer Support on Twitter
  corpus (../shared/data/twcs, else the bundled sample) and printed;
* the tickets are real TWCS tweets mapped by the production ingest path and enriched by the
  production `enrich()` (sentiment, abuse, escalation, response times): templates, re-stamped
  with fresh ids and times in the busiest hour;
* the keys each message writes come from the real code: `aggregate(items, chunk_id)` (the
  counter transaction, with or without write shards), the lineage update of file chunks, and the
  behaviour rows (`customer_deltas`, `activity_rows`, `complaint_groups`);
* a discrete-event simulation runs `--concurrency` Enrich invocations taking up to
  `--batch-size` messages each from the queue, processing each (stated per-message and
  per-ticket times) and running its counter transaction(s) split as `apply_increments_once`
  splits them. A transaction holds its items for `--tx-ms`; one that starts while another holds
  one of its items is cancelled (TransactionConflict) and retried with the adapter's own backoff.
  WRU per write: ceil(max(size before, size after) / 1 KB), doubled in a transaction.

The window simulated is the last `--window-s` seconds of the busiest hour (fast: 60 s by default).
Rows of the hour (pk hours#) have grown during the rest of the hour: their example-id sets are
extrapolated linearly from the window (`--window-s 3600` simulates the whole hour, no
extrapolation).

    python -m bench.hotkeys                         # before (1 shard) and after (domain.shards.SHARDS)
    python -m bench.hotkeys --event-share 1 --concurrency 64 --event-batch 4
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import math
import random
import sys
import time
from collections import Counter, defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

ITEM_LIMIT_WRU_S = 1000  # DynamoDB: one item (and one partition) takes at most 1,000 write units a second
TARGET_SHARE = 0.5  # the goal: every item under 50 % of that at 10M tickets/day
ITEM_LIMIT_BYTES = 400 * 1024
SIM_DAY = "2017-11-03"


# ------------------------------------------------------------------ what the corpus says
def measure_corpus(tickets: list[Any]) -> dict[str, Any]:
    """Brand shares (of all tweets, by the company each ticket is attributed to) and the hour-of-day profile."""
    brands = Counter(t.company or "unknown" for t in tickets)
    named = {b: n for b, n in brands.items() if b != "unknown"}
    top, top_n = max(named.items(), key=lambda kv: kv[1])
    hours = Counter(t.created_at.astimezone(timezone.utc).hour for t in tickets)
    profile = [hours.get(h, 0) / len(tickets) for h in range(24)]
    busiest = max(range(24), key=lambda h: profile[h])
    return {
        "tweets": len(tickets), "brands": len(named), "top_brand": top,
        "top_brand_share": round(top_n / len(tickets), 4),
        "unattributed_share": round(brands.get("unknown", 0) / len(tickets), 4),
        "busiest_hour_utc": busiest, "busiest_hour_share": round(profile[busiest], 4),
        "busiest_hour_vs_average": round(profile[busiest] * 24, 2),
        "quietest_hour_vs_average": round(min(profile) * 24, 2),
        "hour_profile": [round(p, 4) for p in profile],
    }


def enriched_templates(tickets: list[Any], limit: int) -> list[dict[str, Any]]:
    """TWCS tickets enriched by the production code: what Enrich would count for each of them."""
    from supportlens.domain.enrichment import enrich

    step = max(1, len(tickets) // limit)
    return enrich(tickets[::step][:limit]).items


def chunk_tickets(templates: list[dict[str, Any]], tickets: list[Any]) -> int:
    """Tickets per file chunk, from the real packing of TWCS ticket messages (domain.ingest)."""
    from supportlens.domain.ingest import pack_messages

    messages = list(pack_messages([t.to_message() for t in tickets], "bench#pack", 0))
    full = [len(m["tickets"]) for m in messages[:-1]] or [len(messages[0]["tickets"])]
    return int(sum(full) / len(full))


# ------------------------------------------------------------------ the workload
@dataclass
class Message:
    arrival: float
    chunk_id: str
    items: list[dict[str, Any]]
    file_id: str | None = None
    rows: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    behaviour: list[tuple[str, str]] | None = None  # computed once, the same in every run


def stamp(template: dict[str, Any], number: int, at: datetime) -> dict[str, Any]:
    """A fresh ticket with a template's content: new id, author replica and time."""
    item = dict(template)
    item["ticket_id"] = f"twcs:{900_000_000 + number}"  # as long as a real tweet id
    if item.get("author_id"):
        item["author_id"] = f"{item['author_id']}.{number % 50_000}"
    item["created_at"] = at.isoformat()
    item["day"] = at.strftime("%Y-%m-%d")
    item["hour"] = at.hour
    return item


def workload(templates: list[dict[str, Any]], corpus: dict[str, Any], args: argparse.Namespace,
             per_chunk: int) -> tuple[list[Message], float]:
    """Messages arriving during the window (the end of the busiest hour): events and file chunks."""
    rng = random.Random(args.seed)
    rate = args.tickets_per_day * corpus["busiest_hour_share"] / 3600  # tickets/s in the busiest hour
    hour_start = datetime.fromisoformat(SIM_DAY).replace(hour=corpus["busiest_hour_utc"], tzinfo=timezone.utc)
    offset = 3600 - args.window_s
    n = int(rate * args.window_s)
    times = sorted(rng.uniform(0, args.window_s) for _ in range(n))
    messages: list[Message] = []
    pending: list[dict[str, Any]] = []
    file_no = 0
    for number, t in enumerate(times):
        item = stamp(rng.choice(templates), number, hour_start + timedelta(seconds=offset + t))
        if rng.random() < args.event_share:
            digest = hashlib.sha256(item["ticket_id"].encode()).hexdigest()[:16]
            messages.append(Message(t, f"event#{item['ticket_id']}#{digest}", [item]))
            continue
        pending.append(item)
        if len(pending) == args.file_tickets:  # Ingest enqueues a whole file's chunks at once
            messages.extend(file_messages(pending, f"incoming/sim/file{file_no}.csv#etag", t, per_chunk))
            pending, file_no = [], file_no + 1
    if pending:
        messages.extend(file_messages(pending, f"incoming/sim/file{file_no}.csv#etag", args.window_s, per_chunk))
    messages.sort(key=lambda m: m.arrival)
    return messages, rate


def file_messages(items: list[dict[str, Any]], file_id: str, at: float, per_chunk: int) -> Iterator[Message]:
    for number, start in enumerate(range(0, len(items), per_chunk)):
        yield Message(at, f"{file_id}#chunk{number}", items[start:start + per_chunk], file_id)


def message_rows(message: Message, shards: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """The rows of the message's counter transaction, decided by the production code (the rows of
    the chunk's closed days are packed items instead: `packed_keys`)."""
    from supportlens.domain import shards as shards_
    from supportlens.domain.enrichment import aggregate

    live, _ = shards_.split_closed(aggregate(message.items, message.chunk_id, shards).rows)
    rows = {key: dict(counters) for key, counters in live.items()}
    if message.file_id:  # dynamo.lineage_add: the file's lineage item, in the same transaction
        rows[("files", message.file_id)] = {"tickets_stored": len(message.items), "duplicates": 0,
                                            "tickets_quarantined": 0, "updated_at": "2017-11-03T00:00:00+00:00"}
    return rows


def packed_keys(message: Message, shards: Any) -> list[tuple[str, str]]:
    """The packed items (one per partition and chunk, plain BatchWriteItem) the message writes for its closed days."""
    from supportlens.domain import shards as shards_
    from supportlens.domain.enrichment import aggregate

    _, closed = shards_.split_closed(aggregate(message.items, message.chunk_id, shards).rows)
    return [(item["pk"], item["sk"]) for item in shards_.packed_items(closed, message.chunk_id)]


def behaviour_keys(message: Message, profiled: set[str] = frozenset(), now: datetime | None = None) -> list[tuple[str, str]]:
    """Items record_behaviour writes with BatchWriteItem (no transaction): keyed by the chunk. Customer
    rows only for customers signalled in the message or in `profiled`; fingerprints only for hours of
    the 14 days before `now` (default: the messages' own latest time, as in a live stream)."""
    from supportlens.domain import behaviour
    from supportlens.logic.behaviour import COMPLAINT_TTL_S, complaint_rows

    deltas = behaviour.customer_deltas(message.items)
    keep = behaviour.signalled_customers(message.items) | set(profiled)
    keys = [(f"customer#{c}", behaviour.chunk_row_sk(day, message.chunk_id)) for c, day in behaviour.rows_worth_writing(deltas, keep)]
    keys += [(f"active#{day}", behaviour.chunk_row_sk("top", message.chunk_id)) for day in behaviour.activity_rows(deltas)]
    if now is None:
        now = max((datetime.fromisoformat(str(i["created_at"]).replace("Z", "+00:00")) for i in message.items), default=datetime.now(timezone.utc))
    groups = behaviour.recent_groups(behaviour.complaint_groups(message.items), now, COMPLAINT_TTL_S)
    rows = complaint_rows(groups, message.chunk_id, expires=0)
    keys += [(row["pk"], row["sk"]) for row in rows]  # packed: one item per hour and chunk
    return keys


# ------------------------------------------------------------------ DynamoDB item sizes
def number_size(value: float) -> int:
    """Bytes of a DynamoDB number: about one per two significant digits, plus one."""
    digits = str(abs(value)).replace(".", "").strip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def value_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, (set, frozenset, list)):
        return sum(value_size(v) for v in value)
    return number_size(value)


class Item:
    """One counter item as DynamoDB sizes it, updated by ADD like the real one."""

    def __init__(self, pk: str, sk: str, seed_bytes: float = 0.0, grow_sets: bool = False) -> None:
        self.grow_sets = grow_sets  # the code before: sets ADDed; now SET where absent (dynamo._add_update)
        self.values: dict[str, Any] = {}
        self.size = len("pk") + len(pk.encode()) + len("sk") + len(sk.encode()) + int(seed_bytes)

    def add(self, counters: dict[str, Any]) -> tuple[int, int]:
        before = self.size
        for name, value in counters.items():
            old = self.values.get(name)
            if isinstance(value, set):
                if old is not None and not self.grow_sets:
                    continue
                new = (old or set()) | value
                self.size += value_size(value - old if old else value) + (0 if old else len(name))
            elif isinstance(value, str):
                new = value
                self.size += len(value.encode()) - (len(old.encode()) if old else -len(name))
            else:
                new = (old or 0) + value
                self.size += number_size(new) - (number_size(old) if old is not None else -len(name))
            self.values[name] = new
        return before, self.size


def wru(size_bytes: int, transactional: bool) -> int:
    return max(1, math.ceil(size_bytes / 1024)) * (2 if transactional else 1)


def seed_bytes(messages: list[Message], window_s: float) -> dict[tuple[str, str], float]:
    """Bytes the hour's rows held before the window: their example-id sets grow with every chunk,
    so the window's growth is extended over the part of the hour before it (linear)."""
    before = 3600 - window_s
    if before <= 0:
        return {}
    growth: dict[tuple[str, str], float] = defaultdict(float)
    for message in messages:
        for (pk, sk), counters in message.rows.items():
            if pk.startswith("hours#"):
                growth[(pk, sk)] += sum(value_size(v) for v in counters.values() if isinstance(v, set))
    return {key: b * before / window_s for key, b in growth.items()}


# ------------------------------------------------------------------ the discrete-event simulation
@dataclass
class Stats:
    writes: Counter = field(default_factory=Counter)
    wru: Counter = field(default_factory=Counter)
    per_second: dict[tuple[str, str], Counter] = field(default_factory=lambda: defaultdict(Counter))
    partition_per_second: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    tx_touching: Counter = field(default_factory=Counter)
    conflicts_on: Counter = field(default_factory=Counter)
    transactions: int = 0
    attempts: int = 0
    conflicts: int = 0
    failed: int = 0
    messages_done: int = 0
    latencies: list[float] = field(default_factory=list)
    busy_s: float = 0.0


def simulate(messages: list[Message], args: argparse.Namespace, shards: Any, event_batch: int,
             grow_sets: bool = False) -> dict[str, Any]:
    """N invocations draining the queue; returns per-key and overall numbers. `grow_sets`: example
    sets ADDed by every chunk (the code before), else set once per row (the code now)."""
    from supportlens.adapters.dynamo import CONFLICT_RETRIES, MAX_TRANSACT_ITEMS

    for message in messages:
        message.rows = message_rows(message, shards)
    seeds = seed_bytes(messages, args.window_s) if grow_sets else {}
    items: dict[tuple[str, str], Item] = {}
    locks: dict[tuple[str, str], float] = {}  # item -> until when a transaction holds it
    stats = Stats()
    tx_s, events = args.tx_ms / 1000, []
    queue: deque[Message] = deque()
    idle: list[int] = list(range(args.concurrency))
    seq = 0

    def schedule(at: float, what: str, payload: Any) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (at, seq, what, payload))

    def record(key: tuple[str, str], counters: dict[str, Any], at: float, transactional: bool) -> None:
        item = items.get(key) or items.setdefault(key, Item(*key, seeds.get(key, 0.0), grow_sets))
        before, after = item.add(counters)
        units = wru(max(before, after), transactional)
        stats.writes[key] += 1
        stats.wru[key] += units
        stats.per_second[key][int(at)] += units
        stats.partition_per_second[key[0]][int(at)] += units

    def groups_of(batch: list[Message]) -> list[list[Message]]:
        """Messages sharing one counter transaction: each alone (the code today), or up to
        `event_batch` consecutive event messages together (a marker each)."""
        groups: list[list[Message]] = []
        for message in batch:
            if message.file_id is None and groups and groups[-1][0].file_id is None and len(groups[-1]) < event_batch:
                groups[-1].append(message)
            else:
                groups.append([message])
        return groups

    def transactions_of(group: list[Message]) -> list[tuple[list[str], list[tuple[tuple[str, str], dict[str, Any]]]]]:
        """(markers, updates) per transaction, split as apply_increments_once splits them."""
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for message in group:
            for key, counters in message.rows.items():
                into = merged.setdefault(key, {})
                for name, value in counters.items():
                    into[name] = (into.get(name, set()) | value) if isinstance(value, set) else (
                        value if isinstance(value, str) else into.get(name, 0) + value)
        updates = sorted(merged.items())
        markers = [m.chunk_id for m in group]
        per_part = MAX_TRANSACT_ITEMS - len(markers)
        parts = [updates[i:i + per_part] for i in range(0, len(updates), per_part)] or [[]]
        return [(markers if n == 0 else [f"{c}#part{n}" for c in markers], part) for n, part in enumerate(parts)]

    def invocation(batch: list[Message], started: float) -> Iterator[float]:
        """A generator: yields the time to resume at; the scheduler runs every worker in time order,
        so the lock table is read at the moment each attempt starts."""
        now = started
        for group in groups_of(batch):
            now += sum(args.message_ms + args.ticket_ms * len(m.items) for m in group) / 1000
            yield now
            for markers, part in transactions_of(group):
                keys = [key for key, _ in part]
                stats.transactions += 1
                for key in keys:
                    stats.tx_touching[key] += 1
                first_try = now
                for conflicts in range(CONFLICT_RETRIES + 1):
                    stats.attempts += 1
                    held = [key for key in keys if locks.get(key, -1.0) > now]
                    if not held:
                        for key in keys:
                            locks[key] = now + tx_s
                        now += tx_s
                        yield now
                        for key, counters in part:
                            record(key, counters, now, True)
                        for marker in markers:
                            record(("marker", marker), {"expires_at": 1_700_000_000}, now, True)
                        stats.latencies.append(now - first_try)
                        break
                    stats.conflicts += 1
                    for key in held:
                        stats.conflicts_on[key] += 1
                    now += tx_s  # the cancelled attempt's round trip
                    if conflicts == CONFLICT_RETRIES:
                        stats.failed += 1  # the adapter raises: the message is redelivered later
                        break
                    now += min(1.0, 0.02 * 2 ** (conflicts + 1))  # dynamo._transact_once's backoff
                    yield now
            for message in group:
                if message.behaviour is None:
                    message.behaviour = behaviour_keys(message)
                for key in message.behaviour:
                    record(key, {"written": 1}, now, False)
                stats.messages_done += 1
        stats.busy_s += now - started

    for message in messages:
        schedule(message.arrival, "arrival", message)
    running: dict[int, Iterator[float]] = {}
    end = 0.0
    while events:
        at, _, what, payload = heapq.heappop(events)
        end = max(end, at)
        if what == "arrival":
            queue.append(payload)
            schedule(at + args.batching_window_s, "window", None)
        elif what == "resume":
            worker = payload
            nxt = next(running[worker], None)
            if nxt is not None:
                schedule(nxt, "resume", worker)
                continue
            del running[worker]
            idle.append(worker)
        # The event source hands a free invocation BatchSize messages, or fewer once the oldest
        # has waited MaximumBatchingWindowInSeconds (template.yaml).
        while idle and queue and (len(queue) >= args.batch_size or queue[0].arrival + args.batching_window_s <= at):
            worker = idle.pop()
            batch = [queue.popleft() for _ in range(min(args.batch_size, len(queue)))]
            running[worker] = invocation(batch, at)
            schedule(at, "resume", worker)
    return summarise(stats, items, messages, args, shards, event_batch, end, grow_sets)


def summarise(stats: Stats, items: dict[tuple[str, str], Item], messages: list[Message], args: argparse.Namespace,
              shards: Any, event_batch: int, end: float, grow_sets: bool) -> dict[str, Any]:
    span = max(end, args.window_s)  # the writes go on while the invocations drain the window's backlog

    def key_name(key: tuple[str, str]) -> str:
        return f"{key[0]} | {key[1]}"

    # Served: the busiest second of each item. Offered: the window's writes spread over the window,
    # what the item would take if conflicts did not slow the writers down.
    peaks = {key: max(max(seconds.values()), math.ceil(stats.wru[key] / args.window_s))
             for key, seconds in stats.per_second.items()}
    ranked = sorted((k for k in peaks if k[0] != "marker"), key=lambda k: -peaks[k])  # markers: one item per chunk
    hottest = []
    for key in ranked[:args.top]:
        tx_rate = stats.tx_touching[key] / span
        hottest.append({
            "key": key_name(key), "peak_wru_per_s": peaks[key], "mean_wru_per_s": round(stats.wru[key] / span, 1),
            "writes_per_s": round(stats.writes[key] / span, 2), "item_bytes": items[key].size,
            "transactions_per_s": round(tx_rate, 2), "conflicts": stats.conflicts_on[key],
            # Cross-check of the simulation: Poisson arrivals, a conflict when another holds the item.
            "poisson_conflict_p": round(1 - math.exp(-tx_rate * args.tx_ms / 1000), 4),
        })
    partition_peaks = {pk: max(s.values()) for pk, s in stats.partition_per_second.items()}
    hot_partitions = sorted(partition_peaks.items(), key=lambda kv: -kv[1])[:args.top]
    counter_keys = [k for k in peaks if k[0] != "marker"]
    peak = max((peaks[k] for k in counter_keys), default=0)
    biggest = max(counter_keys, key=lambda k: items[k].size) if counter_keys else None
    lat = sorted(stats.latencies) or [0.0]
    return {
        "shards": shards_text(shards), "event_batch": event_batch, "example_sets": "added by every chunk" if grow_sets else "set once per row",
        "peak_wru_per_s": peak,
        "peak_key": key_name(ranked[0]) if ranked else None,
        "peak_vs_limit": round(peak / ITEM_LIMIT_WRU_S, 3),
        "keys_over_half_limit": sum(1 for k in counter_keys if peaks[k] > TARGET_SHARE * ITEM_LIMIT_WRU_S),
        "keys_over_limit": sum(1 for k in counter_keys if peaks[k] > ITEM_LIMIT_WRU_S),
        "max_item_bytes": items[biggest].size if biggest else 0, "max_item_key": key_name(biggest) if biggest else None,
        "items_over_400kb": sum(1 for k in counter_keys if items[k].size > ITEM_LIMIT_BYTES),
        "peak_partition_wru_per_s": hot_partitions[0][1] if hot_partitions else 0,
        "transactions": stats.transactions, "attempts": stats.attempts, "conflicts": stats.conflicts,
        "conflict_rate": round(stats.conflicts / max(1, stats.attempts), 4),
        "retries_per_transaction": round((stats.attempts - stats.transactions) / max(1, stats.transactions), 4),
        "retries_per_message": round((stats.attempts - stats.transactions) / max(1, len(messages)), 4),
        "transactions_failed_after_retries": stats.failed,
        "transaction_latency_ms": {"p50": round(lat[len(lat) // 2] * 1000, 1), "p99": round(lat[int(len(lat) * 0.99)] * 1000, 1),
                                   "max": round(lat[-1] * 1000, 1)},
        "messages": len(messages), "messages_done": stats.messages_done,
        "drained_s_after_window": round(max(0.0, end - args.window_s), 1),
        "invocation_utilisation": round(stats.busy_s / (args.concurrency * span), 3),
        "hottest_keys": hottest,
        "most_conflicted_keys": [{"key": key_name(k), "conflicts": n} for k, n in stats.conflicts_on.most_common(args.top)],
        "hottest_partitions": [{"pk": pk, "peak_wru_per_s": v} for pk, v in hot_partitions],
    }


# ------------------------------------------------------------------ entry points
def parse_shards(text: str) -> Any:
    """'8' (8 copies over 8 partitions everywhere) or 'days=32,day#=8/4,hours#=8/4' (copies/partitions)."""
    from supportlens.domain.shards import Layout

    def one(value: str) -> Layout:
        items, _, parts = value.partition("/")
        return Layout(int(items), int(parts or items))

    if "=" not in text:
        return one(text)
    return {name.strip(): one(value) for name, value in (part.split("=", 1) for part in text.split(",") if part.strip())}


def shards_text(shards: Any) -> Any:
    """JSON-friendly form of a shard layout: 'copies/partitions'."""
    if isinstance(shards, dict):
        return {name: shards_text(v) for name, v in shards.items()}
    return f"{shards.items}/{shards.partitions}" if hasattr(shards, "items") else shards


def parser() -> argparse.ArgumentParser:
    from supportlens.domain.shards import SHARDS

    p = argparse.ArgumentParser(prog="python -m bench.hotkeys", description=__doc__.splitlines()[0])
    p.add_argument("--tickets-per-day", type=int, default=10_000_000)
    p.add_argument("--event-share", type=float, default=0.5, help="share of tickets arriving as single-ticket events (rest: files)")
    p.add_argument("--file-tickets", type=int, default=10_000, help="tickets per uploaded file")
    p.add_argument("--concurrency", type=int, default=64, help="concurrent Enrich invocations")
    p.add_argument("--batch-size", type=int, default=4, help="SQS messages per invocation (template.yaml BatchSize)")
    p.add_argument("--batching-window-s", type=float, default=2.0, help="MaximumBatchingWindowInSeconds (template.yaml)")
    p.add_argument("--tx-ms", type=float, default=25.0, help="time a counter transaction holds its items (stated: AWS p50 ~10-30 ms)")
    p.add_argument("--message-ms", type=float, default=40.0, help="per-message fixed work before the counters (reads, ticket puts, S3)")
    p.add_argument("--ticket-ms", type=float, default=0.5, help="enrichment per ticket (2,000 tickets/s per process)")
    p.add_argument("--window-s", type=float, default=60.0, help="seconds simulated at the end of the busiest hour (3600: all of it)")
    p.add_argument("--shards", type=parse_shards, default=dict(SHARDS),
                   help="write shards of the 'after' run: N (copies = partitions) for every sharded family, or "
                        "days=32,day#=8/4,hours#=8/4 (copies/partitions; default: domain.shards.SHARDS; 'before': none)")
    p.add_argument("--event-batch", type=int, default=1, help="event messages of one invocation sharing a counter transaction")
    p.add_argument("--templates", type=int, default=1500, help="TWCS tweets enriched as templates")
    p.add_argument("--top", type=int, default=8)
    p.add_argument("--seed", type=int, default=7)
    return p


def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench.run import twcs_tickets

    t0 = time.perf_counter()
    tickets = twcs_tickets()
    corpus = measure_corpus(tickets)
    templates = enriched_templates(tickets, args.templates)
    per_chunk = chunk_tickets(templates, tickets)
    prepared = time.perf_counter() - t0
    messages, rate = workload(templates, corpus, args, per_chunk)
    before = simulate(messages, args, 1, 1, grow_sets=True)  # the code before: no shards, example sets ADDed
    runs = {
        "before": before,
        "examples_set_once_no_shards": simulate(messages, args, 1, 1),
        "after": simulate(messages, args, args.shards, args.event_batch),
    }
    if args.event_batch == 1 and args.batch_size > 1:  # would sharing a transaction between events help?
        runs["after_events_batched"] = simulate(messages, args, args.shards, args.batch_size)
    params = {k: (shards_text(v) if k == "shards" else v) for k, v in vars(args).items() if k != "top"}
    return {
        "params": {**params, "day": SIM_DAY, "tickets_per_chunk": per_chunk,
                   "peak_tickets_per_s": round(rate, 1), "window_tickets": sum(len(m.items) for m in messages)},
        "corpus": {k: v for k, v in corpus.items() if k != "hour_profile"}, "hour_profile": corpus["hour_profile"],
        "peak_wru_per_s_is": "per item: the larger of its busiest second served and its window's writes offered per second",
        "limit_wru_per_s": ITEM_LIMIT_WRU_S, "target_wru_per_s": ITEM_LIMIT_WRU_S * TARGET_SHARE,
        **runs,
        "seconds": {"prepare": round(prepared, 1), "simulate": round(time.perf_counter() - t0 - prepared, 1)},
    }


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result = run(args)
    c = result["corpus"]
    print(f"TWCS ({c['tweets']} tweets): top brand {c['top_brand']} {c['top_brand_share']:.1%} of tweets; "
          f"busiest hour {c['busiest_hour_utc']:02d}:00 UTC {c['busiest_hour_vs_average']}x the average hour", file=sys.stderr)
    for name in [k for k in result if isinstance(result[k], dict) and "peak_wru_per_s" in result[k]]:
        r = result[name]
        print(f"{name}: {r['shards']} shard(s): peak {r['peak_wru_per_s']} WRU/s on {r['peak_key']}; "
              f"conflicts {r['conflict_rate']:.2%} of attempts, {r['retries_per_transaction']} retries/tx; "
              f"largest item {r['max_item_bytes']} B", file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
