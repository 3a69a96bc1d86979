"""Alerts and reports against moto with every resource built from template.yaml, in a cloud of
their own (so other tests' tickets and alerts cannot change the numbers):

- alert rules override from S3 / SSM, a bad override falls back to the defaults with a logged error;
- windowed rules over the Aggregates counters, dedupe + cooldown, SNS publishing, a quiet system;
- per-ticket rules through the AlertsFunction handler (stream records);
- the report's numbers equal those computed directly from the stored tickets, after real
  ingest + enrich through the handlers; the Report handler sends and archives it;
- the `supportlens report` and `supportlens alerts` commands.
"""

from __future__ import annotations

import email
import importlib.util
import json
import os
import re
import urllib.request
import sys
import statistics
import uuid
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from email import policy
from pathlib import Path
from types import ModuleType
from urllib.parse import quote_plus

import boto3
import pytest

from localcloud.deployer import Deployer
from tests.conftest import ROOT, FakeLambdaContext

SAMPLES = ROOT / "events" / "samples"
FILES = {"twcs": "twcs_sample.csv", "calls": "calls_sample.csv", "escalations": "escalations_sample.csv",
         "helpdesk": "helpdesk_sample.jsonl"}
NOW = datetime(2020, 5, 20, 12, 30, tzinfo=timezone.utc)  # between the samples' 2017 and 2024 data: no overlap


@pytest.fixture(scope="module")
def cloud(endpoint):
    """template.yaml deployed a second time on the session's moto server as Stage=prod, so this
    module's tables, topic and bucket are its own (moto's backends are shared in-process)."""
    deployment = Deployer(endpoint).deploy(ROOT / "template.yaml", {"Stage": "prod"})
    deployment.endpoint = endpoint
    assert deployment.outputs["AlertsTableName"] == "supportlens-prod-alerts"
    return deployment


