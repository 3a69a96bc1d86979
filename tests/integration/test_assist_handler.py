"""The bundled TWCS sample through the Ingest and Enrich handlers, then the Cluster handler
(Issues items, centroids model, similar-tickets index), then the Assist handler answering
classify / similar / recommend from what Cluster published.

This module deploys template.yaml on its own moto server so its tickets, aggregates and issues
never mix with the session's shared deployment (other modules count the same sample's tickets).
"""

from __future__ import annotations

import importlib.util
import io
import json
import re
import os
import uuid
from pathlib import Path
from types import ModuleType
from urllib.parse import quote_plus

import boto3
import numpy as np
import pytest

from localcloud.cloud import free_port, start_emulator
from localcloud.deployer import Deployer
from tests.conftest import SAMPLE, FakeLambdaContext

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events" / "assist"


@pytest.fixture(scope="module")
def stack(endpoint):
    """A moto server and deployment of our own; clients point at it for this module only."""
    from supportlens.adapters import aws

    port = free_port()
    server = start_emulator(port)
    url = f"http://127.0.0.1:{port}"
    saved = dict(os.environ)
    os.environ["AWS_ENDPOINT_URL"] = url
    aws.client.cache_clear()
    deployment = Deployer(url).deploy(ROOT / "template.yaml", {"Stage": "test"})  # moto state is per process: names of its own
    deployment.endpoint = url
    yield deployment
    for key in set(os.environ) - set(saved):
        os.environ.pop(key, None)
    os.environ.update(saved)
    aws.client.cache_clear()
    server.stop()


@pytest.fixture(scope="module")
def handler(stack):
    loaded: dict[str, ModuleType] = {}

    def load(logical_id: str) -> ModuleType:
        if logical_id not in loaded:
            fn = stack.function(logical_id)
            os.environ.update(fn.environment)
            spec = importlib.util.spec_from_file_location(f"assist_test_{logical_id}", fn.code_dir / "app.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            loaded[logical_id] = module
        return loaded[logical_id]

    return load


def sqs(body: str) -> dict:
    return {"messageId": str(uuid.uuid4()), "receiptHandle": "rh", "body": body, "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"}


@pytest.fixture(scope="module")
def clustered(stack, handler):
    """Sample -> Ingest -> Enrich (every message) -> Cluster; returns the Cluster result."""
    ctx = FakeLambdaContext()
    s3 = boto3.client("s3", endpoint_url=stack.endpoint, region_name="us-east-1")
    queue = boto3.client("sqs", endpoint_url=stack.endpoint, region_name="us-east-1")
    bucket, url = stack.outputs["DataBucketName"], stack.outputs["TicketsQueueUrl"]
    key, body = "incoming/twcs/twcs_sample.csv", SAMPLE.read_bytes()
    etag = s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
    notification = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": bucket},
                    "object": {"key": quote_plus(key), "eTag": etag, "size": len(body)}}}]}
    assert handler("IngestFunction").handler({"Records": [sqs(json.dumps(notification))]}, ctx) == {"batchItemFailures": []}
    enrich = handler("EnrichFunction")
    while True:
        got = queue.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            break
        assert enrich.handler({"Records": [sqs(m["Body"]) for m in got]}, ctx) == {"batchItemFailures": []}
        for m in got:
            queue.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    result = handler("ClusterFunction").handler(json.loads((ROOT / "events" / "cluster" / "schedule.json").read_text()), ctx)
    assert result["status"] == "clustered", result
    result["items"] = issues_of(stack, result["version"])  # as this run wrote them (a re-run rewrites them)
    return result


def issues_of(stack, version: str) -> list[dict]:
    from supportlens.adapters import dynamo

    return [i for i in dynamo.scan_all(stack.outputs["IssuesTableName"]) if i["model_version"] == version]


