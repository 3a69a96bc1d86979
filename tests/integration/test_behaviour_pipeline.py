"""Customer behaviour through the real handlers on moto (tables from template.yaml):
Enrich builds per-customer counters and profiles and records complaint fingerprints;
the Alerts schedule raises abusive-customer and coordinated-complaint alerts."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from supportlens.adapters import dynamo
from supportlens.domain import behaviour
from tests.integration.test_pipeline_handlers import sqs_record


def event(ticket_id: str, author: str, text: str, created_at: datetime, **extra) -> dict:
    ticket = {"ticket_id": ticket_id, "source": "ticket", "author_id": author, "company": "acme", "channel": "email",
              "text": text, "created_at": created_at.strftime("%Y-%m-%dT%H:%M:%SZ"), **extra}
    return sqs_record(json.dumps({"schema": "supportlens.ticket/v1", "ticket": ticket}))


@pytest.fixture
def enrich(handler_module, lambda_context):
    module = handler_module("EnrichFunction")

    def send(records: list[dict]) -> None:
        for start in range(0, len(records), 10):  # the template's batch size
            assert module.handler({"Records": records[start:start + 10]}, lambda_context) == {"batchItemFailures": []}

    return send


@pytest.fixture
def run_alerts(handler_module, lambda_context, deployment):
    module = handler_module("AlertsFunction")

    def run() -> list[dict]:
        module.handler({"kind": "windowed"}, lambda_context)
        return dynamo.scan_all(deployment.outputs["AlertsTableName"])

    return run


def customer_rows(deployment, customer: str) -> dict[str, dict]:
    return {r["sk"]: r for r in dynamo.query_pk(deployment.outputs["AggregatesTableName"], f"customer#{customer}")}


ESCALATIONS = [
    "I am going to sue you over this, I want a full refund",
    "My lawyer will be in touch. Refund me the money you took",
    "I'm cancelling my account unless I get compensation today",
    "I will take legal action and demand reimbursement of the fees",
    "Cancel my subscription, this is the third time it broke",
    "I have contacted the BBB about your service",
    "Going to small claims court if this is not fixed",
]


def test_repeat_escalations_and_claims_build_a_profile_and_an_alert(deployment, enrich, run_alerts):
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    now = datetime.now(timezone.utc).replace(microsecond=0)
    records = [event(f"{customer}-e{i}", customer, text, now - timedelta(days=6 - i)) for i, text in enumerate(ESCALATIONS)]
    records.append(event(f"{customer}-q1", customer, "How do I change my delivery address?", now - timedelta(days=3)))
    records.append(event(f"{customer}-old", customer, "I will sue you, refund me", now - timedelta(days=45)))  # outside 30 days
    enrich(records)

    rows = customer_rows(deployment, customer)
    profile = rows["profile"]
    assert profile["counts"]["tickets"] == 8 and profile["counts"]["escalations"] == 7
    assert profile["counts"]["escalated_claims"] == 4 and profile["counts"]["concession_claims"] == 4
    assert profile["reasons"][0] == "7 escalations in 30 days, 4 with concession claims"
    assert "4 refund/concession claims in 30 days" in profile["reasons"]
    assert profile["score"] >= 0.7 and profile["window_end"] == now.date().isoformat()
    assert sum(r.get("tickets", 0) for sk, r in rows.items() if sk != "profile") == 9  # daily rows keep all history

    # Redelivering every message changes no count and no score.
    enrich(records)
    again = customer_rows(deployment, customer)
    assert {sk: r for sk, r in again.items() if sk != "profile"} == {sk: r for sk, r in rows.items() if sk != "profile"}
    assert again["profile"]["counts"] == profile["counts"] and again["profile"]["score"] == profile["score"]

    alerts = [a for a in run_alerts() if a.get("subject") == customer and "summary" in a]
    assert [a["rule"] for a in alerts] == ["abusive-customer"]
    assert alerts[0]["observed"] == profile["score"]
    assert "7 escalations in 30 days, 4 with concession claims" in alerts[0]["summary"]
    assert len([a for a in run_alerts() if a.get("subject") == customer and "summary" in a]) == 1  # cooldown: raised once


def test_a_quiet_customer_gets_no_profile_and_no_alert(deployment, enrich, run_alerts):
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    now = datetime.now(timezone.utc)
    enrich([event(f"{customer}-{i}", customer, "Thanks, the parcel arrived safely", now) for i in range(3)])
    rows = customer_rows(deployment, customer)
    assert rows == {}  # no message carried a signal: nothing to score, no daily row to pay for
    active = dynamo.query_pk(deployment.outputs["AggregatesTableName"], f"active#{now.date().isoformat()}")
    assert sum(int((r.get("top") or {}).get(customer, 0)) for r in active) == 3  # the report still counts them
    assert not [a for a in run_alerts() if a.get("subject") == customer]


def test_quiet_messages_count_once_the_customer_has_a_profile(deployment, enrich):
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    now = datetime.now(timezone.utc).replace(microsecond=0)
    quiet = "How do I change my delivery address?"
    enrich([event(f"{customer}-q0", customer, quiet, now - timedelta(days=3))])  # before any signal: no row
    enrich([event(f"{customer}-e0", customer, ESCALATIONS[0], now - timedelta(days=2))])  # a signal: row + profile
    enrich([event(f"{customer}-q1", customer, quiet, now - timedelta(days=1)),  # has a profile now: counted
            event(f"{customer}-e1", customer, ESCALATIONS[1], now)])
    rows = customer_rows(deployment, customer)
    assert sum(r.get("tickets", 0) for sk, r in rows.items() if sk != "profile") == 3
    assert rows["profile"]["counts"]["tickets"] == 3 and rows["profile"]["counts"]["escalations"] == 2


def test_a_profile_scoring_zero_gets_no_index_row_unless_its_score_fell_to_zero(deployment, enrich):
    """The behaviour#<day> index feeds only scores (alert rule, report >= 0.5): one refund claim
    (within its allowance, score 0) writes the profile but no index row; a high score writes one;
    and a later refresh at 0 overwrites it, so the index never keeps a stale high score."""
    table = deployment.outputs["AggregatesTableName"]
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    now = datetime.now(timezone.utc).replace(microsecond=0)

    def indexed() -> list[dict]:
        return [r for r in dynamo.query_pk(table, f"behaviour#{now.date().isoformat()}") if r["sk"] == customer]

    enrich([event(f"{customer}-c0", customer, "My parcel never arrived, I want a refund", now - timedelta(days=80))])
    assert customer_rows(deployment, customer)["profile"]["score"] == 0 and indexed() == []
    enrich([event(f"{customer}-e{i}", customer, text, now - timedelta(days=70 - i)) for i, text in enumerate(ESCALATIONS)])
    assert indexed()[0]["score"] >= 0.7
    # A claim 40 days after the escalations: its 30-day window holds none of them, the score falls to 0.
    enrich([event(f"{customer}-c1", customer, "My parcel never arrived, I want a refund", now - timedelta(days=25))])
    assert customer_rows(deployment, customer)["profile"]["score"] == 0
    assert [r["score"] for r in indexed()] == [0]


def test_complaints_older_than_the_fingerprint_ttl_write_no_fingerprint_rows(deployment, enrich):
    run = uuid.uuid4().hex[:6]
    old = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=15)
    recent = old + timedelta(days=2)
    text = f"I want a full refund for the zq{run} outage, this is unacceptable"
    enrich([event(f"old-{run}", f"acct-{run}-0", text, old), event(f"new-{run}", f"acct-{run}-1", text, recent)])
    table = deployment.outputs["AggregatesTableName"]
    assert dynamo.query_pk(table, f"complaint#{old.strftime('%Y-%m-%dT%H')}") == []
    from supportlens.logic.behaviour import unpack_complaints

    rows = unpack_complaints(dynamo.query_pk(table, f"complaint#{recent.strftime('%Y-%m-%dT%H')}"))
    assert any(f"new-{run}" in r["tickets"] for r in rows)


def test_same_complaint_from_six_accounts_is_a_coordinated_complaint(deployment, enrich, run_alerts):
    run = uuid.uuid4().hex[:6]
    now = datetime.now(timezone.utc).replace(microsecond=0)
    word = f"zq{run}"  # makes this run's complaint text unique in the session's tables
    variants = [
        f"@AcmeCare I want a full refund for the {word} outage on 12/03, this is unacceptable!",
        f"I want a FULL refund for the {word} outage on 14/03. This is UNACCEPTABLE!!!",
        f"this is unacceptable, i want a full refund for the {word} outage https://t.co/abc",
    ]
    records = [event(f"coord-{run}-{i}", f"acct-{run}-{i}", variants[i % 3], now - timedelta(minutes=i)) for i in range(6)]
    # Four accounts sending another complaint stay under the threshold (5 distinct accounts).
    records += [event(f"small-{run}-{i}", f"acct-{run}-s{i}", f"My {word} parcel never arrived and support keeps ignoring me", now)
                for i in range(4)]
    # One account posting the same text many times is one account, not a campaign.
    records += [event(f"spam-{run}-{i}", f"acct-{run}-spam", f"Terrible {word} router keeps dropping the connection every night", now)
                for i in range(7)]
    enrich(records)
    enrich(records[:3])  # redelivery adds no account

    coordinated = [a for a in run_alerts() if a.get("rule") == "coordinated-complaint" and "examples" in a]
    mine = [a for a in coordinated if any(t.startswith(f"coord-{run}-") for t in a["examples"])]
    assert len(mine) == 1
    alert = mine[0]
    assert alert["observed"] == 6 and alert["subject_type"] == "complaint"
    assert alert["subject"] == behaviour.fingerprint(variants[1])
    assert "6 accounts" in alert["summary"] and "acme" in alert["summary"]
    others = [a for a in coordinated if any(t.startswith((f"small-{run}-", f"spam-{run}-")) for t in a["examples"])]
    assert others == []
    # No text is stored with the fingerprint: only ids.
    hour = now.strftime("%Y-%m-%dT%H")
    bucket = dynamo.query_pk(deployment.outputs["AggregatesTableName"], f"complaint#{hour}")
    assert not any("refund" in json.dumps(row) for row in bucket)
