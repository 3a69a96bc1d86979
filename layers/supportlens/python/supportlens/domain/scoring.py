"""Per-ticket scores: sentiment, abusive language, escalation rules and a local embedding.

These are the first, transparent defaults (VADER lexicon, a weighted abuse
lexicon, regex escalation rules, hashed n-gram random projections); trained
models replace them behind the same functions.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from functools import cache

import numpy as np

EMBEDDING_DIM = 256


@cache
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment(text: str) -> tuple[str, float]:
    """(label, score in [-1, 1]) with VADER's customary ±0.05 cut-offs."""
    score = _vader().polarity_scores(text)["compound"]
    label = "negative" if score <= -0.05 else "positive" if score >= 0.05 else "neutral"
    return label, round(score, 4)


# Weighted abuse lexicon: insults and slurs aimed at people weigh most; mild swearing little.
_ABUSE_TERMS: dict[str, float] = {
    r"f+u+c+k+\w*": 0.6, r"motherf\w+": 0.8, r"sh[i1]t+\w*": 0.35, r"bullsh\w+": 0.35,
    r"b[i1]tch\w*": 0.8, r"c+u+n+t+s?": 0.9, r"a+ss+holes?": 0.8, r"dumbass\w*": 0.7,
    r"bastards?": 0.7, r"dicks?": 0.5, r"dickheads?": 0.8, r"pricks?": 0.6,
    r"idiots?": 0.5, r"morons?": 0.6, r"stupid": 0.3, r"retard\w*": 0.9, r"scumbags?": 0.7,
    r"wh[o0]re\w*": 0.9, r"slut\w*": 0.9, r"fag\w*": 0.95, r"n[i1]gg\w*": 0.95, r"twats?": 0.8,
    r"wankers?": 0.8, r"stfu": 0.6, r"piss\w*": 0.3, r"crap\w*": 0.15, r"damn\w*": 0.1, r"wtf": 0.2,
}
_ABUSE = [(re.compile(rf"\b{pattern}\b", re.IGNORECASE), weight) for pattern, weight in _ABUSE_TERMS.items()]
_TARGETED = re.compile(r"\b(?:you|you're|your|ur|u)\b", re.IGNORECASE)
_THREAT = re.compile(r"\b(?:kill|hurt|burn|shoot|beat)\s+(?:you|u|your|everyone)\b", re.IGNORECASE)
ABUSE_FLAG_THRESHOLD = 0.6


def abuse_score(text: str) -> float:
    """0..1: how abusive the language is. Swearing aimed at a person or a threat scores highest."""
    score = 0.0
    for pattern, weight in _ABUSE:
        hits = len(pattern.findall(text))
        if hits:
            score = 1 - (1 - score) * (1 - weight) ** hits
    if score and _TARGETED.search(text):
        score = 1 - (1 - score) * 0.7
    if _THREAT.search(text):
        score = max(score, 0.9)
    return round(score, 4)


@dataclass(frozen=True)
class EscalationRule:
    name: str
    pattern: re.Pattern[str]


ESCALATION_RULES = (
    EscalationRule("legal_threat", re.compile(r"\b(?:lawyer|attorney|sue|suing|lawsuit|legal action|small claims|court)\b", re.I)),
    EscalationRule("churn", re.compile(r"\b(?:cancel(?:l?ing|l?ed)?|switch(?:ing)? (?:to|providers?)|leaving you|close my account|never (?:use|fly|buy)\w* (?:you|again))\b", re.I)),
    EscalationRule("regulator_media", re.compile(r"\b(?:fcc|ftc|bbb|ombudsman|regulator|attorney general|cfpb|ofcom|press|news ?paper|journalist|reporter|media)\b", re.I)),
    EscalationRule("safety", re.compile(r"\b(?:fire|smoke|explod\w*|injur\w*|unsafe|danger\w*|hazard\w*|carbon monoxide|electrocut\w*|overheat\w*|burn(?:ed|t|ing))\b", re.I)),
)


def escalation(text: str) -> str | None:
    """Name of the first escalation rule the text matches, else None."""
    for rule in ESCALATION_RULES:
        if rule.pattern.search(text):
            return rule.name
    return None


_TOKEN = re.compile(r"[a-z0-9']+")


@cache
def _projection() -> np.ndarray:
    # Fixed seed: every process (and every past shard) maps a token to the same direction.
    rng = np.random.default_rng(20171031)
    return rng.standard_normal((1 << 16, EMBEDDING_DIM)).astype(np.float32)


def embed(texts: list[str]) -> np.ndarray:
    """Unit vectors from hashed word unigrams and bigrams (sub-linear tf), one row per text."""
    table = _projection()
    out = np.zeros((len(texts), EMBEDDING_DIM), dtype=np.float32)
    for row, text in enumerate(texts):
        tokens = _TOKEN.findall(text.lower())
        grams = tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:])]
        if not grams:
            continue
        ids, counts = np.unique([zlib.crc32(g.encode()) & 0xFFFF for g in grams], return_counts=True)
        out[row] = (1 + np.log(counts)) @ table[ids]
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1, norms)
