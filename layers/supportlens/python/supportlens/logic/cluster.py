"""Cluster use case: feature shards in a window -> Issues items, a new centroids model (Enrich)
and a similar-tickets index (Assist), all versioned under models/."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from ..adapters import dynamo, s3
from ..domain import assist
from ..domain.clustering import Corpus, cluster_corpus
from ..domain.embedding import LEGACY_EMBEDDING_ID, local_embedding_id
from ..domain.issues_model import MODEL_POINTER, CentroidsModel
from ..observability import logger
from ..settings import Settings

MIN_TICKETS = 40
SIMILAR_POINTER = "models/similar/latest.json"
SIMILAR_INDEX_CAP = assist.DEFAULT_CAP


def load_corpus(bucket: str, window_days: int, now: datetime, embedding_id: str | None = None) -> Corpus | None:
    """Customer tickets of the window whose vectors come from `embedding_id` (default: the local embedder)."""
    embedding_id = embedding_id or local_embedding_id()
    first_day = (now - timedelta(days=window_days)).strftime("%Y-%m-%d")
    keys = [k for k in s3.list_keys(bucket, "features/dt=") if k.split("/")[1].removeprefix("dt=") >= first_day]
    parts: dict[str, list[Any]] = {name: [] for name in ("ticket_ids", "texts", "companies", "sentiments", "abusive", "days", "vectors")}
    replies: dict[str, list[Any]] = {name: [] for name in ("reply_to", "ticket_ids", "texts", "created_at")}
    created: list[Any] = []
    languages: list[Any] = []
    upload_dated: list[Any] = []
    for key in keys:
        with np.load(io.BytesIO(s3.get_bytes(bucket, key)), allow_pickle=False) as shard:
            if "reply_to" in shard.files:  # company replies to customer tickets: what Assist recommends from
                answer = (shard["roles"] == "company") & (shard["reply_to"] != "")
                for name in replies:
                    replies[name].append(shard[name][answer])
            customer = shard["roles"] == "customer"  # company replies are answers, not issues
            # Vectors of another embedder live in another space (shards from before ids were local).
            origin = shard["embedding_ids"] if "embedding_ids" in shard.files else np.array([LEGACY_EMBEDDING_ID])
            customer = customer & (origin == embedding_id)
            if not customer.any():  # (its vectors may not even have this embedder's width)
                continue
            for name in parts:
                parts[name].append(shard[name][customer])
            created.append(shard["created_at"][customer] if "created_at" in shard.files else np.full(int(customer.sum()), ""))
            # Enrich's language mark (en / non-en / unknown); older shards lack it and clustering detects it.
            languages.append(shard["languages"][customer] if "languages" in shard.files else np.full(int(customer.sum()), ""))
            upload_dated.append(shard["upload_dated"][customer] if "upload_dated" in shard.files
                                else np.zeros(int(customer.sum()), dtype=bool))
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
        created=[str(x) for x in np.concatenate(created)[unique]],
        languages=[str(x) for x in np.concatenate(languages)[unique]],
        upload_dated=np.concatenate(upload_dated)[unique].astype(bool),
        replies=assist.first_replies(*([str(x) for x in np.concatenate(replies[name])] if replies[name] else []
                                       for name in ("reply_to", "ticket_ids", "texts", "created_at"))),
    )


def previous_model(bucket: str) -> CentroidsModel | None:
    return previous_models(bucket, "")[0]


def previous_models(bucket: str, version: str) -> tuple[CentroidsModel | None, CentroidsModel | None, str | None]:
    """(latest model, baseline model, baseline key). The baseline is the model from before the
    day of `version`: a re-run on the same day compares with what the first run compared with."""
    try:
        pointer = json.loads(s3.get_bytes(bucket, MODEL_POINTER))
    except Exception:
        return None, None, None
    latest = CentroidsModel.from_bytes(s3.get_bytes(bucket, pointer["key"]))
    if version and str(pointer.get("version", ""))[:8] == version[:8] and "baseline_key" in pointer:
        key = pointer["baseline_key"]
        if not key:  # today's earlier runs had nothing before them: neither has this one
            return None, None, None
        return latest, CentroidsModel.from_bytes(s3.get_bytes(bucket, key)), key
    return latest, latest, pointer["key"]


def retire_stale_issues(table: str, current: set[str], version: str, updated: str) -> int:
    """Issues of earlier clusterings that no current issue continues are marked retired (kept as history)."""
    retired = 0
    for item in dynamo.scan_all(table):
        if item.get("status", "active") == "active" and item["issue_id"] not in current:
            dynamo.update_fields(table, {"issue_id": item["issue_id"]},
                                 {"status": "retired", "retired_by": version, "updated_at": updated})
            retired += 1
    return retired


def run_clustering(settings: Settings, window_days: int | None = None, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(timezone.utc)
    window = window_days or settings.cluster_window_days
    embedding_id = settings.embedding().embedding_id
    corpus = load_corpus(settings.data_bucket, window, now, embedding_id)
    if corpus is None or len(corpus.ticket_ids) < MIN_TICKETS:
        found = 0 if corpus is None else len(corpus.ticket_ids)
        logger().info("not enough tickets to cluster", extra={"tickets": found, "needed": MIN_TICKETS})
        return {"status": "skipped", "reason": f"{found} customer tickets in the last {window} days; clustering needs {MIN_TICKETS}"}
    version = now.strftime("%Y%m%dT%H%M%SZ")
    previous, baseline, baseline_key = previous_models(settings.data_bucket, version)
    if previous is not None and not previous.matches(embedding_id):
        previous = None  # issue ids cannot be matched across embedding spaces
    if baseline is not None and not baseline.matches(embedding_id):
        baseline = None
    clustering = cluster_corpus(corpus, previous, version, baseline=baseline)
    issues, model, scores = clustering.issues, clustering.model, clustering.scores
    model.embedding_id = embedding_id
    updated = now.isoformat()
    dynamo.batch_write(settings.issues_table, [i.to_item(version, updated) for i in issues])
    retired = retire_stale_issues(settings.issues_table, {i.issue_id for i in issues}, version, updated)

    # The similar-tickets index: every customer ticket of the window (newest first, capped) with its
    # issue and the company's first reply. Written before the pointers so readers never see half a model.
    assigned = clustering.assigned  # each ticket's issue or bucket, as clustered (buckets are not nearest-centroid)
    index = assist.build_index(corpus.ticket_ids, corpus.texts, assigned, corpus.companies, corpus.days, corpus.vectors,
                               corpus.replies, version=version, embedding_id=embedding_id,
                               created=corpus.created or None, cap=SIMILAR_INDEX_CAP)
    index_key = f"models/similar/{version}.npz"
    s3.put(settings.data_bucket, index_key, index.to_bytes())
    key = f"models/centroids/{version}.npz"
    s3.put(settings.data_bucket, key, model.to_bytes())
    s3.put(settings.data_bucket, SIMILAR_POINTER, json.dumps({"key": index_key, "version": version, "tickets": len(index),
                                                              "with_reply": index.replies,
                                                              "similarity_floor": round(index.similarity_floor, 4),
                                                              "embedding_id": embedding_id}).encode(), "application/json")
    s3.put(settings.data_bucket, MODEL_POINTER, json.dumps({"key": key, "version": version, "k": len(issues),
                                                            "tickets": len(corpus.ticket_ids),
                                                            "embedding_id": embedding_id,
                                                            "baseline_key": baseline_key,
                                                            "root_causes": clustering.k, "buckets": clustering.buckets,
                                                            "outlier_share": round(clustering.outlier_share, 4)}).encode(),
          "application/json")
    result = {
        # issues: Issues items written (root causes and buckets); root_causes: kind "issue" only.
        "status": "clustered", "version": version, "tickets": len(corpus.ticket_ids), "issues": len(issues),
        "root_causes": clustering.k,
        "buckets": clustering.buckets, "outlier_share": round(clustering.outlier_share, 4),
        "clustered": clustering.clustered,
        "emerging": sum(i.emerging for i in issues), "silhouette_by_k": {str(k): round(v, 4) for k, v in scores.items()},
        "model_key": key, "embedding_id": embedding_id, "retired": retired,
        "similar_index_key": index_key, "similar_tickets": len(index), "similar_with_reply": index.replies,
    }
    logger().info("clustering done", extra=result)
    return result
