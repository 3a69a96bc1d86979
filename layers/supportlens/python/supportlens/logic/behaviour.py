"""Behaviour use case, run by Enrich after a chunk is stored: write per-customer counter rows
(for customers with a signal in the chunk or a profile already), record complaint fingerprints
per hour (of the last 14 days only), refresh the profiles of customers whose new messages carry
a signal.

Safe to repeat: a chunk's counter rows (customer, day, chunk) and fingerprint rows (hour,
chunk: all the chunk's fingerprints of that hour in one item) are keyed by the chunk and written with BatchWriteItem (a redelivery
rewrites the same rows; one request per 25 rows instead of one UpdateItem each), profiles are
recomputed from them, and index rows are overwritten.
"""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta, timezone
from typing import Any

from ..adapters import dynamo
from ..adapters.aws import bounded_groups, parallel_calls
from ..domain import behaviour
from ..settings import Settings

MAX_ACCOUNTS_PER_FINGERPRINT = 200  # per chunk row: far above any alert threshold; keeps each item small
MAX_FINGERPRINTS_PER_ITEM = 500
MAX_PACKED_BYTES = 300_000  # a packed complaint item stays well under DynamoDB's 400 KB
PACKED_PREFIX = "packed"  # sk of a packed item: never a fingerprint (those are 20 hex digits)
COMPLAINT_TTL_S = 14 * 24 * 3600
PROFILE_INDEX_TTL_S = 7 * 24 * 3600


def record_behaviour(items: list[dict[str, Any]], settings: Settings, chunk_id: str, now: datetime | None = None) -> dict[str, int]:
    """Per-customer daily counters (once per chunk), complaint fingerprints, refreshed profiles."""
    now = now or datetime.now(timezone.utc)
    table = settings.aggregates_table
    # Not part of the chunk's counter transaction: each row is idempotent on its own (its key
    # holds the chunk), which keeps transactions small.
    deltas = behaviour.customer_deltas(items)
    activity = [{"pk": f"active#{day}", "sk": behaviour.chunk_row_sk("top", chunk_id), **row}
                for day, row in sorted(behaviour.activity_rows(deltas).items())]
    signalled = behaviour.signalled_customers(items)
    keep = signalled | profiled_customers(table, {customer for customer, _ in deltas} - signalled)
    rows = behaviour.rows_worth_writing(deltas, keep)
    dynamo.batch_write(table, [{"pk": f"customer#{customer}", "sk": behaviour.chunk_row_sk(day, chunk_id), **counters}
                               for (customer, day), counters in sorted(rows.items())] + activity)

    groups = behaviour.recent_groups(behaviour.complaint_groups(items), now, COMPLAINT_TTL_S)
    dynamo.batch_write(table, complaint_rows(groups, chunk_id, int(time.time()) + COMPLAINT_TTL_S))

    latest: dict[str, str] = {}
    for item in items:
        if behaviour.has_signal(item):
            customer = str(item["author_id"])
            latest[customer] = max(latest.get(customer, ""), item["day"])

    def read(customer_day: tuple[str, str]) -> tuple[dict[str, Any] | None, float]:
        customer, day = customer_day
        start = (date.fromisoformat(day) - timedelta(days=behaviour.WINDOW_DAYS - 1)).isoformat()
        rows = dynamo.query_sk_from(table, f"customer#{customer}", start)  # "profile" sorts after every day: read too
        before = next((float(r.get("score") or 0) for r in rows if r.get("sk") == "profile"), 0.0)
        return behaviour.profile(customer, rows, now), before

    refreshed = [(p, before) for p, before in parallel_calls(read, sorted(latest.items())) if p is not None]
    profiles = [p for p, _ in refreshed]
    writes = []
    for prof, before in refreshed:
        writes.append(prof)
        if not prof["score"] and not before:
            # Only a score reaches the alert rule and the report (>= 0.5): a customer who scores 0 and
            # scored 0 before (one refund claim is within its allowance) needs no index row; one whose
            # score fell to 0 gets it, so no stale higher score stays the newest.
            continue
        writes.append({
            "pk": f"behaviour#{now.date().isoformat()}", "sk": prof["customer_id"], "score": prof["score"],
            "reasons": prof["reasons"], "window_start": prof["window_start"], "window_end": prof["window_end"],
            "updated_at": prof["updated_at"], "expires_at": int(time.time()) + PROFILE_INDEX_TTL_S,
        })
    if writes:
        dynamo.batch_write(table, writes)
    return {"customer_rows": len(rows), "complaint_fingerprints": len(groups), "profiles": len(profiles)}


