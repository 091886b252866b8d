"""Candidate generation: the prior pool ranked with the document's own evidence, dense retrieval,
fuzzy names and in-document coreference.

For one mention with key `m` and context embedding `c` in a document with words W:
1. pool: up to `pool` entities with p(e|m) > 0, ranked by prior + name_in_document(e) (the share of
   e's other name tokens that W contains: "Clinton" after "Hillary Clinton"; "Saxony" in "Franz
   Xavier of Saxony …"), ties broken by cos(c, e); the first `top` (30) form the candidate list
   whose recall the benchmark reports.
2. reduction: of those 30 keep `keep_prior` by that rank and `keep_context` more by context
   similarity; `keep_prior=None` (the default) keeps all 30.
3. unions: `dense_k` nearest entities to `c` in the FAISS text index, and `surface_k` nearest
   to the embedding of the surface alone ("geese" → Goose, "globalized" → Globalization: forms
   no name, anchor or plural rule spells); rapidfuzz matches over
   mention keys when `m` has no prior; and, for a mention that is part of a longer mention of the
   same document ("Powers" after "Stefanie Powers"), the longer mention's candidates (with this
   surface's own prior: which one is meant is the reranker's `name_in_document` evidence; the
   training sets have too few such pairs to learn a feature of their own).
   The same holds for the name the text writes around the mention when the span is only part
   of it (`enclosing_name`: "Gaertner" in "Karl Friedrich von Gaertner was …", "Emperor" in
   "Emperor Gaozong of Song , …", "George" in "King George V"): that name's candidates join,
   looked up as a surface (below) — a document naming its person in full beats the prior.
   A surface the KB does not know is looked up without a possessive ("Masaryk's"), then by its
   own strongest name variants ("Edwin Grant Conklin" → "Edwin Conklin", with that variant's
   prior: a long form of a name is as good evidence as the name), then in the other name order
   ("Hyun-soo Kim" → "Kim Hyun-soo"); fuzzy matches (no prior) join in every case, and so do the
   entities of its words that name at most `fuzzy_k` entities ("Salza" of the broken span "Salza
   (or Hermann", "Maltzan" of "Heinrich Eckhard Carl Helmuth von Maltzan and by his title Baron
   of Wartenburg and Penzlin"; no prior either). A known variant no longer hides the fuzzy
   matches: "Prince of Schaumburg-Lippe" knows "prince" (the musician), and fuzzy matching finds
   "Prince William of Schaumburg-Lippe". Richpedia dev part, own KB, bundled reranker: Hits@1
   0.983 → 0.9845, recall@30 0.995 → 0.996 (these three spans); WikiMEL dev unchanged.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from rapidfuzz import fuzz, process

from kb import aliases as alias_fn
from kb.morphology import parse_rule, rewrites
from kb.normalize import fold, mention_key, singular_forms
from kb.types import Entity, TextMention
from linker.config import CandidateConfig
from linker.features import EntityProfile, description_score, surface_words, tokens_in_document, without_span, words
from linker.profiles import ComputedProfiles, ProfileSource


class CandidateKB(Protocol):
    """What candidate generation reads from a KB (`kb.store.KnowledgeBase` is one)."""

    def prior_candidates(self, key: str, k: int) -> list[tuple[int, float]]:
        """The top `k` `(entity idx, p(e|m))` for a mention key, most probable first."""

    def mention_info(self, keys: Iterable[str]) -> Mapping[str, tuple]:
        """`{key: (anchor count, number of entities, link probability)}` of the known `keys`."""

    def iter_mentions(self) -> Iterator[tuple[str, float, int]]:
        """Every `(mention key, anchor count, number of entities)`."""

    def by_idx(self, idxs: Iterable[int]) -> list[Entity]:
        """Entities by dense index, in the order given."""


class VectorIndex(Protocol):
    """What candidate generation reads from a text index (`indexer.dense.DenseIndex` is one):
    entity `idx` is row `idx`, vectors are unit length."""

    @property
    def dim(self) -> int: ...

    def search(self, queries: np.ndarray, k: int, ef_search: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """`(scores, ids)` of the `k` nearest rows of each query (id -1: none); `ef_search`: the
        search breadth of a graph index (None: its own)."""

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of rows `ids`."""