@pytest.fixture(scope="module")
def prod_handler(cloud):
    """Import functions/<x>/app.py as the Lambda service would for the prod stack (its own environment)."""
    loaded: dict[str, ModuleType] = {}
    saved = dict(os.environ)

    def load(logical_id: str) -> ModuleType:
        if logical_id not in loaded:
            fn = cloud.function(logical_id)
            os.environ.update(fn.environment)
            spec = importlib.util.spec_from_file_location(f"prod_handler_{logical_id}", fn.code_dir / "app.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            loaded[logical_id] = module
        return loaded[logical_id]

    yield load
    for key in set(os.environ) - set(saved):
        os.environ.pop(key, None)
    os.environ.update(saved)


def client(cloud, service: str):
    return boto3.client(service, endpoint_url=cloud.endpoint, region_name="us-east-1")


def settings_for(cloud, **kw):
    from supportlens.settings import Settings

    o = cloud.outputs
    return Settings(data_bucket=o["DataBucketName"], tickets_table=o["TicketsTableName"], files_table=o["FilesTableName"],
                    aggregates_table=o["AggregatesTableName"], issues_table=o["IssuesTableName"],
                    alerts_table=o["AlertsTableName"], alerts_topic_arn=o["AlertsTopicArn"],
                    sender_email="supportlens-reports@example.com", report_recipients=["support-leads@example.com"], **kw)


@pytest.fixture(scope="module")
def inbox(cloud):
    """An SQS queue subscribed to the alerts topic: what SNS delivered."""
    sqs, sns = client(cloud, "sqs"), client(cloud, "sns")
    url = sqs.create_queue(QueueName=f"alerts-inbox-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=cloud.outputs["AlertsTopicArn"], Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})

    def read() -> list[dict]:
        out = []
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not got:
                return out
            for m in got:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    read()
    return read


def stored_alerts(cloud) -> list[dict]:
    from supportlens.adapters import dynamo

    return [a for a in dynamo.scan_all(cloud.outputs["AlertsTableName"]) if a.get("record") != "cooldown"]


# --------------------------------------------------------------------------- configuration


def test_override_from_s3_and_ssm_and_bad_override_falls_back(cloud, capsys, monkeypatch):
    from supportlens.domain.alerts import DEFAULT_CONFIG, load_config
    from supportlens.logic.alert_config import ConfigCache, resolve
    from supportlens.observability import logger

    # The process-wide logger keeps the stdout it was created with (an earlier test's capture).
    monkeypatch.setattr(logger().registered_handler, "stream", sys.stdout)

    bucket = cloud.outputs["DataBucketName"]
    s3 = client(cloud, "s3")
    good = "version: 1\nticket_rules:\n  - {name: only-escalations, kind: escalation, subject: company}\n"
    s3.put_object(Bucket=bucket, Key="config/alerts.yaml", Body=good.encode())
    loaded = resolve(settings_for(cloud, alert_config_s3_uri=f"s3://{bucket}/config/alerts.yaml"))
    assert loaded.source == f"s3://{bucket}/config/alerts.yaml" and loaded.error is None
    assert [r.name for r in loaded.config.ticket_rules] == ["only-escalations"] and loaded.config.window_rules == []

    client(cloud, "ssm").put_parameter(Name="/supportlens/test-alert-rules", Type="String", Value=good.replace("only-escalations", "from-ssm"))
    loaded = resolve(settings_for(cloud, alert_config_parameter="/supportlens/test-alert-rules"))
    assert loaded.source == "ssm:/supportlens/test-alert-rules" and loaded.config.ticket_rules[0].name == "from-ssm"

    bad = good + "window_rules:\n  - {name: neg, kind: negative_share_spike, share_above: 1.7}\n"
    s3.put_object(Bucket=bucket, Key="config/bad.yaml", Body=bad.encode())
    capsys.readouterr()
    cache = ConfigCache()
    config = cache.get(settings_for(cloud, alert_config_s3_uri=f"s3://{bucket}/config/bad.yaml"))
    assert config == load_config(DEFAULT_CONFIG)  # the defaults stay in force
    assert cache.loaded.error == "invalid alert rules: window_rules.0.share_above: must be between 0 and 1"
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    errors = [line for line in logged if line.get("level") == "ERROR"]
    assert errors and "window_rules.0.share_above: must be between 0 and 1" in errors[0]["error"]

    missing = resolve(settings_for(cloud, alert_config_s3_uri=f"s3://{bucket}/config/missing.yaml"))
    assert missing.source == "defaults" and "unreadable" in missing.error
    assert resolve(settings_for(cloud)).source == "defaults"


# --------------------------------------------------------------------------- windowed rules


def _items(n: int, company: str, when: datetime, **kw) -> list[dict]:
    out = []
    for i in range(n):
        at = when - timedelta(minutes=7 * i)
        item = {"ticket_id": f"{company}-{when:%m%d%H}-{i}", "role": "customer", "company": company, "channel": "email",
                "author_id": f"{company}-cust-{i}", "sentiment": "neutral", "day": at.strftime("%Y-%m-%d"), "hour": at.hour}
        for key, value in kw.items():
            item[key] = value(i) if callable(value) else value
        out.append({k: v for k, v in item.items() if v is not None})
    return out


@pytest.fixture(scope="module")
def busy_aggregates(cloud):
    """Counters for one noisy company, agent and customer and one calm company, applied the way Enrich applies them."""
    from supportlens.adapters import dynamo
    from supportlens.domain.enrichment import aggregate

    items = []
    for d in range(1, 8):  # baseline: a week of ordinary days
        day = NOW - timedelta(days=d)
        items += _items(40, "noisyco", day.replace(hour=10), sentiment=lambda i: "negative" if i < 4 else "neutral")
        items += _items(40, "calmco", day.replace(hour=10), sentiment=lambda i: "negative" if i < 4 else "neutral")
    items += _items(30, "noisyco", NOW - timedelta(minutes=20), sentiment=lambda i: "negative" if i < 20 else "neutral",
                    abusive=lambda i: i < 6 or None, first_response_s=lambda i: 5400.0 if i < 10 else 600.0 if i < 25 else None)
    items += _items(30, "calmco", NOW - timedelta(minutes=20), sentiment=lambda i: "negative" if i < 2 else "positive",
                    first_response_s=lambda i: 300.0)
    items += _items(3, "voiceco", NOW - timedelta(hours=2), author_id="cust-9", agent_id="ag-5", call_status="failed",
                    call_duration_s=200.0, channel="voice")
    items += _items(2, "voiceco", NOW - timedelta(hours=3), agent_id="ag-5", call_status="failed", call_duration_s=100.0, channel="voice")
    items += _items(4, "voiceco", NOW - timedelta(hours=30), author_id="cust-old", agent_id="ag-6", call_status="failed", channel="voice")
    for start in range(0, len(items), 200):
        # Every other chunk as rows written before write-sharding (legacy, unsharded partitions),
        # the rest as Enrich writes them now (the chunk's shards): the rules must see the sum.
        chunk = f"test-chunk-{start}"
        rows = aggregate(items[start:start + 200], None if start // 200 % 2 == 0 else chunk).rows
        dynamo.apply_increments_once(cloud.outputs["AggregatesTableName"], chunk, rows)
    return items


def test_windowed_rules_raise_once_per_cooldown_and_publish(cloud, busy_aggregates, inbox):
    from supportlens.domain.alerts import DEFAULT_CONFIG, load_config
    from supportlens.logic.alerts import on_schedule

    config = load_config(DEFAULT_CONFIG)
    settings = settings_for(cloud)
    result = on_schedule(config, settings, now=NOW)
    alerts = {(a["rule"], a["subject"]): a for a in stored_alerts(cloud)}
    assert set(alerts) == {
        ("negative-sentiment-spike", "noisyco"),  # 20/30 today vs 10 % on the 7 days before
        ("abuse-rate-spike", "noisyco"),  # 6/30 in the last 24 h, none before
        ("response-sla-company", "noisyco"),  # 10 of 25 answers slower than 60 min
        ("failed-calls-customer", "cust-9"),  # 3 failed calls in 24 h (cust-old's are 30 h old)
        ("failed-calls-agent", "ag-5"),  # 5 in 8 h (ag-6's are outside the window)
    }
    assert result["raised"] == 5
    neg = alerts[("negative-sentiment-spike", "noisyco")]
    assert neg["observed"] == pytest.approx(20 / 30, abs=1e-4) and neg["threshold"] == 0.5
    assert neg["baseline"] == pytest.approx(0.1) and neg["window"] == "2020-05-20..2020-05-20"
    assert len(neg["examples"]) == 3 and all(e.startswith("noisyco-") for e in neg["examples"])
    sla = alerts[("response-sla-company", "noisyco")]
    assert sla["breaches"] == 10 and sla["responses"] == 25 and sla["observed"] == pytest.approx(0.4)
    assert sla["window"] == "2020-05-19T13:00Z..2020-05-20T12:59Z" and sla["examples"]
    assert alerts[("failed-calls-agent", "ag-5")]["observed"] == 5
    assert alerts[("failed-calls-customer", "cust-9")]["examples"]
    for a in alerts.values():
        assert a["summary"] and a["raised_at"] == NOW.isoformat() and a["cooldown_minutes"] >= 60

    published = inbox()
    assert sorted((m["rule"], m["subject"]) for m in published) == sorted(alerts)
    assert all("expires_at" not in m for m in published)

    # Still noisy five minutes later: nothing repeats inside the cooldowns.
    assert on_schedule(config, settings, now=NOW + timedelta(minutes=5))["raised"] == 0
    assert inbox() == [] and len(stored_alerts(cloud)) == 5

    # 6 h 40 min later the 6-hour cooldown of the negative-share rule has passed (same day, same data);
    # the 12 h and 24 h cooldowns of the others have not.
    later = NOW + timedelta(hours=6, minutes=40)
    assert on_schedule(config, settings, now=later)["raised"] == 1
    assert [(m["rule"], m["subject"]) for m in inbox()] == [("negative-sentiment-spike", "noisyco")]


def test_quiet_system_publishes_nothing(cloud, busy_aggregates, inbox):
    from supportlens.domain.alerts import DEFAULT_CONFIG, load_config
    from supportlens.logic.alerts import on_schedule

    before = len(stored_alerts(cloud))
    result = on_schedule(load_config(DEFAULT_CONFIG), settings_for(cloud), now=NOW + timedelta(days=400))
    assert result == {"evaluated_days": result["evaluated_days"], "candidates": 0, "raised": 0}
    assert inbox() == [] and len(stored_alerts(cloud)) == before


def test_alerts_handler_per_ticket_rules_dedupe(cloud, prod_handler, lambda_context, inbox):
    from decimal import Decimal

    from boto3.dynamodb.types import TypeSerializer

    module = prod_handler("AlertsFunction")
    ser = TypeSerializer()

    def record(ticket: dict) -> dict:
        return {"eventID": uuid.uuid4().hex, "eventName": "INSERT", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x",
                "dynamodb": {"NewImage": {k: ser.serialize(v) for k, v in ticket.items()}, "StreamViewType": "NEW_IMAGE"}}

    calm = {"ticket_id": "h-1", "role": "customer", "author_id": "hc-1", "company": "handlerco", "abuse_score": Decimal("0.1")}
    angry = {**calm, "ticket_id": "h-2", "abuse_score": Decimal("0.95"), "escalation": "legal_threat"}
    again = {**angry, "ticket_id": "h-3"}
    assert module.handler({"Records": [record(calm)]}, lambda_context) == {"batchItemFailures": []}
    assert inbox() == []
    module.handler({"Records": [record(angry), record(again)]}, lambda_context)
    got = sorted((m["rule"], m["subject"], tuple(m["examples"])) for m in inbox())
    assert got == [("abusive-message", "hc-1", ("h-2",)), ("escalation", "handlerco", ("h-2",))]
    module.handler({"Records": [record({**angry, "ticket_id": "h-4"})]}, lambda_context)
    assert inbox() == []  # same customer and company inside the cooldown


def test_alert_stored_once_when_a_delivery_dies_between_the_cooldown_claim_and_the_record(cloud, inbox, monkeypatch):
    """The cooldown claim and the alert record are two conditional puts (not one transaction, half
    the WRU): a delivery that dies after the claim leaves the guard claimed for that alert, and the
    retry stores and publishes it once, without restarting the cooldown; any other alert of the same
    rule and subject stays suppressed, and a third delivery does nothing."""
    from supportlens.adapters import dynamo
    from supportlens.logic.alerts import raise_alert

    settings = settings_for(cloud)
    subject = f"crash-{uuid.uuid4().hex[:8]}"
    alert = {"rule": "crash-test", "kind": "escalation", "severity": "info", "subject_type": "company", "subject": subject,
             "observed": "x", "threshold": None, "window": "ticket t", "examples": ["t"], "cooldown_minutes": 60,
             "summary": "crash test"}
    real = dynamo.put_if_absent

    def die(*args, **kwargs):
        raise RuntimeError("the container died")

    monkeypatch.setattr(dynamo, "put_if_absent", die)
    with pytest.raises(RuntimeError):
        raise_alert(alert, settings, NOW)
    monkeypatch.setattr(dynamo, "put_if_absent", real)

    def mine():
        return [a for a in stored_alerts(cloud) if a.get("subject") == subject]

    assert mine() == [] and inbox() == []
    assert raise_alert(alert, settings, NOW + timedelta(minutes=5))  # the retry, same cooldown bucket
    assert [m["subject"] for m in inbox()] == [subject] and len(mine()) == 1
    assert not raise_alert(alert, settings, NOW + timedelta(minutes=6))  # a third delivery
    assert not raise_alert(alert, settings, NOW + timedelta(minutes=40))  # next bucket, inside the cooldown
    assert inbox() == [] and len(mine()) == 1
    # The cooldown runs from the first claim (NOW), not from the retry (NOW + 5 min).
    assert raise_alert(alert, settings, NOW + timedelta(minutes=62))
    assert len(mine()) == 2 and [m["subject"] for m in inbox()] == [subject]


def test_an_alert_inside_a_cooldown_this_container_saw_claimed_costs_no_write(cloud, inbox):
    """A candidate whose rule and subject this container saw claimed for another alert less than a
    cooldown ago is dropped without a request (a failed conditional put costs 1 WRU), and so is the
    same alert once seen stored (another ticket of that rule, subject and hour); one past the cooldown
    goes to DynamoDB, and a retry after a crash before the record is stored too (the test above)."""
    from supportlens.adapters import aws as aws_adapter
    from supportlens.logic.alerts import raise_alert

    settings = settings_for(cloud)
    subject = f"seen-{uuid.uuid4().hex[:8]}"
    alert = {"rule": "seen-test", "kind": "escalation", "severity": "info", "subject_type": "company", "subject": subject,
             "observed": "x", "threshold": None, "window": "ticket t", "examples": ["t"], "cooldown_minutes": 60,
             "summary": "seen test"}
    aws_adapter.client.cache_clear()
    ddb = aws_adapter.client("dynamodb")
    puts: list[str] = []
    count = lambda params, **_: puts.append(params["Item"]["dedupe_key"]["S"])  # noqa: E731
    ddb.meta.events.register("provide-client-params.dynamodb.PutItem", count)
    try:
        assert raise_alert(alert, settings, NOW)
        assert len(puts) == 2  # the claim and the record
        assert not raise_alert(alert, settings, NOW + timedelta(minutes=40))  # next bucket: another alert, cooling down
        assert len(puts) == 2
        assert not raise_alert(alert, settings, NOW + timedelta(minutes=1))  # the same alert, seen stored
        assert len(puts) == 2
        assert raise_alert(alert, settings, NOW + timedelta(minutes=61))  # past the cooldown
        assert len(puts) == 4
    finally:
        ddb.meta.events.unregister("provide-client-params.dynamodb.PutItem", count)
        aws_adapter.client.cache_clear()
    assert [m["subject"] for m in inbox() if m["subject"].startswith("seen-")] == [subject, subject]


# --------------------------------------------------------------------------- report numbers


@pytest.fixture(scope="module")
def ingested(cloud, prod_handler):
    """The bundled samples through IngestFunction and EnrichFunction, as the queues would deliver them."""
    ingest, enrich = prod_handler("IngestFunction"), prod_handler("EnrichFunction")
    lambda_context = FakeLambdaContext()
    s3, sqs = client(cloud, "s3"), client(cloud, "sqs")
    bucket, queue = cloud.outputs["DataBucketName"], cloud.outputs["TicketsQueueUrl"]
    for source, name in FILES.items():
        key = f"incoming/{source}/{name}"
        body = (SAMPLES / name).read_bytes()
        etag = s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
        event = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": bucket},
                 "object": {"key": quote_plus(key), "eTag": etag, "size": len(body)}}}]}
        assert ingest.handler({"Records": [_sqs(json.dumps(event))]}, lambda_context) == {"batchItemFailures": []}
    while True:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            break
        assert enrich.handler({"Records": [_sqs(m["Body"]) for m in got]}, lambda_context) == {"batchItemFailures": []}
        for m in got:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    from supportlens.adapters import dynamo

    return dynamo.scan_all(cloud.outputs["TicketsTableName"])