def test_cluster_writes_complete_issue_items_and_publishes_both_models(stack, clustered):
    from supportlens.adapters import dynamo

    assert clustered["tickets"] == 1068  # the sample's customer tweets; company replies are not issues
    issues = clustered["items"]
    # Root-cause issues plus the named buckets (gratitude, chatter, non-English ...), every ticket in one of them.
    assert len(issues) == clustered["issues"] == clustered["root_causes"] + len(clustered["buckets"])
    # 1,068 tweets: the size floor is round(sqrt(clustered / 8)) = 10, less clusters moved to "mixed"
    assert 8 <= clustered["root_causes"] <= 60
    assert sum(int(i["size"]) for i in issues) == clustered["tickets"]
    kinds = {i["issue_id"]: i["kind"] for i in issues}
    assert {k for k in kinds.values()} == {"issue", "bucket"}
    assert {i["bucket"] for i in issues if i["kind"] == "bucket"} == set(clustered["buckets"])
    assert {"gratitude", "chatter"} <= set(clustered["buckets"]) and any(b.startswith("language:") for b in clustered["buckets"])
    real = [i for i in issues if i["kind"] == "issue"]
    assert sum(int(i["size"]) for i in real) == clustered["clustered"]
    assert max(int(i["size"]) for i in real) <= 0.15 * clustered["clustered"] + 1  # no catch-all issue
    assert 0 <= clustered["outlier_share"] < 0.5
    assert sum(int(i["outliers"]) for i in real) == round(clustered["outlier_share"] * clustered["clustered"])
    customer_ids = {t["ticket_id"] for t in dynamo.scan_all(stack.outputs["TicketsTableName"]) if t.get("role") == "customer"}
    for issue in issues:
        size = int(issue["size"])
        assert issue["label"] and issue["status"] == "active" and 0 <= int(issue["outliers"]) <= size
        if issue["kind"] == "bucket":  # buckets: a fixed id and name, never emerging
            assert issue["issue_id"].startswith("bucket-") and issue["bucket"] and not issue["emerging"]
            assert issue["top_phrases"] == [] and sum(int(v) for v in issue["daily_counts"].values()) == size
            continue
        assert issue["issue_id"].startswith("issue-") and issue["bucket"] is None
        assert 1 <= len(issue["label"].replace(",", " ").split()) <= 4  # a short phrase, not a word list
        assert 1 <= len(issue["top_phrases"]) <= 5 and all(isinstance(p, str) and p for p in issue["top_phrases"])
        assert issue["label"].split(", ")[0] == issue["top_phrases"][0]
        assert 1 <= len(issue["examples"]) <= 3 and {e["ticket_id"] for e in issue["examples"]} <= customer_ids
        assert sum(int(v) for v in issue["sentiment_mix"].values()) == size
        assert set(issue["sentiment_mix"]) <= {"negative", "neutral", "positive"}
        assert 0 <= float(issue["abuse_rate"]) <= 1
        assert issue["top_companies"] and int(issue["top_companies"][0]["count"]) <= size
        assert sum(int(v) for v in issue["daily_counts"].values()) == size
        assert all(len(day) == 10 and day[4] == "-" for day in issue["daily_counts"])  # ticket days (UTC)

    bucket = stack.outputs["DataBucketName"]
    s3 = boto3.client("s3", endpoint_url=stack.endpoint, region_name="us-east-1")
    pointer = json.loads(s3.get_object(Bucket=bucket, Key="models/similar/latest.json")["Body"].read())
    assert pointer["key"] == clustered["similar_index_key"] and pointer["version"] == clustered["version"]
    raw = s3.get_object(Bucket=bucket, Key=pointer["key"])["Body"].read()
    with np.load(io.BytesIO(raw), allow_pickle=False) as arrays:
        assert arrays["vectors"].dtype == np.float16 and len(arrays["vectors"]) == clustered["similar_tickets"]
    # Tickets with fewer than two real words (e.g. only "[PHONE]") are not worth showing an agent.
    assert 0.9 * clustered["tickets"] < clustered["similar_tickets"] <= clustered["tickets"]
    # Most customer tweets in the sample were answered; the index knows those answers.
    assert clustered["similar_with_reply"] > clustered["tickets"] // 2


def test_rerun_is_idempotent_and_keeps_issue_ids(stack, handler, clustered):
    again = handler("ClusterFunction").handler({"window_days": 30}, FakeLambdaContext())
    assert again["status"] == "clustered" and again["retired"] == 0
    first = {i["issue_id"]: i for i in clustered["items"]}
    second = {i["issue_id"]: i for i in issues_of(stack, again["version"])}
    assert set(second) == set(first)  # the same issues, under the same ids (their items were rewritten)
    for issue_id, item in second.items():
        for field in ("label", "size", "top_phrases", "sentiment_mix", "is_new", "emerging", "daily_counts"):
            assert item[field] == first[issue_id][field], (issue_id, field)


