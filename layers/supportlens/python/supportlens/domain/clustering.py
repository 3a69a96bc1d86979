"""Root-cause issues from ticket embeddings: choose k, cluster, label, keep ids stable, trends.

k is chosen by silhouette (cosine) over a range on a sample, with mini-batch k-means so
a million vectors fit a Lambda. Labels are class-based TF-IDF key phrases.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
from sklearn.cluster import MiniBatchKMeans
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.metrics import silhouette_score

from .issues_model import CentroidsModel

MATCH_SIMILARITY = 0.8  # a new centroid this close to an old one is the same issue


@dataclass
class Corpus:
    ticket_ids: list[str]
    texts: list[str]
    companies: list[str]
    sentiments: list[str]
    abusive: np.ndarray
    days: list[str]
    vectors: np.ndarray


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


def choose_k(vectors: np.ndarray, k_range: range, sample: int = 4000, seed: int = 0) -> tuple[int, dict[int, float]]:
    """The k with the best cosine silhouette on a sample (scores returned for the record)."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(vectors), size=min(sample, len(vectors)), replace=False)
    subset = vectors[idx]
    scores: dict[int, float] = {}
    for k in k_range:
        if k >= len(subset):
            break
        labels = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=2048).fit_predict(subset)
        if len(set(labels)) < 2:
            continue
        scores[k] = float(silhouette_score(subset, labels, metric="cosine", sample_size=min(2000, len(subset)), random_state=seed))
    if not scores:
        return 1, scores
    return max(scores, key=scores.get), scores


def key_phrases(texts: list[str], labels: np.ndarray, k: int, top: int = 5) -> list[list[str]]:
    """Class-based TF-IDF: phrases frequent in one cluster and rare across clusters."""
    vectorizer = CountVectorizer(stop_words="english", ngram_range=(1, 2), min_df=2, max_features=50_000,
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
    return [[str(p) for p in vocab[np.argsort(-row)[:top]] if row[vocab.tolist().index(p)] > 0] for row in ctfidf]


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


def build_issues(corpus: Corpus, previous: CentroidsModel | None, version: str, k_max: int = 30, seed: int = 0) -> tuple[list[Issue], CentroidsModel, dict[int, float]]:
    vectors = corpus.vectors.astype(np.float32)
    n = len(vectors)
    k_hi = max(2, min(k_max, n // 20))
    k, scores = choose_k(vectors, range(2, k_hi + 1), seed=seed)
    model = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096).fit(vectors)
    labels = model.labels_
    centroids = model.cluster_centers_ / np.maximum(np.linalg.norm(model.cluster_centers_, axis=1, keepdims=True), 1e-9)
    phrases = key_phrases(corpus.texts, labels, k)
    names = [", ".join(p[:3]) or f"issue {c + 1}" for c, p in enumerate(phrases)]
    ids, is_new = match_ids(centroids.astype(np.float32), previous, names)
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
        if is_new[c] and previous is not None:
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
