"""spaCy's English tokenizer, ported to plain Python over spaCy's own rules (no spaCy import).

`spacy.blank("en")` costs Enrich ≈ 0.7 s of cold start (import, its CLI package, 1,351 special
cases) and its Doc/Lexeme machinery more per text than the rules need. This module runs the
algorithm of spaCy 3.8's `Tokenizer` (tokenizer.pyx: `_tokenize_affixes`, `_split_affixes`,
`_attach_tokens`, `_apply_special_cases`) step for step on the prefix, suffix, infix and URL
patterns and the special cases exported from spaCy into `en_tokenizer_rules.json`
(tools/export_tokenizer_rules.py). tests/unit/test_en_tokenizer.py checks token texts, offsets
and trailing spaces against spaCy on tens of thousands of real texts, and the rules file against
the installed spaCy.

A token is (text, idx, space): its text, its character offset and whether one " " follows it.
"""

from __future__ import annotations

import json
import re
from functools import cache
from itertools import accumulate
from pathlib import Path
from typing import NamedTuple

RULES_FILE = Path(__file__).with_name("en_tokenizer_rules.json")
CACHE_SIZE = 100_000  # distinct whitespace-separated chunks remembered (spaCy keeps 10,000)
_RUNS = re.compile(r"\s+|\S+")  # \s is str.isspace(), spaCy's whitespace test
_NOT_SIMPLE = re.compile(r"[^\S ]|  |^ | $")  # any whitespace but single inner spaces


class Token(NamedTuple):
    text: str
    idx: int
    space: bool


def _compile(spec: dict) -> re.Pattern[str]:
    return re.compile(spec["pattern"], spec["flags"])