def _sqs(body: str) -> dict:
    return {"messageId": str(uuid.uuid4()), "receiptHandle": "rh", "body": body, "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"}


def _in(tickets: list[dict], start: date, end: date) -> list[dict]:
    return [t for t in tickets if t.get("role") != "company" and start.isoformat() <= t["day"] <= end.isoformat()]


def test_report_numbers_equal_the_stored_tickets(cloud, ingested):
    from supportlens.domain.metrics import hist_bucket_of
    from supportlens.logic.report import build_report

    from supportlens.adapters import dynamo

    lineage = dynamo.scan_all(cloud.outputs["FilesTableName"])
    assert sorted(f["source"] for f in lineage) == sorted(FILES) and all(f["status"] == "emitted" for f in lineage)
    assert len(ingested) == sum(int(f["tickets_stored"]) for f in lineage) > 1900
    report = build_report(settings_for(cloud), "30d", today=date(2017, 11, 26))
    data = report["data"]
    mine = _in(ingested, data.start, data.end)
    assert len(mine) > 900  # most of the sample's customer tweets fall in these 30 days
    assert data.totals["volume"] == len(mine)
    for sentiment in ("negative", "neutral", "positive"):
        assert data.totals.get(sentiment, 0) == sum(t["sentiment"] == sentiment for t in mine)
    assert data.totals.get("abusive", 0) == sum(bool(t.get("abusive")) for t in mine)
    assert data.totals.get("escalations", 0) == sum(bool(t.get("escalation")) for t in mine)
    assert data.daily_volume == {d: sum(t["day"] == d for t in mine) for d in data.days}
    assert {c: n for c, n in data.by_channel.items() if n} == dict(Counter(t.get("channel", "other") for t in mine))
    cells = Counter((date.fromisoformat(t["day"]).weekday(), t["hour"]) for t in mine)
    assert {(w, h): v for w, row in enumerate(data.heatmap) for h, v in enumerate(row) if v} == dict(cells)
    replies = [t for t in ingested if t.get("role") == "company" and data.start.isoformat() <= t["day"] <= data.end.isoformat()]
    assert data.totals.get("replies", 0) == len(replies)

    by_company = defaultdict(list)
    for t in mine:
        if t.get("first_response_s") is not None:
            by_company[t.get("company") or "unknown"].append(float(t["first_response_s"]))
    assert by_company, "the sample has answered tweets"
    rows = {r["company"]: r for r in data.by_company}
    for company, times in by_company.items():
        row = rows[company]
        assert row["responses"] == len(times)
        assert row["avg_response_min"] == pytest.approx(statistics.mean(times) / 60, rel=1e-9)
        low, high = hist_bucket_of(statistics.median_low(times))
        low2, high2 = hist_bucket_of(statistics.median_high(times))
        assert min(low, low2) <= row["median_response_min"] * 60 <= max(high, high2)  # exact to its histogram bucket

    html_body, text = report["html"], report["text"]
    assert f"Customer messages: {len(mine):,}" in text
    for section in ("Volume", "Sentiment", "Hour x weekday", "Channels", "Companies", "Escalations", "Delivery outcomes (FTDS)",
                    "Response times", "Agent performance", "Top issues", "Emerging issues", "Alerts raised",
                    "Customers with high abusive-behaviour scores"):
        assert f">{section}</h2>" in html_body and f"\n{section}:\n" in text
    assert "Fastest companies" in html_body
    assert "No agent data in this period" in html_body  # twitter threads name no agents
    assert "Not computed yet: clustering runs" in html_body


