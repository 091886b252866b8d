"""Pure functions for the mention→entity prior p(e|m).

Sources of evidence for one mention `m`:
- anchors: how often `[[e|m]]` links `m` to `e` in Wikipedia,
- aliases: a YAGO-means / Wikidata alias table, uniform over the entities an alias names,
- names: aliases derived from titles, redirects or entity names (used only when `m` has no
  anchor or alias evidence, since they carry no popularity signal).

Each source is normalised per mention, p_s(e|m) = w_s(m, e) / Σ_e' w_s(m, e'); the prior is the
mean over the sources that know `m` (the REL / M3EL recipe: (p_wiki + p_yago) / 2).
"""
from __future__ import annotations

from collections.abc import Mapping


def normalise(weights: Mapping[str, float]) -> dict[str, float]:
    """p(e) = w(e) / Σ w; entities with weight ≤ 0 are dropped. Empty in, empty out."""
    positive = {e: float(w) for e, w in weights.items() if w > 0}
    total = sum(positive.values())
    return {e: w / total for e, w in positive.items()} if total > 0 else {}


def average(distributions: list[Mapping[str, float]]) -> dict[str, float]:
    """The mean of several distributions over entities, each counted where it is non-empty.

    An entity missing from one distribution has probability 0 there. The result sums to 1
    whenever at least one input is non-empty.
    """
    present = [d for d in distributions if d]
    if not present:
        return {}
    out: dict[str, float] = {}
    for dist in present:
        for e, p in dist.items():
            out[e] = out.get(e, 0.0) + p / len(present)
    return out


def combine(
    anchors: Mapping[str, float] | None = None,
    aliases: Mapping[str, float] | None = None,
    names: Mapping[str, float] | None = None,
    min_count: float = 1.0,
) -> dict[str, float]:
    """p(e|m) for one mention from its per-source weights (see the module docstring).

    Anchor counts below `min_count` are dropped before normalising (noise cleaning).
    """
    anchors = {e: c for e, c in (anchors or {}).items() if c >= min_count}
    prior = average([normalise(anchors), normalise(aliases or {})])
    return prior or normalise(names or {})


def top_k(prior: Mapping[str, float], k: int) -> list[tuple[str, float]]:
    """The `k` most probable entities, ties broken by entity id for determinism."""
    return sorted(prior.items(), key=lambda item: (-item[1], item[0]))[:k]
