"""The SQS poller invokes up to `concurrency` batches of one queue at once, like Lambda."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

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
