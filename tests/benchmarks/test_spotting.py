"""Scores of `run.py mel --no-spans`: matching predicted mentions to gold spans."""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.spotting import match_exact, match_overlap, spotting_scores  # noqa: E402
from kb.types import Document, Link, TextMention  # noqa: E402


def _m(start, end):
    return TextMention(start, end, "x" * (end - start))


def test_one_long_span_finds_one_gold_mention_at_most():
    gold = [_m(0, 6), _m(7, 11), _m(12, 15)]      # "Robert", "von ", "Mohl" of one long name
    predicted = [_m(0, 15)]
    assert len(match_overlap(gold, predicted)) == 1
    assert match_exact(gold, predicted) == {}


def test_overlap_matching_prefers_the_exact_span_then_the_larger_overlap():
    gold = [_m(11, 15)]
    predicted = [_m(0, 15), _m(11, 15), _m(12, 20)]
    assert match_overlap(gold, predicted) == {0: 1}
    assert match_overlap(gold, [_m(0, 12), _m(10, 16)]) == {0: 1}


def test_overlap_matching_is_maximal_not_greedy():
    # gold A equals predicted P; gold B overlaps only P; predicted Q overlaps only A.
    # Greedy exact-first (A-P) finds one; the matching A-Q, B-P finds both.
    A, B = _m(5, 10), _m(9, 14)
    P, Q = _m(5, 10), _m(3, 6)
    assert match_overlap([A, B], [P, Q]) == {0: 1, 1: 0}
    assert match_exact([A, B], [P, Q]) == {0: 0}


def test_exact_matching_uses_each_predicted_span_once():
    gold = [_m(0, 4), _m(0, 4)]
    assert match_exact(gold, [_m(0, 4)]) == {0: 0}
    assert match_exact(gold, [_m(0, 4), _m(0, 4)]) == {0: 0, 1: 1}


spans = st.tuples(st.integers(0, 30), st.integers(1, 6)).map(lambda t: _m(t[0], t[0] + t[1]))


@settings(max_examples=150, deadline=None)
@given(st.lists(spans, max_size=5), st.lists(spans, max_size=5))
def test_overlap_matching_is_one_to_one_and_maximum(gold, predicted):
    got = match_overlap(gold, predicted)
    assert len(set(got.values())) == len(got)
    assert all(gold[i].start < predicted[j].end and predicted[j].start < gold[i].end for i, j in got.items())
    best = 0  # brute force: the largest matching over all injective assignments
    for k in range(min(len(gold), len(predicted)), 0, -1):
        for gs in itertools.combinations(range(len(gold)), k):
            for ps in itertools.permutations(range(len(predicted)), k):
                if all(gold[i].start < predicted[j].end and predicted[j].start < gold[i].end for i, j in zip(gs, ps)):
                    best = k
                    break
            if best:
                break
        if best:
            break
    assert len(got) == best


def _scored(gold_complete):
    text = "Robert von Mohl met Kao and Lee."
    gold = (TextMention(11, 15, "Mohl"), TextMention(20, 23, "Kao"), TextMention(28, 31, "Lee"))
    doc = Document(id="d", text=text, mentions=gold)
    predicted = [Link(TextMention(0, 15, "Robert von Mohl"), "Q1", 0.9),  # overlaps Mohl: right entity
                 Link(TextMention(20, 23, "Kao"), "Q9", 0.5),            # exact, wrong entity
                 Link(TextMention(4, 6, "x"), None, 0.1)]                 # no gold: a false positive
    s = spotting_scores([doc], [["Q1", "Q2", "Q3"]], [predicted], [["Q1", "Q2", None]], gold_complete)
    return s, text


def test_spotting_scores_count_found_exact_and_correct():
    s, text = _scored(False)
    assert s["found"] == pytest.approx(2 / 3) and s["found_exact"] == pytest.approx(1 / 3)
    assert s["overlap"]["matched"] == 2 and s["exact"]["matched"] == 1
    assert s["accuracy_on_found"] == pytest.approx(1 / 2) and s["end_to_end_accuracy"] == pytest.approx(1 / 3)
    assert s["given_span_accuracy"] == pytest.approx(2 / 3) and s["given_span_accuracy_on_found"] == 1.0
    assert s["predicted_per_1000_chars"] == pytest.approx(3000 / len(text))
    assert s["linked_per_1000_chars"] == pytest.approx(2000 / len(text))


def test_precision_and_f1_only_where_the_gold_is_complete():
    s, _ = _scored(False)
    assert s["overlap"]["precision"] is None and s["overlap"]["f1"] is None
    assert s["overlap"]["precision_lower_bound"] == pytest.approx(2 / 3)
    s, _ = _scored(True)
    assert s["overlap"]["precision"] == pytest.approx(2 / 3) and s["exact"]["precision"] == pytest.approx(1 / 3)
    assert s["overlap"]["f1"] == pytest.approx(2 / 3)
    assert s["exact"]["f1"] == pytest.approx(1 / 3) and s["exact"]["recall"] == pytest.approx(1 / 3)


def test_a_long_span_over_two_gold_mentions_counts_once():
    text = "George Cleveland Jean Parker"
    gold = (TextMention(0, 16, "George Cleveland"), TextMention(17, 28, "Jean Parker"))
    doc = Document(id="d", text=text, mentions=gold)
    predicted = [Link(TextMention(0, 28, text), "Q1", 0.9)]
    s = spotting_scores([doc], [["Q1", "Q2"]], [predicted], [["Q1", "Q2"]], True)
    assert s["found"] == 0.5 and s["overlap"]["precision"] == 1.0 and s["accuracy_on_found"] == 1.0
