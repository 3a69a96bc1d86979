"""`supportlens evaluate TASK --data FILE.csv`: score a labelled CSV (columns text,label) through
the production code path and return one JSON-able dict of metrics.

TASKS maps a task name to `fn(data: Dataset, options: EvalOptions) -> dict`; add a task by
adding an entry (clusters, similar, intent, ...). Metrics here are plain numpy (no scikit-learn).
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


class EvaluationError(ValueError):
    """Bad input for an evaluation (missing columns, unknown labels, empty file)."""


@dataclass
class Dataset:
    texts: list[str]
    labels: list[str]
    path: str = ""
    companies: list[str] | None = None  # optional `company` column (clusters: top companies per issue)


@dataclass
class EvalOptions:
    train: Dataset | None = None
    k: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def read_labelled_csv(path: str | Path, text_column: str = "text", label_column: str = "label") -> Dataset:
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"{path}: no such file")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
        if text_column not in columns or label_column not in columns:
            raise EvaluationError(f"{path}: needs columns {text_column!r} and {label_column!r} (found {list(columns)})")
        company = columns.get("company")
        rows = [(r[columns[text_column]] or "", (r[columns[label_column]] or "").strip(),
                 (r[company] or "").strip() if company else "") for r in reader]
    rows = [row for row in rows if row[1]]
    if not rows:
        raise EvaluationError(f"{path}: no labelled rows")
    return Dataset([t for t, _, _ in rows], [label for _, label, _ in rows], str(path),
                   [c or "unknown" for _, _, c in rows] if company else None)


# ------------------------------------------------------------------ metrics (numpy only)
def confusion(y_true: list[str], y_pred: list[str], classes: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        matrix[index[t], index[p]] += 1
    return matrix


def _prf(matrix: np.ndarray, i: int) -> tuple[float, float, float]:
    tp = float(matrix[i, i])
    predicted = float(matrix[:, i].sum())
    actual = float(matrix[i, :].sum())
    precision = tp / predicted if predicted else 0.0
    recall = tp / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def sentiment_metrics(y_true: list[str], y_pred: list[str], classes: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 (over the classes present in y_true), per-class F1, confusion matrix (rows = true)."""
    matrix = confusion(y_true, y_pred, classes)
    present = [i for i, c in enumerate(classes) if c in set(y_true)]
    per_class = {c: round(_prf(matrix, i)[2], 4) for i, c in enumerate(classes)}
    macro = float(np.mean([_prf(matrix, i)[2] for i in present])) if present else 0.0
    return {
        "n": len(y_true),
        "accuracy": round(float(np.trace(matrix)) / max(len(y_true), 1), 4),
        "macro_f1": round(macro, 4),
        "per_class_f1": per_class,
        "labels": classes,
        "confusion_matrix": matrix.tolist(),
    }


def abuse_metrics(y_true: list[str], y_pred: list[str]) -> dict[str, Any]:
    """Precision, recall and F1 of the abusive class, macro-F1 over both classes, flag rate."""
    classes = ["abusive", "not_abusive"]
    matrix = confusion(y_true, y_pred, classes)
    p, r, f1 = _prf(matrix, 0)
    f1_not = _prf(matrix, 1)[2]
    present = [f for f, c in ((f1, "abusive"), (f1_not, "not_abusive")) if c in set(y_true)]
    return {
        "n": len(y_true),
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(f1, 4),
        "macro_f1": round(float(np.mean(present)), 4),
        "flag_rate": round(sum(1 for v in y_pred if v == "abusive") / max(len(y_pred), 1), 4),
        "positives": int(matrix[0].sum()),
        "confusion_matrix": matrix.tolist(),
        "labels": classes,
    }


# ------------------------------------------------------------------ label normalisation
_ABUSE_LABELS = {
    "abusive": "abusive", "abuse": "abusive", "offensive": "abusive", "off": "abusive", "toxic": "abusive",
    "1": "abusive", "true": "abusive", "yes": "abusive",
    "not_abusive": "not_abusive", "not abusive": "not_abusive", "not-abusive": "not_abusive", "not": "not_abusive",
    "none": "not_abusive", "clean": "not_abusive", "0": "not_abusive", "false": "not_abusive", "no": "not_abusive",
}
_SENTIMENT_LABELS = {"negative": "negative", "neg": "negative", "neutral": "neutral", "neu": "neutral",
                     "positive": "positive", "pos": "positive"}


