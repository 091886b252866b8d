"""Suffix rewrites learned from a KB's links: how the words that link to an entity end where its
name ends otherwise ("astronomical" → Astronomy: "ical" → "y"; "Bulgarian" → Bulgaria: "n" → "";
"galaxies" → Galaxy: "ies" → "y").

A dump's anchors pair surfaces with the names of the entities they link to. Where an anchor key
and the name key differ only in the end of their last word and share a stem of at least
`MIN_STEM` characters, the two endings make a rule; a rule that at least `MIN_SUPPORT` different
pairs make is kept. Rules are written `"from>to"` (`"ical>y"`, `"n>"`), the form the linker
config saves them in. Nothing here is a hand-written list: the rules are as good as the links
they come from.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

MIN_STEM = 3  # the shortest shared start of two words that makes a rule ("rom" of "roman" / "rome")
MAX_ENDING = 6  # the longest ending a rule rewrites, on either side
MIN_SUPPORT = 2  # distinct (anchor, name) pairs a rule needs


def suffix_rule(mention: str, name: str) -> str | None:
    """The rule `"from>to"` that rewrites mention key `mention` into name key `name` ("bulgarian",
    "bulgaria" → "n>"), or None when they differ other than in the end of their last word, are
    equal, or share a stem shorter than `MIN_STEM`."""
    m_words, n_words = mention.split(), name.split()
    if not m_words or len(m_words) != len(n_words) or m_words[:-1] != n_words[:-1]:
        return None
    a, b = m_words[-1], n_words[-1]
    stem = 0
    while stem < min(len(a), len(b)) and a[stem] == b[stem]:
        stem += 1
    if a == b or stem < MIN_STEM or len(a) - stem > MAX_ENDING or len(b) - stem > MAX_ENDING:
        return None
    return f"{a[stem:]}>{b[stem:]}"


def learn_suffix_rules(pairs: Iterable[tuple[str, str]], min_support: int = MIN_SUPPORT) -> tuple[str, ...]:
    """The rules (`suffix_rule`) of at least `min_support` distinct `(mention key, name key)`
    pairs, most supported first (ties in alphabetical order)."""
    support = Counter(rule for pair in set(pairs) if (rule := suffix_rule(*pair)))
    return tuple(sorted((r for r, n in support.items() if n >= min_support), key=lambda r: (-support[r], r)))


def parse_rule(rule: str) -> tuple[str, str]:
    """`"ical>y"` → `("ical", "y")`; ValueError for a string without exactly one `>`."""
    ending, sep, replacement = rule.partition(">")
    if not sep or ">" in replacement:
        raise ValueError(f"bad suffix rule {rule!r}: use FROM>TO, e.g. 'ical>y'")
    return ending, replacement


def rewrites(key: str, rules: Sequence[tuple[str, str]]) -> frozenset[str]:
    """The keys the rules make of mention key `key` by rewriting the end of its last word,
    keeping a stem of at least `MIN_STEM` characters ("astronomical" → {"astronomy", ...})."""
    head, _, last = key.rpartition(" ")
    prefix = f"{head} " if head else ""
    return frozenset(f"{prefix}{last[: len(last) - len(ending)]}{to}" for ending, to in rules
                     if last.endswith(ending) and len(last) - len(ending) >= MIN_STEM
                     and (ending or to)) - {key}
