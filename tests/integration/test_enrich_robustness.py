"""Inputs real exports and upstream systems produce, through the real Ingest and Enrich handlers
on moto (issue 13: non-finite numbers, oversized texts, duplicate ids in a chunk, re-published
events, an unloadable centroids model, partial batch failures)."""

from __future__ import annotations

import json
import uuid

import pytest

from supportlens.adapters import dynamo
from tests.integration.test_pipeline_handlers import drain, lineage, put, sqs_record
from supportlens.logic.counters import read_partition  # summed over the write shards

DAY = "2024-06-01"


def ticket(run: str, i: int, **fields) -> dict:
    return {"ticket_id": f"{run}-{i}", "source": "ticket", "created_at": f"{DAY}T10:{i % 60:02d}:00Z",
            "text": f"My parcel {i} never arrived and nobody answers", "author_id": f"cust-{run}-{i % 3}",
            "company": f"co-{run}", **fields}


def event(ticket_fields: dict) -> dict:
    return sqs_record(json.dumps({"schema": "supportlens.ticket/v1", "ticket": ticket_fields}))


def batch(file_id: str, chunk: int, tickets: list[dict]) -> dict:
    return sqs_record(json.dumps({"schema": "supportlens.ticket-batch/v1", "file_id": file_id, "chunk": chunk, "tickets": tickets}))


def file_row(deployment, run: str, emitted: int) -> str:
    """The lineage item Ingest leaves for a file whose chunks Enrich then stores."""
    key = f"incoming/ticket/{run}.csv"
    dynamo.put_if_absent(deployment.outputs["FilesTableName"], {"file_id": f"{key}#etag", "key": key, "etag": "etag",
                                                                "status": "emitted", "tickets_emitted": emitted}, "file_id")
    return f"{key}#etag"


def counters(deployment, run: str, day: str = DAY) -> dict:
    """The run's day x company x channel aggregate row (each run has its own company)."""
    table = deployment.outputs["AggregatesTableName"]
    rows = [r for r in read_partition(table, f"day#{day}") if r["sk"].startswith(f"company#co-{run}#")]
    return rows[0] if rows else {}


def logged(caplog) -> list[dict]:
    """Log records as their fields (Powertools' extra keys are record attributes)."""
    return [{k: str(v) for k, v in vars(r).items()} | {"message": r.getMessage()} for r in caplog.records]


def quarantined(aws, deployment) -> list[dict]:
    bucket = deployment.outputs["DataBucketName"]
    keys = [o["Key"] for o in aws("s3").list_objects_v2(Bucket=bucket, Prefix="quarantine/events/").get("Contents", [])]
    return [json.loads(line) for k in keys for line in aws("s3").get_object(Bucket=bucket, Key=k)["Body"].read().decode().splitlines()]


def item(deployment, ticket_id: str) -> dict | None:
    return dynamo.get(deployment.outputs["TicketsTableName"], {"ticket_id": ticket_id})


# --------------------------------------------------------------------------- item 2: NaN / inf


def test_non_finite_numbers_in_a_file_are_quarantined_by_ingest(aws, deployment, ingest, enrich):
    run = uuid.uuid4().hex[:8]
    bucket, key = deployment.outputs["DataBucketName"], f"incoming/ticket/{run}.csv"
    rows = [f"{run}-{i},My parcel never arrived,{DAY}T10:00:00Z,co-{run},{value}" for i, value in enumerate(["nan", "inf", "1e400", "120"])]
    body = ("ticket_id,text,created_at,company,first_response_s\n" + "\n".join(rows) + "\n").encode()
    assert ingest(put(aws, bucket, key, body)) == {"batchItemFailures": []}
    record = lineage(aws, deployment, key)
    assert (record["rows_read"], record["tickets_emitted"], record["rows_quarantined"]) == (4, 1, 3)
    evidence = aws("s3").get_object(Bucket=bucket, Key=record["quarantine_key"])["Body"].read().decode().splitlines()
    assert [json.loads(line)["row"] for line in evidence] == [1, 2, 3]
    assert all("first_response_s" in json.loads(line)["reason"] and "finite" in json.loads(line)["reason"] for line in evidence)
    assert enrich([sqs_record(m["Body"]) for m in drain(aws, deployment.outputs["TicketsQueueUrl"])]) == {"batchItemFailures": []}
    assert counters(deployment, run)["rt_count"] == 1


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "1e400"], ids=["nan", "inf", "1e400"])
def test_non_finite_number_in_a_ticket_event_is_quarantined_not_retried(aws, deployment, enrich, value):
    run = uuid.uuid4().hex[:8]
    bad = ticket(run, 0, call_duration_s=value)
    record = event(bad)
    if value == "1e400":  # a JSON number too large for a float: Python reads it as inf
        record["body"] = record["body"].replace('"1e400"', "1e400")
    assert enrich([record, event(ticket(run, 1))]) == {"batchItemFailures": []}
    assert item(deployment, f"{run}-0") is None and item(deployment, f"{run}-1") is not None
    reasons = [q["reason"] for q in quarantined(aws, deployment) if f"{run}-0" in q["raw"]]
    assert reasons and "call_duration_s" in reasons[0] and "finite" in reasons[0]
    assert counters(deployment, run)["volume"] == 1


