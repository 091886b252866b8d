"""The Wikidata JSON dump reader on real items (tests/data/wikidata), plain, bz2 and gzip, and
the KB it builds: names in several languages, title, popularity, types, images; bad input."""
from __future__ import annotations

import bz2
import gzip
import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli
from kb import wikidata
from kb.build import build_kb, read_entities
from kb.errors import InputError
from kb.store import KnowledgeBase

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "wikidata"
SAMPLE = FIXTURES / "sample.json"
WDTK = FIXTURES / "wdtk-mock-dump.json"
runner = CliRunner()


def write(tmp_path: Path, raw: bytes, kind: str = "json") -> Path:
    path = tmp_path / f"dump.{kind}"
    path.write_bytes(bz2.compress(raw) if kind == "bz2" else gzip.compress(raw) if kind == "gz" else raw)
    return path


def collect(path: Path, langs=("en",), workers: int = 1, block: int | None = None, min_sitelinks: int = 0):
    results = list(wikidata.parse_wikidata(path, langs, min_sitelinks, workers=workers, progress=False, block=block))
    counts: dict = {}
    for r in results:
        for k, v in r.counts.items():
            counts[k] = counts.get(k, 0) + v
    return {e.id: e for r in results for e in r.entities}, counts, [m for r in results for m in r.malformed]


def dump_lines(*objs) -> bytes:
    return ("[\n" + ",\n".join(o if isinstance(o, str) else json.dumps(o) for o in objs) + "\n]\n").encode()


def item(qid: str, label: str | None, lang: str = "en", **extra) -> dict:
    labels = {lang: {"language": lang, "value": label}} if label else {}
    return {"type": "item", "id": qid, "labels": labels, "descriptions": {}, "aliases": {}, "claims": {},
            "sitelinks": {}, **extra}


@pytest.mark.parametrize("kind", ["json", "bz2", "gz"])
def test_real_items_are_read(tmp_path, kind):
    ents, counts, bad = collect(write(tmp_path, SAMPLE.read_bytes(), kind))
    assert set(ents) == {"Q42", "Q20145", "Q494290", "Q33281"}
    assert counts["lines"] == 6 and counts["items"] == 4 and counts["other_entities"] == 2  # P2003, L3354
    assert not bad and counts.get("skipped", 0) == 0
    adams = ents["Q42"]
    assert (adams.name, adams.title, adams.description) == ("Douglas Adams", "Douglas Adams", "author and humorist")
    assert adams.popularity == 107.0  # sitelinks
    assert adams.types == ("Q5",)
    assert adams.images == ("Douglas adams portrait cropped.jpg",)
    assert "Douglas Noël Adams" in adams.aliases and "Douglas Adams" not in adams.aliases
    assert ents["Q20145"].title == "IU (entertainer)"
    assert ents["Q33281"].types[:2] == ("Q34770", "Q33289")


def test_other_languages_become_aliases_and_old_entity_values_are_read():
    ents, counts, _ = collect(WDTK, langs=("en",))
    assert ents == {} and counts["no_label"] == 2 and counts["other_entities"] == 2  # P16, L1
    ents, counts, _ = collect(WDTK, langs=("en", "de"))
    universe = ents["Q1"]
    assert universe.name == "Universum" and set(universe.aliases) == {"Weltall", "All", "Kosmos", "Weltraum"}
    assert universe.types == ("Q1454986",)  # {"numeric-id": 1454986} without "id"
    assert universe.title is None and universe.popularity == 1.0  # frwiki only
    ents, _, _ = collect(SAMPLE, langs=("en", "ko"))
    assert ents["Q20145"].name == "IU" and "아이유" in ents["Q20145"].aliases  # Korean label as alias


def test_min_sitelinks(tmp_path):
    ents, counts, _ = collect(SAMPLE, min_sitelinks=30)
    assert set(ents) == {"Q42", "Q20145", "Q33281"} and counts["below_min_sitelinks"] == 1