def test_report_agents_and_delivery_outcomes(cloud, ingested):
    from supportlens.logic.report import build_report

    data = build_report(settings_for(cloud), "7d", today=date(2024, 6, 9))["data"]
    mine = _in(ingested, data.start, data.end)
    assert {t["source"] for t in mine} == {"calls", "escalations", "helpdesk"}
    agents = {a["agent"]: a for a in data.agents}
    expected = defaultdict(lambda: Counter())
    for t in mine:
        if t.get("agent_id"):
            e = expected[t["agent_id"]]
            e["volume"] += 1
            e["failed_calls"] += t.get("call_status") == "failed"
            e["long_calls"] += float(t.get("call_duration_s") or 0) >= 3000
            e["responses"] += t.get("first_response_s") is not None
    assert set(agents) == set(expected)
    for agent, e in expected.items():
        got = agents[agent]
        assert (got["volume"], got["failed_calls"], got["long_calls"], got["responses"]) == (
            e["volume"], e["failed_calls"], e["long_calls"], e["responses"])
    ftds = Counter(t["delivery_status"].lower() for t in mine if t.get("delivery_status"))
    assert data.delivery == {k.replace("-", "_").replace(" ", "_"): v for k, v in ftds.items()}
    assert sum(data.delivery.values()) == sum(ftds.values()) > 0


