"""Train on a user's labelled CSV (`supportlens train`), writing a versioned model directory."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..domain.intent_model import IntentModel
from ..domain.models import TextModel
from .data import Labelled
from .recipes import train_abuse, train_intent, train_sentiment

# sentiment/abuse keep a validation split for their thresholds and biases; an intent classifier
# on embeddings learns from a few examples per label (validation is then only a report).
MIN_ROWS = {"sentiment": 20, "abuse": 20, "intent": 6}


def train_from_labelled(
    task: str, texts: list[str], labels: list[str], out_dir: Path, version: str | None = None, use_profanity_check: bool = True
) -> tuple[TextModel | IntentModel, dict[str, Any]]:
    """Train `task` on (texts, normalised labels); 15 % of the rows (hash of the text) are held back
    for the validation choices (class biases, threshold, stacking)."""
    minimum = MIN_ROWS.get(task, 20)
    if len(texts) < minimum:
        raise ValueError(f"need at least {minimum} labelled rows to train {task}, got {len(texts)}")
    data = Labelled()
    for text, label in zip(texts, labels):
        data.add(text, label, f"user:{text}", "user")
    train = data.subset(("train", "test"))  # user data: no separate test split here (use `evaluate`)
    validation = data.subset("validation")
    if len(set(validation.labels)) < len(set(labels)) or len(set(train.labels)) < len(set(labels)):
        # tiny files: fall back to a deterministic every-7th-row validation split
        val_idx = set(range(3, len(texts), 7))
        train, validation = Labelled(), Labelled()
        for i, (text, label) in enumerate(zip(texts, labels)):
            (validation if i in val_idx else train).add(text, label, f"user:{i}", "user")
    version = version or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    meta = {"version": version, "trained_on": "user data", "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if task == "sentiment":
        return train_sentiment(train, validation, out_dir, meta=meta, confidence_power=0.0)
    if task == "abuse":
        return train_abuse(train, validation, out_dir, meta=meta, use_profanity_check=use_profanity_check)
    if task == "intent":
        from ..domain import scoring
        from ..evaluation import production_vectors

        return train_intent(train, validation, out_dir, production_vectors, scoring.EMBEDDING_ID, meta=meta)
    raise ValueError(f"cannot train task {task!r} (sentiment, abuse, intent)")


def write_pointer(root: Path, task: str, version: str) -> Path:
    pointer = root / task / "latest.json"
    pointer.write_text(json.dumps({"task": task, "version": version, "prefix": f"models/{task}/{version}/"}) + "\n")
    return pointer

