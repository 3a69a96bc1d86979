"""Issue 13, ingest side: inputs real exports produce, through IngestFunction's handler in-process
on moto (resources from template.yaml). Every file must finish with exact lineage
(rows_read = tickets_emitted + rows_quarantined) and every bad row must carry a reason."""

from __future__ import annotations

import json
import uuid

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from supportlens.adapters import aws as aws_adapter
from supportlens.adapters import dynamo
from supportlens.adapters.sqs import MAX_BATCH_BYTES
from tests.integration.test_pipeline_handlers import drain, put

TICKET_HEADER = "ticket_id,text,created_at"
TWCS_HEADER = "tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id"
ESCALATION_HEADER = "Case ID,Customer ID,Region,Created At,Description,Category,Refund Amount,Delivery Status,Company,Priority"
CALLS_HEADER = "interaction_id,customer_id,agent_id,channel,start_time,duration,status,notes"


@pytest.fixture
def upload(aws, deployment, ingest):
    """Upload `body` under a fresh key, run Ingest on its notification, return (lineage, tickets, quarantine rows)."""

    def run(name: str, body: bytes):
        key = f"incoming/ingest-faults/{uuid.uuid4().hex[:8]}/{name}"
        assert ingest(put(aws, deployment.outputs["DataBucketName"], key, body)) == {"batchItemFailures": []}
        return (key, *outcome(aws, deployment, key))

    return run


def files(deployment, key: str) -> list[dict]:
    return [i for i in dynamo.scan_all(deployment.outputs["FilesTableName"]) if i["key"] == key]


def outcome(aws, deployment, key: str) -> tuple[dict, list[dict], list[dict]]:
    (record,) = files(deployment, key)
    tickets = [t for m in drain(aws, deployment.outputs["TicketsQueueUrl"]) for t in json.loads(m["Body"])["tickets"]]
    rows = []
    if record.get("quarantine_key"):
        body = aws("s3").get_object(Bucket=deployment.outputs["DataBucketName"], Key=record["quarantine_key"])["Body"].read()
        rows = [json.loads(line) for line in body.decode().splitlines()]
    if record["status"] in ("emitted", "partial"):
        assert record["rows_read"] == record["tickets_emitted"] + record["rows_quarantined"]
        assert len(tickets) == record["tickets_emitted"]
        assert len([r for r in rows if "row" in r]) == record["rows_quarantined"]
    assert all(r.get("reason") for r in rows)
    return record, tickets, rows


def csv_body(header: str, rows: list[str]) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def ticket_rows(n: int, text: str = "my parcel never arrived") -> list[str]:
    return [f"t-{uuid.uuid4().hex[:10]},{text} {i},2024-06-0{1 + i % 5}T10:00:00Z" for i in range(n)]


# --------------------------------------------------------------------------- item 1: SQS batch size


@pytest.fixture
def sqs_client(endpoint):
    """The adapters' own SQS client, fresh, so event hooks never leak into other tests."""
    aws_adapter.client.cache_clear()
    yield aws_adapter.client("sqs")
    aws_adapter.client.cache_clear()


def test_3000_long_escalations_fit_sqs_batch_limit(upload, sqs_client):
    """~1 KB texts: 10 bodies of up to 200 KiB would be ~2 MB, over SendMessageBatch's 1 MiB sum."""
    batch_sizes = []
    sqs_client.meta.events.register(
        "provide-client-params.sqs.SendMessageBatch",
        lambda params, **_: batch_sizes.append(sum(len(e["MessageBody"].encode()) for e in params["Entries"])),
    )
    text = "The parcel was marked delivered but never arrived, third time this month. " * 14  # ~1 KB
    rows = [f"ESC-{i},C-{i % 97},EMEA,2024-06-03T08:12:00Z,\"{text}\",delivery,49.99,failed,parcelco,high" for i in range(3000)]
    _key, record, tickets, rows_q = upload("escalations.csv", csv_body(ESCALATION_HEADER, rows))
    assert record["status"] == "emitted" and record["source"] == "escalations"
    assert record["rows_read"] == record["tickets_emitted"] == len(tickets) == 3000 and not rows_q
    assert len(batch_sizes) >= 2 and max(batch_sizes) <= MAX_BATCH_BYTES < 1024 * 1024


