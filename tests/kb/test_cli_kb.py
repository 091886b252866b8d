"""`mmel kb build | info | lookup` through the CLI, including the one-line error path."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SAMPLE = DATA / "wiki" / "enwiki-sample.xml.bz2"
runner = CliRunner()


def _page(title: str, text: str) -> str:
    return f"<page><title>{title}</title><ns>0</ns><id>1</id><revision><text>{text}</text></revision></page>\n"


@pytest.fixture
def tiny_dump(tmp_path) -> Path:
    path = tmp_path / "tiny.xml"
    path.write_text(
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/">\n'
        + _page("Mercury (planet)", "'''Mercury''' is a planet. See [[Mercury (element)|mercury]].")
        + _page("Mercury (element)", "'''Mercury''' is a metal, unlike [[Mercury (planet)|Mercury]].")
        + _page("Venus", "'''Venus''' is next to [[Mercury (planet)|Mercury]].")
        + "</mediawiki>\n"
    )
    return path


def invoke(*args: str):
    result = runner.invoke(cli.app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_build_info_lookup(tmp_path, tiny_dump):
    home = str(tmp_path / "home")
    out = invoke("kb", "build", "--dump", str(tiny_dump), "--kb", "tiny", "--home", home, "--no-progress")
    assert out["entities"] == 3 and out["dump"]["articles"] == 3 and out["dump"]["links"] == 3
    info = invoke("kb", "info", "--kb", "tiny", "--home", home)
    assert info["entities"] == 3 and info["sources"]["dump"].endswith("tiny.xml")
    cands = invoke("kb", "lookup", "Mercury", "-k", "5", "--kb", "tiny", "--home", home)
    assert [c["entity"] for c in cands] == ["Mercury (planet)", "Mercury (element)"]
    assert cands[0]["prior"] == pytest.approx(2 / 3)


def test_help_texts():
    for args in (["kb", "build", "--help"], ["kb", "info", "--help"], ["kb", "lookup", "--help"]):
        result = runner.invoke(cli.app, args)
        assert result.exit_code == 0 and "Usage" in result.output


def test_missing_dump_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "nope.xml.bz2"
    monkeypatch.setattr(
        sys, "argv", ["mmel", "kb", "build", "--dump", str(missing), "--home", str(tmp_path), "--no-progress"]
    )
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert "nope.xml.bz2" in err and err.startswith("error:")


def test_not_a_dump_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "bad.xml"
    bad.write_text("hello, I am not XML\n")
    monkeypatch.setattr(sys, "argv", ["mmel", "kb", "build", "--dump", str(bad), "--home", str(tmp_path), "--no-progress"])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "not a MediaWiki export" in err and "Traceback" not in err


@pytest.mark.skipif(not SAMPLE.is_file(), reason="shared Wikipedia sample not available")
def test_real_sample(tmp_path):
    home = str(tmp_path / "home")
    out = invoke("kb", "build", "--dump", str(SAMPLE), "--kb", "wikisample", "--home", home, "--no-progress")
    d = out["dump"]
    assert d["pages"] == 206 and d["skipped"] == 0
    # 206 pages = 98 articles + 8 disambiguation pages + 99 redirects + 1 project-namespace redirect
    assert (d["articles"], d["disambiguation"], d["redirects"], d["other_namespace"]) == (98, 8, 99, 1)
    assert d["links"] > 25_000 and out["entities"] == 98
    cands = invoke("kb", "lookup", "amphibians", "--kb", "wikisample", "--home", home)
    assert cands[0]["entity"] == "Amphibian"


def test_malformed_entity_and_alias_lines_are_skipped_and_counted(tmp_path, caplog):
    home = str(tmp_path / "home")
    entities = tmp_path / "e.jsonl"
    entities.write_text("\n".join([
        json.dumps({"qid": "Q1", "name": "Ada Lovelace", "description": "mathematician"}),
        "{not json",                                            # 2: bad JSON
        json.dumps({"qid": "Q2"}),                              # 3: no name
        json.dumps({"name": "Nobody"}),                         # 4: no qid
        json.dumps({"qid": "Q3", "name": "Alan Turing", "aliases": "Turing"}),  # 5: aliases not a list
        json.dumps(["a", "list"]),                              # 6: not an object
        "",                                                     # blank: not counted
        json.dumps({"id": "Q4", "name": "Grace Hopper", "aliases": ["Amazing Grace"]}),
    ]) + "\n")
    aliases = tmp_path / "a.tsv"
    aliases.write_text("Countess of Lovelace\tQ1\nno tab here\n\tQ4\nHopper\t\n\nGrace\tQ4\n")
    with caplog.at_level("WARNING"):
        out = invoke("kb", "build", "--entities", str(entities), "--aliases", str(aliases), "--kb", "m",
                     "--home", home, "--no-progress")
    assert out["entities"] == 2 and out["skipped_lines"] == 5 + 3, out
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped")]
    assert sorted(int(m.split(":")[1]) for m in skipped if "e.jsonl" in m) == [2, 3, 4, 5, 6]
    assert sorted(int(m.split(":")[1]) for m in skipped if "a.tsv" in m) == [2, 3, 4]
    assert invoke("kb", "info", "--kb", "m", "--home", home)["skipped_lines"] == 8
    assert [c["entity"] for c in invoke("kb", "lookup", "Countess of Lovelace", "--kb", "m", "--home", home)] == ["Q1"]
    assert "Q4" in [c["entity"] for c in invoke("kb", "lookup", "Amazing Grace", "--kb", "m", "--home", home)]


def test_entity_file_without_a_valid_line_is_one_clear_error(tmp_path, monkeypatch, capsys):
    entities = tmp_path / "e.jsonl"
    entities.write_text("{not json\n" + json.dumps({"qid": "Q2"}) + "\n")
    monkeypatch.setattr(sys, "argv", ["mmel", "kb", "build", "--entities", str(entities), "--kb", "m",
                                      "--home", str(tmp_path / "home"), "--no-progress"])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "no valid entity lines" in err and "Traceback" not in err
    assert f"{entities}:1: " in err and len(err.strip().splitlines()) == 1  # names the file and line


def test_failed_build_leaves_no_folder_it_created(tmp_path, tiny_dump):
    from kb.errors import InputError

    bad = tmp_path / "bad.xml"
    bad.write_text("hello, I am not XML\n")
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"name": "no qid"}\n')
    home = tmp_path / "home"
    for source in (["--dump", str(bad)], ["--entities", str(empty)]):
        result = runner.invoke(cli.app, ["kb", "build", *source, "--kb", "new", "--home", str(home), "--no-progress"])
        assert isinstance(result.exception, InputError)
        assert not home.exists()  # neither <home>/kbs/new nor the home it created
    invoke("kb", "build", "--dump", str(tiny_dump), "--kb", "old", "--home", str(home), "--no-progress")
    (home / "kbs" / "mine").mkdir()
    for name in ("old", "mine", "new"):
        runner.invoke(cli.app, ["kb", "build", "--dump", str(bad), "--kb", name, "--home", str(home), "--no-progress"])
    assert sorted(p.name for p in (home / "kbs").iterdir()) == ["mine", "old"]  # folders it found stay
    assert invoke("kb", "info", "--kb", "old", "--home", str(home))["entities"] == 3


def test_build_stats_print_counts_as_integers(tmp_path, tiny_dump):
    home = str(tmp_path / "home")
    out = invoke("kb", "build", "--dump", str(tiny_dump), "--home", home, "--no-progress")
    info = invoke("kb", "info", "--home", home)
    for stats in (out, info, out["dump"]):
        for key, value in stats.items():
            if not key.endswith(("seconds", "_per_s", "_mb")) and isinstance(value, (int, float)):
                assert type(value) is int, (key, value)
    assert out["anchors_dropped"] == 0 and '"anchors_dropped": 0,' in runner.invoke(cli.app, ["kb", "info", "--home", home]).stdout
