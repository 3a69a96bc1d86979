"""Unit tests for supportlens.domain.enrichment (enrich, aggregate) and domain.scoring."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from supportlens.domain import scoring
from supportlens.domain.enrichment import aggregate, enrich
from supportlens.domain.issues_model import CentroidsModel
from supportlens.domain.tickets import Ticket

NOW = datetime(2024, 3, 5, 0, 0, tzinfo=timezone.utc)
EMAIL = "jane.doe@example.com"


def ticket(i: int | str, text: str, **kw) -> Ticket:
    kw.setdefault("created_at", datetime(2024, 3, 4, 15, 30, tzinfo=timezone.utc))
    kw.setdefault("source", "ticket")
    return Ticket(ticket_id=f"t{i}", text=text, **kw)


TEXTS = {
    "pii": f"@AcmeHelp email me at {EMAIL} about order #AB12345 or call 415-555-0132 https://t.co/x",
    "negative": "this is the worst service ever, I hate it",
    "positive": "thank you so much, great help!",
    "abusive": "you are a fucking idiot, you stupid asshole",
    "polite": "Could you please help me reset my password? Thanks in advance",
    "legal": "I will sue you",
    "churn": "I'm cancelling my account",
}


@pytest.fixture(scope="module")
def batch():
    tickets = [ticket(name, text, company="acme", channel="email") for name, text in TEXTS.items()]
    return enrich(tickets, now=NOW)


def item(batch, name: str) -> dict:
    return next(i for i in batch.items if i["ticket_id"] == f"t{name}")


def all_strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in all_strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in all_strings(v)]
    return [str(value)]


# --------------------------------------------------------------------------- enrich


def test_enrich_keeps_order_and_ticket_fields(batch):
    assert [i["ticket_id"] for i in batch.items] == [f"t{name}" for name in TEXTS]
    first = batch.items[0]
    assert first["company"] == "acme" and first["channel"] == "email" and first["source"] == "ticket"
    assert first["day"] == "2024-03-04" and first["hour"] == 15
    assert first["enriched_at"] == NOW.isoformat()
    assert len(batch.clean_texts) == len(batch.items)


def test_enrich_masks_pii_in_stored_text(batch):
    pii = item(batch, "pii")
    assert "[EMAIL]" in pii["text"] and "[EMAIL]" in pii["clean_text"]
    assert "[ORDER_ID]" in pii["text"] and "[PHONE]" in pii["text"]
    assert set(pii["pii"]) == {"email", "order_id", "phone"}
    for it in batch.items:
        for value in all_strings(it):
            assert EMAIL not in value
            assert "AB12345" not in value
            assert "415-555-0132" not in value
    assert all(EMAIL not in t for t in batch.clean_texts)


def test_enrich_clean_text_drops_urls_and_handles(batch):
    pii = item(batch, "pii")
    assert "https://" not in pii["clean_text"] and "@AcmeHelp" not in pii["clean_text"]
    assert pii["text"].startswith("@AcmeHelp")  # raw text kept (masked), clean text separate


def test_enrich_email_inside_handle_like_text_is_not_leaked():
    out = enrich([ticket(1, f"Thanks @{EMAIL}! and mail {EMAIL.upper()}")], now=NOW)
    for value in all_strings(out.items[0]):
        assert EMAIL not in value.lower()


def test_enrich_without_pii_has_no_pii_field(batch):
    assert "pii" not in item(batch, "negative")


def test_enrich_sentiment(batch):
    assert item(batch, "negative")["sentiment"] == "negative"
    assert item(batch, "negative")["sentiment_score"] <= -0.05
    assert item(batch, "positive")["sentiment"] == "positive"
    assert item(batch, "positive")["sentiment_score"] >= 0.05
    for it in batch.items:
        assert -1.0 <= it["sentiment_score"] <= 1.0


def test_enrich_abuse(batch):
    assert item(batch, "abusive")["abusive"] is True
    assert item(batch, "abusive")["abuse_score"] >= scoring.ABUSE_FLAG_THRESHOLD
    assert item(batch, "polite")["abusive"] is False
    assert item(batch, "polite")["abuse_score"] < 0.05  # a model probability: near 0, not exactly 0


def test_enrich_escalation(batch):
    assert item(batch, "legal")["escalation"] == "legal_threat"
    assert item(batch, "churn")["escalation"] == "churn"
    assert "escalation" not in item(batch, "polite")
    assert "escalation" not in item(batch, "positive")


def test_enrich_language(batch):
    assert item(batch, "negative")["language"] == "en"


def test_enrich_vectors_unit_norm_float32(batch):
    v = batch.vectors
    assert v.dtype == np.float32
    assert v.shape == (len(TEXTS), scoring.EMBEDDING_DIM) == (len(TEXTS), 256)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)


def test_enrich_identical_texts_give_identical_vectors():
    out = enrich([ticket(1, "my parcel never arrived"), ticket(2, "hello there"), ticket(3, "my parcel never arrived")], now=NOW)
    np.testing.assert_array_equal(out.vectors[0], out.vectors[2])
    assert not np.allclose(out.vectors[0], out.vectors[1])
    # deterministic across calls too
    again = enrich([ticket(9, "my parcel never arrived")], now=NOW)
    np.testing.assert_array_equal(again.vectors[0], out.vectors[0])


def test_enrich_empty_batch():
    out = enrich([], now=NOW)
    assert out.items == [] and out.clean_texts == []
    assert out.vectors.shape == (0, 256)


def test_enrich_assigns_issue_with_model():
    texts = ["my parcel never arrived", "refund my money now", "my parcel never arrived at all"]
    vectors = scoring.embed(texts[:2])
    model = CentroidsModel(version="m1", issue_ids=["parcel", "refund"], labels=["Parcel", "Refund"], centroids=vectors)
    out = enrich([ticket(i, t) for i, t in enumerate(texts)], model=model, now=NOW)
    assert [i["issue_id"] for i in out.items] == ["parcel", "refund", "parcel"]
    assert out.items[0]["issue_confidence"] == pytest.approx(1.0, abs=1e-3)
    assert all(i["issue_model"] == "m1" for i in out.items)


# --------------------------------------------------------------------------- scoring


def test_scoring_sentiment_neutral():
    assert scoring.sentiment("The package is at the depot")[0] == "neutral"


def test_scoring_threat_is_abusive_without_swearing():
    assert scoring.abuse_score("I will kill you") >= 0.9


def test_scoring_mild_swearing_not_flagged():
    assert scoring.abuse_score("damn, the app crashed again") < scoring.ABUSE_FLAG_THRESHOLD


def test_scoring_swearing_aimed_at_you_scores_higher():
    assert scoring.abuse_score("you idiot") > scoring.abuse_score("what an idiot")


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("I'm calling my lawyer", "legal_threat"),
        ("switching to Verizon tomorrow", "churn"),
        ("I'm reporting this to the BBB", "regulator_media"),
        ("the charger started smoking, there was a fire", "safety"),
        ("where is my parcel", None),
    ],
)
def test_scoring_escalation_rules(text, rule):
    assert scoring.escalation(text) == rule


def test_scoring_embed_text_without_tokens_is_zero_vector():
    # Documented behaviour of embed(): nothing to hash -> zero row (no NaNs from dividing by 0).
    v = scoring.embed(["", "!!!"])
    assert v.shape == (2, 256)
    assert not np.isnan(v).any()
    assert np.all(v == 0)


# --------------------------------------------------------------------------- aggregate


def make_item(**kw) -> dict:
    base = {"day": "2024-03-04", "hour": 9, "company": "acme", "channel": "twitter", "role": "customer", "sentiment": "neutral"}
    base.update(kw)
    return base


PK, SK = "day#2024-03-04", "company#acme#channel#twitter"


def test_aggregate_counts_customers_into_volume_and_company_replies_into_replies():
    items = [
        make_item(sentiment="negative"),
        make_item(sentiment="positive", hour=10),
        make_item(role="company", sentiment="positive"),
        make_item(role="company", sentiment="neutral"),
        make_item(role="company", sentiment="neutral"),
    ]
    rows = aggregate(items).rows
    row = rows[(PK, SK)]
    assert row["volume"] == 2
    assert row["replies"] == 3
    assert row["negative"] == 1 and row["positive"] == 1
    assert "neutral" not in row  # company replies are not scored into sentiment counters
    assert row["h09"] == 1 and row["h10"] == 1


def test_aggregate_days_index_row_counts_customer_messages():
    items = [make_item(), make_item(), make_item(day="2024-03-05"), make_item(role="company")]
    rows = aggregate(items).rows
    assert rows[("days", "2024-03-04")]["volume"] == 2
    assert rows[("days", "2024-03-05")]["volume"] == 1
    assert set(k for k in rows if k[0] == "days") == {("days", "2024-03-04"), ("days", "2024-03-05")}


def test_aggregate_flags_and_keys():
    items = [
        make_item(abusive=True, escalation="churn", call_status="failed"),
        make_item(abusive=False, company=None, channel="email"),
        make_item(company="beta", hour=23, escalation="legal_threat"),
    ]
    rows = aggregate(items).rows
    assert rows[(PK, SK)]["abusive"] == 1
    assert rows[(PK, SK)]["escalations"] == 1
    assert rows[(PK, SK)]["failed_calls"] == 1
    assert rows[(PK, "company#unknown#channel#email")]["volume"] == 1
    assert "abusive" not in rows[(PK, "company#unknown#channel#email")]
    assert rows[(PK, "company#beta#channel#twitter")]["h23"] == 1


@pytest.mark.parametrize(
    ("seconds", "bucket"),
    [
        (0, "rt_lt_15m"),
        (300, "rt_lt_15m"),
        (899, "rt_lt_15m"),
        (900, "rt_lt_1h"),
        (3599, "rt_lt_1h"),
        (3600, "rt_lt_4h"),
        (4 * 3600, "rt_lt_24h"),
        (24 * 3600 - 1, "rt_lt_24h"),
        (24 * 3600, "rt_ge_24h"),
        (10 * 24 * 3600, "rt_ge_24h"),
    ],
)
def test_aggregate_response_time_buckets(seconds, bucket):
    row = aggregate([make_item(first_response_s=float(seconds))]).rows[(PK, SK)]
    assert row[bucket] == 1
    assert row["rt_count"] == 1
    assert row["rt_sum"] == seconds
    others = {"rt_lt_15m", "rt_lt_1h", "rt_lt_4h", "rt_lt_24h", "rt_ge_24h"} - {bucket}
    assert not others & set(row)


def test_aggregate_response_sum_and_count():
    items = [make_item(first_response_s=300.0), make_item(first_response_s=5000.0), make_item()]
    row = aggregate(items).rows[(PK, SK)]
    assert row["rt_count"] == 2
    assert row["rt_sum"] == 5300.0
    assert row["volume"] == 3


def test_aggregate_agent_rows():
    items = [
        make_item(agent_id="ag-1", channel="voice", call_duration_s=3600.0, call_status="failed"),
        make_item(agent_id="ag-1", channel="voice", call_duration_s=120.0, call_status="success"),
        make_item(agent_id="ag-1", channel="voice", role="company"),  # replies do not count for agents
    ]
    rows = aggregate(items).rows
    agent = rows[(PK, "agent#ag-1#channel#voice")]
    assert agent["volume"] == 2
    assert agent["failed_calls"] == 1
    assert agent["calls"] == 2
    assert agent["call_duration_sum"] == 3720.0
    assert agent["long_calls"] == 1
    company = rows[(PK, "company#acme#channel#voice")]
    assert company["volume"] == 2 and company["replies"] == 1 and company["failed_calls"] == 1
    assert rows[("days", "2024-03-04")]["volume"] == 2  # agent rows do not inflate the day index


def test_aggregate_over_enriched_items(batch):
    rows = aggregate(batch.items).rows
    key = ("day#2024-03-04", "company#acme#channel#email")
    assert rows[key]["volume"] == len(TEXTS)
    assert rows[key]["h15"] == len(TEXTS)
    assert rows[key]["abusive"] == 1
    assert rows[key]["escalations"] == 2
    assert sum(rows[key].get(s, 0) for s in ("negative", "neutral", "positive")) == len(TEXTS)
    assert rows[("days", "2024-03-04")]["volume"] == len(TEXTS)