def test_assist_handler_classifies_finds_similar_and_recommends(stack, handler, clustered):
    from supportlens.adapters import dynamo

    assist = handler("AssistFunction").handler
    ctx = FakeLambdaContext()
    issue_ids = {i["issue_id"] for i in clustered["items"]}
    s3 = boto3.client("s3", endpoint_url=stack.endpoint, region_name="us-east-1")
    latest = json.loads(s3.get_object(Bucket=stack.outputs["DataBucketName"], Key="models/centroids/latest.json")["Body"].read())
    tweet = dynamo.get(stack.outputs["TicketsTableName"], {"ticket_id": "twcs:8"})  # "@sprintcare is the worst customer service"

    got = assist({"operation": "classify", "text": tweet["text"]}, ctx)
    assert got["model_version"] == latest["version"]  # the newest published model (a re-run may have replaced the first)
    assert got["result"]["issue_id"] in issue_ids and got["result"]["label"]
    assert 0 < got["result"]["confidence"] <= 1 and got["result"]["similarity"] > 0.3

    got = assist({"operation": "similar", "text": tweet["text"], "k": 5}, ctx)
    matches = got["result"]["matches"]
    assert len(matches) == 5 and matches[0]["ticket_id"] == "twcs:8" and matches[0]["similarity"] > 0.99
    assert matches[0]["issue_id"] == assist({"operation": "classify", "text": tweet["text"]}, ctx)["result"]["issue_id"]
    assert matches[0]["reply"]["ticket_id"] == "twcs:6"  # sprintcare's first reply in that thread
    assert "@115712" not in matches[0]["reply"]["text"] and "private message" in matches[0]["reply"]["text"]
    assert [m["similarity"] for m in matches] == sorted((m["similarity"] for m in matches), reverse=True)

    got = assist({"operation": "recommend", "text": "my internet has been down all day and nobody is helping me"}, ctx)
    rec = got["result"]
    assert rec["reply"] and len(rec["reply"].split()) >= 3 and "@" not in rec["reply"]
    assert rec["source_ticket_id"] in rec["supporting_ticket_ids"] and rec["reply_ticket_id"].startswith("twcs:")
    reply_item = dynamo.get(stack.outputs["TicketsTableName"], {"ticket_id": rec["reply_ticket_id"]})
    assert reply_item["role"] == "company" and reply_item["in_reply_to"] == rec["source_ticket_id"]
    assert rec["company"] == reply_item["company"] and rec["rewritten"] is False  # no Gemini configured

    # Safe to paste: the company's own replies first, no other brand, no person, no thread markers or initials.
    from supportlens.domain.assist import other_brands
    from supportlens.domain.clustering import brand_words

    for text, company in (("the app keeps crashing since the update", "AppleSupport"),
                          ("my bag was lost on my flight", "British_Airways"), ("my order never arrived", None)):
        rec = assist({"operation": "recommend", "text": text, **({"company": company} if company else {})}, ctx)["result"]
        if rec["reply"] is None:
            assert "nothing similar enough was resolved" in rec["reason"]
            continue
        others = brand_words(sorted({t["company"] for t in dynamo.scan_all(stack.outputs["TicketsTableName"]) if t.get("company")}))
        others -= brand_words([company]) if company else frozenset()
        words = set(re.findall(r"[a-z0-9]+", rec["reply"].lower()))
        assert not words & others, (text, rec["reply"])
        assert not re.search(r"\(\d/\d\)|\^[A-Z]{1,3}\b|\s-[A-Z]{1,3}$|https?:", rec["reply"])
        if company:
            assert rec["same_company"] is (rec["company"].lower() == company.lower())
    odd = assist({"operation": "classify", "text": "photosynthesis converts sunlight into chemical energy in chloroplasts"}, ctx)["result"]
    assert odd["confident"] is False and odd["issue_id"] is None and odd["label"] == "no confident match"
    assert odd["nearest"]["issue_id"] in issue_ids
    thanks = assist({"operation": "classify", "text": "thank you so much, you are awesome!"}, ctx)["result"]
    assert thanks["kind"] == "bucket" and thanks["issue_id"] == "bucket-gratitude"

    only = assist({"operation": "similar", "text": "my phone bill is wrong", "k": 3, "company": "sprintcare"}, ctx)
    assert {m["company"] for m in only["result"]["matches"]} == {"sprintcare"} and "company_note" not in only["result"]
    # A company the index has never seen (a typo) is said to be unknown, not answered with silence
    typo = assist({"operation": "similar", "text": "my phone bill is wrong", "k": 3, "company": "NoSuchCo"}, ctx)["result"]
    assert typo["matches"] == [] and "no ticket of 'NoSuchCo' is in the index" in typo["company_note"]
    typo = assist({"operation": "recommend", "text": "my order never arrived", "company": "NoSuchCo"}, ctx)["result"]
    assert "no ticket of 'NoSuchCo' is in the index" in (typo.get("company_note") or typo.get("reason") or "")
    # A misspelt name gets the closest ones; spaces, case and "@" do not matter; "(no company)" is what reports print
    typo = assist({"operation": "similar", "text": "my order never arrived", "k": 3, "company": "AmazonHlep"}, ctx)["result"]
    assert "did you mean AmazonHelp" in typo["company_note"]
    spaced = assist({"operation": "similar", "text": "my order never arrived", "k": 3, "company": "amazon help"}, ctx)["result"]
    assert {m["company"] for m in spaced["matches"]} == {"AmazonHelp"} and "company_note" not in spaced
    nobody = assist({"operation": "similar", "text": "my order never arrived", "k": 3, "company": "(no company)"}, ctx)["result"]
    assert nobody["matches"] and {m["company"] for m in nobody["matches"]} == {"unknown"}

    bad = assist({"operation": "similar", "text": "", "k": 5}, ctx)
    assert bad["error"] == {"code": "empty_text", "message": "the text is empty: send the customer's message to compare"}
    bad = assist({"operation": "similar", "text": "my bill", "k": 500}, ctx)
    assert bad["error"]["code"] == "bad_request" and bad["error"]["message"].startswith("k: ")


def test_sample_events_run_through_the_assist_handler(handler, clustered):
    assist = handler("AssistFunction").handler
    for path in sorted(EVENTS.glob("*.json")):
        event = json.loads(path.read_text())
        response = assist(event, FakeLambdaContext())
        if "requestContext" in event:
            assert response["statusCode"] == 200, path.name
            response = json.loads(response["body"])
        assert "error" not in response and response["operation"] in {"classify", "similar", "recommend"}, path.name
