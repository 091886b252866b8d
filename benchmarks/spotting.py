"""Linking from raw text (`run.py mel --no-spans`): how well the spotter finds gold mentions, what
that costs in accuracy and time, and a probe set of sentences that should yield no links.

Pure helpers (matching predicted mentions to gold spans, the scores) plus `bench_no_spans`,
which `run.py` calls with a loaded linker.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

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


def overlapping(start: int, end: int, spans: Sequence) -> list:
    """The spans (with `.start`, `.end`) that overlap `[start, end)`, best first: exact, then by overlap."""
    hits = [s for s in spans if s.start < end and start < s.end]
    return sorted(hits, key=lambda s: (not (s.start == start and s.end == end), -(min(end, s.end) - max(start, s.start))))


def spotting_scores(docs, gold_qids, predicted_links, given_entities) -> dict:
    """Spotter recall and linking accuracy on the found gold mentions.

    `docs[i].mentions` are the gold spans with entities `gold_qids[i]`; `predicted_links[i]` the
    links made without spans; `given_entities[i]` the entities predicted with the gold spans.
    """
    n = found = exact = correct = given_correct = given_correct_found = 0
    predicted = linked = chars = 0
    for doc, qids, links, given in zip(docs, gold_qids, predicted_links, given_entities):
        chars += len(doc.text)
        predicted += len(links)
        linked += sum(link.entity is not None for link in links)
        for m, qid, g in zip(doc.mentions, qids, given):
            n += 1
            given_correct += g == qid
            hits = overlapping(m.start, m.end, [link.mention for link in links])
            if not hits:
                continue
            found += 1
            given_correct_found += g == qid
            exact += hits[0].start == m.start and hits[0].end == m.end
            best = next(link for link in links if link.mention == hits[0])
            correct += best.entity == qid
    per_k = 1000 / max(chars, 1)
    return {
        "gold_mentions": n,
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


def bench_no_spans(linker, data, batch_size: int = 64) -> dict:
    """Raw-text linking of labelled `data` [(doc with gold spans, gold qids)] against given spans."""
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
        **spotting_scores(docs, qids, predicted, given),
        "seconds": {"given_spans": given_s, "raw_text": raw_s, "spotter": spot_s},
        "spotter_share_of_link_time": spot_s / raw_s if raw_s else 0.0,
        "probe": probe(linker),
    }
