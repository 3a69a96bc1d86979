"""The intent classifier: a user's own ticket categories, learnt from labelled examples.

A multinomial logistic regression over the ticket embedding (the same vectors Enrich makes), so
classifying costs one small matrix product per batch. Trained by `supportlens train intent`
(scikit-learn, training only); stored as plain arrays in `intent.npz` (loaded with
allow_pickle=False) and a readable `model.json`, so a model read from S3 is never unpickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .models import ModelError

ARRAYS_FILE = "intent.npz"
META_FILE = "model.json"


@dataclass
class IntentModel:
    version: str
    classes: list[str]
    coef: np.ndarray  # (k, dim)
    intercept: np.ndarray  # (k,)
    embedding_id: str  # the embedder whose vectors this was fitted on: other spaces are not classified
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.coef.ndim != 2 or self.coef.shape[0] != len(self.classes) or self.intercept.shape != (len(self.classes),):
            raise ModelError(f"intent model arrays do not match its {len(self.classes)} classes")

    def matches(self, embedding_id: str) -> bool:
        return self.embedding_id == embedding_id

    def proba(self, vectors: np.ndarray) -> np.ndarray:
        if vectors.shape[1] != self.coef.shape[1]:
            raise ModelError(f"intent model expects {self.coef.shape[1]}-d vectors, got {vectors.shape[1]}-d")
        z = vectors.astype(np.float64) @ self.coef.T + self.intercept
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, vectors: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Most likely intent per vector and its probability."""
        if not len(vectors):
            return [], np.zeros(0)
        p = self.proba(vectors)
        best = p.argmax(axis=1)
        return [self.classes[i] for i in best], p[np.arange(len(best)), best]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(directory / ARRAYS_FILE, classes=np.array(self.classes), coef=self.coef.astype(np.float32),
                            intercept=self.intercept.astype(np.float32))
        meta = {**self.meta, "task": "intent", "version": self.version, "embedding_id": self.embedding_id,
                "classes": self.classes, "dim": int(self.coef.shape[1])}
        (directory / META_FILE).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> IntentModel:
        directory = Path(directory)
        try:
            meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
            with np.load(directory / ARRAYS_FILE, allow_pickle=False) as arrays:
                classes = [str(c) for c in arrays["classes"]]
                coef, intercept = arrays["coef"].astype(np.float64), arrays["intercept"].astype(np.float64)
        except (OSError, KeyError, json.JSONDecodeError, ValueError) as exc:
            raise ModelError(f"cannot load intent model from {directory}: {exc}") from exc
        if meta.get("task") != "intent" or "embedding_id" not in meta:
            raise ModelError(f"{directory / META_FILE} is not an intent model")
        return cls(str(meta.get("version", "unknown")), classes, coef, intercept, meta["embedding_id"], meta)
