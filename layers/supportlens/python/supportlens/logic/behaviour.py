"""Behaviour use case, run by Enrich after a chunk is stored: write per-customer counter rows,
record complaint fingerprints per hour, refresh the profiles of customers whose new messages
carry a signal.

Safe to repeat: a chunk's counter rows (customer, day, chunk) and fingerprint rows (hour,
fingerprint, chunk) are keyed by the chunk and written with BatchWriteItem (a redelivery
rewrites the same rows; one request per 25 rows instead of one UpdateItem each), profiles are
recomputed from them, and index rows are overwritten.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from typing import Any, TypeVar

from ..adapters import dynamo
from ..domain import behaviour
from ..settings import Settings

MAX_ACCOUNTS_PER_FINGERPRINT = 200  # per chunk row: far above any alert threshold; keeps each item small
COMPLAINT_TTL_S = 14 * 24 * 3600
PROFILE_INDEX_TTL_S = 7 * 24 * 3600
WORKERS = 8  # below the client's max_pool_connections (20)
T = TypeVar("T")
R = TypeVar("R")


def record_behaviour(items: list[dict[str, Any]], settings: Settings, chunk_id: str, now: datetime | None = None) -> dict[str, int]:
    """Per-customer daily counters (once per chunk), complaint fingerprints, refreshed profiles."""
    now = now or datetime.now(timezone.utc)
    table = settings.aggregates_table
    # Not part of the chunk's counter transaction: each row is idempotent on its own (its key
    # holds the chunk), which keeps transactions small.
    deltas = behaviour.customer_deltas(items)
    activity = [{"pk": f"active#{day}", "sk": behaviour.chunk_row_sk("top", chunk_id), **row}
                for day, row in sorted(behaviour.activity_rows(deltas).items())]
    dynamo.batch_write(table, [{"pk": f"customer#{customer}", "sk": behaviour.chunk_row_sk(day, chunk_id), **counters}
                               for (customer, day), counters in sorted(deltas.items())] + activity)

    groups = behaviour.complaint_groups(items)
    expires = int(time.time()) + COMPLAINT_TTL_S
    dynamo.batch_write(table, [
        {"pk": f"complaint#{hour}", "sk": behaviour.chunk_row_sk(fp, chunk_id), "expires_at": expires,
         "accounts": sorted(group["accounts"])[:MAX_ACCOUNTS_PER_FINGERPRINT],
         "tickets": sorted(group["tickets"])[:MAX_ACCOUNTS_PER_FINGERPRINT],
         **({"company": group["company"]} if group["company"] else {})}
        for (hour, fp), group in sorted(groups.items())])

    latest: dict[str, str] = {}
    for item in items:
        if behaviour.has_signal(item):
            customer = str(item["author_id"])
            latest[customer] = max(latest.get(customer, ""), item["day"])

    def read(customer_day: tuple[str, str]) -> dict[str, Any] | None:
        customer, day = customer_day
        start = (date.fromisoformat(day) - timedelta(days=behaviour.WINDOW_DAYS - 1)).isoformat()
        return behaviour.profile(customer, dynamo.query_sk_from(table, f"customer#{customer}", start), now)

    profiles = [p for p in _parallel(read, sorted(latest.items())) if p is not None]
    writes = []
    for prof in profiles:
        writes.append(prof)
        writes.append({
            "pk": f"behaviour#{now.date().isoformat()}", "sk": prof["customer_id"], "score": prof["score"],
            "reasons": prof["reasons"], "window_start": prof["window_start"], "window_end": prof["window_end"],
            "updated_at": prof["updated_at"], "expires_at": int(time.time()) + PROFILE_INDEX_TTL_S,
        })
    if writes:
        dynamo.batch_write(table, writes)
    return {"customer_rows": len(deltas), "complaint_fingerprints": len(groups), "profiles": len(profiles)}


def _parallel(fn: Callable[[T], R], args: list[T]) -> list[R]:
    """Independent single-item calls, a few at a time (boto3 clients are thread-safe)."""
    if len(args) <= 1:
        return [fn(a) for a in args]
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(args))) as pool:
        return list(pool.map(fn, args))


def recent_profiles(settings: Settings, today: date, days: int = 2) -> list[dict[str, Any]]:
    """Profiles refreshed in the last `days` UTC days (newest entry per customer)."""
    newest: dict[str, dict[str, Any]] = {}
    for d in range(days - 1, -1, -1):  # oldest first, so newer days overwrite
        for row in dynamo.query_pk(settings.aggregates_table, f"behaviour#{(today - timedelta(d)).isoformat()}"):
            newest[row["sk"]] = {**row, "customer_id": row["sk"]}
    return list(newest.values())


def complaint_buckets(settings: Settings, hours: list[str]) -> dict[str, list[dict[str, Any]]]:
    return {hour: dynamo.query_pk(settings.aggregates_table, f"complaint#{hour}") for hour in hours}
