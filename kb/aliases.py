"""Aliases users actually write, derived from an entity's name when no anchors exist.

Pure functions. `derive(name)` returns `(alias, weight)` pairs: the weight says how strongly an
alias points to the entity relative to other entities sharing it (the exact name beats a bare
surname). Weights become a prior after per-mention normalisation (`kb.prior`).

The person rules (surname, first + last name, name tokens and pairs, peerage, regnal and
honorific forms, territories) apply to persons only: the KB builders ask `is_person` of an
entity's `types`. An entity without types (an entity list that gives none, as the WikiMEL,
Richpedia and Vital Articles lists) is treated as a person, as before types were read, so KBs
built from such lists do not change. The tables the rules read (given-name forms, suffixes,
particles, ranks, honorifics, person types) are data: `kb/data/name_forms.json`, with where
each table comes from.
"""
from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from pathlib import Path

from kb.errors import KBError
from kb.normalize import fold

EXACT = 1.0
BASE = 1.0  # the name without its parenthetical disambiguator
FIRST_LAST = 0.6
SURNAME = 0.3
TITLE_PLACE = 0.3
TERRITORY = 0.1  # the territorial designation: "Charles I of Austria" → "Austria" (how captions often cut it)
TOKEN = 0.1  # any single name token: given names, middle (paternal) surnames, East Asian family names
PAIR = 0.3  # two adjacent name tokens: "Suu Kyi", "Leonel Cota", "Canales Rivera"

NAME_FORMS = Path(__file__).resolve().parent / "data" / "name_forms.json"
_WORD_LISTS = ("person_types", "suffixes", "particles", "peerage_ranks", "female_ranks", "honorifics",
               "noble_particles")