class Tokenizer:
    """`tokenize(text)` gives the same tokens as spaCy's English tokenizer with the same special cases."""

    def __init__(self, rules: dict, extra_specials: dict[str, list[str]] | None = None) -> None:
        self._prefix = _compile(rules["prefix"]).search
        self._suffix = _compile(rules["suffix"]).search
        self._infix = _compile(rules["infix"]).finditer
        self._url = _compile(rules["url"]).match
        self.specials: dict[str, tuple[str, ...]] = {}
        # Phase two (spaCy's _special_matcher): special cases that affix splitting can break up
        # ("a.m.", ":)"), found again as token sequences: first token -> [(tokens, special)].
        self._rematch: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        self._rematch_pairs: set[tuple[str, str]] = set()  # their first two tokens: a cheap test per text
        self._rematch_single: set[str] = set()
        self._cache: dict[str, tuple[tuple[str, ...], tuple[bool, ...]]] = {}
        for text, pieces in sorted({**rules["specials"], **(extra_specials or {})}.items()):
            self.add_special_case(text, pieces, heuristics=rules.get("faster_heuristics", True))

    def add_special_case(self, text: str, pieces: list[str], heuristics: bool = True) -> None:
        if "".join(pieces) != text:
            raise ValueError(f"special case {text!r}: pieces {pieces!r} do not spell it")
        self.specials[text] = tuple(pieces)
        self._cache.clear()
        if not heuristics or self._find_prefix(text) or list(self._infix(text)) or self._find_suffix(text) or " " in text:
            key = tuple(self.split(text, with_specials=False)[0])
            entries = self._rematch.setdefault(key[0], [])
            entries[:] = [e for e in entries if e[1] != text] + [(key, text)]
            if len(key) > 1:
                self._rematch_pairs.add(key[:2])
            else:
                self._rematch_single.add(key[0])

    def _find_prefix(self, s: str) -> int:
        m = self._prefix(s)
        return m.end() - m.start() if m is not None else 0

    def _find_suffix(self, s: str) -> int:
        m = self._suffix(s)
        return m.end() - m.start() if m is not None else 0

    # ---- phase one: split on whitespace, then affixes, specials and infixes per chunk
    def split(self, text: str, with_specials: bool = True) -> tuple[list[str], list[bool]]:
        """Token texts and trailing-space flags (offsets follow: tokens and single spaces tile the text)."""
        words: list[str] = []
        spaces: list[bool] = []
        if not text:
            return words, spaces
        chunk_of = self._chunk if with_specials else self._chunk_plain
        if _NOT_SIMPLE.search(text) is None:  # words and single spaces only (cleaned text): split(" ") = the runs
            for part in text.split(" "):
                pieces, flags = chunk_of(part)
                words += pieces
                spaces += flags
            spaces[-1] = False
        else:
            start = 0
            for run in _RUNS.finditer(text):
                i = run.start()
                if i:  # a transition at i (runs alternate whitespace / non-whitespace)
                    if start < i:
                        pieces, flags = chunk_of(text[start:i])
                        words += pieces
                        spaces += [False] * len(pieces)
                    if text[i] == " ":  # one " " after a token is its trailing space, not a token
                        spaces[-1] = True
                        start = i + 1
                    else:
                        start = i
            if start < len(text):
                pieces, flags = chunk_of(text[start:])
                words += pieces
                spaces += [False] * len(pieces)
        if with_specials and not (self._rematch_pairs.isdisjoint(zip(words, words[1:])) and self._rematch_single.isdisjoint(words)):
            words, spaces = self._apply_special_cases(words, spaces)
        return words, spaces

    def _chunk(self, chunk: str) -> tuple[tuple[str, ...], tuple[bool, ...]]:
        """(pieces, flags): flags mark the last piece as followed by a space (the split(" ") case)."""
        known = self._cache.get(chunk)
        if known is None:
            pieces = self.specials.get(chunk) or self._split(chunk, True)
            known = (pieces, (False,) * (len(pieces) - 1) + (True,))
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[chunk] = known
        return known

    def _chunk_plain(self, chunk: str) -> tuple[tuple[str, ...], tuple[bool, ...]]:
        pieces = self._split(chunk, False)
        return pieces, (False,) * (len(pieces) - 1) + (True,)

    def _split(self, string: str, with_specials: bool) -> tuple[str, ...]:
        """spaCy's _split_affixes + _attach_tokens for one chunk."""
        specials = self.specials if with_specials else {}
        prefixes: list[str] = []
        suffixes: list[str] = []
        last_size = 0
        cache = self._cache if with_specials else {}
        while string and len(string) != last_size:
            if string in specials:
                break
            if prefixes or suffixes:
                # What is left once an affix is off is split as a chunk of its own would be (the loop goes on
                # from the string alone): a known chunk ("thanks" inside "thanks!") needs no more regexes.
                known = cache.get(string)
                if known is not None:
                    return (*prefixes, *known[0], *reversed(suffixes))
            last_size = len(string)
            pre_len = self._find_prefix(string)
            if pre_len:
                prefix, minus_pre = string[:pre_len], string[pre_len:]
                if minus_pre and minus_pre in specials:
                    string = minus_pre
                    prefixes.append(prefix)
                    break
            suf_len = self._find_suffix(string[pre_len:])
            if suf_len:
                suffix, minus_suf = string[-suf_len:], string[:-suf_len]
                if minus_suf and minus_suf in specials:
                    string = minus_suf
                    suffixes.append(suffix)
                    break
            if pre_len and suf_len and pre_len + suf_len <= len(string):
                string = string[pre_len:-suf_len]
                prefixes.append(prefix)
                suffixes.append(suffix)
            elif pre_len:
                string = minus_pre
                prefixes.append(prefix)
            elif suf_len:
                string = minus_suf
                suffixes.append(suffix)
        middle: list[str] = []
        if string:
            # spaCy looks the middle up in its specials and its chunk cache; a cached chunk equal to a
            # middle had no affixes either, so computing it again gives the same tokens.
            known = specials.get(string)
            if known is not None:
                middle = list(known)
            elif self._url(string):
                middle = [string]
            else:
                start = 0
                for m in self._infix(string):
                    infix_start, infix_end = m.start(), m.end()
                    if infix_start == 0:  # spaCy: `infix_start == start_before_infixes`, which stays 0
                        continue
                    if infix_start != start:
                        middle.append(string[start:infix_start])
                    if infix_start != infix_end:
                        middle.append(string[infix_start:infix_end])
                    start = infix_end
                if string[start:]:
                    middle.append(string[start:])
        return (*prefixes, *middle, *reversed(suffixes))

    # ---- phase two: special cases that span several phase-one tokens
    def _apply_special_cases(self, words: list[str], spaces: list[bool]) -> tuple[list[str], list[bool]]:
        matches: list[tuple[int, int]] = []
        for i, word in enumerate(words):
            for key, _ in self._rematch.get(word, ()):
                if tuple(words[i : i + len(key)]) == key:
                    matches.append((i, i + len(key)))
        if not matches:
            return words, spaces
        # spaCy's _filter_special_spans: longest first, then the earliest; only the end tokens are checked.
        matches.sort(key=lambda m: (m[1] - m[0], -m[0]), reverse=True)
        seen: set[int] = set()
        kept: dict[int, int] = {}
        for s, e in matches:
            if s not in seen and e - 1 not in seen:
                kept[s] = e
            seen.update(range(s, e))
        out_words: list[str] = []
        out_spaces: list[bool] = []
        i = 0
        while i < len(words):
            e = kept.get(i)
            if e is None:
                out_words.append(words[i])
                out_spaces.append(spaces[i])
                i += 1
                continue
            span_text = "".join(w + " " * sp for w, sp in zip(words[i : e - 1], spaces[i : e - 1])) + words[e - 1]
            pieces = self.specials.get(span_text)
            if pieces is None:
                out_words += words[i:e]
                out_spaces += spaces[i:e]
            else:
                out_words += pieces
                out_spaces += [False] * (len(pieces) - 1) + [spaces[e - 1]]
            i = e
        return out_words, out_spaces

    def tokenize(self, text: str) -> list[Token]:
        words, spaces = self.split(text)
        return [Token(w, i, sp) for w, i, sp in zip(words, offsets(words, spaces), spaces)]


def offsets(words: list[str], spaces: list[bool]) -> list[int]:
    """Character offset of each token: tokens and their single trailing spaces tile the text."""
    return [0, *accumulate(len(w) + sp for w, sp in zip(words[:-1], spaces[:-1]))] if words else []


@cache
def rules() -> dict:
    return json.loads(RULES_FILE.read_text(encoding="utf-8"))
