"""Intent model files, the user-model pointer rules and training-file names (pure, S3 faked)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pytest

from supportlens.domain.intent_model import IntentModel
from supportlens.domain.models import ModelError
from supportlens.logic import train as train_logic
from supportlens.logic import user_models


def toy_intent_model(version: str = "v1") -> IntentModel:
    coef = np.array([[4.0, 0.0], [0.0, 4.0], [-2.0, -2.0]])
    return IntentModel(version, ["refund", "delivery", "other"], coef, np.zeros(3), "support-static-v1")


def test_intent_model_round_trip_predicts_the_same(tmp_path):
    model = toy_intent_model()
    model.save(tmp_path)
    loaded = IntentModel.load(tmp_path)
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    labels, confidence = loaded.predict(vectors)
    assert labels == ["refund", "delivery", "other"] and loaded.embedding_id == "support-static-v1"
    assert np.allclose(confidence, model.predict(vectors)[1], atol=1e-5) and (confidence > 0.5).all()
    assert loaded.predict(np.zeros((0, 2)))[0] == []


def test_intent_model_refuses_pickles_and_wrong_shapes(tmp_path):
    toy_intent_model().save(tmp_path)
    np.savez(tmp_path / "intent.npz", classes=np.array([{"a": 1}], dtype=object), coef=np.zeros((1, 2)), intercept=np.zeros(1))
    with pytest.raises(ModelError):
        IntentModel.load(tmp_path)  # object arrays need pickle: refused
    with pytest.raises(ModelError):
        IntentModel("v", ["a", "b"], np.zeros((3, 2)), np.zeros(3), "e")
    with pytest.raises(ModelError):
        toy_intent_model().proba(np.zeros((1, 5)))


class FakeS3:
    def __init__(self, objects: dict[str, bytes]):
        self.objects = objects
        self.gets: list[str] = []

    def get_bytes(self, bucket: str, key: str) -> bytes:
        self.gets.append(key)
        if key not in self.objects:
            raise RuntimeError("An error occurred (NoSuchKey) when calling the GetObject operation")
        return self.objects[key]

    def get_bytes_if_exists(self, bucket: str, key: str) -> bytes | None:
        return self.get_bytes(bucket, key) if key in self.objects else None

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        return [k for k in self.objects if k.startswith(prefix)]


def published_intent(tmp_path, version: str, prefix: str | None = None, files: list[str] | None = None) -> dict[str, bytes]:
    model_dir = tmp_path / version
    toy_intent_model(version).save(model_dir)
    prefix = prefix if prefix is not None else f"models/intent/{version}/"
    objects = {f"models/intent/{version}/{p.name}": p.read_bytes() for p in model_dir.iterdir()}
    pointer = {"task": "intent", "version": version, "prefix": prefix, "files": files or sorted(p.name for p in model_dir.iterdir())}
    objects["models/intent/latest.json"] = json.dumps(pointer).encode()
    return objects


def test_new_pointer_version_is_loaded_once_then_cached(tmp_path, monkeypatch):
    fake = FakeS3(published_intent(tmp_path, "20261123T100000Z-abcd1234"))
    monkeypatch.setattr(user_models, "s3", fake)
    cache = user_models.UserModels(cache_dir=tmp_path / "cache", refresh_s=0)
    models = cache.get("bucket")
    assert models.intent.version == "20261123T100000Z-abcd1234" and models.sentiment is None and models.abuse is None
    downloads = len([k for k in fake.gets if not k.endswith("latest.json")])
    cache.get("bucket")  # same version: pointers re-read, files not downloaded again
    assert len([k for k in fake.gets if not k.endswith("latest.json")]) == downloads
    del fake.objects["models/intent/latest.json"]
    assert cache.get("bucket").intent is None  # pointer removed: no intent model


@pytest.mark.parametrize("prefix,files", [
    ("models/sentiment/v1/", None),  # a pointer may not send the intent reader elsewhere
    ("models/intent/v1/", ["../../etc/passwd"]),
    ("models/intent/v1/", ["sub/dir.npz"]),
])
def test_pointer_outside_its_own_prefix_is_refused(tmp_path, monkeypatch, prefix, files):
    fake = FakeS3(published_intent(tmp_path, "v1", prefix, files))
    monkeypatch.setattr(user_models, "s3", fake)
    cache = user_models.UserModels(cache_dir=tmp_path / "cache", refresh_s=0)
    assert cache.get("bucket").intent is None
    assert not list((tmp_path / "cache").rglob("*.npz"))


def test_a_sentiment_pointer_to_an_abuse_model_is_refused(tmp_path):
    from supportlens.domain.models import shipped_model_path

    with pytest.raises(ModelError, match="not sentiment"):
        user_models.load_user_model("sentiment", shipped_model_path("abuse"))
    assert user_models.load_user_model("abuse", shipped_model_path("abuse")).task == "abuse"


@pytest.mark.parametrize("key,expected", [
    ("training/intent/acme.csv", ("intent", "acme")),
    ("training/sentiment/2024 survey.csv.gz", ("sentiment", "2024 survey")),
])
def test_training_key_names_the_task(key, expected):
    assert train_logic.parse_training_key(key) == expected


@pytest.mark.parametrize("key", ["training/acme.csv", "training/intent/acme.xlsx", "training/churn/a.csv", "training/intent/x/y.csv"])
def test_training_key_that_names_no_task_is_refused(key):
    with pytest.raises(train_logic.TrainingInputError):
        train_logic.parse_training_key(key)


def test_training_version_is_stable_for_the_same_object():
    at = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
    version = train_logic.training_version
    assert version("training/intent/a.csv", at, b"text,label\n") == version("training/intent/a.csv", at, b"text,label\n")
    assert version("training/intent/a.csv", at, b"text,label\n") != version("training/intent/a.csv", at, b"text,label\nx,y\n")
    assert version("training/intent/a.csv", at, b"x") != version("training/intent/b.csv", at, b"x")  # same content, other file
    assert user_models._SAFE_NAME.match(version("training/intent/a.csv", at, b""))


class FakeBucket(FakeS3):
    def put(self, bucket: str, key: str, body: bytes, content_type: str = "") -> None:
        self.objects[key] = body


def test_redelivery_after_a_crash_before_the_pointer_moves_the_pointer(monkeypatch):
    report = {"trained_at": "2026-11-23T10:00:00+00:00", "files": ["intent.npz", "model.json", "training.json"], "source": "k"}
    fake = FakeBucket({"models/intent/v1/training.json": json.dumps(report).encode()})
    monkeypatch.setattr(train_logic, "s3", fake)
    assert train_logic.already_published("b", "intent", "v2") is None  # never trained: train it
    assert train_logic.already_published("b", "intent", "v1") == "republished"
    assert json.loads(fake.objects["models/intent/latest.json"])["version"] == "v1"
    assert train_logic.already_published("b", "intent", "v1") == "duplicate"
    fake.objects["models/intent/latest.json"] = json.dumps({"version": "v3", "published_at": "2026-11-23T11:00:00+00:00"}).encode()
    assert train_logic.already_published("b", "intent", "v1") == "superseded"  # a newer model stays
    assert json.loads(fake.objects["models/intent/latest.json"])["version"] == "v3"


def test_publish_writes_the_training_report_last(tmp_path, monkeypatch):
    for name in ("arrays.npz", "training.json", "vocab.json", "model.json"):
        (tmp_path / name).write_text(name)
    fake = FakeBucket({})
    monkeypatch.setattr(train_logic, "s3", fake)
    keys = train_logic.publish_model("b", tmp_path, "sentiment", "v1")
    assert keys[-2:] == ["models/sentiment/v1/training.json", "models/sentiment/latest.json"]
    assert list(fake.objects)[-2:] == keys[-2:]


def test_unreadable_pointer_keeps_the_current_model(tmp_path, monkeypatch):
    fake = FakeS3(published_intent(tmp_path, "v1"))
    monkeypatch.setattr(user_models, "s3", fake)
    cache = user_models.UserModels(cache_dir=tmp_path / "cache", refresh_s=0)
    assert cache.get("bucket").intent.version == "v1"
    fake.objects["models/intent/latest.json"] = b"{half a pointer"
    assert cache.get("bucket").intent.version == "v1"

