"""Per-ticket scores: sentiment, abusive language, escalation rules and a local embedding.

Sentiment and abuse come from trained linear models that run in plain numpy
(`domain.models`, files under `supportlens/models/`, see their MODEL_CARD_*.md);
escalation is regex rules; the local embedding is a static word/n-gram table distilled from
all-MiniLM-L6-v2 (`domain.static_embedding`, models/embedding/MODEL_CARD.md).
Batch variants (`sentiment_batch`, `abuse_batch`) score many texts in one pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .models import TextModel, default_model, vader_features

EMBEDDING_DIM = 256
EMBEDDING_ID = "support-static-v2"  # the model behind embed(): vectors of different ids never mix


def _model(task: str, model: TextModel | None) -> TextModel:
    return model if model is not None else default_model(task)


def model_version(task: str) -> str:
    """Version of the shipped model for `task` ("sentiment" or "abuse")."""
    return default_model(task).version


_HAS_WORD = re.compile(r"\w")


def sentiment_batch(texts: list[str], model: TextModel | None = None) -> list[tuple[str, float]]:
    """(label, score in [-1, 1]) per text; score = P(positive) - P(negative). Text without words is neutral."""
    m = _model("sentiment", model)
    out: list[tuple[str, float]] = [("neutral", 0.0)] * len(texts)
    todo = [i for i, t in enumerate(texts) if _HAS_WORD.search(t)]
    if todo:
        proba = m.proba([texts[i] for i in todo])
        pos, neg = m.classes.index("positive"), m.classes.index("negative")
        for i, row in zip(todo, proba):
            out[i] = (m.classes[int(row.argmax())], round(float(row[pos] - row[neg]), 4))
    return out


def sentiment(text: str, model: TextModel | None = None) -> tuple[str, float]:
    """(label, score in [-1, 1]) for one text (see sentiment_batch)."""
    return sentiment_batch([text], model)[0]


def vader_label(text: str) -> str:
    """VADER's label with its customary ±0.05 cut-offs (the old default; kept as a baseline)."""
    score = vader_features([text])[0, 3]
    return "negative" if score <= -0.05 else "positive" if score >= 0.05 else "neutral"


ABUSE_FLAG_THRESHOLD = 0.6
# An explicit threat is abusive whatever the model says.
_THREAT = re.compile(r"\b(?:kill|hurt|burn|shoot|beat)\s+(?:you|u|your|everyone)\b", re.IGNORECASE)


def _flag_scale(p: np.ndarray, threshold: float) -> np.ndarray:
    """Monotone map of the model probability onto [0, 1] with the model's threshold at ABUSE_FLAG_THRESHOLD."""
    t = min(max(threshold, 1e-6), 1 - 1e-6)
    low = ABUSE_FLAG_THRESHOLD * p / t
    high = ABUSE_FLAG_THRESHOLD + (1 - ABUSE_FLAG_THRESHOLD) * (p - t) / (1 - t)
    return np.clip(np.where(p < t, low, high), 0.0, 1.0)


def abuse_batch(texts: list[str], model: TextModel | None = None) -> list[float]:
    """0..1 per text: how abusive the language is; >= ABUSE_FLAG_THRESHOLD means abusive."""
    m = _model("abuse", model)
    out = [0.0] * len(texts)
    todo = [i for i, t in enumerate(texts) if _HAS_WORD.search(t)]
    if todo:
        scores = _flag_scale(m.proba([texts[i] for i in todo]), m.threshold)
        for i, score in zip(todo, scores):
            out[i] = round(float(score), 4)
    return [max(score, 0.9) if _THREAT.search(t) else score for score, t in zip(out, texts)]


def abuse_score(text: str, model: TextModel | None = None) -> float:
    """0..1: how abusive the language is (see abuse_batch)."""
    return abuse_batch([text], model)[0]


@dataclass(frozen=True)
class EscalationRule:
    name: str
    pattern: re.Pattern[str]


