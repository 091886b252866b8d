"""`benchmarks/news.py`: the probe KB merged with the people KBs, and the probe file itself."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import benchmarks.make_data as make_data  # noqa: E402
import benchmarks.news as news  # noqa: E402
from linker.document import parse_document  # noqa: E402


def test_with_people_appends_the_people_the_kb_lacks_and_keeps_the_file_when_unchanged(tmp_path, monkeypatch):
    kb, people = tmp_path / "kb.jsonl", tmp_path / "people.jsonl"
    kb.write_text("".join(json.dumps(e) + "\n" for e in [{"qid": "Paris", "name": "Paris"}, {"qid": "Q1", "name": "A"}]))
    people.write_text("".join(json.dumps(e) + "\n" for e in [{"qid": "Q1", "name": "B"}, {"qid": "Q2", "name": "Paris Hilton"}]))
    monkeypatch.setattr(news, "WORK", tmp_path / "work")
    (tmp_path / "work").mkdir()
    monkeypatch.setattr(make_data, "ensure_merged", lambda: people)
    out = news.with_people(kb)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["qid"], r["name"]) for r in rows] == [("Paris", "Paris"), ("Q1", "A"), ("Q2", "Paris Hilton")]
    stamp = out.stat().st_mtime_ns
    assert news.with_people(kb) == out and out.stat().st_mtime_ns == stamp  # same KB name for ensure_kb


def test_the_probe_spans_are_clean_and_its_gold_ids_are_in_the_vital_articles_kb():
    kb = news.DATA / "general" / "kb.jsonl"
    if not kb.is_file():
        pytest.skip(f"{kb} not found (shared data)")
    ids = {json.loads(line)["qid"] for line in kb.read_text(encoding="utf-8").splitlines() if line.strip()}
    docs = [json.loads(line) for line in news.PROBE.read_text(encoding="utf-8").splitlines()]
    assert len({d["id"] for d in docs}) == len(docs)
    for d in docs:
        spans = parse_document(d, d["id"]).mentions  # in the text, not blank, no overlaps
        assert all(m.surface == m.surface.strip() for m in spans), d["id"]
        assert all(m["qid"] is None or m["qid"] in ids for m in d["mentions"]), d["id"]
