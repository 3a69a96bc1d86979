"""Gemini embeddings through google-genai, with a fake transport at the HTTP layer.

The real google-genai request/response code (request building, batchEmbedContents, the
SDK's own HttpRetryOptions/tenacity retries, error mapping) runs against an
``httpx.MockTransport``; nothing touches the network.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from datetime import datetime, timezone

import httpx
import numpy as np
import pytest

from supportlens.adapters import gemini
from supportlens.adapters.gemini import GeminiConfigError, GeminiEmbedder, GeminiEmbeddingError, RateLimiter
from supportlens.domain import scoring
from supportlens.domain.embedding import (
    LEGACY_EMBEDDING_ID, EmbeddingConfig, LocalEmbedder, gemini_embedding_id, select_embedder,
)
from supportlens.domain.enrichment import enrich
from supportlens.domain.issues_model import CentroidsModel
from supportlens.domain.tickets import Ticket
from supportlens.settings import Settings

KEY = "AIza-test-key-never-logged"
NOW = datetime(2024, 6, 3, 12, tzinfo=timezone.utc)


def raw_vector(text: str, dims: int) -> np.ndarray:
    """What the fake server returns for a text: deterministic, NOT unit length (like reduced dims)."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).normal(0, 3.0, dims).astype(np.float32)


class FakeGemini:
    """A Gemini API stand-in behind httpx.MockTransport: records requests, scripts failures."""

    def __init__(self, failures: list[int] | None = None, drop_one: bool = False) -> None:
        self.failures = list(failures or [])  # HTTP status per call before answering normally
        self.calls: list[httpx.Request] = []
        self.bodies: list[dict] = []
        self.drop_one = drop_one

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        body = json.loads(request.content)
        self.bodies.append(body)
        if self.failures:
            code = self.failures.pop(0)
            status = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 400: "INVALID_ARGUMENT"}.get(code, "UNAVAILABLE")
            return httpx.Response(code, json={"error": {"code": code, "message": "scripted failure", "status": status}})
        requests = body["requests"]
        if self.drop_one:
            requests = requests[:-1]
        return httpx.Response(200, json={"embeddings": [
            {"values": raw_vector(r["content"]["parts"][0]["text"], r.get("outputDimensionality", 3072)).tolist()}
            for r in requests]})

    def texts(self, call: int) -> list[str]:
        return [r["content"]["parts"][0]["text"] for r in self.bodies[call]["requests"]]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def make(fake: FakeGemini, clock: FakeClock | None = None, attempts: int = 4, **config) -> GeminiEmbedder:
    clock = clock or FakeClock()
    return GeminiEmbedder(
        KEY, EmbeddingConfig(provider="gemini", **config), retry_attempts=attempts,
        retry_initial_delay_s=0.001, retry_max_delay_s=0.005,
        http_client=httpx.Client(transport=httpx.MockTransport(fake)), clock=clock, sleep=clock.sleep,
    )


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def test_250_texts_are_sent_in_3_requests_of_at_most_100_in_order():
    fake = FakeGemini()
    embedder = make(fake)
    texts = [f"ticket number {i} about my parcel" for i in range(250)]
    vectors = embedder(texts)
    assert vectors.shape == (250, 256) and vectors.dtype == np.float32
    assert [len(b["requests"]) for b in fake.bodies] == [100, 100, 50]
    assert fake.texts(0) + fake.texts(1) + fake.texts(2) == texts
    request = fake.calls[0]
    assert request.url.path.endswith("/models/gemini-embedding-001:batchEmbedContents")
    assert request.headers["x-goog-api-key"] == KEY
    first = fake.bodies[0]["requests"][0]
    assert first["taskType"] == "CLUSTERING" and first["outputDimensionality"] == 256
    assert first["model"] == "models/gemini-embedding-001"
    for i in (0, 99, 100, 249):  # each row is its own text's vector
        np.testing.assert_allclose(vectors[i], unit(raw_vector(texts[i], 256)), rtol=1e-5, atol=1e-6)
    assert embedder.stats["requests"] == 3 and embedder.stats["texts_sent"] == 250


def test_reduced_dimensions_are_renormalised_to_unit_length():
    fake = FakeGemini()
    vectors = make(fake, gemini_dimensions=128, gemini_task_type="SEMANTIC_SIMILARITY")(["refund please", "wifi is down"])
    assert fake.bodies[0]["requests"][0]["outputDimensionality"] == 128
    assert fake.bodies[0]["requests"][0]["taskType"] == "SEMANTIC_SIMILARITY"
    assert np.linalg.norm(raw_vector("refund please", 128)) > 5  # the server's vectors are not unit length
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(vectors[0], unit(raw_vector("refund please", 128)), rtol=1e-5, atol=1e-6)


