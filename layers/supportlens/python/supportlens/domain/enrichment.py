"""Enrich a batch of tickets: clean, mask, score, embed, assign the nearest issue."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from . import entities, metrics, scoring, text
from . import shards as shards_
from .intent_model import IntentModel
from .issues_model import CentroidsModel
from .models import TextModel
from .tickets import Ticket

LONG_CALL_S = 3000
RESPONSE_BUCKETS = ((900, "rt_lt_15m"), (3600, "rt_lt_1h"), (4 * 3600, "rt_lt_4h"), (24 * 3600, "rt_lt_24h"))


@dataclass
class EnrichedBatch:
    items: list[dict[str, Any]]  # ready for the tickets table (plain Python values)
    vectors: np.ndarray  # one embedding per item, same order
    clean_texts: list[str]


def enrich(tickets: list[Ticket], model: CentroidsModel | None = None, now: datetime | None = None,
           embed: Callable[[list[str]], np.ndarray] | None = None, sentiment_model: TextModel | None = None,
           abuse_model: TextModel | None = None, intent_model: IntentModel | None = None) -> EnrichedBatch:
    """Score, embed and classify `tickets`. `model` assigns issues; `sentiment_model`/`abuse_model`
    replace the shipped ones (user-trained); `intent_model` adds the user's own categories."""
    now = now or datetime.now(timezone.utc)
    items: list[dict[str, Any]] = []
    cleaned: list[str] = []
    prepared = []
    for ticket in tickets:
        clean = text.clean_text(ticket.text)
        masked_clean, pii = text.mask_pii(clean)
        masked_text, _ = text.mask_pii(ticket.text)
        prepared.append((ticket, clean, masked_clean, pii, masked_text))
    # The linear models score a whole batch in one sparse product: far faster than per text.
    sentiments = scoring.sentiment_batch([p[2] or p[4] for p in prepared], sentiment_model)
    abuse_scores = scoring.abuse_batch([p[2] for p in prepared], abuse_model)
    model_versions = {"sentiment_model": (sentiment_model.version if sentiment_model else scoring.model_version("sentiment")),
                      "abuse_model": (abuse_model.version if abuse_model else scoring.model_version("abuse"))}
    for (ticket, clean, masked_clean, pii, masked_text), (label, score), abuse in zip(prepared, sentiments, abuse_scores):
        item = ticket.model_dump(mode="json", exclude_none=True)
        item.update(
            text=masked_text,  # PII never reaches storage
            clean_text=masked_clean,
            pii=sorted(set(pii)),
            language=text.detect_language(clean),
            sentiment=label,
            sentiment_score=score,
            abuse_score=abuse,
            abusive=abuse >= scoring.ABUSE_FLAG_THRESHOLD,
            escalation=scoring.escalation(clean),
            day=ticket.created_at.strftime("%Y-%m-%d"),
            hour=ticket.created_at.hour,
            enriched_at=now.isoformat(),
            **model_versions,
        )
        items.append({k: v for k, v in item.items() if v is not None and v != []})
        cleaned.append(masked_clean)
    # Entities once per batch (spaCy pipe) over the masked text: PII only as "[EMAIL]"-style placeholders.
    for item, found in zip(items, entities.extract_entities(cleaned)):
        if found:
            item["entities"] = found
    vectors = (embed or scoring.embed)(cleaned)  # embed: the selected embedder (domain/embedding.py)
    if model is not None and len(items):
        issue_ids, confidence = model.assign(vectors)
        for item, issue_id, conf in zip(items, issue_ids, confidence):
            item["issue_id"] = issue_id
            item["issue_confidence"] = round(float(conf), 4)
            item["issue_model"] = model.version
    if intent_model is not None and len(items):
        intents, probability = intent_model.predict(vectors)
        for item, intent, p in zip(items, intents, probability):
            item["intent"] = intent
            item["intent_confidence"] = round(float(p), 4)
            item["intent_model"] = intent_model.version
    return EnrichedBatch(items, vectors, cleaned)


@dataclass
class AggregateDeltas:
    """Counter increments per aggregate row: (pk, sk) -> {counter: n}."""

    rows: dict[tuple[str, str], dict[str, float]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(float)))

    def add(self, pk: str, sk: str, counter: str, amount: float = 1) -> None:
        self.rows[(pk, sk)][counter] += amount


def aggregate(items: list[dict[str, Any]], chunk_id: str | None = None, shards: shards_.Shards | None = None) -> AggregateDeltas:
    """Per day x company x channel counters, so reports and alerts never scan tickets. With the
    chunk's id the hot partitions (days, day#, hours#) go to the chunk's write shard (domain/shards.py)."""
    deltas = _aggregate(items)
    if chunk_id is not None:
        deltas.rows = shards_.shard_rows(deltas.rows, chunk_id, shards)
    return deltas


