"""Labelled training data from ../shared/data, with fixed, hash-based train/validation/test splits.

Split rule (stable across runs and machines): bucket = sha256("supportlens-split:" + key) % 100;
bucket < 70 train, 70..84 validation (tuning), >= 85 test (never used for any choice).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

SPLITS = ("train", "validation", "test")


def split_of(key: str) -> str:
    bucket = int(hashlib.sha256(f"supportlens-split:{key}".encode()).hexdigest()[:8], 16) % 100
    return "train" if bucket < 70 else "validation" if bucket < 85 else "test"


@dataclass
class Labelled:
    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)

    def add(self, text: str, label: str, key: str, source: str, weight: float = 1.0) -> None:
        self.texts.append(text)
        self.labels.append(label)
        self.weights.append(weight)
        self.sources.append(source)
        self.splits.append(split_of(key))

    def subset(self, split: str | tuple[str, ...], source: str | None = None) -> Labelled:
        wanted = (split,) if isinstance(split, str) else split
        out = Labelled()
        for i, s in enumerate(self.splits):
            if s in wanted and (source is None or self.sources[i] == source):
                out.texts.append(self.texts[i])
                out.labels.append(self.labels[i])
                out.weights.append(self.weights[i])
                out.sources.append(self.sources[i])
                out.splits.append(s)
        return out

    def __len__(self) -> int:
        return len(self.texts)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def airline_sentiment(data_dir: Path) -> Labelled:
    """Twitter US Airline Sentiment (CC BY-NC-SA 4.0): negative / neutral / positive, annotator confidence."""
    out = Labelled()
    for row in _rows(data_dir / "airline_sentiment" / "train.csv"):
        out.add(row["text"], row["airline_sentiment"], f"airline:{row['tweet_id']}", "airline",
                float(row["airline_sentiment_confidence"] or 1.0))
    return out


def twcs_customer_tweets(data_dir: Path) -> list[tuple[str, str]]:
    """(text, split key) of customer (inbound) tweets from the TWCS excerpt (CC BY-NC-SA 4.0)."""
    return [(r["text"], f"twcs:{r['conversation_id']}") for r in _rows(data_dir / "twcs" / "train.csv") if r["inbound"] == "True"]


def abuse(data_dir: Path) -> Labelled:
    """Davidson et al. (MIT): hate speech or offensive -> abusive, neither -> not_abusive; plus ordinary
    support tweets (airline tweets, TWCS customer tweets) as not_abusive examples from the support domain."""
    out = Labelled()
    for row in _rows(data_dir / "offensive" / "train.csv"):
        out.add(row["tweet"], "not_abusive" if row["class"] == "2" else "abusive", f"davidson:{row['row_index']}", "davidson")
    for row in _rows(data_dir / "airline_sentiment" / "train.csv"):
        out.add(row["text"], "not_abusive", f"airline:{row['tweet_id']}", "airline")
    for text, key in twcs_customer_tweets(data_dir):
        out.add(text, "not_abusive", key, "twcs")
    return out