@dataclass(frozen=True, slots=True)
class MentionCandidates:
    """The candidates of one mention, with what later stages need of each (same order as `idxs`)."""

    mention: TextMention
    idxs: tuple[int, ...]
    entities: tuple[Entity, ...]
    priors: tuple[float, ...]
    prior_ranks: tuple[int | None, ...]
    sources: tuple[frozenset[str], ...]
    similarities: tuple[float, ...]  # cos(context, entity)
    in_document: tuple[float, ...]  # features.name_in_document
    vectors: np.ndarray = field(compare=False, repr=False)  # (len(idxs), dim) entity embeddings
    ranked_pool: tuple[int, ...] = field(default=(), compare=False)  # the top-30 list, in order
    profiles: tuple[EntityProfile, ...] = field(default=(), compare=False, repr=False)  # features.EntityProfile
    enclosing: str | None = None  # the longer name the text writes around the mention (`enclosing_name`)
    surface_similarities: tuple[float, ...] = ()  # cos(surface, entity), when surfaces were embedded


PRIOR, COREF, FUZZY, DENSE, SURFACE = 1, 2, 4, 8, 16  # how a candidate was found (bit flags while gathering)
_SOURCE_SETS = tuple(  # the `MentionCandidates.sources` value of each combination, shared
    frozenset(name for bit, name in zip((PRIOR, COREF, FUZZY, DENSE, SURFACE),
                                        ("prior", "coref", "fuzzy", "dense", "surface")) if flags & bit)
    for flags in range(32)
)


@dataclass(frozen=True, slots=True)
class _Pool:
    """A mention's candidates while they are gathered, by entity index in the order found: their
    sources (bit flags), priors (when not 0) and prior ranks (when in the prior list)."""

    sources: dict[int, int] = field(default_factory=dict)
    priors: dict[int, float] = field(default_factory=dict)
    ranks: dict[int, int] = field(default_factory=dict)

    def add(self, idx: int, source: int) -> None:
        self.sources[idx] = self.sources.get(idx, 0) | source


def _is_part(short: str, long: str) -> bool:
    """`short` is a proper token sub-sequence of `long` ("powers" in "stefanie powers")."""
    return _part_of(short.split(), long.split())


def _part_of(s: list[str], l: list[str]) -> bool:
    """`_is_part` of split keys."""
    return 0 < len(s) < len(l) and any(l[i : i + len(s)] == s for i in range(len(l) - len(s) + 1))


def _longer_keys(keys: Iterable[str]) -> dict[str, list[str]]:
    """For each key, the keys it is a proper part of (`_is_part`), each key split once."""
    split = {k: k.split() for k in keys}
    having: dict[str, list[str]] = {}  # token -> the keys that have it, in order
    for k, tokens in split.items():
        for t in dict.fromkeys(tokens):
            having.setdefault(t, []).append(k)
    return {key: [other for other in having[s[0]] if _part_of(s, split[other])] if s else []
            for key, s in split.items()}


_POSSESSIVE = re.compile(r"['’´ʼ]s$")
_NAME_WORD = re.compile(r"[^\W\d_][\w'’.-]*")
_JOINERS = frozenset("of von van de der den da di du la le zu del della dos das bin ibn al".split())
_NOT_NAME = frozenset("A An The In At On By For From With His Her Its Their This That These Those Portrait Photo Bust "
                      "Statue Memorial Detail Image Picture Painting".split())
_NO_QUOTES = str.maketrans("", "", "\"“”„«»")  # a nickname inside a name: 'Marie "Mimí" Lisbeth Langer'
_ENCLOSING_WORDS = 6  # the longest name `enclosing_name` builds
# ranks of the "Name, Rank of Place" names ("Frederick, Prince of Hohenzollern"): a name runs on across their comma
_RANKS = frozenset("Prince Princess Duke Duchess Archduke Archduchess Margrave Margravine Landgrave Elector Count "
                   "Countess Earl Baron Baroness Viscount Marquess King Queen Emperor Empress Grand".split())


