"""Counters shared by the aggregator (enrich), the alert rules and the report.

Response times are kept as a fixed histogram per aggregate row so medians can be read
from counters (no ticket scans). The median is interpolated inside its bucket and then held
inside the range that the row's histogram, count and sum leave for it (`median_range`), so it
never contradicts the average (all answers at 60 min: median 60, not the bucket's middle, 90).
"""

from __future__ import annotations

import math
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
    """Median response time (s): interpolated inside its histogram bucket, held inside
    `median_range` (so within the bucket, and never where the row's sum cannot put it); None without data."""
    counts = _hist_counts(row)
    total = sum(counts)
    if not total:
        return None
    half, seen, estimate = total / 2, 0.0, 0.0
    for i, count in enumerate(counts):
        if count and seen + count >= half:
            low = RT_HIST_EDGES[i - 1] if i else 0
            estimate = float(low) if i == len(RT_HIST_EDGES) else low + (RT_HIST_EDGES[i] - low) * (half - seen) / count
            break
        seen += count
    low, high = median_range(row) or (estimate, estimate)
    return min(max(estimate, low), high)


def median_range(row: Mapping[str, float]) -> tuple[float, float] | None:
    """(low, high): where the median (the middle value, or the mean of the two middle values) of the
    responses a row counts can lie, given its histogram and, when the histogram counts every
    response (hist total == rt_count), its rt_sum. The histogram alone bounds it to its bucket; the
    sum bounds it further, e.g. to exactly 3600 s when every response took 60 min. None without data."""
    counts = _hist_counts(row)
    n = int(round(sum(counts)))
    if not n:
        return None
    total = row.get("rt_sum")
    if total is None or abs(float(row.get("rt_count", 0)) - n) > 0.5 or float(total) < 0:
        total = None  # rows from before the histogram, or a partial one: the sum says nothing about these counts
    total = None if total is None else float(total)
    if n % 2:
        return _rank_range(counts, (n + 1) // 2, total)
    return _middle_pair_range(counts, n // 2, total)


def _hist_counts(row: Mapping[str, float]) -> list[float]:
    return [float(row.get(f"rth{i:02d}", 0)) for i in range(len(RT_HIST_EDGES) + 1)]


def _edges(i: int) -> tuple[float, float]:
    return (float(RT_HIST_EDGES[i - 1]) if i else 0.0), (float(RT_HIST_EDGES[i]) if i < len(RT_HIST_EDGES) else math.inf)


def _bucket_of_rank(counts: list[float], rank: int) -> tuple[int, float]:
    """(bucket holding the rank-th smallest response, responses in the buckets below it)."""
    seen = 0.0
    for i, count in enumerate(counts):
        if count and seen + count >= rank:
            return i, seen
        seen += count
    return len(counts) - 1, seen - counts[-1]


def _middle_pair_range(counts: list[float], a: int, total: float | None) -> tuple[float, float]:
    """The range of (x_a + x_a+1) / 2, an even count's median. In one bucket the extremes put both
    at the same value, which are the rank-a upper and rank-(a+1) lower bounds; across two buckets
    (x_a the last of its bucket, x_a+1 the first of the next) the sum is spent where it moves the
    mean most per second: on x_a for the maximum, taken from x_a+1 for the minimum."""
    i, _ = _bucket_of_rank(counts, a)
    j, _ = _bucket_of_rank(counts, a + 1)
    if i == j:
        low, high = _rank_range(counts, a + 1, total)[0], _rank_range(counts, a, total)[1]
        return (low, high) if low <= high else _edges(i)
    (li, hi), (lj, hj) = _edges(i), _edges(j)
    bucket = (li + lj) / 2, (hi + hj) / 2
    if total is None:
        return bucket
    ci, cj = counts[i], counts[j]
    rest_low = sum(c * _edges(k)[0] for k, c in enumerate(counts) if c and k not in (i, j))
    rest_high = sum(c * _edges(k)[1] for k, c in enumerate(counts) if c and k not in (i, j))
    slack = 1e-9 * max(1.0, total)
    # maximum: the others as low as their buckets allow; x_a, costing 1 s of sum per s, first
    budget = total - rest_low - (ci - 1) * li
    xa = min(hi, budget - cj * lj)
    if xa < li - slack:
        return bucket  # counters that disagree with each other: trust the histogram alone
    xb = min(hj, (budget - xa) / cj)
    high = min(bucket[1], (xa + xb) / 2)
    low = bucket[0]
    above = (cj - 1) * hj if cj > 1 else 0.0
    if math.isfinite(rest_high + above):  # minimum: the others as high as allowed; x_a+1 gives way first
        need = total - rest_high - above  # ci * x_a + x_b must reach it
        xb = max(lj, need - ci * hi)
        xa = max(li, (need - xb) / ci)
        if xb > hj + slack or xa > hi + slack:
            return bucket
        low = max(low, (xa + xb) / 2)
    return (low, high) if low <= high + slack else bucket


def _rank_range(counts: list[float], rank: int, total: float | None) -> tuple[float, float]:
    """Where the rank-th smallest response (1-based) can lie: inside its bucket, and where the
    `total` of all responses can be reached with every response inside its own bucket."""
    edges = [_edges(k) for k in range(len(counts))]
    i, seen = _bucket_of_rank(counts, rank)
    low, high = edges[i]
    if total is None:
        return low, high
    at_most, at_least = rank - seen, seen + counts[i] - rank + 1  # of bucket i: ranks up to and from `rank`
    others_low = sum(c * edges[j][0] for j, c in enumerate(counts) if j != i and c)
    others_high = sum(c * edges[j][1] for j, c in enumerate(counts) if j != i and c)
    # Smallest total with this response at m: the others at their bucket's lower edge, those ranked
    # below it at `low`, itself and those above at m. That total may not exceed the row's sum.
    high_by_sum = (total - others_low - (at_most - 1) * low) / at_least
    # Largest total: the others at their upper edge, those above it at `high`, itself and those below at m.
    above = (at_least - 1) * high if at_least > 1 else 0.0
    low_by_sum = (total - others_high - above) / at_most if math.isfinite(others_high + above) else -math.inf
    bounded = max(low, low_by_sum), min(high, high_by_sum)
    slack = 1e-9 * max(1.0, total)  # sums come back from DynamoDB as decimals: float rounding only
    if bounded[0] > bounded[1] + slack:
        return low, high  # counters that disagree with each other: trust the histogram alone
    return bounded[0], max(bounded)


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