def normalise_labels(task: str, labels: list[str]) -> list[str]:
    if task == "intent":  # the user's own categories, taken as written (trimmed)
        return [label.strip() for label in labels]
    table = _ABUSE_LABELS if task == "abuse" else _SENTIMENT_LABELS
    out, unknown = [], set()
    for label in labels:
        value = table.get(label.strip().lower())
        if value is None:
            unknown.add(label)
        out.append(value)
    if unknown:
        raise EvaluationError(f"unknown {task} labels: {sorted(unknown)[:10]} (expected {sorted(set(table.values()))})")
    return out


# ------------------------------------------------------------------ production path
def production_texts(texts: list[str]) -> tuple[list[str], list[str]]:
    """(sentiment input, abuse input) exactly as domain.enrichment.enrich builds them: clean, then mask PII."""
    from .domain import text as textlib

    sentiment_in, abuse_in = [], []
    for raw in texts:
        masked_clean, _ = textlib.mask_pii(textlib.clean_text(raw))
        masked_text, _ = textlib.mask_pii(raw)
        sentiment_in.append(masked_clean or masked_text)
        abuse_in.append(masked_clean)
    return sentiment_in, abuse_in


def _trained_model(task: str, train: Dataset, workdir: Path):
    from .training.cli import train_from_labelled

    model, _ = train_from_labelled(task, train.texts, normalise_labels(task, train.labels), workdir)
    return model


def evaluate_sentiment(data: Dataset, options: EvalOptions) -> dict[str, Any]:
    from .domain import scoring

    labels = normalise_labels("sentiment", data.labels)
    with tempfile.TemporaryDirectory() as tmp:
        model = _trained_model("sentiment", options.train, Path(tmp)) if options.train else None
        inputs, _ = production_texts(data.texts)
        pred = [label for label, _ in scoring.sentiment_batch(inputs, model=model)]
        version = model.version if model else scoring.model_version("sentiment")
    out = {"task": "sentiment", "model": version, **sentiment_metrics(labels, pred, ["negative", "neutral", "positive"])}
    return out


def evaluate_abuse(data: Dataset, options: EvalOptions) -> dict[str, Any]:
    from .domain import scoring

    labels = normalise_labels("abuse", data.labels)
    with tempfile.TemporaryDirectory() as tmp:
        model = _trained_model("abuse", options.train, Path(tmp)) if options.train else None
        _, inputs = production_texts(data.texts)
        scores = scoring.abuse_batch(inputs, model=model)
        version = model.version if model else scoring.model_version("abuse")
    pred = ["abusive" if s >= scoring.ABUSE_FLAG_THRESHOLD else "not_abusive" for s in scores]
    return {"task": "abuse", "model": version, "threshold": scoring.ABUSE_FLAG_THRESHOLD, **abuse_metrics(labels, pred)}


# ------------------------------------------------------------------ issues: clusters, similar, intent
def production_vectors(texts: list[str]) -> np.ndarray:
    """Embeddings exactly as Enrich makes them: clean, mask PII, the default embedder."""
    from .domain import scoring
    from .domain import text as textlib

    return scoring.embed([textlib.mask_pii(textlib.clean_text(t))[0] for t in texts])


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def clustering_metrics(y_true: list[str], y_pred: list[int]) -> dict[str, float]:
    """NMI (arithmetic normalisation, as scikit-learn's default) and adjusted Rand index."""
    true_ids = {c: i for i, c in enumerate(sorted(set(y_true)))}
    pred_ids = {c: i for i, c in enumerate(sorted(set(y_pred)))}
    table = np.zeros((len(true_ids), len(pred_ids)))
    for t, p in zip(y_true, y_pred):
        table[true_ids[t], pred_ids[p]] += 1
    n = table.sum()
    rows, cols = table.sum(axis=1), table.sum(axis=0)
    nz = table > 0
    mi = float((table[nz] / n * np.log(table[nz] * n / np.outer(rows, cols)[nz])).sum())
    h_true, h_pred = _entropy(rows), _entropy(cols)
    nmi = mi / ((h_true + h_pred) / 2) if h_true + h_pred > 0 else 1.0
    pairs = lambda x: (x * (x - 1) / 2).sum()  # noqa: E731
    index, expected_rows, expected_cols = pairs(table), pairs(rows), pairs(cols)
    expected = expected_rows * expected_cols / (n * (n - 1) / 2) if n > 1 else 0.0
    maximum = (expected_rows + expected_cols) / 2
    ari = (index - expected) / (maximum - expected) if maximum != expected else 1.0
    return {"nmi": round(max(nmi, 0.0), 4), "ari": round(float(ari), 4)}


