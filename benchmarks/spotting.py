"""Linking from raw text (`run.py mel --no-spans`): how well the spotter finds gold mentions, what
that costs in accuracy and time, and a probe set of sentences that should yield no links.

Pure helpers (matching predicted mentions to gold spans, the scores) plus `bench_no_spans`,
which `run.py` calls with a loaded linker.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

# Sentences built around capitalised function words, pronouns, months, weekdays, sentence
# starts and place names that are not in the WikiMEL / Richpedia KBs (people): no links expected.
PROBE = (
    "In March, He said. This is New York.",
    "The meeting is on Monday. It starts at noon.",
    "On Tuesday, She went home. They stayed.",
    "After the storm, We rebuilt the house in April.",
    "This was the best summer. Then came September.",
    "What a day! Everyone cheered on Friday.",
    "Before dinner, His sister called. Her voice was calm.",
    "When the rain stopped, Our team played again in June.",
    "There is nothing to add. These are the facts.",
    "By Sunday, All of them had left for Kathmandu.",
    "If it rains on Wednesday, We will stay in Reykjavik.",
    "Yesterday, I saw Lake Titicaca and Mount Kilimanjaro.",
    "During August, Those who could travelled to Ulaanbaatar.",
    "Some say It was a mistake. Nobody knows.",
    "Our trip to San Diego in October was short.",
    "A storm hit Montevideo on Thursday. Many fled.",
    "Why did They leave? Because of the flood in Dhaka.",
    "Between May and July, Every road to Ouagadougou was closed.",
    "Where is the train station? Over there.",
    "Although it was late, You answered on Saturday.",
)


def match_exact(gold: Sequence, predicted: Sequence) -> dict[int, int]:
    """One-to-one exact-span matching: `{gold index: predicted index}` for every gold span that a
    predicted span equals, each predicted span used once (the first unused one, in order)."""
    free: dict[tuple[int, int], list[int]] = {}
    for j, p in enumerate(predicted):
        free.setdefault((p.start, p.end), []).append(j)
    out = {}
    for i, g in enumerate(gold):
        js = free.get((g.start, g.end))
        if js:
            out[i] = js.pop(0)
    return out


def match_overlap(gold: Sequence, predicted: Sequence) -> dict[int, int]:
    """One-to-one overlap matching: `{gold index: predicted index}`, a maximum-cardinality matching
    of gold to predicted spans that share at least one character, so one long predicted span finds
    one gold mention at most. Among the largest matchings it maximises the sum over pairs of
    `(exact + IoU) / 2` (exact = 1 when the spans are equal; IoU = overlap / union in characters):
    each pair weighs `1 + (exact + IoU) / 2 / (min(len(gold), len(predicted)) + 1)`, so the
    tie-break terms of any matching sum to less than 1 and never buy a smaller one."""
    if not gold or not predicted:
        return {}
    from scipy.optimize import linear_sum_assignment

    scale = min(len(gold), len(predicted)) + 1
    w = np.zeros((len(gold), len(predicted)))
    for i, g in enumerate(gold):
        for j, p in enumerate(predicted):
            inter = min(g.end, p.end) - max(g.start, p.start)
            if inter > 0:
                union = max(g.end, p.end) - min(g.start, p.start)
                exact = g.start == p.start and g.end == p.end
                w[i, j] = 1 + (exact + inter / union) / 2 / scale
    rows, cols = linear_sum_assignment(w, maximize=True)
    return {int(i): int(j) for i, j in zip(rows, cols) if w[i, j] > 0}


def _prf(matched: int, gold: int, predicted: int, gold_complete: bool) -> dict:
    """Recall, precision and F1 of `matched` pairs. Precision (and F1) only where the gold is
    complete; otherwise unannotated true mentions would count as errors, and the same ratio is
    reported as `precision_lower_bound`."""
    recall = matched / max(gold, 1)
    ratio = matched / predicted if predicted else 0.0
    out = {"matched": matched, "recall": recall}
    if gold_complete:
        out["precision"] = ratio
        out["f1"] = 2 * ratio * recall / (ratio + recall) if ratio + recall else 0.0
    else:
        out["precision"] = out["f1"] = None
        out["precision_lower_bound"] = ratio
    return out


def spotting_scores(docs, gold_qids, predicted_links, given_entities, gold_complete: bool = False) -> dict:
    """Spotter recall, precision and F1 (exact span and overlap, one-to-one) and linking accuracy
    on the found gold mentions.

    `docs[i].mentions` are the gold spans with entities `gold_qids[i]`; `predicted_links[i]` the
    links made without spans (each link's mention is a predicted span); `given_entities[i]` the
    entities predicted with the gold spans. A predicted span matches one gold mention at most
    (`match_exact`, `match_overlap`). `gold_complete`: the gold annotates every mention of the
    texts, so a predicted span without a gold one is an error and precision is reported; else
    only its lower bound. `found`/`found_exact` are the overlap/exact recalls; accuracy on found
    is measured on the overlap pairs (the predicted span's entity against the gold one).
    """
    n = correct = given_correct = given_correct_found = 0
    found = exact = predicted = linked = chars = 0
    for doc, qids, links, given in zip(docs, gold_qids, predicted_links, given_entities):
        chars += len(doc.text)
        predicted += len(links)
        linked += sum(link.entity is not None for link in links)
        gold = list(doc.mentions)
        spans = [link.mention for link in links]
        pairs = match_overlap(gold, spans)
        exact += len(match_exact(gold, spans))
        found += len(pairs)
        for i, (qid, g) in enumerate(zip(qids, given)):
            n += 1
            given_correct += g == qid
            if i in pairs:
                given_correct_found += g == qid
                correct += links[pairs[i]].entity == qid
    per_k = 1000 / max(chars, 1)
    return {
        "gold_mentions": n,
        "predicted_mentions": predicted,
        "gold_complete": gold_complete,
        "exact": _prf(exact, n, predicted, gold_complete),
        "overlap": _prf(found, n, predicted, gold_complete),
        "found": found / max(n, 1),
        "found_exact": exact / max(n, 1),
        "accuracy_on_found": correct / max(found, 1),
        "given_span_accuracy": given_correct / max(n, 1),
        "given_span_accuracy_on_found": given_correct_found / max(found, 1),
        "end_to_end_accuracy": correct / max(n, 1),
        "predicted_per_1000_chars": predicted * per_k,
        "linked_per_1000_chars": linked * per_k,
        "gold_per_1000_chars": n * per_k,
    }


def probe(linker, sentences: Sequence[str] = PROBE) -> dict:
    """Mentions spotted and links made on the probe sentences (0 links expected)."""
    from kb.types import Document

    docs = [Document(id=f"probe-{i}", text=t) for i, t in enumerate(sentences)]
    out = []
    for doc, links in zip(docs, linker.link_many(docs)):
        out.append({"text": doc.text, "mentions": [l.mention.surface for l in links],
                    "links": [{"surface": l.mention.surface, "entity": l.entity, "score": round(l.score, 3)}
                              for l in links if l.entity is not None]})
    return {"sentences": len(out), "mentions": sum(len(o["mentions"]) for o in out),
            "links": sum(len(o["links"]) for o in out), "detail": out}


def bench_no_spans(linker, data, batch_size: int = 64, gold_complete: bool = False) -> dict:
    """Raw-text linking of labelled `data` [(doc with gold spans, gold qids)] against given spans;
    `gold_complete`: the gold annotates every mention (see `spotting_scores`)."""
    from kb.types import TextMention

    docs = [d for d, _ in data]
    qids = [q for _, q in data]
    raw = [replace(d, mentions=None) for d in docs]
    list(linker.link_many(raw[:8]))  # warm-up outside the timing
    detector, spot_s = linker.detector, 0.0

    def timed(text):  # the spotter's time inside the same run, under the same load
        nonlocal spot_s
        t = time.perf_counter()
        try:
            return detector(text)
        finally:
            spot_s += time.perf_counter() - t

    linker.detector = timed
    try:
        t0 = time.perf_counter()
        predicted = [[link for link in links if isinstance(link.mention, TextMention)]
                     for links in linker.link_many(raw, batch_size=batch_size)]
        raw_s = time.perf_counter() - t0
    finally:
        linker.detector = detector
    t0 = time.perf_counter()  # after the raw pass: neither pass finds caches the other one warmed
    given = [[link.entity for link in links] for links in linker.link_many(docs, batch_size=batch_size)]
    given_s = time.perf_counter() - t0
    return {
        **spotting_scores(docs, qids, predicted, given, gold_complete),
        "seconds": {"given_spans": given_s, "raw_text": raw_s, "spotter": spot_s},
        "spotter_share_of_link_time": spot_s / raw_s if raw_s else 0.0,
        "probe": probe(linker),
    }
