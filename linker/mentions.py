"""Mention detection when a document gives no spans: a precise dictionary spotter, spaCy NER, or both.

The dictionary spotter proposes the capitalised spans of `kb.spans` whose key the KB knows and,
in a KB with link probabilities (built from a dump), the lower-case spans of 1-4 words
(`kb.spans.lower_spans`: "galaxies", "political philosophy") whose key, or the key of a singular
form (`kb.normalize.singular_forms`), the KB knows with a link probability of at least
`min_lower_link_prob` or with none (an entity name or alias the dump's articles never wrote).
It keeps a span only with evidence that it is a mention:

- closed-class words (function words, pronouns, months, weekdays) are never mentions on their
  own, nor are spans made only of them ("In March");
- capitalised spans whose key has a link probability (KBs built from a dump: the share of
  articles where the string occurs that link it, the keyphraseness of Wikipedia linkers) of at
  least `min_link_prob` are kept; with a smaller one ("Antarctica" where the dump's articles
  wrote it without linking it) the scorer decides;
- other capitalised keys and every lower-case span need a mention score of at least the
  scorer's threshold (one for entity-list KBs, `dump_threshold` for KBs with link probabilities): a small logistic model over span features (length, sentence
  start, how often the words are common lower-case words, part of a longer capitalised run,
  ambiguity; for lower-case spans their link probability, anchor count, whether only a singular
  form is known and whether the text wrote the same words before), trained on labelled documents
  of one or more KBs by `linker.training.mention_train` and shipped in `linker/data/mention_scorer.json`.

A KB without link probabilities (an entity list alone) gets lower-case spans only when its
entities are things people write in lower case: when at least `COMMON_NAMES` of its names
(a sample) are made of words the scorer's training texts mostly write in lower case ("Tea",
"Black hole"; 22 % of the Vital Articles, 0.15 % of WikiMEL's people, 0.05 % of Richpedia's,
5 % of the demo KB's names of people, spacecraft and places), or when such names are at least
`COMMON_NAMES_MIN` of a large KB's and `COMMON_NAMES_COUNT` of them in all (the starter KB
merged with the people KBs: 5 % of 44,700 names, about 2,200 things, which the people beside
them should not hide; a people KB of a million names stays under both);
their lower-case spans have the spans-with-link-probability cut-off (`dump_threshold`), the
capitalised ones the entity-list cut-off. A KB of names (people, products) works as without
lower-case spans.

At each start word the longest span with evidence wins, left to right, without overlaps. The
reranker's NIL decision stays the last filter.
"""
from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from kb.aliases import base_name
from kb.errors import ConfigError, ModelLoadError
from kb.normalize import mention_key, singular_forms
from kb.spans import Span, lower_spans, run_spans, runs, sentence_initial
from kb.store import KnowledgeBase
from kb.types import TextMention
from linker.config import MENTION_SOURCES