SUMMARY_SECTIONS = ("volume_daily", "sentiment", "heatmap", "channels", "companies", "by_region", "by_tier", "by_industry",
                    "ftds_trend", "escalation_trend", "abuse_trend", "agents", "issues", "emerging_issues",
                    "alerts_by_rule_channel", "alerts", "most_active_customers", "abusive_customers")


def _bin_count(tickets: list[dict], row: dict, predicate=lambda t: True) -> int:
    return sum(row["start"] <= t["day"] <= row["end"] and predicate(t) for t in tickets)


def test_report_summary_sections_equal_the_stored_tickets(cloud, ingested):
    """The 60 days ending at the sample's newest tweet, as `make demo` reports them: every section of
    summary.json recomputed from the stored tickets."""
    from supportlens.logic.report import build_report

    report = build_report(settings_for(cloud), "60d", today=date(2017, 12, 3))
    s, data = report["summary"], report["data"]
    mine = _in(ingested, data.start, data.end)
    assert s["period"]["start"] == "2017-10-05" and s["period"]["end"] == "2017-12-03" and "data time" in s["period"]["clock"]
    assert s["kpis"]["customer_messages"] == len(mine) >= 1000
    assert s["kpis"]["escalations"] == sum(bool(t.get("escalation")) for t in mine)
    assert s["kpis"]["abusive"] == sum(bool(t.get("abusive")) for t in mine)
    answered = [float(t["first_response_s"]) for t in mine if t.get("first_response_s") is not None]
    assert s["kpis"]["first_response_avg_s"] == pytest.approx(statistics.mean(answered), abs=0.05)
    assert s["kpis"]["negative_share"] == pytest.approx(sum(t["sentiment"] == "negative" for t in mine) / len(mine), abs=1e-4)
    for key in SUMMARY_SECTIONS:  # every section present; an empty one says why
        assert key in s and isinstance(s[key]["rows"], list) and (s[key]["rows"] or s[key]["reason"]), key
    assert s["response_times"]["fastest_companies"]

    # 60 days are charted in weeks ending with the period's last day; the oldest week is the short one
    rows = s["volume_daily"]["rows"]
    assert s["period"]["bins"] == "week" and rows[-1]["end"] == "2017-12-03" and rows[0]["start"] == "2017-10-05"
    assert [r["days"] for r in rows] == [4] + [7] * 8
    assert [r["volume"] for r in rows] == [_bin_count(mine, r) for r in rows]
    for r in s["sentiment"]["rows"]:
        for name in ("negative", "neutral", "positive"):
            assert r[name] == _bin_count(mine, r, lambda t: t["sentiment"] == name)
    for r in s["escalation_trend"]["rows"]:
        assert r["escalations"] == _bin_count(mine, r, lambda t: bool(t.get("escalation")))
    for r in s["abuse_trend"]["rows"]:
        assert r["abusive"] == _bin_count(mine, r, lambda t: bool(t.get("abusive")))
    assert {r["channel"]: r["messages"] for r in s["channels"]["rows"]} == dict(Counter(t["channel"] for t in mine))
    assert {r["company"]: r["messages"] for r in s["companies"]["rows"]} == dict(Counter(t.get("company") or "unknown" for t in mine))
    # fastest and slowest never repeat a company
    fastest = {r["company"] for r in s["response_times"]["fastest_companies"]}
    assert not fastest & {r["company"] for r in s["response_times"]["slowest_companies"]}
    # most active customers: a chunk's activity row lists all its customers, so the counts are exact
    authors = Counter(t["author_id"] for t in mine)
    top = s["most_active_customers"]["rows"]
    truth = sorted(authors.items(), key=lambda kv: (-kv[1], kv[0]))
    assert [(r["customer"], r["messages"]) for r in top] == truth[:10] and all(r["exact"] for r in top)
    # twitter has no regions, tiers, industries or delivery outcomes: said, not drawn
    for key in ("by_region", "by_tier", "by_industry", "ftds_trend", "agents"):
        assert s[key]["rows"] == [] and "this period" in s[key]["reason"]
    assert "carries an industry:" in s["by_industry"]["reason"] and "carries a region:" in s["by_region"]["reason"]
    assert s["issues"]["reason"].startswith("not computed yet")
    assert json.loads(json.dumps(s, default=str)) == json.loads(json.dumps(s, default=str))  # plain JSON

    # the dashboard carries the same cells: its totals equal the KPIs
    from supportlens.domain.dashboard import dashboard_data

    board = dashboard_data(data, s)
    volume_at = 3 + board["counters"].index("volume")
    assert sum(c[volume_at] for c in board["cells"]) == len(mine)
    assert board["company_count"] == len(s["companies"]["rows"])  # the filter's "all companies (N)" is the report's N
    assert len(report["dashboard"].encode()) < 2_500_000


