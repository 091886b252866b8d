"""The metrics type: exact values on hand-made mentions, additivity, and `evaluate` on a linker."""
from __future__ import annotations

import pytest

from kb.errors import InputError
from kb.types import Document, TextMention
from linker.training.evaluate import Metrics, evaluate, mention_record, score_links

# (gold, ranking, predicted); None is NIL
ROWS = [
    ("A", ["A", "B"], "A"),  # right, ranked first
    ("B", ["A", "B", "C"], "A"),  # wrong, gold ranked second
    ("C", ["A", "B", "D", "E", "F", "C"], None),  # NIL predicted, gold ranked sixth
    ("D", [], None),  # no candidate at all
    (None, ["A"], None),  # NIL gold, NIL predicted: right
    (None, ["B"], "B"),  # NIL gold, linked: wrong
]


def test_scores_of_hand_made_mentions():
    m = score_links(ROWS)
    assert (m.mentions, m.gold_nil, m.linkable, m.linked, m.true_positives) == (6, 2, 4, 3, 1)
    assert [r.gold_rank for r in m.records] == [1, 2, 6, None, None, None]
    assert m.hits_at_1 == m.recall_at(1) == 1 / 4
    assert (m.recall_at(5), m.recall_at(10), m.recall_at(30)) == (2 / 4, 3 / 4, 3 / 4)
    assert (m.precision, m.recall) == (1 / 3, 1 / 4)
    assert m.f1 == pytest.approx(2 / 7)
    assert (m.nil_predicted, m.nil_correct) == (3, 1)
    assert (m.nil_precision, m.nil_recall, m.nil_rate) == (1 / 3, 1 / 2, 3 / 6)
    d = m.to_dict()
    assert d["recall_at_k"] == {"1": 0.25, "5": 0.5, "10": 0.75, "30": 0.75}
    assert (d["hits_at_1"], d["micro_f1"], d["nil"]["gold"]) == (0.25, m.f1, 2)


def test_metrics_add_up():
    a, b = score_links(ROWS[:3]), score_links(ROWS[3:])
    assert a + b == score_links(ROWS)
    assert (a + b).to_dict() == score_links(ROWS).to_dict()
    assert Metrics() + a == a
    assert sum([a, b], Metrics()) == score_links(ROWS)
    with pytest.raises(TypeError):
        a + 1


def test_empty_metrics_are_zero_not_errors():
    d = Metrics().to_dict()
    assert d["mentions"] == 0 and d["hits_at_1"] == d["micro_f1"] == d["nil"]["rate"] == 0.0


def test_record_locates_the_mention():
    r = mention_record("Q1", ["Q2", "Q1"], "Q2", doc="d7", mention=TextMention(4, 9, "Paris"))
    assert (r.doc, r.surface, r.start, r.end, r.gold_rank, r.correct) == ("d7", "Paris", 4, 9, 2, False)


def test_evaluate_scores_the_linkers_rankings(tiny_linker):
    text = "Obama met Merkel in Paris."
    doc = Document("d", text, mentions=(TextMention(0, 5, "Obama"), TextMention(10, 16, "Merkel"),
                                        TextMention(20, 25, "Paris")))
    [ranked] = list(tiny_linker.rank_many([doc]))
    gold = ["Q76", "Q567", "Q167646"]
    m = evaluate(tiny_linker, [(doc, gold)], batch_size=1)
    assert m == Metrics(tuple(mention_record(g, r, link.entity, doc="d", mention=link.mention)
                              for g, (link, r) in zip(gold, ranked)))
    assert [r.surface for r in m.records] == ["Obama", "Merkel", "Paris"]
    assert m.recall_at(30) == 1.0  # every gold entity is a candidate of its surface
    with pytest.raises(InputError, match="2 gold ids for 3 mentions"):
        evaluate(tiny_linker, [(doc, gold[:2])])
