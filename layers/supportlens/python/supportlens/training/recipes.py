"""Training recipes for the sentiment, abuse and intent models (scikit-learn is imported only in this package).

Every choice (hyper-parameters, class biases, stacking weights, the flag threshold) is made on
the validation split; the test split is only measured. Seeds are fixed, so `make models`
reproduces the shipped files.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from scipy import sparse

from ..domain import models
from ..domain.intent_model import IntentModel
from ..evaluation import abuse_metrics, sentiment_metrics
from .data import Labelled
from .export import linear_component, write_model

SEED = 20261123
SENTIMENT_CLASSES = ["negative", "neutral", "positive"]
ABUSE_CLASSES = ["not_abusive", "abusive"]
SENTIMENT_OPTIONS = {"clean": True, "negation": True}
ABUSE_OPTIONS = {"clean": True, "negation": False}
WORD_TOKENS = r"(?u)\b\w[\w']*\b"  # keeps "don't", "neg_good"


# ------------------------------------------------------------------ features
def _vectorizers(word_ngrams: tuple[int, int]) -> list[tuple[str, TfidfVectorizer]]:
    return [
        ("word", TfidfVectorizer(ngram_range=word_ngrams, sublinear_tf=True, min_df=2, token_pattern=WORD_TOKENS, dtype=np.float64)),
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2, dtype=np.float64)),
    ]


def _matrix(blocks, prepared: list[str], cleaned: list[str], dense: list[dict[str, Any]]):
    parts = [v.transform(prepared) for _, v in blocks]
    for d in dense:
        parts.append(sparse.csr_matrix(models.DENSE_FEATURES[d["kind"]][1](cleaned) * d["scale"]))
    return sparse.hstack(parts).tocsr()


def _prepare(texts: list[str], options: dict[str, Any]) -> tuple[list[str], list[str]]:
    cleaned = [models.clean(t, options) for t in texts]
    return [models.mark_negation(t, options) for t in cleaned], cleaned


# ------------------------------------------------------------------ sentiment
def _fit_sentiment(data: Labelled, C: float, confidence_power: float, dense: list[dict[str, Any]]):
    prepared, cleaned = _prepare(data.texts, SENTIMENT_OPTIONS)
    blocks = _vectorizers((1, 3))
    for _, v in blocks:
        v.fit(prepared)
    X = _matrix(blocks, prepared, cleaned, dense)
    weights = np.asarray(data.weights, dtype=np.float64) ** confidence_power
    clf = LogisticRegression(C=C, class_weight="balanced", max_iter=3000, random_state=SEED)
    clf.fit(X, np.asarray(data.labels), sample_weight=weights)
    return blocks, clf


def _tune_biases(scores: np.ndarray, classes: list[str], labels: list[str]) -> np.ndarray:
    """Per-class offsets on the decision scores (first class fixed at 0) that maximise macro-F1."""
    best, best_f1 = np.zeros(len(classes)), -1.0
    grid = np.round(np.arange(-1.0, 1.01, 0.1), 2)
    for offsets in itertools.product(grid, repeat=len(classes) - 1):
        bias = np.array([0.0, *offsets])
        pred = [classes[i] for i in (scores + bias).argmax(axis=1)]
        f1 = sentiment_metrics(labels, pred, classes)["macro_f1"]
        if f1 > best_f1 + 1e-9:
            best, best_f1 = bias, f1
    return best


def train_sentiment(
    train: Labelled,
    validation: Labelled,
    out_dir: Path,
    *,
    C: float = 3.0,
    confidence_power: float = 2.0,
    vader: bool = True,
    refit: bool = True,
    meta: dict[str, Any] | None = None,
) -> tuple[models.TextModel, dict[str, Any]]:
    """TF-IDF (word 1-3-grams with negation marking + char_wb 2-5-grams) + VADER scores ->
    multinomial logistic regression (balanced classes, samples weighted by annotator confidence);
    class biases tuned on validation; then refit on train + validation with the same settings."""
    classes = sorted(set(train.labels))
    if classes != SENTIMENT_CLASSES:
        raise ValueError(f"sentiment labels must be {SENTIMENT_CLASSES}, got {classes}")
    dense = [{"kind": "vader", "scale": 1.0}] if vader else []
    blocks, clf = _fit_sentiment(train, C, confidence_power, dense)
    v_prep, v_clean = _prepare(validation.texts, SENTIMENT_OPTIONS)
    scores = clf.decision_function(_matrix(blocks, v_prep, v_clean, dense))
    before = sentiment_metrics(validation.labels, [classes[i] for i in scores.argmax(1)], classes)
    bias = _tune_biases(scores, classes, validation.labels)
    after = sentiment_metrics(validation.labels, [classes[i] for i in (scores + bias).argmax(1)], classes)
    if refit:
        both = Labelled(train.texts + validation.texts, train.labels + validation.labels, train.weights + validation.weights)
        blocks, clf = _fit_sentiment(both, C, confidence_power, dense)
    clf.intercept_ = clf.intercept_ + bias
    info = {
        "C": C, "confidence_power": confidence_power, "class_bias": bias.tolist(), "refit_on_train_and_validation": refit,
        "train_rows": len(train), "validation_rows": len(validation),
        "validation_macro_f1_before_bias": before["macro_f1"], "validation": after,
    }
    model = write_model(
        out_dir,
        {**(meta or {}), "task": "sentiment", "name": "sentiment", "classes": classes, "preprocess": SENTIMENT_OPTIONS, "training": info},
        [linear_component("sentiment_lr", blocks, clf, "softmax", dense=dense)],
    )
    return model, info


# ------------------------------------------------------------------ abuse
def profanity_check_component() -> tuple[dict[str, Any], dict[str, list[str]], dict[str, np.ndarray]] | None:
    """alt-profanity-check's shipped model (MIT; TF-IDF + calibrated LinearSVC), exported to arrays."""
    try:
        import profanity_check.profanity_check as pc  # noqa: PLC0415 - optional, training only
    except ImportError:
        return None
    return linear_component("profanity_check", [("pc_word", pc.vectorizer)], pc.model, "calibrated", input="clean")


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def choose_threshold(p: np.ndarray, labels: list[str], support: np.ndarray, max_flag_rate: float, f1_tolerance: float = 0.005) -> float:
    """The flag threshold, chosen on validation: among thresholds whose flag rate on support-domain
    texts stays within max_flag_rate (support = mask of ordinary support texts; an empty mask means
    no constraint), the lowest one whose abusive-class F1 is within f1_tolerance of the best. The
    lowest such threshold spends the flag budget on recall (profanity-laden abuse outside the
    training distribution, e.g. OLID-style tweets) at a negligible F1 cost on the training styles."""
    y = np.array([label == "abusive" for label in labels])
    candidates: list[tuple[float, float]] = []
    for t in np.round(np.arange(0.05, 0.96, 0.01), 2):
        flagged = p >= t
        if support.any() and flagged[support].mean() > max_flag_rate:
            continue
        tp = float((flagged & y).sum())
        candidates.append((float(t), 2 * tp / max(float(flagged.sum() + y.sum()), 1.0)))
    if not candidates:
        return 0.5
    best = max(f1 for _, f1 in candidates)
    return min(t for t, f1 in candidates if f1 >= best - f1_tolerance)


