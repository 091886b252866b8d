r"""Linking metrics: one additive `Metrics` type, used by training, the benchmarks and `mmel evaluate`.

A `Metrics` is the tuple of its per-mention records; adding two pools them (ReFinED's
`evaluation/metrics.py`, spaCy's `Scorer.score_links`), and every number is computed from the
records. For mentions with gold entity :math:`g_i` (`None`: NIL, not in the KB), ranking
:math:`r_i` and (possibly NIL) prediction :math:`\hat e_i`, over the :math:`n` non-NIL gold
mentions:

.. math::
    \mathrm{recall@}k = \frac{1}{n} \sum_{i:\, g_i \ne \mathrm{NIL}} [g_i \in r_i[{:}k]], \qquad
    \mathrm{Hits@}1 = \mathrm{recall@}1

    P = \frac{\#\{\hat e_i = g_i \ne \mathrm{NIL}\}}{\#\{\hat e_i \ne \mathrm{NIL}\}}, \qquad
    R = \frac{\#\{\hat e_i = g_i \ne \mathrm{NIL}\}}{n}, \qquad F_1 = \frac{2PR}{P + R}

(micro-averaged; 0 when a denominator is 0). NIL precision and recall treat NIL as a label:
:math:`\#\{\hat e_i = g_i = \mathrm{NIL}\}` over the NIL predictions and over the NIL gold
mentions; the NIL rate is the fraction of mentions predicted NIL.

`score_links` is pure (ids in, `Metrics` out); `evaluate` runs a `Linker` over labelled documents;
`linker.fronts.api.evaluate_file` is the `mmel evaluate` command.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kb.errors import InputError
from kb.types import Document, TextMention
from linker.calibration import reliability

RECALL_AT = (1, 5, 10, 30)


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


@dataclass(frozen=True, slots=True)
class MentionRecord:
    """One scored mention. `gold_rank`: 1-based position of the gold entity in the ranking,
    None when it is not ranked (or the gold is NIL)."""

    gold: str | None
    predicted: str | None
    gold_rank: int | None
    doc: str = ""
    surface: str = ""
    start: int | None = None
    end: int | None = None
    confidence: float | None = None  # the link's calibrated confidence, when the model has one

    @property
    def correct(self) -> bool:
        """The prediction is the gold entity (NIL for a NIL gold)."""
        return self.predicted == self.gold


def mention_record(gold: str | None, ranking: Sequence[str], predicted: str | None, *,
                   doc: str = "", mention: TextMention | None = None, confidence: float | None = None) -> MentionRecord:
    """The record of one mention: its gold id, the ranked candidate ids, the (possibly NIL)
    prediction and its confidence; `doc` and `mention` only locate it."""
    rank = ranking.index(gold) + 1 if gold is not None and gold in ranking else None
    if mention is None:
        return MentionRecord(gold, predicted, rank, doc, confidence=confidence)
    return MentionRecord(gold, predicted, rank, doc, mention.surface, mention.start, mention.end, confidence)


@dataclass(frozen=True, slots=True)
class Metrics:
    """Scores over a set of mentions; `a + b` pools two sets. Build large ones in one go
    (`score_links`, `Metrics(tuple(records))`): summing many small ones copies the records each time."""

    records: tuple[MentionRecord, ...] = ()

    def __add__(self, other: Metrics) -> Metrics:
        if not isinstance(other, Metrics):
            return NotImplemented
        return Metrics(self.records + other.records)

    @property
    def mentions(self) -> int:
        return len(self.records)

    @property
    def gold_nil(self) -> int:
        """Mentions whose gold entity is NIL."""
        return sum(r.gold is None for r in self.records)

    @property
    def linkable(self) -> int:
        """Mentions with a gold entity (the denominator of recall)."""
        return self.mentions - self.gold_nil

    @property
    def linked(self) -> int:
        """Predictions that are not NIL."""
        return sum(r.predicted is not None for r in self.records)

    @property
    def true_positives(self) -> int:
        """Non-NIL predictions equal to the gold entity."""
        return sum(r.predicted is not None and r.correct for r in self.records)

    def recall_at(self, k: int) -> float:
        """Fraction of mentions with a gold entity that have it among the first `k` ranked."""
        return _ratio(sum(r.gold_rank is not None and r.gold_rank <= k for r in self.records), self.linkable)

    @property
    def hits_at_1(self) -> float:
        return self.recall_at(1)

    @property
    def precision(self) -> float:
        return _ratio(self.true_positives, self.linked)

    @property
    def recall(self) -> float:
        return _ratio(self.true_positives, self.linkable)

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def nil_predicted(self) -> int:
        return self.mentions - self.linked

    @property
    def nil_correct(self) -> int:
        """NIL predictions of NIL gold mentions."""
        return sum(r.predicted is None and r.gold is None for r in self.records)

    @property
    def nil_precision(self) -> float:
        return _ratio(self.nil_correct, self.nil_predicted)

    @property
    def nil_recall(self) -> float:
        return _ratio(self.nil_correct, self.gold_nil)

    @property
    def nil_rate(self) -> float:
        """Fraction of mentions predicted NIL."""
        return _ratio(self.nil_predicted, self.mentions)

    def reliability(self) -> dict | None:
        """`linker.calibration.reliability` of the links (non-NIL predictions): their confidence
        against being right; None when the records carry no confidence."""
        links = [r for r in self.records if r.predicted is not None and r.confidence is not None]
        if not links:
            return None
        return reliability([r.confidence for r in links], [r.correct for r in links])

    def to_dict(self, ks: Sequence[int] = RECALL_AT) -> dict:
        """The summary (no records), with the keys the benchmark results use."""
        table = self.reliability()
        return {
            "mentions": self.mentions,
            "hits_at_1": self.hits_at_1,
            "recall_at_k": {str(k): self.recall_at(k) for k in ks},
            "precision": self.precision,
            "recall": self.recall,
            "micro_f1": self.f1,
            "nil": {"gold": self.gold_nil, "predicted": self.nil_predicted, "precision": self.nil_precision,
                    "recall": self.nil_recall, "rate": self.nil_rate},
            **({"calibration": table} if table else {}),
        }


def score_links(rows: Iterable[tuple[str | None, Sequence[str], str | None]]) -> Metrics:
    """Metrics of per-mention `(gold id, ranked candidate ids, predicted id)`; None is NIL."""
    return Metrics(tuple(mention_record(gold, ranking, predicted) for gold, ranking, predicted in rows))


def evaluate(linker, labelled: Sequence[tuple[Document, Sequence[str | None]]], batch_size: int | None = None) -> Metrics:
    """Rank and decide the given mentions of labelled documents with `linker` (its `rank_many`)
    and score them against the gold ids, one per mention of each document."""
    records = []
    ranked_docs = linker.rank_many([doc for doc, _ in labelled], batch_size=batch_size)
    for (doc, gold), ranked in zip(labelled, ranked_docs):
        if len(gold) != len(ranked):
            raise InputError(f"document {doc.id!r}: {len(gold)} gold ids for {len(ranked)} mentions")
        records += [mention_record(g, ranking, link.entity, doc=doc.id, mention=link.mention, confidence=link.confidence)
                    for g, (link, ranking) in zip(gold, ranked)]
    return Metrics(tuple(records))
