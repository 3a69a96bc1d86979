"""Lambda function URLs on loopback: an HTTP request becomes the function's URL event.

Each `AWS::Lambda::Url` of the template gets a port on 127.0.0.1. A request is turned into
the payload-format 2.0 event Lambda builds for function URLs, the function runs through the
local Lambda service, and its answer is mapped back the way Lambda does it: a dict with
`statusCode` is an HTTP response (headers, body, `isBase64Encoded`, cookies); anything else
is a 200 with that value as a JSON body; a function error is a 502.

`AuthType: AWS_IAM` is enforced: the request must carry a valid SigV4 signature for the
service `lambda`, made with the local cloud's credentials (access key `testing`, secret
`testing`, like every local client); otherwise 403, as AWS answers. `NONE` lets every
request through.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

log = logging.getLogger(__name__)

ACCOUNT = "123456789012"
LOCAL_KEY_ID = LOCAL_SECRET = "testing"
MAX_BODY = 6 * 1024 * 1024  # Lambda's synchronous request payload limit
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,"
    r"\s*SignedHeaders=(?P<signed>[^,]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded", "application/javascript")

Invoke = Callable[[dict[str, Any]], tuple[Any, dict | None]]  # event -> (payload, error)


def sigv4_valid(method: str, url: str, headers: dict[str, str], body: bytes) -> bool:
    """True when `headers` carry a SigV4 signature of this request for `lambda` by the local credentials."""
    found = _AUTHORIZATION.fullmatch(headers.get("authorization", "").strip())
    amz_date = headers.get("x-amz-date", "")
    if not found or found["service"] != "lambda" or found["key"] != LOCAL_KEY_ID or not amz_date.startswith(found["date"]):
        return False
    signed = found["signed"].split(";")
    if "host" not in signed or any(name not in headers for name in signed):
        return False
    request = AWSRequest(method=method, url=url, data=body, headers={name: headers[name] for name in signed})
    request.context["timestamp"] = amz_date
    token = headers.get("x-amz-security-token")
    signer = SigV4Auth(Credentials(LOCAL_KEY_ID, LOCAL_SECRET, token), "lambda", found["region"])
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    return hmac.compare_digest(expected, found["signature"])


def url_event(method: str, target: str, headers: dict[str, str], body: bytes, source_ip: str, url_id: str,
              iam: bool) -> dict[str, Any]:
    """The payload-format 2.0 event Lambda passes for a function URL request."""
    path, _, query = target.partition("?")
    now = time.time()
    content_type = headers.get("content-type", "")
    as_text = not body or content_type.startswith(_TEXT_TYPES)
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        params[key] = f"{params[key]},{value}" if key in params else value
    context: dict[str, Any] = {
        "accountId": "anonymous", "apiId": url_id, "domainName": headers.get("host", ""), "domainPrefix": url_id,
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                 "userAgent": headers.get("user-agent", "")},
        "requestId": str(uuid.uuid4()), "routeKey": "$default", "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)), "timeEpoch": int(now * 1000),
    }
    if iam:
        found = _AUTHORIZATION.match(headers.get("authorization", ""))
        context["accountId"] = ACCOUNT
        context["authorizer"] = {"iam": {"accessKey": found["key"] if found else "", "accountId": ACCOUNT,
                                         "callerId": found["key"] if found else "", "userArn": f"arn:aws:iam::{ACCOUNT}:user/local"}}
    event: dict[str, Any] = {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
        "headers": {k: v for k, v in headers.items() if k != "cookie"},
        "requestContext": context, "isBase64Encoded": not as_text,
    }
    if "cookie" in headers:
        event["cookies"] = [c.strip() for c in headers["cookie"].split(";") if c.strip()]
    if params:
        event["queryStringParameters"] = params
    if body:
        event["body"] = body.decode("utf-8") if as_text else base64.b64encode(body).decode("ascii")
    return event


def http_response(payload: Any, error: dict | None) -> tuple[int, dict[str, str], bytes]:
    """Lambda's mapping of a function's answer to the HTTP response of its URL."""
    if error is not None:
        return 502, {"content-type": "application/json"}, b'{"Message":"Internal Server Error"}'
    if isinstance(payload, dict) and "statusCode" in payload:
        body = payload.get("body") or ""
        data = base64.b64decode(body) if payload.get("isBase64Encoded") else str(body).encode("utf-8")
        headers = {str(k).lower(): str(v) for k, v in (payload.get("headers") or {}).items()}
        headers.setdefault("content-type", "application/json")
        if payload.get("cookies"):
            headers["set-cookie"] = ", ".join(payload["cookies"])
        return int(payload["statusCode"]), headers, data
    return 200, {"content-type": "application/json"}, json.dumps(payload).encode("utf-8")


class FunctionUrlServer:
    """One function URL served on 127.0.0.1:`port` until `stop()`."""

    def __init__(self, function: str, port: int, auth_type: str, invoke: Invoke):
        self.function, self.auth_type = function, auth_type
        self.url = f"http://127.0.0.1:{port}/"
        url_id = f"local{port}"
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # no request lines (bodies may hold customer text)
                pass

            def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("x-amzn-requestid", str(uuid.uuid4()))
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_BODY:
                    self.close_connection = True
                    self._reply(413, {"content-type": "application/json"}, b'{"Message":"Request Entity Too Large"}')
                    return
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                iam = server.auth_type == "AWS_IAM"
                if iam and not sigv4_valid(self.command, f"http://{headers.get('host', '')}{self.path}", headers, body):
                    self._reply(403, {"content-type": "application/json"}, b'{"Message":"Forbidden"}')
                    return
                event = url_event(self.command, self.path, headers, body, self.client_address[0], url_id, iam)
                self._reply(*http_response(*invoke(event)))

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._http = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, name=f"url-{function}", daemon=True)

    def start(self) -> "FunctionUrlServer":
        self._thread.start()
        log.info("function URL of %s served at %s (auth %s)", self.function, self.url, self.auth_type)
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
