"""Write-sharded counters on moto: bench/hotkeys.py predicts exactly the items the Enrich handler
writes; legacy unsharded rows and sharded rows sum in the report; example-id sets stay bounded."""

from __future__ import annotations

import json
import uuid

import pytest
from datetime import date, datetime, timedelta, timezone

from bench import hotkeys
from supportlens.adapters import dynamo
from supportlens.domain import shards
from supportlens.domain.enrichment import aggregate, enrich as enrich_items
from supportlens.domain.tickets import Ticket
from supportlens.logic.counters import read_partition, read_partitions
from tests.integration.test_enrich_robustness import batch, event, file_row


def unique_day(run: str) -> str:
    """A day no other test writes (the session's tables are shared)."""
    return (date(1990, 1, 1) + timedelta(days=int(run, 16) % 3_000)).isoformat()  # the past: events from the future are refused


def tickets_for(run: str, day: str, n: int) -> list[dict]:
    texts = ["My parcel never arrived and nobody answers", "This is the worst service ever, I want a refund",
             "Thanks, all sorted now", "Still waiting on my refund after two weeks!!"]
    return [{"ticket_id": f"{run}-{i}", "source": "ticket", "created_at": f"{day}T{9 + i % 3:02d}:{i % 60:02d}:00Z",
             "text": texts[i % len(texts)], "author_id": f"cust-{run}-{i % 4}", "company": f"co-{run}-{i % 2}",
             "channel": "email", **({"first_response_s": 600.0 * (i + 1)} if i % 3 else {})} for i in range(n)]


def written_counter_keys(table: str, day: str) -> set[tuple[str, str]]:
    """Every counter item of `day` in the table, in whichever partition (legacy or shard) it lies."""
    keys = {(part, r["sk"]) for base in (f"day#{day}", f"hours#{day}") for part in shards.partitions(base)
            for r in dynamo.query_pk(table, part)}
    keys |= {(part, r["sk"]) for part in shards.partitions("days") for r in dynamo.query_pk(table, part) if r["sk"] == day}
    return keys


def complaint_pks(items: list[dict]) -> set[str]:
    from supportlens.domain import behaviour

    return {f"complaint#{hour}" for hour, _ in behaviour.complaint_groups(items)}


