"""The CLI's one place for errors: file-system and encoding mistakes are one `error:` line with
exit status 2 (never a traceback); `link --out` is replaced only by a complete output; help
texts keep their bracketed defaults."""
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli
from tiny import build_tiny_kb

ROOT = Path(__file__).resolve().parents[1]
DOC = {"id": "d", "text": "Obama went to Paris.", "mentions": [{"start": 0, "end": 5}]}
NOT_UTF8 = b'{"id": "d", "text": "caf\xe9"}\n'


def run_main(monkeypatch, capsys, *args):
    """`cli.main` with `args`; returns (exit status, stderr)."""
    monkeypatch.setattr(sys, "argv", ["mmel", *args])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    return exc.value.code, capsys.readouterr().err


def one_error_line(err: str) -> str:
    lines = [l for l in err.splitlines()  # log lines and the progress bar (closed before the error) aside
             if l.strip() and not l.startswith(("INFO", "WARNING")) and not re.match(r"link[^:]*: +\d+%\|", l)]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    from indexer.dense import build_text_index
    from indexer.text import HashingTextEncoder
    from kb.store import KnowledgeBase
    from linker.features import FEATURES
    from linker.reranker import Reranker, RerankerConfig

    home = tmp_path_factory.mktemp("home")
    kb = build_tiny_kb(home)
    build_text_index(KnowledgeBase(kb), HashingTextEncoder(64), kb.parent, kind="flat", progress=False)
    config = RerankerConfig(n_features=len(FEATURES), dim=64, feature_names=tuple(FEATURES), text_model="hashing:64")
    Reranker(config).save(home / "models" / "reranker")
    return home


@pytest.fixture
def doc(tmp_path):
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(DOC))
    return path


@pytest.mark.parametrize("option,target,expect", [
    ("--out", "missing/dir/o.json", "does not exist"),
    ("--html", "missing/dir/v.html", "does not exist"),
    ("--out", ".", "is a folder"),
])
def test_unwritable_outputs_are_one_line(monkeypatch, capsys, home, doc, tmp_path, option, target, expect):
    code, err = run_main(monkeypatch, capsys, "link", str(doc), "--home", str(home), option, str(tmp_path / target))
    line = one_error_line(err)
    assert code == 2 and option in line and expect in line


@pytest.mark.parametrize("name", ["docs.jsonl", "doc.json"])
def test_non_utf8_documents_are_one_line(monkeypatch, capsys, home, tmp_path, name):
    path = tmp_path / name
    path.write_bytes(NOT_UTF8)
    code, err = run_main(monkeypatch, capsys, "link", str(path), "--home", str(home))
    line = one_error_line(err)
    assert code == 2 and "not UTF-8" in line and "line 1" in line and "0xe9" in line


@pytest.mark.parametrize("option", ["--entities", "--aliases"])
def test_non_utf8_kb_inputs_are_one_line(monkeypatch, capsys, tmp_path, option):
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"qid": "Q1", "name": "Paris"}) + "\n")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"Paris\tQ1\n" + b'{"qid": "Q2", "name": "Caf\xe9"}\n')
    args = ["--entities", str(bad)] if option == "--entities" else ["--entities", str(good), "--aliases", str(bad)]
    code, err = run_main(monkeypatch, capsys, "kb", "build", *args, "--home", str(tmp_path / "h"), "--no-progress")
    line = one_error_line(err)
    assert code == 2 and str(bad) in line and "line 2" in line and "not UTF-8" in line


def test_a_file_as_home_is_one_line(monkeypatch, capsys, tmp_path, doc):
    home = tmp_path / "home-file"
    home.write_text("")
    for args in (["kb", "build", "--entities", str(doc)], ["kb", "info"], ["link", str(doc)]):
        code, err = run_main(monkeypatch, capsys, *args, "--home", str(home))
        line = one_error_line(err)
        assert code == 2 and str(home) in line and "not a folder" in line


