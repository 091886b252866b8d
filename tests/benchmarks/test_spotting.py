"""Scores of `run.py mel --no-spans`: matching predicted mentions to gold spans."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.spotting import overlapping, spotting_scores  # noqa: E402
from kb.types import Document, Link, TextMention  # noqa: E402


def test_overlapping_prefers_the_exact_span():
    a, b, c = TextMention(0, 15, "Robert von Mohl"), TextMention(11, 15, "Mohl"), TextMention(20, 25, "Other")
    assert overlapping(11, 15, [a, b, c]) == [b, a]
    assert overlapping(30, 35, [a, b, c]) == []


def test_spotting_scores_count_found_exact_and_correct():
    text = "Robert von Mohl met Kao and Lee."
    gold = (TextMention(11, 15, "Mohl"), TextMention(20, 23, "Kao"), TextMention(28, 31, "Lee"))
    doc = Document(id="d", text=text, mentions=gold)
    predicted = [Link(TextMention(0, 15, "Robert von Mohl"), "Q1", 0.9),  # overlaps Mohl: right entity
                 Link(TextMention(20, 23, "Kao"), "Q9", 0.5),            # exact, wrong entity
                 Link(TextMention(4, 6, "x"), None, 0.1)]                 # no gold: counts only in the rate
    s = spotting_scores([doc], [["Q1", "Q2", "Q3"]], [predicted], [["Q1", "Q2", None]])
    assert s["found"] == pytest.approx(2 / 3) and s["found_exact"] == pytest.approx(1 / 3)
    assert s["accuracy_on_found"] == pytest.approx(1 / 2) and s["end_to_end_accuracy"] == pytest.approx(1 / 3)
    assert s["given_span_accuracy"] == pytest.approx(2 / 3) and s["given_span_accuracy_on_found"] == 1.0
    assert s["predicted_per_1000_chars"] == pytest.approx(3000 / len(text))
    assert s["linked_per_1000_chars"] == pytest.approx(2000 / len(text))
