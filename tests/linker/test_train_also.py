"""`mmel train --also KB=TRAIN[,DEV]`: one reranker trained on labelled files of two KBs."""
import json
import sys

import pytest
from typer.testing import CliRunner

import cli
from cli import app
from tiny import build_tiny_kb

runner = CliRunner()

# a second KB whose ids are titles, as a KB built from Wikipedia's articles has
PLACES = [{"qid": "Paris", "name": "Paris", "description": "capital of France"},
          {"qid": "Paris, Texas", "name": "Paris, Texas", "description": "city in Texas"},
          {"qid": "Berlin", "name": "Berlin", "description": "capital of Germany"}]


def _index(home, kb, model="hashing"):
    res = runner.invoke(app, ["kb", "index", "--home", str(home), "--kb", kb, "--text-model", model, "--no-progress"])
    assert res.exit_code == 0, res.output


@pytest.fixture
def home(tmp_path):
    build_tiny_kb(tmp_path)
    _index(tmp_path, "default")
    (tmp_path / "places.jsonl").write_text("".join(json.dumps(e) + "\n" for e in PLACES))
    res = runner.invoke(app, ["kb", "build", "--home", str(tmp_path), "--kb", "places",
                              "--entities", str(tmp_path / "places.jsonl"), "--no-progress"])
    assert res.exit_code == 0, res.output
    _index(tmp_path, "places")
    return tmp_path


def _write(path, rows):
    docs = [{"id": str(i), "text": text, "mentions": [{"start": text.index(s), "end": text.index(s) + len(s), "qid": q}]}
            for i, (text, s, q) in enumerate(rows)]
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


def test_train_on_two_kbs_reports_each_dev_set(home, tmp_path):
    people = _write(tmp_path / "people.jsonl", [("Merkel spoke in Berlin.", "Merkel", "Q567")] * 6)
    places = _write(tmp_path / "places_train.jsonl", [("She flew to Paris, France.", "Paris", "Paris")] * 6)
    places_dev = _write(tmp_path / "places_dev.jsonl", [("A day in Paris, France.", "Paris", "Paris")] * 3)
    res = runner.invoke(app, ["train", "--home", str(home), "--train", str(people), "--dev", str(people),
                              "--also", f"places={places},{places_dev}", "--also-repeat", "2", "--epochs", "3",
                              "--context", "transformer", "--no-progress"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    # the places' gold ids ("Paris") exist only in the places KB: featurized against it, they are found
    assert set(report["dev_sets"]) == {str(people), str(places_dev)}
    assert report["dev_sets"][str(places_dev)]["hits_at_1"] == 1.0
    assert report["train_docs"] == 6 + 2 * 6  # the places' documents twice per epoch


def _fail(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["mmel", *args])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    return exc.value.code, capsys.readouterr().err


def test_also_errors_are_one_line(home, tmp_path, monkeypatch, capsys):
    data = _write(tmp_path / "people.jsonl", [("Merkel spoke in Berlin.", "Merkel", "Q567")] * 3)
    base = ["train", "--home", str(home), "--train", str(data), "--dev", str(data), "--context", "transformer"]
    code, err = _fail(monkeypatch, capsys, *base, "--also", "places")
    assert code == 2 and "bad --also 'places'" in err and len(err.strip().splitlines()) == 1
    _index(home, "places", model="hashing:32")  # another context space: one reranker cannot serve both
    code, err = _fail(monkeypatch, capsys, *base, "--also", f"places={data}")
    assert code == 2 and "index dimension 32" in err and "Traceback" not in err
