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
import string
import zlib
from array import array
from dataclasses import dataclass
from functools import cache, cached_property
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from . import text as textlib

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
FORMAT = 1
WORD_CACHE_SIZE = 100_000  # distinct words whose char_wb n-gram ids a block keeps (tens of MB at most)
_WHITE_SPACES = re.compile(r"\s\s+")  # scikit-learn's, for the char analyzers
_PUNCTUATION = string.punctuation  # what VADER strips from words

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


def _utf32(text: str) -> np.ndarray:
    """The code points of `text` (lone surrogates kept as they are, like Python's str)."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


class _KeyTable:
    """Integer n-gram keys (>= 0) -> vocabulary ids: an open-addressing hash table (multiplicative
    hash, linear probing, at most a quarter full) built and probed with numpy, one gather per probe
    round for a whole batch. A binary search (np.searchsorted) costs ~17 dependent cache misses per
    key; a probe here is one or two."""

    _MULT = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing
    _EMPTY = -1

    def __init__(self, keys: np.ndarray, ids: np.ndarray, in_home_order: bool = False) -> None:
        """`in_home_order`: the pairs are already sorted by home slot (as `export` gives them)."""
        self.shift = np.uint64(64 - max(int(4 * len(keys)).bit_length(), 4))
        keys, ids = np.asarray(keys, dtype=np.int64), np.asarray(ids, dtype=np.int64)
        home = self._slots(keys)
        if not in_home_order:
            order = np.lexsort((keys, home))  # by home slot, then key: equal keys end up side by side
            home, keys, ids = home[order], keys[order], ids[order]
        elif len(home) > 1 and (home[1:] < home[:-1]).any():
            raise ModelError("n-gram index: keys are not in the order of their slots")
        # Linear probing, keys inserted in order of their home slot: each takes the first free slot from
        # its home on, i.e. slot_i = max(home_i, slot_{i-1} + 1) = i + max over j <= i of (home_j - j).
        # The table runs on past its last slot instead of wrapping around; every slot between a key's
        # home and its place is taken, so a lookup that meets an empty slot can stop.
        rank = np.arange(len(keys))
        slot = np.maximum.accumulate(home - rank) + rank if len(keys) else rank
        self.max_probes = int((slot - home).max()) + 1 if len(keys) else 1
        size = max(1 << (64 - int(self.shift)), int(slot[-1]) + 1 if len(keys) else 0) + 1  # + 1: a run ends empty
        self.keys = np.full(size, self._EMPTY, dtype=np.int64)
        self.ids = np.zeros(size, dtype=np.int64)
        self.keys[slot], self.ids[slot] = keys, ids
        self.sorted_keys, self.sorted_ids = keys, ids
        self.duplicates = bool(len(keys) > 1 and (keys[1:] == keys[:-1]).any())  # equal keys are neighbours

    def _slots(self, keys: np.ndarray) -> np.ndarray:
        return ((keys.astype(np.uint64) * self._MULT) >> self.shift).astype(np.int64)

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions in `keys` that are vocabulary terms, their ids)."""
        slot = self._slots(keys)
        found = self.keys[slot]
        equal = found == keys
        hits = [np.flatnonzero(equal)]
        ids = [self.ids[slot[hits[0]]]]
        # The first probe settles most keys (found, or an empty slot); the few others go on, a slot a round.
        todo = np.flatnonzero(~equal & (found != self._EMPTY))
        slot = slot[todo]
        for _ in range(self.max_probes - 1):  # no key sits further from its home than the farthest at build
            if not len(todo):
                break
            slot = slot + 1
            found = self.keys[slot]
            equal = found == keys[todo]
            hits.append(todo[equal])
            ids.append(self.ids[slot[equal]])
            more = ~equal & (found != self._EMPTY)
            todo, slot = todo[more], slot[more]
        return np.concatenate(hits), np.concatenate(ids)

    def export(self, prefix: str) -> dict[str, np.ndarray]:
        id_type = np.int32 if len(self.sorted_ids) < 2**31 else np.int64
        return {f"{prefix}.keys": self.sorted_keys, f"{prefix}.ids": self.sorted_ids.astype(id_type)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str) -> _KeyTable:
        return cls(arrays[f"{prefix}.keys"], arrays[f"{prefix}.ids"], in_home_order=True)