def test_cache_hit_makes_no_request_and_duplicates_are_sent_once():
    fake = FakeGemini()
    embedder = make(fake)
    first = embedder(["my order is late", "app crashes", "my order is late"])
    assert len(fake.calls) == 1 and fake.texts(0) == ["my order is late", "app crashes"]
    again = embedder(["app crashes", "my order is late"])
    assert len(fake.calls) == 1  # all cached: no request at all
    np.testing.assert_array_equal(again[0], first[1])
    np.testing.assert_array_equal(again[1], first[0])
    embedder(["app crashes", "a new complaint"])
    assert len(fake.calls) == 2 and fake.texts(1) == ["a new complaint"]


def test_cache_is_a_bounded_lru_keyed_by_model_dims_task_and_text():
    fake = FakeGemini()
    embedder = make(fake, gemini_cache_size=2)
    embedder(["a1"]), embedder(["b2"]), embedder(["a1"]), embedder(["c3"])  # c3 evicts b2 (least recent)
    assert len(embedder.cache) == 2 and len(fake.calls) == 3
    embedder(["a1"])
    assert len(fake.calls) == 3
    embedder(["b2"])
    assert len(fake.calls) == 4
    other = make(FakeGemini(), gemini_dimensions=64)
    assert other._key("a1") != embedder._key("a1")  # another width is another cache entry


def test_429_then_success_is_retried_by_the_sdk():
    fake = FakeGemini(failures=[429])
    embedder = make(fake)
    vectors = embedder(["where is my refund"])
    assert len(fake.calls) == 2  # the same request, sent again
    assert fake.bodies[0] == fake.bodies[1]
    np.testing.assert_allclose(vectors[0], unit(raw_vector("where is my refund", 256)), rtol=1e-5, atol=1e-6)
    assert embedder.stats["requests"] == 1


def test_persistent_500_raises_a_clear_error_after_bounded_retries(caplog):
    fake = FakeGemini(failures=[500] * 10)
    embedder = make(fake, attempts=3)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(GeminiEmbeddingError, match=r"HTTP 500 INTERNAL after 3 attempts") as info:
        embedder(["customer secret text 0xC0FFEE"])
    assert len(fake.calls) == 3  # bounded: exactly `attempts` requests
    message = str(info.value)
    assert "0xC0FFEE" not in message and KEY not in message
    assert "0xC0FFEE" not in caplog.text and KEY not in caplog.text  # neither texts nor the key are logged
    assert len(embedder.cache) == 0


def test_client_errors_are_not_retried():
    fake = FakeGemini(failures=[400])
    with pytest.raises(GeminiEmbeddingError, match=r"HTTP 400 INVALID_ARGUMENT \(not retryable\)"):
        make(fake)(["hello"])
    assert len(fake.calls) == 1


def test_a_short_answer_is_an_error_not_a_misaligned_result():
    with pytest.raises(GeminiEmbeddingError, match="returned 1 embeddings for 2 texts"):
        make(FakeGemini(drop_one=True))(["one", "two"])


def test_empty_texts_get_zero_vectors_without_a_call():
    fake = FakeGemini()
    embedder = make(fake)
    assert not embedder(["", "   ", "\n"]).any()
    assert fake.calls == []
    vectors = embedder(["", "parcel missing", " "])
    assert len(fake.calls) == 1 and fake.texts(0) == ["parcel missing"]
    assert not vectors[0].any() and not vectors[2].any()
    assert np.linalg.norm(vectors[1]) == pytest.approx(1.0, rel=1e-5)
    assert embedder([]).shape == (0, 256)


def test_rate_limiter_spaces_requests_per_minute():
    fake, clock = FakeGemini(), FakeClock()
    embedder = make(fake, clock, gemini_requests_per_minute=2, gemini_batch_size=1)
    embedder(["a", "b", "c", "d", "e"])
    assert len(fake.calls) == 5
    assert clock.slept == [60.0, 60.0]  # requests 3 and 5 waited for a free slot in the 60 s window
    assert embedder.limiter.waited_s == 120.0
    limiter = RateLimiter(3, clock=FakeClock(), sleep=lambda s: pytest.fail("must not wait"))
    for _ in range(3):
        limiter.acquire()


