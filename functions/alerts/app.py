"""AlertsFunction: per-ticket rules from the tickets stream; windowed rules on a schedule."""

import os

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from supportlens.adapters.dynamo import from_dynamo
from supportlens.logic.alert_config import ConfigCache
from supportlens.logic.alerts import on_schedule, on_ticket
from supportlens.observability import logger
from supportlens.settings import Settings

SETTINGS = Settings.from_env(os.environ)
CONFIG = ConfigCache()  # defaults, or the S3/SSM override; re-read every 5 minutes
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(record: DynamoDBRecord) -> None:
    if record.event_name and record.event_name.name != "INSERT":
        return
    image = from_dynamo(record.dynamodb.new_image or {})
    on_ticket(image, CONFIG.get(SETTINGS), SETTINGS)


@logger().inject_lambda_context
def handler(event, context):
    if isinstance(event, dict) and "Records" in event:
        return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    return on_schedule(CONFIG.get(SETTINGS), SETTINGS)