def test_failed_send_leaves_a_reason_and_the_retry_finishes(aws, deployment, ingest, sqs_client):
    def refuse(params, **_):
        raise RuntimeError("injected: SQS unreachable")

    key = f"incoming/ingest-faults/{uuid.uuid4().hex[:8]}/retry.csv"
    event = put(aws, deployment.outputs["DataBucketName"], key, csv_body(TICKET_HEADER, ticket_rows(5)))
    sqs_client.meta.events.register("provide-client-params.sqs.SendMessageBatch", refuse)
    with pytest.raises(BatchProcessingError):  # the whole batch failed: SQS redelivers it
        ingest(event)
    (record,) = files(deployment, key)
    assert record["status"] == "failed" and record["attempts"] == 1
    assert "RuntimeError" in record["last_error"] and "retried" in record["last_error"]

    sqs_client.meta.events.unregister("provide-client-params.sqs.SendMessageBatch", refuse)
    assert ingest(event) == {"batchItemFailures": []}
    record, tickets, _ = outcome(aws, deployment, key)
    assert record["status"] == "emitted" and record["attempts"] == 2 and len(tickets) == 5


def test_an_attempt_that_vanished_is_named_when_the_retry_runs(aws, deployment, ingest):
    """A timeout or killed process runs no except clause: the next attempt records that it happened."""
    key = f"incoming/ingest-faults/{uuid.uuid4().hex[:8]}/vanished.csv"
    event = put(aws, deployment.outputs["DataBucketName"], key, csv_body(TICKET_HEADER, ticket_rows(2)))
    etag = json.loads(event["body"])["Records"][0]["s3"]["object"]["eTag"]
    dynamo.put_if_absent(deployment.outputs["FilesTableName"],
                         {"file_id": f"{key}#{etag}", "key": key, "etag": etag, "status": "ingesting"}, "file_id")
    assert ingest(event) == {"batchItemFailures": []}
    record, tickets, _ = outcome(aws, deployment, key)
    assert record["status"] == "emitted" and record["attempts"] == 2 and len(tickets) == 2
    assert "attempt 1 did not finish" in record["last_error"]


# --------------------------------------------------------------------------- item 3: unterminated quote


def test_unterminated_quote_quarantines_one_row_and_keeps_the_rest(upload):
    rows = ticket_rows(10)
    rows[2] = 't-open,"my bill is wrong and nobody answers,2024-06-01T10:00:00Z'
    _key, record, tickets, quarantined = upload("quote.csv", csv_body(TICKET_HEADER, rows))
    assert (record["rows_read"], record["tickets_emitted"], record["rows_quarantined"]) == (10, 9, 1)
    assert quarantined[0]["row"] == 3 and "quote" in quarantined[0]["reason"]
    assert quarantined[0]["raw"].startswith("t-open,")
    assert all("\n" not in t["text"] for t in tickets)


# --------------------------------------------------------------------------- item 4: ragged top rows


def test_ragged_rows_at_the_top_do_not_reject_the_file(upload):
    ragged = [f"junk-{i},only two" for i in range(60)]  # more than detection's first 50 records
    _key, record, tickets, quarantined = upload("ragged.csv", csv_body(TICKET_HEADER, ragged + ticket_rows(100)))
    assert record["status"] == "emitted" and record["source"] == "ticket"
    assert (record["rows_read"], record["tickets_emitted"], record["rows_quarantined"]) == (160, 100, 60)
    assert all("fields but the header has 3" in q["reason"] for q in quarantined)


# --------------------------------------------------------------------------- a title above the header


