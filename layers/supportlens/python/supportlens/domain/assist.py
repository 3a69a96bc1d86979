"""Agent assistance: classify a new ticket, find similar past tickets, recommend a reply.

Pure: vectors in, answers out. The Cluster job builds a :class:`SimilarIndex` (past customer
tickets of its window: masked clean texts, issue ids, float16 vectors and, where the thread
has one, the company's first reply) and publishes it next to the centroids model; the Assist
function loads both and answers three questions:

- classify(text)   -> the issue (nearest centroid, the same rule Enrich applies) with its
  cosine similarity and how many of the nearest past tickets agree;
- similar(text, k) -> the k nearest past tickets, each with its issue and the company's reply;
- recommend(text)  -> one reply drawn from the company replies to the most similar tickets:
  candidates are scored by their ticket's similarity to the query *and* by how much the other
  candidate replies agree with them (mean cosine between reply embeddings), so a reply many
  agents would have given beats a one-off. Handles, URLs, agent signatures, greeting names
  and PII are stripped from the chosen reply; its source ticket ids are returned.

Stored as plain arrays (strings as one UTF-8 blob + offsets, no pickle, no fixed-width unicode
arrays), so a 200k-ticket index loads safely and cheaply.
"""

from __future__ import annotations

import difflib
import io
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from . import text as textlib
from .issues_model import CentroidsModel

INDEX_FORMAT = "supportlens.similar/v1"
TEXT_CHARS = 280  # a past ticket as shown to an agent
REPLY_CHARS = 500
DEFAULT_CAP = 200_000  # newest customer tickets kept in the index
NEIGHBOURS_FOR_CONFIDENCE = 10
RECOMMEND_CANDIDATES = 20
# A past ticket lends its reply only when it is closer to the query than FLOOR_PERCENTILE % of random
# pairs of indexed tickets are to each other (measured per index at build time: embedder-agnostic),
# and never below MIN_REPLY_SIMILARITY.
FLOOR_PERCENTILE = 95.0
FLOOR_PAIRS = 20_000
MIN_REPLY_SIMILARITY = 0.2
AGREEMENT_WEIGHT = 0.4  # score = (1 - w) * ticket similarity + w * agreement among candidate replies
_CHUNK = 32_768  # rows per float16 -> float32 block when scoring

# "Hi Sarah," / "Hello John!" at the start of a reply: the name is the customer's, not ours.
_GREETING_NAME = re.compile(r"^\s*(hi|hello|hey|dear|thanks|thank you|hola|bonjour|hallo|ciao|olá|ola|buenos días|buenas)\s+"
                            r"(?-i:[A-Z][\w'’-]{1,20})(\s(?-i:[A-Z][\w'’-]{1,20}))?\s*([,!.:])", re.IGNORECASE)