def train_abuse(
    train: Labelled,
    validation: Labelled,
    out_dir: Path,
    *,
    C: float = 3.0,
    use_profanity_check: bool = True,
    support_sources: tuple[str, ...] = ("airline", "twcs"),
    max_flag_rate: float = 0.02,
    meta: dict[str, Any] | None = None,
) -> tuple[models.TextModel, dict[str, Any]]:
    """TF-IDF (word 1-2 + char_wb 2-5) -> logistic regression on abusive vs not (support-domain tweets
    as negatives), optionally stacked with alt-profanity-check's model (stacking weights fitted on
    validation); flag threshold chosen on validation under a support-domain flag-rate budget."""
    labels = sorted(set(train.labels))
    if labels != sorted(ABUSE_CLASSES):
        raise ValueError(f"abuse labels must be {ABUSE_CLASSES}, got {labels}")
    prepared, _ = _prepare(train.texts, ABUSE_OPTIONS)
    blocks = _vectorizers((1, 2))
    for _, v in blocks:
        v.fit(prepared)
    y = np.array([label == "abusive" for label in train.labels], dtype=int)
    clf = LogisticRegression(C=C, max_iter=3000, random_state=SEED).fit(_matrix(blocks, prepared, [], []), y)
    components = [linear_component("abuse_lr", blocks, clf, "binary")]
    pc = profanity_check_component() if use_profanity_check else None
    info: dict[str, Any] = {"C": C, "train_rows": len(train), "validation_rows": len(validation), "profanity_check": pc is not None}
    meta = {**(meta or {}), "task": "abuse", "name": "abuse", "classes": ABUSE_CLASSES, "preprocess": ABUSE_OPTIONS}
    # Write the plain model first, score validation through the numpy runtime, then add the stack.
    single = write_model(out_dir, {**meta, "threshold": 0.5}, components)
    p_val = single.components[0].proba(_prepare(validation.texts, ABUSE_OPTIONS)[0])
    if pc is not None:
        components.append(pc)
        pc_model = models.TextModel({"format": models.FORMAT, "task": "abuse", "classes": ABUSE_CLASSES, "preprocess": ABUSE_OPTIONS,
                                     "components": [pc[0]]}, pc[1], pc[2])
        stack_x = np.column_stack([_logit(p_val), _logit(pc_model.proba(validation.texts))])
        y_val = np.array([label == "abusive" for label in validation.labels], dtype=int)
        stacker = LogisticRegression(C=1.0, random_state=SEED).fit(stack_x, y_val)
        meta["combine"] = {"kind": "stacked_logit", "weights": stacker.coef_[0].tolist(), "bias": float(stacker.intercept_[0])}
        p_val = stacker.predict_proba(stack_x)[:, 1]
    support = np.array([s in support_sources for s in validation.sources], dtype=bool)
    threshold = choose_threshold(p_val, validation.labels, support, max_flag_rate)
    info["max_support_flag_rate"] = max_flag_rate
    pred = ["abusive" if v >= threshold else "not_abusive" for v in p_val]
    info["validation"] = abuse_metrics(validation.labels, pred)
    if support.any():
        info["validation_support_flag_rate"] = round(float((p_val[support] >= threshold).mean()), 4)
    model = write_model(out_dir, {**meta, "threshold": threshold, "training": info}, components)
    return model, info