def test_batch_message_with_one_non_finite_ticket_stores_the_rest(aws, deployment, enrich):
    run = uuid.uuid4().hex[:8]
    file_id = file_row(deployment, run, 3)
    good = [ticket(run, i) for i in (0, 2)]
    bad = ticket(run, 1, concession_amount=float("nan"), author_id="jane@example.com")
    message = batch(file_id, 0, [good[0], bad, good[1]])
    assert enrich([message]) == {"batchItemFailures": []}
    assert enrich([message]) == {"batchItemFailures": []}  # a redelivery changes nothing
    assert item(deployment, f"{run}-0") and item(deployment, f"{run}-2") and item(deployment, f"{run}-1") is None
    files = dynamo.get(deployment.outputs["FilesTableName"], {"file_id": file_id})
    assert (files["tickets_stored"], files["duplicates"], files["tickets_quarantined"]) == (2, 0, 1)
    assert counters(deployment, run)["volume"] == 2
    rejects = [q for q in quarantined(aws, deployment) if f"{run}-1" in q["raw"]]
    assert rejects[0]["position"] == 1 and "concession_amount" in rejects[0]["reason"]
    assert "jane@example.com" not in rejects[0]["reason"]  # reasons name fields, never values


# --------------------------------------------------------------------------- item 6: 400 KB items


def test_cjk_text_over_the_item_limit_is_stored_truncated(aws, deployment, enrich):
    run = uuid.uuid4().hex[:8]
    text = "我的包裹还没有到达" * 9_500  # 85,500 characters, 256,500 UTF-8 bytes: stored twice, over 400 KB
    assert len(text) < 100_000 < len(text.encode())
    assert enrich([event(ticket(run, 0, text=text))]) == {"batchItemFailures": []}
    stored = item(deployment, f"{run}-0")
    assert stored["text_truncated"] is True
    assert len(stored["text"].encode()) <= 100_000 and len(stored["clean_text"].encode()) <= 100_000
    assert text.startswith(stored["text"])
    assert len(json.dumps(stored, ensure_ascii=False).encode()) < 300_000
    assert counters(deployment, run)["volume"] == 1
    assert enrich([event(ticket(run, 1))]) == {"batchItemFailures": []}
    assert "text_truncated" not in item(deployment, f"{run}-1")  # ordinary texts are stored whole


def test_ticket_too_large_even_truncated_is_quarantined_and_the_chunk_completes(aws, deployment, enrich):
    run = uuid.uuid4().hex[:8]
    file_id = file_row(deployment, run, 2)
    huge = ticket(run, 1, category="x" * 360_000)  # no text limit helps: some field is huge
    assert enrich([batch(file_id, 0, [ticket(run, 0), huge])]) == {"batchItemFailures": []}
    assert item(deployment, f"{run}-0") and item(deployment, f"{run}-1") is None
    files = dynamo.get(deployment.outputs["FilesTableName"], {"file_id": file_id})
    assert (files["tickets_stored"], files["tickets_quarantined"]) == (1, 1)
    assert any("too large" in q["reason"] for q in quarantined(aws, deployment) if f"{run}-1" in q["raw"])


# --------------------------------------------------------------------------- item 9: duplicate ids in one chunk


def test_duplicate_ids_in_one_chunk_are_counted_once(aws, deployment, ingest, enrich):
    run = uuid.uuid4().hex[:8]
    bucket, key = deployment.outputs["DataBucketName"], f"incoming/ticket/{run}.csv"
    rows = [f"{run}-{i},My parcel {n} never arrived,{DAY}T10:0{n}:00Z,co-{run}" for n, i in enumerate([0, 0, 1, 1])]
    assert ingest(put(aws, bucket, key, ("ticket_id,text,created_at,company\n" + "\n".join(rows) + "\n").encode())) == {"batchItemFailures": []}
    messages = drain(aws, deployment.outputs["TicketsQueueUrl"])
    assert enrich([sqs_record(m["Body"]) for m in messages]) == {"batchItemFailures": []}
    record = lineage(aws, deployment, key)
    assert (record["tickets_emitted"], record["tickets_stored"], record["duplicates"]) == (4, 2, 2)
    assert counters(deployment, run)["volume"] == 2
    assert item(deployment, f"{run}-0")["text"] == "My parcel 0 never arrived"  # the first of the two is kept


