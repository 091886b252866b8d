"""Lower-case candidate spans in KBs with link probabilities ("galaxies", "dark matter"), and
the mention scorer trained on several KBs at once (`--train KB=FILE`)."""
from __future__ import annotations

import json

import pytest

from kb.build import build_kb
from kb.store import KnowledgeBase
from linker.training.mention_train import Example, main, train, train_source
from linker.mentions import (
    COMMON_NAMES, FEATURES, DictionarySpotter, MentionScorer, MentionScorerConfig, SpotterConfig, candidate_groups,
    common_name_share, has_link_prob, wants_lower_spans,
)


def _page(title, text, pid):
    return f"<page><title>{title}</title><ns>0</ns><id>{pid}</id><revision><text>{text}</text></revision></page>\n"


PAGES = [
    ("Galaxy", "A '''galaxy''' holds stars and [[dark matter]]."),
    ("Dark matter", "'''Dark matter''' is matter; most [[Galaxy|galaxies]] hold it."),
    ("Star", "A '''star''' is in a [[galaxy]]. Stars form [[Star cluster|star clusters]] of the sky."),
    ("Star cluster", "A '''star cluster''' is a group of [[star]]s in a [[galaxy]]."),
    ("Sky", "The '''sky''' shows [[star]]s; the [[Dark matter|dark matter]] does not."),
]


@pytest.fixture(scope="module")
def dump_kb(tmp_path_factory):
    d = tmp_path_factory.mktemp("dump")
    src = d / "dump.xml"
    src.write_text('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/">\n'
                   + "".join(_page(t, x, i) for i, (t, x) in enumerate(PAGES, 1)) + "</mediawiki>\n")
    build_kb(d / "kbs" / "dump" / "kb.sqlite", dump=src, workers=1, progress=False)
    return KnowledgeBase(d / "kbs" / "dump" / "kb.sqlite")


@pytest.fixture(scope="module")
def list_kb(tmp_path_factory):
    d = tmp_path_factory.mktemp("list")
    src = d / "kb.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in [
        {"qid": "Q1", "name": "Galaxy"}, {"qid": "Q2", "name": "Dark matter"}, {"qid": "Q3", "name": "Chuck Norris"}]))
    build_kb(d / "kbs" / "list" / "kb.sqlite", entities=src, progress=False)
    return KnowledgeBase(d / "kbs" / "list" / "kb.sqlite")


def _accept_all(threshold=0.5, dump_threshold=None, **kw):
    """A scorer with every weight 0: p = 0.5 for every scored span (`dump_threshold`: `threshold`)."""
    dump = threshold if dump_threshold is None else dump_threshold
    return MentionScorer(MentionScorerConfig(weights=(0.0,) * len(FEATURES), threshold=threshold,
                                             dump_threshold=dump, **kw))


def _surfaces(spotter, text):
    return [m.surface for m in spotter(text)]


def test_lower_case_spans_only_in_kbs_with_link_probability(dump_kb, list_kb):
    assert has_link_prob(dump_kb) and not has_link_prob(list_kb)
    text = "Many galaxies hold dark matter and a galaxy."
    assert _surfaces(DictionarySpotter(dump_kb, _accept_all()), text) == ["galaxies", "dark matter", "galaxy"]
    # an entity list alone (and a scorer without a common-word table): no lower-case candidates
    assert _surfaces(DictionarySpotter(list_kb, _accept_all(threshold=0.0)), text) == []
    assert all(s.surface[0].isupper() for g, _ in candidate_groups(text, list_kb) for s in g)


