"""The centroids model Cluster publishes and Enrich uses to assign issues online.

Stored as plain arrays in an .npz (never pickle), so loading from S3 is safe.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from .embedding import LEGACY_EMBEDDING_ID

MODEL_POINTER = "models/centroids/latest.json"  # S3 key of the pointer to the published centroids model


@dataclass
class CentroidsModel:
    version: str
    issue_ids: list[str]
    labels: list[str]
    centroids: np.ndarray  # (k, dim), unit rows
    # The embedder whose space the centroids live in; models saved before ids existed were local.
    embedding_id: str = LEGACY_EMBEDDING_ID
    # "issue" or "bucket" per centroid (models saved before buckets existed: all issues).
    kinds: list[str] | None = None
    # Cosine below which a ticket fits no issue well (the clustering's outlier floor; 0 = unknown).
    outlier_floor: float = 0.0
    # Mean cosine of each issue's members to its centroid (how close a typical member is; None: unknown).
    cohesion: list[float] | None = None

    def kind_of(self, i: int) -> str:
        return self.kinds[i] if self.kinds and i < len(self.kinds) else "issue"

    def matches(self, embedding_id: str) -> bool:
        """True when vectors from the embedder `embedding_id` may be assigned with this model."""
        return self.embedding_id == embedding_id

    def assign(self, vectors: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Nearest issue per vector and its cosine similarity."""
        sims = vectors @ self.centroids.T
        best = sims.argmax(axis=1)
        return [self.issue_ids[i] for i in best], sims[np.arange(len(best)), best]

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            version=np.array(self.version),
            issue_ids=np.array(self.issue_ids),
            labels=np.array(self.labels),
            centroids=self.centroids.astype(np.float32),
            embedding_id=np.array(self.embedding_id),
            kinds=np.array(self.kinds if self.kinds else ["issue"] * len(self.issue_ids)),
            outlier_floor=np.array(self.outlier_floor, dtype=np.float32),
            cohesion=np.array(self.cohesion if self.cohesion else [0.0] * len(self.issue_ids), dtype=np.float32),
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "CentroidsModel":
        """Raises (ValueError, KeyError, zipfile errors, ...) for bytes that are not a usable model."""
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            model = cls(
                version=str(arrays["version"]),
                issue_ids=[str(x) for x in arrays["issue_ids"]],
                labels=[str(x) for x in arrays["labels"]],
                centroids=arrays["centroids"].astype(np.float32),
                embedding_id=str(arrays["embedding_id"]) if "embedding_id" in arrays.files else LEGACY_EMBEDDING_ID,
                kinds=[str(x) for x in arrays["kinds"]] if "kinds" in arrays.files else None,
                outlier_floor=float(arrays["outlier_floor"]) if "outlier_floor" in arrays.files else 0.0,
                cohesion=[float(x) for x in arrays["cohesion"]] if "cohesion" in arrays.files else None,
            )
        # A model that loads but cannot assign would fail every batch later, inside enrich().
        shape = model.centroids.shape
        if len(shape) != 2 or not shape[0] or shape[0] != len(model.issue_ids) or not np.isfinite(model.centroids).all():
            raise ValueError(f"centroids model has unusable centroids (shape {shape}, {len(model.issue_ids)} issue ids)")
        return model
