"""Ingest -> Enrich -> Alerts -> Cluster -> Report handlers in-process against moto,
with every resource created from template.yaml."""

from __future__ import annotations

import gzip
import json
import uuid
from urllib.parse import quote_plus

import pytest

from tests.conftest import SAMPLE
from supportlens.logic.counters import read_partition  # summed over the write shards


def s3_event_message(bucket: str, key: str, etag: str, size: int) -> dict:
    body = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": bucket},
            "object": {"key": quote_plus(key), "eTag": etag, "size": size}}}]}
    return sqs_record(json.dumps(body))


def sqs_record(body: str) -> dict:
    return {"messageId": str(uuid.uuid4()), "receiptHandle": "rh", "body": body, "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"}


def put(aws, bucket: str, key: str, body: bytes) -> dict:
    etag = aws("s3").put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
    return s3_event_message(bucket, key, etag, len(body))


def drain(aws, queue_url: str) -> list[dict]:
    sqs = aws("sqs")
    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return bodies
        for m in got:
            bodies.append(m)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def lineage(aws, deployment, key: str) -> dict:
    from supportlens.adapters import dynamo

    items = [i for i in dynamo.scan_all(deployment.outputs["FilesTableName"]) if i["key"] == key]
    assert len(items) == 1, items
    return items[0]


def test_upload_to_stored_tickets_with_exact_lineage(aws, deployment, ingest, enrich):
    bucket, queue = deployment.outputs["DataBucketName"], deployment.outputs["TicketsQueueUrl"]
    key = "incoming/twcs/run one/sample.csv.gz"  # spaces: notification keys arrive URL-encoded
    raw = SAMPLE.read_bytes()
    from supportlens.adapters import dynamo

    volume_before = sum(r["volume"] for r in read_partition(deployment.outputs["AggregatesTableName"], "days"))  # other tests' tickets
    result = ingest(put(aws, bucket, key, gzip.compress(raw)))
    assert result == {"batchItemFailures": []}
    messages = drain(aws, queue)
    assert 1 < len(messages) < 40  # tickets are packed many per message
    record = lineage(aws, deployment, key)
    assert record["status"] == "emitted" and record["source"] == "twcs"
    assert record["rows_read"] == 1939 == record["tickets_emitted"] + record["rows_quarantined"]

    response = enrich([sqs_record(m["Body"]) for m in messages[:10]])
    assert response == {"batchItemFailures": []}
    if len(messages) > 10:
        enrich([sqs_record(m["Body"]) for m in messages[10:]])
    record = lineage(aws, deployment, key)
    assert record["tickets_stored"] == record["tickets_emitted"]

    from supportlens.adapters import dynamo

    ticket = dynamo.get(deployment.outputs["TicketsTableName"], {"ticket_id": "twcs:8"})
    assert ticket["author_id"] == "115712" and ticket["role"] == "customer"
    assert ticket["sentiment"] == "negative"  # "is the worst customer service"
    assert ticket["conversation_id"].startswith("twcs:")
    assert ticket["first_response_s"] > 0 and ticket["responder"] == "sprintcare"

    # Redelivering every message changes nothing: no duplicate counts anywhere.
    days_before = {r["sk"]: r["volume"] for r in read_partition(deployment.outputs["AggregatesTableName"], "days")}
    for start in range(0, len(messages), 10):
        enrich([sqs_record(m["Body"]) for m in messages[start:start + 10]])
    days_after = {r["sk"]: r["volume"] for r in read_partition(deployment.outputs["AggregatesTableName"], "days")}
    assert days_after == days_before
    assert sum(days_before.values()) - volume_before == 1068  # customer tweets in the sample
    assert lineage(aws, deployment, key)["tickets_stored"] == 1939


def test_duplicate_notification_and_same_etag_do_nothing(aws, deployment, ingest):
    bucket, queue = deployment.outputs["DataBucketName"], deployment.outputs["TicketsQueueUrl"]
    body = b"ticket_id,text,created_at\nt-dup-1,my order never came,2024-05-01T10:00:00Z\n"
    event = put(aws, bucket, "incoming/dup.csv", body)
    ingest(event)
    assert len(drain(aws, queue)) == 1
    ingest(event)  # redelivered notification
    ingest(put(aws, bucket, "incoming/dup.csv", body))  # re-upload, same content -> same ETag
    assert drain(aws, queue) == []


