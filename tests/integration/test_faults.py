"""Delivery semantics under faults, through the real handlers on moto (tables from template.yaml).

Faults are injected with botocore's own event system on the very client the adapters use:
- `before-send` answers an attempt with a DynamoDB error response instead of sending it, so
  botocore's retry configuration (adapters/aws.py) is what recovers;
- `provide-client-params` / `after-call` turn part of a BatchWriteItem into UnprocessedItems
  (those items really are not written), or raise to crash one record mid-batch.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import datetime, timezone

import pytest
from botocore.awsrequest import AWSResponse

from supportlens.adapters import aws as aws_adapter
from supportlens.adapters import dynamo
from tests.integration.test_pipeline_handlers import drain, put, sqs_record
from supportlens.logic.counters import read_partition  # summed over the write shards


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: object):
        yield self.body


def error_response(status: int, code: str, extra: dict | None = None) -> AWSResponse:
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": f"injected {code}", **(extra or {})}).encode()
    headers = {"x-amzn-RequestId": str(uuid.uuid4()), "Content-Type": "application/x-amz-json-1.0"}
    return AWSResponse("https://dynamodb.us-east-1.amazonaws.com/", status, headers, _Raw(body))


def ok_response(answer: dict) -> AWSResponse:
    body = json.dumps(answer).encode()
    headers = {"x-amzn-RequestId": str(uuid.uuid4()), "Content-Type": "application/x-amz-json-1.0"}
    return AWSResponse("https://dynamodb.us-east-1.amazonaws.com/", 200, headers, _Raw(body))


@pytest.fixture
def ddb(endpoint):
    """The adapters' own DynamoDB client, fresh, so injected handlers and the adaptive
    rate limiter's state never leak into other tests."""
    aws_adapter.client.cache_clear()
    yield aws_adapter.client("dynamodb")
    aws_adapter.client.cache_clear()


def upload_chunk(aws, deployment, ingest, n: int, company: str = "acme") -> tuple[str, list[str], list[dict]]:
    """A CSV of n tickets through Ingest; returns (run id, ticket ids, TicketsQueue messages)."""
    run = uuid.uuid4().hex[:8]
    rows = [f"{run}-{i},My order {i} never arrived so I want a refund,2024-06-0{1 + i % 5}T10:{i % 60:02d}:00Z,cust-{run}-{i % 7},{company}"
            for i in range(n)]
    body = ("ticket_id,text,created_at,author_id,company\n" + "\n".join(rows) + "\n").encode()
    assert ingest(put(aws, deployment.outputs["DataBucketName"], f"incoming/faults/{run}.csv", body)) == {"batchItemFailures": []}
    messages = drain(aws, deployment.outputs["TicketsQueueUrl"])
    assert len(messages) == 1 and len(json.loads(messages[0]["Body"])["tickets"]) == n
    return run, [f"{run}-{i}" for i in range(n)], messages


def stored(deployment, ticket_ids: list[str]) -> dict[str, dict]:
    return dynamo.batch_get(deployment.outputs["TicketsTableName"], "ticket_id", ticket_ids, "ticket_id, chunk_id")


def customer_tickets(deployment, run: str, customers: int = 7) -> int:
    table = deployment.outputs["AggregatesTableName"]
    return sum(r.get("tickets", 0) for c in range(customers)
               for r in dynamo.query_pk(table, f"customer#cust-{run}-{c}") if r["sk"] != "profile")


# --------------------------------------------------------------------------- botocore retries


@pytest.mark.parametrize(
    "faults",
    [
        [(400, "ProvisionedThroughputExceededException"), (400, "ThrottlingException")],
        [(500, "InternalServerError"), (503, "ServiceUnavailable"), (500, "InternalServerError")],
    ],
    ids=["throttling", "5xx"],
)
def test_throttling_and_5xx_on_batch_write_are_retried_by_botocore(aws, deployment, ingest, enrich, ddb, faults):
    run, ids, messages = upload_chunk(aws, deployment, ingest, 60)  # 60 tickets: three BatchWriteItem calls
    pending = list(faults)
    seen: Counter[str] = Counter()

    def count_call(**_):  # once per API call, however many attempts it takes
        seen["calls"] += 1

    def inject(request, **_):  # once per attempt: the second call fails while faults last
        seen["attempts"] += 1
        if seen["calls"] == 2 and pending:
            seen["injected"] += 1
            return error_response(*pending.pop(0))
        return None

    ddb.meta.events.register("before-parameter-build.dynamodb.BatchWriteItem", count_call)
    ddb.meta.events.register("before-send.dynamodb.BatchWriteItem", inject)
    assert enrich([sqs_record(m["Body"]) for m in messages]) == {"batchItemFailures": []}
    assert seen["injected"] == len(faults)
    assert seen["attempts"] == seen["calls"] + len(faults)  # every injected error was retried by botocore
    assert len(stored(deployment, ids)) == 60
    assert customer_tickets(deployment, run) == 60


