"""Ingest use case: one S3 notification -> lineage, quarantine file, ticket messages."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any

from ..adapters import dynamo, s3, sqs
from ..domain.ingest import IngestReport, ingest_file
from ..domain.text import mask_pii_deep
from ..observability import logger
from ..settings import Settings

DONE_STATUSES = {"emitted", "rejected", "partial", "superseded"}


def quarantine_key(key: str, etag: str = "") -> str:
    """One quarantine object per uploaded version (ETag): a re-upload keeps v1's evidence."""
    return f"quarantine/{key}.{etag}.errors.jsonl" if etag else f"quarantine/{key}.errors.jsonl"


def ingest_object(
    bucket: str, key: str, etag: str, size: int, settings: Settings, received_at: datetime | None = None,
    version_id: str | None = None,
) -> dict[str, Any]:
    """Process one uploaded object once per (key, ETag); a redelivery or re-upload is a no-op."""
    file_id = f"{key}#{etag}"
    started = time.monotonic()
    now = datetime.now(timezone.utc).isoformat()
    fresh = dynamo.put_if_absent(
        settings.files_table,
        {"file_id": file_id, "key": key, "etag": etag, "size": size, "status": "ingesting", "received_at": now},
        "file_id",
    )
    attempts = 1
    if not fresh:
        existing = dynamo.get(settings.files_table, {"file_id": file_id}) or {}
        if existing.get("status") in DONE_STATUSES:
            logger().info("duplicate notification skipped", extra={"file_id": file_id})
            return {"file_id": file_id, "status": "duplicate"}
        logger().info("resuming a file whose earlier attempt did not finish", extra={"file_id": file_id})
        attempts = int(existing.get("attempts", 1)) + 1
        resumed: dict[str, Any] = {"status": "ingesting", "attempts": attempts}
        if existing.get("status") == "ingesting":  # that attempt ended without a word: a timeout or a killed process
            resumed["last_error"] = f"ingest attempt {attempts - 1} did not finish (timed out or its process ended); retrying"
        dynamo.update_fields(settings.files_table, {"file_id": file_id}, resumed)

    try:
        report: IngestReport = ingest_file(
            lambda: s3.open_object(bucket, key, version_id, etag),
            key,
            file_id,
            lambda messages: sqs.send_json(settings.tickets_queue_url, messages),
            received_at or datetime.now(timezone.utc),
        )
    except s3.ObjectChanged as exc:
        # Overwritten (or deleted) before it was read and the bucket keeps no old versions: the rows of this
        # version are gone, the newer upload has a notification of its own. Said, not retried.
        reason = ("the object was replaced or deleted before it could be read (" + str(exc) + "); the newer upload, "
                  "if any, is ingested under its own ETag")
        dynamo.update_fields(settings.files_table, {"file_id": file_id},
                             {"status": "superseded", "reason": reason, "attempts": attempts,
                              "finished_at": datetime.now(timezone.utc).isoformat()})
        logger().warning("notified object version is gone", extra={"file_id": file_id, "code": str(exc)})
        return {"file_id": file_id, "status": "superseded"}
    except Exception as exc:
        # The notification is retried (then lands in the IngestDLQ), but the lineage says why now;
        # the retry re-sends the same chunk numbers, which Enrich counts once.
        response = getattr(exc, "response", None)  # botocore's ClientError: its error code, never a value
        error = str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
        last_error = f"ingest attempt {attempts} failed ({type(exc).__name__}{': ' + error if error else ''}); the notification is retried"
        dynamo.update_fields(settings.files_table, {"file_id": file_id}, {"status": "failed", "last_error": last_error, "attempts": attempts})
        logger().error("ingest failed", extra={"file_id": file_id, "error": type(exc).__name__, "code": error, "attempts": attempts})
        raise
    qkey = quarantine_key(key, etag)
    if report.quarantine or report.reason:
        lines = [json.dumps({"file": key, "reason": report.reason}, ensure_ascii=False)] if report.reason else []
        lines += [json.dumps({**q, "raw": mask_pii_deep(q["raw"])} if "raw" in q else q, ensure_ascii=False) for q in report.quarantine]
        s3.put(bucket, qkey, ("\n".join(lines) + "\n").encode(), "application/x-ndjson")
    fields = report.counts() | {
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "ingest_ms": round((time.monotonic() - started) * 1000),
        "attempts": attempts,
    }
    if report.quarantine or report.reason:
        fields["quarantine_key"] = qkey
    dynamo.update_fields(settings.files_table, {"file_id": file_id}, fields)
    logger().info("file ingested", extra={"file_id": file_id, **report.counts()})
    return {"file_id": file_id, **report.counts()}