@functools.cache
def name_forms(path: Path = NAME_FORMS) -> dict[str, list[str] | dict[str, list[str]]]:
    """The `values` of each table of a name-forms file (`kb/data/name_forms.json`), by table
    name; `KBError` naming the file and the table when one is missing or malformed."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KBError(f"cannot read name forms {path}: {exc}") from None
    tables = raw if isinstance(raw, dict) else {}
    out: dict[str, list[str] | dict[str, list[str]]] = {}
    for key in (*_WORD_LISTS, "given_name_forms"):
        table = tables.get(key)
        values = table.get("values") if isinstance(table, dict) else None
        if key == "given_name_forms":
            ok = isinstance(values, dict) and all(map(_is_words, values.values()))
            kind = "an object of names to lists of forms"
        else:
            ok, kind = _is_words(values), "a list of strings"
        if not ok or not isinstance(table.get("source"), str):
            raise KBError(f"name forms {path}: table {key!r} is missing or malformed "
                          f"(it needs a 'source' string and 'values', {kind})")
        out[key] = values
    return out


def _is_words(value: object) -> bool:
    """Whether `value` is a list of non-empty strings."""
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


def _alternatives(phrases: list[str], space: str) -> str:
    """A regex alternation of `phrases` in the order given, their words joined by `space`."""
    return "|".join(space.join(map(re.escape, p.split())) for p in phrases)


_TABLES = name_forms()
_PAREN = re.compile(r"\s*\([^)]*\)\s*$")
_SUFFIX = set(_TABLES["suffixes"])
_PARTICLES = set(_TABLES["particles"])
_PEERAGE = re.compile(r",\s*(?:\d+(?:st|nd|rd|th)\s+)?(%s)\b\s*(?:of\s+)?(.*)$"
                      % _alternatives(_TABLES["peerage_ranks"], " "), re.I)
_FEMALE_RANKS = set(_TABLES["female_ranks"])
_HONORIFIC = re.compile(r"^(?:%s)\s+" % _alternatives(_TABLES["honorifics"], " "), re.I)
_REGNAL = re.compile(r"^(.+?\s[IVXL]+|[^,]+?)(?:,\s*[^,]+|\s+of\s+.+)$")
_TERRITORY = re.compile(r"\sof\s+(.+)$")
# "Count von Bülow" → "Bülow"
_NOBLE_PARTICLE = re.compile(r"^(?:%s)\s+" % _alternatives(_TABLES["noble_particles"], r"\s+"), re.I)
_PERSON_TYPES = {t.casefold() for t in _TABLES["person_types"]}
GIVEN_NAME = {form: name for name, forms in _TABLES["given_name_forms"].items() for form in forms}


def is_person(entity_types: Sequence[str]) -> bool | None:
    """Whether an entity with these `types` (Wikidata ids such as "Q5", or labels such as
    "human") is a person: one of the data file's person types, case-insensitive; None when
    there are no types to tell."""
    if not entity_types:
        return None
    return any(t.casefold() in _PERSON_TYPES for t in entity_types)


def given_name(token: str) -> str:
    """The canonical form of a folded name token ("wilhelm", "billy" → "william"); other tokens
    unchanged."""
    return GIVEN_NAME.get(token, token)


def base_name(name: str) -> str:
    """`"Fred (footballer, born 1979)"` → `"Fred"`."""
    return _PAREN.sub("", name).strip() or name.strip()


def _tokens(name: str) -> list[str]:
    words = name.replace(",", " ").split()
    while len(words) > 1 and words[-1].lower() in _SUFFIX:
        words.pop()
    return words


def surname(name: str) -> str | None:
    """The family name of a personal name, with particles: `"Ludwig van Beethoven"` → `"van Beethoven"`.

    None for single-word names.
    """
    words = _tokens(base_name(name).split(",")[0])
    if len(words) < 2:
        return None
    start = len(words) - 1
    while start > 1 and words[start - 1].lower() in _PARTICLES:
        start -= 1
    return " ".join(words[start:])


def territories(name: str) -> list[str]:
    """The places a noble or regnal name is "of" (in each of its comma-separated parts), and
    their parts: `"Moritz, Landgrave of Hesse-Kassel"` → `["Hesse-Kassel", "Hesse", "Kassel"]`,
    `"Emma of Waldeck and Pyrmont"` → `["Waldeck and Pyrmont", "Waldeck", "Pyrmont"]`,
    `"Margaret of Bavaria, Marchioness of Mantua"` → `["Bavaria", "Mantua"]`."""
    out: list[str] = []
    for segment in name.split(","):
        m = _TERRITORY.search(" " + segment.strip())
        if m:
            place = m.group(1).strip()
            out += [place, *(p.strip() for p in re.split(r"\s+and\s+|-", place) if p.strip()[:1].isupper())]
    return list(dict.fromkeys(out))


def derive(name: str, person: bool = True) -> list[tuple[str, float]]:
    """Alias variants of `name` with weights; the strongest weight wins for repeated aliases.

    `person=False`: only the name itself, without its disambiguator, and its ASCII fold (no
    surname, token, peerage, regnal, honorific or territory forms)."""
    out: dict[str, float] = {}

    def add(alias: str | None, weight: float) -> None:
        if alias and len(alias) > 1 and not alias.isdigit():
            out[alias] = max(out.get(alias, 0.0), weight)

    add(name.strip(), EXACT)
    base = base_name(name)
    add(base, BASE)
    if person:
        forms, base = _person_forms(base)
        for alias, weight in forms:
            add(alias, weight)
    ascii_name = fold(base)
    if ascii_name != base:
        add(ascii_name, BASE)
    return list(out.items())


def _person_forms(base: str) -> tuple[list[tuple[str, float]], str]:
    """The person rules' aliases of a name without disambiguator, and the name left without its
    rank, places and honorific ("Edward Wood, 1st Earl of Halifax" → "Edward Wood")."""
    out: list[tuple[str, float]] = []

    def add(alias: str | None, weight: float) -> None:
        out.append((alias, weight))

    peer = _PEERAGE.search(base)
    if peer:  # "Edward Wood, 1st Earl of Halifax" → "Halifax", "Lord Halifax", "Earl of Halifax"
        place = _NOBLE_PARTICLE.sub("", peer.group(2).strip())
        for part in territories(place):  # "Count Palatine of Neuburg" → "Neuburg"
            add(part, TERRITORY)
        if place:
            rank = peer.group(1).title()
            add(place, TITLE_PLACE)
            add(f"{'Lady' if rank in _FEMALE_RANKS else 'Lord'} {place}", TITLE_PLACE * 2)
            add(f"{rank} of {place}", TITLE_PLACE * 2)
            add(f"{rank} {place}", TITLE_PLACE * 2)
        base = base[: peer.start()].strip()
        add(base, FIRST_LAST)
    regnal = _REGNAL.match(base)
    if regnal and ("," in base or " of " in base):  # "Faisal II of Iraq" → "Faisal II"; "Anna Pavlovna of Russia"
        for place in territories(base):
            add(place, TERRITORY)
        base = regnal.group(1).strip()
        add(base, FIRST_LAST)
    plain = _HONORIFIC.sub("", base)
    if plain != base:  # "Grand Duchess Olga Nikolaevna" → "Olga Nikolaevna", "Grand Duchess Olga"
        add(plain, FIRST_LAST)
        add(f"{base[: len(base) - len(plain)]}{plain.split()[0]}", FIRST_LAST)
        base = plain
    words = _tokens(base)
    if len(words) == 1 and " " in base:  # "Faisal II" → "Faisal", "II" (captions mark either)
        add(words[0], TOKEN)
        add(base.split()[-1], TOKEN)
    sur = surname(base)
    if sur:
        add(sur, SURNAME)
        if " " in sur:  # "van Beethoven" → also "Beethoven", "Ludwig Beethoven"
            add(sur.split()[-1], SURNAME)
            add(f"{words[0]} {sur.split()[-1]}", FIRST_LAST)
        if len(words) > 2:
            add(f"{words[0]} {sur}", FIRST_LAST)
        # drop initials in the middle: "Myron V. George" → "Myron George"
        no_initials = [w for i, w in enumerate(words) if i in (0, len(words) - 1) or len(w.rstrip(".")) > 1]
        add(" ".join(no_initials), FIRST_LAST)
        for i, word in enumerate(words):
            add(word.rstrip("."), TOKEN)
            if i + 1 < len(words):
                add(f"{word} {words[i + 1]}", PAIR)
    return out, base
