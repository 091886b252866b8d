"""The spaCy component `mmel_linker` on a blank pipeline with an entity ruler (no model download)."""
from __future__ import annotations

import tomllib
from importlib import import_module
from pathlib import Path

import pytest

spacy = pytest.importorskip("spacy")

import linker.fronts.spacy_component  # noqa: E402,F401  (registers the factory without the entry point)
from tiny import build_tiny_linker  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A data home with the tiny KB, its hashing text index, an untrained reranker, and a copy of
    it whose NIL threshold rejects everything (`models/all-nil`)."""
    from linker.config import LinkerConfig

    home = tmp_path_factory.mktemp("home")
    reranker = build_tiny_linker(home).reranker
    reranker.save(home / "models" / "reranker")
    reranker.save(home / "models" / "all-nil", LinkerConfig(reranker.config, nil_threshold=1e9))
    return home


def _nlp(home, **config):
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([
        {"label": "PERSON", "pattern": "Angela Merkel"},
        {"label": "PERSON", "pattern": "Zorblax Quint"},
        {"label": "GPE", "pattern": "Berlin"},
        {"label": "DATE", "pattern": "2010"},
    ])
    nlp.add_pipe("mmel_linker", config={"home": str(home), **config})
    return nlp


def test_entities_get_kb_ids_scores_and_candidates(home):
    from kb.types import Document, TextMention

    nlp = _nlp(home)
    text = "Angela Merkel met Zorblax Quint in Berlin in 2010."
    doc = nlp(text)
    ents = {e.text: e for e in doc.ents}
    for name in ("Angela Merkel", "Berlin"):  # the untrained reranker's NIL threshold is -inf
        ent = ents[name]
        top = ent._.mmel_candidates
        assert ent.kb_id_ == top[0]["entity"] and ent._.mmel_score == pytest.approx(top[0]["score"], abs=1e-4)
        assert set(top[0]) == {"entity", "name", "score", "prior"}
    spans = tuple(TextMention(e.start_char, e.end_char, e.text) for e in doc.ents if e.label_ != "DATE")
    direct = nlp.get_pipe("mmel_linker").linker.link(Document(id="d", text=text, mentions=spans))
    assert [e.kb_id_ for e in doc.ents if e.label_ != "DATE"] == [link.entity or "" for link in direct]
    assert [c["entity"] for c in ents["Angela Merkel"]._.mmel_candidates] == [c.entity for c in direct[0].candidates[:5]]
    assert ents["2010"].kb_id_ == "" and ents["2010"]._.mmel_score is None  # label not linked


def test_nil_entities_have_an_empty_kb_id(home):
    doc = _nlp(home, model=str(home / "models" / "all-nil"))("Angela Merkel met Zorblax Quint.")
    assert [e.kb_id_ for e in doc.ents] == ["", ""]
    assert doc.ents[0]._.mmel_candidates  # candidates are still reported


def test_pipe_batches_through_link_many(home, monkeypatch):
    nlp = _nlp(home, batch_size=4)
    component = nlp.get_pipe("mmel_linker")
    calls = []
    real = component.linker.link_many

    def counting(docs, batch_size=64):
        docs = list(docs)
        calls.append(len(docs))
        return real(docs, batch_size=batch_size)

    monkeypatch.setattr(component.linker, "link_many", counting)
    docs = list(nlp.pipe(["Angela Merkel in Berlin."] * 10))
    assert calls == [4, 4, 2]
    assert len({d.ents[0].kb_id_ for d in docs}) == 1 and docs[0].ents[0].kb_id_


def test_to_disk_from_disk_keep_the_config(home, tmp_path):
    nlp = _nlp(home, batch_size=7)
    nlp.to_disk(tmp_path / "pipeline")
    assert '"batch_size": 7' in (tmp_path / "pipeline" / "mmel_linker" / "cfg.json").read_text()
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.get_pipe("mmel_linker").cfg == nlp.get_pipe("mmel_linker").cfg
    assert loaded("Angela Merkel spoke.").ents[0].kb_id_ == nlp("Angela Merkel spoke.").ents[0].kb_id_ != ""


def test_bad_batch_size_is_a_config_error(home):
    from kb.errors import ConfigError

    with pytest.raises(ConfigError, match="batch_size must be >= 1, got 0"):
        _nlp(home, batch_size=0)


def test_entry_point_names_the_factory():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    target = meta["project"]["entry-points"]["spacy_factories"]["mmel_linker"]
    module, _, attr = target.partition(":")
    assert callable(getattr(import_module(module), attr))
    assert "mmel_linker" in spacy.registry.factories.get_all()
