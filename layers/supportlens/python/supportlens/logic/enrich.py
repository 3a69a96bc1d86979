"""Enrich use case: a ticket message -> stored tickets, aggregates, lineage, feature shard."""

from __future__ import annotations

import hashlib
import io
import json
import time
from datetime import datetime, timezone
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from pydantic import ValidationError

from ..adapters import dynamo, gemini, s3
from ..domain import shards
from ..domain.embedding import LEGACY_EMBEDDING_ID
from ..domain.enrichment import EnrichedBatch, aggregate, enrich
from ..domain.ingest import BATCH_SCHEMA, EVENT_SCHEMA
from ..domain.intent_model import IntentModel
from ..domain.issues_model import MODEL_POINTER, CentroidsModel
from ..domain.pseudonym import ID_FIELDS
from ..domain.sources import FORMATS, RowContext, RowInvalid
from ..domain.text import mask_pii_deep
from ..domain.tickets import MAX_ITEM_BYTES, Ticket, fit_stored_text, stored_size
from ..observability import logger
from ..settings import Settings
from .behaviour import record_behaviour
from .ids import pseudonymiser_for
from .user_models import UserModels

M = TypeVar("M", CentroidsModel, IntentModel)

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
        self.pointer: str | None = None  # the key of the model loaded (or found unloadable)

    def get(self, bucket: str) -> CentroidsModel | None:
        interval = MODEL_REFRESH_S if self.model is not None else MODEL_MISSING_REFRESH_S
        if time.monotonic() - self.checked < interval and self.checked:
            return self.model
        self.checked = time.monotonic()
        try:
            raw = s3.get_bytes_if_exists(bucket, MODEL_POINTER)
            if raw is None:  # no model yet is the normal first state
                return self.model
            key = json.loads(raw)["key"]
            if key == self.pointer:
                return self.model
            data = s3.get_bytes(bucket, key)
        except Exception as exc:  # S3 hiccup or a bad pointer: keep what we have, look again next interval
            logger().warning("centroids model pointer unreadable", extra={"error": type(exc).__name__})
            return self.model
        self.pointer = key  # a key that does not load is not fetched again; a new pointer is
        try:
            self.model = CentroidsModel.from_bytes(data)
        except Exception as exc:
            # Logged once per key; tickets are stored without an issue (or with the previous model's).
            logger().warning("centroids model does not load: issue assignment skipped until a new model is published",
                             extra={"model_key": key, "error": type(exc).__name__, "kept_previous_model": self.model is not None})
        return self.model

    def invalidate(self) -> None:
        self.checked = 0.0
        self.user.invalidate()


def load_models() -> None:
    """Load the shipped models and the entity rules in Lambda's init phase (full CPU, once per container),
    so the first batch does not pay for them and cold start measures the whole cost."""
    from ..domain import entities, scoring

    scoring.sentiment_batch(["warm up"])
    scoring.abuse_batch(["warm up"])
    scoring.embed(["warm up"])
    entities.extract_entities(["warm up"])


@dataclass
class Message:
    chunk_id: str  # the idempotency key of the counters (file + chunk, or event + content)
    file_id: str | None
    tickets: list[Ticket]
    rejects: list[dict[str, Any]] = field(default_factory=list)  # {"reason", "raw"}, quarantined
    total: int = 0  # tickets the message carried, valid or not


