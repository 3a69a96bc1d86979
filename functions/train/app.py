"""TrainFunction: labelled CSVs under training/<task>/ (via TrainingQueue) -> a published model Enrich picks up."""

import json

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from supportlens.adapters.s3 import event_key, s3_records
from supportlens.logic.train import train_object
from supportlens.observability import logger

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> list[dict]:
    results = []
    for s3_record in s3_records(json.loads(record.body)):
        key = event_key(s3_record["s3"]["object"]["key"])
        if key.startswith("training/"):
            results.append(train_object(s3_record["s3"]["bucket"]["name"], key))
    return results


@logger().inject_lambda_context
def handler(event, context):
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
