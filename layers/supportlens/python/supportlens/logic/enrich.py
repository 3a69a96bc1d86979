"""Enrich use case: a ticket message -> stored tickets, aggregates, lineage, feature shard."""

from __future__ import annotations

import hashlib
import io
import json
import time
from datetime import datetime, timezone
from typing import Any, TypeVar

import numpy as np
from pydantic import ValidationError

from ..adapters import dynamo, gemini, s3
from ..domain.embedding import LEGACY_EMBEDDING_ID
from ..domain.enrichment import aggregate, enrich
from ..domain.ingest import BATCH_SCHEMA, EVENT_SCHEMA
from ..domain.intent_model import IntentModel
from ..domain.issues_model import CentroidsModel
from ..domain.sources import FORMATS, RowContext, RowInvalid
from ..domain.tickets import Ticket
from ..observability import logger
from ..settings import Settings
from .behaviour import record_behaviour
from .user_models import UserModels

M = TypeVar("M", CentroidsModel, IntentModel)

MODEL_POINTER = "models/centroids/latest.json"
MODEL_REFRESH_S = 300
MODEL_MISSING_REFRESH_S = 15  # before the first clustering, look for a model often (one small GET)


class UnsupportedSchema(Exception):
    """A message this version cannot read: it goes back to the queue and, in the end, to the DLQ."""


class ModelCache:
    """The current centroids model, re-checked every few minutes so new versions apply without a redeploy."""

    def __init__(self) -> None:
        self.user = UserModels()  # models trained on the user's labels (sentiment, abuse, intent)
        self.model: CentroidsModel | None = None
        self.checked = 0.0
        self.pointer: str | None = None

    def get(self, bucket: str) -> CentroidsModel | None:
        interval = MODEL_REFRESH_S if self.model is not None else MODEL_MISSING_REFRESH_S
        if time.monotonic() - self.checked < interval and self.checked:
            return self.model
        self.checked = time.monotonic()
        try:
            raw = s3.get_bytes_if_exists(bucket, MODEL_POINTER)
        except Exception as exc:
            logger().warning("centroids model pointer unreadable", extra={"error": repr(exc)[:200]})
            return self.model
        if raw is None:  # no model yet is the normal first state
            return self.model
        try:
            pointer = json.loads(raw)
        except ValueError as exc:
            logger().warning("centroids model pointer unreadable", extra={"error": str(exc)[:200]})
            return self.model
        if pointer.get("key") != self.pointer:
            self.model = CentroidsModel.from_bytes(s3.get_bytes(bucket, pointer["key"]))
            self.pointer = pointer.get("key")
        return self.model

    def invalidate(self) -> None:
        self.checked = 0.0
        self.user.invalidate()


def load_models() -> None:
    """Load the shipped models and spaCy in Lambda's init phase (full CPU, once per container),
    so the first batch does not pay for them and cold start measures the whole cost."""
    from ..domain import entities, scoring

    scoring.sentiment_batch(["warm up"])
    scoring.abuse_batch(["warm up"])
    scoring.embed(["warm up"])
    entities.extract_entities(["warm up"])


def parse_message(body: str) -> tuple[str, str | None, list[Ticket], list[dict[str, Any]]]:
    """(chunk_id, file_id, tickets, rejects). Raises UnsupportedSchema for unknown schemas."""
    try:
        message = json.loads(body)
    except json.JSONDecodeError as exc:
        digest = hashlib.sha256(body.encode()).hexdigest()[:16]
        return f"invalid#{digest}", None, [], [{"reason": f"message body is not JSON ({exc.msg})", "raw": body[:10_000]}]
    schema = message.get("schema") if isinstance(message, dict) else None
    if schema == BATCH_SCHEMA:
        chunk_id = f"{message['file_id']}#chunk{message['chunk']}"
        return chunk_id, message["file_id"], [Ticket.model_validate(t) for t in message["tickets"]], []
    if schema == EVENT_SCHEMA:
        raw = message.get("ticket")
        try:
            if not isinstance(raw, dict):
                raise RowInvalid("'ticket' must be a JSON object")
            ticket = FORMATS["ticket"].to_ticket(raw, RowContext())
        except (RowInvalid, ValidationError) as exc:
            ident = str(raw.get("ticket_id")) if isinstance(raw, dict) else "unknown"
            return f"event#{ident}", None, [], [{"reason": str(exc), "raw": body[:10_000]}]
        return f"event#{ticket.ticket_id}", None, [ticket], []
    raise UnsupportedSchema(f"unsupported message schema {schema!r}; expected {BATCH_SCHEMA} or {EVENT_SCHEMA}")


