"""Precomputed entity profiles (`linker.profiles`): read back exactly what the features compute on
the fly, and ignored (computed instead) when missing, stale or written by other feature code."""
from __future__ import annotations

import json
import logging
import sqlite3

import numpy as np
import pytest

from kb.build import build_kb
from kb.store import KnowledgeBase
from linker.features import candidate_features, entity_profile, mention_context, near_words, numerals
from linker.profiles import PROFILES_FILE, ComputedProfiles, StoredProfiles, build_profiles, load_profiles

ENTITIES = [  # names and descriptions that exercise every field: diacritics, years, gender, numerals, surnames
    {"qid": "Q1", "name": "Eric II, Duke of Brunswick-Lüneburg", "description": "German duke (1528–1584); his wife Sidonie"},
    {"qid": "Q2", "name": "Oscar I of Sweden", "description": "King of Sweden and Norway from 1844 to 1859"},
    {"qid": "Q3", "name": "José Martí", "description": "Cuban poet, born 1853; the son of a Spanish sergeant"},
    {"qid": "Q4", "name": "Hillary Clinton", "description": "American politician; she was Secretary of State in 2009"},
    {"qid": "Q5", "name": "Paris (mythology)", "description": "son of Priam, king of Troy"},
    {"qid": "Q6", "name": "ÉCOLE Normale", "description": ""},
    {"qid": "Q7", "name": "Jean-Luc Picard", "description": "fictional Starfleet captain, born 2305 (no year here)"},
    {"qid": "Q8", "name": "Louis XIV", "description": "King of France, 1643–1715. Sun King; father of Louis, le Grand Dauphin"},
]


@pytest.fixture
def kb_folder(tmp_path):
    src = tmp_path / "entities.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in ENTITIES), encoding="utf-8")
    build_kb(tmp_path / "kb" / "kb.sqlite", entities=src, progress=False)
    return tmp_path / "kb"


def _all(kb):
    idxs, entities = zip(*kb.iter_entities())
    return list(idxs), list(entities)


def test_stored_profiles_equal_computed_ones(kb_folder):
    kb = KnowledgeBase(kb_folder / "kb.sqlite")
    meta = build_profiles(kb, kb_folder, progress=False)
    assert meta["count"] == len(ENTITIES) and meta["kb_checksum"] == kb.checksum
    stored = load_profiles(kb, kb_folder)
    assert isinstance(stored, StoredProfiles)
    idxs, entities = _all(kb)
    got = stored.get(idxs, entities)
    want = [entity_profile.__wrapped__(e.name, e.description) for e in entities]
    for g, w in zip(got, want):
        assert g == w and g._fields == w._fields
    assert any(p.years for p in got) and any(p.numerals for p in got) and any(p.gender for p in got)
    assert any(p.surname_key for p in got) and stored.get(idxs[::-1], entities[::-1]) == want[::-1]  # cached, in order

    # the features read from stored profiles are those computed from the entities
    text = "Eric II ruled after 1540; she wrote to Clinton and Picard in Paris, said Louis XIV."
    for surface in ("Eric II", "Clinton", "Paris", "Louis XIV"):
        start = text.index(surface)
        rest = text[:start] + " " + text[start + len(surface):]
        ctx = mention_context(surface, rest, rest, 5, near_words(text, start, start + len(surface)), numerals(text))
        args = (ctx, entities, [0.1] * len(entities), list(range(len(entities))), [0.2] * len(entities),
                [frozenset({"prior"})] * len(entities), [0.0] * len(entities))
        assert np.array_equal(candidate_features(*args, got), candidate_features(*args))


def test_missing_stale_or_foreign_profiles_are_computed(kb_folder, caplog):
    kb = KnowledgeBase(kb_folder / "kb.sqlite")
    with caplog.at_level(logging.WARNING, logger="linker.profiles"):
        assert isinstance(load_profiles(kb, kb_folder), ComputedProfiles)
    assert "mmel kb profiles" in caplog.text
    build_profiles(kb, kb_folder, progress=False)
    path = kb_folder / PROFILES_FILE
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'kb_checksum'", (json.dumps("0" * 16),))
    conn.commit()
    conn.close()
    assert isinstance(load_profiles(kb, kb_folder), ComputedProfiles)  # another KB build

    build_profiles(kb, kb_folder, progress=False)
    conn = sqlite3.connect(path)  # profiles that this version's features would not compute
    conn.execute("UPDATE profiles SET words = words || ' extra', gender = 1 - gender")
    conn.commit()
    conn.close()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="linker.profiles"):
        assert isinstance(load_profiles(kb, kb_folder), ComputedProfiles)
    assert "differ" in caplog.text


def test_linker_with_stored_profiles_featurizes_the_same(tmp_path):
    from kb.home import DEFAULT_KB, kb_dir
    from kb.types import Document, TextMention
    from linker.pipeline import Linker, featurize
    from tiny import build_tiny_linker

    computed = build_tiny_linker(tmp_path)
    build_profiles(computed.kb, kb_dir(tmp_path, DEFAULT_KB), progress=False)
    profiles = load_profiles(computed.kb, kb_dir(tmp_path, DEFAULT_KB))
    assert isinstance(profiles, StoredProfiles)
    stored = Linker(computed.kb, computed.index, computed.encoder, computed.reranker, profiles=profiles)
    text = "Michelle Obama met Merkel in Berlin. Later Obama flew to Paris."
    mentions = tuple(TextMention(text.index(s), text.index(s) + len(s), s) for s in ("Merkel", "Berlin", "Obama", "Paris"))
    docs = [Document(id="d", text=text, mentions=mentions)]
    a = featurize(docs, [mentions], computed.generator, computed.encoder)
    b = featurize(docs, [mentions], stored.generator, stored.encoder)
    assert b.candidates[0][0].profiles and a.candidates == b.candidates
    assert np.array_equal(a.feats.numpy(), b.feats.numpy()) and a.feats.abs().sum() > 0
