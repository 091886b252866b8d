"""p(e|m): the pure functions of kb.prior, and the prior a real build stores."""
from __future__ import annotations

import pytest

from kb import prior
from kb.build import build_kb
from kb.store import KnowledgeBase


def test_normalise_sums_to_one_and_drops_nonpositive():
    p = prior.normalise({"a": 3, "b": 1, "c": 0, "d": -2})
    assert p == pytest.approx({"a": 0.75, "b": 0.25})
    assert sum(p.values()) == pytest.approx(1.0)
    assert prior.normalise({}) == {} and prior.normalise({"a": 0}) == {}


def test_average_counts_only_non_empty_sources():
    p = prior.average([{"a": 0.75, "b": 0.25}, {"b": 0.5, "c": 0.5}, {}])
    assert p == pytest.approx({"a": 0.375, "b": 0.375, "c": 0.25})
    assert sum(p.values()) == pytest.approx(1.0)
    assert prior.average([{}, {}]) == {}


def test_combine_min_count_and_names_fallback():
    # anchors below min_count are dropped before normalising
    assert prior.combine({"a": 5, "b": 1}, min_count=2) == pytest.approx({"a": 1.0})
    # names only count when neither anchors nor aliases know the mention
    assert prior.combine({}, {}, {"x": 1.0, "y": 3.0}) == pytest.approx({"x": 0.25, "y": 0.75})
    assert prior.combine({"a": 1}, None, {"x": 1.0}) == pytest.approx({"a": 1.0})
    # anchors and aliases are averaged: (p_wiki + p_yago) / 2
    assert prior.combine({"a": 3, "b": 1}, {"b": 1, "c": 1}) == pytest.approx(
        {"a": 0.375, "b": 0.375, "c": 0.25}
    )


def test_top_k_is_deterministic():
    assert prior.top_k({"b": 0.5, "a": 0.5, "c": 0.1}, 2) == [("a", 0.5), ("b", 0.5)]


def _page(title: str, text: str) -> str:
    return f"<page><title>{title}</title><ns>0</ns><id>1</id><revision><text>{text}</text></revision></page>\n"


DUMP = (
    '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/">\n'
    + _page("Paris", "'''Paris''' is a city in [[France]].")
    + _page("Paris (band)", "'''Paris''' is a band. Not [[Paris]], not [[Paris]].")
    + _page("France", "'''France''' has [[Paris]] and the band [[Paris (band)|Paris]].")
    + _page("Lyon", "'''Lyon''' is near [[Paris]].")
    + "</mediawiki>\n"
)


def test_build_with_dump_and_aliases_averages_anchor_and_alias_priors(tmp_path):
    dump = tmp_path / "d.xml"
    dump.write_text(DUMP)
    aliases = tmp_path / "aliases.tsv"
    aliases.write_text("Paris\tParis\nParis\tParis (band)\nLa France\tFrance\n")
    out = tmp_path / "kb.sqlite"
    build_kb(out, dump=dump, aliases=aliases, workers=1, progress=False)
    kb = KnowledgeBase(out)
    # anchors: Paris ×4, Paris (band) ×1 → (0.8, 0.2); aliases uniform → (0.5, 0.5)
    got = {c.entity: c.prior for c in kb.lookup("paris")}
    assert got == pytest.approx({"Paris": (0.8 + 0.5) / 2, "Paris (band)": (0.2 + 0.5) / 2})
    # an alias-only mention gets the alias prior; a title-only mention gets the name prior
    assert [(c.entity, c.prior) for c in kb.lookup("La France")] == [("France", pytest.approx(1.0))]
    assert [c.entity for c in kb.lookup("Lyon")] == ["Lyon"]
    for key, _, _ in kb.iter_mentions():
        assert sum(c.prior for c in kb.lookup_key(key, 1000)) == pytest.approx(1.0)
