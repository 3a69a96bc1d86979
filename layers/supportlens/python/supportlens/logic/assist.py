"""Assist use case: classify / similar / recommend for agents, from the models Cluster publishes.

Reads only `models/` in S3: the centroids model (`models/centroids/latest.json`) and the
similar-tickets index (`models/similar/latest.json`), re-checked every few minutes so a new
clustering applies without a redeploy. The query text is cleaned and PII-masked exactly as
Enrich does and embedded with the configured embedder, which must be the one the models were
built with.

Request (direct invocation, or the JSON body of a Function URL request):
    {"operation": "classify" | "similar" | "recommend", "text": "...", "k": 5, "company": "optional"}
Response: {"operation": ..., "model_version": ..., "result": {...}} or {"error": {"code", "message"}}.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from ..adapters import s3
from ..domain import assist, text
from ..domain.issues_model import MODEL_POINTER, CentroidsModel
from ..observability import logger
from ..settings import Settings

SIMILAR_POINTER = "models/similar/latest.json"
REFRESH_S = 300


class AssistError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class AssistRequest(BaseModel):
    operation: Literal["classify", "similar", "recommend"]
    text: str = Field(max_length=10_000)  # empty is checked in handle(): one readable empty_text answer
    k: int = Field(default=5, ge=1, le=50)
    company: str | None = Field(default=None, max_length=100)


class Models:
    """The published centroids model and similar-tickets index, cached and re-checked every few minutes."""

    def __init__(self, bucket: str, refresh_s: float = REFRESH_S):
        self.bucket, self.refresh_s = bucket, refresh_s
        self.centroids: CentroidsModel | None = None
        self.index: assist.SimilarIndex | None = None
        self._keys: dict[str, str] = {}
        self._checked = 0.0

    def _load(self, pointer_key: str, loader: Callable[[bytes], Any], current: Any) -> Any:
        try:
            raw = s3.get_bytes_if_exists(self.bucket, pointer_key)
        except Exception as exc:
            logger().warning("model pointer unreadable", extra={"pointer": pointer_key, "error": repr(exc)[:200]})
            return current
        if raw is None:  # no model yet is the normal first state
            return current
        try:
            pointer = json.loads(raw)
        except ValueError as exc:
            logger().warning("model pointer unreadable", extra={"pointer": pointer_key, "error": str(exc)[:200]})
            return current
        if pointer.get("key") != self._keys.get(pointer_key):
            current = loader(s3.get_bytes(self.bucket, pointer["key"]))
            self._keys[pointer_key] = pointer["key"]
        return current

    def refresh(self) -> None:
        if self._checked and time.monotonic() - self._checked < self.refresh_s:
            return
        self._checked = time.monotonic()
        self.centroids = self._load(MODEL_POINTER, CentroidsModel.from_bytes, self.centroids)
        self.index = self._load(SIMILAR_POINTER, assist.SimilarIndex.from_bytes, self.index)


class Assistant:
    def __init__(self, settings: Settings, embedder: Callable[[list[str]], np.ndarray] | None = None,
                 generator: Callable[[str], str] | None = None, models: Models | None = None):
        self.settings = settings
        self.models = models or Models(settings.data_bucket)
        self._embedder = embedder
        self._generator = generator
        self._generator_built = generator is not None

    # ------------------------------------------------------------ wiring
    @property
    def embedder(self) -> Callable[[list[str]], np.ndarray]:
        if self._embedder is None:
            from ..adapters import gemini

            self._embedder = gemini.embedder_for(self.settings)  # local by default; Gemini when configured
        return self._embedder

    @property
    def generator(self) -> Callable[[str], str] | None:
        if not self._generator_built:
            self._generator_built = True
            try:
                from ..adapters import gemini

                self._generator = gemini.text_generator_for(self.settings)
            except Exception as exc:  # misconfigured rewrite must not take the function down
                logger().warning("reply rewriting disabled", extra={"error": type(exc).__name__})
                self._generator = None
        return self._generator

    def _embedding_id(self) -> str | None:
        return getattr(self.embedder, "embedding_id", None)

    def _query(self, raw: str) -> tuple[str, np.ndarray]:
        masked, _ = text.mask_pii(text.clean_text(raw))
        vector = np.asarray(self.embedder([masked]), dtype=np.float32)[0]
        if not np.any(vector):
            raise AssistError(400, "empty_text", "the text has no words to compare")
        return masked, vector

    def _need(self, what: str) -> Any:
        self.models.refresh()
        model = self.models.centroids if what == "centroids" else self.models.index
        if model is None:
            raise AssistError(503, "no_model", ("no issues model has been published yet: the Cluster function publishes one once tickets "
                                              "are stored (on the local cloud: `supportlens upload FILE --wait`, then "
                                              "`supportlens local tick --function Cluster`)"))
        wanted = self._embedding_id()
        have = model.embedding_id
        if wanted and have and wanted != have:
            raise AssistError(503, "embedding_mismatch",
                              f"the published {what} model was built with embedder {have!r} but this function embeds with "
                              f"{wanted!r}: run the Cluster function again")
        return model

    def _labels(self) -> dict[str, str]:
        model = self.models.centroids
        return dict(zip(model.issue_ids, model.labels)) if model is not None else {}

    # ------------------------------------------------------------ operations
    def classify(self, raw: str) -> dict[str, Any]:
        model = self._need("centroids")
        index = self.models.index if self.models.index is not None and self.models.index.version == model.version else None
        masked, vector = self._query(raw)
        return {"model_version": model.version, "result": assist.classify(vector, model, index, text=masked).to_dict()}

    def similar(self, raw: str, k: int = 5, company: str | None = None) -> dict[str, Any]:
        index = self._need("index")
        _, vector = self._query(raw)
        result: dict[str, Any] = {"matches": assist.similar(vector, index, k, self._labels(), company)}
        note = assist.unknown_company_note(index, company)
        if note:
            result["company_note"] = note
        return {"model_version": index.version, "result": result}

    def recommend(self, raw: str, company: str | None = None) -> dict[str, Any]:
        index = self._need("index")
        masked, vector = self._query(raw)
        found = assist.recommend(vector, index, self.embedder, company)
        note = assist.unknown_company_note(index, company)
        if found is None:
            return {"model_version": index.version,
                    "result": {"reply": None, "reason": "nothing similar enough was resolved: no past ticket closer than "
                               f"{index.similarity_floor:.2f} has a company reply that is safe to reuse"
                               + (f" ({note}; every company's replies were searched)" if note
                                  else f" (searched {company}'s replies first)" if company else "")}}
        generator = self.generator
        if generator is not None:
            try:
                rewritten = assist.accept_rewrite(generator(assist.rewrite_prompt(masked, found.reply, found.company)))
            except Exception as exc:
                logger().warning("reply rewrite failed; returning the reply as drawn", extra={"error": str(exc)[:200]})
                rewritten = None
            if rewritten:
                found.alternatives.insert(0, {"reply": found.reply, "source_ticket_id": found.source_ticket_id,
                                              "reply_ticket_id": found.reply_ticket_id, "score": round(found.score, 4)})
                found.reply, found.rewritten = rewritten, True
        return {"model_version": index.version, "result": {**found.to_dict(), **({"company_note": note} if note else {})}}

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """The JSON contract: a request dict -> a response dict (raises AssistError for bad requests)."""
        try:
            req = AssistRequest.model_validate(request)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "request"
            raise AssistError(400, "bad_request", f"{where}: {first['msg']}") from None
        if not req.text.strip():  # pydantic's "String should have at least 1 character" told an agent nothing
            raise AssistError(400, "empty_text", "the text is empty: send the customer's message to compare")
        if req.operation == "classify":
            answer = self.classify(req.text)
        elif req.operation == "similar":
            answer = self.similar(req.text, req.k, req.company)
        else:
            answer = self.recommend(req.text, req.company)
        logger().info("assist answered", extra={"operation": req.operation, "model_version": answer["model_version"]})
        return {"operation": req.operation, **answer}


def handle_event(assistant: Assistant, event: Any) -> dict[str, Any]:
    """A direct invocation (the request itself) or a Function URL event (the request in `body`).

    Direct invocations get the response dict (errors as {"error": ...}); Function URL requests
    get an HTTP response with a JSON body and the matching status code.
    """
    is_http = isinstance(event, dict) and "requestContext" in event and ("body" in event or "rawPath" in event)
    try:
        if is_http:
            body = event.get("body") or ""
            if event.get("isBase64Encoded"):
                body = base64.b64decode(body).decode("utf-8")
            try:
                request = json.loads(body) if body else {}
            except json.JSONDecodeError:
                raise AssistError(400, "bad_request", "the body must be a JSON object") from None
        else:
            request = event
        if not isinstance(request, dict):
            raise AssistError(400, "bad_request", "the request must be a JSON object")
        response, status = assistant.handle(request), 200
    except AssistError as exc:
        response, status = {"error": {"code": exc.code, "message": exc.message}}, exc.status
    if is_http:
        return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(response)}
    return response
