"""Trained text classifiers that run in plain numpy (no scikit-learn, no pickle at run time).

A model is a directory of plain files, written by `supportlens.training` (the only place that
imports scikit-learn):

    model.json   metadata: task, classes, version, preprocessing, feature blocks, heads, threshold
    vocab.json   {block name: [term, ...]} (a term's position is its feature index)
    arrays.npz   idf vectors, coefficients, intercepts (loaded with allow_pickle=False)

`TfidfBlock.transform` reproduces scikit-learn's `TfidfVectorizer.transform` (analyzers
word / char / char_wb, n-gram ranges, lowercase, token pattern, stop words, sublinear tf, idf,
l2 norm) exactly; a unit test checks it against scikit-learn on 1,000 texts.
"""

from __future__ import annotations

import json
import re
from array import array
from dataclasses import dataclass
from functools import cache
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from . import text as textlib

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
FORMAT = 1
WORD_CACHE_SIZE = 100_000  # distinct words whose char_wb n-gram ids a block keeps (tens of MB at most)
_WHITE_SPACES = re.compile(r"\s\s+")  # scikit-learn's, for the char analyzers

# Negation marking (sentiment): words after a negator, up to punctuation, get a "neg_" prefix.
_NEGATORS = (
    "not|no|never|cannot|nothing|nobody|none|nor|dont|don't|didnt|didn't|doesnt|doesn't|isnt|isn't|wasnt|wasn't|"
    "arent|aren't|cant|can't|couldnt|couldn't|wont|won't|wouldnt|wouldn't|havent|haven't|hasnt|hasn't|shouldnt|shouldn't"
)
_NEGATED = re.compile(rf"\b(?:{_NEGATORS})\b[^.,!?;:]*", re.IGNORECASE)


def _mark_negation(match: re.Match[str]) -> str:
    head, *rest = match.group(0).split()
    return " ".join([head, *("neg_" + w for w in rest)])


def clean(text: str, options: dict[str, Any]) -> str:
    """The text dense features (VADER) and `input: clean` components see."""
    return textlib.clean_text(text) if options.get("clean", True) else text


def mark_negation(text: str, options: dict[str, Any]) -> str:
    return _NEGATED.sub(_mark_negation, text) if options.get("negation") else text


def preprocess(text: str, options: dict[str, Any]) -> str:
    """The text a model's TF-IDF blocks see (the same function at training and at run time)."""
    return mark_negation(clean(text, options), options)


class ModelError(ValueError):
    """A model directory that cannot be loaded (missing files, wrong format, inconsistent arrays)."""