DEFAULT_SCORER = Path(__file__).resolve().parent / "data" / "mention_scorer.json"
CACHE_KEYS = 200_000  # KB answers the spotter remembers
NAMES_PER_KEY = 30  # entity names checked against the rest of a run
# spaCy labels of things a KB may hold (not dates, times, quantities or numbers).
SPACY_LABELS = ("PERSON", "NORP", "FAC", "ORG", "GPE", "LOC", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW", "LANGUAGE")

FUNCTION_WORDS = frozenset(
    """a an the this that these those some any each every no all both either neither another such
    what which whose whom who where when why how whether if then than so because as since while
    although though unless until after before during in on at by for from with without within into
    onto upon over under above below between among through across along around about against
    toward towards near of off out up down to via per like unlike despite beyond but and or nor
    yet not also only just even still here there now today yesterday tomorrow yes oh please thanks
    is are was were be been being am do does did done have has had having will would shall should
    can could may might must let lets said says say see new more most much many few other same
    very well first last next our there's it's that's""".split()
)
PRONOUNS = frozenset(
    """i me my mine myself you your yours yourself yourselves he him his himself she her hers
    herself it its itself we us our ours ourselves they them their theirs themselves one someone
    somebody something anyone anybody anything everyone everybody everything nobody nothing""".split()
)
MONTHS = frozenset(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
WEEKDAYS = frozenset(
    "monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs fri sat sun".split()
)
NEVER_ALONE = FUNCTION_WORDS | PRONOUNS | MONTHS | WEEKDAYS
# Titles and honorifics: a name after one is written as part of a longer run ("Senator New",
# "Sir Charles Kao"), unlike the end of a place name ("San Diego", "New York").
TITLES = frozenset(
    """mr mrs ms miss dr prof professor sir dame lord lady king queen prince princess duke duchess
    archduke archduchess grand count countess earl baron baroness marquess viscount emperor empress
    tsar tsaritsa tsarevich tsarevna czar kaiser pope saint st president vice senator sen governor
    gov mayor general gen admiral adm captain capt colonel col major lieutenant lt sergeant sgt
    minister chancellor premier judge justice bishop archbishop cardinal father fr rev reverend
    sheikh emir sultan shah rabbi imam coach chairman secretary ambassador congressman
    congresswoman representative rep commander marshal field chief prime crown""".split()
)

FEATURES = (
    "one_word", "words", "initial", "initial_common", "common", "run_prefix", "run_suffix", "after_title",
    "run_not_in_names", "ambiguity",
    "acronym", "short", "lower_in_text",
    "lowercase", "link_prob", "no_link_prob", "anchors", "singular_only", "seen_before",
    "capital_low_link_prob",
)
MIN_LINK_PROB = 0.02  # capitalised keys with this link probability are mentions without the scorer
COMMON_NAMES = 0.1  # share of common-noun names that gives an entity-list KB lower-case spans
COMMON_NAMES_MIN, COMMON_NAMES_COUNT = 0.01, 1000  # or this share, and this many such names in all
COMMON_NAMES_SAMPLE = 2000  # entity names read to measure it
LOWER_TOKENS = 4  # longest lower-case span


@lru_cache(maxsize=1 << 16)
def closed_class(surface: str) -> bool:
    """True when every word of `surface` is a function word, pronoun, month or weekday."""
    return all(w.strip(".'’").lower() in NEVER_ALONE for w in surface.split())


def span_features(text: str, padded: str, span: Span, entities: int, common: Mapping[str, float],
                  names: frozenset[str] = frozenset(), info: Sequence | None = None) -> list[float]:
    """The mention-scorer features of `span` in `text` (`padded` = `f" {text} "`), in `FEATURES` order.

    `common[w]` is how often the lower-cased word `w` is written in lower case inside a sentence
    (0 for words seen only capitalised, i.e. names); `entities` is how many entities the span's
    key may name; `names`, for a span at the end of a longer run, the words of the names of its
    key's most probable entities ("York" in "New York": is "New" one of them?). For a lower-case
    span, `info` is its KB info `(anchors, entities, link probability[, singular only])`: the
    last six features are 1, its link probability, whether it has none (a name or alias the dump's
    articles never wrote), its log anchor count (scaled to 1 at 1,000),
    whether only a singular form's key is known, and whether the same words occur earlier in
    the text (Wikipedia links a term once); all 0 for capitalised spans. The last feature is 1
    for a capitalised span whose key has a link probability (under `MIN_LINK_PROB`: others
    are not scored).
    """
    words = span.surface.split()
    commonness = [common.get(w.lower(), 0.0) for w in words if w[:1].isupper()]
    initial = sentence_initial(text, span.start)
    low = span.surface.lower()
    return [
        float(span.n_words == 1),
        min(span.n_words, 4) / 4,
        float(initial),
        float(initial) * commonness[0] if commonness else 0.0,
        sum(commonness) / len(commonness) if commonness else 0.0,
        float(span.prefix),
        float(span.suffix),
        float(span.suffix and _previous_word(text, span.start) in TITLES),
        float(span.suffix and not run_in_names(text[span.run_start : span.start], names)),
        min(1.0, math.log1p(entities) / math.log(1000)),
        float(span.surface.isupper() and len(span.surface) >= 2),
        float(len(span.surface) <= 3),
        float(f" {low} " in padded),  # also written in lower case in this text
        *_lower_features(text, span, info),
        float(info is not None and info[2] is not None and not span.surface[:1].islower()),
    ]


def _lower_features(text: str, span: Span, info: Sequence | None) -> list[float]:
    if info is None or not span.surface[:1].islower():
        return [0.0] * 6
    before = re.search(rf"(?<![\w'’-]){re.escape(span.surface)}(?![\w'’-])", text[: span.start], re.IGNORECASE)
    return [
        1.0,
        float(info[2] or 0.0),
        float(info[2] is None),
        min(1.0, math.log1p(info[0] or 0.0) / math.log(1000)),
        float(len(info) > 3 and bool(info[3])),
        float(before is not None),
    ]


def _tokens(text: str) -> set[str]:
    return {w for w in mention_key(text).replace(",", " ").replace(".", " ").split() if w not in TITLES}


def name_words(names: Iterable[str]) -> frozenset[str]:
    """The words (mention keys, titles aside) of `names`."""
    return frozenset(w for n in names for w in _tokens(n))


def run_in_names(before: str, names: frozenset[str]) -> bool:
    """True when a word of `before` after its last title is in `names` (see `name_words`), or
    when no word follows the last title ("Senator New")."""
    words = mention_key(before).replace(",", " ").replace(".", " ").split()
    for i in range(len(words) - 1, -1, -1):
        if words[i] in TITLES:
            words = words[i + 1 :]
            break
    return not words or not names.isdisjoint(words)


def _previous_word(text: str, start: int) -> str:
    words = text[max(0, start - 40) : start].split()
    return words[-1].strip(".").lower() if words else ""


@dataclass(frozen=True)
class MentionScorerConfig:
    """A logistic mention scorer: p(mention) = σ(bias + weights · features), kept at ≥ threshold."""

    features: tuple[str, ...] = FEATURES
    weights: tuple[float, ...] = ()
    bias: float = 0.0
    threshold: float = 0.5
    dump_threshold: float = 0.5  # the cut-off in KBs with link probabilities
    min_lower_link_prob: float = 0.0  # lower-case keys with a smaller link probability are no candidates
    common: dict[str, float] = field(default_factory=dict, repr=False)
    trained_on: tuple[str, ...] = ()
    command: str = ""
    metrics: dict = field(default_factory=dict)


class MentionScorer:
    """Scores candidate spans; load with `MentionScorer.load(path)`, save with `save`."""

    def __init__(self, config: MentionScorerConfig):
        if tuple(config.features) != FEATURES:
            raise ConfigError(
                f"mention scorer features {list(config.features)} differ from this version's "
                f"{list(FEATURES)}: retrain it with `python -m linker.training.mention_train`"
            )
        if len(config.weights) != len(FEATURES):
            raise ConfigError(f"mention scorer has {len(config.weights)} weights, expected {len(FEATURES)}")
        self.config = config

    def probability(self, features: Sequence[Sequence[float]]) -> list[float]:
        """σ(bias + weights · x) per feature row (plain Python: a document has a few rows, where
        NumPy's call overhead would dominate)."""
        w, b = self.config.weights, self.config.bias
        return [1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, b + sum(wi * xi for wi, xi in zip(w, row))))))
                for row in features]

    @classmethod
    def load(cls, path: str | os.PathLike = DEFAULT_SCORER) -> MentionScorer:
        p = Path(path)
        try:
            raw = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot read mention scorer {p}: {exc}") from None
        if raw.get("kind") != "mmel-mention-scorer":
            raise ModelLoadError(f"{p} is not a mention scorer (kind {raw.get('kind')!r})")
        raw = {k: v for k, v in raw.items() if k != "kind"}
        for key in ("features", "weights", "trained_on"):
            raw[key] = tuple(raw.get(key, ()))
        return cls(MentionScorerConfig(**raw))

    def save(self, path: str | os.PathLike) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        body = {"kind": "mmel-mention-scorer", **asdict(self.config)}
        body["common"] = dict(sorted(body["common"].items()))
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(body, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, p)
        return p