def test_exhausted_retries_fail_the_record_and_redelivery_counts_once(aws, deployment, ingest, enrich, ddb):
    """5xx on every attempt of the counters transaction: botocore gives up after max_attempts, the
    record is reported failed (tickets are stored, counters are not), and the redelivery counts once."""
    run, ids, messages = upload_chunk(aws, deployment, ingest, 12)
    attempts = Counter()

    def always_fail(request, **_):
        if run.encode() in request.body and b'"marker"' in request.body:  # this chunk's counters transaction only
            attempts["transact"] += 1
            return error_response(500, "InternalServerError")
        return None

    ddb.meta.events.register("before-send.dynamodb.TransactWriteItems", always_fail)
    record = sqs_record(messages[0]["Body"])
    other_id = f"other-{uuid.uuid4().hex[:8]}"
    other = sqs_record(json.dumps({"schema": "supportlens.ticket/v1", "ticket": {
        "ticket_id": other_id, "text": "Where is my parcel?", "created_at": "2024-06-01T09:00:00Z", "author_id": other_id}}))
    assert enrich([record, other]) == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    # adapters/aws.py asks for max_attempts=10, which botocore counts as retries: 11 attempts in all.
    assert attempts["transact"] == ddb.meta.config.retries["total_max_attempts"] == 11
    assert len(stored(deployment, ids)) == 12 and customer_tickets(deployment, run) == 0
    assert stored(deployment, [other_id])  # the rest of the batch went through

    ddb.meta.events.unregister("before-send.dynamodb.TransactWriteItems", always_fail)
    assert enrich([sqs_record(messages[0]["Body"]), other]) == {"batchItemFailures": []}
    assert enrich([sqs_record(messages[0]["Body"])]) == {"batchItemFailures": []}
    assert customer_tickets(deployment, run) == 12


def test_unprocessed_items_are_retried_until_written(aws, deployment, ingest, enrich, ddb):
    """DynamoDB may accept part of a BatchWriteItem: the rest comes back as UnprocessedItems.
    (Tickets are written with conditional transactions; the customer rows use BatchWriteItem.)"""
    run, ids, messages = upload_chunk(aws, deployment, ingest, 40)
    table = deployment.outputs["AggregatesTableName"]
    held: list[list[dict]] = []
    calls = Counter()

    def accept_half(params, **_):
        calls["calls"] += 1
        requests = params["RequestItems"].get(table)
        if requests and len(requests) > 1 and calls["held"] < 3:  # three partial acceptances in a row
            calls["held"] += 1
            keep = len(requests) // 2
            held.append(requests[keep:])
            params["RequestItems"][table] = requests[:keep]  # the rest is really not written ...

    def report_unprocessed(parsed, **_):
        if held:
            parsed["UnprocessedItems"] = {table: held.pop()}  # ... and is handed back, as DynamoDB does

    ddb.meta.events.register("provide-client-params.dynamodb.BatchWriteItem", accept_half)
    ddb.meta.events.register("after-call.dynamodb.BatchWriteItem", report_unprocessed)
    assert enrich([sqs_record(m["Body"]) for m in messages]) == {"batchItemFailures": []}
    assert calls["held"] == 3 and calls["calls"] >= 2 + 3  # two batches of customer rows plus three retries
    assert len(stored(deployment, ids)) == 40
    assert customer_tickets(deployment, run) == 40


