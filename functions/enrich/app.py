"""EnrichFunction: ticket messages from TicketsQueue -> enriched tickets, aggregates, lineage."""

import os

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from supportlens.logic.enrich import ModelCache, load_models, store_message
from supportlens.observability import logger
from supportlens.settings import Settings

SETTINGS = Settings.from_env(os.environ)
MODELS = ModelCache()
load_models()
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> dict:
    return store_message(record.body, SETTINGS, MODELS)


@logger().inject_lambda_context
def handler(event, context):
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