@pytest.mark.parametrize(
    "name, body, reason",
    [
        ("empty.csv", b"", "empty"),
        ("header-only.csv", b"ticket_id,text,created_at\n", "header row but no data"),
        ("binary.csv", b"\x00\x01\x02\x03" * 100, "binary"),
        ("corrupt.csv.gz", b"\x1f\x8b\x08\x00garbage-not-deflate" * 10, "gzip"),
        ("unknown.csv", b"foo,bar\n1,2\n", "unknown format"),
    ],
)
def test_unreadable_files_are_quarantined_with_a_reason(aws, deployment, ingest, name, body, reason):
    bucket = deployment.outputs["DataBucketName"]
    key = f"incoming/bad/{name}"
    assert ingest(put(aws, bucket, key, body)) == {"batchItemFailures": []}
    record = lineage(aws, deployment, key)
    assert record["status"] == "rejected"
    assert reason in record["reason"]
    assert record.get("rows_read", 0) == record.get("tickets_emitted", 0) + record.get("rows_quarantined", 0)
    text = aws("s3").get_object(Bucket=bucket, Key=record["quarantine_key"])["Body"].read().decode()
    assert reason in json.loads(text.splitlines()[0])["reason"]


def test_bad_rows_are_quarantined_and_the_rest_stored(aws, deployment, ingest):
    bucket, queue = deployment.outputs["DataBucketName"], deployment.outputs["TicketsQueueUrl"]
    body = (b"ticket_id,text,created_at\n"
            b"ok-1,parcel lost again,2024-05-01T10:00:00Z\n"
            b"bad-1,,2024-05-01T10:00:00Z\n"
            b"bad-2,late delivery,not a date\n"
            b"ok-2,refund please,2024-05-02T11:00:00+02:00\n")
    key = "incoming/rows.csv"
    ingest(put(aws, bucket, key, body))
    record = lineage(aws, deployment, key)
    assert (record["rows_read"], record["tickets_emitted"], record["rows_quarantined"]) == (4, 2, 2)
    lines = aws("s3").get_object(Bucket=bucket, Key=record["quarantine_key"])["Body"].read().decode().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["row"] for r in rows] == [2, 3]
    assert "text" in rows[0]["reason"] and "date" in rows[1]["reason"]
    assert rows[1]["raw"].startswith("bad-2,late delivery")
    sent = drain(aws, queue)
    assert sum(len(json.loads(m["Body"])["tickets"]) for m in sent) == 2


def test_s3_test_event_is_skipped(ingest):
    assert ingest(sqs_record(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"}))) == {"batchItemFailures": []}


def test_partial_batch_failure_reports_only_the_poison_record(aws, deployment, enrich):
    good = {"schema": "supportlens.ticket/v1", "ticket": {"ticket_id": "evt-good-1", "source": "ticket",
            "text": "Where is my refund? I was promised it last week.", "created_at": "2024-06-01T09:00:00Z", "company": "acme"}}
    poison = sqs_record(json.dumps({"schema": "supportlens.ticket-batch/v99", "tickets": []}))
    response = enrich([sqs_record(json.dumps(good)), poison])
    assert response == {"batchItemFailures": [{"itemIdentifier": poison["messageId"]}]}
    from supportlens.adapters import dynamo

    assert dynamo.get(deployment.outputs["TicketsTableName"], {"ticket_id": "evt-good-1"})["company"] == "acme"


def test_invalid_ticket_event_is_quarantined_not_retried(aws, deployment, enrich):
    bad = {"schema": "supportlens.ticket/v1", "ticket": {"ticket_id": "evt-bad-1", "text": "", "created_at": "2024-06-01T09:00:00Z"}}
    assert enrich([sqs_record(json.dumps(bad)), sqs_record("not json at all")]) == {"batchItemFailures": []}
    keys = [o["Key"] for o in aws("s3").list_objects_v2(Bucket=deployment.outputs["DataBucketName"], Prefix="quarantine/events/").get("Contents", [])]
    bodies = [aws("s3").get_object(Bucket=deployment.outputs["DataBucketName"], Key=k)["Body"].read().decode() for k in keys]
    assert any("text" in b and "evt-bad-1" in b for b in bodies)
    assert any("not JSON" in b for b in bodies)


def test_pii_is_masked_before_storage(aws, deployment, enrich):
    event = {"schema": "supportlens.ticket/v1", "ticket": {"ticket_id": "evt-pii-1", "created_at": "2024-06-01T09:00:00Z",
             "text": "Email me at jane.doe@example.com or call +1 415 555 0134 about card 4111 1111 1111 1111"}}
    enrich([sqs_record(json.dumps(event))])
    from supportlens.adapters import dynamo

    stored = json.dumps(dynamo.get(deployment.outputs["TicketsTableName"], {"ticket_id": "evt-pii-1"}))
    assert "jane.doe" not in stored and "4111" not in stored and "555" not in stored
    assert "[EMAIL]" in stored and "[CARD]" in stored