def test_embedding_ids_and_config_validation():
    assert gemini_embedding_id("gemini-embedding-001", 256) == "gemini-embedding-001@256"
    assert gemini_embedding_id("models/gemini-embedding-001", 768, "SEMANTIC_SIMILARITY") == "gemini-embedding-001@768/semantic_similarity"
    assert make(FakeGemini()).embedding_id == "gemini-embedding-001@256"
    assert "AIza" not in repr(make(FakeGemini()))
    with pytest.raises(ValueError):
        EmbeddingConfig(provider="gemini", gemini_batch_size=101)
    with pytest.raises(ValueError):
        EmbeddingConfig(provider="openai")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        EmbeddingConfig(gemini_task_type="NOT_A_TASK")


def test_selection_local_is_scoring_embed_and_gemini_needs_a_key(monkeypatch):
    local = select_embedder(Settings.from_env({}).embedding())
    assert isinstance(local, LocalEmbedder) and local.embedding_id == scoring.EMBEDDING_ID
    texts = ["my parcel never arrived", ""]
    np.testing.assert_array_equal(local(texts), scoring.embed(texts))
    monkeypatch.setattr(gemini, "_EMBEDDERS", {})
    assert gemini.embedder_for(Settings()) .embedding_id == scoring.EMBEDDING_ID
    with pytest.raises(GeminiConfigError, match="GEMINI_API_KEY"):
        gemini.embedder_for(Settings.from_env({"EMBEDDING_PROVIDER": "gemini"}))
    settings = Settings.from_env({"EMBEDDING_PROVIDER": "gemini", "GEMINI_API_KEY": KEY, "GEMINI_MODEL": "gemini-embedding-001"})
    assert KEY not in repr(settings) and KEY not in settings.model_dump_json()
    fake = FakeGemini()
    monkeypatch.setattr(gemini, "HTTP_CLIENT_FACTORY", lambda: httpx.Client(transport=httpx.MockTransport(fake)))
    embedder = gemini.embedder_for(settings)
    assert isinstance(embedder, GeminiEmbedder) and gemini.embedder_for(settings) is embedder  # one per process
    embedder(["hello"])
    assert fake.calls[0].headers["x-goog-api-key"] == KEY


def ticket(i: int, text: str) -> Ticket:
    return Ticket(ticket_id=f"t:{i}", source="ticket", channel="email", author_id=f"a{i}", company="acme",
                  created_at=NOW, text=text)


def test_enrich_uses_the_selected_embedder_and_only_a_matching_model_assigns():
    from supportlens.logic.enrich import usable_model

    fake = FakeGemini()
    embedder = make(fake)
    texts = ["my parcel never arrived", "refund still not received", "my parcel never arrived"]
    batch = enrich([ticket(i, t) for i, t in enumerate(texts)], now=NOW, embed=embedder)
    assert len(fake.calls) == 1 and len(fake.texts(0)) == 2  # the masked clean texts, each once
    np.testing.assert_array_equal(batch.vectors[0], batch.vectors[2])
    np.testing.assert_allclose(np.linalg.norm(batch.vectors, axis=1), 1.0, rtol=1e-5)
    assert batch.vectors.shape == (3, 256)

    model = CentroidsModel("m-gem", ["parcel", "refund"], ["Parcel", "Refund"], batch.vectors[:2], embedding_id=embedder.embedding_id)
    local_model = CentroidsModel("m-old", ["x", "y"], ["X", "Y"], scoring.embed(texts[:2]))  # from before ids: local
    assert local_model.embedding_id == LEGACY_EMBEDDING_ID
    assert usable_model(local_model, embedder.embedding_id) is None
    assert usable_model(model, embedder.embedding_id) is model
    assigned = enrich([ticket(i, t) for i, t in enumerate(texts)], model=usable_model(model, embedder.embedding_id), now=NOW, embed=embedder)
    assert [i["issue_id"] for i in assigned.items] == ["parcel", "refund", "parcel"]
    assert len(fake.calls) == 1  # everything came from the cache


def test_centroids_model_keeps_its_embedding_id_and_old_files_read_as_local():
    model = CentroidsModel("v2", ["a"], ["A"], np.eye(1, 256, dtype=np.float32), embedding_id="gemini-embedding-001@256")
    back = CentroidsModel.from_bytes(model.to_bytes())
    assert back.embedding_id == "gemini-embedding-001@256" and back.matches("gemini-embedding-001@256")
    buf = io.BytesIO()  # a model file written before embedding ids existed
    np.savez_compressed(buf, version=np.array("v1"), issue_ids=np.array(["a"]), labels=np.array(["A"]),
                        centroids=np.eye(1, 256, dtype=np.float32))
    old = CentroidsModel.from_bytes(buf.getvalue())
    assert old.embedding_id == LEGACY_EMBEDDING_ID and not old.matches("gemini-embedding-001@256")


