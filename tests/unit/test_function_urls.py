"""Local function URLs: SigV4 checked like AWS_IAM, Lambda's URL event and response mapping."""

from __future__ import annotations

import base64
import json

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from localcloud.cloud import free_port
from localcloud.function_urls import FunctionUrlServer, http_response, sigv4_valid, url_event
from tests.conftest import url_post


def signed(url: str, body: bytes, *, secret: str = "testing", service: str = "lambda", key: str = "testing") -> AWSRequest:
    request = AWSRequest(method="POST", url=url, data=body, headers={"content-type": "application/json"})
    SigV4Auth(Credentials(key, secret), service, "us-east-1").add_auth(request)
    return request


def lowered(request: AWSRequest) -> dict[str, str]:
    headers = {k.lower(): v for k, v in request.headers.items()}
    headers["host"] = "127.0.0.1:9000"
    return headers


URL = "http://127.0.0.1:9000/classify?x=1"


def test_a_request_signed_with_the_local_credentials_is_valid():
    body = b'{"operation": "classify"}'
    assert sigv4_valid("POST", URL, lowered(signed(URL, body)), body)


@pytest.mark.parametrize("change", ["secret", "service", "key", "body", "method", "path", "unsigned"])
def test_anything_else_is_refused(change):
    body = b'{"operation": "classify"}'
    request = signed(URL, body, secret="other" if change == "secret" else "testing",
                     service="s3" if change == "service" else "lambda", key="AKIAOTHER" if change == "key" else "testing")
    headers = lowered(request)
    if change == "unsigned":
        headers.pop("authorization")
    assert not sigv4_valid("PUT" if change == "method" else "POST",
                           URL.replace("classify", "other") if change == "path" else URL, headers,
                           body + b" " if change == "body" else body)


def test_url_event_has_lambdas_payload_format_2():
    event = url_event("POST", "/p/a?x=1&x=2&y=", {"host": "h", "content-type": "application/json", "cookie": "a=1; b=2",
                                                  "user-agent": "ua"}, b'{"k": 1}', "127.0.0.1", "abc", iam=False)
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert (event["rawPath"], event["rawQueryString"]) == ("/p/a", "x=1&x=2&y=")
    assert event["queryStringParameters"] == {"x": "1,2", "y": ""}
    assert event["cookies"] == ["a=1", "b=2"] and "cookie" not in event["headers"]
    assert event["body"] == '{"k": 1}' and event["isBase64Encoded"] is False
    assert event["requestContext"]["http"] == {"method": "POST", "path": "/p/a", "protocol": "HTTP/1.1",
                                               "sourceIp": "127.0.0.1", "userAgent": "ua"}
    binary = url_event("POST", "/", {"content-type": "application/octet-stream"}, b"\x00\xff", "127.0.0.1", "abc", iam=True)
    assert binary["isBase64Encoded"] and base64.b64decode(binary["body"]) == b"\x00\xff"
    assert binary["requestContext"]["authorizer"]["iam"]["accountId"] == "123456789012"


def test_response_mapping_follows_lambda():
    assert http_response({"statusCode": 404, "headers": {"X-A": "1"}, "body": "nope"}, None) == (404, {"x-a": "1", "content-type": "application/json"}, b"nope")
    assert http_response({"statusCode": 200, "body": base64.b64encode(b"\x01").decode(), "isBase64Encoded": True}, None)[2] == b"\x01"
    assert http_response({"any": "dict"}, None) == (200, {"content-type": "application/json"}, b'{"any": "dict"}')
    assert http_response(None, {"errorMessage": "boom"})[0] == 502


@pytest.fixture
def server():
    calls = []

    def invoke(event):
        calls.append(event)
        request = json.loads(event.get("body") or "{}")
        if request.get("fail"):
            return None, {"errorMessage": "boom", "errorType": "RuntimeError"}
        return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps({"echo": request})}, None

    s = FunctionUrlServer("AssistFunction", free_port(), "AWS_IAM", invoke).start()
    yield s, calls
    s.stop()


def test_server_invokes_the_function_only_for_signed_requests(server):
    s, calls = server
    assert url_post(s.url, b"{}", secret=None) == (403, b'{"Message":"Forbidden"}')
    assert url_post(s.url, b"{}", secret="wrong")[0] == 403
    assert calls == []
    assert url_post(s.url, b'{"operation": "classify"}') == (200, b'{"echo": {"operation": "classify"}}')
    assert url_post(s.url, b'{"fail": true}') == (502, b'{"Message":"Internal Server Error"}')
    assert [c["requestContext"]["http"]["method"] for c in calls] == ["POST", "POST"]
