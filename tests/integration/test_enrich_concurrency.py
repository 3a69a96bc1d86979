"""Two Enrich invocations at once (Lambda runs SQS batches concurrently) on two chunks that share
tickets: every ticket is stored once, counted once, and the lineages split stored/duplicates exactly.

A barrier on the adapters' own client holds both invocations just before they write their tickets,
so both have read "not stored yet" and enriched everything: the race the old read-then-write had."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3

from supportlens.adapters import aws as aws_adapter
from supportlens.adapters import dynamo
from tests.integration.test_enrich_robustness import DAY, batch, counters, file_row, ticket
from tests.integration.test_faults import error_response, ok_response
from supportlens.logic.counters import read_partition  # summed over the write shards
from localcloud.request_log import insert_shape

SHARED = 200


def inserted(params) -> list[dict]:
    """The items a BatchExecuteStatement of INSERTs writes (Enrich's ticket writes), as AttributeValues."""
    items = []
    for statement in params.get("Statements") or []:
        table, names = insert_shape(statement["Statement"])
        items.append({"table": table, **dict(zip(names, statement["Parameters"]))})
    return items


def test_two_concurrent_invocations_on_overlapping_chunks_count_each_ticket_once(deployment, enrich):
    run = uuid.uuid4().hex[:8]
    tickets_table = deployment.outputs["TicketsTableName"]
    first, second = range(0, 50 + SHARED), range(50, 100 + SHARED)  # 250 each, 200 in common, 300 tickets
    files = [file_row(deployment, f"{run}-a", len(first)), file_row(deployment, f"{run}-b", len(second))]
    # A refund claim in each: customers with a signal get daily rows, whose counts are checked below.
    claim = {"text": "My parcel never arrived, I want a refund"}
    records = [batch(files[0], 0, [ticket(run, i, **claim) for i in first]), batch(files[1], 0, [ticket(run, i, **claim) for i in second])]

    aws_adapter.client.cache_clear()
    ddb = aws_adapter.client("dynamodb")
    arrived = threading.Condition()
    chunks: set[str] = set()
    passed: list[str] = []

    def hold(params, **_):  # every ticket insert waits until both invocations are at their ticket writes
        items = [i for i in inserted(params) if i["table"] == tickets_table]
        if not items:
            return
        chunk = items[0]["chunk_id"]["S"]
        with arrived:
            if chunk not in chunks:
                chunks.add(chunk)
                arrived.notify_all()
            assert arrived.wait_for(lambda: len(chunks) == 2, timeout=60)
            if chunk not in passed:
                passed.append(chunk)

    ddb.meta.events.register("provide-client-params.dynamodb.BatchExecuteStatement", hold)
    try:
        with ThreadPoolExecutor(2) as pool:
            responses = list(pool.map(lambda record: enrich([record]), records))
    finally:
        ddb.meta.events.unregister("provide-client-params.dynamodb.BatchExecuteStatement", hold)
        aws_adapter.client.cache_clear()
    assert responses == [{"batchItemFailures": []}] * 2
    assert len(set(passed)) == 2  # both invocations were at their ticket write at the same moment

    ids = [f"{run}-{i}" for i in range(100 + SHARED)]
    stored = dynamo.batch_get(tickets_table, "ticket_id", ids, "ticket_id, chunk_id")
    assert len(stored) == 300
    assert counters(deployment, run)["volume"] == 300
    assert sum(r["volume"] for r in read_partition(deployment.outputs["AggregatesTableName"], "days") if r["sk"] == DAY) >= 300
    lineages = [dynamo.get(deployment.outputs["FilesTableName"], {"file_id": f}) for f in files]
    assert sum(x["tickets_stored"] for x in lineages) == 300 and sum(x["duplicates"] for x in lineages) == SHARED
    for lineage, chunk in zip(lineages, (first, second)):  # each file is complete: stored + duplicates = emitted
        assert lineage["tickets_stored"] + lineage["duplicates"] == len(chunk)
        owned = sum(1 for s in stored.values() if s["chunk_id"] == f"{lineage['file_id']}#chunk0")
        assert owned == lineage["tickets_stored"]  # counted exactly the tickets it stored
    customers = sum(r.get("tickets", 0) for c in range(3)
                    for r in dynamo.query_pk(deployment.outputs["AggregatesTableName"], f"customer#cust-{run}-{c}") if r["sk"] != "profile")
    assert customers == 300


def test_transaction_conflicts_are_retried_on_the_ticket_write_and_the_counters(deployment, enrich):
    """DynamoDB rejects a write to an item another transaction holds (TransactionConflictException on a
    statement of a BatchExecuteStatement, TransactionConflict in a transaction; moto never does): injected
    once on a ticket insert and once on the counters, both are retried."""
    run = uuid.uuid4().hex[:8]
    file_id = file_row(deployment, run, 5)
    aws_adapter.client.cache_clear()
    ddb = aws_adapter.client("dynamodb")
    injected: list[str] = []
    lock = threading.Lock()

    def conflict(request, **_):
        body = json.loads(request.body)
        if run not in request.body.decode():
            return None
        with lock:
            if "TransactItems" in body:
                if any(i.get("Put", {}).get("Item", {}).get("pk") == {"S": "marker"} for i in body["TransactItems"]) and "counters" not in injected:
                    injected.append("counters")
                    reasons = [{"Code": "TransactionConflict" if n == len(body["TransactItems"]) - 1 else "None"}
                               for n in range(len(body["TransactItems"]))]
                    return error_response(400, "TransactionCanceledException", {"CancellationReasons": reasons})
            elif "Statements" in body and "tickets" not in injected:
                # A ticket another transaction holds: that statement's error in a 200 answer, the rest written
                injected.append("tickets")
                first, rest = body["Statements"][0], {**body, "Statements": body["Statements"][1:]}
                written = ddb_plain.batch_execute_statement(**rest)["Responses"] if rest["Statements"] else []
                assert insert_shape(first["Statement"])[0] == deployment.outputs["TicketsTableName"]
                answers = [{"Error": {"Code": "TransactionConflict", "Message": "injected"}}, *written]
                return ok_response({"Responses": answers})
        return None

    ddb_plain = boto3.client("dynamodb")  # no hooks: writes the statements the injected answer says were written
    ddb.meta.events.register("before-send.dynamodb.TransactWriteItems", conflict)
    ddb.meta.events.register("before-send.dynamodb.BatchExecuteStatement", conflict)
    try:
        assert enrich([batch(file_id, 0, [ticket(run, i) for i in range(5)])]) == {"batchItemFailures": []}
    finally:
        ddb.meta.events.unregister("before-send.dynamodb.TransactWriteItems", conflict)
        ddb.meta.events.unregister("before-send.dynamodb.BatchExecuteStatement", conflict)
        aws_adapter.client.cache_clear()
    assert injected == ["tickets", "counters"]
    assert len(dynamo.batch_get(deployment.outputs["TicketsTableName"], "ticket_id", [f"{run}-{i}" for i in range(5)], "ticket_id")) == 5
    assert counters(deployment, run)["volume"] == 5
    assert dynamo.get(deployment.outputs["FilesTableName"], {"file_id": file_id})["tickets_stored"] == 5


def _ticket_calls(deployment, run_chunks):
    """Counts the ticket-table reads (ids asked for) and puts of the enrich calls in `run_chunks()`."""
    aws_adapter.client.cache_clear()
    ddb = aws_adapter.client("dynamodb")
    tickets_table = deployment.outputs["TicketsTableName"]
    asked: list[int] = []
    puts: list[str] = []

    def read(params, **_):
        keys = (params.get("RequestItems") or {}).get(tickets_table, {}).get("Keys") or []
        if keys:
            asked.append(len(keys))

    def put(params, **_):
        puts.extend(i["ticket_id"]["S"] for i in inserted(params) if i["table"] == tickets_table)

    ddb.meta.events.register("provide-client-params.dynamodb.BatchGetItem", read)
    ddb.meta.events.register("provide-client-params.dynamodb.BatchExecuteStatement", put)
    try:
        run_chunks()
    finally:
        ddb.meta.events.unregister("provide-client-params.dynamodb.BatchGetItem", read)
        ddb.meta.events.unregister("provide-client-params.dynamodb.BatchExecuteStatement", put)
        aws_adapter.client.cache_clear()
    return asked, puts


def test_a_new_chunk_reads_only_probes_and_an_overlapping_one_skips_the_stored_tickets(deployment, enrich):
    """The duplicate check before enriching reads 16 evenly spaced tickets of a chunk, and the rest
    only when one of those is stored: a new chunk pays 16 reads, not one per ticket; a re-upload
    (same tickets, another file) is still found and not enriched or written again."""
    from supportlens.logic.enrich import DUPLICATE_PROBES

    run = uuid.uuid4().hex[:8]
    first, again = file_row(deployment, f"{run}-a", 100), file_row(deployment, f"{run}-b", 100)
    tickets = [ticket(run, i) for i in range(100)]
    asked, puts = _ticket_calls(deployment, lambda: enrich([batch(first, 0, tickets)]))
    assert sum(asked) == DUPLICATE_PROBES and len(puts) == 100
    asked, puts = _ticket_calls(deployment, lambda: enrich([batch(again, 0, tickets)]))
    assert sum(asked) == 100 and puts == []  # every ticket read, none enriched or put again
    lineages = [dynamo.get(deployment.outputs["FilesTableName"], {"file_id": f}) for f in (first, again)]
    assert [(x["tickets_stored"], x["duplicates"]) for x in lineages] == [(100, 0), (0, 100)]
    assert counters(deployment, run)["volume"] == 100


def test_a_stored_ticket_the_probes_miss_is_still_counted_once(deployment, enrich):
    """A chunk sharing one ticket (between two probes) with a stored chunk: not read before enriching,
    its conditional put fails, and it is a duplicate in the lineage and the counters, as before."""
    from supportlens.logic.enrich import probe_positions

    run = uuid.uuid4().hex[:8]
    shared = next(p for p in range(100) if p not in probe_positions(100))
    first, second = file_row(deployment, f"{run}-a", 1), file_row(deployment, f"{run}-b", 100)
    enrich([batch(first, 0, [ticket(run, shared)])])
    asked, puts = _ticket_calls(deployment, lambda: enrich([batch(second, 0, [ticket(run, i) for i in range(100)])]))
    # the probes, then the one key whose insert found it taken (its owner read); the shared one was tried and lost
    assert sum(asked) == len(probe_positions(100)) + 1 and len(puts) == 100
    lineage = dynamo.get(deployment.outputs["FilesTableName"], {"file_id": second})
    assert (lineage["tickets_stored"], lineage["duplicates"]) == (99, 1)
    assert counters(deployment, run)["volume"] == 100
    owner = dynamo.batch_get(deployment.outputs["TicketsTableName"], "ticket_id", [f"{run}-{shared}"], "ticket_id, chunk_id")
    assert owner[f"{run}-{shared}"]["chunk_id"] == f"{first}#chunk0"