# Phrases of a threat, not their words alone: "cancel" alone flagged 6.9 % of airline tweets as churn
# (every cancelled flight), "press" and "media" flagged "press ctrl alt delete" and "media player", "court"
# an address ("robotics st court"), "switch to" a plan change ("switch to Pro account").
ESCALATION_RULES = (
    EscalationRule("legal_threat", re.compile(
        r"\b(?:lawyers?|attorneys?|sue|suing|lawsuit|legal action|small claims|(?:take|taking) (?:\w+ ){1,2}to court"
        r"|see you in court|court case)\b", re.I)),
    EscalationRule("churn", re.compile(
        r"\b(?:cancel(?:l?ing)?|close|closing|terminate|terminating|end(?:ing)?) (?:my|our) (?:\w+ ){0,2}"
        r"(?:account|subscription|membership|contract|service|plan)s?\b"
        r"|\b(?:switch(?:ing)?|mov(?:e|ing)) (?:over )?to (?:another|a different|a new|a competitor|your competitors?)"
        r" (?:provider|carrier|bank|company|airline|network|service|competitor)s?\b"
        r"|\bswitch(?:ing)? (?:providers?|carriers?|banks?|companies|airlines)\b|\bleaving you\b"
        # "switching to Verizon tomorrow", not "switch to Pro account", "switch to wifi" or "switch to the app"
        r"|\bswitch(?:ing)? (?:over )?to (?!(?:the|my|your|a|an|it|this|that|them|wifi|data|airplane|dark|manual)\b)"
        r"(?!(?:\w+ ){0,2}(?:plan|account|tier|version|package|membership|mode|settings?|option|model|card|seat|flight|app"
        r"|browser|format|network|line|channel|cable)s?\b)[a-z&-]{3,}\b"
        r"|\b(?:take|taking) my business elsewhere\b|\bnever (?:use|fly|buy|order|shop)\w* (?:with |from )?(?:you|again)\b", re.I)),
    EscalationRule("regulator_media", re.compile(
        r"\b(?:fcc|ftc|bbb|better business bureau|ombudsman|regulators?|attorney general|cfpb|ofcom|news ?papers?|journalists?"
        r"|reporters?|news media|(?:the|to the|contact(?:ing)? the|tell(?:ing)? the) (?:press|media)"
        r"(?! (?:player|server|center|centre|library|files?|app|kit|card|release|button|key)))\b", re.I)),
    # Not the Fire TV stick, "insult to injury" or "burned out" / "burned a lot of time".
    EscalationRule("safety", re.compile(
        r"\b(?:(?<!kindle )fire(?! ?(?:stick|tv|hd|tablet))|smoke|explod\w*|(?<!insult to )injur\w*|unsafe|danger\w*"
        r"|hazard\w*|carbon monoxide|electrocut\w*|overheat\w*|burn(?:ed|t|ing|s)? (?:my|his|her|our|their|myself|himself|herself)"
        r"|burning (?:smell|plastic))\b", re.I)),
)


# All rules in one case-sensitive pattern, for lower-cased ASCII text: there re.I's matches are
# exactly the lower-cased text's (its Unicode case equivalents, 'ſ' for 's', 'K' for 'k', need a
# non-ASCII character), and one scan without IGNORECASE is ~4x cheaper than four with it. Most
# texts match no rule; the few that do still go through the rules in order. (The rules' patterns
# hold no upper-case letter: a test checks it.)
_ANY_ESCALATION = re.compile("|".join(f"(?:{rule.pattern.pattern})" for rule in ESCALATION_RULES))


def escalation(text: str) -> str | None:
    """Name of the first escalation rule the text matches, else None."""
    if text.isascii() and _ANY_ESCALATION.search(text.lower()) is None:
        return None
    for rule in ESCALATION_RULES:
        if rule.pattern.search(text):
            return rule.name
    return None


def embed(texts: list[str]) -> np.ndarray:
    """Unit float32 rows (EMBEDDING_DIM wide) from the static embedding distilled from
    all-MiniLM-L6-v2 (`static_embedding`, model EMBEDDING_ID); a text without words is a zero row."""
    from .static_embedding import default_model as embedding_model

    model = embedding_model()
    if model.model_id != EMBEDDING_ID or model.dim != EMBEDDING_DIM:
        raise RuntimeError(f"embedding artifact is {model.model_id}/{model.dim}, expected {EMBEDDING_ID}/{EMBEDDING_DIM}")
    return model.encode(texts)