def test_feature_shards_record_the_embedder_and_clustering_reads_only_its_own(monkeypatch):
    from supportlens.logic import cluster, enrich as enrich_logic

    store: dict[str, bytes] = {}
    monkeypatch.setattr(enrich_logic.s3, "put", lambda bucket, key, body, *a, **k: store.__setitem__(key, body))
    monkeypatch.setattr(cluster.s3, "list_keys", lambda bucket, prefix: sorted(k for k in store if k.startswith(prefix)))
    monkeypatch.setattr(cluster.s3, "get_bytes", lambda bucket, key: store[key])

    def write(chunk: str, texts: list[str], embed, embedding_id: str | None) -> None:
        batch = enrich([ticket(hash((chunk, i)) % 10**6, t) for i, t in enumerate(texts)], now=NOW, embed=embed)
        for item in batch.items:
            if embedding_id:
                item["embedding_id"] = embedding_id
        enrich_logic._write_features("bucket", chunk, batch)

    gem = make(FakeGemini())
    wide = make(FakeGemini(), gemini_dimensions=768)
    write("old", ["legacy shard one", "legacy shard two"], None, None)  # no embedding_ids: a shard from before
    write("gem", ["gemini shard one", "gemini shard two", "gemini shard three"], gem, gem.embedding_id)
    write("wide", ["wide shard one"], wide, wide.embedding_id)  # another width must not break concatenation
    gem_shard = next(v for k, v in store.items() if k.endswith(".npz") and b"embedding_ids" in v)
    with np.load(io.BytesIO(gem_shard), allow_pickle=False) as shard:
        assert "embedding_ids" in shard.files

    now = datetime.now(timezone.utc)
    corpus = cluster.load_corpus("bucket", 30, now, gem.embedding_id)
    assert sorted(corpus.texts) == ["gemini shard one", "gemini shard three", "gemini shard two"]
    assert corpus.vectors.shape == (3, 256)
    legacy = cluster.load_corpus("bucket", 30, now, LEGACY_EMBEDDING_ID)  # shards from before embedding ids
    assert sorted(legacy.texts) == ["legacy shard one", "legacy shard two"]
    # The default is the current local embedder, whose vectors must never mix with the old hashed ones.
    assert cluster.load_corpus("bucket", 30, now) is None
    assert cluster.load_corpus("bucket", 30, now, wide.embedding_id).vectors.shape == (1, 768)


def test_template_grants_the_key_parameter_and_the_sdk_layer_only_when_configured():
    from pathlib import Path

    from localcloud.template import Resolver, load_template, parameter_values, translate

    path = Path(__file__).resolve().parents[2] / "template.yaml"
    pseudo = {"AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}
    cfn, _ = translate(path, pseudo)
    role = cfn["Resources"]["EnrichFunctionRole"]["Properties"]
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    layers = cfn["Resources"]["EnrichFunction"]["Properties"]["Layers"]
    for function in ("EnrichFunction", "ClusterFunction"):
        env = cfn["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert {"EMBEDDING_PROVIDER", "GEMINI_MODEL", "GEMINI_API_KEY_PARAMETER"} <= set(env)
    genai_layer = next(k for k in cfn["Resources"] if k.startswith("GenaiDepsLayer"))  # SAM adds a hash suffix
    pins = (path.parent / "layers" / "genai-deps" / "requirements.txt").read_text().split()
    lock = (path.parent / "requirements.lock").read_text().split()
    assert "google-genai==3.4.0" in pins and all(p in lock for p in pins if "==" in p)  # exact, consistent pins

    def resolved(overrides: dict[str, str]) -> tuple[list[dict], list, bool]:
        resolver = Resolver(cfn, {**parameter_values(load_template(path), overrides), **pseudo}, pseudo)
        resolver.refs[genai_layer] = "genai-layer-arn"
        conditional = resolver.resolve([s for s in statements if "Fn::If" in s])
        deps = resolver.resolve([layer for layer in layers if "Fn::If" in layer])
        deployed = resolver.conditions[cfn["Resources"][genai_layer]["Condition"]]  # the SDK layer itself
        return conditional, deps, deployed

    assert resolved({}) == ([], [], False)  # default: local embeddings, no SSM access, no SDK layer
    resolver_free = [s for s in statements if "Fn::If" not in s]
    assert not any("ssm:" in json.dumps(s) for s in resolver_free)
    grants, deps, deployed = resolved({"EmbeddingProvider": "gemini", "GeminiApiKeyParameter": "/supportlens/gemini-api-key"})
    assert grants == [{"Effect": "Allow", "Action": ["ssm:GetParameter"],
                       "Resource": "arn:aws:ssm:eu-west-1:123456789012:parameter/supportlens/gemini-api-key"}]
    assert deps == ["genai-layer-arn"] and deployed