@dataclass
class Csr:
    """A minimal CSR matrix (rows = texts)."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    n_features: int

    @property
    def rows(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.indptr) - 1), np.diff(self.indptr))

    def dot(self, weights: np.ndarray) -> np.ndarray:
        """self @ weights for weights of shape (n_features, k)."""
        n = len(self.indptr) - 1
        out = np.zeros((n, weights.shape[1]), dtype=np.float64)
        if not len(self.data):
            return out
        contrib = self.data[:, None] * weights[self.indices]
        rows = self.rows
        for j in range(weights.shape[1]):
            out[:, j] = np.bincount(rows, weights=contrib[:, j], minlength=n)
        return out

    def toarray(self) -> np.ndarray:
        out = np.zeros((len(self.indptr) - 1, self.n_features))
        out[self.rows, self.indices] = self.data
        return out


class TfidfBlock:
    """scikit-learn's TfidfVectorizer.transform, in numpy."""

    def __init__(self, config: dict[str, Any], vocabulary: list[str], idf: np.ndarray | None) -> None:
        self.name = str(config["name"])
        self.analyzer = config.get("analyzer", "word")
        if self.analyzer not in ("word", "char", "char_wb"):
            raise ModelError(f"{self.name}: unsupported analyzer {self.analyzer!r}")
        self.min_n, self.max_n = (int(n) for n in config.get("ngram_range", (1, 1)))
        self.lowercase = bool(config.get("lowercase", True))
        self.token_pattern = re.compile(config.get("token_pattern") or r"(?u)\b\w\w+\b")
        self.stop_words = frozenset(config["stop_words"]) if config.get("stop_words") else None
        self.sublinear_tf = bool(config.get("sublinear_tf", False))
        self.binary = bool(config.get("binary", False))
        self.norm = config.get("norm", "l2")
        if self.norm not in ("l2", "l1", None):
            raise ModelError(f"{self.name}: unsupported norm {self.norm!r}")
        self.vocabulary = {term: i for i, term in enumerate(vocabulary)}
        if len(self.vocabulary) != len(vocabulary):
            raise ModelError(f"{self.name}: duplicate terms in the vocabulary")
        self.n_features = len(vocabulary)
        self._word_ids: dict[str, tuple[int, ...]] = {}  # char_wb: word -> ids of its n-grams
        self.idf = None if idf is None else np.asarray(idf, dtype=np.float64)
        if self.idf is not None and self.idf.shape != (self.n_features,):
            raise ModelError(f"{self.name}: idf has shape {self.idf.shape}, vocabulary has {self.n_features} terms")

    # ---- analyzers (scikit-learn's algorithms, term for term)
    def analyze(self, doc: str) -> list[str]:
        if self.lowercase:
            doc = doc.lower()
        if self.analyzer == "word":
            return self._word_ngrams(self.token_pattern.findall(doc))
        if self.analyzer == "char":
            return self._char_ngrams(doc)
        return self._char_wb_ngrams(doc)

    def _word_ngrams(self, tokens: list[str]) -> list[str]:
        if self.stop_words is not None:
            tokens = [w for w in tokens if w not in self.stop_words]
        min_n, max_n = self.min_n, self.max_n
        if max_n == 1:
            return tokens
        original = tokens
        if min_n == 1:
            tokens = list(original)
            min_n += 1
        else:
            tokens = []
        n_tokens = len(original)
        for n in range(min_n, min(max_n + 1, n_tokens + 1)):
            if n == 2:  # the common sizes without a slice per gram (same grams, same order)
                tokens += [f"{a} {b}" for a, b in zip(original, original[1:])]
            elif n == 3:
                tokens += [f"{a} {b} {c}" for a, b, c in zip(original, original[1:], original[2:])]
            else:
                tokens += [" ".join(original[i : i + n]) for i in range(n_tokens - n + 1)]
        return tokens

    def _char_ngrams(self, doc: str) -> list[str]:
        doc = _WHITE_SPACES.sub(" ", doc)
        length = len(doc)
        min_n, max_n = self.min_n, self.max_n
        if min_n == 1:
            grams = list(doc)
            min_n += 1
        else:
            grams = []
        for n in range(min_n, min(max_n + 1, length + 1)):
            grams.extend(doc[i : i + n] for i in range(length - n + 1))
        return grams

    def _char_wb_ngrams(self, doc: str) -> list[str]:
        doc = _WHITE_SPACES.sub(" ", doc)
        grams: list[str] = []
        for word in doc.split():
            grams += self._word_grams(word)
        return grams

    def _word_grams(self, word: str) -> list[str]:
        """char_wb n-grams of one word: within the word padded with one space each side."""
        word = " " + word + " "
        length = len(word)
        grams: list[str] = []
        for n in range(self.min_n, self.max_n + 1):
            if length <= n:  # a short word is counted once, whole (scikit-learn's rule)
                grams.append(word)
                break
            grams += [word[i : i + n] for i in range(length - n + 1)]
        return grams

    def _char_wb_ids(self, doc: str) -> list[int]:
        """Vocabulary ids of a document's char_wb n-grams (see _char_wb_extend)."""
        out = array("q")
        self._char_wb_extend(doc, out)
        return out.tolist()

    def _char_wb_extend(self, doc: str, out: array) -> None:
        """Append the vocabulary ids of a document's char_wb n-grams to `out`. char_wb n-grams never
        cross words, so each distinct word's ids are computed once and cached (words repeat: Zipf)."""
        if self.lowercase:
            doc = doc.lower()
        cache, vocabulary = self._word_ids, self.vocabulary
        for word in doc.split():  # = scikit-learn's whitespace normalisation followed by split()
            known = cache.get(word)
            if known is None:
                known = array("q", [i for i in map(vocabulary.get, self._word_grams(word)) if i is not None])
                if len(cache) >= WORD_CACHE_SIZE:
                    cache.clear()  # bounded memory; refills with the words in use
                cache[word] = known
            out += known

    # ---- transform
    def counts(self, docs: list[str]) -> Csr:
        n_features = max(self.n_features, 1)
        lengths = np.zeros(len(docs), dtype=np.int64)
        if self.analyzer == "char_wb":
            found = array("q")  # C int64s end to end: no Python int list to convert
            ends = []
            for doc in docs:
                self._char_wb_extend(doc, found)
                ends.append(len(found))
            ids = np.frombuffer(found, dtype=np.int64) if len(found) else np.zeros(0, dtype=np.int64)
            lengths = np.diff(np.array([0, *ends], dtype=np.int64))
            rows = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)
        else:
            grams: list[str] = []
            for row, doc in enumerate(docs):
                terms = self.analyze(doc)
                lengths[row] = len(terms)
                grams += terms
            all_ids = np.fromiter(map(self.vocabulary.get, grams, repeat(-1)), dtype=np.int64, count=len(grams))
            known = all_ids >= 0
            ids = all_ids[known]
            rows = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)[known]
        flat, counts = np.unique(rows * n_features + ids, return_counts=True)
        rows, cols = np.divmod(flat, n_features)
        indptr = np.zeros(len(docs) + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=len(docs)), out=indptr[1:])
        return Csr(indptr, cols, counts.astype(np.float64), self.n_features)

    def transform(self, docs: list[str]) -> Csr:
        x = self.counts(docs)
        if self.binary:
            x.data[:] = 1.0
        if self.sublinear_tf:
            np.log(x.data, out=x.data)
            x.data += 1.0
        if self.idf is not None:
            x.data *= self.idf[x.indices]
        if self.norm:
            rows = x.rows
            per_row = np.abs(x.data) if self.norm == "l1" else x.data * x.data
            norms = np.bincount(rows, weights=per_row, minlength=len(docs))
            if self.norm == "l2":
                norms = np.sqrt(norms)
            norms[norms == 0.0] = 1.0
            x.data /= norms[rows]
        return x


