"""The SQS poller invokes up to `concurrency` batches of one queue at once, like Lambda."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from localcloud.deployer import EventSourceMapping
from localcloud.pollers import SqsPoller


class FakeSqs:
    def __init__(self, n: int) -> None:
        self.waiting = [{"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": "{}"} for i in range(n)]
        self.deleted: list[str] = []
        self.lock = threading.Lock()

    def get_queue_url(self, QueueName: str) -> dict:  # noqa: N803 - boto3 names
        return {"QueueUrl": f"http://sqs/{QueueName}"}

    def receive_message(self, MaxNumberOfMessages: int, WaitTimeSeconds: int, **_) -> dict:  # noqa: N803
        with self.lock:
            got, self.waiting = self.waiting[:MaxNumberOfMessages], self.waiting[MaxNumberOfMessages:]
        if not got:
            time.sleep(0.05)
        return {"Messages": got}

    def delete_message_batch(self, Entries: list[dict], **_) -> None:  # noqa: N803
        with self.lock:
            self.deleted.extend(e["ReceiptHandle"] for e in Entries)


class FakeLambdas:
    def __init__(self) -> None:
        self.running = self.most = 0
        self.lock = threading.Lock()

    def invoke(self, name: str, event: dict) -> SimpleNamespace:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.3)
        with self.lock:
            self.running -= 1
        return SimpleNamespace(error=None, payload={"batchItemFailures": []})


def run(concurrency: int, batches: int = 4) -> tuple[FakeSqs, FakeLambdas, SqsPoller, float]:
    esm = EventSourceMapping("Esm", "EnrichFunction", "arn:aws:sqs:us-east-1:123456789012:tickets", "sqs",
                             batch_size=1, batching_window_s=0, report_item_failures=True)
    sqs, lambdas = FakeSqs(batches), FakeLambdas()
    poller = SqsPoller(esm, lambdas, sqs, "us-east-1", concurrency=concurrency)
    started = time.monotonic()
    poller.start()
    while len(sqs.deleted) < batches and time.monotonic() - started < 10:
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    poller.stop()
    poller.join(5)
    return sqs, lambdas, poller, elapsed


def test_batches_of_one_queue_run_concurrently_up_to_the_setting():
    sqs, lambdas, poller, elapsed = run(concurrency=2)
    assert sorted(sqs.deleted) == ["r0", "r1", "r2", "r3"]
    assert lambdas.most == 2 and elapsed < 4 * 0.3
    assert poller.stats.invocations == 4 and poller.stats.in_flight == 0 and not poller.stats.busy


def test_concurrency_one_invokes_one_batch_at_a_time():
    sqs, lambdas, poller, _ = run(concurrency=1)
    assert sorted(sqs.deleted) == ["r0", "r1", "r2", "r3"] and lambdas.most == 1


# --------------------------------------------------------------------------- on-failure destinations


class FakeStreams:
    """One shard holding two records, then nothing."""

    def __init__(self) -> None:
        self.served = False

    def describe_stream(self, StreamArn: str) -> dict:  # noqa: N803
        return {"StreamDescription": {"Shards": [{"ShardId": "shard-1"}]}}

    def get_shard_iterator(self, **_) -> dict:
        return {"ShardIterator": "it"}

    def get_records(self, **_) -> dict:
        if self.served:
            return {"Records": [], "NextShardIterator": "it"}
        self.served = True
        return {"Records": [{"eventName": "INSERT", "dynamodb": {"SequenceNumber": n, "ApproximateCreationDateTime": 1}}
                            for n in ("100", "101")], "NextShardIterator": "it"}


class Sent:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    def get_queue_url(self, QueueName: str) -> dict:  # noqa: N803
        return {"QueueUrl": f"http://sqs/{QueueName}"}

    def send_message(self, **request) -> None:
        self.messages.append(request)


class AlwaysFails:
    invocations = 0

    def invoke(self, name: str, event: dict) -> SimpleNamespace:
        self.invocations += 1
        return SimpleNamespace(error={"errorType": "RuntimeError", "errorMessage": "boom"}, payload=None)


def test_a_stream_batch_out_of_retries_goes_to_the_on_failure_destination():
    from localcloud.pollers import StreamPoller

    esm = EventSourceMapping("Alerts", "AlertsFunction", "arn:aws:dynamodb:us-east-1:1:table/t/stream/s", "dynamodb",
                             batch_size=100, batching_window_s=0, report_item_failures=True, max_retry_attempts=2,
                             on_failure_arn="arn:aws:sqs:us-east-1:123456789012:failures-dlq")
    lambdas, sent = AlwaysFails(), Sent()
    poller = StreamPoller(esm, lambdas, FakeStreams(), "us-east-1", sent)
    poller.start()
    deadline = time.monotonic() + 10
    while not sent.messages and time.monotonic() < deadline:
        time.sleep(0.05)
    poller.stop()
    poller.join(5)
    assert lambdas.invocations == 3  # the first try and 2 retries
    (message,) = sent.messages
    assert message["QueueUrl"] == "http://sqs/failures-dlq"
    import json

    body = json.loads(message["MessageBody"])
    info = body["DDBStreamBatchInfo"]
    assert (info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == ("shard-1", "100", "101", 2)
    assert body["requestContext"]["condition"] == "RetryAttemptsExhausted" and body["responseContext"]["functionError"] == "RuntimeError"


def test_a_failed_scheduled_invocation_goes_to_the_functions_dead_letter_queue():
    from localcloud.cloud import LocalCloud
    from localcloud.deployer import Schedule

    sent = Sent()
    cloud = LocalCloud.__new__(LocalCloud)
    cloud._tick_lock = threading.Lock()
    function = SimpleNamespace(name="ReportFunction", dead_letter_arn="arn:aws:sqs:us-east-1:123456789012:failures-dlq")
    cloud.deployment = SimpleNamespace(schedules=[Schedule("Weekly", "ReportFunction", "cron(0 7 ? * MON *)", {"period": "7d"})],
                                       function=lambda name: function)
    cloud.invoke = lambda name, event: SimpleNamespace(error={"errorType": "KeyError", "errorMessage": "x"}, payload=None,
                                                       request_id="req-1", duration_ms=5)
    cloud.client = lambda service: sent
    (result,) = cloud.tick("ReportFunction")
    assert not result["ok"]
    (message,) = sent.messages
    assert message["QueueUrl"] == "http://sqs/failures-dlq" and message["MessageBody"] == '{"period": "7d"}'
    assert message["MessageAttributes"]["RequestID"]["StringValue"] == "req-1"


# --------------------------------------------------------------------------- stream records in their wire shape


def _b64(value):
    """A botocore-parsed stream image with its binaries as the base64 text the wire (and Lambda) carries."""
    import base64

    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _b64(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_b64(v) for v in value]
    return value


def test_the_stream_pollers_records_make_the_event_botocores_would():
    """Records read through WireRecordsParser make the same Lambda event (and on-failure record) as
    records botocore parses, binaries base64 as Lambda sends them; other answers parse as before."""
    import boto3
    import botocore.session

    from localcloud.cloud import free_port, start_emulator
    from localcloud.pollers import WireRecordsParser, WireRecordsParserFactory, _lambda_stream_record, stream_failure_record

    port = free_port()
    server = start_emulator(port)
    try:
        creds = {"endpoint_url": f"http://127.0.0.1:{port}", "region_name": "us-east-1",
                 "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        ddb = boto3.client("dynamodb", **creds)
        arn = ddb.create_table(
            TableName="tickets", BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "ticket_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "ticket_id", "AttributeType": "S"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})["TableDescription"]["LatestStreamArn"]
        item = {"ticket_id": {"S": "t1"}, "n": {"N": "1.5"}, "blob": {"B": b"\x00\xffraw"}, "ok": {"BOOL": True},
                "none": {"NULL": True}, "tags": {"SS": ["a", "b"]}, "bins": {"BS": [b"x", b"\x01"]},
                "nested": {"M": {"l": {"L": [{"S": "é"}, {"N": "3"}, {"B": b"y"}]}}}}
        ddb.put_item(TableName="tickets", Item=item)
        ddb.update_item(TableName="tickets", Key={"ticket_id": {"S": "t1"}}, UpdateExpression="SET n = :v",
                        ExpressionAttributeValues={":v": {"N": "2"}})
        ddb.delete_item(TableName="tickets", Key={"ticket_id": {"S": "t1"}})

        session = botocore.session.Session()
        session.register_component("response_parser_factory", WireRecordsParserFactory())
        clients = {"wire": session.create_client("dynamodbstreams", **creds), "botocore": boto3.client("dynamodbstreams", **creds)}
        read = {}
        for name, streams in clients.items():
            shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
            iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            response = streams.get_records(ShardIterator=iterator)
            assert response["NextShardIterator"] and response["ResponseMetadata"]["HTTPStatusCode"] == 200
            read[name] = response["Records"]
        wire, parsed = read["wire"], read["botocore"]
        assert [r["eventName"] for r in wire] == ["INSERT", "MODIFY", "REMOVE"]
        assert wire[0]["dynamodb"]["NewImage"]["blob"] == {"B": "AP9yYXc="}  # base64, as Lambda's event has it
        events = {name: [_lambda_stream_record(r, arn, "us-east-1") for r in records] for name, records in read.items()}
        assert events["wire"] == _b64(events["botocore"])
        assert all(type(r["dynamodb"]["ApproximateCreationDateTime"]) is int for r in events["wire"])
        failure = {name: stream_failure_record(SimpleNamespace(function="f", source_arn=arn), "s", records, 3, None)
                   for name, records in read.items()}
        for record in failure.values():
            record["requestContext"].pop("requestId")
            record.pop("timestamp")
        assert failure["wire"] == failure["botocore"]
        # every other answer is botocore's own parse: timestamps still datetimes
        assert clients["wire"].describe_stream(StreamArn=arn)["StreamDescription"]["CreationRequestDateTime"].year >= 2024
        assert isinstance(WireRecordsParserFactory().create_parser("rest-json"), type(session.get_component("response_parser_factory")
                                                                                      .create_parser("rest-json")))
        assert not isinstance(WireRecordsParserFactory().create_parser("rest-json"), WireRecordsParser)
    finally:
        server.stop()


def test_the_stream_poller_lists_shards_once_a_second():
    from localcloud.pollers import SHARD_REFRESH_S, StreamPoller

    class Counting(FakeStreams):
        described = 0

        def describe_stream(self, StreamArn: str) -> dict:  # noqa: N803
            Counting.described += 1
            return super().describe_stream(StreamArn)

    esm = EventSourceMapping("Alerts", "AlertsFunction", "arn:aws:dynamodb:us-east-1:1:table/t/stream/s", "dynamodb",
                             batch_size=100, batching_window_s=0, report_item_failures=True)
    poller = StreamPoller(esm, AlwaysFails(), Counting(), "us-east-1")
    for _ in range(50):
        poller._refresh_shards()
    assert Counting.described == 1 and list(poller._iterators) == ["shard-1"]
    poller._shards_listed -= SHARD_REFRESH_S
    poller._refresh_shards()
    assert Counting.described == 2


class TrickleStream:
    """A shard that hands out 30 new records per GetRecords call, 90 in all."""

    def __init__(self) -> None:
        self.served = 0

    def describe_stream(self, StreamArn: str) -> dict:  # noqa: N803
        return {"StreamDescription": {"Shards": [{"ShardId": "shard-1"}]}}

    def get_shard_iterator(self, **_: object) -> dict:
        return {"ShardIterator": "it"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict:  # noqa: N803
        take = min(30, Limit, 90 - self.served)
        records = [{"eventName": "INSERT", "dynamodb": {"SequenceNumber": str(100 + self.served + i), "ApproximateCreationDateTime": 1}}
                   for i in range(take)]
        self.served += take
        return {"Records": records, "NextShardIterator": "it"}


class Recording:
    def __init__(self) -> None:
        self.batches: list[int] = []

    def invoke(self, name: str, event: dict) -> SimpleNamespace:
        self.batches.append(len(event["Records"]))
        return SimpleNamespace(error=None, payload={"batchItemFailures": []})


@pytest.mark.parametrize("window, expected", [(0.6, [90]), (0, [30, 30, 30])])
def test_stream_records_are_gathered_for_the_batching_window(window, expected):
    """Lambda fills a batch for up to MaximumBatchingWindowInSeconds (the Alerts mapping: 100 / 5 s); the poller
    used to invoke with whatever one GetRecords returned, about twice as many invocations as on AWS."""
    from localcloud.pollers import StreamPoller

    esm = EventSourceMapping("Alerts", "AlertsFunction", "arn:aws:dynamodb:us-east-1:1:table/t/stream/s", "dynamodb",
                             batch_size=100, batching_window_s=window, report_item_failures=True)
    lambdas = Recording()
    poller = StreamPoller(esm, lambdas, TrickleStream(), "us-east-1")
    poller.start()
    deadline = time.monotonic() + 10
    while sum(lambdas.batches) < 90 and time.monotonic() < deadline:
        time.sleep(0.05)
    poller.stop()
    poller.join(5)
    assert lambdas.batches == expected
