"""Which embedder turns ticket texts into vectors, and the id that names its vector space.

Two providers:

- ``local``  — :func:`supportlens.domain.scoring.embed` (called, never copied, so an
  improved local embedder applies everywhere without touching this module);
- ``gemini`` — Google's ``gemini-embedding-001`` through ``google-genai``
  (:mod:`supportlens.adapters.gemini`; optional, needs an API key).

Vectors from different embedders live in different spaces, so every vector is stored
with the *embedding id* of the embedder that produced it (``local-hash-256``,
``gemini-embedding-001@256``), and a centroids model is only used to assign issues to
vectors with the same id. Pure: no I/O, no environment; the key is the adapter's business.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

# The id of the original local embedder (hashed n-grams, 256 dims). Feature shards and
# centroids models written before embedding ids existed were all produced by it.
LEGACY_EMBEDDING_ID = "local-hash-256"

GEMINI_DEFAULT_MODEL = "gemini-embedding-001"
GEMINI_DEFAULT_DIMENSIONS = 256  # same as the local embedder: shards and models stay small
GEMINI_DEFAULT_TASK = "CLUSTERING"
GEMINI_TASK_TYPES = (
    "CLUSTERING", "SEMANTIC_SIMILARITY", "CLASSIFICATION", "RETRIEVAL_DOCUMENT", "RETRIEVAL_QUERY",
    "QUESTION_ANSWERING", "FACT_VERIFICATION", "CODE_RETRIEVAL_QUERY",
)
GEMINI_MAX_BATCH = 100  # texts per batchEmbedContents request (API limit)

Provider = Literal["local", "gemini"]


@runtime_checkable
class Embedder(Protocol):
    """Texts -> float32 unit rows (zero rows for texts with nothing to embed), same order."""

    @property
    def embedding_id(self) -> str: ...

    def __call__(self, texts: list[str]) -> "np.ndarray": ...


def local_embedding_id() -> str:
    """Id of the current local embedder: ``scoring.EMBEDDING_ID`` when it declares one."""
    from . import scoring

    return str(getattr(scoring, "EMBEDDING_ID", None) or f"local-hash-{scoring.EMBEDDING_DIM}")


class LocalEmbedder:
    """The local embedder (``scoring.embed``), looked up at call time."""

    @property
    def embedding_id(self) -> str:
        return local_embedding_id()

    def __call__(self, texts: list[str]) -> "np.ndarray":
        from . import scoring

        return scoring.embed(texts)

    def __repr__(self) -> str:
        return f"LocalEmbedder({self.embedding_id})"


def gemini_embedding_id(model: str, dimensions: int, task_type: str = GEMINI_DEFAULT_TASK) -> str:
    """``<model>@<dims>``; a task type other than CLUSTERING is part of the space too."""
    base = f"{model.removeprefix('models/')}@{dimensions}"
    return base if task_type.upper() == GEMINI_DEFAULT_TASK else f"{base}/{task_type.lower()}"


@dataclass(frozen=True)
class EmbeddingConfig:
    """What selects and parameterises the embedder (built from Settings by the caller)."""

    provider: Provider = "local"
    gemini_model: str = GEMINI_DEFAULT_MODEL
    gemini_dimensions: int = GEMINI_DEFAULT_DIMENSIONS
    gemini_task_type: str = GEMINI_DEFAULT_TASK
    gemini_requests_per_minute: int = 100
    gemini_batch_size: int = GEMINI_MAX_BATCH
    gemini_cache_size: int = 20_000

    def __post_init__(self) -> None:
        if self.provider not in ("local", "gemini"):
            raise ValueError(f"unknown embedding provider {self.provider!r}: use 'local' or 'gemini'")
        if not 1 <= self.gemini_dimensions <= 3072:
            raise ValueError("gemini_dimensions must be between 1 and 3072")
        if self.gemini_task_type.upper() not in GEMINI_TASK_TYPES:
            raise ValueError(f"unknown Gemini task type {self.gemini_task_type!r}; one of {', '.join(GEMINI_TASK_TYPES)}")
        if not 1 <= self.gemini_batch_size <= GEMINI_MAX_BATCH:
            raise ValueError(f"gemini_batch_size must be between 1 and {GEMINI_MAX_BATCH}")
        if self.gemini_requests_per_minute < 1:
            raise ValueError("gemini_requests_per_minute must be at least 1")

    @property
    def embedding_id(self) -> str:
        """The id the selected embedder writes: known without building it (no key, no SDK)."""
        if self.provider == "gemini":
            return gemini_embedding_id(self.gemini_model, self.gemini_dimensions, self.gemini_task_type)
        return local_embedding_id()


def select_embedder(config: EmbeddingConfig, gemini: Callable[[EmbeddingConfig], Embedder] | None = None) -> Embedder:
    """The embedder ``config`` names; ``gemini`` builds the Gemini one (the adapter supplies it)."""
    if config.provider == "local":
        return LocalEmbedder()
    if gemini is None:
        raise ValueError("embedding provider 'gemini' needs a Gemini embedder factory (supportlens.adapters.gemini)")
    embedder = gemini(config)
    if embedder.embedding_id != config.embedding_id:
        raise ValueError(f"Gemini embedder id {embedder.embedding_id!r} does not match the configuration ({config.embedding_id!r})")
    return embedder