def test_report_breakdowns_trends_and_alerts_of_the_period(cloud, ingested):
    """Region, tier, industry, FTDS and alerts by rule x channel, for the calls/escalations/helpdesk
    week of 2024, recomputed from the stored tickets and the stored alerts."""
    from supportlens.domain.alerts import load_config, read_default_config
    from supportlens.domain.report import first_time_success
    from supportlens.logic.alerts import on_ticket
    from supportlens.logic.report import build_report

    settings = settings_for(cloud)
    week = [t for t in ingested if "2024-06-03" <= t["day"] <= "2024-06-09"]
    config = load_config(read_default_config())
    for t in week:  # what AlertsFunction does for each stored ticket
        on_ticket(t, config, settings, now=NOW)
    report = build_report(settings, "7d", today=date(2024, 6, 9))
    s, data = report["summary"], report["data"]
    mine = _in(ingested, data.start, data.end)
    for key, field_name in (("by_region", "region"), ("by_tier", "tier"), ("by_industry", "industry")):
        expected = Counter(str(t[field_name]).strip() for t in mine if t.get(field_name))  # as the files spell them ("NA")
        assert expected, field_name
        assert {r["value"]: r["messages"] for r in s[key]["rows"]} == dict(expected)
        assert {r["value"]: r["escalations"] for r in s[key]["rows"] if r["escalations"]} == dict(
            Counter(str(t[field_name]).strip() for t in mine if t.get(field_name) and t.get("escalation")))
    assert {"EMEA", "NA", "APAC"} <= {r["value"] for r in s["by_region"]["rows"]}
    cases = [t for t in mine if t.get("delivery_status")]
    assert sum(r["cases"] for r in s["ftds_trend"]["rows"]) == len(cases) > 0
    assert sum(r["first_time_success"] for r in s["ftds_trend"]["rows"]) == sum(
        first_time_success(t["delivery_status"]) for t in cases) == sum(t["delivery_status"] == "delivered" for t in cases)
    # alerts about this week (data time), wherever the wall clock stood when they were raised
    about = [a for a in stored_alerts(cloud) if "2024-06-03" <= str(a.get("day", "")) <= "2024-06-09"]
    assert about and s["kpis"]["alerts"] == len(about) == s["alerts"]["total"]
    assert {(r["rule"], r["channel"]): r["alerts"] for r in s["alerts_by_rule_channel"]["rows"]} == dict(
        Counter((a["rule"], a["channel"]) for a in about))
    by_id = {t["ticket_id"]: t for t in ingested}
    for row in s["alerts"]["rows"]:
        ticket = by_id[row["ticket_ids"][0]]
        assert row["company"] == ticket.get("company") and row["data_time"] == ticket["created_at"]
        assert row["excerpt"] and row["excerpt"][:40] == " ".join(ticket["text"].split())[:40]  # the stored, masked text
    assert s["agents"]["rows"] and (s["response_times"]["fastest_agents"] or "3+ answered" in s["response_times"]["agents_reason"])
    html_body = report["html"]
    for title in ("Tickets by region", "Tickets by customer tier", "Tickets by industry", "Most active customers",
                  "First-time delivery success (FTDS) over time", "Alerts by rule and channel"):
        assert title in html_body and title in report["text"]
    region_table = html_body[html_body.index("Tickets by region"):html_body.index("Tickets by customer tier")]
    assert ">NA<" in region_table and ">na<" not in region_table  # shown as written, not lower-cased


