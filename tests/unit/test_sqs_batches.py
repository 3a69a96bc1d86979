"""SendMessageBatch packing (supportlens.adapters.sqs.batches): at most ten entries and 1 MiB in all."""

from __future__ import annotations

import pytest

from supportlens.adapters.sqs import MAX_BATCH_BYTES, MAX_BATCH_ENTRIES, batches


def test_ten_bodies_of_200_kib_are_split_by_their_sum():
    bodies = ["x" * (200 * 1024)] * 10
    groups = list(batches(bodies))
    assert sum(len(g) for g in groups) == 10 and len(groups) == 2
    assert all(sum(len(b.encode()) for b in g) <= MAX_BATCH_BYTES < 1024 * 1024 for g in groups)


def test_small_bodies_go_ten_at_a_time_in_order():
    bodies = [f"m{i}" for i in range(25)]
    groups = list(batches(bodies))
    assert [len(g) for g in groups] == [MAX_BATCH_ENTRIES, MAX_BATCH_ENTRIES, 5]
    assert [b for g in groups for b in g] == bodies


def test_size_is_counted_in_utf8_bytes():
    bodies = ["\u4e2d" * (100 * 1024)] * 4  # 300 KiB each when encoded
    assert all(sum(len(b.encode()) for b in g) <= MAX_BATCH_BYTES for g in batches(bodies))


def test_a_body_over_the_limit_fails_loudly():
    with pytest.raises(ValueError):
        list(batches(["x" * (MAX_BATCH_BYTES + 1)]))