def test_an_entity_list_of_common_nouns_gets_lower_case_spans(list_kb, tmp_path):
    # two of the three names ("Galaxy", "Dark matter") read as common nouns by the scorer's
    # common-word table: lower-case spans, cut at the lower-case threshold; capitalised spans keep
    # the entity-list one (0.6 here: "Norris" at p = 0.5 is not kept)
    common = {"galaxy": 0.9, "dark": 0.95, "matter": 0.9}
    scorer = _accept_all(threshold=0.6, dump_threshold=0.4, common=common)
    assert common_name_share(list_kb, common) == 2 / 3
    text = "Norris saw galaxies and dark matter."
    assert _surfaces(DictionarySpotter(list_kb, scorer), text) == ["galaxies", "dark matter"]
    assert _surfaces(DictionarySpotter(list_kb, scorer, SpotterConfig(lowercase=False)), text) == []
    assert _surfaces(DictionarySpotter(list_kb, _accept_all(threshold=0.6, dump_threshold=0.4)), text) == []  # no table
    people = tmp_path / "kb.jsonl"
    people.write_text("".join(json.dumps(e) + "\n" for e in [
        {"qid": "Q1", "name": "Chuck Norris"}, {"qid": "Q2", "name": "Galaxy"}] + [
        {"qid": f"Q{i}", "name": f"Person {i} Smith"} for i in range(3, 60)]))
    build_kb(tmp_path / "kb.sqlite", entities=people, progress=False)
    names = KnowledgeBase(tmp_path / "kb.sqlite")  # one common noun in 59 names: under COMMON_NAMES
    assert 0 < common_name_share(names, common) < COMMON_NAMES
    assert _surfaces(DictionarySpotter(names, scorer), "A galaxy.") == []
    assert _surfaces(DictionarySpotter(names, scorer, SpotterConfig(lowercase=True)), "A galaxy.") == ["galaxy"]
    # a large KB whose few common-noun names are still many (things merged with people) gets them too
    assert not wants_lower_spans(names, common)
    assert wants_lower_spans(names, common, min_share=0.01, count=1)  # 1 of 59: 1.7 %, one name
    assert not wants_lower_spans(names, common, min_share=0.01, count=2)
    assert not wants_lower_spans(names, common, min_share=0.02, count=1)


def test_plural_spans_find_the_singular_key_and_closed_class_edges_are_dropped(dump_kb):
    groups = candidate_groups("the skies of the galaxy", dump_kb, lowercase=True)
    info = {s.surface: i for spans, infos in groups for s, i in zip(spans, infos)}
    assert info["skies"] is not None and info["skies"][-1] is True  # known as "sky" only
    assert info["the skies"] is None and info["skies of the"] is None  # starts or ends with a function word
    assert info["galaxy"] is not None and len(info["galaxy"]) == 3  # its own key
    assert dump_kb.mention_info(["skies"]) == {}
    # the groups come in text order, so the greedy selection sees them left to right
    starts = [g[0].start for g, _ in groups]
    assert starts == sorted(starts)


def test_the_link_probability_gate_and_the_scorer_decide(dump_kb):
    text = "Stars and dark matter."
    assert _surfaces(DictionarySpotter(dump_kb, _accept_all()), text) == ["Stars", "dark matter"]
    # "Stars" is decided by its link probability; a KB with link probabilities has a cut-off of its own
    assert _surfaces(DictionarySpotter(dump_kb, _accept_all(dump_threshold=0.6)), text) == ["Stars"]
    assert _surfaces(DictionarySpotter(dump_kb, _accept_all(threshold=0.6, dump_threshold=0.5)), text) == [
        "Stars", "dark matter"]
    assert _surfaces(DictionarySpotter(dump_kb, _accept_all(), SpotterConfig(dump_threshold=0.6)), text) == ["Stars"]
    gate = DictionarySpotter(dump_kb, _accept_all(), SpotterConfig(min_lower_link_prob=1.01))
    assert _surfaces(gate, text) == ["Stars"]
    weights = [0.0] * len(FEATURES)
    weights[FEATURES.index("seen_before")] = -10.0
    once = DictionarySpotter(dump_kb, MentionScorer(MentionScorerConfig(weights=tuple(weights), threshold=0.4)))
    assert _surfaces(once, "dark matter, then dark matter again") == ["dark matter"]


def test_lower_features_are_zero_for_capitalised_spans(dump_kb, list_kb):
    from linker.mentions import scored_spans

    names = lambda key: frozenset()  # noqa: E731
    lower = FEATURES.index("lowercase")
    for kb in (dump_kb, list_kb):
        groups = candidate_groups("Chuck Norris saw dark matter.", kb, lowercase=has_link_prob(kb))
        for span, row in scored_spans("Chuck Norris saw dark matter.", groups, {}, names):
            assert any(row[lower : lower + 6]) == span.surface[0].islower()