def store_message(body: str, settings: Settings, models: ModelCache) -> dict[str, Any]:
    chunk_id, file_id, tickets, rejects = parse_message(body)
    if rejects:
        key = f"quarantine/events/{datetime.now(timezone.utc):%Y-%m-%d}/{hashlib.sha256(chunk_id.encode()).hexdigest()[:20]}.errors.jsonl"
        s3.put(settings.data_bucket, key, ("\n".join(json.dumps(r, ensure_ascii=False) for r in rejects) + "\n").encode())
        logger().warning("ticket event quarantined", extra={"quarantine_key": key, "reason": rejects[0]["reason"][:200]})
        return {"chunk_id": chunk_id, "stored": 0, "quarantined": len(rejects)}

    existing = dynamo.batch_get(settings.tickets_table, "ticket_id", [t.ticket_id for t in tickets], "ticket_id, chunk_id")
    # A ticket already stored by another chunk (same tweet in two files) is not counted twice.
    fresh = [t for t in tickets if existing.get(t.ticket_id, {}).get("chunk_id", chunk_id) == chunk_id]
    unique = {t.ticket_id: t for t in fresh}
    embedder = gemini.embedder_for(settings)  # local (default) or Gemini, built once per container
    model = usable_model(models.get(settings.data_bucket), embedder.embedding_id)
    user = models.user.get(settings.data_bucket)
    intent = usable_model(user.intent, embedder.embedding_id)
    batch = enrich(list(unique.values()), model, embed=embedder, sentiment_model=user.sentiment, abuse_model=user.abuse,
                   intent_model=intent)
    for item in batch.items:
        item["chunk_id"] = chunk_id
        item["embedding_id"] = embedder.embedding_id
    dynamo.batch_write(settings.tickets_table, batch.items)
    _write_features(settings.data_bucket, chunk_id, batch)
    extra = []
    if file_id:
        extra.append(dynamo.lineage_add(settings.files_table, file_id, {"tickets_stored": len(fresh), "duplicates": len(tickets) - len(fresh)}))
    applied = dynamo.apply_increments_once(settings.aggregates_table, chunk_id, aggregate(batch.items).rows, extra)
    behaviour = record_behaviour(batch.items, settings, chunk_id)  # customer counters, profiles, fingerprints
    return {"chunk_id": chunk_id, "stored": len(batch.items), "duplicates": len(tickets) - len(fresh), "counted": applied, **behaviour}


_MISMATCH_LOGGED: set[str] = set()


def usable_model(model: M | None, embedding_id: str) -> M | None:
    """The centroids or intent model when it lives in the current embedder's space, else None (not applied)."""
    if model is None or model.matches(embedding_id):
        return model
    if model.version not in _MISMATCH_LOGGED:
        _MISMATCH_LOGGED.add(model.version)
        logger().warning("model is from another embedder: not applied (Cluster or `train intent` must refit it)",
                         extra={"model_version": model.version, "model_embedding_id": model.embedding_id,
                                "embedding_id": embedding_id})
    return None


def _write_features(bucket: str, chunk_id: str, batch) -> None:
    """A compact shard per chunk (float16 vectors, no pickle) for the clustering job.

    Log lines whose text only describes them (call logs without notes) are not clustered.
    """
    keep = [i for i, item in enumerate(batch.items) if not item.get("text_is_summary")]
    if not keep:
        return
    items = [batch.items[i] for i in keep]
    texts = [batch.clean_texts[i] for i in keep]
    vectors = batch.vectors[keep]
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        ticket_ids=np.array([i["ticket_id"] for i in items]),
        texts=np.array([t[:500] for t in texts]),
        companies=np.array([i.get("company") or "unknown" for i in items]),
        roles=np.array([i.get("role", "customer") for i in items]),
        reply_to=np.array([i.get("in_reply_to") or "" for i in items]),  # joins company replies to tickets (Assist)
        created_at=np.array([str(i.get("created_at") or "") for i in items]),
        sentiments=np.array([i["sentiment"] for i in items]),
        abusive=np.array([bool(i.get("abusive")) for i in items]),
        days=np.array([i["day"] for i in items]),
        embedding_ids=np.array([i.get("embedding_id", LEGACY_EMBEDDING_ID) for i in items]),
        languages=np.array([i.get("language") or "" for i in items]),  # non-English tickets are grouped per language
        vectors=vectors.astype(np.float16),
    )
    digest = hashlib.sha256(chunk_id.encode()).hexdigest()[:24]
    s3.put(bucket, f"features/dt={datetime.now(timezone.utc):%Y-%m-%d}/{digest}.npz", buf.getvalue())
