"""The mel benchmark's baselines on the tiny KB (hashing encoder: no model weights)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import run  # noqa: E402
from kb.types import Document, TextMention  # noqa: E402


def _doc(n, text, surface):
    start = text.index(surface)
    return Document(f"d{n}", text, mentions=(TextMention(start, start + len(surface), surface),))


DATA = [(_doc(0, "Paris Hilton is an American media personality.", "Paris Hilton"), ["Q167646"]),
        (_doc(1, "Merkel was Chancellor of Germany.", "Merkel"), ["Q567"]),
        (_doc(2, "Biden is the 46th president of the United States.", "Biden"), ["Q6279"])]


def test_fuzzy_dense_records_its_weight_and_tuning_picks_from_the_grid(tiny_linker):
    model = tiny_linker.index.manifest["model_id"]
    tuned = run.tune_fuzzy_dense(tiny_linker.kb, tiny_linker.index, model, DATA, weights=(0.5, 1.0, 2.0))
    assert tuned["weight"] in (0.5, 1.0, 2.0) and tuned["mentions"] == 3
    hits = tuned["hits_at_1_by_weight"]
    assert hits[str(tuned["weight"])] == max(hits.values())
    # ties go to the smaller weight
    assert all(float(w) >= tuned["weight"] or h < hits[str(tuned["weight"])] for w, h in hits.items())
    base = run.fuzzy_dense_baseline(tiny_linker.kb, tiny_linker.index, model, DATA, weight=tuned["weight"])
    assert base["weight"] == tuned["weight"] and base["hits_at_1"] == pytest.approx(hits[str(tuned["weight"])])


def test_weight_changes_the_ranking(tiny_linker):
    """With weight 0 only the name match ranks; a huge weight ranks by the dense score alone."""
    model = tiny_linker.index.manifest["model_id"]
    gold, rankings = run._fuzzy_dense_rankings(tiny_linker.kb, tiny_linker.index, model, DATA, (0.0, 1000.0))
    dense = run.dense_only_baseline(tiny_linker.kb, tiny_linker.index, tiny_linker.encoder, DATA,
                                    context=lambda d, m: run.sentence_of(d.text, m.start))
    assert gold == ["Q167646", "Q567", "Q6279"]
    assert [r[0] for r in rankings[0.0]] == gold  # exact names and aliases win on the name match
    assert dense["hits_at_1"] == pytest.approx(sum(r[0] == g for r, g in zip(rankings[1000.0], gold)) / 3)


def test_latency_times_every_batch_size_after_a_warm_pass_in_both_orders():
    from benchmarks.latency import by_batch_size

    class Recorder:
        def __init__(self):
            self.calls = []

        def link_many(self, docs, batch_size):
            self.calls.append((len(docs), batch_size))
            return iter([[] for _ in docs])

    docs = [Document(f"d{i}", "Ann.", mentions=(TextMention(0, 3, "Ann"),)) for i in range(8)]
    linker = Recorder()
    rows, single = by_batch_size(linker, docs, (1, 4))
    assert linker.calls[0] == (8, 4)  # the untimed pass over all documents
    order = [b for _, b in linker.calls[1:]]
    assert order == [1] * 8 + [4] * 2 + [4] * 2 + [1] * 8  # in order, then reversed
    assert [r["passes"] for r in rows] == [2, 2] and len(single) == 16
