"""Pure feature functions for (mention, candidate) pairs: strings and numbers in, floats out.

Each feature is in roughly [0, 1] so the reranker needs no normalisation statistics.
`FEATURES` names the columns of `candidate_features`.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from rapidfuzz import fuzz

from kb.aliases import base_name, given_name, surname
from kb.normalize import mention_key, text_key
from kb.types import Entity

FEATURES = (
    "prior",
    "prior_rank",
    "dense_sim",
    "exact_name",
    "surname_match",
    "tokens_in_name",
    "fuzzy_ratio",
    "token_set_ratio",
    "description_length",
    "context_overlap",
    "year_in_description",
    "year_before_entity",
    "years_after_entity",
    "age_at_context_year",
    "has_context_year",
    "gender_agreement",
    "ambiguity",
    "from_prior",
    "from_dense",
    "from_fuzzy",
    "name_in_document",
    "name_in_mention",
    "name_near_mention",
    "numeral_match",
    "numeral_conflict",
    "enclosing_missing",
    "enclosing_first",
    "surface_sim",
    "from_surface",
    "lowercase_mention",
    "mention_link_prob",
    "mention_anchors",
    "popularity",
    "dense_gap",
    "surface_gap",
    "suffix_rewrite",
)
POPULARITY_SCALE = 12.0  # log1p(popularity) / this, clipped: ~160k links or sitelinks → 1
NEAR_WORDS = 5  # words each side of a mention that `name_near_mention` reads

_FEMALE = re.compile(r"\b(?:she|her|hers|herself|mrs|ms|miss|madame|queen|lady|princess|duchess|empress|"
                     r"female|woman|actress|sister|mother|daughter|wife)\b")
_MALE = re.compile(r"\b(?:he|him|his|himself|mr|sir|king|lord|prince|duke|emperor|male|man|"
                   r"brother|father|son|husband)\b")
_YEAR = re.compile(r"(?<!\d)(1[0-9]{3}|20[0-9]{2})(?!\d)")
_WORD = re.compile(r"\w{3,}")
_ROMAN = r"(?:XL|L?X{0,3})(?:IX|IV|V?I{0,3})"
_NUMERAL = re.compile(rf"\b[A-Z][\w'’-]*\s+(?=[IVXL]+\b)({_ROMAN})\b")  # "Oscar II", "Louis XIV"
_NAME_NUMERAL = re.compile(rf"(?=[IVXL]){_ROMAN}")
_AFTER_NUMERAL = re.compile(rf"\s+({_ROMAN})\b")
_TOKEN = re.compile(r"\w+")
_SHORT = 100  # `words` caches the keys of texts up to this long (surfaces, names), not of documents
_UMLAUT = re.compile(r"(?<=[a-z])([aou])e")  # "moeller" → "moller", as "Möller" folds
_NAME_STOP = frozenset("of the and de del della der den di du da van von zu la le al el bin ibn jr sr".split())
_STOP = frozenset(
    "the and for with from that this was were his her its their are has had have who whom which "
    "after before during into onto over under about between while when where what also than then "
    "born died sex male female birth death occupation languages alma mater award received".split()
)


def years(text: str) -> list[int]:
    """Four-digit years 1000–2099 mentioned in `text`."""
    return [int(y) for y in _YEAR.findall(text)]


def year_spans(text: str) -> list[tuple[int, int, int]]:
    """`(start, end, year)` of each of `years(text)`."""
    return [(m.start(), m.end(), int(m.group(1))) for m in _YEAR.finditer(text)]


def years_outside(text: str, spans: Sequence[tuple[int, int, int]], start: int, end: int) -> tuple[int, ...]:
    """`years(without_span(text, start, end))` from the document's `year_spans`: the same years
    but those inside the span; read again when a span edge falls between two digits (a year
    the cut would make or break)."""
    if any(0 < i < len(text) and text[i - 1].isdigit() and text[i].isdigit() for i in (start, end)):
        return tuple(years(without_span(text, start, end)))
    return tuple(y for a, b, y in spans if b <= start or a >= end)


def gender(text: str) -> int:
    """+1 if `text` speaks of a woman, -1 of a man, 0 if unclear (counts of gendered words)."""
    low = text.lower()
    female, male = len(_FEMALE.findall(low)), len(_MALE.findall(low))
    return (female > male) - (male > female)


def content_words(text: str) -> set[str]:
    """Lower-cased, folded words of ≥ 3 characters, without stop words or numbers."""
    return {w for w in _WORD.findall(mention_key(text)) if w not in _STOP and not w.isdigit()}


def words(text: str) -> list[str]:
    """Folded, lower-cased word tokens of `text` (the unit of `name_in_document`), given names in
    their canonical form (`given_name`: "Ludwig" and "Louis" are one token, "Jim" and "James"),
    and "ae", "oe", "ue" after a letter read as the umlaut they spell in ASCII ("Moeller" and
    "Möller" are one token; a name like "Samuel" changes on both sides alike). Richpedia dev
    part with the shipped reranker: 0.986 → 0.987 (Dorpmueller, Moeller), WikiMEL dev 0.9188 →
    0.9192, nothing else changed."""
    return [_token(w) for w in _TOKEN.findall(mention_key(text) if len(text) <= _SHORT else text_key(text))]


@lru_cache(maxsize=1 << 18)
def _token(word: str) -> str:
    """One folded word as `words` reads it; cached (every mention reads its whole document)."""
    return _UMLAUT.sub(r"\1", given_name(word))


def without_span(text: str, start: int, end: int) -> str:
    """`text` with `text[start:end]` (a mention) replaced by a space: what its context features read."""
    return text[:start] + " " + text[end:]


@lru_cache(maxsize=1 << 16)
def surface_words(surface: str) -> frozenset[str]:
    """`words` of a mention surface, cached: every candidate of a mention asks for them."""
    return frozenset(words(surface))


@lru_cache(maxsize=1 << 17)
def name_tokens(name: str) -> frozenset[str]:
    """The informative tokens of an entity name: folded words of its base name (no disambiguator),
    without particles, joiners and initials."""
    return frozenset(_name_words(name))


def _name_words(name: str) -> list[str]:
    """`name_tokens` in the order the name writes them."""
    return [w for w in words(base_name(name)) if len(w) > 1 and w not in _NAME_STOP]


def shares_name(surface: str, name: str) -> bool:
    """The mention and the entity name share an informative name token ("Biden" / "Joe Biden")."""
    return bool(name_tokens(name) & surface_words(surface))


def name_in_document(name: str, surface: str, document_words: frozenset[str] | set[str]) -> float:
    """The share of the entity's name tokens that the mention lacks but the rest of the document
    contains: "Clinton" after "Hillary Clinton" → 1 for Hillary Clinton, 0 for Bill Clinton;
    "Saxony" in "Franz Xavier of Saxony …" → 1/3 for Prince Francis Xavier of Saxony. 0 when the
    mention already holds the whole name, or shares no token with it ("Merkel" in "Merkel spoke
    in Berlin" is no evidence for Berlin)."""
    return tokens_in_document(name_tokens(name), surface_words(surface), document_words)


def tokens_in_document(tokens: frozenset[str], surface: frozenset[str], document_words: frozenset[str] | set[str]) -> float:
    """`name_in_document` from the entity's `name_tokens` and the mention's `surface_words`."""
    if not tokens & surface:  # a name that shares nothing with the mention is no evidence for it
        return 0.0
    rest = tokens - surface
    return len(rest & document_words) / len(rest) if rest else 0.0


def near_words(text: str, start: int, end: int, width: int = NEAR_WORDS) -> frozenset[str]:
    """The `words` within `width` words before and after `text[start:end]` (a mention)."""
    reach = 20 * width  # characters enough for `width` words
    return frozenset(words(text[max(0, start - reach) : start])[-width:] + words(text[end : end + reach])[:width])


def numerals(text: str) -> frozenset[str]:
    """Regnal numbers written after a capitalised word: "Oscar II was King of Sweden" → {"II"}."""
    return frozenset(n for n in _NUMERAL.findall(text) if n)


@lru_cache(maxsize=1 << 16)
def name_numerals(name: str) -> frozenset[str]:
    """The regnal numbers of an entity name: "Eric II, Duke of Brunswick-Lüneburg" → {"II"}."""
    return frozenset(t for t in base_name(name).replace(",", " ").split() if _NAME_NUMERAL.fullmatch(t))


def numeral_after(text: str, end: int) -> str | None:
    """The regnal number written right after a mention ending at `end` ("Philip" in "Philip I,
    called the Amorous" → "I"), else None."""
    m = _AFTER_NUMERAL.match(text, end)
    return m.group(1) if m and m.group(1) else None


def numeral_features(name: str | frozenset[str], document_numerals: frozenset[str],
                     after: str | None = None) -> tuple[float, float]:
    """(numeral_match, numeral_conflict): the entity's regnal number is written in the document
    ("Oscar II ..." for Oscar II of Sweden), or the document writes only other numbers (for
    Oscar I of Sweden). A number right `after` the mention ("Philip I") must be the entity's
    own: an entity without it conflicts. `name`: the entity name, or its `name_numerals`."""
    own = name_numerals(name) if isinstance(name, str) else name
    if after:
        return (1.0, 0.0) if after in own else (0.0, 1.0)
    if not own or not document_numerals:
        return 0.0, 0.0
    match = bool(own & document_numerals)
    return float(match), float(not match)


def name_in_mention(name: str, surface: str) -> float:
    """The share of the entity's name tokens found in the mention ("Gerald Rudolph Ford" → 1 for
    Gerald Ford): long name variants hold the whole name."""
    return tokens_in_mention(name_tokens(name), surface_words(surface))


def tokens_in_mention(tokens: frozenset[str], surface: frozenset[str]) -> float:
    """`name_in_mention` from the entity's `name_tokens` and the mention's `surface_words`."""
    return len(tokens & surface) / len(tokens) if tokens else 0.0


@lru_cache(maxsize=1 << 16)
def _name_keys(name: str) -> tuple[str, str, str | None, frozenset[str]]:
    """(full key, base-name key, surname key, name tokens) of an entity name, cached."""
    full = mention_key(name)
    sur = surname(name)
    return (full, mention_key(base_name(name)), mention_key(sur) if sur else None, key_tokens(full))


def key_tokens(key: str) -> frozenset[str]:
    """The tokens of a name key that `tokens_in_name` counts (split at spaces and commas)."""
    return frozenset(key.replace(",", " ").split())


@lru_cache(maxsize=1 << 16)
def _description_profile(name: str, description: str) -> tuple[frozenset[str], tuple[int, ...], int]:
    """(content words of name + description, years, gender) of an entity, cached."""
    return frozenset(content_words(description) | content_words(name)), tuple(years(description)), gender(description)


class EntityProfile(NamedTuple):
    """What the features read of an entity's name and description: computed once per entity
    (`entity_profile`), or read back from the KB folder (`linker.profiles`). A change to what
    any field holds (here, or in `kb.normalize`, `kb.aliases.base_name` / `surname`) must bump
    `linker.profiles.FORMAT`, so that profiles written before are ignored (a sample of rows is
    recomputed at load as well, which catches most forgotten bumps)."""

    words: frozenset[str]  # content words of name + description (`context_overlap`)
    years: tuple[int, ...]  # years of the description, in order
    gender: int  # `gender` of the description
    key: str  # mention_key(name)
    base_key: str  # mention_key(base_name(name))
    surname_key: str | None  # mention_key(surname(name)), None without a surname
    key_tokens: frozenset[str]  # key_tokens(key)
    name_tokens: frozenset[str]  # name_tokens(name)
    numerals: frozenset[str]  # name_numerals(name)
    description_length: int  # len(description)


@lru_cache(maxsize=1 << 16)
def entity_profile(name: str, description: str) -> EntityProfile:
    """The `EntityProfile` of an entity with this name and description, cached."""
    full, base, sur, tokens = _name_keys(name)
    return EntityProfile(*_description_profile(name, description), full, base, sur, tokens, name_tokens(name),
                         name_numerals(name), len(description))


def description_score(length: int) -> float:
    """`description_length`: log of a description's length in [0, 1], the KB's only popularity
    signal (well-known people have long descriptions)."""
    return min(math.log1p(length) / 7.0, 1.0)


def name_features(surface: str, name: str | EntityProfile) -> tuple[float, float, float, float, float]:
    """(exact_name, surname_match, tokens_in_name, fuzzy_ratio, token_set_ratio); `name`: the
    entity name, or its profile."""
    s = mention_key(surface)
    return _name_scores(s, set(s.split()), _name_keys(name) if isinstance(name, str) else name[3:7])


def _name_scores(s: str, s_tokens: set[str], keys) -> tuple[float, float, float, float, float]:
    """`name_features` of the mention key `s` (tokens `s_tokens`) against an entity's
    (full key, base-name key, surname key, key tokens)."""
    full, base, sur, n_tokens = keys
    return (
        float(s in (full, base)),
        float(sur is not None and s == sur),
        len(s_tokens & n_tokens) / max(len(s_tokens), 1),
        fuzz.ratio(s, base) / 100.0,
        fuzz.token_set_ratio(s, full) / 100.0,
    )


def year_features(context_years: Sequence[int], entity_years: str | tuple[int, ...]) -> tuple[float, float, float, float, float]:
    """(year_in_description, year_before_entity, years_after_entity, age_at_context_year,
    has_context_year).

    `year_before_entity`: a context year precedes every year of the entity (not born yet);
    `years_after_entity`: how far the latest context year lies after the entity's last year,
    in centuries, clipped to [0, 1]; `age_at_context_year`: the earliest context year minus the
    entity's first year (≈ its age then), in centuries, clipped to [0, 1]. `entity_years`: the
    entity's description, or the years already read from it.
    """
    summary = _year_summary(context_years)
    if summary is None:
        return _NO_YEARS
    return _year_scores(*summary, years(entity_years) if isinstance(entity_years, str) else entity_years)


_NO_YEARS = (0.0, 0.0, 0.0, 0.0, 0.0)


def _year_summary(context_years: Sequence[int]) -> tuple[frozenset[int], int, int] | None:
    """(set, earliest, latest) of a mention's context years, what `_year_scores` reads; None without any."""
    return (frozenset(context_years), min(context_years), max(context_years)) if context_years else None


def _year_scores(context: frozenset[int], first: int, last: int, ent: Sequence[int]) -> tuple[float, ...]:
    """`year_features` of context years (their set, earliest and latest) against an entity's years."""
    if not ent:
        return 0.0, 0.0, 0.0, 0.0, 1.0
    lo, hi = min(ent), max(ent)
    return (
        float(not context.isdisjoint(ent)),
        float(first < lo),
        min(max(last - hi, 0) / 100.0, 1.0),
        min(max(first - lo, 0) / 100.0, 1.0),
        1.0,
    )


@dataclass(frozen=True, slots=True)
class MentionContext:
    """What the features read of a mention besides its candidates, computed once per mention."""

    surface: str
    words: frozenset[str]  # content words of the text around the mention
    years: tuple[int, ...]  # years of the whole text outside the mention
    gender: int  # gender of the text around the mention
    n_candidates: int  # the size of its prior pool (`ambiguity`)
    near: frozenset[str] = frozenset()  # the words next to the mention (`near_words`)
    numerals: frozenset[str] = frozenset()  # regnal numbers written in the text (`numerals`)
    enclosing: frozenset[str] = frozenset()  # the other tokens of the name written around it (`enclosing_tokens`)
    first: str | None = None  # the given name of the name written around it (`enclosing_first`)
    numeral_after: str | None = None  # the regnal number right after it (`numeral_after`), else the one of `enclosing`
    link_prob: float = 0.0  # how often its key is a link where it occurs in a dump (0: unknown)
    anchors: float = 0.0  # how many links (anchors, aliases) its key has in the KB
    derived: frozenset[str] = frozenset()  # the keys learned suffix rules make of its key (`kb.morphology.rewrites`)


def mention_context(surface: str, window: str, rest: str, n_candidates: int, near: frozenset[str] = frozenset(),
                    numerals: frozenset[str] = frozenset(), enclosing: str | None = None,
                    numeral_after: str | None = None, link_prob: float = 0.0, anchors: float = 0.0,
                    rest_years: tuple[int, ...] | None = None, derived: frozenset[str] = frozenset()) -> MentionContext:
    """The context of a mention: `window` is the text around it, `rest` the whole text without
    it, `near` the words next to it, `numerals` the regnal numbers of the whole text,
    `enclosing` the longer name written around it (`enclosing_name`) and `numeral_after` the
    regnal number right after it (else the one number of `enclosing`: "William I, Duke of
    Bavaria-Straubing" around "Bavaria"); `link_prob` and `anchors`: what the KB knows of the
    mention's key (`KnowledgeBase.mention_info`); `rest_years`: the years of `rest` when
    already read (`years_outside`); `derived`: the keys the linker's suffix rules make of the
    mention's (`kb.morphology.rewrites`)."""
    if numeral_after is None and enclosing:
        own = name_numerals(enclosing) - name_numerals(surface)
        numeral_after = next(iter(own)) if len(own) == 1 else None
    if rest_years is None:
        rest_years = tuple(years(rest))
    return MentionContext(surface, frozenset(content_words(window)), rest_years, gender(window), n_candidates,
                          near, numerals, enclosing_tokens(enclosing, surface), enclosing_first(enclosing, surface),
                          numeral_after, link_prob, anchors, derived)


_TITLES = frozenset("king queen prince princess emperor empress pope saint st sir dame lord lady duke duchess count "
                    "countess baron baroness president senator governor general admiral captain mr mrs ms miss dr "
                    "professor secretary chancellor minister".split())


def enclosing_tokens(name: str | None, surface: str) -> frozenset[str]:
    """The informative tokens of the longer name a mention is part of ("San Diego" around
    "Diego" → {"san"}), without the mention's own and without titles ("King George V" around
    "George" → none): what an entity meant by the mention should have in its name too."""
    return name_tokens(name) - surface_words(surface) - _TITLES if name else frozenset()


def enclosing_first(name: str | None, surface: str) -> str | None:
    """The given name of the longer name written around a mention, when the mention is not it
    ("Alfred" of "Alfred Josef Ferdinand Jodl" around "Jodl"): of several namesakes whose names
    the text writes, the one it names first is meant (Alfred Jodl, not Ferdinand Jodl)."""
    first = next((w for w in _name_words(name) if w not in _TITLES), None) if name else None
    return None if first is None or first in surface_words(surface) else first


def candidate_features(
    mention: MentionContext,
    entities: Sequence[Entity],
    priors: Sequence[float],
    prior_ranks: Sequence[int | None],
    dense_sims: Sequence[float],
    sources: Sequence[frozenset[str]],
    in_document: Sequence[float],
    profiles: Sequence[EntityProfile] | None = None,
    surface_sims: Sequence[float] = (),
) -> np.ndarray:
    """The features of a mention's candidates, `(len(entities), len(FEATURES))` float32: row c for
    the pair (mention, entities[c]) given its prior, prior rank (None: not in the prior pool),
    cos(context, entity), sources, `name_in_document` and cos(surface, entity) (empty: not
    embedded, 0); columns ordered as `FEATURES`. `profiles`: the entities' `EntityProfile`s
    when already at hand (else computed here). The mention's own columns (`lowercase_mention`,
    a common noun such as "galaxies"; `mention_link_prob`; `mention_anchors`, log-scaled) are
    the same in every row: they let the reranker weigh the rest, and set the score NIL reads.
    `popularity`: the entity's own (an entity list's field, Wikidata's sitelink count, else the
    number of a dump's links to it; `kb.store`), log-scaled; 0 where the KB knows none.
    `dense_gap` and `surface_gap`: how far the candidate's cos(context, ·) and cos(surface, ·) fall
    under the best of the mention's candidates (0 for the best, at most 1 under): the similarities relative to
    the mention's other candidates, which matter once the surface's 20 nearest join.
    `suffix_rewrite`: a learned suffix rule rewrites the mention into the entity's name
    ("astronomical" → Astronomy, not History of astronomy; "Bulgarian" → Bulgaria)."""
    if profiles is None:
        profiles = [entity_profile(e.name, e.description) for e in entities]
    if not surface_sims:
        surface_sims = [0.0] * len(profiles)
    own = (float(mention.surface.islower()), mention.link_prob, min(math.log1p(mention.anchors) / 10.0, 1.0))
    cw = mention.words
    ambiguity = min(math.log1p(mention.n_candidates) / 5.0, 1.0)
    s = mention_key(mention.surface)
    s_tokens = set(s.split())
    s_words = surface_words(mention.surface)
    context_years = _year_summary(mention.years)  # read once, not per candidate
    best_sim = max(dense_sims, default=0.0)
    best_ssim = max(surface_sims, default=0.0)
    rows = []
    for ent, prof, prior, rank, sim, src, doc, ssim in zip(entities, profiles, priors, prior_ranks, dense_sims,
                                                           sources, in_document, surface_sims):
        toks = prof.name_tokens
        rows.append((
            prior,
            1.0 / (1 + rank) if rank is not None else 0.0,
            sim,
            *_name_scores(s, s_tokens, prof[3:7]),
            description_score(prof.description_length),
            len(cw & prof.words) / len(cw) if cw else 0.0,
            *(_year_scores(*context_years, prof.years) if context_years else _NO_YEARS),
            mention.gender * prof.gender,
            ambiguity,
            "prior" in src,
            "dense" in src,
            "fuzzy" in src,
            doc,
            tokens_in_mention(toks, s_words),  # name_in_mention
            tokens_in_document(toks, s_words, mention.near),  # name_near_mention
            *numeral_features(prof.numerals, mention.numerals, mention.numeral_after),
            len(mention.enclosing - toks) / len(mention.enclosing) if mention.enclosing else 0.0,  # enclosing_missing
            0.0 if mention.first is None else 1.0 if mention.first in toks else -1.0,  # enclosing_first
            ssim,
            "surface" in src,
            *own,
            min(math.log1p(ent.popularity) / POPULARITY_SCALE, 1.0) if ent.popularity else 0.0,
            max(sim - best_sim, -1.0),  # dense_gap
            max(ssim - best_ssim, -1.0),  # surface_gap
            float(prof.base_key in mention.derived or prof.key in mention.derived),  # suffix_rewrite
        ))
    return np.array(rows, np.float32).reshape(len(rows), len(FEATURES))
