"""Bring your own labels on the local cloud: a labelled CSV put under training/intent/ reaches
TrainFunction through the S3 notification and TrainingQueue; the published model is then used
by Enrich for a ticket event, with no redeploy."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SAMPLE = Path(__file__).resolve().parents[2] / "events" / "samples" / "intents_sample.csv"


def test_labelled_file_under_training_becomes_the_intent_model_enrich_uses(cloud):
    bucket = cloud.outputs["DataBucketName"]
    s3 = cloud.client("s3")
    s3.put_object(Bucket=bucket, Key="training/intent/banking.csv", Body=SAMPLE.read_bytes())

    def pointer():
        try:
            return json.loads(s3.get_object(Bucket=bucket, Key="models/intent/latest.json")["Body"].read())
        except s3.exceptions.NoSuchKey:
            return None

    published = cloud.wait_until(pointer, 180, "TrainFunction to publish models/intent/latest.json")
    assert published["source"] == "training/intent/banking.csv" and "intent.npz" in published["files"]

    s3.put_object(Bucket=bucket, Key="training/intent/broken.csv", Body=b"comment,score\nhello,5\n")
    error = cloud.wait_until(lambda: _object(s3, bucket, "quarantine/training/intent/broken.csv.error.json"), 120,
                             "the unusable training file's quarantine note")
    assert "needs columns 'text' and 'label'" in json.loads(error)["reason"]

    ticket_id = f"e2e-intent-{int(time.time())}"
    event = {"schema": "supportlens.ticket/v1", "ticket": {
        "ticket_id": ticket_id, "source": "crm", "channel": "chat", "company": "bank",
        "created_at": "2024-06-01T10:00:00Z", "text": "I entered my PIN wrong too many times and now it is blocked"}}
    cloud.client("sqs").send_message(QueueUrl=cloud.outputs["TicketsQueueUrl"], MessageBody=json.dumps(event))
    ddb = cloud.client("dynamodb")

    def stored():
        return ddb.get_item(TableName=cloud.outputs["TicketsTableName"], Key={"ticket_id": {"S": ticket_id}}).get("Item")

    item = cloud.wait_until(stored, 90, "the ticket event to be enriched")
    assert item["intent"]["S"] == "pin_blocked" and item["intent_model"]["S"] == published["version"]
    assert cloud.client("sqs").get_queue_attributes(QueueUrl=cloud.outputs["TrainingDLQUrl"], AttributeNames=[
        "ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"] == "0"


def _object(s3, bucket: str, key: str) -> bytes | None:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