def _keys(digits: np.ndarray, starts: np.ndarray, lengths: np.ndarray, n_range: range, base: int,
          skip: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(key, term index) of every term of n_range's lengths: `digits[start : start + n]` in base `base`."""
    keys, ids = [], []
    for n in n_range:
        terms = np.flatnonzero((lengths == n) if skip is None else (lengths == n) & ~skip)
        window = digits[starts[terms, None] + np.arange(n)]
        keys.append((window * np.int64(base) ** np.arange(n - 1, -1, -1, dtype=np.int64)).sum(axis=1))
        ids.append(terms)
    return np.concatenate(keys), np.concatenate(ids)


def _window_ids(digits: np.ndarray, row_of: np.ndarray, base: int, min_n: int, max_n: int, table: _KeyTable,
                same_row: bool) -> tuple[np.ndarray, np.ndarray]:
    """(row, id) of every window of min_n..max_n consecutive digits whose key (the digits in base
    `base`) is in `table`; `same_row`: only windows within one row. Exactness needs only a nonzero
    first digit (a key whose first digit is 0 is the key of a shorter window); a window with any 0
    digit (unknown character or token) is no term, and is not looked up."""
    known = digits != 0
    keys, starts = [], []
    if min_n == 1:
        starts.append(np.flatnonzero(known))
        keys.append(digits[starts[-1]])
    key, valid = digits, known
    for n in range(2, max_n + 1):
        m = len(digits) - n + 1
        if m <= 0:
            break
        key = key[:m] * base + digits[n - 1 :]
        valid = valid[:m] & known[n - 1 :]
        if same_row:
            valid &= row_of[:m] == row_of[n - 1 :]
        if n >= min_n:
            starts.append(np.flatnonzero(valid))
            keys.append(key[starts[-1]])
    if not keys:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    hit, ids = table.lookup(np.concatenate(keys))
    return row_of[np.concatenate(starts)[hit]], ids


class _CharWbIndex:
    """scikit-learn's char_wb n-grams -> vocabulary ids for a whole batch in numpy, no n-gram strings.

    Each character of the vocabulary gets a code 1..A (0: a character no term has), and an n-gram
    the integer key sum(code_k << bits * (n - 1 - k)): with n * bits <= 63 this is exact (injective,
    no hashing, no collisions), and keys of different lengths never meet because a term's first
    code is never 0. A batch becomes one string: every document's words, each padded with one
    space either side (" w1  w2 "), documents one after the other. A window of n characters is a
    char_wb n-gram exactly when it holds no two adjacent spaces (they only occur where one padded
    word ends and the next begins), which also gives scikit-learn's short-word rule for free: a
    padded word of length L <= max_n yields its windows up to size L, the last of them the whole
    word, once. That needs min_n <= 3 (a padded word is never shorter); `build` says None otherwise.
    Terms with two adjacent spaces (no char_wb n-gram has them) are not keyed, so a window across
    two words never matches and needs no test.
    """

    def __init__(self, alphabet: np.ndarray, table: _KeyTable, min_n: int, max_n: int, lowercase: bool) -> None:
        self.min_n, self.max_n, self.lowercase = min_n, max_n, lowercase
        self.alphabet = np.asarray(alphabet, dtype=np.uint32)
        self.bits = max(int(len(alphabet)).bit_length(), 1)
        if self.bits * max_n > 63:
            raise OverflowError(f"{len(alphabet)} characters: {max_n}-gram keys would not fit in 63 bits")
        # code point -> code (0: no term has it); the last entry stands for every code point above
        self.codes = np.zeros(int(alphabet[-1]) + 2 if len(alphabet) else 1, dtype=np.min_scalar_type(len(alphabet)))
        self.codes[self.alphabet] = np.arange(1, len(alphabet) + 1)
        self.index = table
        self.n_keyed = len(table.sorted_keys)

    @classmethod
    def build(cls, vocabulary: list[str], min_n: int, max_n: int, lowercase: bool,
              arrays: dict[str, np.ndarray] | None = None, prefix: str = "") -> _CharWbIndex | None:
        """The index (from `arrays`, as `export` wrote them, when given), or None where it cannot be
        exact (1-grams, short-word terms, too many characters)."""
        if not 2 <= min_n <= 3 or max_n < min_n:
            return None
        try:
            if arrays is not None:
                return cls(arrays[f"{prefix}.alphabet"], _KeyTable.from_arrays(arrays, prefix), min_n, max_n, lowercase)
            lengths = np.fromiter(map(len, vocabulary), dtype=np.int64, count=len(vocabulary))
            points = _utf32("".join(vocabulary))
            alphabet = np.unique(points)
            if max(int(len(alphabet)).bit_length(), 1) * max_n > 63:
                return None
            codes = np.searchsorted(alphabet, points).astype(np.int64) + 1
            term_of = np.repeat(np.arange(len(vocabulary)), lengths)
            double = np.zeros(len(vocabulary), dtype=bool)  # terms with "  ": never a char_wb n-gram
            double[term_of[:-1][(points[:-1] == 32) & (points[1:] == 32) & (term_of[:-1] == term_of[1:])]] = True
            # other lengths are no char_wb n-gram either: never looked up
            keys, ids = _keys(codes, np.cumsum(lengths) - lengths, lengths, range(min_n, max_n + 1),
                              1 << max(int(len(alphabet)).bit_length(), 1), double)
            return cls(alphabet, _KeyTable(keys, ids), min_n, max_n, lowercase)
        except OverflowError:
            return None

    def export(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}.alphabet": self.alphabet, **self.index.export(prefix)}

    def rows_ids(self, docs: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(document row, vocabulary id) of every char_wb n-gram of `docs` that is a vocabulary term."""
        lower = self.lowercase
        parts = [" " + "  ".join((doc.lower() if lower else doc).split()) + " " for doc in docs]
        points = _utf32("".join(parts))
        codes = self.codes[np.minimum(points, len(self.codes) - 1)].astype(np.int64)
        row_of = np.repeat(np.arange(len(docs), dtype=np.int64), np.fromiter(map(len, parts), dtype=np.int64, count=len(parts)))
        # (no window across two words or documents matches: it holds "  ", which no keyed term does)
        return _window_ids(codes, row_of, 1 << self.bits, self.min_n, self.max_n, self.index, False)


class _WordIndex:
    """scikit-learn's word n-grams -> vocabulary ids for a whole batch in numpy: tokens are looked up
    once each (ids 1..T of the tokens the vocabulary's terms are made of, 0 for any other), and an
    n-gram of tokens is the integer key sum(id_k * (T + 1) ** (n - 1 - k)), exact while
    (T + 1) ** max_n < 2 ** 63. A term is its tokens joined by " ", so splitting it on " " gives them
    back as long as no token holds a space: `rows_ids` answers None for a batch where one does."""

    def __init__(self, tokens: list[str], table: _KeyTable, min_n: int, max_n: int) -> None:
        self.min_n, self.max_n = min_n, max_n
        self.tokens = dict(zip(tokens, range(1, len(tokens) + 1)))
        self.base = len(tokens) + 1
        if len(self.tokens) != len(tokens) or self.base ** max_n >= 2**63:
            raise OverflowError(f"{len(tokens)} tokens: {max_n}-gram keys would not fit in 63 bits")
        self.index = table
        self.n_keyed = len(table.sorted_keys)

    @classmethod
    def build(cls, vocabulary: list[str], min_n: int, max_n: int,
              arrays: dict[str, np.ndarray] | None = None, prefix: str = "") -> _WordIndex | None:
        """The index (from `arrays`, as `export` wrote them, when given), or None where its keys would
        not fit in 63 bits."""
        if min_n < 1 or max_n < min_n:
            return None
        try:
            if arrays is not None:
                tokens = bytes(arrays[f"{prefix}.tokens"]).decode("utf-8", "surrogatepass").split(" ")
                return cls(tokens, _KeyTable.from_arrays(arrays, prefix), min_n, max_n)
            parts = " ".join(vocabulary).split(" ")
            tokens = list(dict.fromkeys(parts))
            if (len(tokens) + 1) ** max_n >= 2**63:
                return None
            ids_of = dict(zip(tokens, range(1, len(tokens) + 1)))
            token_ids = np.fromiter(map(ids_of.__getitem__, parts), dtype=np.int64, count=len(parts))
            # a term's size in tokens: where its first token is in `parts` (terms are joined by one " " too)
            ends = np.cumsum(np.fromiter(map(len, parts), dtype=np.int64, count=len(parts)) + 1)
            term_ends = np.cumsum(np.fromiter(map(len, vocabulary), dtype=np.int64, count=len(vocabulary)) + 1)
            first = np.concatenate([[True], np.isin(ends[:-1], term_ends)])
            starts = np.flatnonzero(first) if vocabulary else np.zeros(0, dtype=np.int64)
            sizes = np.diff(np.append(starts, len(parts)))
            keys, ids = _keys(token_ids, starts, sizes, range(min_n, max_n + 1), len(tokens) + 1)
            return cls(tokens, _KeyTable(keys, ids), min_n, max_n)
        except OverflowError:
            return None

    def export(self, prefix: str) -> dict[str, np.ndarray]:
        joined = " ".join(self.tokens).encode("utf-8", "surrogatepass")
        return {f"{prefix}.tokens": np.frombuffer(joined, dtype=np.uint8), **self.index.export(prefix)}

    def rows_ids(self, token_lists: list[list[str]]) -> tuple[np.ndarray, np.ndarray] | None:
        flat = [t for tokens in token_lists for t in tokens]
        if " " in "".join(flat):
            return None
        ids = np.fromiter(map(self.tokens.get, flat, repeat(0)), dtype=np.int64, count=len(flat))
        row_of = np.repeat(np.arange(len(token_lists), dtype=np.int64),
                           np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists)))
        return _window_ids(ids, row_of, self.base, self.min_n, self.max_n, self.index, True)


class TfidfBlock:
    """scikit-learn's TfidfVectorizer.transform, in numpy."""

    def __init__(self, config: dict[str, Any], vocabulary: list[str], idf: np.ndarray | None,
                 index: dict[str, np.ndarray] | None = None) -> None:
        """`index`: the block's n-gram index as `index_arrays` wrote it (else it is built from the vocabulary)."""
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
        self.terms = vocabulary
        self.n_features = len(vocabulary)
        # Batch lookups in numpy where the vocabulary allows (exact integer keys, see the classes).
        self._index: _CharWbIndex | _WordIndex | None = None
        if self.analyzer == "char_wb":
            self._index = _CharWbIndex.build(vocabulary, self.min_n, self.max_n, self.lowercase, index, self.name)
        elif self.analyzer == "word":
            self._index = _WordIndex.build(vocabulary, self.min_n, self.max_n, index, self.name)
        if self._index is None or self._index.n_keyed != self.n_features or self._index.index.duplicates:
            if len(self.vocabulary) != self.n_features:  # (an index keys every term: distinct keys, distinct terms)
                raise ModelError(f"{self.name}: duplicate terms in the vocabulary")
        self._word_ids: dict[str, tuple[int, ...]] = {}  # char_wb: word -> ids of its n-grams
        self.idf = None if idf is None else np.asarray(idf, dtype=np.float64)
        if self.idf is not None and self.idf.shape != (self.n_features,):
            raise ModelError(f"{self.name}: idf has shape {self.idf.shape}, vocabulary has {self.n_features} terms")

    @cached_property
    def vocabulary(self) -> dict[str, int]:
        """term -> feature index (the string path; blocks with a numpy index build it only when asked)."""
        return {term: i for i, term in enumerate(self.terms)}

    # ---- analyzers (scikit-learn's algorithms, term for term)
    def analyze(self, doc: str) -> list[str]:
        if self.lowercase:
            doc = doc.lower()
        if self.analyzer == "word":
            return self._word_ngrams(self.token_pattern.findall(doc))
        if self.analyzer == "char":
            return self._char_ngrams(doc)
        return self._char_wb_ngrams(doc)

    def _tokens(self, doc: str) -> list[str]:
        """The word analyzer's tokens, stop words removed (before n-grams are formed)."""
        tokens = self.token_pattern.findall(doc.lower() if self.lowercase else doc)
        if self.stop_words is not None:
            tokens = [w for w in tokens if w not in self.stop_words]
        return tokens

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
        index = self._index
        found_ids = None
        if isinstance(index, _CharWbIndex):
            found_ids = index.rows_ids(docs)
        elif index is not None:
            found_ids = index.rows_ids([self._tokens(doc) for doc in docs])
        if found_ids is not None:
            rows, ids = found_ids
        elif self.analyzer == "char_wb":
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
            # = SentiText(text): words stripped of leading/trailing punctuation unless <= 2 characters remain
            words = [w if len(s := w.strip(_PUNCTUATION)) <= 2 else s for w in text.split()]
            lower = [w.lower() for w in words]
            lexicon = self.lexicon
            if lexicon.keys().isdisjoint(lower):
                # No lexicon word: every sentiment is 0 (boosters and "but" only scale others), and
                # score_valence gives neu 1.0 for a text with words, all 0.0 for one without.
                return {"neg": 0.0, "neu": 1.0 if words else 0.0, "pos": 0.0, "compound": 0.0}
            n_caps = sum(map(str.isupper, words))
            is_cap_diff = 0 < len(words) - n_caps < len(words)  # = allcap_differential(words)
            sentiments: list[float] = []
            booster = vs.BOOSTER_DICT
            last = len(words) - 1
            for i, item in enumerate(lower):
                if item not in lexicon or item in booster or (i < last and item == "kind" and lower[i + 1] == "of"):
                    sentiments.append(0)
                else:
                    sentiments.append(self._valence(is_cap_diff, words, lower, i))
            if "but" in lower:  # _but_check changes nothing otherwise
                sentiments = self._but_check(words, sentiments)
            return self.score_valence(sentiments, text)

        def _valence(self, is_cap_diff: bool, words: list[str], lower: list[str], i: int) -> float:
            item_lowercase = lower[i]
            lexicon = self.lexicon
            valence = lexicon[item_lowercase]
            if item_lowercase == "no" and i != len(words) - 1 and lower[i + 1] in lexicon:
                valence = 0.0
            if (i > 0 and lower[i - 1] == "no") or (i > 1 and lower[i - 2] == "no") \
                    or (i > 2 and lower[i - 3] == "no" and lower[i - 1] in ["or", "nor"]):
                valence = lexicon[item_lowercase] * vs.N_SCALAR
            if words[i].isupper() and is_cap_diff:
                valence = valence + vs.C_INCR if valence > 0 else valence - vs.C_INCR
            for start_i in range(0, 3):
                if i > start_i and lower[i - (start_i + 1)] not in lexicon:
                    s = vs.scalar_inc_dec(words[i - (start_i + 1)], valence, is_cap_diff)
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

    def __init__(self, config: dict[str, Any], vocab: dict[str, list[str]], arrays: dict[str, np.ndarray],
                 index: dict[str, np.ndarray] | None = None) -> None:
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
            shipped = index if index is not None and f"{block['name']}.keys" in index else None
            self.blocks.append(TfidfBlock(block, terms, arrays.get(f"{block['name']}.idf"), shipped))
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

    def __init__(self, meta: dict[str, Any], vocab: dict[str, list[str]], arrays: dict[str, np.ndarray], path: Path | None = None,
                 index: dict[str, np.ndarray] | None = None) -> None:
        """`index`: the n-gram indexes of `write_index` (optional: built from the vocabularies without)."""
        if meta.get("format") != FORMAT:
            raise ModelError(f"unsupported model format {meta.get('format')!r} (this code reads {FORMAT})")
        self.meta = meta
        self.path = path
        self.task = meta["task"]
        self.name = meta.get("name", self.task)
        self.version = str(meta.get("version", "unknown"))
        self.classes = list(meta["classes"])
        self.options = meta.get("preprocess", {})
        self.components = [LinearComponent(c, vocab, arrays, index) for c in meta["components"]]
        self.combine = meta.get("combine")
        self.threshold = float(meta.get("threshold", 0.5))
        if len(self.components) > 1 and not self.combine:
            raise ModelError("several components need a 'combine' section")

    @classmethod
    def load(cls, path: str | Path) -> TextModel:
        path = Path(path)
        try:
            meta = json.loads((path / "model.json").read_text(encoding="utf-8"))
            vocab_bytes = (path / "vocab.json").read_bytes()
            vocab = json.loads(vocab_bytes.decode("utf-8"))
            with np.load(path / "arrays.npz", allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, json.JSONDecodeError, ValueError) as exc:
            raise ModelError(f"cannot load model from {path}: {exc}") from exc
        return cls(meta, vocab, arrays, path, _read_index(path, vocab_bytes))

    def index_arrays(self) -> dict[str, np.ndarray]:
        """The blocks' n-gram indexes as plain arrays (what `write_index` stores)."""
        out: dict[str, np.ndarray] = {}
        for component in self.components:
            for block in component.blocks:
                if block._index is not None:
                    out.update(block._index.export(block.name))
        return out

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


INDEX_FILE = "index.npz"  # optional: the blocks' n-gram indexes, so loading need not build them
INDEX_FORMAT = 1  # the key scheme and hash of _CharWbIndex, _WordIndex and _KeyTable


def _read_index(path: Path, vocab_bytes: bytes) -> dict[str, np.ndarray] | None:
    """The stored indexes when they were written for this vocab.json (its CRC-32) and this code's key
    scheme; None (build them) for a model without one or with a stale one."""
    try:
        with np.load(path / INDEX_FILE, allow_pickle=False) as npz:
            index = {k: npz[k] for k in npz.files}
    except (OSError, ValueError):
        return None
    if int(index.pop("index_format", -1)) != INDEX_FORMAT or int(index.pop("vocab_crc32", -1)) != zlib.crc32(vocab_bytes):
        return None
    return index


def write_index(path: str | Path) -> TextModel:
    """Build the n-gram indexes of the model in `path` and store them beside it (INDEX_FILE): ≈ 0.1 s
    less CPU per cold start for the shipped models. Returns the model."""
    path = Path(path)
    (path / INDEX_FILE).unlink(missing_ok=True)
    model = TextModel.load(path)  # built from the vocabularies
    arrays = model.index_arrays()
    np.savez_compressed(path / INDEX_FILE, index_format=np.int64(INDEX_FORMAT),
                        vocab_crc32=np.int64(zlib.crc32((path / "vocab.json").read_bytes())), **arrays)
    return model


def shipped_model_path(task: str) -> Path:
    return MODELS_DIR / task


@cache
def default_model(task: str) -> TextModel:
    """The model that ships with the library for `task` (loaded once per process)."""
    return TextModel.load(shipped_model_path(task))