def test_export_title_lines_above_the_header_are_quarantined_and_the_rows_stored(upload):
    """Help-desk exports often start with "Tickets export, generated ..." and a blank line: before, that
    title became the header and every row was quarantined for its field count."""
    preamble = "Tickets export, generated 2026-12-01 by the help desk\nFilter: all open tickets\n\n"
    body = preamble.encode() + csv_body(TICKET_HEADER, ticket_rows(20))
    _key, record, tickets, quarantined = upload("titled.csv", body)
    assert record["status"] == "emitted" and record["source"] == "ticket"
    assert (record["rows_read"], record["tickets_emitted"], record["rows_quarantined"]) == (22, 20, 2)
    assert [q["row"] for q in quarantined] == [1, 2]
    assert all("above the CSV header" in q["reason"] for q in quarantined)
    assert all(t["text"].startswith("my parcel never arrived") for t in tickets)


def test_a_header_the_rows_disagree_with_is_kept_and_the_rows_quarantined(upload):
    """Rows with one field more than the header (an unquoted comma in every row) must not turn the
    first data row into the header: the real header stays and the rows are quarantined with the counts."""
    rows = [f"t-{uuid.uuid4().hex[:10]},late, again,2024-06-01T10:00:00Z" for _ in range(10)]
    _key, record, _tickets, quarantined = upload("extra-comma.csv", csv_body(TICKET_HEADER, rows))
    assert (record["rows_read"], record["tickets_emitted"], record["rows_quarantined"]) == (10, 0, 10)
    assert all("4 fields but the header has 3" in q["reason"] for q in quarantined)


# --------------------------------------------------------------------------- item 5: crashes in Ingest


DEEP = "[" * 50_000 + "]" * 50_000


@pytest.mark.parametrize("name", ["deep.jsonl", "deep.json", "deep-wrapped.json"])
def test_deeply_nested_json_quarantines_that_record(upload, name):
    good = [{"ticket_id": f"deep-{uuid.uuid4().hex[:8]}-{i}", "text": "where is my refund", "created_at": "2024-06-01T09:00:00Z"}
            for i in range(3)]
    items = [json.dumps(good[0]), '{"ticket_id": "x", "text": ' + DEEP + "}", json.dumps(good[1]), json.dumps(good[2])]
    body = ("\n".join(items) if name.endswith("jsonl") else "[" + ",".join(items) + "]")
    if "wrapped" in name:  # the {"tickets": [...]} form, with another key before the array
        body = '{"export": {"from": "helpdesk", "pages": [1, 2]}, "tickets": ' + body + "}"
    body = body.encode()
    _key, record, tickets, quarantined = upload(name, body)
    assert record["status"] == "emitted"
    assert (record["rows_read"], record["tickets_emitted"], record["rows_quarantined"]) == (4, 3, 1)
    assert quarantined[0]["row"] == 2 and "too deeply" in quarantined[0]["reason"]
    assert sorted(t["ticket_id"] for t in tickets) == sorted(g["ticket_id"] for g in good)


def test_year_one_date_with_utc_offset_is_quarantined(upload):
    rows = ticket_rows(3) + ["t-year1,hello,0001-01-01T00:00:00+05:00", "t-year9999,hello,9999-12-31T23:59:59-05:00"]
    _key, record, tickets, quarantined = upload("year1.csv", csv_body(TICKET_HEADER, rows))
    assert (record["status"], record["tickets_emitted"], record["rows_quarantined"]) == ("emitted", 3, 2)
    assert all("created_at" in q["reason"] and ("range" in q["reason"] or "implausible" in q["reason"]) for q in quarantined)


# --------------------------------------------------------------------------- item 13: evidence per version


