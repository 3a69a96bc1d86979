"""Unit tests for supportlens.domain.models (numpy runtime), supportlens.training.export and the shipped models."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from supportlens.domain import models, scoring
from supportlens.domain.models import ModelError, TextModel, TfidfBlock
from supportlens.training.export import linear_component, tfidf_block, write_model
from tests.conftest import SAMPLE, SHARED_DATA

SHIPPED = ("sentiment", "abuse")


@pytest.fixture(scope="module")
def texts() -> list[str]:
    with SAMPLE.open(newline="", encoding="utf-8") as fh:
        rows = [r["text"] for r in csv.DictReader(fh)]
    assert len(rows) >= 1500
    return rows


@pytest.fixture(scope="module")
def vader_labels(texts) -> list[str]:
    return [scoring.vader_label(t) for t in texts]


# --------------------------------------------------------------------------- vectorizer parity


VECTORIZERS = {
    "word_stop_words": dict(stop_words="english"),
    "word_1_3_custom_pattern": dict(ngram_range=(1, 3), sublinear_tf=True, token_pattern=r"(?u)\b\w[\w']*\b", min_df=2),
    "word_bigrams_only_binary_l1": dict(ngram_range=(2, 2), binary=True, norm="l1", lowercase=False),
    "char_1_4": dict(analyzer="char", ngram_range=(1, 4), min_df=3),
    "char_wb_2_5_sublinear": dict(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2),
    "char_wb_no_idf_no_norm": dict(analyzer="char_wb", ngram_range=(3, 3), use_idf=False, norm=None),
}


@pytest.mark.parametrize("name", sorted(VECTORIZERS))
def test_numpy_tfidf_reproduces_sklearn_transform(name, texts):
    fit_texts, check_texts = texts[:900], texts[900:1900]
    assert len(check_texts) == 1000
    vec = TfidfVectorizer(**VECTORIZERS[name]).fit(fit_texts)
    config, vocab, arrays = tfidf_block("b", vec)
    block = TfidfBlock(config, vocab, arrays.get("b.idf"))
    ours = block.transform(check_texts)
    theirs = vec.transform(check_texts).tocsr()
    theirs.sort_indices()
    mine = sparse.csr_matrix((ours.data, ours.indices, ours.indptr), shape=theirs.shape)
    mine.sort_indices()
    assert (mine != 0).sum() == theirs.nnz
    np.testing.assert_array_equal(mine.indptr, theirs.indptr)
    np.testing.assert_array_equal(mine.indices, theirs.indices)
    np.testing.assert_allclose(mine.data, theirs.data, rtol=1e-12, atol=1e-14)


def test_empty_and_unknown_texts_give_empty_rows(texts):
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)).fit(texts[:200])
    config, vocab, arrays = tfidf_block("b", vec)
    block = TfidfBlock(config, vocab, arrays["b.idf"])
    x = block.transform(["", "   ", "\u4e2d\u6587"])
    assert x.toarray().shape == (3, len(vocab))
    assert not x.toarray().any()


# --------------------------------------------------------------------------- pipeline parity


def _model_dir(tmp_path, name, components, classes, **meta):
    return write_model(tmp_path / name, {"task": name, "name": name, "classes": classes, "version": "test",
                                         "preprocess": {"clean": False}, **meta}, components)


def test_softmax_pipeline_matches_sklearn_on_1000_texts(tmp_path, texts, vader_labels):
    train, check = texts[:900], texts[900:1900]
    blocks = [("w", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)), ("c", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)))]
    xs = [v.fit_transform(train) for _, v in blocks]
    vader_train = models.vader_features(train)
    clf = LogisticRegression(C=5, max_iter=2000).fit(sparse.hstack(xs + [sparse.csr_matrix(vader_train)]).tocsr(), vader_labels[:900])
    assert list(clf.classes_) == ["negative", "neutral", "positive"]
    model = _model_dir(tmp_path, "s", [linear_component("lr", blocks, clf, "softmax", dense=[{"kind": "vader", "scale": 1.0}])], list(clf.classes_))
    x_check = sparse.hstack([v.transform(check) for _, v in blocks] + [sparse.csr_matrix(models.vader_features(check))]).tocsr()
    assert model.predict(check) == list(clf.predict(x_check))
    np.testing.assert_allclose(model.proba(check), clf.predict_proba(x_check), rtol=1e-9, atol=1e-12)


def test_binary_and_calibrated_pipelines_match_sklearn(tmp_path, texts, vader_labels):
    train, check = texts[:900], texts[900:1900]
    y = np.array([label == "negative" for label in vader_labels], dtype=int)
    vec = TfidfVectorizer(stop_words="english", min_df=2).fit(train)
    x_train, x_check = vec.transform(train), vec.transform(check)
    lr = LogisticRegression(C=2).fit(x_train, y[:900])
    binary = _model_dir(tmp_path, "b", [linear_component("lr", [("w", vec)], lr, "binary")], ["no", "yes"])
    np.testing.assert_allclose(binary.proba(check), lr.predict_proba(x_check)[:, 1], rtol=1e-9, atol=1e-12)
    assert binary.predict(check) == ["yes" if v else "no" for v in lr.predict(x_check)]
    cal = CalibratedClassifierCV(LinearSVC(class_weight="balanced"), method="sigmoid", cv=3).fit(x_train, y[:900])
    calibrated = _model_dir(tmp_path, "c", [linear_component("svc", [("w2", vec)], cal, "calibrated")], ["no", "yes"])
    np.testing.assert_allclose(calibrated.proba(check), cal.predict_proba(x_check)[:, 1], rtol=1e-9, atol=1e-12)


def test_profanity_check_export_matches_the_package(texts):
    pc = pytest.importorskip("profanity_check.profanity_check")
    from supportlens.training.recipes import ABUSE_CLASSES, profanity_check_component

    config, vocab, arrays = profanity_check_component()
    model = TextModel({"format": models.FORMAT, "task": "abuse", "classes": ABUSE_CLASSES, "preprocess": {"clean": False},
                       "components": [config]}, vocab, arrays)
    check = texts[:1000] + ["you are a fucking idiot", "shit service", "have a nice day"]
    np.testing.assert_allclose(model.proba(check), pc.predict_prob(check), rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- loading safely


def test_shipped_models_are_plain_files_loaded_without_pickle():
    total = 0
    for task in SHIPPED:
        path = models.shipped_model_path(task)
        names = {p.name for p in path.iterdir()}
        assert {"model.json", "vocab.json", "arrays.npz", f"MODEL_CARD_{task}.md"} <= names
        assert not any(n.endswith((".pkl", ".pickle", ".joblib")) for n in names)
        with np.load(path / "arrays.npz", allow_pickle=False) as npz:
            assert all(npz[k].dtype != object for k in npz.files)
        model = TextModel.load(path)
        assert model.task == task and model.version == "2026-11-23"
        total += sum(p.stat().st_size for p in path.iterdir())
    assert total < 10_000_000


def test_object_arrays_are_refused(tmp_path, texts):
    vec = TfidfVectorizer().fit(texts[:50])
    lr = LogisticRegression().fit(vec.transform(texts[:50]), [i % 2 for i in range(50)])
    model = _model_dir(tmp_path, "m", [linear_component("lr", [("w", vec)], lr, "binary")], ["a", "b"])
    arrays = dict(np.load(model.path / "arrays.npz"))
    arrays["evil"] = np.array([{"x": 1}], dtype=object)
    np.savez(model.path / "arrays.npz", **arrays)
    with pytest.raises(ModelError):
        TextModel.load(model.path)


def test_inconsistent_model_files_are_refused(tmp_path, texts):
    vec = TfidfVectorizer().fit(texts[:50])
    lr = LogisticRegression().fit(vec.transform(texts[:50]), [i % 2 for i in range(50)])
    model = _model_dir(tmp_path, "m", [linear_component("lr", [("w", vec)], lr, "binary")], ["a", "b"])
    vocab = json.loads((model.path / "vocab.json").read_text())
    vocab["w"] = vocab["w"][:-1]
    (model.path / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(ModelError, match="idf has shape"):
        TextModel.load(model.path)
    meta = json.loads((model.path / "model.json").read_text())
    (model.path / "model.json").write_text(json.dumps({**meta, "format": 99}))
    with pytest.raises(ModelError, match="format"):
        TextModel.load(model.path)
    with pytest.raises(ModelError):
        TextModel.load(tmp_path / "missing")


# --------------------------------------------------------------------------- shipped models on obvious texts


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Thank you so much, the crew was wonderful and the flight was great!", "positive"),
        ("Worst airline ever. Lost my bag, nobody cares and I have been on hold for 3 hours", "negative"),
        ("What time does the flight to Denver leave tomorrow?", "neutral"),
        ("not happy at all, my refund still has not arrived", "negative"),
    ],
)
def test_sentiment_obvious_texts(text, label):
    got, score = scoring.sentiment(text)
    assert got == label
    assert -1.0 <= score <= 1.0
    if label != "neutral":
        assert (score > 0) == (label == "positive")


def test_sentiment_batch_equals_single_calls():
    texts = ["great service, thanks", "terrible, cancelled again", "", "!!!", "where is my parcel"]
    batch = scoring.sentiment_batch(texts)
    assert batch == [scoring.sentiment(t) for t in texts]
    assert batch[2] == ("neutral", 0.0) and batch[3] == ("neutral", 0.0)


@pytest.mark.parametrize(
    "text",
    ["you are a fucking idiot", "shut up you stupid bitch", "go to hell you worthless piece of shit"],
)
def test_abuse_flags_insults(text):
    assert scoring.abuse_score(text) >= scoring.ABUSE_FLAG_THRESHOLD


@pytest.mark.parametrize(
    "text",
    [
        "Could you please help me reset my password? Thanks",
        "my flight was delayed 3 hours and nobody told us anything",
        "the app keeps crashing when I open my account page",
        "Cancelled Flightled again, this is ridiculous",
    ],
)
def test_abuse_does_not_flag_ordinary_complaints(text):
    assert scoring.abuse_score(text) < scoring.ABUSE_FLAG_THRESHOLD


def test_abuse_batch_equals_single_calls_and_threat_rule():
    texts = ["you moron", "hello there", "I will kill you", ""]
    batch = scoring.abuse_batch(texts)
    assert batch == [scoring.abuse_score(t) for t in texts]
    assert batch[2] >= 0.9 and batch[3] == 0.0
    assert all(0.0 <= s <= 1.0 for s in batch)


def test_flag_scale_is_monotone_and_anchored():
    p = np.linspace(0, 1, 101)
    s = scoring._flag_scale(p, 0.3)
    assert np.all(np.diff(s) >= 0)
    assert s[0] == 0.0 and s[-1] == 1.0
    assert scoring._flag_scale(np.array([0.3]), 0.3)[0] == pytest.approx(scoring.ABUSE_FLAG_THRESHOLD)


# --------------------------------------------------------------------------- held-out quality (shared data)


@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED_DATA.exists(), reason="needs ../shared/data")
def test_shipped_models_meet_targets_on_held_out_test_split():
    from supportlens import evaluation
    from supportlens.training import data as datasets

    airline = datasets.airline_sentiment(SHARED_DATA).subset("test")
    assert len(airline) > 1500
    inputs, _ = evaluation.production_texts(airline.texts)
    pred = [label for label, _ in scoring.sentiment_batch(inputs)]
    sentiment = evaluation.sentiment_metrics(airline.labels, pred, ["negative", "neutral", "positive"])
    assert sentiment["macro_f1"] >= SENTIMENT_MACRO_F1_FLOOR, sentiment

    abuse = datasets.abuse(SHARED_DATA).subset("test")
    results = {}
    for source in ("davidson", "airline", "twcs"):
        part = abuse.subset("test", source)
        _, inputs = evaluation.production_texts(part.texts)
        flagged = ["abusive" if s >= scoring.ABUSE_FLAG_THRESHOLD else "not_abusive" for s in scoring.abuse_batch(inputs)]
        results[source] = evaluation.abuse_metrics(part.labels, flagged)
    assert results["davidson"]["f1"] >= 0.95, results["davidson"]
    support_n = results["airline"]["n"] + results["twcs"]["n"]
    support_flagged = results["airline"]["flag_rate"] * results["airline"]["n"] + results["twcs"]["flag_rate"] * results["twcs"]["n"]
    assert support_flagged / support_n <= 0.03, results


# The target is 0.80; the shipped linear model measures 0.777 on this split (VADER 0.52,
# the earlier TF-IDF + LR baseline 0.77). The floor guards against regressions below that.
SENTIMENT_MACRO_F1_FLOOR = 0.77


# --------------------------------------------------------------------------- VADER features, faster


VADER_CASES = [
    "The food was good but the service was horrible", "kind of good, sort of bad", "not bad at all", "no good",
    "no problem", "never so happy", "without doubt the best", "at least it works", "the least helpful agent",
    "I am SO ANGRY with you", "VERY good service", "GREAT!!!", "why??? why????", "I don't like it", "isn't it great",
    "nor good nor bad", "no or bad", "the bomb", "cut the mustard", "yeah right", "this is not the best but ok",
    "😡 worst 👍 best", "hate hate hate hate", ":) :( :D", "", "   ", "!!!", "it's kind", "kind of",
]


def test_fast_vader_gives_vaders_scores():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    reference, fast = SentimentIntensityAnalyzer(), models._vader()
    assert type(fast) is not SentimentIntensityAnalyzer
    for value in VADER_CASES:
        assert fast.polarity_scores(value) == reference.polarity_scores(value), value


@pytest.mark.shared_data
def test_fast_vader_gives_vaders_scores_on_the_shared_corpora():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from supportlens.domain import text as textlib
    from tests.conftest import SHARED_TEXT_COLUMNS, shared_texts

    rows = shared_texts(4000, SHARED_TEXT_COLUMNS[:3])
    texts = rows + [textlib.clean_text(r) for r in rows]
    reference, fast = SentimentIntensityAnalyzer(), models._vader()
    differ = [t for t in texts if fast.polarity_scores(t) != reference.polarity_scores(t)]
    assert len(texts) > 20_000 and not differ, differ[:3]


_VADER_WORDS = ["good", "bad", "GOOD", "Bad", "no", "not", "never", "so", "this", "but", "BUT", "kind", "of", "very",
                "VERY", "least", "at", "without", "doubt", "or", "nor", "the", "bomb", "isn't", "hate", "love", "ok",
                "extremely", "barely", "cut", "mustard", "yeah", "right", ":)", ":(", "!!", "?", "??", "'good'", "(bad)",
                "wifi", "flight", "delayed", "", "😀", "\u00a0", "n't", "HATE", "kinda", "sort"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_VADER_WORDS), st.text(max_size=6)), max_size=14),
       st.sampled_from([" ", "  ", "\n", ", ", "! "]))
def test_fast_vader_gives_vaders_scores_on_generated_texts(words, separator):
    text = separator.join(words)
    assert models._vader().polarity_scores(text) == _REFERENCE_VADER.polarity_scores(text)


def _reference_vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


_REFERENCE_VADER = _reference_vader()
