"""`benchmarks/news.py`: the probe KB merged with the people KBs."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import benchmarks.make_data as make_data  # noqa: E402
import benchmarks.news as news  # noqa: E402


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