def test_reupload_keeps_the_first_versions_quarantine(aws, deployment, ingest):
    bucket = deployment.outputs["DataBucketName"]
    key = f"incoming/ingest-faults/{uuid.uuid4().hex[:8]}/again.csv"
    for version in ("v1", "v2"):
        body = csv_body(TICKET_HEADER, [f"{version}-bad,,2024-06-01T10:00:00Z", *ticket_rows(1)])
        assert ingest(put(aws, bucket, key, body)) == {"batchItemFailures": []}
    drain(aws, deployment.outputs["TicketsQueueUrl"])
    records = files(deployment, key)
    assert len(records) == 2 and len({r["quarantine_key"] for r in records}) == 2
    for record in records:
        assert record["etag"] in record["quarantine_key"]
        body = aws("s3").get_object(Bucket=bucket, Key=record["quarantine_key"])["Body"].read().decode()
        assert json.loads(body)["raw"].split("-bad")[0] in ("v1", "v2")
    raws = {aws("s3").get_object(Bucket=bucket, Key=r["quarantine_key"])["Body"].read() for r in records}
    assert len(raws) == 2  # v1's evidence was not overwritten by v2's


# --------------------------------------------------------------------------- item 14: lax input


PAD = ticket_rows(1, "x" * 70_000)  # pushes the rows after it past the 64 KiB sniff window


@pytest.mark.parametrize(
    "header, bad_row, reason",
    [
        (TICKET_HEADER, b"t-latin1,caf\xe9 is cold,2024-06-01T10:00:00Z", "not valid UTF-8"),
        (TICKET_HEADER, b"t-nul,nul\x00byte,2024-06-01T10:00:00Z", "NUL"),
        (TICKET_HEADER, b"t-old,hello,0001-01-01", "implausible"),
        (TICKET_HEADER, b"t-future,hello,9999-12-31", "implausible"),
        (CALLS_HEADER, b"CALL-9,C-1,A-1,voice,2024-06-03T08:00:00Z,1:-30,success,hi", "duration"),
        (ESCALATION_HEADER, b"ESC-9,C-1,EMEA,2024-06-03T08:12:00Z,refund please,delivery,-50,late,parcelco,high", "negative"),
        (TWCS_HEADER, b"77,115712,maybe,Tue Oct 31 22:10:47 +0000 2017,@sprintcare hello,,", "inbound"),
    ],
    ids=["invalid-utf8-after-64k", "nul-after-64k", "year-1", "year-9999", "duration-1:-30", "negative-refund", "inbound-maybe"],
)
def test_lax_values_are_quarantined_with_a_reason(upload, header, bad_row, reason):
    good = {
        TICKET_HEADER: PAD[0],
        CALLS_HEADER: "CALL-1,C-1,A-1,voice,2024-06-03T08:00:00Z,1:30,success," + "y" * 70_000,
        ESCALATION_HEADER: "ESC-1,C-1,EMEA,2024-06-03T08:12:00Z," + "y" * 70_000 + ",delivery,5,late,parcelco,high",
        TWCS_HEADER: "76,115712,True,Tue Oct 31 22:10:47 +0000 2017,@sprintcare " + "y" * 70_000 + ",,",
    }[header]
    body = (header + "\n" + good + "\n").encode() + bad_row + b"\n"
    _key, record, tickets, quarantined = upload("lax.csv", body)
    assert (record["status"], record["rows_read"], record["tickets_emitted"], record["rows_quarantined"]) == ("emitted", 2, 1, 1)
    assert quarantined[0]["row"] == 2 and reason in quarantined[0]["reason"]
    assert "\ufffd" not in json.dumps(tickets)


def test_unknown_channel_becomes_other(upload):
    body = csv_body(TICKET_HEADER + ",channel", [r + ",carrier-pigeon" for r in ticket_rows(1)] + [r + ",E-Mail" for r in ticket_rows(1)])
    _key, record, tickets, _ = upload("channel.csv", body)
    assert sorted(t.get("channel", "other") for t in tickets) == ["email", "other"]  # "other" is the default, left out


def test_duplicated_header_column_rejects_the_file(upload):
    _key, record, tickets, rows = upload("dup.csv", b"ticket_id,text,text,created_at\nt-1,a,b,2024-06-01T10:00:00Z\n")
    assert record["status"] == "rejected" and "repeats column(s) 'text'" in record["reason"] and not tickets
    assert rows[0]["reason"] == record["reason"]


