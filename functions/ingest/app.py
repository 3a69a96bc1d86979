"""IngestFunction: S3 ObjectCreated notifications (via IngestQueue) -> tickets on TicketsQueue."""

import json
import os
from datetime import datetime

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from supportlens.adapters.s3 import event_key, s3_records
from supportlens.logic.ingest import ingest_object
from supportlens.observability import logger
from supportlens.settings import Settings

SETTINGS = Settings.from_env(os.environ)
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    for s3_record in s3_records(json.loads(record.body)):
        obj = s3_record["s3"]["object"]
        key = event_key(obj["key"])
        if not key.startswith("incoming/"):
            continue
        received = s3_record.get("eventTime")
        ingest_object(
            s3_record["s3"]["bucket"]["name"], key, obj.get("eTag", ""), int(obj.get("size", 0)), SETTINGS,
            datetime.fromisoformat(received.replace("Z", "+00:00")) if received else None,
            version_id=obj.get("versionId"),  # read the version that was notified, not whatever the key holds now
        )


@logger().inject_lambda_context
def handler(event, context):
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