# --------------------------------------------------------------------------- item 10: re-published events


def test_republished_event_with_changed_fields_is_a_duplicate_and_items_agree_with_aggregates(deployment, enrich):
    run = uuid.uuid4().hex[:8]
    first = ticket(run, 0, text="Thank you so much, the support team was wonderful and fast!")
    changed = {**first, "text": "This is the worst service ever. I will sue you and report you to the regulator."}
    assert enrich([event(first)]) == {"batchItemFailures": []}
    row = counters(deployment, run)
    assert row["volume"] == 1 and row.get("positive") == 1
    for message in (changed, first, changed):  # the re-publish, a plain redelivery of the first, the re-publish again
        assert enrich([event(message)]) == {"batchItemFailures": []}
        stored = item(deployment, f"{run}-0")
        assert stored["text"] == first["text"] and stored["sentiment"] == "positive"  # first version wins
        row = counters(deployment, run)
        assert row["volume"] == 1 and row.get("positive") == 1 and not row.get("negative") and not row.get("escalations")


# --------------------------------------------------------------------------- item 15: unloadable centroids model


def test_corrupt_centroids_model_is_logged_once_and_tickets_are_stored_without_issue(aws, deployment, handler_module, enrich,
                                                                                  monkeypatch, caplog):
    from supportlens.adapters import aws as aws_adapter
    from supportlens.logic import enrich as enrich_logic

    module = handler_module("EnrichFunction")
    monkeypatch.setattr(module, "MODELS", enrich_logic.ModelCache())  # a container that has seen no model yet
    monkeypatch.setattr(enrich_logic, "MODEL_MISSING_REFRESH_S", 0)  # look for the model on every batch
    bucket = deployment.outputs["DataBucketName"]
    s3 = aws("s3")
    pointer = s3.get_object(Bucket=bucket, Key=enrich_logic.MODEL_POINTER)["Body"].read() if s3.list_objects_v2(
        Bucket=bucket, Prefix=enrich_logic.MODEL_POINTER).get("KeyCount") else None
    bad_key = f"models/centroids/corrupt-{uuid.uuid4().hex[:6]}/model.npz"
    s3.put_object(Bucket=bucket, Key=bad_key, Body=b"PK\x03\x04 these bytes are not an npz")
    s3.put_object(Bucket=bucket, Key=enrich_logic.MODEL_POINTER, Body=json.dumps({"key": bad_key}).encode())
    fetched = []
    client = aws_adapter.client("s3")
    record_get = lambda params, **_: fetched.append(params["Key"]) if params.get("Key") == bad_key else None  # noqa: E731
    client.meta.events.register("provide-client-params.s3.GetObject", record_get)
    try:
        run = uuid.uuid4().hex[:8]
        caplog.clear()
        for i in range(3):
            assert enrich([event(ticket(run, i, author_id=f"private-{run}"))]) == {"batchItemFailures": []}
        logs = logged(caplog)
    finally:
        client.meta.events.unregister("provide-client-params.s3.GetObject", record_get)
        if pointer is None:
            s3.delete_object(Bucket=bucket, Key=enrich_logic.MODEL_POINTER)
        else:
            s3.put_object(Bucket=bucket, Key=enrich_logic.MODEL_POINTER, Body=pointer)
    assert fetched == [bad_key]  # fetched once, not on every batch
    warned = [r for r in logs if r["message"].startswith("centroids model does not load")]
    assert len(warned) == 1 and warned[0]["model_key"] == bad_key
    assert f"private-{run}" not in json.dumps(logs) and "never arrived" not in json.dumps(logs)
    for i in range(3):
        stored = item(deployment, f"{run}-{i}")
        assert stored is not None and "issue_id" not in stored
    assert counters(deployment, run)["volume"] == 3


# --------------------------------------------------------------------------- item 16: partial batch failures are logged


def test_partial_batch_failure_logs_the_message_id_and_error_class_only(deployment, enrich, caplog):
    run = uuid.uuid4().hex[:8]
    poison = sqs_record(json.dumps({"schema": "supportlens.ticket-batch/v99", "note": f"secret-{run}"}))
    caplog.clear()
    assert enrich([event(ticket(run, 0)), poison]) == {"batchItemFailures": [{"itemIdentifier": poison["messageId"]}]}
    failed = [r for r in logged(caplog) if r["message"] == "record failed"]
    assert len(failed) == 1
    assert failed[0]["message_id"] == poison["messageId"] and failed[0]["error"] == "UnsupportedSchema"
    assert f"secret-{run}" not in json.dumps(failed[0])
