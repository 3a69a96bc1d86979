"""Gemini embeddings through ``google-genai`` (optional provider; the local embedder is the default).

- model ``gemini-embedding-001`` (configurable), ``output_dimensionality`` 256 by default so
  Gemini vectors are as small as the local ones; reduced dimensions are re-normalised to
  unit length (only the full 3,072 are normalised by the API);
- at most 100 texts per ``batchEmbedContents`` request;
- a client-side rate limiter (requests per minute, per process);
- retries with exponential backoff and jitter on 408/429/5xx by google-genai itself
  (``HttpRetryOptions``: tenacity inside the SDK), then a clear :class:`GeminiEmbeddingError`;
- a bounded LRU cache keyed by sha256(model, dims, task, text): a text is embedded once per
  process; empty texts get a zero vector without a call.

The API key comes from Settings: ``GEMINI_API_KEY`` (CLI, local cloud) or an SSM SecureString
named by ``GEMINI_API_KEY_PARAMETER`` (Lambda), read once per container. Neither the key nor
any text is ever logged.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from ..domain.embedding import Embedder, EmbeddingConfig, gemini_embedding_id, select_embedder

if TYPE_CHECKING:
    import httpx

    from ..settings import Settings

RETRY_STATUS_CODES = (408, 429, 500, 502, 503, 504)
MAX_TEXT_CHARS = 8_000  # the model reads 2,048 tokens; longer texts only cost bandwidth


class GeminiEmbeddingError(RuntimeError):
    """Gemini could not embed a batch (after the bounded retries), or answered nonsense."""


class GeminiConfigError(ValueError):
    """The Gemini provider is selected but not configured (no API key)."""


class RateLimiter:
    """At most ``per_minute`` requests in any 60-second window (sliding log), per process."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.per_minute = per_minute
        self._clock = clock
        self._sleep = sleep
        self._starts: deque[float] = deque()
        self.waited_s = 0.0

    def acquire(self) -> None:
        while True:
            now = self._clock()
            while self._starts and now - self._starts[0] >= 60.0:
                self._starts.popleft()
            if len(self._starts) < self.per_minute:
                self._starts.append(now)
                return
            wait = 60.0 - (now - self._starts[0])
            self.waited_s += wait
            self._sleep(wait)


class VectorCache:
    """Bounded LRU of unit vectors by key (bytes)."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[bytes, np.ndarray] = OrderedDict()

    def get(self, key: bytes) -> np.ndarray | None:
        vector = self._data.get(key)
        if vector is not None:
            self._data.move_to_end(key)
        return vector

    def put(self, key: bytes, vector: np.ndarray) -> None:
        if self.max_entries <= 0:
            return
        self._data[key] = vector
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


class GeminiEmbedder:
    """An :class:`~supportlens.domain.embedding.Embedder` backed by the Gemini API."""

    def __init__(
        self,
        api_key: str,
        config: EmbeddingConfig | None = None,
        *,
        retry_attempts: int = 5,
        retry_initial_delay_s: float = 1.0,
        retry_max_delay_s: float = 20.0,
        timeout_s: float = 30.0,
        http_client: "httpx.Client | None" = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from google import genai  # imported only when Gemini is selected
        from google.genai import types

        if not api_key:
            raise GeminiConfigError("a Gemini API key is required")
        config = config or EmbeddingConfig(provider="gemini")
        self.model = config.gemini_model.removeprefix("models/")
        self.dimensions = config.gemini_dimensions
        self.task_type = config.gemini_task_type.upper()
        self.batch_size = config.gemini_batch_size
        self.retry_attempts = max(1, retry_attempts)
        self.limiter = RateLimiter(config.gemini_requests_per_minute, clock, sleep)
        self.cache = VectorCache(config.gemini_cache_size)
        self.stats = {"requests": 0, "texts_sent": 0, "cache_hits": 0, "empty": 0}
        self._errors = genai.errors
        self._embed_config = types.EmbedContentConfig(task_type=self.task_type, output_dimensionality=self.dimensions)
        http_options = types.HttpOptions(
            timeout=int(timeout_s * 1000),  # milliseconds
            retry_options=types.HttpRetryOptions(
                attempts=self.retry_attempts, initial_delay=retry_initial_delay_s, max_delay=retry_max_delay_s,
                exp_base=2.0, jitter=min(1.0, retry_initial_delay_s), http_status_codes=list(RETRY_STATUS_CODES),
            ),
            httpx_client=http_client,
        )
        self._client = genai.Client(api_key=api_key, http_options=http_options)

    @property
    def embedding_id(self) -> str:
        return gemini_embedding_id(self.model, self.dimensions, self.task_type)

    def __repr__(self) -> str:  # never shows the key
        return f"GeminiEmbedder({self.embedding_id})"

    def _key(self, text: str) -> bytes:
        return hashlib.sha256("\x1f".join((self.model, str(self.dimensions), self.task_type, text)).encode()).digest()

    def __call__(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        pending: dict[bytes, tuple[str, list[int]]] = {}  # unique texts to fetch, first-seen order
        for row, raw in enumerate(texts):
            text = (raw or "").strip()[:MAX_TEXT_CHARS]
            if not text:
                self.stats["empty"] += 1
                continue
            key = self._key(text)
            cached = self.cache.get(key)
            if cached is not None:
                out[row] = cached
                self.stats["cache_hits"] += 1
            elif key in pending:
                pending[key][1].append(row)
                self.stats["cache_hits"] += 1
            else:
                pending[key] = (text, [row])
        keys = list(pending)
        for start in range(0, len(keys), self.batch_size):
            chunk = keys[start:start + self.batch_size]
            vectors = self._request([pending[k][0] for k in chunk])
            for key, vector in zip(chunk, vectors):
                self.cache.put(key, vector.copy())  # a copy: a view would pin its whole batch in memory
                out[pending[key][1]] = vector
        return out

    def _request(self, texts: list[str]) -> np.ndarray:
        self.limiter.acquire()
        self.stats["requests"] += 1
        self.stats["texts_sent"] += len(texts)
        try:
            response = self._client.models.embed_content(model=self.model, contents=texts, config=self._embed_config)
        except self._errors.APIError as exc:
            retried = exc.code in RETRY_STATUS_CODES
            raise GeminiEmbeddingError(
                f"Gemini embedding request ({len(texts)} texts, model {self.model}) failed with HTTP {exc.code} {exc.status or ''}".rstrip()
                + (f" after {self.retry_attempts} attempts" if retried else " (not retryable)")
            ) from exc
        except Exception as exc:  # transport errors the SDK already retried (timeouts, resets)
            raise GeminiEmbeddingError(
                f"Gemini embedding request ({len(texts)} texts, model {self.model}) failed: {type(exc).__name__}"
            ) from exc
        embeddings = response.embeddings or []
        if len(embeddings) != len(texts):
            raise GeminiEmbeddingError(f"Gemini returned {len(embeddings)} embeddings for {len(texts)} texts")
        try:
            matrix = np.array([np.asarray(e.values or [], dtype=np.float32) for e in embeddings])
        except (TypeError, ValueError):  # ragged rows
            matrix = np.empty((0,))
        if matrix.shape != (len(texts), self.dimensions):
            raise GeminiEmbeddingError(f"Gemini returned vectors of shape {matrix.shape}; expected ({len(texts)}, {self.dimensions})")
        return normalise(matrix)


def normalise(matrix: np.ndarray) -> np.ndarray:
    """Unit rows (reduced Gemini dimensions are not normalised by the API); zero rows stay zero."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms == 0, 1, norms)).astype(np.float32)