@cache
def _vader():
    """VADER with its per-word rescans removed (same scores: tests/unit/test_models.py compares them)."""
    from vaderSentiment import vaderSentiment as vs

    class FastVader(vs.SentimentIntensityAnalyzer):
        """vaderSentiment 3.3.2's polarity_scores, step for step, except that the lower-cased word list is
        built once per text instead of once per check (VADER rebuilds it up to five times per lexicon
        word), and a text without emoji characters skips the per-character emoji rewrite."""

        def __init__(self) -> None:
            super().__init__()
            self.negate = frozenset(vs.NEGATE)
            self.emoji_chars = frozenset(k for k in self.emojis if len(k) == 1)  # VADER compares char by char

        def polarity_scores(self, text: str) -> dict[str, float]:
            if not self.emoji_chars.isdisjoint(text):
                return super().polarity_scores(text)
            text = text.strip()
            sentitext = vs.SentiText(text)
            words = sentitext.words_and_emoticons
            lower = [str(w).lower() for w in words]
            sentiments: list[float] = []
            for i, item in enumerate(lower):
                if item in vs.BOOSTER_DICT or (i < len(words) - 1 and item == "kind" and lower[i + 1] == "of"):
                    sentiments.append(0)
                    continue
                sentiments.append(self._valence(sentitext, words, lower, i))
            sentiments = self._but_check(words, sentiments)
            return self.score_valence(sentiments, text)

        def _valence(self, sentitext, words: list[str], lower: list[str], i: int) -> float:
            item_lowercase = lower[i]
            lexicon = self.lexicon
            if item_lowercase not in lexicon:
                return 0
            valence = lexicon[item_lowercase]
            if item_lowercase == "no" and i != len(words) - 1 and lower[i + 1] in lexicon:
                valence = 0.0
            if (i > 0 and lower[i - 1] == "no") or (i > 1 and lower[i - 2] == "no") \
                    or (i > 2 and lower[i - 3] == "no" and lower[i - 1] in ["or", "nor"]):
                valence = lexicon[item_lowercase] * vs.N_SCALAR
            if words[i].isupper() and sentitext.is_cap_diff:
                valence = valence + vs.C_INCR if valence > 0 else valence - vs.C_INCR
            for start_i in range(0, 3):
                if i > start_i and lower[i - (start_i + 1)] not in lexicon:
                    s = vs.scalar_inc_dec(words[i - (start_i + 1)], valence, sentitext.is_cap_diff)
                    if start_i == 1 and s != 0:
                        s = s * 0.95
                    if start_i == 2 and s != 0:
                        s = s * 0.9
                    valence = valence + s
                    valence = self._negation(valence, lower, start_i, i)
                    if start_i == 2:
                        valence = self._idioms(valence, lower, i)
            return self._least(valence, lower, i)

        def _least(self, valence: float, lower: list[str], i: int) -> float:
            if i > 1 and lower[i - 1] not in self.lexicon and lower[i - 1] == "least":
                if lower[i - 2] != "at" and lower[i - 2] != "very":
                    valence = valence * vs.N_SCALAR
            elif i > 0 and lower[i - 1] not in self.lexicon and lower[i - 1] == "least":
                valence = valence * vs.N_SCALAR
            return valence

        @staticmethod
        def _idioms(valence: float, lower: list[str], i: int) -> float:
            # lower[i - 3] with i == 2 is lower[-1], as in VADER
            onezero = f"{lower[i - 1]} {lower[i]}"
            twoonezero = f"{lower[i - 2]} {lower[i - 1]} {lower[i]}"
            twoone = f"{lower[i - 2]} {lower[i - 1]}"
            threetwoone = f"{lower[i - 3]} {lower[i - 2]} {lower[i - 1]}"
            threetwo = f"{lower[i - 3]} {lower[i - 2]}"
            for seq in (onezero, twoonezero, twoone, threetwoone, threetwo):
                if seq in vs.SPECIAL_CASES:
                    valence = vs.SPECIAL_CASES[seq]
                    break
            if len(lower) - 1 > i:
                zeroone = f"{lower[i]} {lower[i + 1]}"
                if zeroone in vs.SPECIAL_CASES:
                    valence = vs.SPECIAL_CASES[zeroone]
            if len(lower) - 1 > i + 1:
                zeroonetwo = f"{lower[i]} {lower[i + 1]} {lower[i + 2]}"
                if zeroonetwo in vs.SPECIAL_CASES:
                    valence = vs.SPECIAL_CASES[zeroonetwo]
            for n_gram in (threetwoone, threetwo, twoone):
                if n_gram in vs.BOOSTER_DICT:
                    valence = valence + vs.BOOSTER_DICT[n_gram]
            return valence

        def _negated(self, word: str) -> bool:  # = vs.negated([word])
            word = word.lower()
            return word in self.negate or "n't" in word

        def _negation(self, valence: float, lower: list[str], start_i: int, i: int) -> float:
            before = lower[i - (start_i + 1)]
            if start_i == 0:
                if self._negated(before):
                    valence = valence * vs.N_SCALAR
            if start_i == 1:
                if lower[i - 2] == "never" and (lower[i - 1] == "so" or lower[i - 1] == "this"):
                    valence = valence * 1.25
                elif lower[i - 2] == "without" and lower[i - 1] == "doubt":
                    pass
                elif self._negated(before):
                    valence = valence * vs.N_SCALAR
            if start_i == 2:
                if lower[i - 3] == "never" and (lower[i - 2] == "so" or lower[i - 2] == "this") or \
                        (lower[i - 1] == "so" or lower[i - 1] == "this"):
                    valence = valence * 1.25
                elif lower[i - 3] == "without" and (lower[i - 2] == "doubt" or lower[i - 1] == "doubt"):
                    pass
                elif self._negated(before):
                    valence = valence * vs.N_SCALAR
            return valence

    return FastVader()


