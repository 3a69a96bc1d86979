"""The local Lambda service's AWS request log: a real worker (awslambdaric) calling a moto server."""

from __future__ import annotations

import json
import socket
import textwrap
from pathlib import Path

import boto3
import pytest

from bench import cost
from localcloud.lambda_service import FunctionConfig, LambdaService

pytest.importorskip("awslambdaric")

SECRET = "jane.doe@example.com card 4111 1111 1111 1111"

APP = f'''
import os

import boto3

SECRET = {SECRET!r}


def handler(event, context):
    ddb = boto3.client("dynamodb")
    ddb.put_item(TableName="calls-tickets", Item={{"ticket_id": {{"S": "t-" + context.aws_request_id}},
                                                 "text": {{"S": SECRET * 40}}}})
    ddb.query(TableName="calls-tickets", KeyConditionExpression="ticket_id = :t",
              ExpressionAttributeValues={{":t": {{"S": "t-" + context.aws_request_id}}}}, ConsistentRead=True)
    sqs = boto3.session.Session().client("sqs")  # a second session: hooked too
    sqs.send_message(QueueUrl=os.environ["QUEUE_URL"], MessageBody=SECRET)
    return {{"ok": True}}
'''


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def emulator():
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    creds = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing", "endpoint_url": endpoint}
    boto3.client("dynamodb", **creds).create_table(
        TableName="calls-tickets", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "ticket_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "ticket_id", "KeyType": "HASH"}])
    queue = boto3.client("sqs", **creds).create_queue(QueueName="calls-queue")["QueueUrl"]
    yield {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_REGION": "us-east-1", "QUEUE_URL": queue}
    server.stop()


def _service(tmp_path: Path, env: dict[str, str], request_log_dir: Path | None) -> LambdaService:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text(textwrap.dedent(APP))
    config = FunctionConfig(name="CallsFunction", function_name="test-calls", code_dir=code, handler="app.handler",
                            layer_dirs=[], environment={"QUEUE_URL": env["QUEUE_URL"]}, timeout_s=30, memory_mb=1769)
    return LambdaService([config], base_env=env, request_log_dir=request_log_dir)


def test_the_worker_logs_every_aws_call_with_sizes_and_no_values(tmp_path: Path, emulator: dict[str, str]):
    requests = tmp_path / "requests"
    service = _service(tmp_path, emulator, requests)
    try:
        results = [service.invoke("CallsFunction", {}) for _ in range(2)]
    finally:
        service.stop()
    assert all(r.error is None for r in results), results
    calls, invocations = cost.read_log(requests)
    assert [i["request_id"] for i in invocations] == [r.request_id for r in results]
    assert invocations[0]["cold"] and not invocations[1]["cold"] and invocations[0]["init_ms"] > 0
    assert all(i["memory_mb"] == 1769 and i["function_name"] == "test-calls" for i in invocations)
    ops = [(c["svc"], c["op"]) for c in calls]
    assert ops.count(("dynamodb", "PutItem")) == 2 and ops.count(("sqs", "SendMessage")) == 2
    put = next(c for c in calls if c["op"] == "PutItem")
    assert put["src"] == "test-calls" and put["writes"][0]["table"] == "calls-tickets"
    assert put["writes"][0]["size"] > 40 * len(SECRET)  # the item's real size: 2 KB, so 2 WRU
    assert all(0 < c["hook_ms"] < 1000 for c in calls)  # the log's own time, taken off the billed compute
    query = next(c for c in calls if c["op"] == "Query")
    assert query["consistent"] and query["sizes"] == [put["writes"][0]["size"]]
    # Each call is tagged with its invocation (the trace id Lambda handed it).
    assert {c["trace"] for c in calls} == {i["trace"] for i in invocations}
    text = "".join(p.read_text() for p in (requests / "calls").glob("*.jsonl"))
    assert "jane" not in text and "4111" not in text
    keys = cost.cost_keys(requests, tickets=2, tickets_table="calls-tickets")
    assert keys["cost_breakdown"]["units_per_ticket"]["dynamodb_wru"] == 2  # 2 KB items, one put each
    assert keys["cost_breakdown"]["units_per_ticket"]["sqs_requests"] == 1


def test_off_by_default(tmp_path: Path, emulator: dict[str, str]):
    service = _service(tmp_path, emulator, None)
    try:
        assert service.invoke("CallsFunction", {}).error is None
    finally:
        service.stop()
    assert not list(tmp_path.rglob("*.jsonl"))