def _aggregate(items: list[dict[str, Any]]) -> AggregateDeltas:
    deltas = AggregateDeltas()
    for item in items:
        pk = f"day#{item['day']}"
        sk = f"company#{item.get('company') or 'unknown'}#channel#{item.get('channel', 'other')}"
        if item.get("role") == "company":
            deltas.add(pk, sk, "replies")
            continue
        deltas.add(pk, sk, "volume")
        deltas.add("days", item["day"], "volume")  # index of days with data, so reports need no scan
        deltas.add(pk, sk, item["sentiment"])
        deltas.add(pk, sk, f"h{item['hour']:02d}")
        if item.get("abusive"):
            deltas.add(pk, sk, "abusive")
        if item.get("escalation"):
            deltas.add(pk, sk, "escalations")
        if item.get("call_status") == "failed":
            deltas.add(pk, sk, "failed_calls")
        _dimension_counters(deltas, item, pk)
        agent = item.get("agent_id")
        if agent:  # agent performance: volume, failed and long calls, handle time
            ask = f"agent#{agent}#channel#{item.get('channel', 'other')}"
            deltas.add(pk, ask, "volume")
            if item.get("call_status") == "failed":
                deltas.add(pk, ask, "failed_calls")
            duration = item.get("call_duration_s")
            if duration is not None:
                deltas.add(pk, ask, "calls")
                deltas.add(pk, ask, "call_duration_sum", duration)
                if duration >= LONG_CALL_S:
                    deltas.add(pk, ask, "long_calls")
        rt = item.get("first_response_s")
        if rt is not None:
            deltas.add(pk, sk, "rt_count")
            deltas.add(pk, sk, "rt_sum", rt)
            bucket = next((name for limit, name in RESPONSE_BUCKETS if rt < limit), "rt_ge_24h")
            deltas.add(pk, sk, bucket)
        _report_and_window_counters(deltas, item, pk, sk)
    return deltas


DIMENSIONS = ("region", "tier", "industry")  # report breakdowns: pk day#<day>, sk dim#<name>#<value>


def _dimension_counters(deltas: AggregateDeltas, item: dict[str, Any], pk: str) -> None:
    """Customer messages by region, customer tier and industry (when the source has them)."""
    for name in DIMENSIONS:
        value = item.get(name)
        if not value:
            continue
        dsk = f"dim#{name}#{metrics.dimension_value(value)}"
        deltas.add(pk, dsk, "volume")
        deltas.add(pk, dsk, item["sentiment"])
        for counter in ("abusive", "escalations"):
            if item.get("escalation" if counter == "escalations" else counter):
                deltas.add(pk, dsk, counter)


def _report_and_window_counters(deltas: AggregateDeltas, item: dict[str, Any], pk: str, sk: str) -> None:
    """Response-time histograms (medians), agent response times, delivery status (FTDS), and the
    hourly rows the windowed alert rules read: pk hours#<day>, sk <HH>#company|agent|customer#<id>."""
    rt, agent = item.get("first_response_s"), item.get("agent_id")
    if rt is not None:
        deltas.add(pk, sk, metrics.hist_counter(rt))
        if agent:
            ask = f"agent#{agent}#channel#{item.get('channel', 'other')}"
            for counter, amount in (("rt_count", 1), ("rt_sum", rt), (metrics.rt_bucket(rt), 1), (metrics.hist_counter(rt), 1)):
                deltas.add(pk, ask, counter, amount)
    if item.get("delivery_status"):
        deltas.add(pk, sk, f"ds_{metrics.slug(item['delivery_status'])}")
    hpk, hour = f"hours#{item['day']}", f"{item['hour']:02d}"
    subjects = [f"{hour}#company#{item.get('company') or 'unknown'}"] + ([f"{hour}#agent#{agent}"] if agent else [])
    failed = item.get("call_status") == "failed"
    for hsk in subjects:
        deltas.add(hpk, hsk, "volume")
        flags = {"negative": item.get("sentiment") == "negative", "abusive": bool(item.get("abusive")), "failed_calls": failed}
        if rt is not None:
            deltas.add(hpk, hsk, "rt_count")
            deltas.add(hpk, hsk, metrics.rt_bucket(rt))
            for target in metrics.SLA_TARGETS:
                if rt >= target:
                    _example(deltas, hpk, hsk, f"rt_ge_{target}", item)
        for name, on in flags.items():
            if on:
                deltas.add(hpk, hsk, name)
                _example(deltas, hpk, hsk, name, item)
    if failed and item.get("author_id"):
        deltas.add(hpk, f"{hour}#customer#{item['author_id']}", "failed_calls")
        _example(deltas, hpk, f"{hour}#customer#{item['author_id']}", "failed_calls", item)


def _example(deltas: AggregateDeltas, pk: str, sk: str, name: str, item: dict[str, Any]) -> None:
    """A few ticket ids per row and chunk (a DynamoDB string set, written only where the row has none yet)."""
    if not item.get("ticket_id"):
        return
    examples = deltas.rows[(pk, sk)].setdefault(f"ex_{name}", set())
    if len(examples) < metrics.MAX_EXAMPLES:
        examples.add(item["ticket_id"])
