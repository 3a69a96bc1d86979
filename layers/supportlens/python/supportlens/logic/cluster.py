"""Cluster use case: feature shards in a window -> Issues items + a new centroids model."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from ..adapters import dynamo, s3
from ..domain.clustering import Corpus, build_issues
from ..domain.issues_model import CentroidsModel
from ..observability import logger
from ..settings import Settings
from .enrich import MODEL_POINTER

MIN_TICKETS = 40


def load_corpus(bucket: str, window_days: int, now: datetime) -> Corpus | None:
    first_day = (now - timedelta(days=window_days)).strftime("%Y-%m-%d")
    keys = [k for k in s3.list_keys(bucket, "features/dt=") if k.split("/")[1].removeprefix("dt=") >= first_day]
    parts: dict[str, list[Any]] = {name: [] for name in ("ticket_ids", "texts", "companies", "sentiments", "abusive", "days", "vectors")}
    for key in keys:
        with np.load(io.BytesIO(s3.get_bytes(bucket, key)), allow_pickle=False) as shard:
            customer = shard["roles"] == "customer"  # company replies are answers, not issues
            for name in parts:
                parts[name].append(shard[name][customer])
    if not keys or not sum(len(p) for p in parts["ticket_ids"]):
        return None
    ids = np.concatenate(parts["ticket_ids"])
    _, unique = np.unique(ids, return_index=True)  # a re-sent chunk may repeat a shard
    unique.sort()
    return Corpus(
        ticket_ids=[str(x) for x in ids[unique]],
        texts=[str(x) for x in np.concatenate(parts["texts"])[unique]],
        companies=[str(x) for x in np.concatenate(parts["companies"])[unique]],
        sentiments=[str(x) for x in np.concatenate(parts["sentiments"])[unique]],
        abusive=np.concatenate(parts["abusive"])[unique],
        days=[str(x) for x in np.concatenate(parts["days"])[unique]],
        vectors=np.concatenate(parts["vectors"])[unique].astype(np.float32),
    )


def previous_model(bucket: str) -> CentroidsModel | None:
    try:
        pointer = json.loads(s3.get_bytes(bucket, MODEL_POINTER))
    except Exception:
        return None
    return CentroidsModel.from_bytes(s3.get_bytes(bucket, pointer["key"]))


def run_clustering(settings: Settings, window_days: int | None = None, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(timezone.utc)
    window = window_days or settings.cluster_window_days
    corpus = load_corpus(settings.data_bucket, window, now)
    if corpus is None or len(corpus.ticket_ids) < MIN_TICKETS:
        found = 0 if corpus is None else len(corpus.ticket_ids)
        logger().info("not enough tickets to cluster", extra={"tickets": found, "needed": MIN_TICKETS})
        return {"status": "skipped", "reason": f"{found} customer tickets in the last {window} days; clustering needs {MIN_TICKETS}"}
    version = now.strftime("%Y%m%dT%H%M%SZ")
    previous = previous_model(settings.data_bucket)
    issues, model, scores = build_issues(corpus, previous, version)
    updated = now.isoformat()
    dynamo.batch_write(settings.issues_table, [i.to_item(version, updated) for i in issues])
    key = f"models/centroids/{version}.npz"
    s3.put(settings.data_bucket, key, model.to_bytes())
    s3.put(settings.data_bucket, MODEL_POINTER, json.dumps({"key": key, "version": version, "k": len(issues),
                                                            "tickets": len(corpus.ticket_ids)}).encode(), "application/json")
    result = {
        "status": "clustered", "version": version, "tickets": len(corpus.ticket_ids), "issues": len(issues),
        "emerging": sum(i.emerging for i in issues), "silhouette_by_k": {str(k): round(v, 4) for k, v in scores.items()},
        "model_key": key,
    }
    logger().info("clustering done", extra=result)
    return result