def profiled_customers(table: str, customers: set[str]) -> set[str]:
    """Those of `customers` who have a profile (had a signal before): their quiet messages still count.
    Eventually consistent: a profile written a moment ago by a concurrent chunk may be missed, and then
    that chunk's quiet messages of the customer are not counted (the score counts signals only)."""
    if not customers:
        return set()
    found = dynamo.batch_get_keys(table, [{"pk": f"customer#{c}", "sk": "profile"} for c in sorted(customers)], "pk")
    return {str(item["pk"]).split("#", 1)[1] for item in found}


def recent_profiles(settings: Settings, today: date, days: int = 2) -> list[dict[str, Any]]:
    """Profiles refreshed in the last `days` UTC days (newest entry per customer)."""
    newest: dict[str, dict[str, Any]] = {}
    for d in range(days - 1, -1, -1):  # oldest first, so newer days overwrite
        for row in dynamo.query_pk(settings.aggregates_table, f"behaviour#{(today - timedelta(d)).isoformat()}"):
            newest[row["sk"]] = {**row, "customer_id": row["sk"]}
    return list(newest.values())


def complaint_rows(groups: dict[tuple[str, str], dict[str, Any]], chunk_id: str, expires: int) -> list[dict[str, Any]]:
    """One item per hour and chunk holding all of that chunk's fingerprints of the hour (not one item per
    fingerprint: most fingerprints are seen once, and every item costs at least 1 WRU), split into
    parts well under the 400 KB item limit. The key holds the chunk, so a redelivery rewrites them."""
    by_hour: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for (hour, fp), group in sorted(groups.items()):
        entry = {"accounts": sorted(group["accounts"])[:MAX_ACCOUNTS_PER_FINGERPRINT],
                 "tickets": sorted(group["tickets"])[:MAX_ACCOUNTS_PER_FINGERPRINT],
                 **({"company": group["company"]} if group["company"] else {})}
        by_hour.setdefault(hour, []).append((fp, entry))
    rows = []
    for hour, entries in by_hour.items():
        size = lambda e: len(e[0]) + len(json.dumps(e[1]))  # noqa: E731 - close to DynamoDB's count for strings
        for part, group in enumerate(bounded_groups(entries, size, MAX_FINGERPRINTS_PER_ITEM, MAX_PACKED_BYTES)):
            rows.append({"pk": f"complaint#{hour}", "sk": behaviour.chunk_row_sk(f"{PACKED_PREFIX}{part}", chunk_id),
                         "expires_at": expires, "fingerprints": dict(group)})
    return rows


def complaint_buckets(settings: Settings, hours: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Per hour, rows {sk: fingerprint#chunk, accounts, tickets, company?} (packed items unpacked)."""
    return {hour: unpack_complaints(dynamo.query_pk(settings.aggregates_table, f"complaint#{hour}")) for hour in hours}


def unpack_complaints(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for item in items:
        if "fingerprints" not in item:  # one fingerprint per item, as written before packing
            rows.append(item)
            continue
        chunk = str(item["sk"]).rsplit("#", 1)[-1]
        rows.extend({"pk": item["pk"], "sk": f"{fp}#{chunk}", **entry} for fp, entry in item["fingerprints"].items())
    return rows