def vader_features(texts: list[str]) -> np.ndarray:
    """VADER's neg, neu, pos and compound scores (4 dense features per text)."""
    analyzer = _vader()
    return np.array([[s["neg"], s["neu"], s["pos"], s["compound"]] for s in map(analyzer.polarity_scores, texts)], dtype=np.float64).reshape(len(texts), 4)


DENSE_FEATURES = {"vader": (4, vader_features)}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # = 1 / (1 + exp(-z)), without overflow warnings


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class LinearComponent:
    """Feature blocks (+ optional dense features) -> linear scores -> probabilities.

    heads: "softmax" (multinomial logistic regression), "binary" (logistic regression, P(class 1)),
    "calibrated" (scikit-learn CalibratedClassifierCV(sigmoid) over linear models: the mean of
    expit(-(a * (x.w + b) + c)) over the folds, i.e. P(class 1)).
    """

    def __init__(self, config: dict[str, Any], vocab: dict[str, list[str]], arrays: dict[str, np.ndarray]) -> None:
        self.name = str(config["name"])
        self.head = config["head"]
        if self.head not in ("softmax", "binary", "calibrated"):
            raise ModelError(f"{self.name}: unknown head {self.head!r}")
        self.input = config.get("input", "preprocessed")
        self.blocks = []
        for block in config["features"]:
            try:
                terms = vocab[block["name"]]
            except KeyError:
                raise ModelError(f"{self.name}: no vocabulary for block {block['name']!r}") from None
            self.blocks.append(TfidfBlock(block, terms, arrays.get(f"{block['name']}.idf")))
        self.dense = [(d["kind"], float(d.get("scale", 1.0))) for d in config.get("dense", [])]
        for kind, _ in self.dense:
            if kind not in DENSE_FEATURES:
                raise ModelError(f"{self.name}: unknown dense features {kind!r}")
        n_features = sum(b.n_features for b in self.blocks) + sum(DENSE_FEATURES[k][0] for k, _ in self.dense)
        try:
            self.coef = np.asarray(arrays[f"{self.name}.coef"], dtype=np.float64)  # (k, n_features)
            self.intercept = np.asarray(arrays[f"{self.name}.intercept"], dtype=np.float64)  # (k,)
            if self.head == "calibrated":
                self.cal_a = np.asarray(arrays[f"{self.name}.cal_a"], dtype=np.float64)
                self.cal_b = np.asarray(arrays[f"{self.name}.cal_b"], dtype=np.float64)
        except KeyError as exc:
            raise ModelError(f"{self.name}: missing array {exc}") from None
        if self.coef.ndim != 2 or self.coef.shape[1] != n_features or self.intercept.shape != (self.coef.shape[0],):
            raise ModelError(f"{self.name}: coefficients {self.coef.shape} do not match {n_features} features")
        self.weights = np.ascontiguousarray(self.coef.T)

    def decision(self, texts: list[str], dense_texts: list[str] | None = None) -> np.ndarray:
        """Linear scores (n, k). `dense_texts` (default: texts) feed the dense features."""
        out = np.tile(self.intercept, (len(texts), 1))
        start = 0
        for block in self.blocks:
            out += block.transform(texts).dot(self.weights[start : start + block.n_features])
            start += block.n_features
        for kind, scale in self.dense:
            width, fn = DENSE_FEATURES[kind]
            out += (fn(texts if dense_texts is None else dense_texts) * scale) @ self.weights[start : start + width]
            start += width
        return out

    def proba(self, texts: list[str], dense_texts: list[str] | None = None) -> np.ndarray:
        """(n, k) class probabilities for softmax heads; (n,) P(class 1) otherwise."""
        z = self.decision(texts, dense_texts)
        if self.head == "softmax":
            return _softmax(z)
        if self.head == "binary":
            return _sigmoid(z[:, 0])
        return _sigmoid(-(self.cal_a * z + self.cal_b)).mean(axis=1)