def test_report_handler_sends_and_archives(cloud, ingested, prod_handler, lambda_context):
    module = prod_handler("ReportFunction")
    result = module.handler({"period": "7d"}, lambda_context)
    newest = max(t["day"] for t in ingested if t.get("role") != "company")
    assert result["message_id"] and result["end"] == newest  # no tickets this week: the newest stored week, said plainly
    mine = _in(ingested, date.fromisoformat(result["start"]), date.fromisoformat(result["end"]))
    assert result["volume"] == len(mine)
    raw = client(cloud, "s3").get_object(Bucket=cloud.outputs["DataBucketName"], Key=result["archive"])["Body"].read()
    message = email.message_from_bytes(raw, policy=policy.default)
    assert message["Subject"] == result["subject"]
    html_body = message.get_body(preferencelist=("html",)).get_content()
    assert f"The newest stored tickets are from {newest}" in html_body
    images = [p for p in message.walk() if p.get_content_type() == "image/png"]
    # the newest week holds escalation cases with delivery outcomes: their trend charts too
    assert {p["Content-ID"] for p in images} == {"<volume>", "<sentiment>", "<heatmap>", "<trends>", "<ftds>"}
    assert len(raw) < 1_000_000 and result["email_bytes"] == len(raw)
    bucket = cloud.outputs["DataBucketName"]
    summary = json.loads(client(cloud, "s3").get_object(Bucket=bucket, Key="reports/7d/summary.json")["Body"].read())
    assert summary == json.loads(client(cloud, "s3").get_object(Bucket=bucket, Key=result["summary"])["Body"].read())
    assert summary["period"]["start"] == result["start"] and summary["kpis"]["customer_messages"] == len(mine)
    # the e-mail links to the archived dashboard with a pre-signed URL that really reads it
    link = re.search(r"href='([^']+)'", html_body).group(1).replace("&amp;", "&")
    assert result["dashboard"] in link and "X-Amz-Signature=" in link and "X-Amz-Expires=604800" in link
    with urllib.request.urlopen(link, timeout=30) as response:
        page = response.read().decode()
    assert page.startswith("<!DOCTYPE html>") and "Plotly" in page and 'id="dashboard-data"' in page
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert f"Interactive dashboard: {link}" in text


