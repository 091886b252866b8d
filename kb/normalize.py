"""Mention keys: the normal form under which surface strings are stored and looked up.

Case and diacritics are folded (`"Guzmán"`, `"GUZMAN"` and `"guzman"` share one key) and
whitespace collapsed, so the prior table merges case variants the way REL's cleaning does.
"""
from __future__ import annotations

import re
import sys
import unicodedata
from functools import lru_cache

_SPACE = re.compile(r"\s+")
_EDGE = " \t\n\"'“”‘’«»()[]{},;:!?"


def fold(text: str) -> str:
    """`text` without diacritics (NFKD, combining marks removed)."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFKD", text).translate(_combining_marks())


@lru_cache(maxsize=1)
def _combining_marks() -> dict[int, None]:
    """Every code point of nonzero combining class, mapped to None (a `str.translate` table;
    built once, ~50 ms)."""
    return dict.fromkeys(cp for cp in range(sys.maxunicode + 1) if unicodedata.combining(chr(cp)))


def text_key(text: str) -> str:
    """`mention_key` uncached, for whole texts (a cache of them would only hold memory)."""
    return _SPACE.sub(" ", fold(text).casefold()).strip(_EDGE)


@lru_cache(maxsize=1 << 17)
def mention_key(surface: str) -> str:
    """The lookup key of a surface string: folded, case-folded, single-spaced, edge punctuation off."""
    return text_key(surface)


_SIBILANT_ES = re.compile(r"(?:ss|sh|ch|x|z)es$")  # "boxes", "churches", "classes"


def singular_forms(key: str) -> list[str]:
    """The singular keys an English plural key may stand for, most likely first: the last word's
    regular plural endings taken off ("galaxies" → "galaxy", "black holes" → "black hole",
    "churches" → "church", "x-rays" → "x-ray"). Keys that do not end in "s" have none; the
    caller keeps the forms its KB knows, so a wrong guess ("gas" from "gases" → "gase") finds
    nothing."""
    if len(key) < 4 or not key.endswith("s") or key.endswith(("ss", "us", "is")):
        return []
    out = []
    if key.endswith("ies") and len(key) > 4:
        out.append(key[:-3] + "y")
    if _SIBILANT_ES.search(key) or key.endswith(("oes", "ses")):
        out.append(key[:-2])
    out.append(key[:-1])
    return list(dict.fromkeys(out))
