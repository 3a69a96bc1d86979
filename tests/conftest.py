"""Shared fixtures: paths, the shared data folder, a fake Lambda context."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SAMPLE = ROOT / "events" / "samples" / "twcs_sample.csv"


@dataclass
class FakeLambdaContext:
    """What Powertools reads from a Lambda context (in-process integration tests only)."""

    function_name: str = "test-function"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


def url_post(url: str, body: bytes, *, secret: str | None = "testing") -> tuple[int, bytes]:
    """POST to a local function URL, SigV4-signed for `lambda` as access key `testing` with
    `secret` (None: unsigned); (status, body) whatever the status."""
    import urllib.error
    import urllib.request

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="POST", url=url, data=body, headers={"content-type": "application/json"})
    if secret is not None:
        SigV4Auth(Credentials("testing", secret), "lambda", "us-east-1").add_auth(request)
    prepared = request.prepare()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST", headers=dict(prepared.headers)),
                                    timeout=120) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def shared_file(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs ../shared/data ({path} is absent)")
    return path


# (folder, text column) of the shared corpora with free text: equality tests of the fast text paths read them.
SHARED_TEXT_COLUMNS = (("twcs", "text"), ("airline_sentiment", "text"), ("offensive", "tweet"),
                       ("customer_support_bitext", "instruction"), ("support_tickets_endava", "body"))


def shared_texts(limit: int, corpora: tuple[tuple[str, str], ...] = SHARED_TEXT_COLUMNS) -> list[str]:
    """The first `limit` texts of each shared corpus (skips the test when ../shared/data is absent)."""
    import csv

    found: list[str] = []
    for folder, column in corpora:
        with shared_file(folder, "train.csv").open(newline="", encoding="utf-8") as f:
            found += [row[column] for _, row in zip(range(limit), csv.DictReader(f))]
    return found
