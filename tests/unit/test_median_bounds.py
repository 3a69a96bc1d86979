"""The median first response read from counters (count, sum, histogram) never leaves the range those
counters allow: the cold trial's report said "Avg 60 min, Median 90 min" when every answer took 60 min."""

from __future__ import annotations

import statistics
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supportlens.domain import metrics
from supportlens.domain.enrichment import aggregate
from supportlens.domain.report import render, summarise

EDGES = (0,) + metrics.RT_HIST_EDGES


def counters(times: list[float]) -> dict[str, float]:
    row: dict[str, float] = {"rt_count": len(times), "rt_sum": float(sum(times))}
    for t in times:
        row[metrics.hist_counter(t)] = row.get(metrics.hist_counter(t), 0) + 1
    return row


def test_report_of_answers_that_all_took_60_minutes_says_median_60():
    items = [{"day": "2024-06-03", "hour": 9, "sentiment": "neutral", "company": "acme", "channel": "email",
              "first_response_s": 3600.0, "agent_id": "A-1"} for _ in range(7)]
    rows = [{"pk": pk, "sk": sk, **c} for (pk, sk), c in aggregate(items).rows.items() if pk.startswith("day#")]
    data = summarise({"2024-06-03": rows}, "daily", date(2024, 6, 3), date(2024, 6, 3), None)
    _, _, text, _ = render(data)
    assert "Avg first response: 60 min" in text and "Median first response: 60 min" in text  # was 90 (mid-bucket)
    assert data.by_company[0]["median_response_min"] == 60.0 and data.agents[0]["median_response_min"] == 60.0


def test_the_sum_bounds_the_median_inside_its_bucket():
    assert metrics.median_range(counters([3600] * 4)) == (3600.0, 3600.0)
    # 3 answers in [3600, 7200) summing to 11,000 s: the middle one is at most (11000 - 3600) / 2
    low, high = metrics.median_range(counters([3600, 3700, 3700]))
    assert low == 3600 and high == 3700
    assert metrics.median_from_hist(counters([3600, 3700, 3700])) == 3700  # the bucket's middle (5400) is impossible
    # the open bucket (48 h and more) has no upper edge: only the sum gives one
    assert metrics.median_range(counters([200000] * 3)) == (172800.0, (600000 - 172800) / 2)


def test_counters_without_a_matching_sum_fall_back_to_the_bucket():
    row = counters([3600] * 4)
    old = {k: v for k, v in row.items() if k != "rt_sum"}
    assert metrics.median_range(old) == (3600.0, 7200.0) and metrics.median_from_hist(old) == 5400.0
    partial = {**row, "rt_count": 9}  # rows counted before the histogram existed: the sum covers other answers too
    assert metrics.median_range(partial) == (3600.0, 7200.0)
    assert metrics.median_range({}) is None and metrics.median_from_hist({}) is None


times_s = st.lists(st.one_of(st.floats(0, 400_000, allow_nan=False), st.sampled_from([float(e) for e in EDGES])),
                   min_size=1, max_size=40)


@settings(max_examples=400, deadline=None)
@given(times=times_s)
def test_true_median_and_estimate_lie_in_the_range_and_the_range_in_the_bucket(times):
    row = counters(times)
    low, high = metrics.median_range(row)
    estimate, true = metrics.median_from_hist(row), statistics.median(times)
    slack = 1e-6 * max(1.0, sum(times))
    assert low - slack <= true <= high + slack  # never narrower than the data allows
    assert low <= estimate <= high
    assert metrics.hist_bucket_of(statistics.median_low(times))[0] <= estimate + slack
    assert estimate <= metrics.hist_bucket_of(statistics.median_high(times))[1] + slack
    if len(set(times)) == 1 and times[0] in EDGES:
        assert abs(estimate - times[0]) <= slack  # all at a bucket's lower edge (60 min): nothing else adds up


@settings(max_examples=150, deadline=None)
@given(times=st.lists(st.one_of(st.floats(0, 160_000, allow_nan=False), st.sampled_from([float(e) for e in EDGES[:-1]])),
                      min_size=1, max_size=12))
def test_the_range_is_what_a_linear_program_over_the_sorted_responses_gives(times):
    """Not merely safe but tight: the extremes of the median over every sorted list of responses with
    these buckets and this sum (responses in the open bucket are left out: the LP needs finite edges)."""
    optimize = pytest.importorskip("scipy.optimize")
    times = sorted(times)
    n, bucket = len(times), [int(metrics.hist_counter(t)[3:]) for t in times]
    bounds = [(EDGES[b], EDGES[b + 1]) for b in bucket]
    order = [[1 if k == i else -1 if k == i + 1 else 0 for k in range(n)] for i in range(n - 1)]
    objective = [0.0] * n
    for k in ((n // 2,) if n % 2 else (n // 2 - 1, n // 2)):
        objective[k] = 1.0 / (1 if n % 2 else 2)
    extremes = [sign * optimize.linprog([sign * c for c in objective], A_ub=order or None, b_ub=[0] * (n - 1) or None,
                                        A_eq=[[1] * n], b_eq=[sum(times)], bounds=bounds).fun for sign in (1, -1)]
    low, high = metrics.median_range(counters(times))
    assert low == pytest.approx(extremes[0], abs=1e-3) and high == pytest.approx(extremes[1], abs=1e-3)
