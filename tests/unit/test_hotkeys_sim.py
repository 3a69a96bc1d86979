"""bench/hotkeys.py: its item sizes, write units, conflict model, and the bench measurement."""

from __future__ import annotations

import argparse

from bench import hotkeys
from bench import run as bench_run

DAY = "2024-06-01"


def item(i: int, company: str = "acme") -> dict:
    return {"ticket_id": f"t-{i}", "day": DAY, "hour": 10, "company": company, "channel": "email", "sentiment": "negative",
            "author_id": f"c-{i}", "created_at": f"{DAY}T10:00:00+00:00", "first_response_s": 5000.0}


def args(**kw) -> argparse.Namespace:
    base = hotkeys.parser().parse_args([])
    base.window_s = 5.0
    for name, value in kw.items():
        setattr(base, name, value)
    return base


def test_item_sizes_and_write_units_follow_dynamodb_rules():
    it = hotkeys.Item("day#2024-06-01", "company#a")
    assert it.size == len("pk") + 14 + len("sk") + 9
    before, after = it.add({"volume": 1})
    assert after - before == len("volume") + 2  # one digit: 2 bytes
    it.add({"volume": 99})  # 100: still 2 bytes (one significant digit)
    assert it.size == after
    assert hotkeys.wru(1024, transactional=False) == 1 and hotkeys.wru(1025, transactional=False) == 2
    assert hotkeys.wru(1025, transactional=True) == 4  # transactions pay twice
    grows, once = hotkeys.Item("h", "s", grow_sets=True), hotkeys.Item("h", "s")
    for ids in ({"t-1", "t-2"}, {"t-3"}):
        grows.add({"ex_negative": ids})
        once.add({"ex_negative": ids})
    assert grows.values["ex_negative"] == {"t-1", "t-2", "t-3"} and once.values["ex_negative"] == {"t-1", "t-2"}


def test_two_transactions_on_one_item_at_once_conflict_and_one_retries():
    messages = [hotkeys.Message(0.0, f"event#t-{i}#x", [item(i)]) for i in range(2)]
    together = hotkeys.simulate(messages, args(concurrency=2, batch_size=1, batching_window_s=0.0), 1, 1)
    assert together["conflicts"] == 1 and together["attempts"] == together["transactions"] + 1
    assert together["most_conflicted_keys"][0]["conflicts"] == 1
    alone = hotkeys.simulate(messages, args(concurrency=1, batch_size=1, batching_window_s=0.0), 1, 1)
    assert alone["conflicts"] == 0  # one invocation: its transactions never overlap
    other = [hotkeys.Message(0.0, "event#t-1#x", [item(1, "acme")]),
             hotkeys.Message(0.0, "event#t-2#y", [{**item(2, "other"), "role": "company"}])]  # no shared item
    assert hotkeys.simulate(other, args(concurrency=2, batch_size=1, batching_window_s=0.0), 1, 1)["conflicts"] == 0


def test_shards_spread_the_writes_of_one_key():
    messages = [hotkeys.Message(i * 0.001, f"event#t-{i}#x", [item(i)]) for i in range(400)]
    one = hotkeys.simulate(messages, args(concurrency=16, batch_size=1, batching_window_s=0.0), 1, 1)
    many = hotkeys.simulate(messages, args(concurrency=16, batch_size=1, batching_window_s=0.0), 8, 1)
    assert one["conflict_rate"] > many["conflict_rate"]
    assert one["hottest_keys"][0]["writes_per_s"] > many["hottest_keys"][0]["writes_per_s"]


def test_bench_measurement_reports_before_and_after_with_its_parameters():
    result = bench_run.bench_hot_keys(bench_run.Options(quick=True))
    value = result["hot_key_peak_wru_per_s"]
    assert value["before"] > value["limit"] > value["target"] > value["after"] > 0
    assert value["items_over_400kb"]["before"] > 0 and value["items_over_400kb"]["after"] == 0
    assert value["params"]["tickets_per_day"] == 10_000_000 and value["params"]["corpus"]["tweets"] > 0
