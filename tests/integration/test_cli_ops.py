"""The `supportlens` client commands as an operator meets them, against the template's resources on
moto: folders, unknown sources, an unreachable cloud, an interrupted wait, quarantined rows and
their reasons, exit codes."""

from __future__ import annotations

import json
import os
from urllib.parse import quote_plus

import pytest

from localcloud.cloud import free_port
from tests.conftest import ROOT

SAMPLES = ROOT / "events" / "samples"


@pytest.fixture
def cli(deployment, tmp_path, monkeypatch):
    """supportlens_cli.main with the local-cloud state pointing at this session's moto server."""
    from supportlens_cli import client, main

    state = tmp_path / "local.json"
    state.write_text(json.dumps({"endpoint": os.environ["AWS_ENDPOINT_URL"], "region": "us-east-1",
                                 "outputs": deployment.outputs, "parameters": {}}))
    monkeypatch.setattr(client, "STATE_FILE", state)
    for key in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, os.environ.get(key, "testing"))
    monkeypatch.delenv("SUPPORTLENS_STACK", raising=False)
    return main


def test_upload_a_folder_puts_each_of_its_files(cli, deployment, aws, tmp_path, capsys):
    folder = tmp_path / "drop"
    folder.mkdir()
    for name in ("a.csv", "b.jsonl", ".hidden"):
        (folder / name).write_text("x\n")
    assert cli.main(["upload", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "uploaded incoming/a.csv" in out and "uploaded incoming/b.jsonl" in out and ".hidden" not in out
    keys = {o["Key"] for o in aws("s3").list_objects_v2(Bucket=deployment.outputs["DataBucketName"], Prefix="incoming/")["Contents"]}
    assert {"incoming/a.csv", "incoming/b.jsonl"} <= keys
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["upload", str(empty)]) == 1 and "no files in it" in capsys.readouterr().err
    assert cli.main(["upload", str(tmp_path / "missing.csv")]) == 1 and "no such file or folder" in capsys.readouterr().err


def test_an_unknown_source_is_refused_with_the_known_ones(cli, capsys):
    assert cli.main(["upload", str(SAMPLES / "calls_sample.csv"), "--source", "carrier-pigeon"]) == 1
    err = capsys.readouterr().err
    assert "unknown --source 'carrier-pigeon'" in err and "twcs" in err and "Traceback" not in err


def test_an_unreachable_cloud_is_one_line_not_a_traceback(cli, tmp_path, monkeypatch, capsys):
    from supportlens_cli import client

    state = tmp_path / "dead.json"
    state.write_text(json.dumps({"endpoint": f"http://127.0.0.1:{free_port()}", "region": "us-east-1", "outputs": {}}))
    monkeypatch.setattr(client, "STATE_FILE", state)
    assert cli.main(["status"]) == 1
    err = capsys.readouterr().err
    assert "does not answer" in err and "supportlens local up" in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_a_wait_that_times_out_prints_where_every_file_stood(cli, capsys):
    # nothing consumes the queues here, so the file never finishes
    code = cli.main(["upload", str(SAMPLES / "helpdesk_sample.jsonl"), "--wait", "--timeout", "1"])
    captured = capsys.readouterr()
    assert code == 1 and "timed out after 1s" in captured.err
    assert "helpdesk_sample.jsonl" in captured.out and "waiting" in captured.out  # the table, not silence


def test_quarantined_rows_show_their_reasons_in_status_and_quarantine(cli, deployment, aws, ingest, capsys):
    """The calls sample has 2 bad rows: `status` prints the top reasons, `supportlens quarantine` all of
    them (and the raw rows only with --raw); an all-complete upload with quarantined rows exits 3."""
    bucket = deployment.outputs["DataBucketName"]
    key = "incoming/calls/ops_calls.csv"
    body = (SAMPLES / "calls_sample.csv").read_bytes()
    etag = aws("s3").put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
    event = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": bucket},
             "object": {"key": quote_plus(key), "eTag": etag, "size": len(body)}}}]}
    record = {"messageId": "m1", "receiptHandle": "r", "body": json.dumps(event), "attributes": {"ApproximateReceiveCount": "1"},
              "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:q",
              "awsRegion": "us-east-1"}
    assert ingest(record) == {"batchItemFailures": []}
    aws("sqs").purge_queue(QueueUrl=deployment.outputs["TicketsQueueUrl"])  # other modules read this queue: leave it empty

    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert "ops_calls.csv" in out and "quarantined 1:" in out and "supportlens quarantine quarantine/" in out

    assert cli.main(["quarantine", "ops_calls.csv"]) == 0
    out = capsys.readouterr().out
    assert "2 quarantined record(s)" in out and "row " in out and "raw:" not in out
    assert cli.main(["quarantine", "ops_calls.csv", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2 and all(r["reason"] and "raw" not in r for r in rows)
    assert cli.main(["quarantine", "ops_calls.csv", "--raw"]) == 0 and "raw:" in capsys.readouterr().out
    assert cli.main(["quarantine", "never_uploaded.csv"]) == 1 and "no quarantined rows" in capsys.readouterr().err

    from supportlens_cli.main import EXIT_NOT_COMPLETE, EXIT_QUARANTINED, _exit_code

    assert _exit_code([{"status": "complete", "rows_quarantined": 0}]) == 0
    assert _exit_code([{"status": "complete", "rows_quarantined": 2}]) == EXIT_QUARANTINED
    assert _exit_code([{"status": "rejected", "rows_quarantined": 0}]) == EXIT_NOT_COMPLETE


def test_alerts_json_prints_an_empty_list_when_there_are_none(cli, deployment, capsys, monkeypatch):
    from supportlens_cli import reports

    monkeypatch.setattr(reports, "recent_alerts", lambda table, limit: [])
    assert cli.main(["alerts", "--json"]) == 0 and capsys.readouterr().out.strip() == "[]"


def test_report_rejects_a_zero_or_huge_period(cli, capsys):
    assert cli.main(["report", "--period", "0d"]) == 1 and "1 to 366 days" in capsys.readouterr().err
    assert cli.main(["dashboard", "--period", "999d"]) == 1 and "1 to 366 days" in capsys.readouterr().err
    assert cli.main(["report", "--end", "yesterday"]) == 1 and "--end must be a date" in capsys.readouterr().err


def test_file_states_count_what_enrich_quarantined_and_ingest_retries():
    from supportlens_cli.client import FINAL, file_state

    emitted = {"status": "emitted", "tickets_emitted": 5, "tickets_stored": 3, "duplicates": 1}
    assert file_state(emitted) == "enriching"
    assert file_state({**emitted, "tickets_quarantined": 1}) == "complete"  # Enrich rejected one: done, not stuck
    assert file_state({"status": "failed", "attempts": 1}) == "retrying" and "retrying" not in FINAL
    assert file_state({"status": "failed", "attempts": 3}) == "failed" in FINAL  # in the IngestDLQ: a person must look
    assert file_state({"status": "superseded"}) == "superseded" in FINAL
