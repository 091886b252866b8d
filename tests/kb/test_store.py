"""The SQLite store: atomic rebuilds, stale temporary files, reader behaviour."""
from __future__ import annotations

import bz2
import sqlite3

import pytest

from kb import dump as dump_mod
from kb.build import build_kb
from kb.errors import InputError, KBError
from kb.store import KBWriter, KnowledgeBase
from kb.types import Entity


def _page(title: str, text: str) -> str:
    return f"<page><title>{title}</title><ns>0</ns><id>1</id><revision><text>{text}</text></revision></page>\n"


def _dump(*titles: str) -> str:
    pages = "".join(_page(t, f"'''{t}''' is a place linked to [[{titles[0]}]].") for t in titles)
    return f'<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/">\n{pages}</mediawiki>\n'


@pytest.fixture
def built(tmp_path):
    src = tmp_path / "v1.xml"
    src.write_text(_dump("Alpha", "Beta"))
    out = tmp_path / "kbs" / "x" / "kb.sqlite"
    build_kb(out, dump=src, workers=1, progress=False)
    return out


def _ids(path) -> set[str]:
    return {e.id for _, e in KnowledgeBase(path).iter_entities()}


def test_build_roundtrip(built):
    kb = KnowledgeBase(built)
    assert _ids(built) == {"Alpha", "Beta"} and len(kb) == 2
    assert kb.get("Alpha").description == "Alpha is a place linked to Alpha."
    assert kb.idx_of("Beta") is not None and kb.by_idx([kb.idx_of("Beta")])[0].id == "Beta"
    assert kb.info()["entities"] == 2 and len(kb.checksum) == 16
    assert sqlite3.connect(built).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_failed_rebuild_keeps_previous_kb(built, tmp_path):
    bad = tmp_path / "bad.xml.bz2"
    bad.write_bytes(bz2.compress(_dump("Gamma", "Delta").encode())[:-40])  # truncated
    with pytest.raises(InputError, match="bad.xml.bz2"):
        build_kb(built, dump=bad, workers=1, progress=False)
    assert _ids(built) == {"Alpha", "Beta"}
    assert not built.with_name("kb.sqlite.tmp").exists()


def test_crash_in_finish_keeps_previous_kb(built, tmp_path, monkeypatch):
    src = tmp_path / "v2.xml"
    src.write_text(_dump("Gamma"))

    def boom(self, *args, **kwargs):
        raise RuntimeError("killed midway")

    monkeypatch.setattr(KBWriter, "finish", boom)
    with pytest.raises(RuntimeError):
        build_kb(built, dump=src, workers=1, progress=False)
    assert _ids(built) == {"Alpha", "Beta"}
    assert not built.with_name("kb.sqlite.tmp").exists()


def test_crash_while_parsing_keeps_previous_kb(built, tmp_path, monkeypatch):
    src = tmp_path / "v2.xml"
    src.write_text(_dump("Gamma", "Delta"))
    calls = {"n": 0}
    real = dump_mod.parse_chunk

    def flaky(chunk, namespaces=dump_mod.wt.DEFAULT_NAMESPACES):
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("worker died")
        return real(chunk, namespaces)

    monkeypatch.setattr(dump_mod, "parse_chunk", flaky)
    monkeypatch.setattr(dump_mod, "BLOCK_BYTES", 64)  # several chunks
    with pytest.raises(RuntimeError, match="worker died"):
        build_kb(built, dump=src, workers=1, progress=False)
    assert _ids(built) == {"Alpha", "Beta"}


def test_stale_tmp_from_killed_build_is_replaced(built, tmp_path):
    stale = built.with_name("kb.sqlite.tmp")
    stale.write_bytes(b"half-written garbage from a killed build")
    built.with_name("kb.sqlite.tmp-journal").write_bytes(b"junk")
    src = tmp_path / "v2.xml"
    src.write_text(_dump("Gamma", "Delta", "Epsilon"))
    build_kb(built, dump=src, workers=1, progress=False)
    assert _ids(built) == {"Gamma", "Delta", "Epsilon"}
    assert not stale.exists() and not built.with_name("kb.sqlite.tmp-journal").exists()


def test_duplicate_entities_are_counted(tmp_path):
    with KBWriter(tmp_path / "kb.sqlite") as w:
        assert w.add_entities([Entity("A", "A"), Entity("A", "A again"), Entity("B", "B")]) == 2
        stats = w.finish(progress=False)
    assert stats["duplicate_entities"] == 1 and stats["entities"] == 2


def test_reader_errors(tmp_path):
    with pytest.raises(KBError, match="no knowledge base"):
        KnowledgeBase(tmp_path / "missing.sqlite")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(KBError, match="not a knowledge base"):
        KnowledgeBase(junk)


def test_schema_v1_kbs_are_read_without_link_probabilities(built):
    conn = sqlite3.connect(built)
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.execute("ALTER TABLE mentions DROP COLUMN link_prob")
    conn.commit()
    conn.close()
    info = KnowledgeBase(built).mention_info(["alpha"])
    assert info["alpha"][2] is None
    conn = sqlite3.connect(built)
    conn.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(KBError, match="schema version 7.*reads 1, 2"):
        KnowledgeBase(built)