@dataclass(frozen=True)
class SpotterConfig:
    max_tokens: int = 6
    min_link_prob: float = MIN_LINK_PROB  # for capitalised keys with a link probability (KBs from a dump)
    threshold: float | None = None  # mention-scorer cut-off in entity-list KBs; None: the scorer's own
    dump_threshold: float | None = None  # the same in KBs with link probabilities
    min_lower_link_prob: float | None = None  # lower-case spans' gate; None: the scorer's own
    lowercase: bool | None = None  # lower-case spans; None: decided by the KB (`wants_lower_spans`)


Group = tuple[list[Span], list[tuple | None]]


def has_link_prob(kb: KnowledgeBase) -> bool:
    """Whether `kb` knows link probabilities (it was built from a dump)."""
    return bool(kb.meta.get("mentions_with_link_prob"))


def common_name_share(kb: KnowledgeBase, common: Mapping[str, float], sample: int = COMMON_NAMES_SAMPLE) -> float:
    """The share of `kb`'s entity names (an evenly spaced sample) whose every word `common` says
    is mostly written in lower case ("Tea", "Black hole"; not "Chuck Norris")."""
    n = len(kb)
    k = min(n, sample)
    names = [e.name for e in kb.by_idx([i * n // k for i in range(k)])]
    words = [base_name(name).lower().split() for name in names]
    return sum(bool(ws) and all(common.get(w, 0.0) >= 0.5 for w in ws) for ws in words) / max(len(names), 1)


def wants_lower_spans(kb: KnowledgeBase, common: Mapping[str, float], share: float = COMMON_NAMES,
                      min_share: float = COMMON_NAMES_MIN, count: int = COMMON_NAMES_COUNT) -> bool:
    """Lower-case spans for `kb`: it has link probabilities, or at least `share` of its names
    read as common nouns (`common_name_share`), or at least `min_share` and `count` names in all."""
    if has_link_prob(kb):
        return True
    common_share = common_name_share(kb, common)
    return common_share >= share or (common_share >= min_share and common_share * len(kb) >= count)


def lower_key_ok(surface: str) -> bool:
    """A lower-case span may be a mention unless it starts or ends with a closed-class word
    ("of stars", "galaxies are")."""
    words = surface.split()
    return not (closed_class(words[0]) or closed_class(words[-1]))


def candidate_groups(text: str, kb: KnowledgeBase, max_tokens: int = 6, cache: dict | None = None,
                     lowercase: bool = False, min_lower_link_prob: float = 0.0) -> list[Group]:
    """Per start word, in text order, its spans longest first and, per span, the KB's `(anchors,
    entities, link probability)` for its key (None: a key the KB does not know). With
    `lowercase`, also the lower-case spans whose key, or else a singular form's key, the KB
    knows with no link probability or one ≥ `min_lower_link_prob` (info `(anchors, entities,
    link probability, singular only)`; None otherwise). At most one KB query: keys found in `cache` (key → info or None)
    are not asked again, new ones are added."""
    groups = [g for start, end in runs(text) for g in run_spans(text, start, end, max_tokens)]
    keys = [[mention_key(s.surface) for s in g] for g in groups]
    lower = [g for g in lower_spans(text, LOWER_TOKENS)] if lowercase else []
    lower_keys = [[mention_key(s.surface) if lower_key_ok(s.surface) else None for s in g] for g in lower]
    forms = {k: singular_forms(k) for ks in lower_keys for k in ks if k}
    cache = {} if cache is None else cache
    wanted = [k for ks in keys for k in ks] + [f for k, fs in forms.items() for f in (k, *fs)]
    missing = [k for k in dict.fromkeys(wanted) if k not in cache]
    if missing:
        found = kb.mention_info(missing)
        cache.update((k, found.get(k)) for k in missing)

    def lower_info(key: str | None):
        if key is None:
            return None
        for form in (key, *forms[key]):
            info = cache[form]
            if info is not None and (info[2] is None or info[2] >= min_lower_link_prob):
                return info if form == key else (*info, True)
        return None

    out = [(g, [cache[k] for k in ks]) for g, ks in zip(groups, keys)]
    out += [(g, [lower_info(k) for k in ks]) for g, ks in zip(lower, lower_keys)]
    return sorted(out, key=lambda group: group[0][0].start) if lower else out


def is_lower(span: Span) -> bool:
    return span.surface[:1].islower()


def by_link_prob(span: Span, info, min_link_prob: float = MIN_LINK_PROB) -> bool:
    """A capitalised span whose key has a link probability ≥ `min_link_prob`: a mention
    without the scorer."""
    return info is not None and info[2] is not None and info[2] >= min_link_prob and not is_lower(span)


def needs_scorer(span: Span, info, min_link_prob: float = MIN_LINK_PROB) -> bool:
    """A lower-case candidate, or a known capitalised key without a link probability of
    `min_link_prob` that does not start with a closed-class word ("The Queen": without anchors
    nothing says that the KB's derived alias is a name people write)."""
    if info is None:
        return False
    if is_lower(span):
        return True
    return not by_link_prob(span, info, min_link_prob) and not closed_class(span.surface.split()[0])


def features_of(text: str, padded: str, span: Span, info, common: Mapping[str, float],
                names_of: Callable[[str], frozenset[str]]) -> list[float]:
    names = names_of(mention_key(span.surface)) if span.suffix else frozenset()
    return span_features(text, padded, span, info[1], common, names, info)


def scored_spans(text: str, groups: list[Group], common: Mapping[str, float],
                 names_of: Callable[[str], frozenset[str]]) -> list[tuple[Span, list[float]]]:
    """The spans that need the mention scorer with their features; `names_of(key)` gives the
    name words of a key's most probable entities (`top_name_words`)."""
    padded = f" {text} "
    return [(s, features_of(text, padded, s, i, common, names_of))
            for spans, infos in groups for s, i in zip(spans, infos) if needs_scorer(s, i)]


def top_name_words(kb: KnowledgeBase, key: str, k: int = NAMES_PER_KEY) -> frozenset[str]:
    return name_words(c.name for c in kb.lookup_key(key, k))


def select(groups: list[Group], keep) -> list[TextMention]:
    """Left to right, at each start word the longest span with `keep(span, info)`, no overlaps."""
    out: list[TextMention] = []
    taken = 0
    for spans, infos in groups:
        if spans[0].start < taken:
            continue
        for s, i in zip(spans, infos):
            if i is not None and not closed_class(s.surface) and keep(s, i):
                out.append(TextMention(s.start, s.end, s.surface))
                taken = s.end
                break
    return out


class MentionDetector(Protocol):
    def __call__(self, text: str) -> list[TextMention]: ...


class DictionarySpotter:
    """Dictionary mentions with evidence (see the module docstring). Thread-safe."""

    def __init__(self, kb: KnowledgeBase, scorer: MentionScorer | None = None,
                 config: SpotterConfig = SpotterConfig()):
        self.kb = kb
        self.scorer = scorer or MentionScorer.load()
        self.config = config
        self.threshold = self.scorer.config.threshold if config.threshold is None else config.threshold
        dump_threshold = self.scorer.config.dump_threshold if config.dump_threshold is None else config.dump_threshold
        if has_link_prob(kb):  # the spans of a KB with link probabilities have a cut-off of their own
            self.threshold = dump_threshold
        self.lowercase = (wants_lower_spans(kb, self.scorer.config.common) if config.lowercase is None
                          else config.lowercase)
        self.lower_threshold = dump_threshold  # lower-case spans: the cut-off they were trained for
        self.min_lower_link_prob = (self.scorer.config.min_lower_link_prob if config.min_lower_link_prob is None
                                    else config.min_lower_link_prob)
        self._info: dict = {}  # mention key → KB info (or None), shared by calls; the KB is read-only
        self._names: dict = {}  # mention key → names of its top entities

    def _cache(self) -> dict:
        if len(self._info) > CACHE_KEYS:
            self._info = {}
        return self._info

    def _names_of(self, key: str) -> frozenset[str]:
        names = self._names.get(key)
        if names is None:
            if len(self._names) > CACHE_KEYS:
                self._names = {}
            names = self._names[key] = top_name_words(self.kb, key)
        return names

    def __call__(self, text: str) -> list[TextMention]:
        """Mentions in `text`, in text order."""
        groups = candidate_groups(text, self.kb, self.config.max_tokens, self._cache(),
                                  self.lowercase, self.min_lower_link_prob)
        padded, common = f" {text} ", self.scorer.config.common

        def keep(s: Span, info) -> bool:  # scored only when the greedy selection gets to it
            if by_link_prob(s, info, self.config.min_link_prob):
                return True
            if not needs_scorer(s, info, self.config.min_link_prob):
                return False
            features = features_of(text, padded, s, info, common, self._names_of)
            return self.scorer.probability([features])[0] >= (self.lower_threshold if is_lower(s) else self.threshold)

        return select(groups, keep)


class SpacyDetector:
    """Named entities of a spaCy pipeline with labels in `labels` become mentions."""

    def __init__(self, nlp, labels: Iterable[str] = SPACY_LABELS):
        self.nlp = nlp
        self.labels = frozenset(labels)

    def __call__(self, text: str) -> list[TextMention]:
        return [TextMention(e.start_char, e.end_char, e.text) for e in self.nlp(text).ents if e.label_ in self.labels]


class CombinedDetector:
    """spaCy's entities, plus the dictionary's mentions that overlap none of them."""

    def __init__(self, first: MentionDetector, second: MentionDetector):
        self.first, self.second = first, second

    def __call__(self, text: str) -> list[TextMention]:
        ner = self.first(text)
        extra = [m for m in self.second(text) if not any(m.start < n.end and n.start < m.end for n in ner)]
        return sorted(ner + extra, key=lambda m: (m.start, m.end))


def load_spacy(name: str):
    """A spaCy pipeline by installed package name or path; nothing is downloaded."""
    try:
        import spacy
    except ImportError:
        raise ConfigError("--mentions spacy/both needs spaCy: pip install 'mmel[spacy]'") from None
    try:
        return spacy.load(name)
    except OSError:
        raise ConfigError(
            f"spaCy model {name!r} is not installed: give an installed package or a path with --spacy-model "
            f"(e.g. after `python -m spacy download en_core_web_sm`)"
        ) from None


def make_detector(kb: KnowledgeBase, mentions: str = "dict", spacy_model: str | None = None,
                  lowercase: bool | None = None) -> MentionDetector:
    """The mention detector for `mentions` ∈ {dict, spacy, both}; `lowercase`: the dictionary
    spotter's lower-case spans (None: decided by the KB)."""
    if mentions not in MENTION_SOURCES:
        raise ConfigError(f"unknown mention source {mentions!r}: choose one of {', '.join(MENTION_SOURCES)}")
    if mentions == "spacy":
        return SpacyDetector(load_spacy(spacy_model or "en_core_web_sm"))
    spotter = DictionarySpotter(kb, config=SpotterConfig(lowercase=lowercase))
    if mentions == "dict":
        return spotter
    return CombinedDetector(SpacyDetector(load_spacy(spacy_model or "en_core_web_sm")), spotter)


def spot(text: str, kb: KnowledgeBase) -> list[TextMention]:
    """Dictionary mentions of `text` with the default scorer (a convenience; build a
    `DictionarySpotter` once to spot many texts)."""
    return DictionarySpotter(kb)(text)
