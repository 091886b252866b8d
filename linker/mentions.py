"""Mention detection when a document gives no spans: a dictionary spotter over KB aliases.

Candidate spans are runs of up to `max_tokens` words that start with a capital letter (or a
digit) in the text; a span is a mention when its key is in the KB's mention table and, for KBs
built from anchors, its anchor count reaches `min_anchors`. Longest match wins, left to right,
no overlaps.
"""
from __future__ import annotations

import re

from kb.normalize import mention_key
from kb.store import KnowledgeBase
from kb.types import TextMention

_WORD = re.compile(r"[^\W_][\w'’.\-]*", re.UNICODE)
_LOWER_JOINERS = {"of", "de", "van", "von", "da", "del", "der", "la", "le", "bin", "the", "and"}


def spot(text: str, kb: KnowledgeBase, max_tokens: int = 6, min_anchors: float = 0.0) -> list[TextMention]:
    """Dictionary mentions in `text`, in text order."""
    words = [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]
    out: list[TextMention] = []
    i = 0
    while i < len(words):
        if not words[i][2][0].isupper():
            i += 1
            continue
        found = None
        for j in range(min(len(words), i + max_tokens), i, -1):
            last = words[j - 1][2]
            if not (last[0].isupper() or last[0].isdigit()):
                continue  # spans end on a capitalised word
            if any(not (w[2][0].isupper() or w[2].lower() in _LOWER_JOINERS) for w in words[i:j]):
                continue
            start, end = words[i][0], words[j - 1][1]
            surface = text[start:end].rstrip(".'’")
            end = start + len(surface)
            stats = kb.mention_stats(mention_key(surface))
            if stats and (stats[0] >= min_anchors or stats[0] == 0):
                found = (TextMention(start, end, surface), j)
                break
        if found:
            out.append(found[0])
            i = found[1]
        else:
            i += 1
    return out