def test_differing_columns_that_mean_the_same_quarantine_the_row(upload):
    body = b"ticket_id,text,Text,created_at\nt-a,same,same,2024-06-01T10:00:00Z\nt-b,one,other,2024-06-01T10:00:00Z\n"
    _key, record, tickets, quarantined = upload("alias-dup.csv", body)
    assert [t["text"] for t in tickets] == ["same"]
    assert "both mean 'text'" in quarantined[0]["reason"]


def test_twcs_headers_match_case_and_punctuation_insensitively(upload):
    header = "Tweet ID,Author ID,Inbound,Created At,Text,Response Tweet ID,In Response To Tweet ID"
    rows = ["1,115712,True,Tue Oct 31 22:10:47 +0000 2017,@sprintcare no signal,2,",
            "2,sprintcare,False,Tue Oct 31 22:15:47 +0000 2017,@115712 Please DM us,,1"]
    _key, record, tickets, _ = upload("twcs.csv", csv_body(header, rows))
    assert record["source"] == "twcs" and record["tickets_emitted"] == 2
    customer = next(t for t in tickets if t["ticket_id"] == "twcs:1")
    assert customer["first_response_s"] == 300 and customer["responder"] == "sprintcare"


def _notification(bucket: str, key: str, etag: str, size: int, version_id: str | None) -> dict:
    obj = {"key": key, "eTag": etag, "size": size, **({"versionId": version_id} if version_id else {})}
    body = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": bucket}, "object": obj}}]}
    return {"messageId": uuid.uuid4().hex, "receiptHandle": "r", "body": json.dumps(body), "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:q",
            "awsRegion": "us-east-1"}


def test_an_object_overwritten_before_ingest_reads_it_keeps_both_versions(aws, deployment, ingest):
    """Item 7: v1 is overwritten by v2 before Ingest gets to v1's notification. The versioned bucket
    still holds v1, and Ingest reads the notified version: each lineage counts its own rows."""
    s3 = aws("s3")
    bucket = deployment.outputs["DataBucketName"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"  # from template.yaml
    key = f"incoming/ingest-faults/{uuid.uuid4().hex[:8]}/overwritten.csv"
    v1, v2 = csv_body(TICKET_HEADER, ticket_rows(3)), csv_body(TICKET_HEADER, ticket_rows(5))
    put1 = s3.put_object(Bucket=bucket, Key=key, Body=v1)
    put2 = s3.put_object(Bucket=bucket, Key=key, Body=v2)
    assert put1["VersionId"] != put2["VersionId"]
    for put_result, body in ((put1, v1), (put2, v2)):
        record = _notification(bucket, key, put_result["ETag"].strip('"'), len(body), put_result["VersionId"])
        assert ingest(record) == {"batchItemFailures": []}
    by_etag = {f["etag"]: f for f in files(deployment, key)}
    assert by_etag[put1["ETag"].strip('"')]["rows_read"] == 3 and by_etag[put2["ETag"].strip('"')]["rows_read"] == 5
    tickets = [t for m in drain(aws, deployment.outputs["TicketsQueueUrl"]) for t in json.loads(m["Body"])["tickets"]]
    assert len(tickets) == 8

    # A notification without a version id (an unversioned bucket) whose ETag no longer matches: said, not mis-counted.
    stale = _notification(bucket, key, put1["ETag"].strip('"') + "0", len(v1), None)
    assert ingest(stale) == {"batchItemFailures": []}
    # (matched by the whole stale ETag: "ends with 0" also matched v1's own ETag one time in 16, a flake)
    (gone,) = [f for f in files(deployment, key) if f["etag"] == put1["ETag"].strip('"') + "0"]
    assert gone["status"] == "superseded" and "replaced or deleted before it could be read" in gone["reason"]
    assert drain(aws, deployment.outputs["TicketsQueueUrl"]) == []
