"""Write-sharding of the hot counter partitions (domain/shards.py) and merging them when read."""

from __future__ import annotations

import json

from collections import Counter

from supportlens.domain import shards
from supportlens.domain.enrichment import aggregate

DAY = "2024-06-01"


def item(i: int, **fields) -> dict:
    return {"ticket_id": f"t-{i}", "day": DAY, "hour": 10, "company": "acme", "channel": "email",
            "sentiment": "negative" if i % 2 else "neutral", "author_id": f"c-{i % 3}", "first_response_s": 4000.0 + i,
            "created_at": f"{DAY}T10:00:00+00:00", **fields}


def test_shard_of_is_stable_and_spreads_chunks_evenly():
    assert shards.shard_of("file#etag#chunk7", 8) == shards.shard_of("file#etag#chunk7", 8)  # a redelivery: same shard
    # A fixed value: the hash must not change between releases (rows already written stay where they are).
    assert (shards.shard_of("incoming/a.csv#etag#chunk0", 8), shards.shard_of("incoming/a.csv#etag#chunk0", 32)) == (7, 7)
    counts = Counter(shards.shard_of(f"event#t-{i}#abc", 8) for i in range(8000))
    assert set(counts) == set(range(8))
    assert all(850 < n < 1150 for n in counts.values()), counts


def test_shard_of_is_sha256_not_python_hash():
    import hashlib

    chunk = "incoming/a.csv#etag#chunk0"
    assert shards.shard_of(chunk, 32) == int(hashlib.sha256(chunk.encode()).hexdigest()[:8], 16) % 32


def test_only_the_hot_items_are_sharded_over_copies_and_partitions():
    chunk = "f#chunk3"
    day = shards.SHARDS["day#"]
    assert (day.items, day.partitions) == (8, 4)
    copy = shards.shard_of(chunk, day.items)
    sk = "company#acme#channel#email"
    assert shards.sharded_key(f"day#{DAY}", sk, chunk) == (f"day#{DAY}#s{copy % 4}", f"{sk}#~s{copy}")
    assert shards.sharded_key(f"hours#{DAY}", "10#company#acme", chunk) == (f"hours#{DAY}#s{copy % 4}", f"10#company#acme#~s{copy}")
    # The day index: one copy per partition, so its sort key stays the day.
    assert shards.sharded_key("days", DAY, chunk) == (f"days#s{shards.shard_of(chunk, 32)}", DAY)
    for pk in ("customer#c-1", f"active#{DAY}", "marker", "dayz", f"behaviour#{DAY}"):
        assert shards.sharded_key(pk, "x", chunk) == (pk, "x")
    assert shards.sharded_key(f"day#{DAY}", sk, chunk, 1) == (f"day#{DAY}", sk)  # one shard: the legacy layout
    assert shards.sharded_key(f"day#{DAY}", sk, chunk, shards.Layout(8, 1)) == (f"day#{DAY}", f"{sk}#~s{copy}")


def test_partitions_list_the_legacy_partition_then_every_pk_shard_and_base_keys_invert():
    parts = shards.partitions("days")
    assert parts[0] == "days" and len(parts) == 33
    assert {shards.base_pk(p) for p in parts} == {"days"}
    assert shards.partitions(f"day#{DAY}") == [f"day#{DAY}"] + [f"day#{DAY}#s{i}" for i in range(4)]
    assert shards.partitions("customer#c-1") == ["customer#c-1"]
    assert shards.base_pk("customer#c-1#s3") == "customer#c-1#s3"  # not a sharded partition: left alone
    assert shards.base_pk(f"hours#{DAY}#s2") == f"hours#{DAY}"
    assert shards.base_sk(f"day#{DAY}#s1", "company#a#channel#b#~s5") == "company#a#channel#b"
    assert shards.base_sk("customer#c-1", "2024-06-01#~s5") == "2024-06-01#~s5"