@cache
def _secure_string(name: str) -> str:
    """An SSM SecureString, read once per container (the value never leaves this process)."""
    from . import aws

    return str(aws.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])


def api_key(settings: "Settings") -> str:
    """GEMINI_API_KEY when set (CLI, local cloud), else the SSM SecureString GEMINI_API_KEY_PARAMETER names."""
    if settings.gemini_api_key is not None and settings.gemini_api_key.get_secret_value():
        return settings.gemini_api_key.get_secret_value()
    if settings.gemini_api_key_parameter:
        return _secure_string(settings.gemini_api_key_parameter)
    raise GeminiConfigError(
        "EMBEDDING_PROVIDER=gemini needs an API key: set GEMINI_API_KEY (CLI, local cloud) or "
        "GEMINI_API_KEY_PARAMETER to the name of an SSM SecureString (Lambda)"
    )


_EMBEDDERS: dict[EmbeddingConfig, Embedder] = {}
# Builds the httpx client google-genai uses; None = the SDK's own. Tests set a fake transport here.
HTTP_CLIENT_FACTORY: "Callable[[], httpx.Client] | None" = None


def embedder_for(settings: "Settings", **gemini_options: Any) -> Embedder:
    """The embedder Settings select, built once per process (the cache and rate limiter live in it)."""
    config = settings.embedding()
    if config not in _EMBEDDERS:
        def build(c: EmbeddingConfig) -> Embedder:
            if HTTP_CLIENT_FACTORY is not None and "http_client" not in gemini_options:
                gemini_options["http_client"] = HTTP_CLIENT_FACTORY()
            return GeminiEmbedder(api_key(settings), c, **gemini_options)

        _EMBEDDERS[config] = select_embedder(config, build)
    return _EMBEDDERS[config]


# ---------------------------------------------------------------- text generation (Assist rewrite)
class GeminiTextGenerator:
    """Prompt -> text with a Gemini model (used by Assist to rewrite a recommended reply; optional).

    The key and the prompt are never logged; a failed call raises ``RuntimeError`` so the caller
    can fall back to the reply as drawn.
    """

    def __init__(self, api_key: str, model: str, *, timeout_s: float = 20.0, retry_attempts: int = 3,
                 http_client: "httpx.Client | None" = None) -> None:
        from google import genai
        from google.genai import types

        if not api_key:
            raise GeminiConfigError("a Gemini API key is required")
        self.model = model.removeprefix("models/")
        self._config = types.GenerateContentConfig(temperature=0.2, max_output_tokens=256)
        http_options = types.HttpOptions(
            timeout=int(timeout_s * 1000),
            retry_options=types.HttpRetryOptions(attempts=max(1, retry_attempts), http_status_codes=list(RETRY_STATUS_CODES)),
            httpx_client=http_client,
        )
        self._client = genai.Client(api_key=api_key, http_options=http_options)

    def __repr__(self) -> str:  # never shows the key
        return f"GeminiTextGenerator({self.model})"

    def __call__(self, prompt: str) -> str:
        try:
            response = self._client.models.generate_content(model=self.model, contents=prompt, config=self._config)
        except Exception as exc:
            raise RuntimeError(f"Gemini generation ({self.model}) failed: {type(exc).__name__}") from exc
        return response.text or ""


def text_generator_for(settings: "Settings") -> Callable[[str], str] | None:
    """The rewrite generator when ASSIST_GENERATION_MODEL and a Gemini API key are configured, else None."""
    if not settings.assist_generation_model:
        return None
    options: dict[str, Any] = {}
    if HTTP_CLIENT_FACTORY is not None:
        options["http_client"] = HTTP_CLIENT_FACTORY()
    return GeminiTextGenerator(api_key(settings), settings.assist_generation_model, **options)
