"""No raw PII at rest or in logs: plant e-mail addresses, phone numbers, a card number and a name (ids,
texts, a quarantined row, a ticket event), run the whole flow on the local cloud (ingest, enrich,
alerts, cluster, report, dashboard), then read back every table, every S3 object (decoding e-mails,
gzip and npz arrays) and every log line, and find none of them."""

from __future__ import annotations

import email
import gzip
import io
import json
import zipfile
from email import policy

import numpy as np
import pytest

pytestmark = pytest.mark.e2e

EMAIL = "zoe.planted@example.org"
PHONE = "+1 415 555 0199"
CARD = "4111.1111.1111.1111"
NAME = "Zoe Plantedname"  # introduced in a message ("My name is ...")
PLANTED = (EMAIL, PHONE, CARD, "4111111111111111", "4155550199", "415 555 0199", "zoe.planted", "Plantedname")

CALLS = f"""interaction_id,customer_id,agent_id,channel,start_time,end_time,status,notes,queue
PII-1,{EMAIL},{PHONE},voice,2024-06-03T08:00:00Z,2024-06-03T08:30:00Z,failed,"Card {CARD} charged twice, call me on {PHONE} or {EMAIL}",billing
PII-2,{EMAIL},A-17,chat,2024-06-03T09:00:00Z,2024-06-03T09:05:00Z,success,"Refund for card {CARD} please",billing
PII-3,{EMAIL},A-17,carrier-pigeon,2024-06-03T10:00:00Z,,success,"Bad channel row with card {CARD} and {EMAIL}",billing
"""


def _strings_of_npz(raw: bytes) -> str:
    with np.load(io.BytesIO(raw), allow_pickle=False) as arrays:
        return "\n".join(" ".join(map(str, arrays[name].ravel().tolist())) for name in arrays.files
                         if arrays[name].dtype.kind in "US")


def _readable(key: str, raw: bytes) -> str:
    """An S3 object as the text a person (or an attacker) could read out of it."""
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if key.endswith(".npz") or raw[:4] == b"PK\x03\x04":
        try:
            return _strings_of_npz(raw)
        except (ValueError, zipfile.BadZipFile):
            pass
    if key.endswith(".eml"):
        message = email.message_from_bytes(raw, policy=policy.default)
        return "\n".join(part.get_content() for part in message.walk() if part.get_content_maintype() == "text")
    return raw.decode("utf-8", errors="replace")


def _found(text: str) -> list[str]:
    return [p for p in PLANTED if p in text]


def test_planted_pii_is_nowhere_at_rest_or_in_logs(cloud, tmp_path):
    calls = tmp_path / "pii_calls.csv"
    calls.write_text(CALLS)
    done = cloud.cli("upload", str(calls), "--wait", "--json", "--timeout", "300", check=False)
    row = json.loads(done.stdout.splitlines()[-1])
    assert row["status"] == "complete" and row["rows_read"] == 3 and row["rows_quarantined"] == 1, row
    sqs = cloud.client("sqs")
    queue = cloud.outputs["TicketsQueueUrl"]
    event = {"schema": "supportlens.ticket/v1", "ticket": {
        "ticket_id": f"crm:{EMAIL}", "source": "crm", "channel": "email", "author_id": EMAIL, "agent_id": PHONE,
        "company": "acme", "created_at": "2024-06-03T11:00:00Z", "text": f"My name is {NAME}, I am {EMAIL}, phone {PHONE}, card {CARD}. Refund!"}}
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(event))
    bad = {"schema": "supportlens.ticket/v1", "ticket": {"ticket_id": "bad-1", "source": "crm", "author_id": EMAIL,
                                                         "created_at": "not a date", "text": f"card {CARD}"}}
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(bad))

    ddb = cloud.client("dynamodb")
    tickets = cloud.outputs["TicketsTableName"]

    def event_stored():
        return ddb.scan(TableName=tickets, Select="COUNT")["Count"] >= 3 and cloud.client("s3").list_objects_v2(
            Bucket=cloud.outputs["DataBucketName"], Prefix="quarantine/events/").get("KeyCount", 0) >= 1

    cloud.wait_until(event_stored, 120, "the ticket events stored and quarantined")
    cloud.cli("local", "tick", "--function", "Alerts")
    cloud.cli("local", "tick", "--function", "Cluster")  # too few tickets to cluster: it says so, writes nothing personal
    cloud.cli("report", "--period", "7d", "--end", "2024-06-09", "--out", str(tmp_path / "out"), "--json")

    leaks: list[str] = []
    seen_tables = 0
    for table in ddb.list_tables()["TableNames"]:
        seen_tables += 1
        for page in ddb.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                found = _found(json.dumps(item))
                if found:
                    leaks.append(f"table {table}: {found} in {str(item)[:300]}")
    assert seen_tables >= 5
    s3 = cloud.client("s3")
    bucket = cloud.outputs["DataBucketName"]
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in page.get("Contents", [])]
    for key in keys:
        if key.startswith("incoming/"):
            continue  # the upload itself: the customer's own file, before SupportLens touched it
        text = _readable(key, s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        found = _found(text)
        if found:
            leaks.append(f"s3 {key}: {found}")
    prefixes = {k.split("/", 1)[0] for k in keys}
    assert {"quarantine", "features", "reports"} <= prefixes, prefixes
    logs = list((cloud.home / "logs").glob("*.log"))
    assert logs
    for log in logs:
        for number, line in enumerate(log.read_text(errors="replace").splitlines(), 1):
            found = _found(line)
            if found:
                leaks.append(f"log {log.name}:{number}: {found}: {line[:300]}")
    for name in ("report-7d.html", "report-7d.json", "dashboard-7d.html"):
        found = _found((tmp_path / "out" / name).read_text())
        if found:
            leaks.append(f"out/{name}: {found}")
    assert not leaks, "\n".join(leaks)

    # ...while the same customer stays one customer: both calls and the event share one pseudonymous id
    items = [i for page in ddb.get_paginator("scan").paginate(TableName=tickets) for i in page["Items"]]
    authors = {i["author_id"]["S"] for i in items if i.get("source", {}).get("S") in ("calls", "crm")}
    assert len(authors) == 1 and next(iter(authors)).startswith("pid-")