def _name_word(word: str) -> bool:
    return word[:1].isupper() and word not in _NOT_NAME


def enclosing_name(text: str, start: int, end: int) -> str | None:
    """The longer name the text writes around `text[start:end]` (a mention): the run of
    capitalised words (and joiners between them: "of", "von", ...) the span sits in, on one
    line and not across punctuation but the comma of "Name, Rank of Place" and the quotes of a
    nickname ('Marie "Mimí" Lisbeth Langer'); None when the span
    is the whole run. "Gaertner" in "Karl Friedrich von Gaertner was a botanist" → "Karl
    Friedrich von Gaertner"; "Hohenzollern" in "Frederick, Prince of Hohenzollern was" → all of it."""
    words = [(m.start(), m.end(), m.group()) for m in _NAME_WORD.finditer(text, max(0, start - 120), min(len(text), end + 120))]
    inside = [i for i, (a, b, _) in enumerate(words) if a < end and b > start]
    if not inside:
        return None

    def joined(i: int, j: int) -> bool:  # words i and j = i + 1 are separated by spaces (and quotes) only
        return not text[words[i][1] : words[j][0]].translate(_NO_QUOTES).strip()

    def rank_after_comma(i: int, j: int) -> bool:  # "Frederick, Prince": name, comma, rank
        return (text[words[i][1] : words[j][0]].strip() == "," and words[j][2] in _RANKS
                and _name_word(words[i][2]) and not words[i][2].endswith("."))

    lo, hi = inside[0], inside[-1]
    while lo > 0 and hi - lo + 1 < _ENCLOSING_WORDS and (joined(lo - 1, lo) or rank_after_comma(lo - 1, lo)):
        w = words[lo - 1][2]
        if _name_word(w):
            lo -= 1
        elif w in _JOINERS and lo > 1 and joined(lo - 2, lo - 1) and _name_word(words[lo - 2][2]):
            lo -= 2
        else:
            break
    while hi + 1 < len(words) and hi - lo + 1 < _ENCLOSING_WORDS and (joined(hi, hi + 1) or rank_after_comma(hi, hi + 1)):
        w = words[hi + 1][2]
        if _name_word(w) and not w.endswith("."):
            hi += 1
        elif w in _JOINERS and hi + 2 < len(words) and joined(hi + 1, hi + 2) and _name_word(words[hi + 2][2]):
            hi += 2
        else:
            break
    a, b = min(words[lo][0], start), max(words[hi][1], end)
    name = _POSSESSIVE.sub("", text[a:b].rstrip("."))
    return name if name != _POSSESSIVE.sub("", text[start:end]) else None


_ARTICLE = re.compile(r"(?:the|a|an) (?=\w)")


def surface_forms(surface: str, rules: Sequence[tuple[str, str]] = ()) -> list[list[str]]:
    """The keys a surface may be known by, grouped, in order of preference: its own; without a
    possessive ("Masaryk's"); without a leading English article ("the Soviet Union", as a
    tagger's span starts); its singular forms ("galaxies" → "galaxy", `singular_forms`); what
    the learned suffix `rules` make of it ("Angolan" → "angola", `kb.morphology.rewrites`);
    its strongest name variants, a group per weight ("Edwin Grant
    Conklin" → "Edwin Conklin", "Eric I of Saxe-Lauenburg" → "Eric I"); for two words, the other
    name order ("Hyun-soo Kim" → "Kim Hyun-soo")."""
    key = mention_key(surface)
    groups = [[key]]
    bare = mention_key(_POSSESSIVE.sub("", surface))
    if bare != key:
        groups.append([bare])
    article = _ARTICLE.match(bare)
    if article:  # "the Soviet Union" as a tagger spans it
        bare = bare[article.end():]
        groups.append([bare])
    singular = singular_forms(bare)
    if singular:
        groups.append(singular)
    derived = sorted(rewrites(bare, rules)) if rules else []
    if derived:
        groups.append(derived)
    variants = [(k, w) for a, w in alias_fn.derive(surface) if w >= alias_fn.FIRST_LAST and (k := mention_key(a))]
    for weight in sorted({w for _, w in variants}, reverse=True):
        groups.append(list(dict.fromkeys(k for k, w in variants if w == weight)))
    parts = key.split()
    if len(parts) == 2:
        groups.append([f"{parts[1]} {parts[0]}"])
    return groups


