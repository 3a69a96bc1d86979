"""Models trained on a user's own labels, picked up by Enrich without a redeploy.

`supportlens train TASK --upload` and TrainFunction put a model under
`models/<task>/<version>/` and point `models/<task>/latest.json` at it. Enrich re-reads the
pointers every few minutes; a new version is downloaded to /tmp and loaded (plain JSON and npz
arrays, allow_pickle=False). A model that cannot be used is logged and skipped, and the model
in use stays; deleting the pointer goes back to the shipped model.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..adapters import s3
from ..domain.intent_model import IntentModel
from ..domain.models import ModelError, TextModel
from ..observability import logger

TASKS = ("sentiment", "abuse", "intent")
REFRESH_S = 300
EXPECTED_CLASSES = {"sentiment": {"negative", "neutral", "positive"}, "abuse": {"not_abusive", "abusive"}}
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def pointer_key(task: str) -> str:
    return f"models/{task}/latest.json"


@dataclass
class UserModelSet:
    sentiment: TextModel | None = None  # None: the shipped model
    abuse: TextModel | None = None
    intent: IntentModel | None = None  # None: no intent is assigned


def load_user_model(task: str, directory: Path) -> TextModel | IntentModel:
    """Load and sanity-check a downloaded model directory; raises ModelError when it cannot serve `task`."""
    if task == "intent":
        return IntentModel.load(directory)
    model = TextModel.load(directory)
    if model.task != task or set(model.classes) != EXPECTED_CLASSES[task]:
        raise ModelError(f"model at {directory} is a {model.task!r} model with classes {model.classes}, not {task}")
    return model


class UserModels:
    """The current user-trained model per task, re-checked every REFRESH_S seconds."""

    def __init__(self, cache_dir: Path | None = None, refresh_s: float = REFRESH_S) -> None:
        self.cache_dir = cache_dir or Path(tempfile.gettempdir()) / "supportlens-models"
        self.refresh_s = refresh_s
        self.current = UserModelSet()
        self.versions: dict[str, str | None] = {}  # pointer version seen per task (also a failed one: not retried)
        self.checked = 0.0

    def get(self, bucket: str) -> UserModelSet:
        if self.checked and time.monotonic() - self.checked < self.refresh_s:
            return self.current
        self.checked = time.monotonic()
        for task in TASKS:
            self._refresh(bucket, task)
        return self.current

    def invalidate(self) -> None:
        self.checked = 0.0

    def _refresh(self, bucket: str, task: str) -> None:
        try:
            raw = s3.get_bytes_if_exists(bucket, pointer_key(task))
        except Exception as exc:
            logger().warning("user model pointer unreadable", extra={"task": task, "error": repr(exc)[:200]})
            return
        if raw is None:  # no user model is the normal state
            if getattr(self.current, task) is not None:
                logger().info("user model pointer removed: back to the default", extra={"task": task})
            setattr(self.current, task, None)
            self.versions[task] = None
            return
        try:
            pointer = json.loads(raw)
        except ValueError as exc:
            logger().warning("user model pointer unreadable", extra={"task": task, "error": str(exc)[:200]})
            return
        version = str(pointer.get("version", ""))
        if version == self.versions.get(task):
            return
        self.versions[task] = version
        try:
            model = load_user_model(task, self._download(bucket, task, pointer))
        except (ModelError, ValueError, KeyError, OSError) as exc:
            logger().warning("user model unusable: keeping the current one",
                             extra={"task": task, "version": version, "error": str(exc)[:300]})
            return
        except Exception as exc:  # S3 errors: try again at the next check
            self.versions[task] = None
            logger().warning("user model download failed", extra={"task": task, "version": version, "error": repr(exc)[:200]})
            return
        setattr(self.current, task, model)
        logger().info("user model loaded", extra={"task": task, "version": version})

    def _download(self, bucket: str, task: str, pointer: dict) -> Path:
        version, prefix = str(pointer.get("version", "")), str(pointer.get("prefix", ""))
        if not _SAFE_NAME.match(version) or prefix != f"models/{task}/{version}/":
            raise ModelError(f"pointer for {task} names an unexpected location: {prefix!r}")
        names = pointer.get("files") or [key[len(prefix):] for key in s3.list_keys(bucket, prefix)]
        if not names or not all(isinstance(n, str) and _SAFE_NAME.match(n) for n in names):
            raise ModelError(f"pointer for {task} lists no usable files: {names!r}")
        directory = self.cache_dir / task / version
        directory.mkdir(parents=True, exist_ok=True)
        for name in names:
            (directory / name).write_bytes(s3.get_bytes(bucket, prefix + name))
        return directory
