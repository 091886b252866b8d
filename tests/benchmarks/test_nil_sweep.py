"""`benchmarks/nil_sweep.py`: NIL decided at other thresholds from one linking pass."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import report  # noqa: E402
from benchmarks.nil_sweep import at_threshold, top_decisions  # noqa: E402
from linker.calibration import decision_score  # noqa: E402
from linker.pipeline import Linker  # noqa: E402

# (gold, ranking, best candidate, its score): two right links, one wrong, one NIL gold
ROWS = [("A", ["A", "B"], "A", 0.9), ("B", ["B"], "B", 0.4), ("C", ["D", "C"], "D", 0.6), (None, ["E"], "E", 0.3)]


def test_each_threshold_decides_nil_under_it():
    low = at_threshold(ROWS, 0.0)  # links all four: 2 right of 4 links, 3 in-KB golds
    assert low["in_kb_nil"] == 0 and low["precision"] == 0.5 and low["recall"] == 2 / 3 and low["nil_recall"] == 0
    mid = at_threshold(ROWS, 0.35)  # the NIL gold becomes NIL, every in-KB mention still linked
    assert mid["in_kb_nil"] == 0 and mid["nil_precision"] == 1 and mid["nil_recall"] == 1 and mid["precision"] == 2 / 3
    high = at_threshold(ROWS, 0.5)  # "B" (0.4) is lost too: one in-KB mention of three decided NIL
    assert high["in_kb_nil"] == 1 / 3 and high["nil_precision"] == 0.5 and high["recall"] == 1 / 3


def test_top_decisions_keep_the_best_candidate_under_the_threshold(tiny_linker):
    from kb.types import Document, TextMention

    doc = Document("d", "Paris is lovely in spring.", mentions=(TextMention(0, 5, "Paris"),))
    (gold, ranking, top, score), = top_decisions(tiny_linker, [(doc, ["Q90"])])
    link = tiny_linker.link(doc)[0]
    assert gold == "Q90" and top == ranking[0] and score == link.score
    assert at_threshold([(gold, ranking, top, score)], score + 1)["in_kb_nil"] == 1
    # the sweep decides as the linker does: on the decision score, with the model's lead
    led = Linker(tiny_linker.kb, tiny_linker.index, tiny_linker.encoder, tiny_linker.reranker,
                 tiny_linker.config.override({"nil_lead": 2.0}))
    (_, _, _, led_score), = top_decisions(led, [(doc, ["Q90"])])
    link = led.link(doc)[0]
    assert led_score == decision_score(link.candidates[0].score, link.candidates[1].score, 2.0) != score


def test_report_renders_one_row_per_threshold():
    sets = {name: {"mentions": 4, "thresholds": [{"offset": d, "threshold": 0.3 + d, **at_threshold(rows, 0.3 + d)}
                                                  for d in (-0.1, 0.0, 0.2)]}
            for name, rows in (("people", ROWS[:3]), ("with nil", ROWS))}
    lines = report.section_nil_sweep({"nil_sweep": {"sets": sets}})
    assert lines[0] == "| NIL threshold | people: F1 / in-KB NIL | with nil: F1 / in-KB NIL / NIL P / NIL R |"
    assert lines[3].startswith("| 0.300 (the model's) | ") and len([x for x in lines if x.startswith("| 0.")]) == 3
    assert "| 0.500 | 0.400 / 33.3% | 0.400 / 33.3% / 0.500 / 1.000 |" in lines  # P 1/2, R 1/3 on both