def parse_message(body: str, pseudonymise: Callable[[str, str], str] = lambda value, field: value) -> Message:
    """The message's valid tickets and its rejects, their ids pseudonymised (so chunk ids, marker keys
    and everything stored downstream never hold an e-mail address or phone number). Raises
    UnsupportedSchema for unknown schemas."""

    def private(ticket: Ticket) -> Ticket:
        ids = {f: pseudonymise(v, f) for f in ID_FIELDS if isinstance(v := getattr(ticket, f), str)}
        return ticket.model_copy(update=ids) if any(ids[f] != getattr(ticket, f) for f in ids) else ticket

    try:
        message = json.loads(body)
    except json.JSONDecodeError as exc:
        return Message(f"invalid#{_digest(body)}", None, [], [{"reason": f"message body is not JSON ({exc.msg})", "raw": body[:10_000]}], 1)
    schema = message.get("schema") if isinstance(message, dict) else None
    if schema == BATCH_SCHEMA:
        parsed = Message(f"{message['file_id']}#chunk{message['chunk']}", message["file_id"], [], [], len(message["tickets"]))
        for position, raw in enumerate(message["tickets"]):  # one bad ticket must not fail the others
            try:
                parsed.tickets.append(private(Ticket.model_validate(raw)))
            except ValidationError as exc:
                parsed.rejects.append({"position": position, "reason": validation_reason(exc),
                                       "raw": json.dumps(raw, ensure_ascii=False)[:10_000]})
        return parsed
    if schema == EVENT_SCHEMA:
        raw = message.get("ticket")
        try:
            if not isinstance(raw, dict):
                raise RowInvalid("'ticket' must be a JSON object")
            ticket = private(FORMATS["ticket"].to_ticket(raw, RowContext()))
        except (RowInvalid, ValidationError) as exc:
            ident = pseudonymise(str(raw.get("ticket_id")), "ticket_id") if isinstance(raw, dict) else "unknown"
            reason = validation_reason(exc) if isinstance(exc, ValidationError) else str(exc)
            # The body's digest keeps two different invalid events apart (their quarantine objects too).
            return Message(f"event#{ident}#{_digest(body)}", None, [], [{"reason": reason, "raw": body[:10_000]}], 1)
        # Keyed by content: a redelivery is the same chunk (counted once); a re-publish with changed
        # fields is another chunk, and as the ticket is already stored it is a duplicate (first version wins).
        content = json.dumps(ticket.to_message(), sort_keys=True, ensure_ascii=False)
        return Message(f"event#{ticket.ticket_id}#{_digest(content)}", None, [ticket], [], 1)
    raise UnsupportedSchema(f"unsupported message schema {schema!r}; expected {BATCH_SCHEMA} or {EVENT_SCHEMA}")


def validation_reason(exc: ValidationError) -> str:
    """Which fields failed and why, without their values (values may be PII)."""
    return "; ".join(f"field '{'.'.join(str(p) for p in e['loc']) or 'ticket'}': {e['msg']}" for e in exc.errors())[:1_000]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def store_message(body: str, settings: Settings, models: ModelCache) -> dict[str, Any]:
    message = parse_message(body, pseudonymiser_for(settings))
    chunk_id, tickets = message.chunk_id, message.tickets
    if not tickets and not message.file_id:  # an invalid event: nothing to count
        _quarantine(settings, chunk_id, message.rejects)
        return {"chunk_id": chunk_id, "stored": 0, "quarantined": len(message.rejects)}
    unique: dict[str, Ticket] = {}
    for ticket in tickets:  # the same id twice in one chunk: the first is stored, the rest are duplicates
        unique.setdefault(ticket.ticket_id, ticket)
    existing = stored_tickets(settings.tickets_table, list(unique))
    # A ticket already stored by another chunk (same tweet in two files) is not counted twice.
    fresh = [t for t in unique.values() if existing.get(t.ticket_id, {}).get("chunk_id", chunk_id) == chunk_id]
    embedder = gemini.embedder_for(settings)  # local (default) or Gemini, built once per container
    batch = _enrich(fresh, settings, models, embedder)
    keep = []
    for position, item in enumerate(batch.items):
        item["chunk_id"] = chunk_id
        item["embedding_id"] = embedder.embedding_id
        fit_stored_text(item)  # the 400 KB item limit counts bytes, not characters
        size = stored_size(item)
        if size > MAX_ITEM_BYTES:
            message.rejects.append({"reason": f"ticket too large to store ({size} bytes; the limit is {MAX_ITEM_BYTES})",
                                    "raw": json.dumps(fresh[position].to_message(), ensure_ascii=False)[:10_000]})
        else:
            keep.append(position)
    # INSERTs (new keys only): of two chunks storing one ticket at the same moment exactly one wins it,
    # and only the tickets this delivery won are counted below.
    won = dynamo.put_unless_owned(settings.tickets_table, [batch.items[p] for p in keep], "ticket_id", "chunk_id")
    stored = _subset(batch, [p for p in keep if batch.items[p]["ticket_id"] in won])
    quarantined = len(message.rejects)
    duplicates = message.total - len(stored.items) - quarantined
    if message.rejects:
        _quarantine(settings, chunk_id, message.rejects)
    if duplicates and not message.file_id:
        logger().info("ticket event already stored by an earlier message: counted as a duplicate, first version kept")
    _write_features(settings.data_bucket, chunk_id, stored)
    extra = []
    if message.file_id:
        extra.append(dynamo.lineage_add(settings.files_table, message.file_id,
                                        {"tickets_stored": len(stored.items), "duplicates": duplicates, "tickets_quarantined": quarantined}))
    # Rows of the chunk's closed days go out as packed items keyed by the chunk (idempotent, 1 WRU per KB),
    # before the marker's transaction: a crash in between leaves them to be rewritten the same.
    live, closed = shards.split_closed(aggregate(stored.items, chunk_id).rows)
    dynamo.batch_write(settings.aggregates_table, shards.packed_items(closed, chunk_id))
    applied = dynamo.apply_increments_once(settings.aggregates_table, chunk_id, live, extra)
    behaviour = record_behaviour(stored.items, settings, chunk_id)  # customer counters, profiles, fingerprints
    return {"chunk_id": chunk_id, "stored": len(stored.items), "duplicates": duplicates, "quarantined": quarantined,
            "counted": applied, **behaviour}


