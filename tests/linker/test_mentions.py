"""The precise dictionary spotter: closed-class words, evidence from link probability or the
learned scorer, spaCy/both detectors, option errors."""
from __future__ import annotations

import json

import pytest

from kb.build import build_kb
from kb.errors import ConfigError, ModelLoadError
from kb.store import KnowledgeBase
from kb.types import TextMention
from linker.mentions import (
    FEATURES, CombinedDetector, DictionarySpotter, MentionScorer, MentionScorerConfig, SpotterConfig,
    closed_class, make_detector,
)

# Entities whose derived aliases include "In", "March", "He", "The", "New", "York": the issue's
# "In March, He said. This is New York." linked every capitalised word.
TRAPS = [
    {"qid": "Q1", "name": "Duke Maximilian Emanuel in Bavaria"},
    {"qid": "Q2", "name": "Fredric March"},
    {"qid": "Q3", "name": "He Zizhen"},
    {"qid": "Q4", "name": "Harry Stewart New"},
    {"qid": "Q5", "name": "Prince Andrew, Duke of York"},
    {"qid": "Q6", "name": "Queen Elizabeth The Queen Mother"},
    {"qid": "Q7", "name": "Chuck Norris"},
    {"qid": "Q8", "name": "Angela Merkel"},
]


@pytest.fixture(scope="module")
def trap_kb(tmp_path_factory):
    d = tmp_path_factory.mktemp("traps")
    src = d / "kb.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in TRAPS))
    build_kb(d / "kb.sqlite", entities=src, progress=False)
    return KnowledgeBase(d / "kb.sqlite")


def _surfaces(spotter, text):
    return [m.surface for m in spotter(text)]


def test_closed_class_words_are_never_mentions_alone(trap_kb):
    spotter = DictionarySpotter(trap_kb, config=SpotterConfig(threshold=0.0))  # accept whatever the scorer says
    got = _surfaces(spotter, "In March, He said. The end. On Monday, She left.")
    assert got == []
    assert closed_class("In March") and not closed_class("Fredric March")


def test_full_names_are_found_and_mentions_are_exact_slices(trap_kb):
    spotter = DictionarySpotter(trap_kb)
    text = "Fredric March and Chuck Norris met Angela Merkel. Norris in 1976"
    got = spotter(text)
    assert [m.surface for m in got] == ["Fredric March", "Chuck Norris", "Angela Merkel", "Norris"]
    assert all(text[m.start:m.end] == m.surface for m in got)


def test_the_scorer_threshold_is_the_evidence(trap_kb):
    text = "Norris in 1976 with Merkel."
    assert _surfaces(DictionarySpotter(trap_kb, config=SpotterConfig(threshold=1.0)), text) == []
    assert _surfaces(DictionarySpotter(trap_kb, config=SpotterConfig(threshold=0.0)), text) == ["Norris", "Merkel"]


def test_link_probability_decides_for_dump_keys(trap_kb, monkeypatch):
    real = trap_kb.mention_info

    def with_link_prob(keys):
        return {k: (5.0, e, 0.3 if k == "norris" else 0.001) for k, (_, e, _) in real(keys).items()}

    monkeypatch.setattr(trap_kb, "mention_info", with_link_prob)
    spotter = DictionarySpotter(trap_kb, config=SpotterConfig(threshold=1.0, min_link_prob=0.02))
    assert _surfaces(spotter, "Norris met Merkel.") == ["Norris"]  # the scorer is not asked


def test_scorer_save_load_roundtrip_and_mismatch(tmp_path):
    scorer = MentionScorer(MentionScorerConfig(weights=tuple(0.1 * i for i in range(len(FEATURES))),
                                               bias=-0.5, threshold=0.3, common={"the": 1.0}))
    loaded = MentionScorer.load(scorer.save(tmp_path / "s.json"))
    x = [[1.0] * len(FEATURES)]
    assert loaded.probability(x) == pytest.approx(scorer.probability(x))
    assert loaded.config.threshold == 0.3 and loaded.config.common == {"the": 1.0}
    raw = json.loads((tmp_path / "s.json").read_text())
    raw["features"] = raw["features"][:-1]
    (tmp_path / "bad.json").write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="retrain"):
        MentionScorer.load(tmp_path / "bad.json")
    with pytest.raises(ModelLoadError, match="cannot read"):
        MentionScorer.load(tmp_path / "missing.json")