def first_known(groups: Sequence[Sequence[str]], known: Mapping[str, object] | set[str]) -> list[str]:
    """The `known` keys of the first group that has any."""
    for group in groups:
        hits = [k for k in group if k in known]
        if hits:
            return hits
    return []


def document_words(text: str, mention: TextMention) -> frozenset[str]:
    """The words of `text` outside the mention's span (what `name_in_document` looks in)."""
    return frozenset(words(without_span(text, mention.start, mention.end)))


_WORD_CHAR = re.compile(r"\w")


def _wordish(char: str) -> bool:
    """`char` may join the word next to it once folded (a letter, digit, combining mark, "Ⓐ")."""
    return bool(unicodedata.combining(char) or _WORD_CHAR.search(fold(char)))


def document_word_sets(text: str, mentions: Sequence[TextMention]) -> list[frozenset[str]]:
    """`document_words` of each mention of one document, the document tokenized once: a span
    that starts and ends at word edges leaves the other words as they are, so its set is the
    document's words less those found only inside the span; a span that cuts a word is done
    the long way."""
    counts: Counter[str] | None = None
    out = []
    for m in mentions:
        if (m.start > 0 and _wordish(text[m.start - 1])) or (m.end < len(text) and _wordish(text[m.end])):
            out.append(document_words(text, m))
            continue
        if counts is None:
            counts = Counter(words(text))
            every = frozenset(counts)
        inside = Counter(words(text[m.start : m.end]))
        gone = [w for w, n in inside.items() if counts[w] <= n]
        out.append(every.difference(gone) if gone else every)
    return out


def fuzzy_table(kb: CandidateKB) -> dict[str, list[str]]:
    """Every mention key of `kb`, grouped by first character (the fuzzy matcher's choices)."""
    table: dict[str, list[str]] = {}
    for k, _, _ in kb.iter_mentions():
        table.setdefault(k[:1], []).append(k)
    return table


