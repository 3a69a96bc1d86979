"""The lexical view of flat silhouette curves: when the embedding alone does not separate the tickets
(airline complaints), k-means also reads the window's own vocabulary (TF-IDF -> SVD), while centroids,
merge/split and what Enrich assigns stay in the embedding space; curves with structure are untouched."""

from __future__ import annotations

import numpy as np
import pytest

from supportlens.domain import clustering
from supportlens.domain.clustering import Corpus, cluster_corpus
from supportlens.evaluation import clustering_metrics

TOPICS = {
    "bags": "bag luggage suitcase carousel baggage claim tag belt".split(),
    "delay": "delayed late departure gate hours runway pushback connection".split(),
    "refund": "refund money charged card billing receipt credit statement".split(),
    "seat": "seat legroom upgrade aisle window recline armrest cushion".split(),
}


def topic_corpus(per: int = 100, dim: int = 64, seed: int = 0) -> tuple[Corpus, list[str]]:
    """Texts whose topic only their words tell: the vectors are noise (a flat silhouette curve)."""
    rng = np.random.default_rng(seed)
    texts, truth = [], []
    for name, words in TOPICS.items():
        for _ in range(per):
            picked = " ".join(rng.choice(words, size=3, replace=False))
            texts.append(f"my {picked} is still not sorted out")
            truth.append(name)
    vectors = rng.normal(size=(len(texts), dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    n = len(texts)
    corpus = Corpus([f"t{i}" for i in range(n)], texts, ["unknown"] * n, ["negative"] * n, np.zeros(n, dtype=bool),
                    ["2026-12-01"] * n, vectors, languages=["en"] * n)
    return corpus, truth


def test_a_flat_curve_is_cut_by_the_words_of_the_window():
    corpus, truth = topic_corpus()
    result = cluster_corpus(corpus, None, "v1")
    assert result.scores and not clustering.has_structure(result.scores, clustering.k_floor(len(corpus.texts)))  # flat: the view's path
    assert clustering_metrics(truth, result.assigned)["nmi"] >= 0.6
    # Centroids are the members' mean embedding (what Enrich compares new tickets with), not the view's.
    issue = next(i for i in result.issues if i.kind == "issue")
    members = [j for j, a in enumerate(result.assigned) if a == issue.issue_id]
    mean = corpus.vectors[members].mean(axis=0)
    assert issue.centroid.shape == (corpus.vectors.shape[1],)
    assert np.allclose(issue.centroid, mean / np.linalg.norm(mean), atol=1e-5)


def test_without_the_texts_the_same_vectors_give_noise():
    corpus, truth = topic_corpus()
    labels = clustering.fit_clusters(np.asarray(corpus.vectors))[0]
    assert clustering_metrics(truth, list(labels))["nmi"] < 0.2


def test_a_structured_curve_keeps_the_embedding_alone():
    from tests.unit.test_clustering_k import two_level

    vectors, _ = two_level(6, 2, 40, theme_spread=0.4, spread=0.1)
    texts = [f"word{i % 7} other{i % 3} thing" for i in range(len(vectors))]
    with_texts = clustering.fit_clusters(vectors, texts=texts)
    without = clustering.fit_clusters(vectors)
    assert clustering.has_structure(with_texts[3], clustering.k_floor(len(vectors)))
    assert np.array_equal(with_texts[0], without[0])


def test_the_view_is_fitted_on_a_sample_and_labels_every_row_block_by_block(monkeypatch):
    # The million-ticket path, in miniature: TF-IDF/SVD fitted on a sample, mini-batch k-means on a sample,
    # every selected row labelled block by block (never the whole window's view at once).
    monkeypatch.setattr(clustering, "LEXICAL_FIT_SAMPLE", 150)
    monkeypatch.setattr(clustering, "FULL_KMEANS_MAX", 100)
    monkeypatch.setattr(clustering, "FIT_SAMPLE", 200)
    monkeypatch.setattr(clustering, "_BLOCK", 64)
    corpus, truth = topic_corpus(per=150)
    rows = np.arange(0, len(corpus.texts), 2)  # as cluster_corpus passes the non-bucket rows
    view = clustering.LexicalView(corpus.vectors, rows, corpus.texts, seed=0)
    built = []
    real = view.rows_view
    monkeypatch.setattr(view, "rows_view", lambda idx: built.append(len(idx)) or real(idx))
    labels = view.labels(4, seed=0)
    assert len(labels) == len(rows) and max(built) <= 200
    assert clustering_metrics([truth[int(i)] for i in rows], list(labels))["nmi"] >= 0.6
    x = real(np.array([0, 5]))
    assert x.shape[1] == corpus.vectors.shape[1] + view.svd.n_components
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert np.allclose(x[:, :corpus.vectors.shape[1]] * np.sqrt(1 + clustering.LEXICAL_WEIGHT ** 2),
                       corpus.vectors[rows[[0, 5]]], atol=1e-5)


def test_a_window_without_a_vocabulary_falls_back_to_the_embedding():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(60, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = clustering.fit_clusters(vectors, texts=["[PHONE]"] * 60)[0]
    assert len(labels) == 60


@pytest.mark.shared_data
def test_airline_hold_out_complaint_reasons_through_the_production_path():
    # Negative airline tweets with a reason other than "Can't Tell", hash hold-out (sha256(text) % 5 == 0:
    # 1,330 tweets support-static-v2 never saw). Measured 2026-12-02: NMI 0.274 with 13 issues (5 seeds of
    # the clustering 0.273-0.278); the embedding alone gave 0.257 (0.250-0.259). With stemmed view terms
    # (2026-12-02, fifth session): 0.3015 at seed 0 with 14 issues, seeds 0-4 0.280-0.302 (mean 0.287).
    import csv
    import hashlib

    from supportlens import evaluation
    from tests.conftest import shared_file

    with shared_file("airline_sentiment", "train.csv").open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["airline_sentiment"] == "negative" and r["negativereason"]
                and r["negativereason"] != "Can't Tell" and int(hashlib.sha256(r["text"].encode()).hexdigest(), 16) % 5 == 0]
    data = evaluation.Dataset([r["text"] for r in rows], [r["negativereason"] for r in rows], "", [r["airline"] for r in rows])
    out = evaluation.evaluate("clusters", data)
    assert len(rows) == 1330
    assert out["k"] <= 40 and out["nmi"] >= 0.266, (out["k"], out["nmi"])


def test_the_view_reads_inflections_of_a_word_as_one_term():
    # "delayed" / "delays" / "delaying" are one complaint; without the fold the view split them into three terms
    assert {clustering.view_stem(w) for w in ("delay", "delayed", "delays", "delaying")} == {"delay"}
    assert {clustering.view_stem(w) for w in ("bag", "bags")} == {"bag"} and clustering.view_stem("waiting") == "wait"
    assert clustering.view_stem("bus") == "bus" and clustering.view_stem("stopped") == "stop"  # 3 letters kept; doubled consonant
    terms = clustering.view_terms("My bags were delayed again")
    assert terms == ["bag", "delay", "bag delay"]  # stop words out ("my", "were", "again"), then bigrams of what is left
    view = clustering.LexicalView(np.eye(4, dtype=np.float32)[[0, 1, 2, 3] * 5], None,
                                  ["bags delayed", "bag delays", "seat broken", "seats broke"] * 5)
    assert "bag delay" in view.tfidf.vocabulary_ and "bags delayed" not in view.tfidf.vocabulary_


# Measured curves {k: silhouette} (ninth session). Airline: a fold of the 4-fold CV with a sharper fine-tuned table
# (airline head 3x, pull 0.02, dropout 0.3); its best score is 0.132 at k = 2, but at the issue level it is 0.038,
# and the structured path (Ward, k = 20) gave 0.258 where the flat one gives 0.295. Endava: the hold-out with v2.
AIRLINE_CURVE = {2: 0.132, 3: 0.107, 4: 0.114, 5: 0.118, 6: 0.107, 8: 0.081, 11: 0.069, 15: 0.063, 20: 0.038,
                 26: 0.030, 34: 0.031, 46: 0.014, 61: 0.014, 81: 0.009}
ENDAVA_CURVE = {2: 0.116, 3: 0.076, 4: 0.076, 5: 0.079, 7: 0.076, 9: 0.093, 12: 0.105, 15: 0.108, 19: 0.133,
                25: 0.134, 32: 0.149, 41: 0.151, 53: 0.148}


@pytest.mark.parametrize("curve, structured", [(AIRLINE_CURVE, False), (ENDAVA_CURVE, True)])
def test_structure_is_judged_at_the_level_of_issues_not_at_k_2(monkeypatch, curve, structured):
    n = 1200  # size floor 12, as on the airline fold
    assert clustering.k_floor(n) == 12
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(n, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    monkeypatch.setattr(clustering, "choose_k", lambda *a, **kw: (clustering.pick_k(curve, kw["floor"], n), curve))
    paths = []
    real_ward, real_flat = clustering._ward_labels, clustering._flat_labels
    monkeypatch.setattr(clustering, "_ward_labels", lambda *a, **kw: paths.append(("ward", a[2])) or real_ward(*a, **kw))
    monkeypatch.setattr(clustering, "_flat_labels", lambda *a, **kw: paths.append(("flat", a[2])) or real_flat(*a, **kw))
    clustering.fit_clusters(vectors, texts=[f"word{i % 9} other{i % 4} thing" for i in range(n)])
    assert paths == ([("ward", 53)] if structured else [("flat", 12)])
