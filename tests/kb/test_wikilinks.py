"""Wikipedia's links as labelled data (`kb.wikilinks`, `mmel kb links`) and the article filter
of `kb build --dump-articles`."""
from __future__ import annotations

import json

import pytest

from kb import wikitext
from kb.build import build_kb
from kb.errors import InputError
from kb.normalize import singular_forms
from kb.store import KnowledgeBase
from kb.wikilinks import split_of, write_labelled
from tests.kb.test_dump import HEADER, page

ALPHA = ("'''Alpha''' is a town in [[Beta Land|the land of Beta]], on the [[river]]s of the north. "
         "It trades with [[Gamma]] and with [[Nowhere Town|a place]] outside the knowledge base.\n\n"
         "{{Infobox|x=[[Beta Land]]}}\n"
         "Alpha has a [[Second Beta|second name]] that only a redirect knows, used in old maps.")
GAMMA = "'''Gamma''' is a city that trades with [[Alpha]] and lies far from the [[river]]s of Beta Land."


def _dump(tmp_path):
    src = tmp_path / "wiki.xml"
    src.write_text(HEADER + page("Alpha", ALPHA) + page("Gamma", GAMMA)
                   + page("Second Beta", "#REDIRECT [[Beta Land]]", redirect="Beta Land") + "</mediawiki>\n")
    return src


def _entities(tmp_path):
    ents = tmp_path / "ents.jsonl"
    ents.write_text("".join(json.dumps(e) + "\n" for e in (
        {"qid": "Q1", "name": "Alpha", "description": "a town"},
        {"qid": "Beta Land", "name": "Beta Land", "description": "a land"},
        {"qid": "River", "name": "River", "description": "a stream of water"},
        {"qid": "Gamma", "name": "Gamma", "description": "a city"},
    )))
    return ents


def _kb(tmp_path):
    out = tmp_path / "kb.sqlite"
    build_kb(out, entities=_entities(tmp_path), progress=False)
    return KnowledgeBase(out)


def test_linked_paragraphs_give_exact_anchor_spans():
    [(text, spans), (second, more)] = wikitext.linked_paragraphs(ALPHA)
    got = [(text[a:b], t) for a, b, t in spans]
    assert got == [("the land of Beta", "Beta Land"), ("rivers", "River"), ("Gamma", "Gamma"),
                   ("a place", "Nowhere Town")]
    assert "Infobox" not in text + second  # a template's links go with it
    assert [(second[a:b], t) for a, b, t in more] == [("second name", "Second Beta")]


def test_write_labelled_resolves_redirects_and_splits_by_article(tmp_path):
    out = tmp_path / "links"
    out.mkdir()
    stats = write_labelled(_dump(tmp_path), _kb(tmp_path), out, dev_share=0.0, unlinked="nil", workers=1,
                           progress=False)
    docs = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    gold = {(m["surface"], m["qid"]) for d in docs for m in d["mentions"]}
    assert ("second name", "Beta Land") in gold  # through the dump's redirect
    assert ("Alpha", "Q1") in gold  # a target matched by entity name
    assert ("a place", None) in gold  # NIL gold: not in the KB
    for d in docs:
        for m in d["mentions"]:
            assert d["text"][m["start"]:m["end"]] == m["surface"]
    assert stats["splits"]["train"]["nil_mentions"] == 1
    assert (out / "train_articles.txt").read_text().split("\n")[:2] == ["Alpha", "Gamma"]
    dropped = tmp_path / "dropped"
    dropped.mkdir()
    write_labelled(_dump(tmp_path), _kb(tmp_path), dropped, dev_share=0.0, workers=1, progress=False)
    assert all(m["qid"] for line in (dropped / "train.jsonl").read_text().splitlines()
               for m in json.loads(line)["mentions"])


def test_split_is_stable_and_follows_shares():
    titles = [f"Article {i}" for i in range(2000)]
    splits = [split_of(t, 0.3, 0.1) for t in titles]
    assert splits == [split_of(t, 0.3, 0.1) for t in titles]
    assert 0.25 < splits.count("dev") / 2000 < 0.35 and 0.07 < splits.count("test") / 2000 < 0.13
    # growing the dev share only moves train articles into dev
    assert all(split_of(t, 0.5, 0.1) == "dev" for t, s in zip(titles, splits) if s == "dev")


def test_write_labelled_rejects_bad_options(tmp_path):
    kb = _kb(tmp_path)
    with pytest.raises(InputError, match="unknown --unlinked 'keep'"):
        write_labelled(_dump(tmp_path), kb, tmp_path, unlinked="keep")
    with pytest.raises(InputError, match="does not exist"):
        write_labelled(_dump(tmp_path), kb, tmp_path / "missing")


def test_dump_articles_keep_other_articles_out_of_the_priors(tmp_path):
    src = _dump(tmp_path)
    titles = tmp_path / "train.txt"
    titles.write_text("Gamma\n")
    full, part = tmp_path / "full.sqlite", tmp_path / "part.sqlite"
    ents = _entities(tmp_path)
    build_kb(full, entities=ents, dump=src, workers=1, progress=False)
    stats = build_kb(part, entities=ents, dump=src, dump_articles=titles, workers=1, progress=False)
    assert stats["dump"]["articles_links_skipped"] == 1
    # "the land of Beta" is an anchor of Alpha only; "rivers" of both
    assert [c.entity for c in KnowledgeBase(full).lookup("the land of Beta")] == ["Beta Land"]
    assert KnowledgeBase(part).lookup("the land of Beta") == []
    assert [c.entity for c in KnowledgeBase(part).lookup("rivers")] == ["River"]
    # the entity list defines the KB: the articles attach to its entities (Alpha by name), none is added
    assert {e.id for _, e in KnowledgeBase(part).iter_entities()} == {"Q1", "Beta Land", "River", "Gamma"}
    # the dump's links to an entity are its popularity where the list gives none
    pops = {e.id: e.popularity for _, e in KnowledgeBase(full).iter_entities()}
    assert pops["Beta Land"] >= 1 and pops["River"] >= 1 and stats["popularity_from_anchors"] >= 1
    assert KnowledgeBase(part).get("Beta Land").popularity is None  # its only link is in another article
    with pytest.raises(InputError, match="--dump-articles needs --dump"):
        build_kb(part, entities=titles, dump_articles=titles, progress=False)


@pytest.mark.parametrize("plural, singular", [("galaxies", "galaxy"), ("planets", "planet"), ("x-rays", "x-ray"),
                                              ("churches", "church"), ("black holes", "black hole")])
def test_singular_forms_lead_with_the_regular_singular(plural, singular):
    assert singular_forms(plural)[0] == singular


@pytest.mark.parametrize("word", ["virus", "analysis", "glass", "sun", "gas"])
def test_singular_forms_leave_non_plurals(word):
    assert singular_forms(word) == []
