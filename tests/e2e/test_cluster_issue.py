"""Issues on the local cloud: upload the sample, fire the Cluster schedule, read the Issues
items, ask the CLI's classify / similar / recommend, then check that a ticket event enriched
afterwards carries its issue id (Enrich picks up the published centroids model)."""

from __future__ import annotations

import csv
import json
import re
import time

import pytest

from tests.conftest import SAMPLE, url_post

pytestmark = pytest.mark.e2e


def signed_names() -> frozenset[str]:
    from supportlens.domain.assist import signature_names

    with SAMPLE.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return signature_names([r["text"] for r in rows if r["inbound"] == "False"], [r["text"] for r in rows if r["inbound"] == "True"])


def scan(cloud, table: str) -> list[dict]:
    from supportlens.adapters.dynamo import deserialize

    pages = cloud.client("dynamodb").get_paginator("scan").paginate(TableName=cloud.outputs[table])
    return [deserialize(item) for page in pages for item in page["Items"]]


@pytest.fixture(scope="module")
def clustered(cloud):
    rows = [json.loads(line) for line in cloud.cli("upload", str(SAMPLE), "--wait", "--json", "--timeout", "1200", timeout=1300).stdout.splitlines()]
    assert rows[0]["status"] == "complete"
    tick = json.loads(cloud.cli("local", "tick", "--function", "Cluster", "--json").stdout.splitlines()[0])
    assert tick["ok"], tick
    result = tick["result"]
    assert result["status"] == "clustered", result
    result["finished_at"] = time.monotonic()
    return result


def test_cluster_schedule_writes_issues(cloud, clustered):
    issues = [i for i in scan(cloud, "IssuesTableName") if i["model_version"] == clustered["version"]]
    # Root causes plus named buckets (gratitude, chatter, per language ...): every customer tweet in one item.
    assert len(issues) == clustered["issues"] == clustered["root_causes"] + len(clustered["buckets"])
    # 1,068 tweets: the size floor is round(sqrt(clustered / 8)) = 10, less clusters moved to "mixed"
    assert 8 <= clustered["root_causes"] <= 60
    assert sum(int(i["size"]) for i in issues) == clustered["tickets"] == 1068
    real = [i for i in issues if i["kind"] == "issue"]
    assert len(real) == clustered["root_causes"] and max(int(i["size"]) for i in real) <= 0.15 * clustered["clustered"] + 1
    # The sample's ChipotleTweets replies are signed "-Becky" and customers answer "Becky is very nice": a person, no issue's name
    signed = signed_names()
    assert "becky" in signed
    assert not [i["label"] for i in real if signed & set(re.findall(r"[a-z]+", " ".join([i["label"], *i["top_phrases"]])))]
    for issue in issues:
        assert issue["label"] and issue["examples"] and issue["top_companies"]
        assert bool(issue["top_phrases"]) is (issue["kind"] == "issue")
        assert sum(int(v) for v in issue["daily_counts"].values()) == int(issue["size"])
        assert sum(int(v) for v in issue["sentiment_mix"].values()) == int(issue["size"])
    assert clustered["similar_with_reply"] > 0 and 0.9 * clustered["tickets"] < clustered["similar_tickets"] <= clustered["tickets"]


def test_cli_assist_commands_against_the_local_cloud(cloud, clustered):
    issue_ids = {i["issue_id"] for i in scan(cloud, "IssuesTableName") if i["model_version"] == clustered["version"]}
    text = "my internet keeps dropping and support never answers"
    got = json.loads(cloud.cli("classify", text, "--json").stdout)
    assert (got["result"]["issue_id"] or got["result"]["nearest"]["issue_id"]) in issue_ids
    assert got["model_version"] == clustered["version"] and 0 <= got["result"]["confidence"] <= 1
    got = json.loads(cloud.cli("similar", text, "-k", "3", "--json").stdout)
    assert len(got["result"]["matches"]) == 3 and all(m["ticket_id"].startswith("twcs:") for m in got["result"]["matches"])
    got = json.loads(cloud.cli("recommend", text, "--json").stdout)
    assert got["result"]["reply"] and got["result"]["reply_ticket_id"].startswith("twcs:")
    human = cloud.cli("recommend", text).stdout
    assert got["result"]["reply"] in human and "from " in human


def test_assist_function_url_serves_signed_requests(cloud, clustered):
    """The template's AssistFunction URL (AuthType AWS_IAM), served by the local cloud."""
    url = cloud.outputs["AssistFunctionUrl"]
    assert cloud.status()["function_urls"]["AssistFunction"] == {"url": url, "auth_type": "AWS_IAM"}

    def post(body: bytes, sign: bool) -> tuple[int, dict]:
        status, data = url_post(url, body, secret="testing" if sign else None)
        return status, json.loads(data)

    issue_ids = {i["issue_id"] for i in scan(cloud, "IssuesTableName") if i["model_version"] == clustered["version"]}
    status, got = post(json.dumps({"operation": "classify", "text": "my internet keeps dropping"}).encode(), sign=True)
    assert status == 200 and got["model_version"] == clustered["version"]
    assert (got["result"]["issue_id"] or got["result"]["nearest"]["issue_id"]) in issue_ids
    assert post(b"not json", sign=True) == (400, {"error": {"code": "bad_request", "message": "the body must be a JSON object"}})
    assert post(json.dumps({"operation": "classify", "text": "x"}).encode(), sign=False) == (403, {"Message": "Forbidden"})


def test_ticket_enriched_after_clustering_carries_its_issue(cloud, clustered):
    # Enrich looks for a first model every 15 s (MODEL_MISSING_REFRESH_S): let that pass.
    time.sleep(max(0.0, 16 - (time.monotonic() - clustered["finished_at"])))
    ticket_id = f"e2e-after-cluster-{int(time.time())}"
    event = {"schema": "supportlens.ticket/v1", "ticket": {
        "ticket_id": ticket_id, "source": "crm", "channel": "email", "company": "sprintcare",
        "created_at": "2017-11-01T10:00:00Z", "text": "Your customer service is the worst, nobody answers my messages"}}
    cloud.client("sqs").send_message(QueueUrl=cloud.outputs["TicketsQueueUrl"], MessageBody=json.dumps(event))
    ddb = cloud.client("dynamodb")

    def stored():
        item = ddb.get_item(TableName=cloud.outputs["TicketsTableName"], Key={"ticket_id": {"S": ticket_id}}).get("Item")
        return item if item and "issue_id" in item else None

    item = cloud.wait_until(stored, 90, "the new ticket with an issue id")
    issue_ids = {i["issue_id"] for i in scan(cloud, "IssuesTableName") if i["model_version"] == clustered["version"]}
    assert item["issue_id"]["S"] in issue_ids
    assert item["issue_model"]["S"] == clustered["version"] and float(item["issue_confidence"]["N"]) > 0
