"""A static sentence embedding distilled from all-MiniLM-L6-v2, fine-tuned on support intents: numpy only at run time.

Each known word and frequent word pair has a learned vector; a word outside the vocabulary
is spelled out as hashed character n-grams, each with a learned vector too. A text's embedding
is the sum of its feature vectors, centred and L2-normalised. The table was fitted (see
tools/build_embedding_model.py) so that this sum points where the MiniLM sentence embedding
of the same text points (support-static-v1); support-static-v2, the shipped table, is v1 with its
rows fine-tuned on labelled support intents (tools/finetune_embedding.py). The artifact is a
plain `.npz` (no pickle), loaded once per process.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

ARTIFACT = Path(__file__).resolve().parents[1] / "models" / "embedding" / "support-static-v2.npz"

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
GATHER_ROWS = 256  # feature rows summed per numpy call in encode (256 KB of float32 at dim 256)
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'"})


def tokenize(text: str) -> list[str]:
    """Lower-cased words (letters/digits, one inner apostrophe kept: "don't", "i'm")."""
    return _TOKEN.findall(text.lower().translate(_APOSTROPHES))


def char_ngrams(word: str, sizes: tuple[int, ...]) -> list[str]:
    """Character n-grams of "<word>" for the given sizes (the out-of-vocabulary spelling)."""
    padded = f"<{word}>"
    return [padded[i:i + n] for n in sizes for i in range(len(padded) - n + 1)]


def ngram_bucket(gram: str, buckets: int) -> int:
    return zlib.crc32(gram.encode("utf-8")) % buckets


def features(tokens: list[str], index: dict[str, int], ngram_sizes: tuple[int, ...], buckets: int,
             bucket_offset: int) -> list[int]:
    """Row ids of a token list: known words, known word pairs, n-gram buckets of unknown words."""
    get = index.get
    ids: list[int | None] = list(map(get, tokens))
    if None in ids:  # some word is unknown: spelled out as n-gram buckets (or dropped without buckets)
        known = ids
        ids = []
        for word, row in zip(tokens, known):
            if row is not None:
                ids.append(row)
            elif buckets:
                ids.extend(bucket_offset + ngram_bucket(g, buckets) for g in char_ngrams(word, ngram_sizes))
    if len(tokens) > 1:  # known pairs: "a b" as " ".join((a, b))
        ids += [row for row in map(get, map(" ".join, zip(tokens, tokens[1:]))) if row is not None]
    return ids  # type: ignore[return-value]  # no None is left


@dataclass(frozen=True)
class StaticEmbedding:
    model_id: str
    index: dict[str, int]
    vectors: np.ndarray  # (vocab + buckets, dim) float32
    center: np.ndarray  # (dim,) float32, subtracted from the normalised sum
    ngram_sizes: tuple[int, ...]
    buckets: int

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @classmethod
    def load(cls, path: Path | str) -> StaticEmbedding:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode("utf-8"))
            words = bytes(data["vocab"]).decode("utf-8").split("\n")
            vectors = data["vectors"].astype(np.float32)
            center = data["center"].astype(np.float32)
        if len(words) + meta["buckets"] != len(vectors):
            raise ValueError(f"{path}: {len(words)} words + {meta['buckets']} buckets != {len(vectors)} rows")
        return cls(meta["id"], {w: i for i, w in enumerate(words)}, vectors, center,
                   tuple(meta["ngram_sizes"]), int(meta["buckets"]))

    def feature_ids(self, text: str) -> list[int]:
        return features(tokenize(text), self.index, self.ngram_sizes, self.buckets, len(self.index))

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit float32 rows; a text with no usable token gives a zero row."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        per_text = [self.feature_ids(text) for text in texts]
        rows = [row for row, ids in enumerate(per_text) if ids]
        if not rows:
            return out
        sums = np.empty((len(rows), self.dim), dtype=np.float32)
        # The rows of a few texts at a time (about GATHER_ROWS feature rows): the gathered block stays
        # in cache, where one gather for the whole batch (megabytes) made the sum twice as slow. Each
        # text's rows are still added in order (reduceat), so the sums are the same bits.
        flat: list[int] = []
        starts: list[int] = []
        first = 0
        last = len(rows) - 1
        for k, row in enumerate(rows):
            starts.append(len(flat))
            flat += per_text[row]
            if len(flat) >= GATHER_ROWS or k == last:
                np.add.reduceat(self.vectors[np.asarray(flat, dtype=np.int64)], np.asarray(starts), axis=0,
                                out=sums[first : k + 1])
                flat, starts, first = [], [], k + 1
        sums /= np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
        sums -= self.center
        sums /= np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
        out[np.asarray(rows)] = sums
        return out


@cache
def default_model() -> StaticEmbedding:
    """The shipped model, loaded once per process."""
    return StaticEmbedding.load(ARTIFACT)
