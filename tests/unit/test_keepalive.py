"""The emulator's keep-alive server: one connection serves many requests, and every answer is moto's."""

from __future__ import annotations

import http.client
import socket
import threading

import boto3
import pytest
from botocore.config import Config

CREDS = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _start(monkeypatch: pytest.MonkeyPatch, keepalive: str):
    from localcloud import cloud

    monkeypatch.setenv(cloud.KEEPALIVE_ENV, keepalive)
    port = cloud.free_port()
    return cloud.start_emulator(port), f"http://127.0.0.1:{port}"


@pytest.fixture
def servers(monkeypatch):
    """The keep-alive server and werkzeug's, each counting the connections it accepted."""
    from localcloud.keepalive import KeepAliveHandler
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    accepted: dict[str, int] = {"keepalive": 0, "close": 0}
    nodelay: list[int] = []
    lock = threading.Lock()
    original = MotoRequestHandler.setup

    def setup(self):
        original(self)
        with lock:
            accepted["keepalive" if isinstance(self, KeepAliveHandler) else "close"] += 1
            if isinstance(self, KeepAliveHandler):
                nodelay.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    monkeypatch.setattr(MotoRequestHandler, "setup", setup)
    started = {name: _start(monkeypatch, flag) for name, flag in (("keepalive", "1"), ("close", "0"))}
    yield {name: url for name, (_, url) in started.items()}, accepted, nodelay
    for server, _ in started.values():
        server.stop()


def _workload(url: str, name: str) -> list:
    """DynamoDB and S3 calls of every body shape the pipeline sends: JSON, XML, empty, binary, HEAD,
    an error, an object large enough for botocore to ask for 100-continue. Both servers share moto's
    backends (one process), hence a table and bucket per server."""
    config = Config(retries={"max_attempts": 1})
    ddb = boto3.client("dynamodb", endpoint_url=url, config=config, **CREDS)
    s3 = boto3.client("s3", endpoint_url=url, config=config, **CREDS)
    out: list = []
    ddb.create_table(TableName=f"t-{name}", BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}])
    for i in range(30):
        ddb.put_item(TableName=f"t-{name}", Item={"k": {"S": f"k{i}"}, "n": {"N": str(i)}},
                     ConditionExpression="attribute_not_exists(k)")
    try:
        ddb.put_item(TableName=f"t-{name}", Item={"k": {"S": "k1"}}, ConditionExpression="attribute_not_exists(k)")
    except ddb.exceptions.ConditionalCheckFailedException as exc:
        out.append(("error", exc.response["Error"]["Code"]))
    out.append(sorted(i["k"]["S"] for i in ddb.scan(TableName=f"t-{name}")["Items"]))
    s3.create_bucket(Bucket=f"bucket-{name}")
    big = bytes(range(256)) * 8192  # 2 MiB: botocore sends Expect: 100-continue
    s3.put_object(Bucket=f"bucket-{name}", Key="big.bin", Body=big)
    s3.put_object(Bucket=f"bucket-{name}", Key="empty", Body=b"")
    s3.put_object(Bucket=f"bucket-{name}", Key="x_y", Body=b"abc", Metadata={"with_underscore": "1"})
    out.append(s3.get_object(Bucket=f"bucket-{name}", Key="big.bin")["Body"].read() == big)
    out.append(s3.get_object(Bucket=f"bucket-{name}", Key="empty")["Body"].read())
    head = s3.head_object(Bucket=f"bucket-{name}", Key="x_y")
    out.append((head["ContentLength"], head["Metadata"]))
    out.append(sorted(o["Key"] for o in s3.list_objects_v2(Bucket=f"bucket-{name}")["Contents"]))
    try:
        s3.get_object(Bucket=f"bucket-{name}", Key="missing")
    except s3.exceptions.NoSuchKey as exc:
        out.append(("error", exc.response["Error"]["Code"]))
    return out


def test_one_connection_serves_every_request_with_motos_answers(servers):
    urls, accepted, nodelay = servers
    expected = _workload(urls["close"], "close")
    assert accepted["close"] > 40  # werkzeug: a connection per request
    assert _workload(urls["keepalive"], "keepalive") == expected
    assert accepted["keepalive"] == 2  # one per client (each has its own pool), S3's 100-continue uploads too
    assert nodelay and all(nodelay)  # else a reused connection waits ~40 ms for a delayed ACK