def test_chunking_and_workers_do_not_change_results():
    base = collect(SAMPLE)
    assert collect(SAMPLE, workers=2, block=4096) == base


def test_bad_lines_are_skipped_and_counted(tmp_path):
    raw = dump_lines(item("Q1", "One"), "{not json", {"type": "item", "labels": {}}, item("Q2", "Two"))
    ents, counts, bad = collect(write(tmp_path, raw))
    assert set(ents) == {"Q1", "Q2"} and counts["skipped"] == 2
    assert "line 3" in bad[0] and "not JSON" in bad[0] and "without an 'id'" in bad[1]


def _tricky_lines() -> list[str]:
    """Items whose text looks like structure: a label with `"claims":` and braces, P31 only as a
    qualifier and inside a reference, a deprecated P31, empty maps written as [], members in
    another order (no fast path), a property."""
    snak = {"snaktype": "value", "property": "P31", "datavalue": {"value": {"id": "Q99"}, "type": "wikibase-entityid"}}
    statement = {"mainsnak": {**snak, "datavalue": {"value": {"id": "Q5"}, "type": "wikibase-entityid"}},
                 "type": "statement", "rank": "normal", "qualifiers": {"P31": [snak]},
                 "references": [{"snaks": {"P31": [snak]}}]}
    image = {"mainsnak": {"snaktype": "value", "property": "P18", "datavalue": {"value": "A b.jpg", "type": "string"}},
             "type": "statement", "rank": "normal"}
    lines = [
        item("Q1", 'say "claims": {"P31":[{"mainsnak"', claims={"P31": [statement], "P18": [image]},
             sitelinks={"enwiki": {"site": "enwiki", "title": "T {x}", "badges": []}}),
        item("Q2", "Only qualifiers", claims={"P580": [{**statement, "mainsnak": {**statement["mainsnak"], "property": "P580"}}]}),
        item("Q3", "Deprecated", claims={"P31": [{**statement, "rank": "deprecated"}, statement]}),
        {"type": "item", "id": "Q4", "labels": {"en": {"language": "en", "value": "Empty"}}, "descriptions": [],
         "aliases": [], "claims": [], "sitelinks": []},
        {"claims": {"P31": [statement]}, "type": "item", "id": "Q5", "labels": {"en": {"language": "en", "value": "Order"}},
         "sitelinks": {}},
        {"type": "property", "id": "P31", "datatype": "wikibase-item", "labels": {}, "claims": {}},
    ]
    return [json.dumps(o, ensure_ascii=False) for o in lines]


def test_fast_path_reads_what_full_decoding_reads():
    """`decode_line` decodes only parts of a line; the entity is the one of the whole line, on
    the real items, generated ones (benchmarks/make_synthetic_wikidata.py) and tricky ones."""
    import random
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks.make_synthetic_wikidata import make_item

    rng = random.Random(1)
    lines = [raw.rstrip(",") for f in (SAMPLE, WDTK) for raw in f.read_text(encoding="utf-8").splitlines()
             if raw.strip() not in ("[", "]", "")]
    lines += [json.dumps(make_item(rng, n), ensure_ascii=False, separators=(",", ":")) for n in range(1, 300)]
    lines += _tricky_lines()
    fast = 0
    for line in lines:
        whole = json.loads(line)
        fast += wikidata._decode_fast(line) is not None
        got = wikidata.decode_line(line.encode())
        assert (got["id"], got.get("type")) == (whole["id"], whole.get("type"))
        if whole.get("type") == "item":
            for langs in (("en",), ("de", "en"), ("ko",)):
                assert wikidata.item_fields(got, langs) == wikidata.item_fields(whole, langs), (whole["id"], langs)
    assert fast >= len(lines) - 6  # the wdtk items (other member order) and Q5 decode whole
    ents = {e.id: e for e in wikidata.parse_chunk("\n".join(_tricky_lines()).encode()).entities}
    assert ents["Q1"].types == ("Q5",) and ents["Q1"].images == ("A b.jpg",) and ents["Q1"].title == "T {x}"
    assert ents["Q2"].types == () and ents["Q3"].types == ("Q5",) and ents["Q5"].types == ("Q5",)