class TextModel:
    """A loaded model directory: one or more components and how they combine."""

    def __init__(self, meta: dict[str, Any], vocab: dict[str, list[str]], arrays: dict[str, np.ndarray], path: Path | None = None) -> None:
        if meta.get("format") != FORMAT:
            raise ModelError(f"unsupported model format {meta.get('format')!r} (this code reads {FORMAT})")
        self.meta = meta
        self.path = path
        self.task = meta["task"]
        self.name = meta.get("name", self.task)
        self.version = str(meta.get("version", "unknown"))
        self.classes = list(meta["classes"])
        self.options = meta.get("preprocess", {})
        self.components = [LinearComponent(c, vocab, arrays) for c in meta["components"]]
        self.combine = meta.get("combine")
        self.threshold = float(meta.get("threshold", 0.5))
        if len(self.components) > 1 and not self.combine:
            raise ModelError("several components need a 'combine' section")

    @classmethod
    def load(cls, path: str | Path) -> TextModel:
        path = Path(path)
        try:
            meta = json.loads((path / "model.json").read_text(encoding="utf-8"))
            vocab = json.loads((path / "vocab.json").read_text(encoding="utf-8"))
            with np.load(path / "arrays.npz", allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, json.JSONDecodeError, ValueError) as exc:
            raise ModelError(f"cannot load model from {path}: {exc}") from exc
        return cls(meta, vocab, arrays, path)

    def proba(self, texts: list[str]) -> np.ndarray:
        """Binary models: (n,) P(positive class = classes[1]). Multiclass: (n, k)."""
        cleaned = [clean(t, self.options) for t in texts]
        prepared = [mark_negation(t, self.options) for t in cleaned]
        outputs = []
        for component in self.components:
            # "clean" components (e.g. an imported model trained on its own preprocessing) skip negation marking
            inputs = cleaned if component.input == "clean" else prepared
            outputs.append(component.proba(inputs, cleaned))
        if len(outputs) == 1:
            return outputs[0]
        # stacked logistic combination of the components' log-odds
        eps = 1e-6
        logits = np.column_stack([np.log(np.clip(p, eps, 1 - eps) / np.clip(1 - p, eps, 1 - eps)) for p in outputs])
        weights = np.asarray(self.combine["weights"], dtype=np.float64)
        return _sigmoid(logits @ weights + float(self.combine["bias"]))

    def predict(self, texts: list[str]) -> list[str]:
        p = self.proba(texts)
        if p.ndim == 1:
            return [self.classes[1] if v >= self.threshold else self.classes[0] for v in p]
        return [self.classes[i] for i in p.argmax(axis=1)]


def shipped_model_path(task: str) -> Path:
    return MODELS_DIR / task


@cache
def default_model(task: str) -> TextModel:
    """The model that ships with the library for `task` (loaded once per process)."""
    return TextModel.load(shipped_model_path(task))