def test_failed_link_keeps_the_previous_output(monkeypatch, capsys, home, tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("previous output\n")
    docs = tmp_path / "docs.jsonl"
    docs.write_text(json.dumps(DOC) + "\n{not json\n")
    code, err = run_main(monkeypatch, capsys, "link", str(docs), "--home", str(home), "--out", str(out),
                         "--html", str(tmp_path / "v.html"))
    assert code == 2 and "docs.jsonl:2" in one_error_line(err)
    assert out.read_text() == "previous output\n" and not (tmp_path / "v.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs.jsonl", "out.jsonl"]  # no temporaries left
    docs.write_text(json.dumps(DOC) + "\n")
    code, err = run_main(monkeypatch, capsys, "link", str(docs), "--home", str(home), "--out", str(out))
    assert code in (0, None) and json.loads(out.read_text())["mentions"][0]["surface"] == "Obama"


def test_unforeseen_os_errors_are_one_line_naming_the_file(monkeypatch, capsys):
    def boom(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/some/file")

    monkeypatch.setattr(cli, "app", boom)
    code, err = run_main(monkeypatch, capsys)
    assert code == 2 and one_error_line(err) == "error: Permission denied: /some/file"


def test_help_keeps_bracketed_defaults_and_the_index_threshold():
    from indexer.dense import FLAT_MAX

    runner = CliRunner()
    text = runner.invoke(cli.app, ["kb", "index", "--help"], terminal_width=200).output
    assert "[env MMEL_HOME; default ~/.local/share/mmel]" in text and "[default: auto]" in text
    assert f"flat < {FLAT_MAX // 1000}k entities" in text
    assert "[default: all cores]" in runner.invoke(cli.app, ["kb", "build", "--help"], terminal_width=200).output


def test_faiss_loader_lines_silenced(tmp_path):
    build_tiny_kb(tmp_path)
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "kb", "index", "--text-model", "hashing",
                           "--home", str(tmp_path), "--no-progress"], cwd=ROOT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert "faiss" not in proc.stderr.lower() and "embedded 12 of 12 entities (100 %)" in proc.stderr


def test_no_progress_index_logs_every_few_percent(tmp_path, caplog):
    from indexer.dense import build_text_index
    from indexer.text import HashingTextEncoder
    from kb.store import KnowledgeBase

    kb = KnowledgeBase(build_tiny_kb(tmp_path))
    with caplog.at_level(logging.INFO, logger="indexer.dense"):
        build_text_index(kb, HashingTextEncoder(16), kb.path.parent, batch_size=1, progress=False)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("embedded")]
    assert len(lines) == 12 and lines[0].startswith("embedded 1 of 12") and "(100 %)" in lines[-1]


def test_overlapping_or_blank_spans_are_one_line(monkeypatch, capsys, home, tmp_path):
    docs = tmp_path / "docs.jsonl"
    for mentions, expect in (([{"start": 0, "end": 5}, {"start": 0, "end": 8}], "overlaps mentions[0] span [0, 5) 'Obama'"),
                             ([{"start": 5, "end": 6}], "span [5, 6) ' ' is only whitespace")):
        docs.write_text(json.dumps({"id": "d", "text": "Obama me", "mentions": mentions}) + "\n")
        code, err = run_main(monkeypatch, capsys, "link", str(docs), "--home", str(home))
        line = one_error_line(err)
        assert code == 2 and "docs.jsonl:1" in line and expect in line


def test_missing_kb_names_the_kbs_of_the_home_and_the_option(monkeypatch, capsys, home, tmp_path, doc):
    code, err = run_main(monkeypatch, capsys, "link", str(doc), "--home", str(home), "--kb", "nope")
    line = one_error_line(err)
    assert code == 2 and "'nope'" in line and "it has 'default'" in line and "--kb NAME" in line
    (home / "kbs" / "empty-folder").mkdir(exist_ok=True)  # a folder without kb.sqlite is no KB
    code, err = run_main(monkeypatch, capsys, "kb", "info", "--home", str(home), "--kb", "nope")
    assert "it has 'default':" in one_error_line(err)
    code, err = run_main(monkeypatch, capsys, "kb", "info", "--home", str(tmp_path / "fresh"))
    line = one_error_line(err)
    assert code == 2 and "which has none" in line and "mmel kb build --kb default" in line


def test_version():
    from importlib.metadata import version

    r = CliRunner().invoke(cli.app, ["--version"])
    assert r.exit_code == 0 and r.stdout == f"mmel {version('mmel')}\n"


def test_link_prints_no_document_before_an_error_at_a_later_line(monkeypatch, capsys, home, tmp_path):
    docs = tmp_path / "docs.jsonl"
    bad = {"id": "bad", "text": "Obama me", "mentions": [{"start": 0, "end": 5}, {"start": 2, "end": 8}]}
    docs.write_text("".join(json.dumps({**DOC, "id": f"d{i}"}) + "\n" for i in range(5)) + json.dumps(bad) + "\n")
    for fmt in ("jsonl", "json"):
        monkeypatch.setattr(sys, "argv", ["mmel", "link", str(docs), "--home", str(home), "--format", fmt,
                                          "--batch-size", "1"])
        with pytest.raises(SystemExit) as exc:
            cli.main()
        captured = capsys.readouterr()
        assert exc.value.code == 2 and captured.out == "" and "docs.jsonl:6" in one_error_line(captured.err)


def test_link_jsonl_to_stdout_still_streams(monkeypatch, capsys, home, tmp_path):
    """Each batch is on stdout before the next batch links (the input is read twice, not held)."""
    import linker.pipeline

    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({**DOC, "id": f"d{i}"}) + "\n" for i in range(3)))
    seen = []
    real = linker.pipeline.Linker.process

    def process(self, chunk, *args, **kwargs):
        seen.append((chunk[0].id, capsys.readouterr().out.count('"id"')))
        return real(self, chunk, *args, **kwargs)

    monkeypatch.setattr(linker.pipeline.Linker, "process", process)
    monkeypatch.setattr(sys, "argv", ["mmel", "link", str(docs), "--home", str(home), "--batch-size", "1"])
    try:
        cli.main()
    except SystemExit as exc:
        assert exc.code in (0, None)
    assert [s[0] for s in seen] == ["d0", "d1", "d2"] and [s[1] for s in seen] == [0, 1, 1]
