"""Root-cause issues from ticket embeddings: choose k, cluster, label, keep ids stable, trends.

k is chosen by the cosine silhouette over a geometric grid of candidate k on a sample
(about a dozen fits of a few thousand vectors, whatever the corpus size); the final model is
k-means on the whole window (mini-batch above FULL_KMEANS_MAX vectors so a million fit a
Lambda). Labels are class-based TF-IDF key phrases. Issue ids are matched to the previous
model's (stable across runs) and fresh ids are derived from the centroid itself, so a re-run
on the same data writes the same issues.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from datetime import date, timedelta

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer
from sklearn.metrics import silhouette_score

from .issues_model import CentroidsModel

MATCH_SIMILARITY = 0.8  # a new centroid this close to an old one is the same issue
K_MAX = 60  # upper end of the k grid (also capped at n / MIN_PER_ISSUE)
MIN_PER_ISSUE = 20
K_CANDIDATES = 12  # k values tried (geometric grid from 2 to the cap)
SILHOUETTE_SAMPLE = 3000
FULL_KMEANS_MAX = 60_000  # above this, mini-batch k-means
# Words every support message uses: they make labels like "it's, did, help" instead of "refund, card".
LABEL_STOP_WORDS = sorted(ENGLISH_STOP_WORDS | {
    "please", "pls", "plz", "thanks", "thank", "thx", "hi", "hello", "hey", "help", "need", "want", "just", "got", "get",
    "did", "does", "doesn't", "don't", "didn't", "can't", "won't", "isn't", "hasn't", "haven't", "wasn't", "aren't",
    "i'm", "i've", "i'll", "i'd", "it's", "that's", "there's", "you're", "we're", "they're", "let's", "what's",
    "im", "ive", "dont", "cant", "didnt", "doesnt", "wont", "isnt", "think", "know", "like", "really", "still", "yes",
    "ok", "okay", "going", "way", "today", "make", "trying", "tried", "able", "guys", "ur",
})


@dataclass
class Corpus:
    ticket_ids: list[str]
    texts: list[str]
    companies: list[str]
    sentiments: list[str]
    abusive: np.ndarray
    days: list[str]
    vectors: np.ndarray
    created: list[str] = field(default_factory=list)  # ISO creation times ("" when unknown)
    replies: dict[str, Any] = field(default_factory=dict)  # customer ticket id -> first company reply (Assist)


@dataclass
class Issue:
    issue_id: str
    label: str
    size: int
    top_phrases: list[str]
    examples: list[dict[str, str]]
    sentiment_mix: dict[str, int]
    abuse_rate: float
    top_companies: list[dict[str, object]]
    daily_counts: dict[str, int]
    growth: float
    emerging: bool
    emerging_reason: str | None
    is_new: bool
    centroid: np.ndarray = field(repr=False)

    def to_item(self, version: str, updated_at: str) -> dict[str, object]:
        return {
            "issue_id": self.issue_id, "label": self.label, "size": self.size, "top_phrases": self.top_phrases,
            "examples": self.examples, "sentiment_mix": self.sentiment_mix, "abuse_rate": round(self.abuse_rate, 4),
            "top_companies": self.top_companies, "daily_counts": self.daily_counts, "growth": round(self.growth, 3),
            "emerging": self.emerging, "emerging_reason": self.emerging_reason, "is_new": self.is_new,
            "model_version": version, "updated_at": updated_at, "status": "active",
        }


def candidate_ks(k_max: int, count: int = K_CANDIDATES) -> list[int]:
    """A geometric grid from 2 to k_max: fine where k is small, coarse where one more issue matters less."""
    if k_max < 2:
        return []
    return sorted({int(round(k)) for k in np.geomspace(2, k_max, num=min(count, k_max - 1))})


def choose_k(vectors: np.ndarray, k_range: "range | list[int]", sample: int = SILHOUETTE_SAMPLE, seed: int = 0) -> tuple[int, dict[int, float]]:
    """The k with the best cosine silhouette on a sample (scores returned for the record)."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(vectors), size=min(sample, len(vectors)), replace=False)
    subset = vectors[idx]
    scores: dict[int, float] = {}
    for k in k_range:
        if k >= len(subset):
            break
        labels = KMeans(n_clusters=k, random_state=seed, n_init=1).fit_predict(subset)
        if len(set(labels)) < 2:
            continue
        scores[k] = float(silhouette_score(subset, labels, metric="cosine", random_state=seed))
    if not scores:
        return 1, scores
    return max(scores, key=scores.get), scores