# ------------------------------------------------------------------ intent
INTENT_C = 10.0  # Banking77 80/20: C=1 0.887, C=10 0.913, C=30 0.911 accuracy (static embedding)


def train_intent(
    train: Labelled,
    validation: Labelled,
    out_dir: Path,
    embed: Any,
    embedding_id: str,
    meta: dict[str, Any] | None = None,
    C: float = INTENT_C,
) -> tuple[IntentModel, dict[str, Any]]:
    """Softmax logistic regression on production embeddings (`embed`: texts -> unit vectors).

    Measured on `validation`, then refitted on train + validation for the shipped arrays.
    """
    if len(set(train.labels)) < 2:
        raise ValueError("intent needs at least two different labels")
    vectors_train, vectors_val = embed(train.texts), embed(validation.texts)

    def fit(x: np.ndarray, y: list[str]) -> LogisticRegression:
        return LogisticRegression(C=C, max_iter=3000, random_state=SEED).fit(x, y)

    classifier = fit(vectors_train, train.labels)
    predicted = list(classifier.predict(vectors_val)) if len(validation) else []
    scores = sentiment_metrics(validation.labels, predicted, sorted(set(classifier.classes_) | set(validation.labels))) if predicted else {}
    info = {"C": C, "train_rows": len(train), "validation_rows": len(validation),
            "validation": {k: scores[k] for k in ("accuracy", "macro_f1")} if scores else None}
    final = fit(np.vstack([vectors_train, vectors_val]) if len(validation) else vectors_train, train.labels + validation.labels)
    model = IntentModel(str((meta or {}).get("version", "unknown")), [str(c) for c in final.classes_],
                        final.coef_, final.intercept_, embedding_id, {**(meta or {}), "training": info})
    model.save(out_dir)
    return model, info
