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


def record_handler(record: SQSRecord) -> dict:
    try:
        return store_message(record.body, SETTINGS, MODELS)
    except Exception as exc:
        # The record goes back to the queue; say which and why (the class only: messages may quote ticket content).
        logger().warning("record failed", extra={"message_id": record.message_id, "error": type(exc).__name__})
        raise


@logger().inject_lambda_context
def handler(event, context):
    # A processor per invocation: it holds the invocation's results, and tests run handlers concurrently.
    processor = BatchProcessor(event_type=EventType.SQS)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
