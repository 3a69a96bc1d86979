"""The real public datasets in ../shared/data through the Ingest and Enrich handlers:
every row is accounted for, every emitted ticket is stored (or recognised as already stored)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import shared_file
from tests.integration.test_pipeline_handlers import drain, lineage, put, sqs_record

DATASETS = [
    # (folder, key under incoming/, expected source, minimum tickets emitted)
    ("twcs", "incoming/shared/twcs-train.csv", "twcs", 3900),
    ("airline_sentiment", "incoming/shared/airline-train.csv", "airline", 11000),
    ("support_tickets_endava", "incoming/shared/endava-train.csv", "endava", 2000),
]


@pytest.mark.shared_data
@pytest.mark.parametrize(("folder", "key", "source", "minimum"), DATASETS, ids=[d[0] for d in DATASETS])
def test_shared_dataset_is_fully_accounted_for(aws, deployment, ingest, enrich, folder, key, source, minimum):
    from supportlens.adapters import dynamo

    raw = shared_file(folder, "train.csv").read_bytes()
    bucket, queue = deployment.outputs["DataBucketName"], deployment.outputs["TicketsQueueUrl"]
    assert ingest(put(aws, bucket, key, raw)) == {"batchItemFailures": []}
    record = lineage(aws, deployment, key)
    assert record["status"] == "emitted", record.get("reason")
    assert record["source"] == source
    assert record["rows_read"] == record["tickets_emitted"] + record["rows_quarantined"]
    assert record["tickets_emitted"] >= minimum

    messages = drain(aws, queue)
    for start in range(0, len(messages), 10):
        response = enrich([sqs_record(m["Body"]) for m in messages[start:start + 10]])
        assert response == {"batchItemFailures": []}

    record = lineage(aws, deployment, key)
    # A ticket another file already stored (the bundled samples are slices of these sets) counts once.
    assert record["tickets_stored"] + record.get("duplicates", 0) == record["tickets_emitted"]
    if record["rows_quarantined"]:
        errors = aws("s3").get_object(Bucket=bucket, Key=record["quarantine_key"])["Body"].read().decode()
        lines = errors.strip().splitlines()
        assert len(lines) == record["rows_quarantined"]
        assert all('"reason"' in line and '"row_number"' in line for line in lines)

    ids = [t["ticket_id"] for t in json.loads(messages[0]["Body"])["tickets"][:50]]
    stored = dynamo.batch_get(deployment.outputs["TicketsTableName"], "ticket_id", ids, "ticket_id, sentiment, clean_text")
    assert len(stored) == len(ids)
    assert all(t["sentiment"] in {"negative", "neutral", "positive"} and "clean_text" in t for t in stored.values())
