"""One file of each supported format through the local cloud: exact lineage and stored fields."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from boto3.dynamodb.types import TypeDeserializer

from tests.conftest import ROOT

pytestmark = pytest.mark.e2e
SAMPLES = ROOT / "events" / "samples"
EXPECTED = {  # file: (source, rows_read, rows_quarantined)
    "twcs_sample.csv": ("twcs", 1939, 0),
    "airline_sample.csv": ("airline", 200, 0),
    "escalations_sample.csv": ("escalations", 9, 3),
    "calls_sample.csv": ("calls", 9, 2),
    "helpdesk_sample.jsonl": ("helpdesk", 6, 2),
    "endava_sample.csv": ("endava", 200, 0),
}


def get(cloud, ticket_id: str) -> dict:
    item = cloud.client("dynamodb").get_item(TableName=cloud.outputs["TicketsTableName"], Key={"ticket_id": {"S": ticket_id}})["Item"]
    out = {k: TypeDeserializer().deserialize(v) for k, v in item.items()}
    return {k: float(v) if isinstance(v, Decimal) else v for k, v in out.items()}


def test_every_format_is_accounted_for(cloud):
    paths = [str(SAMPLES / name) for name in EXPECTED]
    result = cloud.cli("upload", *paths, "--wait", "--json", "--timeout", "300", check=False)
    rows = {r["key"].rsplit("/", 1)[1]: r for r in map(json.loads, result.stdout.splitlines())}
    assert set(rows) == set(EXPECTED), result.stderr
    assert result.returncode == 3  # all complete, some rows quarantined
    status = cloud.cli("status").stdout  # the operator sees why without opening S3
    assert status.count("all reasons: supportlens quarantine quarantine/") == sum(1 for *_, q in EXPECTED.values() if q)
    assert "2 quarantined record(s)" in cloud.cli("quarantine", "calls_sample.csv").stdout
    for name, (source, read, quarantined) in EXPECTED.items():
        row = rows[name]
        assert row["source"] == source, name
        assert (row["rows_read"], row["rows_quarantined"]) == (read, quarantined), name
        assert row["rows_read"] == row["tickets_emitted"] + row["rows_quarantined"], name
        assert row["tickets_stored"] == row["tickets_emitted"] and row["status"] == "complete", name
        if quarantined:
            body = cloud.client("s3").get_object(Bucket=cloud.outputs["DataBucketName"], Key=row["quarantine_key"])["Body"].read()
            reasons = [json.loads(line) for line in body.decode().splitlines()]
            assert len(reasons) == quarantined and all(r["reason"] and r["row"] for r in reasons)

    call = get(cloud, "calls:CALL-1")
    assert (call["call_status"], call["call_duration_s"], call["agent_id"], call["channel"]) == ("failed", 3720.0, "A-17", "voice")
    silent = get(cloud, "calls:CALL-4")
    assert silent["text_is_summary"] is True and "failed" in silent["text"]
    helpdesk = get(cloud, "helpdesk:HD-2001")
    assert (helpdesk["first_response_s"], helpdesk["resolution_s"], helpdesk["tier"], helpdesk["priority"]) == (1200.0, 14400.0, "gold", "high")
    case = get(cloud, "escalations:ESC-1001")
    assert (case["concession_amount"], case["region"], case["delivery_status"]) == (49.99, "EMEA", "failed_first_attempt")
    assert get(cloud, "escalations:ESC-1002")["escalation"] == "legal_threat"
    airline = get(cloud, "airline:570306133677760513")
    assert airline["company"] == "Virgin America" and airline["created_at"] == "2015-02-24T19:35:52Z"
