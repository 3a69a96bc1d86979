"""LocalCloud: moto server on loopback + template.yaml deployed + Lambda service + pollers."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import botocore.session

from .deployer import Deployer, Deployment
from .function_urls import FunctionUrlServer
from .lambda_service import InvokeResult, LambdaService
from .pollers import SqsPoller, StreamPoller, WireRecordsParserFactory, schedule_event, send_to_destination
from .request_log import ENV as REQUEST_LOG_ENV, RequestLog

log = logging.getLogger(__name__)
REGION = "us-east-1"
KEEPALIVE_ENV = "SUPPORTLENS_LOCAL_KEEPALIVE"  # "0": a connection per request, as moto's server does
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_emulator(port: int) -> Any:
    """moto server on 127.0.0.1:`port`, with the local cloud's fixes to moto (moto_patches)."""
    from .moto_patches import apply as patch_moto

    patch_moto()
    if os.environ.get(KEEPALIVE_ENV, "1") == "0":  # werkzeug's server as moto ships it (A/B, debugging)
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    else:
        from .keepalive import KeepAliveMotoServer

        server = KeepAliveMotoServer("127.0.0.1", port)
    server.start()
    return server


def sqs_concurrency() -> int:
    """Batches of one queue invoked at once (Lambda runs many). 1 by default, for a calm demo on
    small machines; the e2e suite sets SUPPORTLENS_LOCAL_SQS_CONCURRENCY=2 so races show there."""
    return max(1, int(os.environ.get("SUPPORTLENS_LOCAL_SQS_CONCURRENCY") or 1))


