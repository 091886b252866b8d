"""Mention keys: the normal form under which surface strings are stored and looked up.

Case and diacritics are folded (`"Guzmán"`, `"GUZMAN"` and `"guzman"` share one key) and
whitespace collapsed, so the prior table merges case variants the way REL's cleaning does.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_SPACE = re.compile(r"\s+")
_EDGE = " \t\n\"'“”‘’«»()[]{},;:!?"


def fold(text: str) -> str:
    """`text` without diacritics (NFKD, combining marks removed)."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=1 << 17)
def mention_key(surface: str) -> str:
    """The lookup key of a surface string: folded, case-folded, single-spaced, edge punctuation off."""
    key = _SPACE.sub(" ", fold(surface).casefold()).strip(_EDGE)
    return key