# Thread markers "(1/2)", "1/3", agent initials and signatures ("^JD", "-JD", "*ErikS", "- Ana"), link stubs.
_THREAD_MARKER = re.compile(r"\(\s*\d+\s*/\s*\d+\s*\)|(?<![\w/])\d\s*/\s*\d(?![\w/])")
_AGENT_SIGNATURE = re.compile(r"(?:\s+|^)(?:\^|\*|~|-{1,2}|–|—)\s?([A-Z][A-Za-z]{0,12})\.?\s*$")
_LINK_STUB = re.compile(r"\[URL\]|\bhttps?:?/*\S*|\b\w+\.(?:co|ly|gl|com|me)/\S*|(?:…|\.\.\.)\s*$", re.IGNORECASE)
# A reply that still names someone after cleaning is not reused: "Mr Smith", "my name is ...", "ask for Kim".
_PERSON = re.compile(r"\b(?i:mr|mrs|ms|miss|dr)\.?\s+[A-Z][a-z]+|\bmy name is\b|\bthis is [A-Z][a-z]+\b|\bI'?m [A-Z][a-z]+\b(?! (?:sorry|glad|happy))")
# "Sorry to hear that, Davina." / "..., Kim!": a customer's name closing a sentence (cut by clean_reply; a reply
# still holding one is not reused). Capitalised words that close sentences after a comma are let through.
_VOCATIVE = re.compile(r",\s+([A-Z][a-z]{2,14})(?=\s*(?:[.!?]|$))")
_NOT_NAMES = frozenset({"Thanks", "Thank", "Please", "Today", "Tomorrow", "Yesterday", "Tonight", "Cheers", "Sir", "Madam",
                        "Everyone", "All", "Team", "Friend", "Friends", "Again", "Too", "Though", "Okay", "Yes", "Sorry",
                        "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "Asap", "Soon"})
# A reply that pointed at a link ("Send us a note at <link> so ...", "DM us here: <link>") reads broken
# once the link is stripped: the word before the link says so, or the link sat inside a sentence.
_LINK_CUE = re.compile(r"(?i:\b(?:at|here|via|visit|see|using|following|below|link|on|from)\s*:?|:)\s*$")
_URL_IN_REPLY = re.compile(r"https?://\S+|\bwww\.\S+|\b\w+\.(?:co|ly|gl)/\S+", re.IGNORECASE)
# The index holds cleaned texts, whose links are already gone: the hole a link left ("Send us a note via so
# we can assist.", "Please reach out here:") is found in what remains.
_LINK_HOLE = re.compile(r"(?i:\b(?:via|at|visit|using)\s*:?|:)\s*(?:$|[.!?,;)]|\b(?:so|and|where|to)\b)")
_MIN_REPLY_WORDS = 3


def relies_on_link(reply: str) -> bool:
    """True when a reply's link carried its meaning: a word like "at"/"here:" leads into it, or more of
    the sentence follows it (a link at the end after a full sentence is only a DM button), or, in a
    cleaned text whose link is gone, the hole it left ("... via so we can assist.", "... here:")."""
    for match in _URL_IN_REPLY.finditer(reply):
        before, after = reply[: match.start()], reply[match.end():]
        if _LINK_CUE.search(before) or re.match(r"\s*[a-z]", after):
            return True
    return bool(_LINK_HOLE.search(_URL_IN_REPLY.sub(" ", reply)))


# ---------------------------------------------------------------- strings as blobs
class StringColumn(Sequence[str]):
    """Many strings in one UTF-8 byte array plus offsets; decoded only when read."""

    def __init__(self, blob: np.ndarray, offsets: np.ndarray):
        self.blob = blob
        self.offsets = offsets

    @classmethod
    def of(cls, values: Sequence[str]) -> "StringColumn":
        encoded = [v.encode("utf-8") for v in values]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        return cls(np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        return self.blob[self.offsets[i]:self.offsets[i + 1]].tobytes().decode("utf-8")


def _column(values: Sequence[str] | StringColumn) -> StringColumn:
    return values if isinstance(values, StringColumn) else StringColumn.of(list(values))


# ---------------------------------------------------------------- the index
@dataclass
class SimilarIndex:
    version: str
    embedding_id: str
    ticket_ids: StringColumn
    texts: StringColumn
    issue_ids: StringColumn
    companies: StringColumn
    days: StringColumn
    reply_ids: StringColumn  # "" where the thread has no company reply
    reply_texts: StringColumn
    vectors: np.ndarray = field(repr=False)  # (n, dim) float16, unit rows
    similarity_floor: float = MIN_REPLY_SIMILARITY  # see FLOOR_PERCENTILE

    def __len__(self) -> int:
        return len(self.ticket_ids)

    @cached_property
    def company_keys(self) -> np.ndarray:
        """company_key of every row, worked out once per index (a company filter compares against them)."""
        return np.array([company_key(c) for c in self.companies], dtype=object)

    @cached_property
    def worth_showing(self) -> np.ndarray:
        """Rows that are no trivial bucket (TRIVIAL_BUCKETS): worked out once per index, not per request."""
        return np.array([issue not in TRIVIAL_BUCKETS for issue in self.issue_ids], dtype=bool)

    @property
    def replies(self) -> int:
        return int(np.count_nonzero(np.diff(self.reply_texts.offsets)))

    def to_bytes(self) -> bytes:
        arrays: dict[str, np.ndarray] = {"format": np.array(INDEX_FORMAT), "version": np.array(self.version),
                                         "embedding_id": np.array(self.embedding_id), "vectors": self.vectors.astype(np.float16),
                                         "similarity_floor": np.array(self.similarity_floor, dtype=np.float32)}
        for name in ("ticket_ids", "texts", "issue_ids", "companies", "days", "reply_ids", "reply_texts"):
            column: StringColumn = getattr(self, name)
            arrays[f"{name}_blob"], arrays[f"{name}_offsets"] = column.blob, column.offsets
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "SimilarIndex":
        with np.load(io.BytesIO(data), allow_pickle=False) as a:
            if str(a["format"]) != INDEX_FORMAT:
                raise ValueError(f"not a similar-tickets index ({a['format']})")
            columns = {name: StringColumn(a[f"{name}_blob"], a[f"{name}_offsets"])
                       for name in ("ticket_ids", "texts", "issue_ids", "companies", "days", "reply_ids", "reply_texts")}
            return cls(version=str(a["version"]), embedding_id=str(a["embedding_id"]), vectors=a["vectors"],
                       similarity_floor=float(a["similarity_floor"]), **columns)


@dataclass(frozen=True)
class Reply:
    ticket_id: str
    text: str
    created_at: str = ""


SIGNATURE_TEXTS = 50_000  # customer texts read to tell a signed name from a word


def signature_names(reply_texts: Sequence[str], customer_texts: Sequence[str], min_replies: int = 2) -> frozenset[str]:
    """Lower-cased names agents sign replies with ("... -Becky", "^JD"), signed at least `min_replies` times
    and written capitalised more often than not by customers ("-Bill" signs, but "my bill" is a problem)."""
    signed = Counter(m.group(1) for text in reply_texts if (m := _AGENT_SIGNATURE.search(text)) and len(m.group(1)) > 1)
    names = {name for name, count in signed.items() if count >= min_replies}
    if not names:
        return frozenset()
    lowered = sorted({name.lower() for name in names})
    mention = re.compile(r"\b(?:" + "|".join(lowered) + r")\b", re.IGNORECASE)
    as_name: Counter[str] = Counter()
    as_word: Counter[str] = Counter()
    step = max(1, len(customer_texts) // SIGNATURE_TEXTS)  # an even sample bounds the time at a million tickets
    for text in customer_texts[::step]:
        for found in mention.findall(text):
            low = found.lower()
            (as_word if found == low else as_name)[low] += 1
    return frozenset(low for low in lowered if as_name[low] > as_word[low])  # a name no customer wrote names nothing


def first_replies(reply_to: Sequence[str], ticket_ids: Sequence[str], texts: Sequence[str],
                  created: Sequence[str] | None = None) -> dict[str, Reply]:
    """Customer ticket id -> the earliest company reply to it (rows are company messages)."""
    best: dict[str, Reply] = {}
    for i, parent in enumerate(reply_to):
        if not parent or not texts[i].strip():
            continue
        at = created[i] if created is not None else ""
        old = best.get(parent)
        if old is None or (at and (not old.created_at or at < old.created_at)):
            best[parent] = Reply(ticket_ids[i], texts[i], at)
    return best


def background_similarity(vectors: np.ndarray, percentile: float = FLOOR_PERCENTILE, pairs: int = FLOOR_PAIRS,
                          seed: int = 0) -> float:
    """The given percentile of cosine similarity between random pairs of different rows."""
    n = len(vectors)
    if n < 2:
        return MIN_REPLY_SIMILARITY
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, n, pairs), rng.integers(0, n, pairs)
    keep = a != b
    v = np.asarray(vectors, dtype=np.float32)
    sims = np.einsum("ij,ij->i", v[a[keep]], v[b[keep]])
    return float(np.percentile(sims, percentile)) if len(sims) else MIN_REPLY_SIMILARITY


_PLACEHOLDER = re.compile(r"\[[A-Z_]+\]")
_WORD = re.compile(r"[^\W\d_]{2,}")


def informative(text: str) -> bool:
    """At least two real words once PII placeholders ([PHONE], [EMAIL]...) are removed."""
    return len(_WORD.findall(_PLACEHOLDER.sub(" ", text))) >= 2


def build_index(ticket_ids: Sequence[str], texts: Sequence[str], issue_ids: Sequence[str], companies: Sequence[str],
                days: Sequence[str], vectors: np.ndarray, replies: dict[str, Reply], *, version: str, embedding_id: str,
                created: Sequence[str] | None = None, cap: int = DEFAULT_CAP) -> SimilarIndex:
    """The newest `cap` informative customer tickets (by creation time, else day) with their issue and first reply."""
    order_keys = created if created is not None and any(created) else days
    useful = [i for i in range(len(ticket_ids)) if informative(texts[i])]
    order = sorted(useful, key=lambda i: (order_keys[i] or "", ticket_ids[i]), reverse=True)[:cap]
    pick = lambda values: [values[i] for i in order]  # noqa: E731
    got = [replies.get(ticket_ids[i]) for i in order]
    return SimilarIndex(
        version=version, embedding_id=embedding_id,
        ticket_ids=_column(pick(ticket_ids)), texts=_column([texts[i][:TEXT_CHARS] for i in order]),
        issue_ids=_column(pick(issue_ids)), companies=_column(pick(companies)), days=_column(pick(days)),
        reply_ids=_column([r.ticket_id if r else "" for r in got]),
        reply_texts=_column([r.text[:REPLY_CHARS] if r else "" for r in got]),
        vectors=np.asarray(vectors, dtype=np.float32)[order].astype(np.float16) if order else np.zeros((0, vectors.shape[1] if vectors.ndim == 2 else 0), np.float16),
        similarity_floor=max(MIN_REPLY_SIMILARITY, background_similarity(np.asarray(vectors)[order])) if order else MIN_REPLY_SIMILARITY,
    )


# ---------------------------------------------------------------- queries
def similarities(index: SimilarIndex, query: np.ndarray) -> np.ndarray:
    """Cosine similarity of one unit query vector to every indexed ticket (float32)."""
    q = np.asarray(query, dtype=np.float32).ravel()
    if index.vectors.shape[1] != q.shape[0]:
        raise ValueError(f"query has {q.shape[0]} dimensions; the index has {index.vectors.shape[1]}")
    out = np.empty(len(index), dtype=np.float32)
    for start in range(0, len(index), _CHUNK):
        out[start:start + _CHUNK] = index.vectors[start:start + _CHUNK].astype(np.float32) @ q
    return out


def top_rows(sims: np.ndarray, k: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Row numbers of the k highest similarities (optionally among rows where mask is True), best first."""
    if mask is not None:
        sims = np.where(mask, sims, -np.inf)
    k = min(k, int(np.isfinite(sims).sum()))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    rows = np.argpartition(-sims, k - 1)[:k]
    return rows[np.argsort(-sims[rows], kind="stable")]


def unknown_company_note(index: SimilarIndex, company: str | None) -> str | None:
    """Why a company filter found nothing: no ticket of that company is in the index (a typo, or a
    brand the window has not seen), with the closest names. None when the company is known or none was asked for."""
    mask = _company_mask(index, company)
    if mask is None or mask.any():
        return None
    named = sorted(set(index.companies) - {"unknown", ""}, key=str.lower)
    by_key = {company_key(c): c for c in named}
    close = [by_key[k] for k in difflib.get_close_matches(company_key(company or ""), list(by_key), n=3, cutoff=0.6)]
    hint = f"did you mean {' or '.join(close)}?" if close else f"e.g. {', '.join(named[:3]) or 'none yet'}"
    return (f"no ticket of {company!r} is in the index ({hint} {len(named)} named companies, matched with case, "
            "spaces and punctuation aside)")


def company_key(name: str) -> str:
    """How a company filter compares names: "Amazon Help", "@amazonhelp" and "AmazonHelp" are one company;
    "(no company)", as reports print it, is the counters' "unknown"."""
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    return "unknown" if key == "nocompany" else key


# Past tickets that say nothing of a problem ("thanks!", "DM sent", "hi", "ok") are no example to follow:
# `similar` and `recommend` skip them (a lost-package complaint was answered with "Nope, I've got my package
# thanks" and "Thank you for keeping us posted!", found by a cold trial).
TRIVIAL_BUCKETS = frozenset({"bucket-gratitude", "bucket-follow-up", "bucket-greeting", "bucket-chatter"})


def _company_mask(index: SimilarIndex, company: str | None) -> np.ndarray | None:
    if not company:
        return None
    return index.company_keys == company_key(company)


# classify: below this confidence the answer is "no confident match" (the nearest issue is still shown).
# Measured on a Banking77 hold-out (docs/issues-assist.md): answers at or above it agree with the
# issue's majority intent far more often than those below.
CLASSIFY_MIN_CONFIDENCE = 0.5
NO_CONFIDENT_MATCH = "no confident match"


@dataclass
class Classification:
    issue_id: str | None  # None when not confident (see `nearest`)
    label: str
    similarity: float  # cosine to the issue centroid
    confidence: float  # share of the similarity of the nearest past tickets that is in the same issue and close
    neighbours: int
    runner_up: dict[str, Any] | None
    kind: str = "issue"  # "issue" or "bucket" (gratitude, follow-up, non-English ...)
    confident: bool = True
    nearest: dict[str, Any] | None = None  # the nearest issue when not confident
    by_rule: bool = False  # a bucket decided by its rule (thank-you, greeting, a language): not by similarity

    def to_dict(self) -> dict[str, Any]:
        return {"issue_id": self.issue_id, "label": self.label, "kind": self.kind, "confident": self.confident,
                "similarity": round(self.similarity, 4), "confidence": round(self.confidence, 4),
                "threshold": CLASSIFY_MIN_CONFIDENCE, "neighbours": self.neighbours, "runner_up": self.runner_up,
                "nearest": self.nearest, "by_rule": self.by_rule}


def classify(query: np.ndarray, model: CentroidsModel, index: SimilarIndex | None = None,
             neighbours: int = NEIGHBOURS_FOR_CONFIDENCE, text: str | None = None,
             min_confidence: float = CLASSIFY_MIN_CONFIDENCE) -> Classification:
    """The issue of a new ticket, with a confidence in [0, 1] and "no confident match" below `min_confidence`.

    A text that is a bucket (thank-you, DM sent, non-English...) gets that bucket when the model has it.
    Otherwise the nearest issue centroid (as Enrich assigns); confidence = the similarity-weighted share
    of the nearest past tickets that are in that issue *and* closer than the index's similarity floor,
    times the closeness to the centroid (1 when as close as the issue's typical member, 0 at the
    clustering's outlier floor). Without an index, the closeness alone."""
    if not np.any(query):
        raise ValueError("the text has nothing to classify")
    if text is not None and model.kinds:
        from .clustering import bucket_id, bucket_of

        name = bucket_of(text, textlib.detect_language(text))
        if name is not None and bucket_id(name) in model.issue_ids:
            i = model.issue_ids.index(bucket_id(name))
            sim = float(model.centroids[i] @ np.asarray(query, dtype=np.float32).ravel())
            return Classification(model.issue_ids[i], model.labels[i], sim, 1.0, 0, None, kind="bucket", by_rule=True)
    sims = model.centroids @ np.asarray(query, dtype=np.float32).ravel()
    order = np.argsort(-sims)
    best = int(order[0])
    runner = {"issue_id": model.issue_ids[int(order[1])], "label": model.labels[int(order[1])],
              "similarity": round(float(sims[order[1]]), 4)} if len(order) > 1 else None
    floor = float(model.outlier_floor or 0.0)
    # Closeness: 1 when the text is as close to the centroid as the issue's typical member, 0 at the outlier floor.
    typical = model.cohesion[best] if model.cohesion and best < len(model.cohesion) and model.cohesion[best] > floor else None
    if typical is not None:
        closeness = float(np.clip((sims[best] - floor) / (typical - floor), 0.0, 1.0))
    else:  # a model from before cohesion was stored: neighbour agreement alone (or the cosine without an index)
        closeness = 1.0 if index is not None and len(index) else float(np.clip(sims[best], 0.0, 1.0))
    confidence, used = closeness, 0
    if index is not None and len(index):
        rows = top_rows(similarities(index, query), neighbours)
        near = similarities_of(index, query, rows)
        weights = np.maximum(near, 0.0)
        same = np.array([index.issue_ids[int(r)] == model.issue_ids[best] for r in rows], dtype=bool) & (near >= index.similarity_floor)
        agreement = float(weights[same].sum() / weights.sum()) if weights.sum() > 0 else 0.0
        confidence, used = agreement * closeness, len(rows)
    confident = confidence >= min_confidence and float(sims[best]) >= floor
    kind = model.kind_of(best)
    if not confident:
        nearest = {"issue_id": model.issue_ids[best], "label": model.labels[best], "similarity": round(float(sims[best]), 4)}
        return Classification(None, NO_CONFIDENT_MATCH, float(sims[best]), confidence, used, runner, kind, False, nearest)
    return Classification(model.issue_ids[best], model.labels[best], float(sims[best]), confidence, used, runner, kind)


def similarities_of(index: SimilarIndex, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return index.vectors[rows].astype(np.float32) @ np.asarray(query, dtype=np.float32).ravel()


def similar(query: np.ndarray, index: SimilarIndex, k: int = 5, labels: dict[str, str] | None = None,
            company: str | None = None) -> list[dict[str, Any]]:
    """The k nearest past customer tickets, each with its issue and the company's reply (or None)."""
    if not np.any(query):
        raise ValueError("the text has nothing to compare")
    company_rows = _company_mask(index, company)
    rows = top_rows(similarities(index, query), k, index.worth_showing & (True if company_rows is None else company_rows))
    sims = similarities_of(index, query, rows)
    labels = labels or {}
    out = []
    for row, sim in zip(rows.tolist(), sims.tolist()):
        issue = index.issue_ids[row]
        reply = None
        if index.reply_texts[row]:
            reply = {"ticket_id": index.reply_ids[row], "text": clean_reply(index.reply_texts[row])}
        out.append({"ticket_id": index.ticket_ids[row], "text": index.texts[row], "similarity": round(float(sim), 4),
                    "issue_id": issue, "issue_label": labels.get(issue, ""), "company": index.companies[row],
                    "day": index.days[row], "reply": reply})
    return out


def clean_reply(reply: str) -> str:
    """A past reply made safe to reuse: no handles, URLs, link stubs, thread markers, agent
    signatures or initials, greeting or closing names ("Hi Sarah,", ", Davina.") or PII."""
    cleaned = textlib.clean_text(reply)
    cleaned = _THREAD_MARKER.sub(" ", cleaned)
    cleaned = _LINK_STUB.sub(" ", _LINK_STUB.sub(" ", cleaned).strip())
    cleaned = re.sub(r"\s+", " ", cleaned).strip()
    for _ in range(2):  # "... -JD" then "^JD" left before it
        cleaned = _AGENT_SIGNATURE.sub("", cleaned).strip()
    cleaned = _GREETING_NAME.sub(lambda m: f"{m.group(1)}{m.group(3)}", cleaned)
    # "We're sorry, Anthony!" -> "We're sorry!": 8 % of TWCS replies (5,000 sampled) end a sentence on a name.
    cleaned = _VOCATIVE.sub(lambda m: m.group(0) if m.group(1) in _NOT_NAMES else "", cleaned)
    cleaned, _ = textlib.mask_pii(cleaned)
    return re.sub(r"\s+", " ", cleaned).strip(" -~^*")


def brand_safe(reply: str, brands: frozenset[str]) -> bool:
    """False when the reply names one of `brands` (other companies) or a person."""
    if _PERSON.search(reply) or any(m.group(1) not in _NOT_NAMES for m in _VOCATIVE.finditer(reply)):
        return False
    words = set(re.findall(r"[a-z0-9]+", reply.lower()))
    return not (words & brands)


def other_brands(index: "SimilarIndex", company: str | None) -> frozenset[str]:
    """Brand words of the index's companies, except `company`'s own (all of them when unknown)."""
    from .clustering import brand_words

    everyone = brand_words(sorted(set(index.companies)))
    own = brand_words([company]) if company else frozenset()
    return frozenset(everyone - own)


@dataclass
class Recommendation:
    reply: str
    company: str
    source_ticket_id: str  # the past customer ticket
    reply_ticket_id: str  # the company's reply to it
    similarity: float
    agreement: float
    score: float
    supporting_ticket_ids: list[str]
    alternatives: list[dict[str, Any]]
    rewritten: bool = False
    same_company: bool | None = None  # None: no company given


    def to_dict(self) -> dict[str, Any]:
        return {"reply": self.reply, "company": self.company, "source_ticket_id": self.source_ticket_id,
                "reply_ticket_id": self.reply_ticket_id, "similarity": round(self.similarity, 4),
                "agreement": round(self.agreement, 4), "score": round(self.score, 4),
                "supporting_ticket_ids": self.supporting_ticket_ids, "alternatives": self.alternatives,
                "rewritten": self.rewritten, "same_company": self.same_company}


def recommend(query: np.ndarray, index: SimilarIndex, embed: Callable[[list[str]], np.ndarray],
              company: str | None = None, candidates: int = RECOMMEND_CANDIDATES,
              min_similarity: float | None = None) -> Recommendation | None:
    """A reply drawn from company replies to the most similar past tickets (None when none is close enough).

    min_similarity defaults to the index's similarity_floor (see FLOOR_PERCENTILE)."""
    if not np.any(query):
        raise ValueError("the text has nothing to compare")
    if min_similarity is None:
        min_similarity = index.similarity_floor
    has_reply = (np.diff(index.reply_texts.offsets) > 0) & index.worth_showing
    # Replies of the ticket's own company first; another company's reply only when it names no brand.
    brands = other_brands(index, company)
    masks = [has_reply & _company_mask(index, company), has_reply] if company else [has_reply]
    all_sims = similarities(index, query)
    for mask in masks:
        rows = top_rows(all_sims, candidates, mask)
        sims = similarities_of(index, query, rows)
        keep = sims >= min_similarity
        rows, sims = rows[keep], sims[keep]
        texts = [clean_reply(index.reply_texts[int(r)]) for r in rows]
        usable = [i for i, t in enumerate(texts) if len(t.split()) >= _MIN_REPLY_WORDS and brand_safe(t, brands)
                  and not relies_on_link(index.reply_texts[int(rows[i])])]
        if usable:
            break
    if not usable:
        return None
    rows, sims, texts = rows[usable], sims[usable], [texts[i] for i in usable]
    if len(rows) > 1:
        reply_vectors = np.asarray(embed(texts), dtype=np.float32)
        pair = reply_vectors @ reply_vectors.T
        weights = np.maximum(sims, 0.0)
        np.fill_diagonal(pair, 0.0)
        others = weights.sum() - weights
        agreement = np.where(others > 0, (pair * weights[None, :]).sum(axis=1) / np.where(others > 0, others, 1), 0.0)
        agreement = np.clip(agreement, 0.0, 1.0)
        scores = (1 - AGREEMENT_WEIGHT) * sims + AGREEMENT_WEIGHT * agreement
    else:
        agreement = np.zeros(1, dtype=np.float32)
        scores = (1 - AGREEMENT_WEIGHT) * sims
    order = np.argsort(-scores, kind="stable")
    best = int(order[0])
    seen = {texts[best].lower()}
    alternatives = []
    for i in order[1:].tolist():
        if texts[i].lower() in seen:
            continue
        seen.add(texts[i].lower())
        alternatives.append({"reply": texts[i], "source_ticket_id": index.ticket_ids[int(rows[i])],
                             "reply_ticket_id": index.reply_ids[int(rows[i])], "score": round(float(scores[i]), 4)})
        if len(alternatives) == 2:
            break
    row = int(rows[best])
    return Recommendation(
        reply=texts[best], company=index.companies[row], source_ticket_id=index.ticket_ids[row],
        reply_ticket_id=index.reply_ids[row], similarity=float(sims[best]), agreement=float(agreement[best]),
        score=float(scores[best]), supporting_ticket_ids=[index.ticket_ids[int(r)] for r in rows],
        alternatives=alternatives,
        same_company=None if not company else company_key(index.companies[row]) == company_key(company),
    )


# ---------------------------------------------------------------- optional rewrite (LLM)
REWRITE_MAX_CHARS = 600


def rewrite_prompt(customer_text: str, reply: str, company: str) -> str:
    """The instruction for a generative model to adapt a proven reply to this customer's message."""
    return (
        f"You are a customer-support agent for {company or 'the company'}. Rewrite the draft reply so it answers the "
        "customer's message directly. Keep the same facts, offer and next step as the draft; do not invent policies, "
        "amounts, links or contact details; no names, handles or signatures; at most 2 short sentences, under 280 "
        "characters. Answer with the reply text only.\n\n"
        f"Customer message:\n{customer_text.strip()[:1000]}\n\nDraft reply:\n{reply.strip()[:REPLY_CHARS]}\n"
    )


def accept_rewrite(generated: str | None) -> str | None:
    """The generated reply when usable (non-empty, not too long), PII-masked and cleaned; else None."""
    if not generated:
        return None
    candidate = clean_reply(generated.strip().strip('"'))
    if len(candidate.split()) < _MIN_REPLY_WORDS or len(candidate) > REWRITE_MAX_CHARS:
        return None
    return candidate

