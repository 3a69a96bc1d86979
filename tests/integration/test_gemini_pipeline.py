"""EMBEDDING_PROVIDER=gemini end to end through the real Enrich and Cluster handlers on moto.

The API key is an SSM SecureString read by the adapter; the Gemini API is a fake behind
httpx.MockTransport (google-genai's own request code runs, nothing leaves the machine).
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import numpy as np
import pytest

from tests.integration.test_pipeline_handlers import sqs_record
from tests.unit.test_gemini_embedding import KEY, FakeGemini

PARAMETER = "/supportlens/test/gemini-api-key"
POINTER = "models/centroids/latest.json"
TOPICS = {
    "refund": "I returned the {} two weeks ago and my refund still has not arrived",
    "wifi": "the {} keeps dropping the wifi connection every evening",
    "login": "I cannot log in to the {} app, the password reset link never comes",
}
ITEMS = ["blender", "router", "phone", "kettle", "laptop", "tablet", "camera", "printer", "speaker", "monitor",
         "watch", "console", "headset", "charger", "toaster", "heater"]


def load_handler(name: str, path):
    spec = importlib.util.spec_from_file_location(f"gemini_{name}_{uuid.uuid4().hex[:6]}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def event(ticket_id: str, text: str, created: datetime) -> str:
    return json.dumps({"schema": "supportlens.ticket/v1", "ticket": {
        "ticket_id": ticket_id, "source": "crm", "channel": "email", "author_id": f"cust-{ticket_id}",
        "company": "acme", "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"), "text": text}})


@pytest.fixture
def gemini_env(aws, deployment, monkeypatch):
    from supportlens.adapters import gemini

    bucket = deployment.outputs["DataBucketName"]
    s3 = aws("s3")
    try:
        saved_pointer = s3.get_object(Bucket=bucket, Key=POINTER)["Body"].read()
    except s3.exceptions.NoSuchKey:
        saved_pointer = None
    before = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="features/").get("Contents", [])}
    aws("ssm").put_parameter(Name=PARAMETER, Type="SecureString", Value=KEY, Overwrite=True)
    fake = FakeGemini()
    monkeypatch.setattr(gemini, "HTTP_CLIENT_FACTORY", lambda: httpx.Client(transport=httpx.MockTransport(fake)))
    monkeypatch.setattr(gemini, "_EMBEDDERS", {})
    gemini._secure_string.cache_clear()
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    yield fake
    # Leave the shared deployment as other tests expect it: their model pointer, no Gemini shards.
    after = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="features/").get("Contents", [])}
    for key in after - before:
        s3.delete_object(Bucket=bucket, Key=key)
    if saved_pointer is None:
        s3.delete_object(Bucket=bucket, Key=POINTER)
    else:
        s3.put_object(Bucket=bucket, Key=POINTER, Body=saved_pointer)
    gemini._secure_string.cache_clear()


def test_gemini_provider_through_enrich_and_cluster_handlers(aws, deployment, gemini_env, lambda_context, monkeypatch):
    from supportlens.adapters import dynamo

    fake = gemini_env
    for logical_id in ("EnrichFunction", "ClusterFunction"):
        for name, value in deployment.function(logical_id).environment.items():
            monkeypatch.setenv(name, value)
    assert deployment.function("EnrichFunction").environment["EMBEDDING_PROVIDER"] == "local"  # template default
    monkeypatch.setenv("EMBEDDING_PROVIDER", "gemini")
    monkeypatch.setenv("GEMINI_API_KEY_PARAMETER", PARAMETER)
    enrich = load_handler("enrich", deployment.function("EnrichFunction").code_dir / "app.py")
    cluster = load_handler("cluster", deployment.function("ClusterFunction").code_dir / "app.py")
    assert enrich.SETTINGS.embedding_provider == "gemini" and enrich.SETTINGS.gemini_api_key is None

    now = datetime.now(timezone.utc) - timedelta(hours=1)
    run = uuid.uuid4().hex[:8]
    bodies = [event(f"gem-{run}-{topic}-{i}", template.format(item), now)
              for topic, template in TOPICS.items() for i, item in enumerate(ITEMS)]
    for start in range(0, len(bodies), 10):
        response = enrich.handler({"Records": [sqs_record(b) for b in bodies[start:start + 10]]}, lambda_context)
        assert response == {"batchItemFailures": []}
    # A ticket event is one message and Enrich embeds per message: one request per event here
    # (file chunks carry up to 100+ tickets per message and use full requests).
    assert len(fake.calls) == len(bodies) and all(len(b["requests"]) == 1 for b in fake.bodies)
    assert all(c.headers["x-goog-api-key"] == KEY for c in fake.calls)  # the key came from SSM

    table = deployment.outputs["TicketsTableName"]
    stored = dynamo.get(table, {"ticket_id": f"gem-{run}-refund-0"})
    assert stored["embedding_id"] == "gemini-embedding-001@256"

    result = cluster.handler({"window_days": 2}, lambda_context)
    assert result["status"] == "clustered" and result["embedding_id"] == "gemini-embedding-001@256"
    assert result["tickets"] == len(bodies)  # only the Gemini shards: local shards of other tests are another space
    assert len(fake.calls) == len(bodies)  # clustering embeds nothing
    bucket = deployment.outputs["DataBucketName"]
    model_bytes = aws("s3").get_object(Bucket=bucket, Key=result["model_key"])["Body"].read()
    with np.load(io.BytesIO(model_bytes), allow_pickle=False) as arrays:
        assert str(arrays["embedding_id"]) == "gemini-embedding-001@256"
        assert arrays["centroids"].shape[1] == 256

    # The next ticket with a known text is assigned an issue from the Gemini model, from the cache.
    enrich.MODELS.invalidate()
    late = event(f"gem-{run}-late", TOPICS["wifi"].format("router"), now)
    assert enrich.handler({"Records": [sqs_record(late)]}, lambda_context) == {"batchItemFailures": []}
    assert len(fake.calls) == len(bodies)  # a cached text: no request
    item = dynamo.get(table, {"ticket_id": f"gem-{run}-late"})
    assert item["issue_model"] == result["version"] and item["issue_id"].startswith("issue-")
    twin = dynamo.get(table, {"ticket_id": f"gem-{run}-wifi-1"})
    assert twin["clean_text"] == item["clean_text"]
