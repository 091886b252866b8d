"""`mmel link --mentions/--spacy-model`: raw text through the CLI and one-line option errors."""
import json
import sys

import pytest
from typer.testing import CliRunner

import cli
from cli import app
from tiny import build_tiny_linker

runner = CliRunner()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    build_tiny_linker(home).reranker.save(home / "models" / "reranker")
    return home


def _main(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["mmel", *args])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    return exc.value.code, capsys.readouterr().err


def test_raw_text_is_spotted(home, tmp_path):
    doc = tmp_path / "raw.json"
    doc.write_text(json.dumps({"id": "r", "text": "In March, He said. Barack Obama met Angela Merkel."}))
    res = runner.invoke(app, ["link", str(doc), "--home", str(home), "--mentions", "dict"])
    assert res.exit_code == 0, res.output
    assert [m["surface"] for m in json.loads(res.stdout)["mentions"]] == ["Barack Obama", "Angela Merkel"]


@pytest.mark.parametrize("args, message", [
    (["--mentions", "ner"], "unknown mention source 'ner' (mentions): choose one of dict, spacy, both"),
    (["--spacy-model", "en_core_web_sm"], "spacy model 'en_core_web_sm' needs mentions spacy or both"),
    (["--set", "visual.alpha=2"], "visual.alpha must be between 0 and 1, got 2"),
    (["--set", "candidates.dense=5"], "unknown setting 'candidates.dense': valid are candidates.pool,"),
    (["--set", "reranker.dim=5"], "cannot override 'reranker.dim': the reranker's settings are fixed"),
    (["--set", "joint=maybe"], "joint must be bool, got 'maybe'"),
])
def test_bad_mention_options_are_one_line(home, tmp_path, monkeypatch, capsys, args, message):
    doc = tmp_path / "raw.json"
    doc.write_text(json.dumps({"text": "Obama"}))
    code, err = _main(monkeypatch, capsys, "link", str(doc), "--home", str(home), *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_missing_spacy_model_is_one_line(home, tmp_path, monkeypatch, capsys):
    pytest.importorskip("spacy")
    doc = tmp_path / "raw.json"
    doc.write_text(json.dumps({"text": "Obama"}))
    code, err = _main(monkeypatch, capsys, "link", str(doc), "--home", str(home), "--mentions", "spacy",
                      "--spacy-model", "no_such_pipeline_xyz")
    assert code == 2 and "'no_such_pipeline_xyz' is not installed" in err.strip().splitlines()[-1]
