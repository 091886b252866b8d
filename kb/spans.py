"""Capitalised spans of a text: what a dictionary spotter may propose as a mention.

Pure functions shared by the KB build (which counts how often each span occurs in article text,
for link probability) and by the spotter (`linker.mentions`), so both see the same spans.

A *run* is a maximal sequence of words separated only by spaces that starts with a capitalised
word and holds only capitalised words, numbers and lower-case name joiners ("of", "de", "van",
...); punctuation ends it. A *span* is a part of a run of at most `max_tokens` words that starts
with a capitalised word and ends on a capitalised word or a number. A possessive `'s` and
trailing dots, apostrophes or hyphens are cut off the surface. Runs are found by one regular
expression, so plain lower-case text costs almost nothing.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

LOWER_JOINERS = frozenset({"of", "de", "van", "von", "da", "del", "der", "la", "le", "bin", "the", "and"})
_TAIL = r"[\w'’.\-]*"
WORD_PATTERN = re.compile(r"[^\W_]" + _TAIL)
_POSSESSIVE = ("'s", "’s")
_SENTENCE_END = ".!?:;\"“”()[]•|\n"


# A letter that is not ASCII lower case: a cheap superset of upper case (a Unicode upper-case
# class makes the scan ten times slower); `run_spans` checks `str.isupper` on what it finds.
_CAP = r"[^\W\d_a-z]" + _TAIL
_JOINER = "(?:" + "|".join(sorted(LOWER_JOINERS)) + r")(?![\w'’.\-])"
_RUN = re.compile(rf"(?<![\w'’.\-]){_CAP}(?:[ \t\u00a0]+(?:{_CAP}|\d{_TAIL}|{_JOINER}))*")


class Span(NamedTuple):  # a tuple: spans are made by the thousand per page
    """A candidate mention: `text[start:end] == surface`, `n_words` words long. `prefix`: a
    capitalised word follows it directly ("San" in "San Diego"); `suffix`: capitalised words
    precede it directly ("Diego"), from `run_start` on (`run_start == start` when none do; a
    joiner such as "and" or "of" separates: "Ethel" in "Stanley and Ethel" is no suffix)."""

    start: int
    end: int
    surface: str
    n_words: int
    prefix: bool
    suffix: bool
    run_start: int


def sentence_initial(text: str, start: int) -> bool:
    """True when `start` opens the text or follows sentence-ending punctuation (or a bracket,
    quote or line break), ignoring spaces."""
    i = start - 1
    while i >= 0 and text[i] in " \t\u00a0":
        i -= 1
    return i < 0 or text[i] in _SENTENCE_END


def _surface_end(text: str, start: int, end: int) -> int:
    surface = text[start:end]
    if surface.endswith(_POSSESSIVE) and len(surface) > 2:
        surface = surface[:-2]
    return start + len(surface.rstrip(".'’-"))


def runs(text: str) -> Iterator[tuple[int, int]]:
    """`(start, end)` of every capitalised run of `text`."""
    for m in _RUN.finditer(text):
        yield m.start(), m.end()


def _run_words(text: str, start: int, end: int) -> Iterator[list[tuple[int, int, str]]]:
    """The words of a run, split where a word cannot be inside a run (a lower-case word that is
    not a joiner) or after a word that ends a sentence ("Paris. Then")."""
    part: list[tuple[int, int, str]] = []
    for m in WORD_PATTERN.finditer(text, start, end):
        w = m.group()
        if not (w[0].isupper() or w[0].isdigit() or w in LOWER_JOINERS):
            if part:
                yield part
            part = []
            continue
        part.append((m.start(), m.end(), w))
        if _ends_sentence(w):
            yield part
            part = []
    if part:
        yield part


def _ends_sentence(word: str) -> bool:
    """A word with a final dot that is not an initial or abbreviation ("V.", "St.", "U.S.")."""
    return word.endswith(".") and len(word) > 4 and "." not in word[:-1]


def run_spans(text: str, start: int, end: int, max_tokens: int = 6) -> Iterator[list[Span]]:
    """Per start word of the run `text[start:end]`, its spans, longest first."""
    for ws in _run_words(text, start, end):
        yield from _word_spans(text, ws, max_tokens)


def _word_spans(text: str, ws: list[tuple[int, int, str]], max_tokens: int) -> Iterator[list[Span]]:
    cap = [w[2][0].isupper() or w[2][0].isdigit() for w in ws]
    stretch = 0  # first word of the capitalised stretch that word i belongs to
    for i, (w_start, _, w) in enumerate(ws):
        if not (i and cap[i - 1]):
            stretch = i
        if not w[0].isupper():
            continue
        out = []
        for j in range(min(len(ws), i + max_tokens) - 1, i - 1, -1):
            last = ws[j][2]
            if not (last[0].isupper() or last[0].isdigit()):
                continue
            s_end = _surface_end(text, w_start, ws[j][1])
            if s_end > w_start:
                prefix = j + 1 < len(ws) and cap[j + 1]
                out.append(Span(w_start, s_end, text[w_start:s_end], j - i + 1, prefix, stretch < i, ws[stretch][0]))
        if out:
            yield out


def surfaces(text: str, max_tokens: int = 6) -> Iterator[str]:
    """The surface of every candidate span of `text` (the fast path of `all_spans`)."""
    for start, end in runs(text):
        for ws in _run_words(text, start, end):
            for i, (w_start, _, w) in enumerate(ws):
                if not w[0].isupper():
                    continue
                for j in range(i, min(len(ws), i + max_tokens)):
                    last = ws[j][2]
                    if last[0].isupper() or last[0].isdigit():
                        yield text[w_start : _surface_end(text, w_start, ws[j][1])]


def all_spans(text: str, max_tokens: int = 6) -> Iterator[Span]:
    """Every candidate span of `text` (overlapping), by start word, longest first."""
    for start, end in runs(text):
        for group in run_spans(text, start, end, max_tokens):
            yield from group


def lower_spans(text: str, max_tokens: int = 4) -> Iterator[list[Span]]:
    """Per start word, the spans of up to `max_tokens` lower-case words, longest first: parts of
    a *lower-case run* (words that start with a lower-case letter, separated only by spaces;
    punctuation, a possessive or a final dot ends it). The common nouns of general text
    ("galaxies", "political philosophy"); whether one is a mention is the KB's to say (link
    probability from a dump)."""
    run: list[tuple[int, int]] = []
    prev_end = -1
    for m in WORD_PATTERN.finditer(text):
        w = m.group()
        joined = prev_end >= 0 and not text[prev_end : m.start()].strip(" \t\u00a0")
        if not joined or not w[0].islower():
            yield from _lower_groups(text, run, max_tokens)
            run = []
        if w[0].islower():
            run.append((m.start(), m.end()))
            prev_end = m.end()
            if _surface_end(text, m.start(), m.end()) < m.end():  # "galaxies." or "planet's" ends it
                yield from _lower_groups(text, run, max_tokens)
                run, prev_end = [], -1
        else:
            prev_end = -1
    yield from _lower_groups(text, run, max_tokens)


def _lower_groups(text: str, ws: list[tuple[int, int]], max_tokens: int) -> Iterator[list[Span]]:
    for i, (w_start, _) in enumerate(ws):
        out = []
        for j in range(min(len(ws), i + max_tokens) - 1, i - 1, -1):
            s_end = _surface_end(text, w_start, ws[j][1])
            if s_end > w_start:
                out.append(Span(w_start, s_end, text[w_start:s_end], j - i + 1, False, False, w_start))
        if out:
            yield out