# --------------------------------------------------------------------------- CLI


def test_cli_report_and_alerts(cloud, ingested, tmp_path, monkeypatch, capsys):
    from supportlens_cli import client as cli_client, main as cli
    from supportlens.logic.alerts import raise_alert

    alert = {"rule": "cli-test", "kind": "escalation", "severity": "info", "subject_type": "company", "subject": "cli-co",
             "observed": "churn", "threshold": None, "window": "ticket t", "examples": ["t"], "cooldown_minutes": 60,
             "summary": "CLI test alert"}
    assert raise_alert(alert, settings_for(cloud), datetime.now(timezone.utc))
    state = tmp_path / "local.json"
    state.write_text(json.dumps({"endpoint": cloud.endpoint, "region": "us-east-1", "outputs": cloud.outputs,
                                 "parameters": cloud.parameters}))
    monkeypatch.setattr(cli_client, "STATE_FILE", state)
    for key in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, os.environ.get(key, "testing"))
    monkeypatch.delenv("SUPPORTLENS_STACK", raising=False)

    assert cli.main(["report", "--period", "7d", "--out", str(tmp_path / "out"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["message_id"] and result["volume"] > 0
    page = Path(result["files"][1]).read_text()
    assert page.count("data:image/png;base64,") == 5 and "cid:" not in page
    assert json.loads(Path(result["files"][2]).read_text())["kpis"]["customer_messages"] == result["volume"]
    assert 'id="dashboard-data"' in Path(result["files"][3]).read_text()
    board = tmp_path / "board.html"
    assert cli.main(["dashboard", "--period", "7d", "--out", str(board)]) == 0  # a .html path is the file
    assert "opens offline" in capsys.readouterr().out and board.stat().st_size > 1_000_000
    # --out is a folder, as for `report`: the same file name, never a file called like the folder
    assert cli.main(["dashboard", "--period", "7d", "--out", str(tmp_path / "out")]) == 0
    assert 'id="dashboard-data"' in (tmp_path / "out" / "dashboard-7d.html").read_text()
    assert "replaced the file that was there" in capsys.readouterr().out  # report's dashboard-7d.html, said aloud
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out" / "dashboard.html").write_text("the demo's")
    assert cli.main(["dashboard", "--period", "30d"]) == 0 and "out/dashboard-30d.html" in capsys.readouterr().out
    assert (tmp_path / "out" / "dashboard.html").read_text() == "the demo's" and (tmp_path / "out" / "dashboard-30d.html").is_file()
    assert Path(result["files"][0]).read_bytes().startswith(b"Content-Type: multipart/related")
    keys = [o["Key"] for o in client(cloud, "s3").list_objects_v2(Bucket=cloud.outputs["DataBucketName"], Prefix="reports/7d/")["Contents"]]
    assert result["archive"] in keys

    assert cli.main(["alerts", "--json", "--limit", "3"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == min(3, len(stored_alerts(cloud))) and lines[0]["rule"] == "cli-test"
    assert [a["raised_at"] for a in lines] == sorted((a["raised_at"] for a in lines), reverse=True)
    assert all(a.get("record") != "cooldown" and a["rule"] and "summary" in a for a in lines)
    assert cli.main(["alerts"]) == 0
    out = capsys.readouterr().out
    assert "observed" in out and "examples" in out
    assert cli.main(["report", "--period", "week"]) == 1