def test_bundled_scorer_loads():
    scorer = MentionScorer.load()
    assert 0.0 < scorer.config.threshold < 1.0 and scorer.config.command.startswith("python -m linker.training.mention_train")


def test_combined_detector_prefers_ner_spans():
    ner = lambda text: [TextMention(0, 12, "Chuck Norris")]
    dictionary = lambda text: [TextMention(6, 12, "Norris"), TextMention(17, 23, "Merkel")]
    got = CombinedDetector(ner, dictionary)("Chuck Norris met Merkel")
    assert [m.surface for m in got] == ["Chuck Norris", "Merkel"]


def test_unknown_mention_source(trap_kb):
    with pytest.raises(ConfigError, match="unknown mention source 'regex': choose one of dict, spacy, both"):
        make_detector(trap_kb, "regex")


def test_missing_spacy_model_is_a_config_error(trap_kb):
    pytest.importorskip("spacy")
    with pytest.raises(ConfigError, match="'no_such_pipeline_xyz' is not installed"):
        make_detector(trap_kb, "spacy", "no_such_pipeline_xyz")


def test_spacy_detector_keeps_entity_labels(trap_kb, tmp_path):
    spacy = pytest.importorskip("spacy")
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "PERSON", "pattern": "Chuck Norris"}, {"label": "DATE", "pattern": "1976"}])
    nlp.to_disk(tmp_path / "pipeline")
    detector = make_detector(trap_kb, "both", str(tmp_path / "pipeline"))
    got = detector("Chuck Norris in 1976 with Angela Merkel")
    assert [m.surface for m in got] == ["Chuck Norris", "Angela Merkel"]


def test_run_in_names_looks_past_titles():
    from linker.mentions import name_words, run_in_names

    assert not run_in_names("New", name_words(["Dick York", "Prince Andrew, Duke of York"]))  # "New York"
    assert run_in_names("Dragan", name_words(["Dragan Djokanovic"]))
    assert run_in_names("Senator", name_words(["Harry Stewart New"]))  # only a title before the name
    assert run_in_names("Argentine President Mauricio", name_words(["Mauricio Macri"]))


def test_dump_kb_spans_need_link_probability(tmp_path):
    def page(title, text):
        return f"<page><title>{title}</title><ns>0</ns><id>1</id><revision><text>{text}</text></revision></page>\n"

    pages = [page("Paris", "'''Paris''' is a city in [[France]]."),
             page("France", "'''France''' is a country; its capital is [[Paris]]."),
             page("Seine", "The '''Seine''' flows through [[Paris]]. France is near."),
             page("Band", "Paris was a band. France too. Paris again.")]
    src = tmp_path / "dump.xml"
    src.write_text('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/">\n' + "".join(pages) + "</mediawiki>\n")
    build_kb(tmp_path / "kb.sqlite", dump=src, workers=1, progress=False)
    kb = KnowledgeBase(tmp_path / "kb.sqlite")
    info = kb.mention_info(["paris", "france"])
    # "Paris" occurs in 4 articles, 2 link it; "France" in 4, 1 links it; "Seine" is never linked.
    assert info["paris"][2] == pytest.approx(2 / 4) and info["france"][2] == pytest.approx(1 / 4)
    text = "Paris and France. The Seine."

    def spotter(min_link_prob):  # under min_link_prob the scorer decides: here it keeps nothing
        return DictionarySpotter(kb, config=SpotterConfig(min_link_prob=min_link_prob, dump_threshold=1.01))

    assert _surfaces(spotter(0.2), text) == ["Paris", "France"]
    assert _surfaces(spotter(0.4), text) == ["Paris"]
    assert _surfaces(spotter(0.6), text) == []