class CandidateGenerator:
    """Generates candidates for the mentions of documents against one KB and its text index.

    Everything is read at construction; afterwards the generator only reads, so one instance is
    safe to share between threads. `profiles`: where the entities' `EntityProfile`s come from
    (`linker.profiles`; default: computed from their names and descriptions).
    """

    def __init__(self, kb: CandidateKB, index: VectorIndex, config: CandidateConfig = CandidateConfig(),
                 profiles: ProfileSource | None = None):
        self.kb = kb
        self.index = index
        self.config = config
        self.profiles = profiles if profiles is not None else ComputedProfiles()
        self.rules = tuple(parse_rule(r) for r in config.suffix_rules)
        self._keys = fuzzy_table(kb)

    def _fuzzy(self, key: str) -> list[str]:
        """Mention keys close to `key` (same first letter), best first."""
        hits = process.extract(
            key, self._keys.get(key[:1], []), scorer=fuzz.ratio, limit=self.config.fuzzy_k,
            score_cutoff=self.config.fuzzy_cutoff,
        )
        return [h[0] for h in hits]

    def _rare_words(self, surface: str) -> list[str]:
        """The words of an unknown surface of several words that name at most `fuzzy_k` entities
        ("Salza" of the broken span "Salza (or Hermann", "Maltzan" of a name with all its titles)."""
        ws = [k for w in _NAME_WORD.findall(surface) if w[:1].isupper() and len(w) > 3 and (k := mention_key(w))]
        info = self.kb.mention_info(ws) if len(ws) > 1 else {}
        return [k for k in dict.fromkeys(ws) if k in info and info[k][1] <= self.config.fuzzy_k]

    def _known_keys(self, surface: str) -> list[str]:
        """The first group of `surface_forms(surface)` the KB knows (one query); [] if none."""
        groups = surface_forms(surface, self.rules)
        return first_known(groups, self.kb.mention_info(k for g in groups for k in g))

    def _gather(self, mentions: Sequence[TextMention], enclosing: Sequence[list[str]], dense_ids,
                surface_ids=None) -> list[_Pool]:
        """Candidates of each mention of one document, with prior, rank and sources;
        `enclosing[i]`: the known keys of the name written around mention i; `dense_ids[i]` and
        `surface_ids[i]`: the nearest entities to its context and to its surface."""
        cfg = self.config
        keys = [mention_key(m.surface) for m in mentions]
        priors = {k: self.kb.prior_candidates(k, cfg.pool) for k in set(keys)}
        longer = _longer_keys(priors)
        out = []
        for i, key in enumerate(keys):
            pool = _Pool()
            for rank, (idx, p) in enumerate(priors[key]):
                pool.sources[idx] = PRIOR
                pool.priors[idx] = p
                pool.ranks[idx] = rank
            for other in longer[key]:  # the longer mention's candidates join with their own prior for
                for idx, _ in priors[other][: cfg.top]:  # this surface: name_in_document tells the reranker who is meant
                    pool.add(idx, COREF)
            for k in enclosing[i]:  # the text names it in full around the span: that name's candidates join
                for idx, _ in self.kb.prior_candidates(k, cfg.top):
                    pool.add(idx, COREF)
            if not priors[key]:  # its own name variants carry their prior; fuzzy matches do not
                known = self._known_keys(mentions[i].surface)
                others = [k for k in self._fuzzy(key) + self._rare_words(mentions[i].surface) if k not in known]
                for fk in known + list(dict.fromkeys(others)):
                    for idx, p in self.kb.prior_candidates(fk, cfg.top):
                        pool.add(idx, FUZZY)
                        pool.priors[idx] = max(pool.priors.get(idx, 0.0), p if fk in known else 0.0)
            for ids, source in ((dense_ids, DENSE), (surface_ids, SURFACE)):
                if ids is not None:
                    for idx in ids[i].tolist():
                        if idx >= 0:
                            pool.add(idx, source)
            out.append(pool)
        return out

    def generate(
        self, texts: Sequence[str], docs_mentions: Sequence[Sequence[TextMention]], contexts: np.ndarray,
        surfaces: np.ndarray | None = None,
    ) -> list[list[MentionCandidates]]:
        """Candidates for every mention of every document (`texts[d]` holds `docs_mentions[d]`);
        `contexts` holds one embedding per mention, in order, and `surfaces` (optional) one
        embedding of each mention's surface: its `surface_k` nearest entities join ("geese" →
        Goose, "globalized" → Globalization: forms no name or anchor spells)."""
        cfg = self.config
        if not any(docs_mentions):
            return [[] for _ in docs_mentions]
        dense_ids = self._nearest(contexts, cfg.dense_k) if cfg.dense_k else None
        surface_ids = self._nearest(surfaces, cfg.surface_k) if cfg.surface_k and surfaces is not None else None
        raw: list[_Pool] = []
        pos = 0
        names, known = self._enclosing(texts, docs_mentions)
        for ms, keys in zip(docs_mentions, known):
            span = slice(pos, pos + len(ms))
            raw += self._gather(ms, keys, None if dense_ids is None else dense_ids[span],
                                None if surface_ids is None else surface_ids[span])
            pos += len(ms)
        # names and vectors of every candidate, in one query and one reconstruct call
        all_idx = sorted({idx for pool in raw for idx in pool.sources})
        row = {idx: r for r, idx in enumerate(all_idx)}
        vecs = self.index.reconstruct(np.asarray(all_idx, dtype=np.int64))
        ents = self.kb.by_idx(all_idx)
        profs = self.profiles.get(all_idx, ents)
        out: list[list[MentionCandidates]] = []
        pos = 0
        for text, ms, doc_names in zip(texts, docs_mentions, names):
            doc_out = []
            for m, name, doc_words in zip(ms, doc_names, document_word_sets(text, ms)):
                doc_out.append(self._rank(m, name, doc_words, raw[pos], contexts[pos], vecs, ents,
                                          profs, row, None if surfaces is None else surfaces[pos]))
                pos += 1
            out.append(doc_out)
        return out

    def _enclosing(self, texts: Sequence[str], docs_mentions) -> tuple[list[list[str | None]], list[list[list[str]]]]:
        """Per document, per mention: the name the text writes around it (`enclosing_name`) and
        that name's known keys (`surface_forms`), all looked up in one query."""
        names = [[enclosing_name(text, m.start, m.end) for m in ms] for text, ms in zip(texts, docs_mentions)]
        forms = {n: surface_forms(n) for doc in names for n in doc if n}
        known = self.kb.mention_info(k for groups in forms.values() for g in groups for k in g) if forms else {}
        return names, [[first_known(forms[n], known) if n else [] for n in doc] for doc in names]

    def _nearest(self, queries: np.ndarray, k: int) -> np.ndarray:
        """Ids of the `k` entities nearest to each query; a query equal to the one before is not
        searched again (the mentions of a short document share one context)."""
        new = np.ones(len(queries), bool)
        new[1:] = (queries[1:] != queries[:-1]).any(1)
        return self.index.search(queries[new], k, self.config.dense_ef_search)[1][np.cumsum(new) - 1]

    def _rank(self, mention, enclosing, doc_words, pool: _Pool, ctx, vecs, ents, profs, row,
              surface=None) -> MentionCandidates:
        cfg = self.config
        idxs = list(pool.sources)
        own = vecs[[row[i] for i in idxs]]
        sims = dict(zip(idxs, (own @ ctx).tolist()))
        ssims = dict(zip(idxs, (own @ surface).tolist())) if surface is not None else {}
        surface = surface_words(mention.surface)
        evidence = {i: tokens_in_document(profs[row[i]].name_tokens, surface, doc_words) for i in idxs}
        priors = pool.priors
        # equal priors (every "Johnson" of a surname-only mention) are ordered by context and popularity
        order = {i: sims[i] + cfg.popularity * description_score(profs[row[i]].description_length) for i in idxs}
        ranked = sorted(idxs, key=lambda i: (-(priors.get(i, 0.0) + evidence[i]), -order[i]))[: cfg.top]
        if cfg.keep_prior is None:
            kept = list(ranked)
        else:
            kept = ranked[: cfg.keep_prior]
            rest = sorted(ranked[cfg.keep_prior :], key=lambda i: -sims[i])
            kept += rest[: cfg.keep_context]
        chosen = set(kept)
        kept += sorted((i for i in idxs if i not in chosen and pool.sources[i] & (DENSE | SURFACE | FUZZY | COREF)),
                       key=lambda i: -sims[i])
        return MentionCandidates(
            mention=mention,
            idxs=tuple(kept),
            entities=tuple(ents[row[i]] for i in kept),
            priors=tuple(priors.get(i, 0.0) for i in kept),
            prior_ranks=tuple(pool.ranks.get(i) for i in kept),
            sources=tuple(_SOURCE_SETS[pool.sources[i]] for i in kept),
            similarities=tuple(sims[i] for i in kept),
            in_document=tuple(evidence[i] for i in kept),
            vectors=vecs[[row[i] for i in kept]] if kept else np.zeros((0, vecs.shape[1]), np.float32),
            ranked_pool=tuple(ranked),
            profiles=tuple(profs[row[i]] for i in kept),
            enclosing=enclosing,
            surface_similarities=tuple(ssims[i] for i in kept) if ssims else (),
        )