def test_merge_sums_a_legacy_row_and_shard_rows_of_one_sort_key():
    sk = "company#acme#channel#email"
    rows = [
        {"pk": f"day#{DAY}", "sk": sk, "volume": 3, "negative": 1, "rt_sum": 10.5},  # written before sharding
        {"pk": f"day#{DAY}#s2", "sk": f"{sk}#~s2", "volume": 2, "h10": 2, "rt_sum": 1.5},
        {"pk": f"day#{DAY}#s3", "sk": f"{sk}#~s7", "volume": 5, "negative": 4},
        {"pk": f"day#{DAY}#s3", "sk": "dim#region#eu#~s7", "volume": 1},
    ]
    merged = {r["sk"]: r for r in shards.merge_rows(rows)}
    assert merged[sk] == {"pk": f"day#{DAY}", "sk": sk, "volume": 10, "negative": 5, "rt_sum": 12.0, "h10": 2}
    assert merged["dim#region#eu"] == {"pk": f"day#{DAY}", "sk": "dim#region#eu", "volume": 1}
    days = shards.merge_rows([{"pk": "days", "sk": DAY, "volume": 4}, {"pk": "days#s3", "sk": DAY, "volume": 6},
                              {"pk": "days#s9", "sk": "2024-06-02", "volume": 1}])
    assert days == [{"pk": "days", "sk": DAY, "volume": 10}, {"pk": "days", "sk": "2024-06-02", "volume": 1}]


def test_merge_unites_example_sets():
    rows = [{"pk": f"hours#{DAY}", "sk": "10#company#acme", "volume": 1, "ex_negative": ["t-1", "t-2"]},
            {"pk": f"hours#{DAY}#s1", "sk": "10#company#acme#~s5", "volume": 1, "ex_negative": ["t-2", "t-3"], "ex_abusive": ["t-3"]}]
    [row] = shards.merge_rows(rows)
    assert row["ex_negative"] == ["t-1", "t-2", "t-3"] and row["ex_abusive"] == ["t-3"] and row["volume"] == 2


def test_aggregate_with_a_chunk_id_moves_only_the_hot_rows_and_keeps_every_counter():
    items = [item(i) for i in range(20)] + [item(99, role="company")]
    plain = aggregate(items).rows
    sharded = aggregate(items, "file#etag#chunk4").rows
    assert len(sharded) == len(plain) and sharded.keys() != plain.keys()
    assert {shards.base_pk(pk) for pk, _ in sharded} == {pk for pk, _ in plain}
    back = {(shards.base_pk(pk), shards.base_sk(pk, sk)): counters for (pk, sk), counters in sharded.items()}
    assert back == plain
    assert aggregate(items, "file#etag#chunk4").rows.keys() == sharded.keys()  # redelivery: the same items


def test_chunks_spread_over_the_shards_and_sum_back_to_the_unsharded_totals():
    items = [item(i) for i in range(400)]
    chunks = [items[i:i + 10] for i in range(0, 400, 10)]
    rows = []
    for n, chunk in enumerate(chunks):
        for (pk, sk), counters in aggregate(chunk, f"f#chunk{n}").rows.items():
            rows.append({"pk": pk, "sk": sk, **{k: v for k, v in counters.items() if not isinstance(v, set)}})
    used = {(r["pk"], r["sk"]) for r in rows if shards.base_pk(r["pk"]) == f"day#{DAY}" and r["sk"].startswith("company#acme#")}
    assert len(used) > 4 and len({pk for pk, _ in used}) == 4  # 40 chunks land on most of the 8 copies, all 4 partitions
    merged = {r["sk"]: r for r in shards.merge_rows(r for r in rows if shards.base_pk(r["pk"]) == f"day#{DAY}")}
    whole = aggregate(items).rows[(f"day#{DAY}", "company#acme#channel#email")]
    assert {k: merged["company#acme#channel#email"][k] for k in whole} == dict(whole)


