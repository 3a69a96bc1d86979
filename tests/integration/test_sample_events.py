"""Every sample event under events/ runs through its real handler."""

from __future__ import annotations

import json
from pathlib import Path

from supportlens.adapters import dynamo

EVENTS = Path(__file__).resolve().parents[2] / "events"


def load(path: str) -> dict:
    return json.loads((EVENTS / path).read_text())


def test_ingest_sample_notification(aws, deployment, handler_module, lambda_context):
    event = load("ingest/sqs_s3_notification.json")
    body = json.loads(event["Records"][0]["body"])
    obj = body["Records"][0]["s3"]
    put = aws("s3").put_object(Bucket=deployment.outputs["DataBucketName"], Key=obj["object"]["key"],
                               Body=(EVENTS / "samples" / "twcs_sample.csv").read_bytes())
    # S3 notifies the version it stored: Ingest reads exactly that one (a made-up ETag is 'superseded')
    obj["object"].update(eTag=put["ETag"].strip('"'), versionId=put["VersionId"])
    event["Records"][0]["body"] = json.dumps(body)
    assert handler_module("IngestFunction").handler(event, lambda_context) == {"batchItemFailures": []}
    lineage = dynamo.get(deployment.outputs["FilesTableName"], {"file_id": f"{obj['object']['key']}#{obj['object']['eTag']}"})
    assert lineage["rows_read"] == 1939 and lineage["status"] == "emitted"


def test_enrich_sample_ticket_event(deployment, handler_module, lambda_context):
    assert handler_module("EnrichFunction").handler(load("enrich/sqs_ticket_event.json"), lambda_context) == {"batchItemFailures": []}
    item = dynamo.get(deployment.outputs["TicketsTableName"], {"ticket_id": "crm-20240601-0001"})
    assert item["escalation"] == "churn" and item["sentiment"] in {"negative", "neutral", "positive"}


def test_alerts_sample_stream_and_schedule(deployment, handler_module, lambda_context):
    module = handler_module("AlertsFunction")
    assert module.handler(load("alerts/stream_insert.json"), lambda_context) == {"batchItemFailures": []}
    alerts = [a for a in dynamo.scan_all(deployment.outputs["AlertsTableName"]) if a.get("examples") == ["crm-20240601-0001"]]
    assert len(alerts) == 1 and alerts[0]["rule"] == "escalation"
    module.handler(load("alerts/stream_insert.json"), lambda_context)  # same alert again: deduplicated
    assert len([a for a in dynamo.scan_all(deployment.outputs["AlertsTableName"]) if a.get("examples") == ["crm-20240601-0001"]]) == 1
    from supportlens.domain.alerts import load_config, read_default_config, span_days

    config = load_config(read_default_config())  # the window rules decide how many days are read
    result = module.handler(load("alerts/schedule.json"), lambda_context)
    assert result["evaluated_days"] == max(span_days(r) for r in config.window_rules) > 1


def test_cluster_and_report_sample_schedules(aws, deployment, handler_module, lambda_context):
    cluster = handler_module("ClusterFunction").handler(load("cluster/schedule.json"), lambda_context)
    assert cluster["status"] in {"clustered", "skipped"}
    result = handler_module("ReportFunction").handler(load("report/schedule_weekly.json"), lambda_context)
    assert result["message_id"] and result["archive"].startswith("reports/7d/")
    raw = aws("s3").get_object(Bucket=deployment.outputs["DataBucketName"], Key=result["archive"])["Body"].read()
    assert b"multipart/related" in raw and b"text/plain" in raw


def test_train_sample_notification(aws, deployment, handler_module, lambda_context):
    event = load("train/sqs_s3_training_notification.json")
    key = json.loads(event["Records"][0]["body"])["Records"][0]["s3"]["object"]["key"]
    bucket = deployment.outputs["DataBucketName"]
    aws("s3").put_object(Bucket=bucket, Key=key, Body=(EVENTS / "samples" / "intents_sample.csv").read_bytes())
    try:
        assert handler_module("TrainFunction").handler(event, lambda_context) == {"batchItemFailures": []}
        pointer = json.loads(aws("s3").get_object(Bucket=bucket, Key="models/intent/latest.json")["Body"].read())
        assert pointer["source"] == key and "intent.npz" in pointer["files"]
    finally:  # other tests enrich without an intent model
        aws("s3").delete_object(Bucket=bucket, Key="models/intent/latest.json")