class LocalCloud:
    def __init__(
        self,
        template: Path,
        *,
        port: int | None = None,
        parameters: dict[str, str] | None = None,
        log_dir: Path | None = None,
    ):
        self.template = Path(template).resolve()
        self.port = port or free_port()
        self.parameters = parameters or {}
        self.log_dir = log_dir
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server: Any = None
        self.deployment: Deployment | None = None
        self.lambdas: LambdaService | None = None
        self.pollers: list[SqsPoller | StreamPoller] = []
        self.url_servers: list[FunctionUrlServer] = []
        self._tick_lock = threading.Lock()
        # Off by default; the bench sets it to count every AWS request the functions make (bench/cost.py).
        request_log = os.environ.get(REQUEST_LOG_ENV)
        self.request_log_dir = Path(request_log).resolve() if request_log else None
        self._poller_log: RequestLog | None = None

    @property
    def env(self) -> dict[str, str]:
        """What a client (or a function) needs to talk to this cloud."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, **CREDENTIALS}

    def client(self, service: str) -> Any:
        return boto3.session.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing").client(
            service, endpoint_url=self.endpoint
        )

    def start(self, *, poll: bool = True) -> "LocalCloud":
        self._server = start_emulator(self.port)
        self.deployment = Deployer(self.endpoint, REGION).deploy(self.template, self.parameters)
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        self.lambdas = LambdaService(self.deployment.functions, base_env=self.env, log_dir=self.log_dir,
                                     request_log_dir=self.request_log_dir)
        for function, url in self.deployment.function_urls.items():
            self.url_servers.append(FunctionUrlServer(function, url["port"], url["auth_type"], self._url_invoker(function)).start())
        if poll:
            self.start_pollers()
        return self

    def _url_invoker(self, function: str):
        def invoke(event: dict[str, Any]) -> tuple[Any, dict | None]:
            result = self.invoke(function, event)
            return result.payload, result.error

        return invoke

    def _poller_client(self, service: str) -> Any:
        """A client for an event-source poller; its calls are logged too (Lambda's SQS polls are billed).
        The stream poller's reads records in their wire shape (pollers.WireRecordsParser)."""
        if service == "dynamodbstreams":
            session = botocore.session.Session()
            session.register_component("response_parser_factory", WireRecordsParserFactory())
            client = session.create_client(service, region_name=REGION, endpoint_url=self.endpoint,
                                           aws_access_key_id="testing", aws_secret_access_key="testing")
        else:
            client = self.client(service)
        if self.request_log_dir is not None:
            if self._poller_log is None:
                self._poller_log = RequestLog(self.request_log_dir, "event-source-poller")
            self._poller_log.register(client.meta.events)
        return client

    def start_pollers(self) -> None:
        assert self.deployment and self.lambdas
        for esm in self.deployment.event_sources:
            if esm.kind == "sqs":
                poller: SqsPoller | StreamPoller = SqsPoller(esm, self.lambdas, self._poller_client("sqs"), REGION, sqs_concurrency())
            elif esm.kind == "dynamodb":
                poller = StreamPoller(esm, self.lambdas, self._poller_client("dynamodbstreams"), REGION, self._poller_client("sqs"))
            else:
                continue
            poller.start()
            self.pollers.append(poller)

    def invoke(self, function: str, event: Any) -> InvokeResult:
        assert self.lambdas and self.deployment
        return self.lambdas.invoke(self.deployment.function(function).name, event)

    def tick(self, function: str | None = None) -> list[dict[str, Any]]:
        """Fire schedules now (all, or those of one function), like EventBridge Scheduler would."""
        assert self.deployment
        results = []
        with self._tick_lock:
            wanted = self.deployment.function(function).name if function else None
            for schedule in self.deployment.schedules:
                if wanted and schedule.function != wanted:
                    continue
                event = schedule_event(schedule.input)
                result = self.invoke(schedule.function, event)
                dead_letter = self.deployment.function(schedule.function).dead_letter_arn
                if result.error is not None and dead_letter:  # as Lambda does with a failed asynchronous invoke
                    send_to_destination(self.client("sqs"), dead_letter, event, {
                        "RequestID": result.request_id, "ErrorCode": "200",
                        "ErrorMessage": str(result.error.get("errorMessage") or result.error.get("errorType") or "")})
                results.append({
                    "schedule": schedule.logical_id,
                    "function": schedule.function,
                    "expression": schedule.expression,
                    "ok": result.error is None,
                    "error": result.error,
                    "result": result.payload,
                    "duration_ms": round(result.duration_ms),
                })
        if wanted and not results:
            raise KeyError(f"{function} has no schedule in the template")
        return results

    def queue_depths(self) -> dict[str, int]:
        sqs = self.client("sqs")
        depths = {}
        for url in sqs.list_queues().get("QueueUrls", []):
            attrs = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            )["Attributes"]
            depths[url.rsplit("/", 1)[1]] = int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
        return depths

    def idle(self) -> bool:
        """No message waiting or in flight on any non-DLQ queue and no poller busy."""
        depths = self.queue_depths()
        queues_empty = all(v == 0 for k, v in depths.items() if not k.endswith("-dlq"))
        return queues_empty and not any(p.stats.busy for p in self.pollers)

    def wait_idle(self, timeout: float = 300, settle: float = 1.5) -> bool:
        deadline = time.monotonic() + timeout
        quiet_since = None
        while time.monotonic() < deadline:
            if self.idle():
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle:
                    return True
            else:
                quiet_since = None
            time.sleep(0.25)
        return False

    def status(self) -> dict[str, Any]:
        assert self.deployment
        return {
            "endpoint": self.endpoint,
            "outputs": self.deployment.outputs,
            "queues": self.queue_depths(),
            "pollers": {p.esm.logical_id: p.stats.as_dict() for p in self.pollers},
            "functions": [f.name for f in self.deployment.functions],
            "schedules": [{"schedule": s.logical_id, "function": s.function, "expression": s.expression} for s in self.deployment.schedules],
            "function_urls": {s.function: {"url": s.url, "auth_type": s.auth_type} for s in self.url_servers},
        }

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stop()
        for poller in self.pollers:
            poller.join(timeout=5)
        self.pollers = []
        for server in self.url_servers:
            server.stop()
        self.url_servers = []
        if self.lambdas:
            self.lambdas.stop()
            self.lambdas = None
        if self._server:
            self._server.stop()
            self._server = None

    def __enter__(self) -> "LocalCloud":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def write_state(path: Path, cloud: LocalCloud, control_port: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "pid": os.getpid(),
        "endpoint": cloud.endpoint,
        "control": f"http://127.0.0.1:{control_port}",
        "region": REGION,
        "outputs": cloud.deployment.outputs if cloud.deployment else {},
        "parameters": cloud.deployment.parameters if cloud.deployment else {},
        "started_at": time.time(),
    }
    path.write_text(json.dumps(state, indent=2, default=str))
