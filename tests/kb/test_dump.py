"""The dump reader on a tiny hand-written MediaWiki export (plain, bz2 and gzip)."""
from __future__ import annotations

import bz2
import gzip
from pathlib import Path

import pytest

from kb import dump, wikitext
from kb.errors import InputError
from kb.store import KBWriter, KnowledgeBase

HEADER = """<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" xml:lang="en">
  <siteinfo>
    <sitename>Wikipedia</sitename>
    <namespaces>
      <namespace key="0" case="first-letter" />
      <namespace key="1" case="first-letter">Talk</namespace>
      <namespace key="6" case="first-letter">File</namespace>
      <namespace key="14" case="first-letter">Category</namespace>
    </namespaces>
  </siteinfo>
"""


def page(title: str | None, text: str, ns: int = 0, redirect: str | None = None) -> str:
    title_xml = f"<title>{title}</title>" if title is not None else ""
    red = f'<redirect title="{redirect}" />' if redirect else ""
    return (
        f"  <page>\n    {title_xml}\n    <ns>{ns}</ns>\n    <id>1</id>\n    {red}\n"
        f"    <revision><id>2</id><text xml:space=\"preserve\">{text}</text></revision>\n  </page>\n"
    )


PARIS = (
    "{{Infobox settlement|name=Paris|image=[[File:Paris.jpg|thumb|The [[Seine]]]]}}\n"
    "&lt;!-- hidden comment --&gt;\n"
    "'''Paris''' ({{IPA|pa.ʁi}}) is the capital of [[France]]&lt;ref&gt;{{cite web|url=x}}&lt;/ref&gt;, "
    "on the [[Seine|river Seine]]. It has many [[museum]]s.\n\n"
    "== History ==\n"
    "Founded by the [[Parisii (Gaul)|Parisii]]. See [[France#History|French history]] and "
    "[[:fr:Paris|French article]], [[Category:Capitals]], [[Gaul (region)|]].\n"
)
FRANCE = (
    "{| class=&quot;wikitable&quot;\n| cell || [[Nowhere]]\n|}\n"
    "'''France''' is a country. Its capital is [[Paris]]; see also [[Paris (band)|Paris]] and "
    "[[République française|the Republic]] and [[paris]].\n"
)
SEINE = "The '''Seine''' is a river in [[France]]. It flows through [[Paris]]."
DAB = "'''Paris''' may refer to:\n* [[Paris]], the city\n* [[Paris (band)]]\n{{disambiguation}}"
BAND = "'''Paris''' was a [[rock band]] from [[France]]."


def tiny_dump(extra: str = "") -> str:
    return (
        HEADER
        + page("Paris", PARIS)
        + page("France", FRANCE)
        + page("Seine", SEINE)
        + page("Paris_(band)", BAND)
        + page("République française", "#REDIRECT [[France]]", redirect="France")
        + page("Paris (disambiguation)", DAB)
        + page("Talk:Paris", "Talk about [[Paris]].", ns=1)
        + extra
        + "</mediawiki>\n"
    )


def write(tmp_path: Path, text: str, kind: str = "xml") -> Path:
    raw = text.encode()
    path = tmp_path / f"dump.{kind}"
    if kind == "bz2":
        raw = bz2.compress(raw)
    elif kind == "gz":
        raw = gzip.compress(raw)
    path.write_bytes(raw)
    return path


def collect(path: Path, workers: int = 1, block: int | None = None):
    results = list(dump.parse_dump(path, workers=workers, progress=False, block=block))
    entities = dict(e for r in results for e in r.entities)
    redirects = [x for r in results for x in r.redirects]
    anchors: dict = {}
    counts: dict = {}
    for r in results:
        for k, v in r.anchors.items():
            anchors[k] = anchors.get(k, 0) + v
        for k, v in r.counts.items():
            counts[k] = counts.get(k, 0) + v
    return entities, redirects, anchors, counts


@pytest.mark.parametrize("kind", ["xml", "bz2", "gz"])
def test_pages_are_classified(tmp_path, kind):
    entities, redirects, _, counts = collect(write(tmp_path, tiny_dump(), kind))
    assert set(entities) == {"Paris", "France", "Seine", "Paris (band)"}
    assert redirects == [("République française", "France")]
    assert counts["pages"] == 7
    assert (counts["articles"], counts["redirects"], counts["disambiguation"], counts["other_namespace"]) == (4, 1, 1, 1)
    assert counts.get("skipped", 0) == 0


def test_first_paragraph_is_plain_text(tmp_path):
    entities, *_ = collect(write(tmp_path, tiny_dump()))
    assert entities["Paris"] == "Paris is the capital of France, on the river Seine. It has many museums."
    assert entities["France"].startswith("France is a country. Its capital is Paris;")
    assert "{" not in entities["France"] and "[[" not in entities["France"]


def test_links_anchors_sections_trailing_letters(tmp_path):
    _, _, anchors, counts = collect(write(tmp_path, tiny_dump()))
    assert anchors[("river Seine", "Seine")] == 1
    assert anchors[("museums", "Museum")] == 1  # trailing letters, first letter upper-cased
    assert anchors[("French history", "France")] == 1  # section dropped from the target
    assert anchors[("Parisii", "Parisii (Gaul)")] == 1
    assert anchors[("Gaul", "Gaul (region)")] == 1  # pipe trick
    assert anchors[("Paris", "Paris")] == 2  # [[Paris]] in France and Seine
    assert anchors[("paris", "Paris")] == 1
    assert anchors[("the Republic", "République française")] == 1
    assert not any(t.startswith(("Fr:", "Category:", "File:", "Talk:")) for _, t in anchors)
    assert ("Seine", "Seine") in anchors  # a link inside a file caption is still a link
    # links from the disambiguation and talk pages are not counted
    assert ("Paris", "Paris (band)") in anchors and anchors[("Paris", "Paris (band)")] == 1
    assert counts["links"] == sum(anchors.values())


