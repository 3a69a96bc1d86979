"""Item 11: an export without ticket ids (Endava), uploaded again under another name, stores and
counts nothing twice: its rows are the same tickets (their ids are digests of their content)."""

from __future__ import annotations

import csv
import io
import uuid

from supportlens.adapters import dynamo
from tests.conftest import ROOT
from tests.integration.test_pipeline_handlers import drain, put, sqs_record
from supportlens.logic.counters import read_partition  # summed over the write shards

SAMPLE = ROOT / "events" / "samples" / "endava_sample.csv"


def test_the_same_export_under_another_name_is_duplicates_not_new_tickets(aws, deployment, ingest, enrich):
    bucket, queue = deployment.outputs["DataBucketName"], deployment.outputs["TicketsQueueUrl"]
    run = uuid.uuid4().hex[:8]
    body = _unique_export(run)  # other tests upload the sample too: these tickets must be new to this session
    keys = [f"incoming/endava/{run}/export.csv", f"incoming/endava/{run}/export (copy).csv"]
    volumes = [_web_volume(deployment)]
    for key in keys:
        assert ingest(put(aws, bucket, key, body)) == {"batchItemFailures": []}
        messages = drain(aws, queue)
        assert messages and enrich([sqs_record(m["Body"]) for m in messages]) == {"batchItemFailures": []}
        volumes.append(_web_volume(deployment))
    assert volumes[1] - volumes[0] == 200 and volumes[2] == volumes[1]  # counted once
    lineage = {f["key"]: f for f in dynamo.scan_all(deployment.outputs["FilesTableName"]) if f["key"] in keys}
    first, second = lineage[keys[0]], lineage[keys[1]]
    assert (first["tickets_emitted"], first["tickets_stored"], first.get("duplicates", 0)) == (200, 200, 0)
    assert (second["tickets_emitted"], second["tickets_stored"], second["duplicates"]) == (200, 0, 200)
    stored = [t for t in dynamo.scan_all(deployment.outputs["TicketsTableName"]) if run in str(t.get("text", ""))]
    assert len(stored) == 200 and all(t["chunk_id"].startswith(keys[0]) for t in stored)
    # No timestamps in the export: each ticket says its created_at is the upload time, and so does the
    # clustering's corpus (such tickets never make an issue emerge).
    assert all(t.get("created_at_is_upload") is True for t in stored)
    from datetime import datetime, timezone

    from supportlens.logic.cluster import load_corpus

    corpus = load_corpus(bucket, 2, datetime.now(timezone.utc))
    ids = {t["ticket_id"] for t in stored}
    mine = [i for i, ticket_id in enumerate(corpus.ticket_ids) if ticket_id in ids]
    assert len(mine) == 200 and corpus.upload_dated[mine].all()
    assert not corpus.upload_dated[[i for i, t in enumerate(corpus.ticket_ids) if t.startswith("twcs:")]].any()


def _unique_export(run: str) -> bytes:
    rows = list(csv.DictReader(io.StringIO(SAMPLE.read_text(encoding="utf-8"))))
    for row in rows:
        row["title"] = f"{row['title']} {run}"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _web_volume(deployment) -> int:
    """Customer messages on the web channel (Endava's) dated today, from the aggregates."""
    from datetime import datetime, timezone

    day = datetime.now(timezone.utc).date().isoformat()
    rows = read_partition(deployment.outputs["AggregatesTableName"], f"day#{day}")
    return sum(int(r.get("volume", 0)) for r in rows if r["sk"].endswith("#channel#web"))
