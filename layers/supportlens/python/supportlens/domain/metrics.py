"""Counters shared by the aggregator (enrich), the alert rules and the report.

Response times are kept as a fixed histogram per aggregate row so medians can be read
from counters (no ticket scans). The median is interpolated inside its bucket: exact
to the bucket, and the bucket is stated with it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# Upper edges (seconds) of the response-time histogram buckets rth00..rth10; the last is open.
RT_HIST_EDGES = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800)
# Coarse response buckets (already stored since v1) and the SLA targets they can answer exactly.
RT_BUCKETS = ((900, "rt_lt_15m"), (3600, "rt_lt_1h"), (4 * 3600, "rt_lt_4h"), (24 * 3600, "rt_lt_24h"))
SLA_TARGETS = tuple(limit for limit, _ in RT_BUCKETS)
MAX_EXAMPLES = 3  # example ticket ids kept per windowed counter row and chunk


def hist_counter(seconds: float) -> str:
    for i, edge in enumerate(RT_HIST_EDGES):
        if seconds < edge:
            return f"rth{i:02d}"
    return f"rth{len(RT_HIST_EDGES):02d}"


def rt_bucket(seconds: float) -> str:
    return next((name for limit, name in RT_BUCKETS if seconds < limit), "rt_ge_24h")


def sla_breaches(row: Mapping[str, float], sla_seconds: int) -> int:
    """Responses slower than `sla_seconds` (one of SLA_TARGETS) from a row's coarse buckets."""
    within = sum(float(row.get(name, 0)) for limit, name in RT_BUCKETS if limit <= sla_seconds)
    return int(round(float(row.get("rt_count", 0)) - within))


def median_from_hist(row: Mapping[str, float]) -> float | None:
    """Median response time (s) interpolated inside its histogram bucket; None without data."""
    counts = [float(row.get(f"rth{i:02d}", 0)) for i in range(len(RT_HIST_EDGES) + 1)]
    total = sum(counts)
    if not total:
        return None
    half, seen = total / 2, 0.0
    for i, count in enumerate(counts):
        if count and seen + count >= half:
            low = RT_HIST_EDGES[i - 1] if i else 0
            if i == len(RT_HIST_EDGES):
                return float(low)
            return low + (RT_HIST_EDGES[i] - low) * (half - seen) / count
        seen += count
    return None


def hist_bucket_of(seconds: float) -> tuple[float, float]:
    """(low, high) edges of the bucket holding `seconds`."""
    i = int(hist_counter(seconds)[3:])
    low = RT_HIST_EDGES[i - 1] if i else 0
    return float(low), float(RT_HIST_EDGES[i]) if i < len(RT_HIST_EDGES) else float("inf")


def slug(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(value).lower()).strip("_")[:40] or "unknown"


def dimension_value(value: str) -> str:
    """A region/tier/industry as stored in its counter row's key and shown in reports: trimmed, no
    key separator, bounded, in the case it was written ("NA", "Gold"); reports group spellings
    that differ only in case with `dimension_group`."""
    return re.sub(r"\s+", " ", str(value).replace("#", " ")).strip()[:60] or "unknown"


def dimension_group(value: str) -> str:
    """What spellings of one region/tier/industry share ("Gold", "gold", "GOLD"): grouping is case-blind."""
    return dimension_value(value).casefold()


def display_spelling(volumes: Mapping[str, float]) -> str:
    """The spelling to show for a group: the one most messages were written with; on a tie the one
    that sorts first (upper case before lower: "NA" over "na")."""
    return min(volumes, key=lambda spelling: (-volumes[spelling], spelling))
