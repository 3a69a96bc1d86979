"""SQS adapter: send message bodies in batches, failing loudly on partial failure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .aws import bounded_groups, client

MAX_BATCH_ENTRIES = 10
# SendMessageBatch caps the SUM of its bodies at 1 MiB (BatchRequestTooLong), not only each one.
MAX_BATCH_BYTES = 1024 * 1024 - 8 * 1024  # headroom for the entry ids and the request around them


def batches(bodies: list[str]) -> Iterator[list[str]]:
    """Consecutive groups of at most ten bodies whose UTF-8 sizes add up to MAX_BATCH_BYTES or less."""
    for body in bodies:
        if len(body.encode()) > MAX_BATCH_BYTES:
            raise ValueError(f"a message of {len(body.encode())} bytes is larger than SQS accepts")
    return bounded_groups(bodies, lambda body: len(body.encode()), MAX_BATCH_ENTRIES, MAX_BATCH_BYTES)


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