def predicted(message: hotkeys.Message) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(counter items, behaviour items) the simulation says this message writes."""
    rows = set(hotkeys.message_rows(message, shards.SHARDS))
    # The test's days are decades old: no fingerprint rows (older than 14 days); no customer had a profile before.
    return {k for k in rows if k[0] != "files"}, set(hotkeys.behaviour_keys(message, now=datetime.now(timezone.utc)))


def test_simulation_predicts_the_items_a_stored_chunk_and_event_write(deployment, enrich):
    run = uuid.uuid4().hex[:8]
    day = unique_day(run)
    table = deployment.outputs["AggregatesTableName"]
    tickets = tickets_for(run, day, 12)
    file_id = file_row(deployment, run, len(tickets))
    assert enrich([batch(file_id, 0, tickets)]) == {"batchItemFailures": []}

    items = enrich_items([Ticket.model_validate(t) for t in tickets]).items
    counters, behaviour = predicted(hotkeys.Message(0.0, f"{file_id}#chunk0", items, file_id))
    assert any(pk != shards.base_pk(pk) for pk, _ in counters)  # the prediction is sharded
    assert written_counter_keys(table, day) == counters
    customers = {f"customer#{t['author_id']}" for t in tickets}
    assert any(k[0] in customers for k in behaviour) and {k[0] for k in behaviour} & customers != customers  # quiet ones: no row
    assert complaint_pks(items) and not any(k[0].startswith("complaint#") for k in behaviour)
    written_behaviour = {(pk, r["sk"]) for pk in {k[0] for k in behaviour} | customers | complaint_pks(items)
                         for r in dynamo.query_pk(table, pk) if r["sk"] != "profile"}
    assert written_behaviour == behaviour
    assert ("files", file_id) in hotkeys.message_rows(hotkeys.Message(0.0, f"{file_id}#chunk0", items, file_id), 1)

    # A single-ticket event: its chunk id is the one Enrich derives (parse_message), so is its shard.
    from supportlens.logic.enrich import parse_message

    extra = {**tickets_for(run, day, 13)[12], "company": f"co-{run}-event"}  # rows the chunk did not write
    body = json.dumps({"schema": "supportlens.ticket/v1", "ticket": extra})
    chunk_id = parse_message(body).chunk_id
    assert enrich([event(extra)]) == {"batchItemFailures": []}
    more, _ = predicted(hotkeys.Message(0.0, chunk_id, enrich_items([Ticket.model_validate(extra)]).items))
    assert more - counters
    assert written_counter_keys(table, day) == counters | more


def test_legacy_unsharded_rows_and_sharded_rows_sum_in_the_report(deployment):
    from supportlens.logic.report import gather
    from supportlens.settings import Settings

    run = uuid.uuid4().hex[:8]
    day = unique_day(run)
    o = deployment.outputs
    settings = Settings(data_bucket=o["DataBucketName"], tickets_table=o["TicketsTableName"], files_table=o["FilesTableName"],
                        aggregates_table=o["AggregatesTableName"], issues_table=o["IssuesTableName"], alerts_table=o["AlertsTableName"])
    items = enrich_items([Ticket.model_validate(t) for t in tickets_for(run, day, 30)]).items
    legacy, chunks = items[:10], [items[10:20], items[20:]]
    # Rows as the code before sharding wrote them, then two chunks as Enrich writes them now.
    assert dynamo.apply_increments_once(settings.aggregates_table, f"legacy-{run}", aggregate(legacy).rows)
    for n, chunk in enumerate(chunks):
        assert dynamo.apply_increments_once(settings.aggregates_table, f"{run}#chunk{n}", aggregate(chunk, f"{run}#chunk{n}").rows)
    data = gather(settings, "1d", today=date.fromisoformat(day))
    customers = [i for i in items if i.get("role") != "company"]
    assert data.totals["volume"] == len(customers) == 30
    by_company = {c["company"]: c["volume"] for c in data.by_company}
    assert by_company == {f"co-{run}-0": 15, f"co-{run}-1": 15}
    assert data.totals["negative"] == sum(1 for i in customers if i["sentiment"] == "negative")
    days_index = {r["sk"]: r["volume"] for r in read_partition(settings.aggregates_table, "days")}
    assert days_index[day] == 30
    legacy_rows = dynamo.query_pk(settings.aggregates_table, f"day#{day}")
    shard_rows = [r for p in shards.partitions(f"day#{day}")[1:] for r in dynamo.query_pk(settings.aggregates_table, p)]
    assert legacy_rows and all("#~s" not in r["sk"] for r in legacy_rows)  # both layouts were there, and summed
    assert shard_rows and all("#~s" in r["sk"] for r in shard_rows)


def test_example_sets_are_set_once_per_row_and_counters_still_add(deployment):
    run = uuid.uuid4().hex[:8]
    day = unique_day(run)
    table = deployment.outputs["AggregatesTableName"]
    items = enrich_items([Ticket.model_validate(t) for t in tickets_for(run, day, 24)]).items
    for item in items:  # one hour, one company, all negative: every chunk has examples for the same row
        item.update(hour=9, company=f"co-{run}", sentiment="negative")
    first, second = items[:12], items[12:]
    for n, chunk in enumerate((first, second)):
        assert dynamo.apply_increments_once(table, f"ex-{run}-{n}", aggregate(chunk).rows)  # one (legacy) item for both
    [row] = [r for r in dynamo.query_pk(table, f"hours#{day}") if r["sk"] == f"09#company#co-{run}"]
    assert row["volume"] == 24 and row["negative"] == 24
    first_examples = aggregate(first).rows[(f"hours#{day}", f"09#company#co-{run}")]["ex_negative"]
    assert set(row["ex_negative"]) == first_examples  # the second chunk left the set alone: bounded


@pytest.fixture
def ddb(endpoint):
    from supportlens.adapters import aws as aws_adapter

    aws_adapter.client.cache_clear()
    yield aws_adapter.client("dynamodb")
    aws_adapter.client.cache_clear()


def test_a_backfill_chunk_packs_its_closed_days_and_every_reader_sums_them_once(deployment, enrich, ddb):
    """A chunk over five days: rows of the newest two are ADDed in its transaction, the older three
    go out as one packed item per partition, as the simulation predicts; read_partitions sums both,
    and a redelivery (the marker skips the ADD, the packed items are rewritten) counts nothing twice."""
    run = uuid.uuid4().hex[:8]
    first = date.fromisoformat(unique_day(run))
    days = [(first + timedelta(d)).isoformat() for d in range(5)]
    table = deployment.outputs["AggregatesTableName"]
    tickets = [{**t, "created_at": f"{days[i % 5]}T{9 + i % 3:02d}:{i % 60:02d}:00Z"} for i, t in enumerate(tickets_for(run, days[0], 20))]
    file_id = file_row(deployment, run, len(tickets))
    record = batch(file_id, 0, tickets)

    def crash(**_):  # after the packed items, before the counter transaction: SQS redelivers the chunk
        raise RuntimeError("injected crash")

    ddb.meta.events.register("provide-client-params.dynamodb.TransactWriteItems", crash)
    try:  # the whole batch failed: Powertools raises, Lambda returns the batch to the queue
        with pytest.raises(Exception, match="All records failed"):
            enrich([record])
        assert read_partitions(table, [f"day#{days[0]}"])[f"day#{days[0]}"]  # the packed items were written
    finally:
        ddb.meta.events.unregister("provide-client-params.dynamodb.TransactWriteItems", crash)
    assert enrich([record]) == {"batchItemFailures": []}

    items = enrich_items([Ticket.model_validate(t) for t in tickets]).items
    message = hotkeys.Message(0.0, f"{file_id}#chunk0", items, file_id)
    live = {k for k in hotkeys.message_rows(message, shards.SHARDS) if k[0] != "files"}
    packed = set(hotkeys.packed_keys(message, shards.SHARDS))
    assert packed and {shards.row_day(pk, sk) for pk, sk in live if not pk.startswith("days")} == set(days[3:])
    # The day index's closed days are one packed item in the chunk's shard partition; its live days are ADDed.
    assert len([pk for pk, _ in packed if pk.startswith("days")]) == 1
    assert {shards.row_day(pk, sk) for pk, sk in live if pk.startswith("days")} == set(days[3:])
    written = {(part, r["sk"]) for d in days for base in (f"day#{d}", f"hours#{d}") for part in shards.partitions(base)
               for r in dynamo.query_pk(table, part)}
    ours = {sk for _, sk in packed}
    written |= {(part, r["sk"]) for part in shards.partitions("days") for r in dynamo.query_pk(table, part)
                if r["sk"] in days or r["sk"] in ours}
    assert written == live | packed

    def volumes() -> dict[str, int]:
        rows = read_partitions(table, [f"day#{d}" for d in days])
        return {d: sum(r.get("volume", 0) for r in rows[f"day#{d}"] if r["sk"].startswith(f"company#co-{run}-")) for d in days}

    expected = {d: sum(1 for i in items if i["day"] == d and i.get("role") != "company") for d in days}
    assert volumes() == expected and all(expected.values())
    assert enrich([record]) == {"batchItemFailures": []}  # redelivered
    assert volumes() == expected
    index = {r["sk"]: r["volume"] for r in read_partition(table, "days")}
    assert all(index[d] >= expected[d] for d in days)  # the day index counted every day once
