"""Bring your own labels: a labelled CSV under training/ -> TrainFunction -> models/ -> Enrich uses it.

Through the real handlers on moto, resources from template.yaml. Every test removes the model
pointers it published, so other tests keep scoring with the shipped models.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from pathlib import Path

import pytest

from supportlens.adapters import dynamo
from supportlens.domain import scoring
from tests.integration.test_pipeline_handlers import put, sqs_record

SAMPLES = Path(__file__).resolve().parents[2] / "events" / "samples"


def csv_bytes(rows: list[tuple[str, str]], header: tuple[str, str] = ("text", "label")) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode()


def ticket_event(ticket_id: str, text: str) -> str:
    return json.dumps({"schema": "supportlens.ticket/v1", "ticket": {
        "ticket_id": ticket_id, "source": "crm", "channel": "email", "author_id": "cust-usermodels",
        "company": "acme", "created_at": "2024-06-03T09:00:00Z", "text": text}})


@pytest.fixture
def train(handler_module, lambda_context):
    module = handler_module("TrainFunction")
    return lambda record: module.handler({"Records": [record]}, lambda_context)


@pytest.fixture
def published(aws, deployment, handler_module):
    """The bucket; pointers this test publishes are deleted afterwards, and Enrich re-reads them at once."""
    bucket = deployment.outputs["DataBucketName"]
    models = handler_module("EnrichFunction").MODELS
    models.invalidate()
    yield bucket
    for task in ("sentiment", "abuse", "intent"):
        aws("s3").delete_object(Bucket=bucket, Key=f"models/{task}/latest.json")
    models.invalidate()


def read_json(aws, bucket: str, key: str) -> dict:
    return json.loads(aws("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def stored(deployment, ticket_id: str) -> dict:
    return dynamo.get(deployment.outputs["TicketsTableName"], {"ticket_id": ticket_id})


def test_intent_model_from_a_labelled_file_classifies_new_tickets(aws, deployment, train, enrich, handler_module, published):
    bucket = published
    record = put(aws, bucket, "training/intent/banking-sample.csv", (SAMPLES / "intents_sample.csv").read_bytes())
    assert train(record) == {"batchItemFailures": []}

    pointer = read_json(aws, bucket, "models/intent/latest.json")
    assert pointer["source"] == "training/intent/banking-sample.csv"
    assert set(pointer["files"]) == {"intent.npz", "model.json", "training.json"}
    report = read_json(aws, bucket, f"models/intent/{pointer['version']}/training.json")
    assert report["rows"] == 216 and report["validation"]["accuracy"] >= 0.6

    # S3 may deliver a notification twice: the same object maps to the same, already published version.
    before = _keys(aws, bucket, "models/intent/")
    assert train(record) == {"batchItemFailures": []}
    assert _keys(aws, bucket, "models/intent/") == before and read_json(aws, bucket, "models/intent/latest.json") == pointer

    run = uuid.uuid4().hex[:8]
    texts = {f"{run}-pin": "I typed the wrong PIN three times and now my card is blocked",
             f"{run}-lost": "Someone stole my wallet with my card in it, please freeze it"}
    assert enrich([sqs_record(ticket_event(tid, text)) for tid, text in texts.items()]) == {"batchItemFailures": []}
    pin, lost = stored(deployment, f"{run}-pin"), stored(deployment, f"{run}-lost")
    assert pin["intent"] == "pin_blocked" and lost["intent"] == "lost_or_stolen_card"
    assert pin["intent_model"] == pointer["version"] and 0 < float(pin["intent_confidence"]) <= 1


def test_sentiment_model_from_user_labels_replaces_the_shipped_one(aws, deployment, train, enrich, handler_module, published):
    """The user's labels say a made-up product word is good news: only their model can know."""
    bucket = published
    rows = [(f"the zorblax update {i} arrived", "positive") for i in range(12)]
    rows += [(f"the crumblet update {i} arrived", "negative") for i in range(12)]
    rows += [(f"the plain update {i} arrived", "neutral") for i in range(12)]
    assert train(put(aws, bucket, "training/sentiment/acme.csv", csv_bytes(rows))) == {"batchItemFailures": []}
    version = read_json(aws, bucket, "models/sentiment/latest.json")["version"]

    run = uuid.uuid4().hex[:8]
    enrich([sqs_record(ticket_event(f"{run}-a", "the zorblax update arrived today")),
            sqs_record(ticket_event(f"{run}-b", "the crumblet update arrived today"))])
    a, b = stored(deployment, f"{run}-a"), stored(deployment, f"{run}-b")
    assert (a["sentiment"], a["sentiment_model"]) == ("positive", version)
    assert (b["sentiment"], b["sentiment_model"]) == ("negative", version)
    assert a["abuse_model"] == scoring.model_version("abuse")  # no abuse model uploaded: the shipped one

    # Deleting the pointer goes back to the shipped model without a redeploy.
    aws("s3").delete_object(Bucket=bucket, Key="models/sentiment/latest.json")
    handler_module("EnrichFunction").MODELS.invalidate()  # Lambda would re-read within models' REFRESH_S
    enrich([sqs_record(ticket_event(f"{run}-c", "the zorblax update arrived today"))])
    assert stored(deployment, f"{run}-c")["sentiment_model"] == scoring.model_version("sentiment")


@pytest.mark.parametrize("key,body,reason", [
    ("training/sentiment/survey.csv", csv_bytes([("great", "5")] * 30, header=("comment", "score")), "needs columns 'text' and 'label'"),
    ("training/abuse/few.csv", csv_bytes([("you idiot", "abusive")] * 5), "at least 20 labelled rows to train abuse"),
    ("training/abuse/labels.csv", csv_bytes([("hello there", "maybe")] * 30), "unknown abuse labels"),
    ("training/churn/model.csv", csv_bytes([("bye", "churn")] * 30), "unknown task 'churn'"),
])
def test_unusable_training_file_is_quarantined_with_its_reason(aws, train, published, key, body, reason):
    bucket = published
    assert train(put(aws, bucket, key, body)) == {"batchItemFailures": []}  # not retried
    error = read_json(aws, bucket, f"quarantine/{key}.error.json")
    assert reason in error["reason"] and error["file"] == key
    assert f"models/{key.split('/')[1]}/latest.json" not in _keys(aws, bucket, "models/")


def test_broken_model_upload_keeps_the_current_model(aws, deployment, enrich, published):
    """A pointer to files that are not a model is logged and skipped; scoring goes on."""
    bucket = published
    s3 = aws("s3")
    s3.put_object(Bucket=bucket, Key="models/abuse/broken/model.json", Body=b"{not json")
    s3.put_object(Bucket=bucket, Key="models/abuse/latest.json", Body=json.dumps(
        {"task": "abuse", "version": "broken", "prefix": "models/abuse/broken/", "files": ["model.json"]}).encode())
    run = uuid.uuid4().hex[:8]
    assert enrich([sqs_record(ticket_event(f"{run}-x", "thanks, all sorted"))]) == {"batchItemFailures": []}
    assert stored(deployment, f"{run}-x")["abuse_model"] == scoring.model_version("abuse")
    s3.delete_object(Bucket=bucket, Key="models/abuse/broken/model.json")


def _keys(aws, bucket: str, prefix: str) -> list[str]:
    return [o["Key"] for o in aws("s3").list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
