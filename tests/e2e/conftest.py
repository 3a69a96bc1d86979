"""e2e fixtures: the real local cloud, started and stopped through the `supportlens` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "supportlens_cli"]


class Cloud:
    def __init__(self, home: Path, template: Path):
        self.home = home
        self.template = template
        # Batches of a queue run concurrently, as on Lambda, so races between invocations show here.
        self.env = {"SUPPORTLENS_LOCAL_SQS_CONCURRENCY": "2", **os.environ, "SUPPORTLENS_HOME": str(home)}
        for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "SUPPORTLENS_STACK"):
            self.env.pop(key, None)
        self.state: dict = {}

    def cli(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        result = subprocess.run([*CLI, *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"supportlens {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def up(self) -> "Cloud":
        self.cli("local", "up", "--template", str(self.template))
        self.state = json.loads((self.home / "local.json").read_text())
        return self

    def down(self) -> None:
        self.cli("local", "down", check=False)

    @property
    def outputs(self) -> dict:
        return self.state["outputs"]

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.state["endpoint"], region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def status(self) -> dict:
        return json.loads(self.cli("local", "status").stdout)

    def wait_until(self, predicate, timeout: float = 60, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.5)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    """The project's own template.yaml on the local cloud."""
    c = Cloud(tmp_path_factory.mktemp("cloud"), ROOT / "template.yaml").up()
    yield c
    c.down()


@pytest.fixture(scope="module")
def fast_retry_cloud(tmp_path_factory):
    """A copy of template.yaml edited for quick redelivery: short visibility, 2 receives to the DLQ."""
    home = tmp_path_factory.mktemp("fastcloud")
    text = (ROOT / "template.yaml").read_text()
    text = text.replace("      VisibilityTimeout: 720  # 6 x EnrichFunction timeout", "      VisibilityTimeout: 2")
    text = text.replace("        maxReceiveCount: 5  # transient faults", "        maxReceiveCount: 2  # transient faults")
    assert "VisibilityTimeout: 2" in text and "maxReceiveCount: 2" in text
    template = ROOT / f".template-e2e-{os.getpid()}.yaml"  # beside the real one: CodeUri paths stay valid
    template.write_text(text)
    c = Cloud(home, template)
    # One batch at a time here: a 2 s visibility timeout is shorter than a second worker's cold start,
    # so concurrent consumers would (rightly, as on AWS) receive some messages twice, and the DLQ
    # test counts deliveries.
    c.env["SUPPORTLENS_LOCAL_SQS_CONCURRENCY"] = "1"
    c.up()
    yield c
    c.down()
    template.unlink(missing_ok=True)