def test_closed_days_are_split_off_by_the_rows_own_newest_day():
    rows = {("day#2024-03-10#s1", "company#a#channel#email#~s5"): {"volume": 1},
            ("hours#2024-03-09#s1", "10#company#a#~s5"): {"volume": 1},
            ("days#s3", "2024-03-08"): {"volume": 2},
            ("day#2024-03-08#s1", "company#a#channel#email#~s5"): {"volume": 2}}
    live, closed = shards.split_closed(rows)
    # Newest day 03-10: it and 03-09 are ADDed; 03-08 is packed, its day-index row too.
    assert set(live) == {("day#2024-03-10#s1", "company#a#channel#email#~s5"), ("hours#2024-03-09#s1", "10#company#a#~s5")}
    assert set(closed) == {("day#2024-03-08#s1", "company#a#channel#email#~s5"), ("days#s3", "2024-03-08")}
    assert shards.split_closed({("marker", "x"): {}}) == ({("marker", "x"): {}}, {})


def test_packed_items_are_one_per_partition_keyed_by_the_chunk_and_merge_like_rows():
    rows = {("day#2024-03-08#s1", "company#a#channel#email#~s5"): {"volume": 2, "ex_negative": {"t1"}},
            ("day#2024-03-08#s1", "company#b#channel#email#~s5"): {"volume": 1},
            ("days#s3", "2024-03-08"): {"volume": 3}}
    items = shards.packed_items(rows, "file#chunk0")
    assert [i["pk"] for i in items] == ["day#2024-03-08#s1", "days#s3"]
    assert all(i["sk"].startswith(shards.PACKED) for i in items)
    assert items == shards.packed_items(dict(reversed(list(rows.items()))), "file#chunk0")  # a redelivery: the same items
    assert {i["sk"] for i in shards.packed_items(rows, "file#chunk1")}.isdisjoint({i["sk"] for i in items})
    legacy = {"pk": "day#2024-03-08", "sk": "company#a#channel#email", "volume": 5, "ex_negative": ["t0"]}
    merged = {r["sk"]: r for r in shards.merge_rows([legacy, items[0]])}
    assert merged["company#a#channel#email"]["volume"] == 7 and merged["company#a#channel#email"]["ex_negative"] == ["t0", "t1"]
    assert merged["company#b#channel#email"]["volume"] == 1 and merged["company#b#channel#email"]["pk"] == "day#2024-03-08"
    assert shards.merge_rows([items[1]]) == [{"pk": "days", "sk": "2024-03-08", "volume": 3}]


def test_a_packed_item_is_split_in_parts_under_the_size_limit():
    rows = {("hours#2024-03-08#s0", f"10#company#c{i:04d}"): {"volume": 1, "negative": 1} for i in range(300)}
    parts = shards.packed_items(rows, "c", max_bytes=4_000)
    assert len(parts) > 1 and len({p["sk"] for p in parts}) == len(parts)
    assert sum(len(shards.unpack_rows(p["rows_z"])) for p in parts) == 300
    assert all(len(json.dumps(shards.unpack_rows(p["rows_z"]))) <= 4_000 for p in parts)


def test_packed_rows_are_compressed_and_items_written_before_still_read():
    """A backfill chunk's rows of one day, compressed: under the KB a map of them would exceed, read
    back exactly (whole numbers as ints, example sets as lists); items with a `rows` map still merge."""
    from localcloud.request_log import item_size  # DynamoDB's size rules, as the cost bench counts them

    from supportlens.adapters.dynamo import serialize

    stored_size = lambda item: item_size(serialize(item))  # noqa: E731

    rows = {("hours#2024-03-08#s0", f"{h:02d}#company#company-{c}#~s4"): {"volume": 2, "negative": 1, "rt_count": 1,
                                                                         "rt_sum": 1234.5, "ex_negative": {f"twcs:{h}{c}"}}
            for h in range(6) for c in range(4)}
    [item] = shards.packed_items(rows, "file#chunk0")
    as_map = {"pk": item["pk"], "sk": item["sk"], "rows": shards.unpack_rows(item["rows_z"])}
    assert stored_size(item) <= 1024 < stored_size(as_map)
    back = shards.unpack_rows(item["rows_z"])
    assert back["00#company#company-0#~s4"] == {"volume": 2, "negative": 1, "rt_count": 1, "rt_sum": 1234.5, "ex_negative": ["twcs:00"]}
    assert type(back["00#company#company-0#~s4"]["volume"]) is int
    assert shards.merge_rows([item]) == shards.merge_rows([as_map])
