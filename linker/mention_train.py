"""Train the mention scorer of the dictionary spotter (`linker.mentions`) on labelled documents.

Examples are the candidate spans the spotter would score (capitalised spans whose key the KB
knows, closed-class words excluded): a span overlapping a gold mention is a positive, every other
one a (noisy: gold sets are incomplete) negative. Spans inside a longer known span that overlaps
a gold mention are left out: the spotter takes the longer one first ("Robert von Mohl" for a gold
"Mohl"), and counting "Mohl" as a positive would teach that the end of a run is a mention. The model is a logistic regression fitted by
Newton's method; the threshold is the highest one whose greedy selection still finds
`target_recall` of the gold mentions that the unfiltered spotter finds. The common-word table is
counted on the same texts. The bundled `linker/data/mention_scorer.json` is reproduced by:

    mmel kb build --entities benchmarks/work/merged_kb.jsonl --kb merged   # python benchmarks/make_data.py first
    python -m linker.mention_train --kb merged --train ../shared/data/wikimel/train.jsonl \\
        --train benchmarks/work/richpedia-train.jsonl --out linker/data/mention_scorer.json
"""
from __future__ import annotations

import argparse
import collections
import functools
import json
import logging
import shlex
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from kb.home import kb_path
from kb.spans import WORD_PATTERN, sentence_initial
from kb.store import KnowledgeBase
from linker.document import iter_jsonl, parse_document
from linker.mentions import (
    FEATURES, MentionScorer, MentionScorerConfig, candidate_groups, scored_spans, select, top_name_words,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    gold: tuple[tuple[int, int], ...]


def read_examples(path) -> list[Example]:
    """Texts with their gold spans from a labelled JSONL file."""
    out = []
    for where, obj in iter_jsonl(path, "labelled file"):
        doc = parse_document(obj, where, allow_overlaps=True)  # gold files may repeat a span
        out.append(Example(doc.text, tuple((m.start, m.end) for m in doc.mentions or ())))
    return out


def common_words(texts: Iterable[str], min_count: int = 2, min_ratio: float = 0.05) -> dict[str, float]:
    """`{word: share of its in-sentence occurrences written in lower case}` (rounded to 0.01) for
    words seen at least `min_count` times inside sentences with a share ≥ `min_ratio`."""
    lower: collections.Counter = collections.Counter()
    total: collections.Counter = collections.Counter()
    for text in texts:
        for m in WORD_PATTERN.finditer(text):
            w = m.group().rstrip(".'’-")
            if not w or not w[0].isalpha() or sentence_initial(text, m.start()):
                continue
            key = w.lower()
            total[key] += 1
            lower[key] += w[0].islower()
    return {
        w: round(lower[w] / n, 2) for w, n in total.items()
        if n >= min_count and lower[w] / n >= min_ratio
    }


def overlaps(start: int, end: int, gold: Sequence[tuple[int, int]]) -> bool:
    return any(start < g_end and g_start < end for g_start, g_end in gold)


def reachable(scored: list, groups: list, gold: Sequence[tuple[int, int]]) -> list:
    """`scored` without the spans strictly inside a longer known span that overlaps `gold`."""
    covers = [
        (s.start, s.end) for spans, infos in groups for s, i in zip(spans, infos)
        if i is not None and overlaps(s.start, s.end, gold)
    ]
    return [
        (s, f) for s, f in scored
        if not any(a <= s.start and s.end <= b and b - a > s.end - s.start for a, b in covers)
    ]


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, iterations: int = 30) -> tuple[np.ndarray, float]:
    """Weights and bias minimising the mean logistic loss + `l2`/2 ‖w‖² (Newton's method).

    p = σ(x·w + b); gradient g = xᵀ(p − y)/n + l2·w, Hessian H = xᵀ diag(p(1−p)) x/n + l2·I
    (the bias column is not regularised).
    """
    n, d = x.shape
    a = np.hstack([x, np.ones((n, 1))])
    theta = np.zeros(d + 1)
    reg = np.full(d + 1, l2)
    reg[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(a @ theta)))
        grad = a.T @ (p - y) / n + reg * theta
        hess = (a * (p * (1 - p))[:, None]).T @ a / n + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return theta[:-1], float(theta[-1])