def test_redelivered_chunk_leaves_the_counters_and_lineage_as_after_the_first_delivery(aws, deployment, ingest, enrich):
    """The counters themselves (not only the idempotent behaviour rows): the chunk marker in the
    counter transaction is what keeps a redelivery from adding the chunk again."""
    company = f"co-{uuid.uuid4().hex[:8]}"
    run, ids, messages = upload_chunk(aws, deployment, ingest, 30, company)
    table, files = deployment.outputs["AggregatesTableName"], deployment.outputs["FilesTableName"]

    def counted() -> tuple[int, int, int, int]:
        rows = [r for d in range(1, 6) for r in read_partition(table, f"day#2024-06-0{d}") if r["sk"].startswith(f"company#{company}#")]
        hours = [r for d in range(1, 6) for r in read_partition(table, f"hours#2024-06-0{d}") if r["sk"].endswith(f"#company#{company}")]
        lineage = dynamo.get(files, {"file_id": json.loads(messages[0]["Body"])["file_id"]})
        return (sum(r["volume"] for r in rows), sum(r["volume"] for r in hours), lineage["tickets_stored"], lineage.get("duplicates", 0))

    assert enrich([sqs_record(messages[0]["Body"])]) == {"batchItemFailures": []}
    assert counted() == (30, 30, 30, 0)
    for _ in range(2):  # SQS delivers at least once: the same chunk again, twice
        assert enrich([sqs_record(messages[0]["Body"])]) == {"batchItemFailures": []}
        assert counted() == (30, 30, 30, 0)
    assert customer_tickets(deployment, run) == 30


# --------------------------------------------------------------------------- crash mid-batch


def ticket_event(ticket_id: str, author: str) -> dict:
    ticket = {"ticket_id": ticket_id, "source": "ticket", "author_id": author, "company": "acme",
              "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "text": "I will sue you unless I get a refund for the broken heater"}
    return sqs_record(json.dumps({"schema": "supportlens.ticket/v1", "ticket": ticket}))


def _mentions(params: dict, needle: str) -> bool:
    return needle in json.dumps(params, default=str)


@pytest.mark.parametrize(
    "operation,step",
    [("BatchExecuteStatement", "tickets"), ("TransactWriteItems", "counters"), ("BatchWriteItem", "customer"), ("Query", "profile")],
    ids=["before-tickets-stored", "after-tickets-before-counters", "before-customer-counters", "after-counters-before-profile"],
)
def test_crash_on_record_two_of_three_fails_only_that_record(deployment, enrich, ddb, operation, step):
    run = uuid.uuid4().hex[:8]
    ids = [f"crash-{run}-{i}" for i in range(3)]
    customers = [f"cust-{run}-{i}" for i in range(3)]
    records = [ticket_event(t, c) for t, c in zip(ids, customers)]
    # Record 2's own call: its ticket id (tickets write), its chunk marker (counters), its customer's
    # daily row (customer counters) or its customer's window (profile).
    needle = {"tickets": f'"{ids[1]}"', "counters": f'"sk": {{"S": "event#{ids[1]}#', "customer": f'"customer#{customers[1]}"',
              "profile": f"customer#{customers[1]}"}[step]
    crashed = Counter()

    def crash(params, **_):
        if not crashed["n"] and _mentions(params, needle):
            crashed["n"] += 1
            raise RuntimeError("injected crash while processing record 2")

    ddb.meta.events.register(f"provide-client-params.dynamodb.{operation}", crash)
    assert enrich(records) == {"batchItemFailures": [{"itemIdentifier": records[1]["messageId"]}]}
    assert crashed["n"] == 1
    table = deployment.outputs["AggregatesTableName"]

    def counts() -> dict[str, int]:
        return {c: sum(r.get("tickets", 0) for r in dynamo.query_pk(table, f"customer#{c}") if r["sk"] != "profile")
                for c in customers}

    assert set(stored(deployment, [ids[0], ids[2]])) == {ids[0], ids[2]}
    assert counts()[customers[0]] == counts()[customers[2]] == 1
    assert counts()[customers[1]] == (1 if step == "profile" else 0)  # counted only if the crash came after

    # The queue redelivers the whole batch (SQS returns the failed record; a retry may repeat all).
    assert enrich(records) == {"batchItemFailures": []}
    assert enrich(records) == {"batchItemFailures": []}
    assert set(stored(deployment, ids)) == set(ids)
    assert counts() == dict.fromkeys(customers, 1)
    for c in customers:
        profile = dynamo.get(table, {"pk": f"customer#{c}", "sk": "profile"})
        assert profile["counts"]["tickets"] == 1 and profile["counts"]["escalations"] == 1
