"""Train on a labelled CSV and publish the model where Enrich looks for it (logic/user_models.py).

Used by `supportlens train --upload` and by TrainFunction, which trains whatever lands under
`training/<task>/` (sentiment, abuse or intent; CSV with columns text,label, optionally gzip).
A file that cannot be trained on gets `quarantine/training/...error.json` saying why; a
redelivered notification finds its version already published and does nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..adapters import s3
from ..observability import logger
from .user_models import TASKS, pointer_key

MAX_TRAINING_BYTES = 200 * 2**20
_KEY = re.compile(r"^training/(?P<task>[a-z]+)/(?P<name>[^/]+?)\.csv(?P<gz>\.gz)?$")


class TrainingInputError(ValueError):
    """A training file that cannot be used as it is: quarantined with the reason, not retried."""


def publish_model(bucket: str, model_dir: Path, task: str, version: str, extra: dict[str, Any] | None = None) -> list[str]:
    """Put a model directory under models/<task>/<version>/, then move models/<task>/latest.json to it."""
    prefix = f"models/{task}/{version}/"
    # training.json (TrainFunction's report) goes last: its presence means every file is there
    files = sorted((p for p in model_dir.iterdir() if p.is_file()), key=lambda p: (p.name == "training.json", p.name))
    for path in files:
        s3.put(bucket, prefix + path.name, path.read_bytes())
    point_to(bucket, task, version, [p.name for p in files], extra)
    return [prefix + p.name for p in files] + [pointer_key(task)]


def point_to(bucket: str, task: str, version: str, files: list[str], extra: dict[str, Any] | None = None) -> None:
    pointer = {"task": task, "version": version, "prefix": f"models/{task}/{version}/", "files": files,
               "published_at": _now(), **(extra or {})}
    s3.put(bucket, pointer_key(task), json.dumps(pointer).encode(), "application/json")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _read_json(bucket: str, key: str) -> dict[str, Any] | None:
    raw = s3.get_bytes_if_exists(bucket, key)
    return None if raw is None else json.loads(raw)


def training_version(key: str, last_modified: datetime, content: bytes) -> str:
    """Deterministic per uploaded object, so a redelivered notification maps to the same version."""
    digest = hashlib.sha256(key.encode() + b"\0" + content).hexdigest()[:8]
    return f"{last_modified.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}-{digest}"


def already_published(bucket: str, task: str, version: str) -> str | None:
    """Why a redelivered notification needs no training, or None. `training.json` is the last
    model file written: when it exists but the pointer never moved (a crash in between), the
    pointer is moved now; a pointer published later (a newer model) is left alone."""
    report = _read_json(bucket, f"models/{task}/{version}/training.json")
    if report is None:
        return None
    pointer = _read_json(bucket, pointer_key(task)) or {}
    if pointer.get("version") == version:
        return "duplicate"
    if pointer.get("published_at", "") > report.get("trained_at", ""):
        return "superseded"
    point_to(bucket, task, version, report["files"], {"source": report.get("source")})
    return "republished"


def parse_training_key(key: str) -> tuple[str, str]:
    match = _KEY.match(key)
    if not match:
        raise TrainingInputError(f"{key}: expected training/<task>/<name>.csv or .csv.gz with task one of {', '.join(TASKS)}")
    if match["task"] not in TASKS:
        raise TrainingInputError(f"{key}: unknown task {match['task']!r} (expected one of {', '.join(TASKS)})")
    return match["task"], match["name"]


def train_bytes(task: str, content: bytes, out_dir: Path, version: str) -> dict[str, Any]:
    """Train `task` on CSV bytes (text,label); raises TrainingInputError for unusable input."""
    from ..evaluation import EvaluationError, normalise_labels, read_labelled_csv
    from ..training.cli import train_from_labelled

    with tempfile.NamedTemporaryFile(suffix=".csv") as csv_file:
        csv_file.write(content)
        csv_file.flush()
        try:
            data = read_labelled_csv(csv_file.name)
            labels = normalise_labels(task, data.labels)
            model, info = train_from_labelled(task, data.texts, labels, out_dir, version, use_profanity_check=False)
        except (EvaluationError, ValueError) as exc:
            raise TrainingInputError(str(exc).replace(csv_file.name, "the file")) from exc
    return {"task": task, "version": model.version, "rows": len(data.texts), "validation": info.get("validation")}


def train_object(bucket: str, key: str) -> dict[str, Any]:
    """TrainFunction's job for one uploaded object."""
    try:
        task, _ = parse_training_key(key)
        head = s3.head(bucket, key)
        if head["ContentLength"] > MAX_TRAINING_BYTES:
            raise TrainingInputError(f"{key}: {head['ContentLength']} bytes is over the {MAX_TRAINING_BYTES} byte limit")
        content = s3.get_bytes(bucket, key)
        if key.endswith(".gz"):
            try:
                content = gzip.decompress(content)
            except (OSError, EOFError) as exc:
                raise TrainingInputError(f"{key}: not a readable gzip file ({exc})") from exc
        version = training_version(key, head["LastModified"], content)
        status = already_published(bucket, task, version)
        if status:
            logger().info("training file already trained: redelivery", extra={"task": task, "version": version, "status": status})
            return {"task": task, "version": version, "status": status}
        with tempfile.TemporaryDirectory() as tmp:
            out_dir = Path(tmp) / version
            result = train_bytes(task, content, out_dir, version)
            files = sorted(p.name for p in out_dir.iterdir()) + ["training.json"]
            report = {**result, "source": key, "trained_at": _now(), "files": files}
            (out_dir / "training.json").write_text(json.dumps(report, indent=1) + "\n")
            publish_model(bucket, out_dir, task, version, {"source": key})
    except TrainingInputError as exc:
        report = {"file": key, "reason": str(exc), "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        s3.put(bucket, f"quarantine/{key}.error.json", json.dumps(report).encode(), "application/json")
        logger().warning("training file quarantined", extra={"key": key, "reason": str(exc)[:300]})
        return {"file": key, "status": "quarantined", "reason": str(exc)}
    logger().info("model trained and published", extra={"task": task, "version": version, "rows": result["rows"]})
    return {**result, "status": "published"}