def spot_recall(data: list[tuple[Example, list, dict]], threshold: float) -> tuple[float, float]:
    """(share of gold spans found by an overlapping selected span, selected spans per 1,000 chars)."""
    found = gold = picked = chars = 0
    for ex, groups, p_of in data:
        ms = select(groups, lambda s, i: i[2] is not None or p_of.get((s.start, s.end), 0.0) >= threshold)
        found += sum(any(m.start < e and s < m.end for m in ms) for s, e in ex.gold)
        gold += len(ex.gold)
        picked += len(ms)
        chars += len(ex.text)
    return found / max(gold, 1), 1000 * picked / max(chars, 1)


def train(examples: list[Example], kb: KnowledgeBase, target_recall: float = 0.985,
          sources: Sequence[str] = (), command: str = "") -> MentionScorer:
    common = common_words(ex.text for ex in examples)
    rows, labels, prepared, cache = [], [], [], {}
    names_of = functools.lru_cache(maxsize=None)(lambda key: top_name_words(kb, key))
    for ex in examples:
        groups = candidate_groups(ex.text, kb, cache=cache)
        scored = scored_spans(ex.text, groups, common, names_of)
        fit = reachable(scored, groups, ex.gold)
        rows += [f for _, f in fit]
        labels += [float(overlaps(s.start, s.end, ex.gold)) for s, _ in fit]
        prepared.append((ex, groups, scored))
    x, y = np.asarray(rows, np.float64), np.asarray(labels)
    weights, bias = fit_logistic(x, y)
    scorer = MentionScorer(MentionScorerConfig(weights=tuple(weights), bias=bias))
    data = []
    for ex, groups, scored in prepared:
        probs = scorer.probability([f for _, f in scored]) if scored else []
        data.append((ex, groups, {(s.start, s.end): float(p) for (s, _), p in zip(scored, probs)}))
    ceiling, rate_all = spot_recall(data, 0.0)
    threshold = 0.0
    for t in np.arange(0.01, 1.0, 0.01):
        if spot_recall(data, float(t))[0] < target_recall * ceiling:
            break
        threshold = round(float(t), 2)
    recall, rate = spot_recall(data, threshold)
    metrics = {
        "examples": len(y), "positives": int(y.sum()), "documents": len(examples),
        "recall_unfiltered": round(ceiling, 4), "per_1000_chars_unfiltered": round(rate_all, 2),
        "recall": round(recall, 4), "per_1000_chars": round(rate, 2),
        "gold_per_1000_chars": round(1000 * sum(len(e.gold) for e in examples) / sum(len(e.text) for e in examples), 2),
        "target_recall": target_recall,
    }
    log.info("mention scorer: %s", metrics)
    config = MentionScorerConfig(
        features=FEATURES, weights=tuple(round(float(w), 5) for w in weights), bias=round(bias, 5),
        threshold=threshold, common=common, trained_on=tuple(sources), command=command, metrics=metrics,
    )
    return MentionScorer(config)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kb", required=True, help="KB name under the data home")
    parser.add_argument("--home", default=None, help="data home [env MMEL_HOME]")
    parser.add_argument("--train", action="append", required=True, help="labelled JSONL (repeatable)")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--target-recall", type=float, default=0.985,
                        help="share of the unfiltered spotter's gold hits to keep when choosing the threshold")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    kb = KnowledgeBase(kb_path(args.home, args.kb))
    examples = [ex for path in args.train for ex in read_examples(path)]
    command = "python -m linker.mention_train " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    scorer = train(examples, kb, args.target_recall, sources=args.train, command=command)
    scorer.save(args.out)
    print(json.dumps({"out": args.out, "threshold": scorer.config.threshold, **scorer.config.metrics}))


if __name__ == "__main__":
    main()