def test_truncated_bz2_is_an_input_error(tmp_path):
    raw = bz2.compress(SAMPLE.read_bytes())
    path = tmp_path / "cut.json.bz2"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="cut.json.bz2.*truncated"):
        collect(path)


def test_truncated_json_is_an_input_error(tmp_path):
    raw = SAMPLE.read_bytes()
    path = write(tmp_path, raw[: len(raw) // 2])
    with pytest.raises(InputError, match="ends inside an entity.*truncated"):
        collect(path)


@pytest.mark.parametrize("content", [b"<mediawiki>", b"just text\n", b"\x00\x01binary"])
def test_not_a_wikidata_dump(tmp_path, content):
    path = tmp_path / "other.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match="other.json.*not a Wikidata JSON dump"):
        collect(path)


def test_kb_from_wikidata_has_titles_types_popularity(tmp_path):
    stats = build_kb(tmp_path / "kb.sqlite", wikidata=SAMPLE, lang="en,de", workers=1, progress=False)
    assert stats["entities"] == 4 and stats["wikidata"]["other_entities"] == 2
    assert stats["entities_with_types"] == 4 and stats["entities_with_popularity"] == 4
    kb = KnowledgeBase(tmp_path / "kb.sqlite")
    adams = kb.get("Q42")
    assert adams.types == ("Q5",) and adams.popularity == 107.0 and adams.title == "Douglas Adams"
    assert adams.images == ("Douglas adams portrait cropped.jpg",)
    assert [c.entity for c in kb.lookup("Douglas Noel Adams")] == ["Q42"]
    assert kb.lookup("Adams")[0].entity == "Q42"  # surname form derived from the name
    assert kb.meta["schema_version"] == 3 and kb.meta["sources"]["wikidata"].endswith("sample.json")


def test_nothing_is_replaced_unless_the_build_completes(tmp_path):
    out = tmp_path / "kb.sqlite"
    build_kb(out, wikidata=SAMPLE, workers=1, progress=False)
    before = out.read_bytes()
    raw = SAMPLE.read_bytes()
    with pytest.raises(InputError, match="truncated"):
        build_kb(out, wikidata=write(tmp_path, raw[: len(raw) // 2]), workers=1, progress=False)
    with pytest.raises(InputError, match="gave no entities.*no label: 2"):
        build_kb(out, wikidata=WDTK, workers=1, progress=False)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".write.lock") == ["dump.json", "kb.sqlite"]


def test_wikidata_kb_gives_douglas_adams_as_first_candidate(tmp_path):
    """The fake-encoder linker (untrained reranker): Q42 is the first candidate by prior."""
    from indexer.dense import build_text_index, load_text_index
    from indexer.text import HashingTextEncoder
    from kb.types import Document, TextMention
    from linker.features import FEATURES
    from linker.pipeline import Linker
    from linker.reranker import Reranker, RerankerConfig

    build_kb(tmp_path / "kb.sqlite", wikidata=SAMPLE, workers=1, progress=False)
    kb = KnowledgeBase(tmp_path / "kb.sqlite")
    encoder = HashingTextEncoder(dim=64)
    build_text_index(kb, encoder, tmp_path, kind="flat", progress=False)
    reranker = Reranker(RerankerConfig(n_features=len(FEATURES), dim=64, feature_names=FEATURES))
    reranker.eval()
    linker = Linker(kb, load_text_index(kb, tmp_path), encoder, reranker)
    [link] = linker.link(Document("d", DOUGLAS, mentions=(TextMention(0, 13, "Douglas Adams"),)))
    best = max(link.candidates, key=lambda c: c.prior)
    assert best.entity == "Q42" and best.prior == pytest.approx(1.0)


DOUGLAS = "Douglas Adams wrote The Hitchhiker's Guide to the Galaxy, a comedy science fiction series."


@pytest.mark.slow
def test_wikidata_kb_links_douglas_adams(tmp_path):
    """The shipped linker (bundled reranker, MiniLM index) on a KB built from the real items."""
    from indexer.dense import build_text_index
    from indexer.text import load_text_encoder
    from kb.home import kb_path
    from kb.types import Document, TextMention
    from linker.pipeline import Linker

    build_kb(kb_path(tmp_path, "wikidata"), wikidata=SAMPLE, workers=1, progress=False)
    kb = KnowledgeBase(kb_path(tmp_path, "wikidata"))
    build_text_index(kb, load_text_encoder(None), kb.path.parent, kind="flat", progress=False)
    linker = Linker.load(tmp_path, "wikidata")
    [link] = linker.link(Document("d", DOUGLAS, mentions=(TextMention(0, 13, "Douglas Adams"),)))
    assert link.entity == "Q42"
    ent = linker.kb.get(link.entity)
    assert ent.types == ("Q5",) and ent.popularity == 107.0


def test_cli_build_info_lookup(tmp_path):
    home = str(tmp_path / "home")
    result = runner.invoke(cli.app, ["kb", "build", "--wikidata", str(SAMPLE), "--lang", "en,de",
                                     "--min-sitelinks", "6", "--workers", "1", "--no-progress", "--home", home])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["entities"] == 3 and stats["wikidata"]["below_min_sitelinks"] == 1
    info = json.loads(runner.invoke(cli.app, ["kb", "info", "--home", home]).stdout)
    assert info["entities_with_types"] == 3 and info["wikidata"]["languages"] == ["en", "de"]
    top = json.loads(runner.invoke(cli.app, ["kb", "lookup", "Douglas Adams", "--home", home]).stdout)[0]
    assert top["entity"] == "Q42" and top["types"] == ["Q5"] and top["popularity"] == 107.0


def test_cli_bad_input_is_one_line(tmp_path):
    raw = bz2.compress(SAMPLE.read_bytes())
    cut = tmp_path / "cut.json.bz2"
    cut.write_bytes(raw[: len(raw) // 3])
    for args, message in (
        (["--wikidata", str(cut)], "truncated or corrupt"),
        (["--wikidata", str(tmp_path / "missing.json")], "does not exist"),
        (["--wikidata", str(SAMPLE), "--lang", " , "], "names no language"),
        (["--entities", str(SAMPLE), "--min-sitelinks", "3"], "apply to --wikidata"),
    ):
        result = runner.invoke(cli.app, ["kb", "build", *args, "--workers", "1", "--no-progress",
                                         "--home", str(tmp_path / "home")])
        assert result.exit_code != 0
        assert message in str(result.exception), (args, result.exception)


# -- entity lists with title, popularity, types; a dump's anchors on them -----------------------


def test_entity_list_reads_and_validates_optional_fields(tmp_path):
    lines = [
        {"qid": "Q1", "name": "A", "title": "A (letter)", "popularity": 12, "types": ["Q9788"], "images": ["A.png"]},
        {"qid": "Q2", "name": "B"},
        {"qid": "Q3", "name": "C", "popularity": "many"},
        {"qid": "Q4", "name": "D", "popularity": True},
        {"qid": "Q5", "name": "E", "types": "Q5"},
        {"qid": "Q6", "name": "F", "title": 7},
        {"qid": "Q7", "name": "G", "types": [5]},
    ]
    src = tmp_path / "e.jsonl"
    src.write_text("".join(json.dumps(x) + "\n" for x in lines))
    skipped: list[str] = []
    ents = list(read_entities(src, skipped))
    assert [e.id for e in ents] == ["Q1", "Q2"] and len(skipped) == 5
    assert (ents[0].title, ents[0].popularity, ents[0].types, ents[0].images) == ("A (letter)", 12.0, ("Q9788",), ("A.png",))
    assert (ents[1].title, ents[1].popularity, ents[1].types) == (None, None, ())
    assert "popularity" in skipped[0] and "e.jsonl:3" in skipped[0]


def _page(title: str, text: str) -> str:
    return f"<page><title>{title}</title><ns>0</ns><id>1</id><revision><text>{text}</text></revision></page>\n"


def _xml_dump(tmp_path: Path) -> Path:
    path = tmp_path / "enwiki.xml.bz2"
    path.write_bytes(bz2.compress((
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/">\n'
        + _page("Douglas Adams", "'''Douglas Adams''' wrote [[The Hitchhiker's Guide to the Galaxy|Hitchhiker]].")
        + _page("The Hitchhiker's Guide to the Galaxy", "A comedy by [[Douglas Adams|Adams]] and [[Douglas Adams|DNA]].")
        + _page("Zaphod", "See [[Douglas Adams|the author]].")
        + _page("H2G2", "#REDIRECT [[The Hitchhiker's Guide to the Galaxy]]")
        + "</mediawiki>\n"
    ).encode()))
    return path


def test_dump_anchors_attach_to_entity_list_titles_and_add_no_articles(tmp_path):
    src = tmp_path / "e.jsonl"
    src.write_text(
        json.dumps({"qid": "Q42", "name": "Douglas Adams", "title": "Douglas Adams"}) + "\n"
        + json.dumps({"qid": "Q3107329", "name": "Hitchhiker's Guide", "title": "The Hitchhiker's Guide to the Galaxy"}) + "\n"
    )
    stats = build_kb(tmp_path / "kb.sqlite", entities=src, dump=_xml_dump(tmp_path), workers=1, progress=False)
    kb = KnowledgeBase(tmp_path / "kb.sqlite")
    assert len(kb) == 2 and kb.get("Zaphod") is None  # the dump's other article is not an entity
    assert stats["dump_articles_not_in_kb"] == 1 and stats["dump"]["articles"] == 3
    assert [c.entity for c in kb.lookup("DNA")] == ["Q42"]  # anchor → title → entity
    assert [c.entity for c in kb.lookup("the author")] == ["Q42"]  # from an article not in the KB
    assert [c.entity for c in kb.lookup("Hitchhiker")] == ["Q3107329"]  # by title, not name
    assert [c.entity for c in kb.lookup("H2G2")] == ["Q3107329"]  # redirect → title
    assert stats["anchors_dropped"] == 0


def test_wikidata_and_dump_together(tmp_path):
    stats = build_kb(tmp_path / "kb.sqlite", wikidata=SAMPLE, dump=_xml_dump(tmp_path), workers=1, progress=False)
    kb = KnowledgeBase(tmp_path / "kb.sqlite")
    assert len(kb) == 4 and stats["dump_articles_not_in_kb"] == 2
    assert [c.entity for c in kb.lookup("DNA")] == ["Q42"]
    assert [c.entity for c in kb.lookup("the author")] == ["Q42"]


def test_dump_alone_still_adds_its_articles(tmp_path):
    stats = build_kb(tmp_path / "kb.sqlite", dump=_xml_dump(tmp_path), workers=1, progress=False)
    assert stats["entities"] == 3 and "dump_articles_not_in_kb" not in stats
    assert KnowledgeBase(tmp_path / "kb.sqlite").get("Zaphod").title == "Zaphod"


def test_schema_2_kb_is_still_read(tmp_path):
    build_kb(tmp_path / "kb.sqlite", wikidata=SAMPLE, workers=1, progress=False)
    conn = sqlite3.connect(tmp_path / "kb.sqlite")
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    kb = KnowledgeBase(tmp_path / "kb.sqlite")
    adams = kb.get("Q42")
    assert adams.name == "Douglas Adams" and (adams.title, adams.popularity, adams.types) == (None, None, ())
