"""Fitted scikit-learn objects -> plain model files (model.json, vocab.json, arrays.npz).

scikit-learn is imported by the caller (training only); nothing here unpickles anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..domain.models import FORMAT, TextModel, write_index

DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"


def tfidf_block(name: str, vectorizer: Any) -> tuple[dict[str, Any], list[str], dict[str, np.ndarray]]:
    """A fitted TfidfVectorizer -> (block config, vocabulary list, arrays)."""
    params = vectorizer.get_params()
    for key in ("strip_accents", "preprocessor", "tokenizer"):
        if params.get(key) is not None:
            raise ValueError(f"{name}: TfidfVectorizer({key}={params.get(key)!r}) is not supported")
    if callable(params["analyzer"]) or params["analyzer"] not in ("word", "char", "char_wb"):
        raise ValueError(f"{name}: analyzer {params['analyzer']!r} is not supported")
    stop = vectorizer.get_stop_words()
    config = {
        "name": name,
        "analyzer": params["analyzer"],
        "ngram_range": list(params["ngram_range"]),
        "lowercase": bool(params["lowercase"]),
        "token_pattern": params["token_pattern"] or DEFAULT_TOKEN_PATTERN,
        "stop_words": sorted(stop) if stop else None,
        "sublinear_tf": bool(params["sublinear_tf"]),
        "binary": bool(params["binary"]),
        "norm": params["norm"],
    }
    vocab = [None] * len(vectorizer.vocabulary_)
    for term, index in vectorizer.vocabulary_.items():
        vocab[index] = term
    arrays = {f"{name}.idf": np.asarray(vectorizer.idf_, dtype=np.float64)} if params["use_idf"] else {}
    return config, vocab, arrays


def linear_component(
    name: str,
    blocks: list[tuple[str, Any]],
    estimator: Any,
    head: str,
    dense: list[dict[str, Any]] | None = None,
    input: str = "preprocessed",
) -> tuple[dict[str, Any], dict[str, list[str]], dict[str, np.ndarray]]:
    """TF-IDF blocks + a fitted LogisticRegression (head softmax/binary) or
    CalibratedClassifierCV(sigmoid) over linear models (head calibrated)."""
    config: dict[str, Any] = {"name": name, "head": head, "input": input, "features": [], "dense": dense or []}
    vocab: dict[str, list[str]] = {}
    arrays: dict[str, np.ndarray] = {}
    for block_name, vectorizer in blocks:
        block, terms, block_arrays = tfidf_block(block_name, vectorizer)
        config["features"].append(block)
        vocab[block_name] = terms
        arrays.update(block_arrays)
    if head == "calibrated":
        folds = estimator.calibrated_classifiers_
        if any(cc.method != "sigmoid" or len(cc.calibrators) != 1 for cc in folds):
            raise ValueError("only binary sigmoid-calibrated linear models are supported")
        arrays[f"{name}.coef"] = np.vstack([cc.estimator.coef_.reshape(1, -1) for cc in folds]).astype(np.float64)
        arrays[f"{name}.intercept"] = np.array([float(np.ravel(cc.estimator.intercept_)[0]) for cc in folds])
        arrays[f"{name}.cal_a"] = np.array([float(cc.calibrators[0].a_) for cc in folds])
        arrays[f"{name}.cal_b"] = np.array([float(cc.calibrators[0].b_) for cc in folds])
    else:
        arrays[f"{name}.coef"] = np.asarray(estimator.coef_, dtype=np.float64)
        arrays[f"{name}.intercept"] = np.asarray(estimator.intercept_, dtype=np.float64).reshape(-1)
    return config, vocab, arrays


def write_model(
    path: Path,
    meta: dict[str, Any],
    components: list[tuple[dict[str, Any], dict[str, list[str]], dict[str, np.ndarray]]],
) -> TextModel:
    """Write a model directory and load it back (so a broken export fails here, not in production)."""
    path.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, **meta, "components": [c for c, _, _ in components]}
    vocab: dict[str, list[str]] = {}
    arrays: dict[str, np.ndarray] = {}
    for _, v, a in components:
        if set(v) & set(vocab) or set(a) & set(arrays):
            raise ValueError("component and block names must be unique")
        vocab.update(v)
        arrays.update(a)
    (path / "model.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (path / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    np.savez_compressed(path / "arrays.npz", **arrays)
    return write_index(path)  # loads it back, with the n-gram indexes stored for fast loading
