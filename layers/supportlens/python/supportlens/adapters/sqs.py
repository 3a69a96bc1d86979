"""SQS adapter: send message bodies in batches of ten, failing loudly on partial failure."""

from __future__ import annotations

import json
from typing import Any

from .aws import client


def send_json(queue_url: str, bodies: list[dict[str, Any]]) -> None:
    sqs = client("sqs")
    for start in range(0, len(bodies), 10):
        entries = [
            {"Id": str(i), "MessageBody": json.dumps(body, ensure_ascii=False, separators=(",", ":"))}
            for i, body in enumerate(bodies[start : start + 10])
        ]
        for _attempt in range(5):
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            failed = {f["Id"] for f in response.get("Failed", [])}
            if not failed:
                break
            entries = [e for e in entries if e["Id"] in failed]
        else:
            raise RuntimeError(f"SQS refused {len(entries)} messages after retries")