def test_capitalised_keys_under_min_link_prob_go_to_the_scorer(dump_kb):
    assert 0.5 < dump_kb.mention_info(["stars"])["stars"][2] < 0.99
    strict = SpotterConfig(min_link_prob=0.99)
    text = "Stars fill it."
    assert _surfaces(DictionarySpotter(dump_kb, _accept_all(threshold=0.4), strict), text) == ["Stars"]
    assert _surfaces(DictionarySpotter(dump_kb, _accept_all(threshold=0.6), strict), text) == []
    assert _surfaces(DictionarySpotter(dump_kb, _accept_all(threshold=0.6)), text) == ["Stars"]


def test_train_on_several_kbs(dump_kb, list_kb):
    captions = [Example("Chuck Norris in 1976.", ((0, 12),)), Example("Norris with a galaxy poster.", ((0, 6),))] * 10
    general = [Example("Most galaxies hold dark matter; the sky is dark.", ((5, 13), (19, 30)))] * 10
    scorer = train([(captions, list_kb), (general, dump_kb)], target_recall=1.0, sources=("a", "b"))
    parts = scorer.config.metrics["parts"]
    assert parts["a"]["recall"] == 1.0 and parts["b"]["recall"] == 1.0
    assert not parts["a"]["kb_has_link_prob"] and parts["b"]["kb_has_link_prob"]
    assert _surfaces(DictionarySpotter(dump_kb, scorer), "Some galaxies hold dark matter.") == ["galaxies", "dark matter"]
    assert _surfaces(DictionarySpotter(list_kb, scorer), "Norris near a galaxy.") == ["Norris"]


def test_train_source_names_its_kb(tmp_path):
    assert train_source("dump=data/train.jsonl", "default") == ("dump", "data/train.jsonl")
    assert train_source("data/train.jsonl", "default") == ("default", "data/train.jsonl")
    odd = tmp_path / "a=b.jsonl"
    odd.write_text("")
    assert train_source(str(odd), None) == (None, str(odd))  # an existing file is a path


def test_cli_trains_on_files_of_two_kbs(dump_kb, list_kb, tmp_path, capsys):
    home = tmp_path / "home"
    (home / "kbs").mkdir(parents=True)
    for kb, name in ((dump_kb, "dump"), (list_kb, "list")):
        (home / "kbs" / name).symlink_to(kb.path.parent)
    captions, general = tmp_path / "captions.jsonl", tmp_path / "general.jsonl"
    captions.write_text("".join(json.dumps({"id": str(i), "text": "Chuck Norris in 1976.",
                                            "mentions": [{"start": 0, "end": 12, "qid": "Q3"}]}) + "\n" for i in range(5)))
    general.write_text("".join(json.dumps({"id": str(i), "text": "Most galaxies hold dark matter.",
                                           "mentions": [{"start": 5, "end": 13, "qid": "Galaxy"}]}) + "\n" for i in range(5)))
    out = tmp_path / "s.json"
    main(["--home", str(home), "--kb", "list", "--train", str(captions), "--train", f"dump={general}", "--out", str(out)])
    scorer = MentionScorer.load(out)
    assert set(scorer.config.metrics["parts"]) == {str(captions), f"dump={general}"}
    assert json.loads(capsys.readouterr().out)["documents"] == 10
    with pytest.raises(SystemExit):
        main(["--home", str(home), "--train", str(captions), "--out", str(out)])  # no KB for it
    assert "names no KB" in capsys.readouterr().err


def test_linker_config_sets_the_lower_case_spans(list_kb):
    from linker.config import LinkerConfig, RerankerConfig, parse_overrides
    from linker.mentions import make_detector

    config = LinkerConfig(RerankerConfig(n_features=1, dim=4)).override(parse_overrides(["lowercase_mentions=true"]))
    assert config.lowercase_mentions is True
    assert make_detector(list_kb, lowercase=config.lowercase_mentions).lowercase
    assert not make_detector(list_kb, lowercase=False).lowercase
    assert make_detector(list_kb).lowercase  # decided by the KB: the shipped scorer reads "Galaxy", "Dark matter"
