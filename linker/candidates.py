"""Candidate generation: prior pool, the M3EL/REL 4 + 3 reduction, dense retrieval, fuzzy names
and in-document coreference.

For one mention with key `m` and context embedding `c`:
1. pool: the `pool` most probable entities by p(e|m), ordered by (prior, cos(c, e)) so that ties
   in the prior (a surname shared by 40 people) are broken by context; the first `top` (30) form
   the candidate list whose recall the benchmark reports.
2. reduction: of those 30 keep `keep_prior` (4) by prior and `keep_context` (3) more by context
   similarity; set `keep_prior=None` to keep all 30.
3. unions: `dense_k` nearest entities to `c` in the FAISS text index; rapidfuzz matches over
   mention keys when `m` has no prior; and, for a mention that is part of a longer mention of the
   same document ("Powers" after "Stefanie Powers"), the longer mention's candidates.
   A surface the KB does not know is looked up by its own strongest name variants first
   ("Edwin Grant Conklin" → "Edwin Conklin"), then by fuzzy matching.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz, process

from kb import aliases as alias_fn
from kb.normalize import mention_key
from kb.store import KnowledgeBase
from kb.types import TextMention


@dataclass(frozen=True, slots=True)
class CandidateConfig:
    pool: int = 100
    top: int = 30
    keep_prior: int | None = 4
    keep_context: int = 3
    dense_k: int = 3
    fuzzy_k: int = 3
    fuzzy_cutoff: float = 88.0


@dataclass(frozen=True, slots=True)
class MentionCandidates:
    """The candidates of one mention (entity idxs) with where each came from."""

    mention: TextMention
    idxs: tuple[int, ...]
    priors: tuple[float, ...]
    prior_ranks: tuple[int | None, ...]
    sources: tuple[frozenset[str], ...]
    ranked_pool: tuple[int, ...] = field(default=(), compare=False)  # the top-30 list, in order


def _is_part(short: str, long: str) -> bool:
    """`short` is a proper token sub-sequence of `long` ("powers" in "stefanie powers")."""
    s, l = short.split(), long.split()
    return 0 < len(s) < len(l) and any(l[i : i + len(s)] == s for i in range(len(l) - len(s) + 1))


class CandidateGenerator:
    """Generates candidates for the mentions of documents against one KB and its text index."""

    def __init__(self, kb: KnowledgeBase, index, config: CandidateConfig = CandidateConfig()):
        self.kb = kb
        self.index = index
        self.config = config
        self._keys: dict[str, list[str]] | None = None

    def _fuzzy(self, key: str) -> list[str]:
        """Mention keys close to `key` (same first letter), best first."""
        if self._keys is None:
            self._keys = {}
            for k, _, _ in self.kb.iter_mentions():
                self._keys.setdefault(k[:1], []).append(k)
        choices = self._keys.get(key[:1], [])
        hits = process.extract(
            key, choices, scorer=fuzz.ratio, limit=self.config.fuzzy_k,
            score_cutoff=self.config.fuzzy_cutoff,
        )
        return [h[0] for h in hits]

    def _partial(self, surface: str) -> list[str]:
        """For a surface longer than any name ("Edwin Grant Conklin", "Eric I of Saxe-Lauenburg"):
        the strongest of its own name variants (first + last, regnal form, ...) that the KB knows."""
        variants = sorted(alias_fn.derive(surface), key=lambda a: -a[1])
        for weight in sorted({w for _, w in variants if w >= alias_fn.FIRST_LAST}, reverse=True):
            keys = [k for a, w in variants if w == weight and (k := mention_key(a)) and self.kb.mention_stats(k)]
            if keys:
                return keys
        return []

    def generate(
        self, docs_mentions: Sequence[Sequence[TextMention]], contexts: np.ndarray
    ) -> list[list[MentionCandidates]]:
        """Candidates for every mention; `contexts` holds one embedding per mention, in order."""
        cfg = self.config
        flat = [m for ms in docs_mentions for m in ms]
        if not flat:
            return [[] for _ in docs_mentions]
        dense_scores, dense_ids = self.index.search(contexts, cfg.dense_k) if cfg.dense_k else (None, None)
        raw: list[dict[int, tuple[float, int | None, set[str]]]] = []
        pos = 0
        for ms in docs_mentions:
            keys = [mention_key(m.surface) for m in ms]
            priors = {k: self.kb.prior_candidates(k, cfg.pool) for k in set(keys)}
            for i, key in enumerate(keys):
                cands: dict[int, tuple[float, int | None, set[str]]] = {}
                for rank, (idx, p) in enumerate(priors[key]):
                    cands[idx] = (p, rank, {"prior"})
                for other in set(keys):
                    if _is_part(key, other):
                        for idx, p in priors[other][: cfg.top]:
                            old = cands.get(idx, (0.0, None, set()))
                            cands[idx] = (max(old[0], p), old[1], old[2] | {"coref"})
                if not priors[key]:
                    for fk in self._partial(ms[i].surface) or self._fuzzy(key):
                        for idx, p in self.kb.prior_candidates(fk, cfg.top):
                            old = cands.get(idx, (0.0, None, set()))
                            cands[idx] = (old[0], old[1], old[2] | {"fuzzy"})
                if dense_ids is not None:
                    for idx in dense_ids[pos + i]:
                        if idx >= 0:
                            old = cands.get(int(idx), (0.0, None, set()))
                            cands[int(idx)] = (old[0], old[1], old[2] | {"dense"})
                raw.append(cands)
            pos += len(ms)
        # context similarity of every candidate, in one reconstruct call
        all_idx = sorted({idx for c in raw for idx in c})
        vecs = self.index.reconstruct(np.asarray(all_idx, dtype=np.int64))
        row = {idx: r for r, idx in enumerate(all_idx)}
        out: list[list[MentionCandidates]] = []
        pos = 0
        for ms in docs_mentions:
            doc_out = []
            for m in ms:
                cands, ctx = raw[pos], contexts[pos]
                sims = {idx: float(vecs[row[idx]] @ ctx) for idx in cands}
                doc_out.append(self._reduce(m, cands, sims))
                pos += 1
            out.append(doc_out)
        return out

    def _reduce(self, mention, cands, sims) -> MentionCandidates:
        cfg = self.config
        ranked = sorted(cands, key=lambda i: (-cands[i][0], -sims[i]))[: cfg.top]
        if cfg.keep_prior is None:
            kept = list(ranked)
        else:
            kept = ranked[: cfg.keep_prior]
            rest = sorted(ranked[cfg.keep_prior :], key=lambda i: -sims[i])
            kept += rest[: cfg.keep_context]
        extra = [i for i in cands if i not in kept and cands[i][2] & {"dense", "fuzzy", "coref"}]
        kept += sorted(extra, key=lambda i: -sims[i])
        return MentionCandidates(
            mention=mention,
            idxs=tuple(kept),
            priors=tuple(cands[i][0] for i in kept),
            prior_ranks=tuple(cands[i][1] for i in kept),
            sources=tuple(frozenset(cands[i][2]) for i in kept),
            ranked_pool=tuple(ranked),
        )