DUPLICATE_PROBES = 16  # tickets read first to tell a new chunk from one that overlaps stored tickets


def probe_positions(count: int, probes: int = DUPLICATE_PROBES) -> list[int]:
    """Evenly spaced positions of a chunk's tickets (first and last included): a re-uploaded or
    overlapping file shares runs of consecutive tickets, which evenly spaced probes find."""
    if count <= probes:
        return list(range(count))
    return sorted({round(i * (count - 1) / (probes - 1)) for i in range(probes)})


def stored_tickets(table: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """{ticket id: {ticket_id, chunk_id}} of the chunk's tickets already stored, to skip enriching them.

    Only an optimisation: the INSERT decides ownership. Reading every ticket costs ½ RRU
    each ($0.0625 per million) although a new chunk has none stored; so `DUPLICATE_PROBES` of them
    are read first and the rest only when one of those is stored (a redelivery, a re-upload, an
    overlapping export). A stored ticket the probes miss is enriched and its INSERT fails (about 1 WRU,
    10x the read it skipped) and it is counted as a duplicate all the same; with 16 probes that
    expected waste stays below a quarter of the full read's price at any overlap (docs/bench.md)."""
    positions = probe_positions(len(ids))
    probed = [ids[p] for p in positions]
    found = dynamo.batch_get(table, "ticket_id", probed, "ticket_id, chunk_id")
    if found and len(probed) < len(ids):
        read = set(positions)
        found.update(dynamo.batch_get(table, "ticket_id", [t for p, t in enumerate(ids) if p not in read], "ticket_id, chunk_id"))
    return found


def _enrich(tickets: list[Ticket], settings: Settings, models: ModelCache, embedder) -> EnrichedBatch:
    if not tickets:
        return EnrichedBatch([], np.zeros((0, 0), dtype=np.float32), [])
    model = usable_model(models.get(settings.data_bucket), embedder.embedding_id)
    user = models.user.get(settings.data_bucket)
    intent = usable_model(user.intent, embedder.embedding_id)
    return enrich(tickets, model, embed=embedder, sentiment_model=user.sentiment, abuse_model=user.abuse, intent_model=intent)


def _subset(batch: EnrichedBatch, positions: list[int]) -> EnrichedBatch:
    return EnrichedBatch([batch.items[p] for p in positions], batch.vectors[positions], [batch.clean_texts[p] for p in positions])


def _quarantine(settings: Settings, chunk_id: str, rejects: list[dict[str, Any]]) -> None:
    """Rejected tickets with their reasons; one object per message, rewritten the same on redelivery."""
    key = f"quarantine/events/{datetime.now(timezone.utc):%Y-%m-%d}/{hashlib.sha256(chunk_id.encode()).hexdigest()[:20]}.errors.jsonl"
    lines = (json.dumps({**r, "raw": mask_pii_deep(r["raw"])} if "raw" in r else r, ensure_ascii=False) for r in rejects)
    s3.put(settings.data_bucket, key, ("\n".join(lines) + "\n").encode())  # evidence, with e-mails/phones/cards masked
    # Reasons name fields, never values; the rows themselves stay in S3.
    logger().warning("tickets quarantined", extra={"quarantine_key": key, "quarantined": len(rejects)})


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
        upload_dated=np.array([bool(i.get("created_at_is_upload")) for i in items]),  # no event time: never "emerging"
        vectors=vectors.astype(np.float16),
    )
    digest = hashlib.sha256(chunk_id.encode()).hexdigest()[:24]
    s3.put(bucket, f"features/dt={datetime.now(timezone.utc):%Y-%m-%d}/{digest}.npz", buf.getvalue())
