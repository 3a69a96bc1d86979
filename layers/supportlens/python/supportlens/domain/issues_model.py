"""The centroids model Cluster publishes and Enrich uses to assign issues online.

Stored as plain arrays in an .npz (never pickle), so loading from S3 is safe.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np


@dataclass
class CentroidsModel:
    version: str
    issue_ids: list[str]
    labels: list[str]
    centroids: np.ndarray  # (k, dim), unit rows

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
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "CentroidsModel":
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            return cls(
                version=str(arrays["version"]),
                issue_ids=[str(x) for x in arrays["issue_ids"]],
                labels=[str(x) for x in arrays["labels"]],
                centroids=arrays["centroids"].astype(np.float32),
            )