def key_phrases(texts: list[str], labels: np.ndarray, k: int, top: int = 5) -> list[list[str]]:
    """Class-based TF-IDF: phrases frequent in one cluster and rare across clusters."""
    vectorizer = CountVectorizer(stop_words=LABEL_STOP_WORDS, ngram_range=(1, 2), min_df=2, max_features=50_000,
                                 token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z']+\b")
    try:
        counts = vectorizer.fit_transform(texts)
    except ValueError:  # empty vocabulary
        return [[] for _ in range(k)]
    vocab = np.array(vectorizer.get_feature_names_out())
    per_class = np.vstack([np.asarray(counts[labels == c].sum(axis=0)).ravel() for c in range(k)])
    tf = per_class / np.maximum(per_class.sum(axis=1, keepdims=True), 1)
    avg_words = per_class.sum() / k
    idf = np.log(1 + avg_words / np.maximum(per_class.sum(axis=0), 1))
    ctfidf = tf * idf
    phrases = []
    for row in ctfidf:
        chosen: list[str] = []
        for j in np.argsort(-row)[: top * 4]:
            if row[j] <= 0 or len(chosen) == top:
                break
            phrase = str(vocab[j])
            # "refund" adds nothing next to "refund request", and vice versa: keep the better-scored one.
            if any(phrase in c.split() or c in phrase.split() for c in chosen):
                continue
            chosen.append(phrase)
        phrases.append(chosen)
    return phrases


def match_ids(new: np.ndarray, old: CentroidsModel | None, labels: list[str]) -> tuple[list[str], list[bool]]:
    """Reuse an old issue id when a new centroid is the same issue (greedy by similarity)."""
    ids: list[str | None] = [None] * len(new)
    if old is not None and len(old.centroids) and old.centroids.shape[1] == new.shape[1]:
        sims = new @ old.centroids.T
        taken: set[int] = set()
        for flat in np.argsort(-sims, axis=None):
            i, j = divmod(int(flat), sims.shape[1])
            if sims[i, j] < MATCH_SIMILARITY:
                break
            if ids[i] is None and j not in taken:
                ids[i] = old.issue_ids[j]
                taken.add(j)
    is_new = [i is None for i in ids]
    for i, value in enumerate(ids):
        if value is None:
            digest = hashlib.sha256(new[i].tobytes()).hexdigest()[:10]
            ids[i] = f"issue-{digest}"
    return [str(i) for i in ids], is_new


def trend(daily: dict[str, int], today: date, recent_days: int = 3, baseline_days: int = 14) -> tuple[float, bool, str | None]:
    """(growth, emerging, reason): recent daily rate against the issue's own baseline."""
    recent = sum(daily.get((today - timedelta(d)).isoformat(), 0) for d in range(recent_days)) / recent_days
    base_days = [(today - timedelta(d)).isoformat() for d in range(recent_days, recent_days + baseline_days)]
    baseline = sum(daily.get(d, 0) for d in base_days) / baseline_days
    growth = (recent - baseline) / baseline if baseline else (float("inf") if recent else 0.0)
    if recent * recent_days >= 5 and (baseline == 0 or recent >= 2 * baseline):
        why = f"{recent:.1f}/day in the last {recent_days} days vs {baseline:.1f}/day before"
        return (growth if np.isfinite(growth) else 99.0), True, why
    return (growth if np.isfinite(growth) else 99.0), False, None


def fit_clusters(vectors: np.ndarray, k: int | None = None, k_max: int = K_MAX, seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray, int, dict[int, float]]:
    """(labels, unit centroids, k, silhouette by k): k chosen by silhouette unless given."""
    scores: dict[int, float] = {}
    if k is None:
        k_hi = max(2, min(k_max, len(vectors) // MIN_PER_ISSUE))
        k, scores = choose_k(vectors, candidate_ks(k_hi), seed=seed)
    if len(vectors) <= FULL_KMEANS_MAX:
        model = KMeans(n_clusters=k, random_state=seed, n_init=2).fit(vectors)
    else:
        model = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096).fit(vectors)
    centroids = model.cluster_centers_ / np.maximum(np.linalg.norm(model.cluster_centers_, axis=1, keepdims=True), 1e-9)
    return model.labels_, centroids, k, scores


def build_issues(corpus: Corpus, previous: CentroidsModel | None, version: str, k_max: int = K_MAX, seed: int = 0,
                 baseline: CentroidsModel | None = None) -> tuple[list[Issue], CentroidsModel, dict[int, float]]:
    """Cluster the corpus into issues. Ids are matched to `previous` (the latest model); an issue is
    *new* when its id is not in `baseline` (the model before today's runs; default `previous`), so
    re-running on the same day gives the same answer."""
    vectors = np.asarray(corpus.vectors, dtype=np.float32)  # no copy when already float32 (1M x 256 = 1 GB)
    labels, centroids, k, scores = fit_clusters(vectors, k_max=k_max, seed=seed)
    phrases = key_phrases(corpus.texts, labels, k)
    names = [", ".join(p[:3]) or f"issue {c + 1}" for c, p in enumerate(phrases)]
    ids, is_new = match_ids(centroids.astype(np.float32), previous, names)
    reference = baseline if baseline is not None else previous
    if baseline is not None:
        known = set(baseline.issue_ids)
        is_new = [i not in known for i in ids]
    latest_day = date.fromisoformat(max(corpus.days))
    issues = []
    for c in range(k):
        members = np.flatnonzero(labels == c)
        if not len(members):
            continue
        sims = vectors[members] @ centroids[c]
        nearest = members[np.argsort(-sims)[:3]]
        daily = Counter(corpus.days[i] for i in members)
        growth, emerging, reason = trend(dict(daily), latest_day)
        if is_new[c] and reference is not None:
            emerging, reason = True, reason or "a new issue not seen in the previous clustering"
        companies = Counter(corpus.companies[i] for i in members).most_common(5)
        issues.append(Issue(
            issue_id=ids[c], label=names[c], size=int(len(members)), top_phrases=phrases[c],
            examples=[{"ticket_id": corpus.ticket_ids[i], "text": corpus.texts[i][:280]} for i in nearest],
            sentiment_mix=dict(Counter(corpus.sentiments[i] for i in members)),
            abuse_rate=float(corpus.abusive[members].mean()),
            top_companies=[{"company": name, "count": count} for name, count in companies],
            daily_counts=dict(sorted(daily.items())), growth=growth, emerging=emerging,
            emerging_reason=reason, is_new=is_new[c], centroid=centroids[c],
        ))
    issues.sort(key=lambda i: -i.size)
    centroids_model = CentroidsModel(version, [i.issue_id for i in issues], [i.label for i in issues],
                                     np.vstack([i.centroid for i in issues]).astype(np.float32))
    return issues, centroids_model, scores
