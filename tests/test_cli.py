"""CLI commands not covered elsewhere: train, evaluate, link errors, demo."""
import json
import sys

import pytest
from typer.testing import CliRunner

import cli
from cli import app
from tiny import build_tiny_kb

runner = CliRunner()


def run_main(monkeypatch, capsys, *args):
    """Run `cli.main` (which turns LinkerErrors into one line + exit 2); returns (code, stderr)."""
    monkeypatch.setattr(sys, "argv", ["mmel", *args])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    return exc.value.code, capsys.readouterr().err


@pytest.fixture
def home(tmp_path):
    build_tiny_kb(tmp_path)
    res = runner.invoke(app, ["kb", "index", "--home", str(tmp_path), "--text-model", "hashing", "--no-progress"])
    assert res.exit_code == 0, res.output
    return tmp_path


def _labelled(path, n=12):
    docs = [{"id": str(i), "text": f"{name} spoke in Berlin.",
             "mentions": [{"start": 0, "end": len(name), "qid": qid}]}
            for i, (name, qid) in enumerate([("Merkel", "Q567"), ("Obama", "Q76"), ("Paris", "Q90")] * (n // 3))]
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


def test_train_then_link(home, tmp_path):
    data = _labelled(tmp_path / "train.jsonl")
    res = runner.invoke(app, ["train", "--home", str(home), "--train", str(data), "--dev", str(data),
                              "--epochs", "30", "--context", "transformer", "--keep", "all", "--no-progress"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    # one optimiser step per epoch (12 documents, one chunk): 30 steps learn the 3 surfaces seen 4 times each
    assert report["averaged_epochs"] == [3, 30] and report["dev_hits_at_1"] == 1.0
    assert (home / "models" / "reranker.safetensors").is_file()
    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps({"id": "d", "text": "Merkel spoke in Berlin.", "mentions": [{"start": 0, "end": 6}]}))
    res = runner.invoke(app, ["link", str(doc), "--home", str(home)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["mentions"][0]["surface"] == "Merkel" and out["mentions"][0]["entity"] == "Q567"
    # evaluate scores the trained model as training did: the same Hits@1 over the same mentions
    scores, records = tmp_path / "scores.json", tmp_path / "records.jsonl"
    res = runner.invoke(app, ["evaluate", "--test", str(data), "--home", str(home), "--out", str(scores),
                              "--records", str(records)])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary == json.loads(scores.read_text())
    assert summary["mentions"] == 12 and summary["hits_at_1"] == report["dev_hits_at_1"]
    rows = [json.loads(line) for line in records.read_text().splitlines()]
    assert [(r["surface"], r["gold"]) for r in rows[:3]] == [("Merkel", "Q567"), ("Obama", "Q76"), ("Paris", "Q90")]
    assert all(r["gold_rank"] == 1 for r in rows)
    assert summary["micro_f1"] == 2 * summary["precision"] * summary["recall"] / (summary["precision"] + summary["recall"])


def test_train_rejects_bad_options(home, tmp_path, monkeypatch, capsys):
    data = _labelled(tmp_path / "train.jsonl")
    code, err = run_main(monkeypatch, capsys, "train", "--home", str(home), "--train", str(data),
                         "--dev", str(data), "--keep", "four")
    assert code == 2 and "'four'" in err and "Traceback" not in err
    code, err = run_main(monkeypatch, capsys, "train", "--home", str(home), "--train", str(data),
                         "--dev", str(data))  # static context over a hashing index
    assert code == 2 and "--context transformer" in err


def test_link_errors_are_one_line(home, tmp_path, monkeypatch, capsys):
    code, err = run_main(monkeypatch, capsys, "link", str(tmp_path / "nope.json"), "--home", str(home))
    assert code == 2 and "nope.json does not exist" in err and len(err.strip().splitlines()) == 1
    bad = tmp_path / "bad.json"
    bad.write_text('{"text": "abc", "mentions": [{"start": 1, "end": 99}]}')
    code, err = run_main(monkeypatch, capsys, "link", str(bad), "--home", str(home))
    assert code == 2 and "[1, 99)" in err
    good = tmp_path / "good.json"
    good.write_text('{"text": "abc"}')
    code, err = run_main(monkeypatch, capsys, "link", str(good), "--home", str(home), "--kb", "../x")
    assert code == 2 and "invalid KB name" in err
    code, err = run_main(monkeypatch, capsys, "evaluate", "--test", str(good), "--home", str(home))
    assert code == 2 and "gold 'qid'" in err and len(err.strip().splitlines()) == 1


def test_help_texts():
    for cmd in (["train", "--help"], ["link", "--help"], ["evaluate", "--help"], ["demo", "--help"], ["--help"]):
        res = runner.invoke(app, cmd)
        assert res.exit_code == 0 and "Usage" in res.output


@pytest.mark.slow
def test_demo_links_text_and_face(demo_home):
    res = runner.invoke(app, ["demo", "--home", str(demo_home), "--no-progress"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert [f["entity"] for f in out["faces"]] == ["Eileen Collins", None]  # her face; the patch is unknown
    links = {m["surface"]: m["entity"] for m in out["mentions"]}
    # her face confirms "Collins" and must not pull the other mentions to her
    assert links["Collins"] == "Eileen Collins" and links["Columbia"] == "Space Shuttle Columbia"
    assert links["Mir"] == "Mir" and links["Houston"] == "Houston"


def test_serve_builds_its_linker_with_the_same_options_as_link(monkeypatch, tmp_path):
    """`serve` passes --face-model and --no-joint to `Linker.load` as `link` does."""
    import linker.pipeline
    import linker.server

    seen = {}
    monkeypatch.setattr(linker.pipeline.Linker, "load", classmethod(lambda cls, *a, **kw: seen.update(kw) or "L"))
    monkeypatch.setattr(linker.server, "serve", lambda lk, **kw: seen.update(served=lk))
    res = runner.invoke(app, ["serve", "--home", str(tmp_path), "--no-joint", "--face-model", str(tmp_path),
                              "--set", "visual.alpha=0.3"])
    assert res.exit_code == 0, res.output
    assert seen == {"face_model": tmp_path, "overrides": {"joint": False, "visual.alpha": 0.3}, "served": "L"}
