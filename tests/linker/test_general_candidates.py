"""Candidates and features for general mentions: the surface's own nearest entities, a leading
article, and the mention columns the reranker reads (lower case, link probability, anchors)."""
import numpy as np

from kb.types import TextMention
from linker.candidates import CandidateConfig, CandidateGenerator, surface_forms
from linker.features import FEATURES, candidate_features, mention_context


def _gen(linker, **cfg):
    return CandidateGenerator(linker.kb, linker.index, CandidateConfig(**cfg))


def test_surface_search_finds_what_no_name_spells(tiny_linker):
    text = "They sang Germanic songs."  # no key, no fuzzy match (fuzzy_k=0), no context search
    start = text.index("Germanic")
    m = TextMention(start, start + len("Germanic"), "Germanic")
    ctx = tiny_linker.encoder.encode([text])
    # the surface embedded where Germany's own text is (the tiny hashing encoder knows no meaning)
    surf = tiny_linker.index.reconstruct(np.asarray([tiny_linker.kb.idx_of("Q183")]))
    [[none]] = _gen(tiny_linker, dense_k=0, fuzzy_k=0, surface_k=0).generate([text], [[m]], ctx, surf)
    assert "Q183" not in [e.id for e in none.entities] and none.surface_similarities == ()
    [[mc]] = _gen(tiny_linker, dense_k=0, fuzzy_k=0, surface_k=2).generate([text], [[m]], ctx, surf)
    ids = [e.id for e in mc.entities]
    assert "Q183" in ids and mc.sources[ids.index("Q183")] == frozenset({"surface"})
    # cos(surface, entity) of every candidate, as the index stores the entity
    want = mc.vectors @ surf[0]
    assert np.allclose(mc.surface_similarities, want, atol=1e-5)


def test_a_leading_article_is_a_form_of_its_own():
    assert ["soviet union"] in surface_forms("the Soviet Union")
    assert ["european union"] in surface_forms("The European Union")
    assert not any(g == ["heist"] for g in surface_forms("theist"))  # only a whole word


def test_mention_columns_are_the_same_in_every_row(tiny_linker):
    e = tiny_linker.kb.by_idx([0, 1])
    ctx = mention_context("galaxies", "the galaxies of the sky", "the of the sky", 2, link_prob=0.25, anchors=99.0)
    rows = candidate_features(ctx, e, [0.5, 0.1], [0, 1], [0.3, 0.2], [frozenset({"prior"})] * 2, [0.0, 0.0],
                              surface_sims=[0.9, 0.4])
    col = {n: rows[:, i] for i, n in enumerate(FEATURES)}
    assert col["lowercase_mention"].tolist() == [1.0, 1.0]
    assert np.allclose(col["mention_link_prob"], 0.25) and np.allclose(col["mention_anchors"], np.log1p(99) / 10)
    assert np.allclose(col["surface_sim"], [0.9, 0.4]) and col["from_surface"].tolist() == [0.0, 0.0]
    upper = candidate_features(mention_context("Galaxies", "", "", 2), e, [0.5, 0.1], [0, 1], [0.3, 0.2],
                               [frozenset({"surface"})] * 2, [0.0, 0.0])
    ucol = {n: upper[:, i] for i, n in enumerate(FEATURES)}
    assert ucol["lowercase_mention"].tolist() == [0.0, 0.0] and ucol["surface_sim"].tolist() == [0.0, 0.0]
    assert ucol["from_surface"].tolist() == [1.0, 1.0]


def test_popularity_column_reads_the_entity(tiny_linker):
    from dataclasses import replace

    e = tiny_linker.kb.by_idx([0, 1])
    e = [replace(e[0], popularity=None), replace(e[1], popularity=1000.0)]
    rows = candidate_features(mention_context("Paris", "", "", 2), e, [0.5, 0.1], [0, 1], [0.3, 0.2],
                              [frozenset({"prior"})] * 2, [0.0, 0.0])
    col = rows[:, FEATURES.index("popularity")]
    assert col[0] == 0.0 and np.isclose(col[1], np.log1p(1000) / 12)
