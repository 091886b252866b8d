import json

import pytest

from kb.errors import InputError
from kb.types import Candidate, Document, FaceMention, Link, TextMention
from linker.document import document_record, parse_document, read_documents


def test_parse_document_valid_and_spans():
    doc = parse_document({"id": 7, "text": "Obama in Paris", "mentions": [{"start": 0, "end": 5}],
                          "images": [{"id": "a", "path": "x.jpg"}]})
    assert doc.id == "7" and doc.mentions == (TextMention(0, 5, "Obama"),)
    assert doc.images[0].id == "a"
    assert parse_document({"text": "no spans"}).mentions is None


@pytest.mark.parametrize("obj, fragment", [
    ([], "expected a JSON object"),
    ({"text": 3}, "'text' must be a string"),
    ({"text": "abc", "mentions": [{"start": 2, "end": 9}]}, "outside the text"),
    ({"text": "abc", "mentions": [{"start": "0", "end": 1}]}, "must be an integer"),
    ({"text": "abc", "mentions": {"start": 0}}, "must be a list"),
    ({"text": "abc", "images": [{"id": "x"}]}, "string 'path'"),
    ({"text": "a\ud800b"}, "unpaired surrogate at offset 1"),
])
def test_parse_document_errors_name_the_problem(obj, fragment):
    with pytest.raises(InputError, match=fragment):
        parse_document(obj, "doc.json")


def test_read_documents_json_list_and_jsonl(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps([{"text": "x"}, {"text": "y"}]))
    assert [d.text for d in read_documents(tmp_path / "a.json")] == ["x", "y"]
    (tmp_path / "b.jsonl").write_text('{"text": "x"}\n\n{"text": "y"}\n')
    assert [d.text for d in read_documents(tmp_path / "b.jsonl")] == ["x", "y"]
    (tmp_path / "c.jsonl").write_text('{"text": "x"}\n{oops\n')
    with pytest.raises(InputError, match="c.jsonl:2"):
        list(read_documents(tmp_path / "c.jsonl"))
    with pytest.raises(InputError, match="does not exist"):
        list(read_documents(tmp_path / "missing.json"))


def test_document_record_has_text_and_face_links():
    doc = Document(id="d", text="Obama", mentions=(TextMention(0, 5, "Obama"),))
    cand = Candidate(entity="Q76", name="Barack Obama", score=1.5, prior=0.9)
    links = [Link(TextMention(0, 5, "Obama"), "Q76", 1.5, (cand,)),
             Link(FaceMention("img", (1, 2, 3, 4)), None, 0.1, ())]
    rec = document_record(doc, links, ["img: unreadable"])
    assert rec["mentions"][0] == {"start": 0, "end": 5, "surface": "Obama", "entity": "Q76",
                                  "name": "Barack Obama", "score": 1.5,
                                  "candidates": [{"entity": "Q76", "name": "Barack Obama", "score": 1.5, "prior": 0.9}]}
    assert rec["faces"][0]["entity"] is None and rec["faces"][0]["box"] == [1, 2, 3, 4]
    assert rec["warnings"] == ["img: unreadable"]


def test_read_labelled_rejects_lines_without_gold(tmp_path):
    from linker.training.labelled import read_labelled

    good = {"id": "1", "text": "Obama spoke", "mentions": [{"start": 0, "end": 5, "qid": "Q76"}]}
    p = tmp_path / "l.jsonl"
    p.write_text(json.dumps(good) + "\n")
    [(doc, qids)] = read_labelled(p)
    assert qids == ["Q76"] and doc.mentions[0].surface == "Obama"
    for bad, fragment in (("[1, 2]", "expected a JSON object"), ('{"text": "x"}', "gold 'qid'"),
                          ('{"text": "Obama", "mentions": [{"start": 0, "end": 5}]}', "gold 'qid'"),
                          ("{oops", "not valid JSON")):
        p.write_text(json.dumps(good) + "\n" + bad + "\n")
        with pytest.raises(InputError, match=f"l.jsonl:2.*{fragment}|{fragment}"):
            read_labelled(p)


def test_read_labelled_reads_nil_gold(tmp_path):
    from linker.training.labelled import read_labelled

    line = {"id": "1", "text": "Obama met Zorblax", "mentions": [{"start": 0, "end": 5, "qid": "Q76"},
                                                                  {"start": 10, "end": 17, "qid": None}]}
    p = tmp_path / "l.jsonl"
    p.write_text(json.dumps(line) + "\n")
    [(_, qids)] = read_labelled(p)
    assert qids == ["Q76", None]
    line["mentions"][1]["qid"] = " "
    p.write_text(json.dumps(line) + "\n")
    with pytest.raises(InputError, match="gold 'qid'"):
        read_labelled(p)


@pytest.mark.parametrize("mentions, fragment", [
    ([{"start": 0, "end": 5}, {"start": 2, "end": 8}], r"mentions\[1\] span \[2, 8\) 'ama me' overlaps mentions\[0\] span \[0, 5\) 'Obama'"),
    ([{"start": 6, "end": 8}, {"start": 0, "end": 8}], r"mentions\[1\] span \[0, 8\) 'Obama me' overlaps mentions\[0\] span \[6, 8\) 'me'"),
    ([{"start": 0, "end": 5}, {"start": 0, "end": 5}], r"mentions\[1\] span \[0, 5\) 'Obama' overlaps mentions\[0\]"),
    ([{"start": 0, "end": 1}, {"start": 9, "end": 12}, {"start": 1, "end": 20}], r"mentions\[2\] span \[1, 20\).* overlaps mentions\[1\] span \[9, 12\)"),
    ([{"start": 5, "end": 6}], r"mentions\[0\] span \[5, 6\) ' ' is only whitespace"),
    ([{"start": 0, "end": 5}, {"start": 17, "end": 20}], r"mentions\[1\] span \[17, 20\) '\\n\\t ' is only whitespace"),
])
def test_overlapping_and_blank_spans_are_refused(mentions, fragment):
    obj = {"text": "Obama met Merkel.\n\t ", "mentions": mentions}
    with pytest.raises(InputError, match=fragment) as err:
        parse_document(obj, "doc.json")
    assert "\n" not in str(err.value)


def test_adjacent_spans_and_gold_repeats_are_accepted():
    text = "Obama met Merkel."
    doc = parse_document({"text": text, "mentions": [{"start": 10, "end": 16}, {"start": 0, "end": 5}, {"start": 5, "end": 9}]})
    assert [m.surface for m in doc.mentions] == ["Merkel", "Obama", " met"]
    rep = parse_document({"text": text, "mentions": [{"start": 0, "end": 5}] * 2}, allow_overlaps=True)
    assert len(rep.mentions) == 2
    with pytest.raises(InputError, match="only whitespace"):
        parse_document({"text": "a  b", "mentions": [{"start": 1, "end": 3}]}, allow_overlaps=True)
