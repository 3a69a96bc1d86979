"""SQS adapter: send message bodies in batches, failing loudly on partial failure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .aws import client

MAX_BATCH_ENTRIES = 10
# SendMessageBatch caps the SUM of its bodies at 1 MiB (BatchRequestTooLong), not only each one.
MAX_BATCH_BYTES = 1024 * 1024 - 8 * 1024  # headroom for the entry ids and the request around them


def batches(bodies: list[str]) -> Iterator[list[str]]:
    """Consecutive groups of at most ten bodies whose UTF-8 sizes add up to MAX_BATCH_BYTES or less."""
    batch: list[str] = []
    size = 0
    for body in bodies:
        body_size = len(body.encode())
        if body_size > MAX_BATCH_BYTES:
            raise ValueError(f"a message of {body_size} bytes is larger than SQS accepts")
        if batch and (len(batch) == MAX_BATCH_ENTRIES or size + body_size > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(body)
        size += body_size
    if batch:
        yield batch


def send_json(queue_url: str, bodies: list[dict[str, Any]]) -> None:
    sqs = client("sqs")
    encoded = [json.dumps(body, ensure_ascii=False, separators=(",", ":")) for body in bodies]
    for batch in batches(encoded):
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(batch)]
        for _attempt in range(5):
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            failed = {f["Id"]: f.get("Code", "?") for f in response.get("Failed", [])}
            if not failed:
                break
            entries = [e for e in entries if e["Id"] in failed]
        else:
            raise RuntimeError(f"SQS refused {len(entries)} messages after retries ({', '.join(sorted(set(failed.values())))})")