def test_chunking_and_workers_do_not_change_results(tmp_path):
    path = write(tmp_path, tiny_dump())
    base = collect(path)
    assert collect(path, workers=2, block=64) == base


def test_malformed_page_is_skipped_and_counted(tmp_path):
    entities, _, _, counts = collect(write(tmp_path, tiny_dump(page(None, "no title here"))))
    assert counts["skipped"] == 1
    assert len(entities) == 4


def test_truncated_bz2_is_an_input_error(tmp_path):
    raw = bz2.compress(tiny_dump().encode())
    path = tmp_path / "cut.xml.bz2"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="cut.xml.bz2.*truncated"):
        collect(path)


def test_truncated_xml_is_an_input_error(tmp_path):
    text = tiny_dump()
    path = write(tmp_path, text[: text.index("is a river")])
    with pytest.raises(InputError, match="ends inside a page"):
        collect(path)


@pytest.mark.parametrize(
    "content", [b"just some text\n" * 10, b"<html><body>not a dump</body></html>", b"\x00\x01\x02binary"]
)
def test_not_a_mediawiki_export(tmp_path, content):
    path = tmp_path / "notxml.xml"
    path.write_bytes(content)
    with pytest.raises(InputError, match="notxml.xml.*not a MediaWiki export"):
        collect(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        collect(tmp_path / "nope.xml.bz2")


def test_ingest_builds_a_kb_with_redirects_resolved(tmp_path):
    path = write(tmp_path, tiny_dump(), "bz2")
    with KBWriter(tmp_path / "kb.sqlite") as writer:
        stats = dump.ingest_dump(path, writer, workers=1, progress=False)
        writer.finish(progress=False)
    assert stats["articles"] == 4 and stats["redirects"] == 1 and stats["pages"] == 7
    assert stats["links"] > 0 and stats["pages_per_s"] > 0
    kb = KnowledgeBase(tmp_path / "kb.sqlite")
    assert len(kb) == 4
    # anchor "Paris" (case folded): 3× Paris ([[Paris]] ×2, [[paris]]), 1× Paris (band)
    top = {c.entity: c.prior for c in kb.lookup("Paris")}
    assert top == pytest.approx({"Paris": 3 / 4, "Paris (band)": 1 / 4})
    # a link through a redirect lands on the redirect target
    assert [c.entity for c in kb.lookup("the Republic")] == ["France"]
    # redirect titles are names of their target when there is no anchor evidence
    assert [c.entity for c in kb.lookup("République française")] == ["France"]
    assert kb.get("Seine").description == "The Seine is a river in France. It flows through Paris."


@pytest.mark.parametrize(
    "raw, want",
    [("united_states", "United states"), ("  New   York ", "New York"), (":Paris", "Paris"),
     ("éire", "Éire"), ("", ""), ("AT&amp;T", "AT&T")],
)
def test_normalise_title(raw, want):
    assert wikitext.normalise_title(raw) == want


@pytest.mark.parametrize(
    "target, other",
    [("File:x.jpg", True), ("Category:Y", True), ("fr:Paris", True), ("wikt:word", True),
     (":Category:Y", True), ("Star Trek: Voyager", False), ("Paris", False), ("Image:z.png", True)],
)
def test_other_namespaces(target, other):
    assert wikitext.is_other_namespace(target) is other


def test_disambiguation_detection():
    assert wikitext.is_disambiguation("Mercury (disambiguation)", "")
    for tpl in ("{{disambiguation}}", "{{Disambig}}", "{{dab}}", "{{hndis|name=X}}", "{{geodis}}"):
        assert wikitext.is_disambiguation("Mercury", f"Mercury may be:\n{tpl}")
    assert not wikitext.is_disambiguation("Mercury", "{{Infobox planet}} '''Mercury''' is a planet.")


def test_truncate_respects_limit_and_boundaries():
    text = "First sentence here. " * 40
    cut = wikitext.truncate(text, 100)
    assert len(cut) <= 100 and cut.endswith(".")
    words = wikitext.truncate("word " * 200, 50)
    assert len(words) <= 50 and words.endswith("…") and "wor…" not in words


def test_link_probability_counts_articles_that_link_a_string_among_those_where_it_occurs(tmp_path):
    path = write(tmp_path, tiny_dump())
    with KBWriter(tmp_path / "kb.sqlite") as writer:
        dump.ingest_dump(path, writer, workers=1, progress=False)
        stats = writer.finish(progress=False)
    info = KnowledgeBase(tmp_path / "kb.sqlite").mention_info(["paris", "france", "seine", "unknown"])
    # "Paris" occurs in all four articles and is linked from France and Seine; "France" occurs in
    # all four and is linked from Paris, Seine and the band.
    assert info["paris"][2] == pytest.approx(2 / 4)
    assert info["france"][2] == pytest.approx(3 / 4)
    assert 0 < info["seine"][2] <= 1 and "unknown" not in info
    assert stats["mentions_with_link_prob"] >= 3
