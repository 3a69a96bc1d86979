"""The whole flow on the local cloud: S3 -> SQS -> Lambda (awslambdaric) -> DynamoDB, DLQs, schedules."""

from __future__ import annotations

import json
import os
import signal
import urllib.request

import pytest

from localcloud.demo import sent_emails
from tests.conftest import SAMPLE

pytestmark = pytest.mark.e2e


def test_upload_lands_in_dynamodb_with_lineage(cloud):
    result = cloud.cli("upload", str(SAMPLE), "--wait", "--json", "--timeout", "300")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 1
    row = rows[0]
    assert row["key"] == "incoming/twcs_sample.csv" and row["status"] == "complete"
    assert row["rows_read"] == 1939 == row["tickets_emitted"] + row["rows_quarantined"] == row["tickets_stored"]
    ddb = cloud.client("dynamodb")
    pages = ddb.get_paginator("scan").paginate(TableName=cloud.outputs["TicketsTableName"], Select="COUNT")
    count = sum(page["Count"] for page in pages)
    assert count == 1939
    item = ddb.get_item(TableName=cloud.outputs["TicketsTableName"], Key={"ticket_id": {"S": "twcs:8"}})["Item"]
    assert item["sentiment"]["S"] == "negative" and item["responder"]["S"] == "sprintcare"

    status = cloud.cli("status", "--json")
    assert json.loads(status.stdout.splitlines()[0])["tickets_stored"] == 1939


def test_stream_feeds_alerts(cloud):
    """The tickets table's stream is delivered to AlertsFunction (escalations in the sample raise alerts)."""
    ddb = cloud.client("dynamodb")
    alerts = cloud.wait_until(lambda: ddb.scan(TableName=cloud.outputs["AlertsTableName"])["Items"], 60, "alerts")
    assert any(a["rule"]["S"] == "escalation" for a in alerts)


def test_tick_fires_cluster_then_report(cloud):
    tick = cloud.cli("local", "tick", "--function", "Cluster", "--json")
    result = json.loads(tick.stdout.splitlines()[0])
    assert result["ok"] and result["result"]["status"] == "clustered"
    issues = cloud.client("dynamodb").scan(TableName=cloud.outputs["IssuesTableName"])["Items"]
    assert len(issues) == result["result"]["issues"] >= 2

    report = cloud.cli("local", "tick", "--function", "ReportFunction", "--json")
    results = [json.loads(line) for line in report.stdout.splitlines()]
    assert {r["schedule"] for r in results} == {"ReportFunctionDaily", "ReportFunctionWeekly"}
    assert all(r["ok"] for r in results)
    keys = [o["Key"] for o in cloud.client("s3").list_objects_v2(Bucket=cloud.outputs["DataBucketName"], Prefix="reports/")["Contents"]]
    assert any(k.startswith("reports/7d/") and k.endswith(".eml") for k in keys)
    # What `make demo` counts as "emails sent": the reports' messages, not SES's sender identity record.
    mails = sent_emails(cloud.state["endpoint"])
    assert all("Subject: SupportLens" in m["raw_data"] for m in mails)
    assert {r["result"]["message_id"] for r in results} <= {m["id"] for m in mails}


def test_unknown_schedule_is_a_clear_error(cloud):
    result = cloud.cli("local", "tick", "--function", "Ingest", check=False)
    assert result.returncode != 0 and "no schedule" in result.stderr


def test_edited_template_copy_is_what_runs(fast_retry_cloud):
    attrs = fast_retry_cloud.client("sqs").get_queue_attributes(
        QueueUrl=fast_retry_cloud.outputs["TicketsQueueUrl"], AttributeNames=["VisibilityTimeout", "RedrivePolicy"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "2"
    assert json.loads(attrs["RedrivePolicy"])["maxReceiveCount"] == 2


def test_poison_goes_to_dlq_and_only_it_is_retried(fast_retry_cloud):
    cloud = fast_retry_cloud
    sqs = cloud.client("sqs")
    queue, dlq = cloud.outputs["TicketsQueueUrl"], cloud.outputs["TicketsDLQUrl"]
    before = cloud.status()["pollers"]["EnrichFunctionTickets"]["records"]
    good = [{"Id": str(i), "MessageBody": json.dumps({"schema": "supportlens.ticket/v1", "ticket": {
        "ticket_id": f"e2e-good-{i}", "text": f"my parcel {i} is late again", "created_at": "2024-06-01T09:00:00Z"}})}
        for i in range(4)]
    poison = {"Id": "p", "MessageBody": json.dumps({"schema": "supportlens.ticket-batch/v99", "tickets": []})}
    sqs.send_message_batch(QueueUrl=queue, Entries=[*good[:2], poison, *good[2:]])

    def in_dlq():
        return sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=1).get("Messages")

    dead = cloud.wait_until(in_dlq, 60, "the poison message in the DLQ")
    assert [json.loads(m["Body"])["schema"] for m in dead] == ["supportlens.ticket-batch/v99"]
    ddb = cloud.client("dynamodb")
    for i in range(4):
        assert "Item" in ddb.get_item(TableName=cloud.outputs["TicketsTableName"], Key={"ticket_id": {"S": f"e2e-good-{i}"}})
    # Delivered: 4 good once each + the poison twice (maxReceiveCount 2). Good ones were never retried.
    after = cloud.status()["pollers"]["EnrichFunctionTickets"]["records"]
    assert after - before == 4 + 2


def test_down_stops_everything(tmp_path):
    from tests.e2e.conftest import ROOT, Cloud

    c = Cloud(tmp_path, ROOT / "template.yaml").up()
    c.cli("local", "tick", "--function", "Alerts")  # warm a worker process
    pid = c.state["pid"]
    c.down()
    with pytest.raises(OSError):
        os.kill(pid, 0)
    with pytest.raises(OSError):
        urllib.request.urlopen(c.state["endpoint"] + "/moto-api/data.json", timeout=2)
    assert not (tmp_path / "local.json").exists()
    leftovers = os.popen("pgrep -f 'awslambdaric' -a").read()
    assert str(tmp_path) not in leftovers


def test_a_cloud_this_process_started_stops_when_asked(tmp_path):
    """`make demo` starts the cloud as its own child and stops it: the exited child is a zombie until
    reaped, which kill(pid, 0) still finds, so `down` used to wait out 30 s + 10 s and kill it."""
    import subprocess
    import sys

    from tests.e2e.conftest import ROOT

    script = ("from pathlib import Path; from localcloud import cli as local; "
              f"local.up(Path({str(ROOT / 'template.yaml')!r}), None, []); print(local.down())")
    env = {**os.environ, "SUPPORTLENS_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    how = done.stdout.strip().splitlines()[-1]
    assert how.startswith("stopped ("), how
