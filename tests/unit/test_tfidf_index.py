"""The numpy n-gram indexes of domain.models (char_wb and word) against scikit-learn's analyzers.

`TfidfBlock` looks a whole batch's n-grams up as integer keys in a hash table instead of building
n-gram strings (issue 14 part 4); these properties say that the counts are scikit-learn's
CountVectorizer counts for arbitrary unicode, vocabularies that hold some of the text's n-grams
and not others, and every parameter the index accepts.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import CountVectorizer

from supportlens.domain import models
from supportlens.domain.models import TfidfBlock, _CharWbIndex, _KeyTable, _WordIndex

# Arbitrary unicode (lone surrogates and every kind of whitespace included) plus a small alphabet
# that makes shared n-grams, repeated words and runs of spaces likely.
_ANY_CHAR = st.characters(exclude_categories=())
_SMALL = st.sampled_from(list("ab AB\t\n\u00a0\u2003\u0130\u00df\u0301é😀\ud800,'"))
TEXTS = st.lists(st.text(st.one_of(_ANY_CHAR, _SMALL, _SMALL), max_size=40), min_size=1, max_size=8)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _vocabulary(analyzer, texts: list[str], extra: list[str], keep: list[bool]) -> list[str]:
    """Some of the texts' own n-grams (so lookups hit) and some of other texts' (so they also miss);
    every other text gives none, so that its characters and tokens are often unknown to the index."""
    grams = sorted({g for t in texts[::2] + extra for g in analyzer(t)})
    chosen = [g for g, k in zip(grams, keep * (len(grams) // max(len(keep), 1) + 1)) if k]
    return chosen or grams[:1] or ["zz"]


def _block(analyzer: str, vocabulary: list[str], **config) -> TfidfBlock:
    return TfidfBlock({"name": "b", "analyzer": analyzer, "norm": None, **config}, vocabulary, None)


def _assert_counts_equal(block: TfidfBlock, vectorizer: CountVectorizer, texts: list[str]) -> None:
    ours = block.counts(texts).toarray()
    theirs = vectorizer.transform(texts).toarray()
    np.testing.assert_array_equal(ours, theirs)


@SETTINGS
@given(texts=TEXTS, extra=TEXTS, keep=st.lists(st.booleans(), min_size=1, max_size=7),
       ngram=st.sampled_from([(2, 2), (2, 3), (2, 5), (3, 3), (3, 5), (2, 7)]), lowercase=st.booleans())
def test_char_wb_index_counts_equal_sklearn(texts, extra, keep, ngram, lowercase):
    analyzer = CountVectorizer(analyzer="char_wb", ngram_range=ngram, lowercase=lowercase).build_analyzer()
    vocabulary = _vocabulary(analyzer, texts, extra, keep)
    # Windows across two words (they hold the two pads, "  "): terms no char_wb analyzer makes, never counted.
    across = {w[i : i + n] for t in texts for w in [" " + "  ".join((t.lower() if lowercase else t).split()) + " "]
              for n in range(ngram[0], ngram[1] + 1) for i in range(len(w) - n + 1) if "  " in w[i : i + n]}
    vocabulary += sorted(across - set(vocabulary))
    block = _block("char_wb", vocabulary, ngram_range=list(ngram), lowercase=lowercase)
    assert isinstance(block._index, _CharWbIndex)  # the numpy path, not the string fallback
    vectorizer = CountVectorizer(analyzer="char_wb", ngram_range=ngram, lowercase=lowercase, vocabulary=vocabulary)
    _assert_counts_equal(block, vectorizer, texts)


@SETTINGS
@given(texts=TEXTS, extra=TEXTS, keep=st.lists(st.booleans(), min_size=1, max_size=7),
       ngram=st.sampled_from([(1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 3)]), lowercase=st.booleans(),
       pattern=st.sampled_from([r"(?u)\b\w\w+\b", r"(?u)\b\w[\w']*\b", r"\S+", r"[ab]*"]), stop=st.booleans())
def test_word_index_counts_equal_sklearn(texts, extra, keep, ngram, lowercase, pattern, stop):
    stop_words = ["a", "the", "ab"] if stop else None
    options = dict(ngram_range=ngram, lowercase=lowercase, token_pattern=pattern, stop_words=stop_words)
    analyzer = CountVectorizer(**options).build_analyzer()
    vocabulary = _vocabulary(analyzer, texts, extra, keep)
    block = _block("word", vocabulary, ngram_range=list(ngram), lowercase=lowercase, token_pattern=pattern,
                   stop_words=stop_words)
    assert isinstance(block._index, _WordIndex)
    _assert_counts_equal(block, CountVectorizer(**options, vocabulary=vocabulary), texts)


def test_an_unknown_character_is_not_the_start_of_a_shorter_key():
    # "xab" would have the key of "ab" if the unknown "x" (code 0) were not masked
    block = _block("char_wb", ["ab", "b "], ngram_range=[2, 3])
    np.testing.assert_array_equal(block.counts(["xab", "yxab ab"]).toarray(), [[1, 1], [2, 2]])
    words = _block("word", ["b", "b c"], ngram_range=[1, 2], token_pattern=r"\w+")
    np.testing.assert_array_equal(words.counts(["a b c", "x b c b"]).toarray(), [[1, 1], [2, 1]])


def test_a_token_with_a_space_takes_the_string_path():
    # r"[^,]+" makes tokens with spaces: "a b" is then one token, not the bigram of "a" and "b"
    options = dict(ngram_range=(1, 2), token_pattern=r"[^,]+")
    texts = ["a b,c", "a,b c", "a b, a b"]
    vocabulary = sorted({g for t in texts for g in CountVectorizer(**options).build_analyzer()(t)})
    block = _block("word", vocabulary, ngram_range=[1, 2], token_pattern=r"[^,]+")
    assert block._index.rows_ids([["a b", "c"]]) is None
    _assert_counts_equal(block, CountVectorizer(**options, vocabulary=vocabulary), texts)


def test_vocabularies_the_index_cannot_key_use_the_string_path():
    wide = [chr(0x4E00 + i) + chr(0x4E00 + i + 1) for i in range(0, 9000, 2)]  # 9,000 characters: 14 bits x 5 > 63
    assert _CharWbIndex.build(wide, 2, 5, True) is None
    assert _CharWbIndex.build(wide, 2, 4, True) is not None  # 14 x 4 = 56 bits
    assert _CharWbIndex.build(["ab"], 1, 3, True) is None  # 1-grams: not a char_wb window rule
    texts = ["\u4e00\u4e01 \u4e02", "x"]
    block = _block("char_wb", wide, ngram_range=[2, 5])
    assert block._index is None
    _assert_counts_equal(block, CountVectorizer(analyzer="char_wb", ngram_range=(2, 5), vocabulary=wide), texts)


def test_duplicate_terms_are_refused_with_and_without_an_index():
    for analyzer, vocabulary in (("char_wb", [" a", "ab", " a"]), ("word", ["a", "a b", "a"]), ("char", ["a", "a"])):
        with pytest.raises(models.ModelError, match="duplicate"):
            _block(analyzer, vocabulary, ngram_range=[2, 3] if analyzer == "char_wb" else [1, 2])


def test_key_table_finds_every_key_and_nothing_else():
    rng = np.random.default_rng(0)
    keys = np.unique(rng.integers(0, 2**62, 20_000))
    ids = rng.permutation(len(keys))
    table = _KeyTable(keys, ids)
    assert not table.duplicates and table.max_probes >= 2  # some keys were displaced: probing is exercised
    queries = np.concatenate([keys, rng.integers(0, 2**62, 20_000), keys[:100]])
    hit, found = table.lookup(queries)
    expected = dict(zip(keys.tolist(), ids.tolist()))
    got = dict(zip(hit.tolist(), found.tolist()))
    assert got == {i: expected[q] for i, q in enumerate(queries.tolist()) if q in expected}
    assert _KeyTable(np.array([5, 5]), np.array([0, 1])).duplicates
    empty = _KeyTable(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    assert [len(a) for a in empty.lookup(np.array([1, 2]))] == [0, 0]


# --------------------------------------------------------------------------- the stored indexes (index.npz)


@pytest.mark.parametrize("task", ["sentiment", "abuse"])
def test_shipped_index_is_the_one_the_vocabulary_gives(task):
    path = models.shipped_model_path(task)
    stored = models._read_index(path, (path / "vocab.json").read_bytes())
    assert stored is not None, "index.npz is missing or stale: run models.write_index on the model directory"
    built = models.TextModel(*_parts(path)).index_arrays()  # no index given: built from the vocabularies
    assert sorted(stored) == sorted(built) and len(built) >= 6
    for key in built:
        np.testing.assert_array_equal(stored[key], built[key], err_msg=key)
    loaded = models.TextModel.load(path)
    assert all(b._index is not None for c in loaded.components for b in c.blocks if b.analyzer != "char")


def _parts(path):
    import json

    meta = json.loads((path / "model.json").read_text(encoding="utf-8"))
    vocab = json.loads((path / "vocab.json").read_text(encoding="utf-8"))
    with np.load(path / "arrays.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return meta, vocab, arrays


def test_a_stale_index_is_ignored(tmp_path):
    import json
    import shutil

    source = models.shipped_model_path("sentiment")
    shutil.copytree(source, tmp_path / "m")
    texts = ["the flight was delayed again", "love it, thanks!!", "wifi not working"]
    vocab = json.loads((tmp_path / "m" / "vocab.json").read_text(encoding="utf-8"))
    a, b = vocab["char"].index(" l"), vocab["char"].index("ov")
    vocab["char"][a], vocab["char"][b] = vocab["char"][b], vocab["char"][a]  # same terms, two features swapped
    (tmp_path / "m" / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    stale = models.TextModel.load(tmp_path / "m")
    block = stale.components[0].blocks[1]
    reference = _block("char_wb", vocab["char"], ngram_range=[2, 5], sublinear_tf=True)
    reference._index = None  # the string path
    np.testing.assert_array_equal(block.counts(texts).toarray(), reference.counts(texts).toarray())
    assert models._read_index(tmp_path / "m", (tmp_path / "m" / "vocab.json").read_bytes()) is None
    models.write_index(tmp_path / "m")  # written again: read, and the same answer
    assert models._read_index(tmp_path / "m", (tmp_path / "m" / "vocab.json").read_bytes()) is not None
    np.testing.assert_array_equal(models.TextModel.load(tmp_path / "m").components[0].blocks[1].counts(texts).toarray(),
                                  reference.counts(texts).toarray())


@pytest.mark.parametrize("task", ["sentiment", "abuse"])
def test_shipped_models_give_the_string_paths_scores_on_the_sample(task):
    """Old == new on real text: the bundled TWCS sample scored with the indexes and with the string path."""
    import csv

    from supportlens.domain import text as textlib
    from tests.conftest import SAMPLE

    with SAMPLE.open(newline="", encoding="utf-8") as fh:
        rows = [r["text"] for r in csv.DictReader(fh)]
    texts = rows[:600] + [textlib.mask_pii(textlib.clean_text(r))[0] for r in rows[600:1200]]
    fast = models.TextModel.load(models.shipped_model_path(task))
    slow = models.TextModel.load(models.shipped_model_path(task))
    for block in (b for c in slow.components for b in c.blocks):
        block._index = None
    assert any(b._index is not None for c in fast.components for b in c.blocks)
    for i in range(0, len(texts), 100):
        np.testing.assert_array_equal(fast.proba(texts[i : i + 100]), slow.proba(texts[i : i + 100]))