def evaluate_clusters(data: Dataset, options: EvalOptions) -> dict[str, Any]:
    """Cluster the texts as ClusterFunction does (buckets apart, k by the silhouette above the size
    rule unless --k) and compare every ticket's issue or bucket with the labels.

    Also returns what a person needs to judge the issues: `issues` [{label, size, top_companies,
    examples}], `buckets` {name: size}, `outlier_share` (clustered tickets that fit no issue well,
    assigned to their nearest issue with a low confidence)."""
    from .domain import clustering, scoring
    from .domain import text as textlib

    cleaned = [textlib.mask_pii(textlib.clean_text(t))[0] for t in data.texts]
    vectors = scoring.embed(cleaned)
    n = len(cleaned)
    corpus = clustering.Corpus(
        ticket_ids=[f"row-{i}" for i in range(n)], texts=cleaned, companies=data.companies or ["unknown"] * n,
        sentiments=["unknown"] * n, abusive=np.zeros(n, dtype=bool), days=["2000-01-01"] * n, vectors=vectors,
        languages=[textlib.detect_language(t) for t in cleaned])
    result = clustering.cluster_corpus(corpus, None, "evaluate", k=options.k,
                                       use_buckets=not options.extra.get("no_buckets"))
    issues = [i for i in result.issues if i.kind == "issue"]
    clustered = [j for j, issue_id in enumerate(result.assigned) if not issue_id.startswith("bucket-")]
    out = {"task": "clusters", "embedding": scoring.EMBEDDING_ID, "n": n, "k": result.k,
           "true_k": len(set(data.labels)), **clustering_metrics(data.labels, result.assigned)}
    if clustered and len(clustered) < n:  # the same score on the tickets not put in a bucket
        out["issues_only"] = clustering_metrics([data.labels[j] for j in clustered], [result.assigned[j] for j in clustered])
    out.update({
        "clustered": result.clustered, "outlier_share": round(result.outlier_share, 4),
        "largest_issue_share": round(max((i.size for i in issues), default=0) / max(result.clustered, 1), 4),
        "buckets": dict(sorted(result.buckets.items(), key=lambda kv: -kv[1])),
        "issues": [{"label": i.label, "size": i.size, "outliers": i.outliers, "top_companies": i.top_companies[:3],
                    "examples": [e["text"][:140] for e in i.examples]} for i in issues],
    })
    return out


def _require_train(task: str, options: EvalOptions) -> Dataset:
    if options.train is None:
        raise EvaluationError(f"{task} needs --train FILE.csv (the texts to search or fit)")
    return options.train


def evaluate_similar(data: Dataset, options: EvalOptions) -> dict[str, Any]:
    """For each text, the label of its most similar train text (cosine of production embeddings)."""
    from .domain import scoring

    train = _require_train("similar", options)
    train_vectors, test_vectors = production_vectors(train.texts), production_vectors(data.texts)
    hits = 0
    for start in range(0, len(test_vectors), 2048):  # bounded memory for big files
        nearest = (test_vectors[start:start + 2048] @ train_vectors.T).argmax(axis=1)
        hits += sum(train.labels[j] == data.labels[start + i] for i, j in enumerate(nearest))
    return {"task": "similar", "embedding": scoring.EMBEDDING_ID, "n": len(data.texts), "train_n": len(train.texts),
            "accuracy_at_1": round(hits / max(len(data.texts), 1), 4)}


def evaluate_intent(data: Dataset, options: EvalOptions) -> dict[str, Any]:
    """Fit the intent classifier on train exactly as `supportlens train intent` does, then score data."""
    from .domain import scoring

    train = _require_train("intent", options)
    with tempfile.TemporaryDirectory() as tmp:
        model = _trained_model("intent", train, Path(tmp))
    predicted, _ = model.predict(production_vectors(data.texts))
    all_classes = sorted(set(model.classes) | set(data.labels))
    metrics = sentiment_metrics(data.labels, predicted, all_classes)
    return {"task": "intent", "embedding": scoring.EMBEDDING_ID, "train_n": len(train.texts),
            "n": metrics["n"], "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "classes": len(model.classes)}


TASKS: dict[str, Callable[[Dataset, EvalOptions], dict[str, Any]]] = {
    "sentiment": evaluate_sentiment,
    "abuse": evaluate_abuse,
    "clusters": evaluate_clusters,
    "similar": evaluate_similar,
    "intent": evaluate_intent,
}


def evaluate(task: str, data: Dataset, options: EvalOptions | None = None) -> dict[str, Any]:
    if task not in TASKS:
        raise EvaluationError(f"unknown task {task!r} (known: {', '.join(sorted(TASKS))})")
    return TASKS[task](data, options or EvalOptions())