def test_back_to_back_requests_on_one_socket(servers):
    """A pipelined second request must not be read as the first one's body (nor drained away)."""
    urls, _, _ = servers
    host, port = urls["keepalive"].removeprefix("http://").split(":")
    body = b'{"TableName": "none"}'
    request = (f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\nX-Amz-Target: DynamoDB_20120810.DescribeTable\r\n"
               "Content-Type: application/x-amz-json-1.0\r\n"
               "Authorization: AWS4-HMAC-SHA256 Credential=testing/20261202/us-east-1/dynamodb/aws4_request, "
               f"SignedHeaders=host, Signature=x\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request + request)  # both at once
        stream = sock.makefile("rb")
        for _ in range(2):
            status = stream.readline()
            headers = http.client.parse_headers(stream)
            body_read = stream.read(int(headers["Content-Length"]))
            assert status.split()[1] == b"400"
            assert b"ResourceNotFoundException" in body_read
            assert headers["Connection"] is None


HEADER_BLOCKS = [
    b"Host: 127.0.0.1:5000\r\nX-Amz-Target: DynamoDB_20120810.PutItem\r\nContent-Length: 12\r\n\r\n",
    b"Host: h\nAccept-Encoding: identity\n\n",  # LF only
    b"A: 1\r\nA: 2\r\nEmpty:\r\nSpaces:   \t v  \r\nColon: a:b: c\r\n\r\n",  # repeats, empty, inner colons
    b"Authorization: AWS4-HMAC-SHA256 Credential=t/20261202/us-east-1/dynamodb/aws4_request, SignedHeaders=host\r\n\r\n",
    "X-Latin: caf\u00e9\r\n\r\n".encode("latin-1"),  # bytes above 127: iso-8859-1, as http.client decodes
    b"x-amz-meta-with_underscore: 1\r\nUser-Agent: Boto3/1.0 md/Botocore#1.44\r\n\r\n",
    b"\r\n",  # no headers at all
    # not plain: each must come out as the email parser makes it
    b"Folded: a\r\n  continued\r\nNext: b\r\n\r\n",
    b"Stray: a\rb\r\n\r\n",
    b"No colon here\r\nHost: h\r\n\r\n",
    b"Bad Name: x\r\n\r\n",
    b": nameless\r\n\r\n",
    b"From someone\r\nHost: h\r\n\r\n",
    b"Host: h\r\n",  # the connection closed before the blank line
]


@pytest.mark.parametrize("block", HEADER_BLOCKS)
def test_request_headers_are_what_the_email_parser_makes(block):
    import io

    from localcloud.keepalive import KeepAliveHeaders, _email_parse_headers, split_headers

    expected = _email_parse_headers(io.BytesIO(block), KeepAliveHeaders)
    got = http.client.parse_headers(io.BytesIO(block), KeepAliveHeaders)  # what http.server calls
    assert type(got) is KeepAliveHeaders
    assert got.items() == expected.items() and got.keys() == expected.keys()
    assert [type(v) for v in got.values()] == [type(v) for v in expected.values()]
    assert got.get_payload() == expected.get_payload() and [type(d) for d in got.defects] == [type(d) for d in expected.defects]
    assert got.get("host") == expected.get("host") and got.get_all("a") == expected.get_all("a")
    lines = io.BytesIO(block).readlines()
    plain = split_headers(lines) is not None
    assert plain == (HEADER_BLOCKS.index(block) < 7)  # the plain ones take the direct path


@pytest.mark.parametrize("level,logged", [(None, True), ("INFO", True), ("DEBUG", True), ("WARNING", False)])
def test_a_request_line_is_logged_when_werkzeug_would_log_it(monkeypatch, level, logged):
    import logging

    from localcloud.keepalive import KeepAliveHandler
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    calls = []
    monkeypatch.setattr(MotoRequestHandler, "log_request", lambda self, code="-", size="-": calls.append(code))
    werkzeug = logging.getLogger("werkzeug")
    before = werkzeug.level
    werkzeug.setLevel(logging.NOTSET if level is None else getattr(logging, level))  # setLevel clears the level cache
    try:
        KeepAliveHandler.log_request(object.__new__(KeepAliveHandler), 200)
    finally:
        werkzeug.setLevel(before)
    assert calls == ([200] if logged else [])
