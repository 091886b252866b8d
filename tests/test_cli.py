"""CLI commands not covered elsewhere: train, evaluate, link errors, demo."""
import json
import sys

import pytest
import torch
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


def _labelled(path, n=12, template="{name} spoke in Berlin."):
    docs = [{"id": str(i), "text": template.format(name=name),
             "mentions": [{"start": template.index("{name}"), "end": template.index("{name}") + len(name), "qid": qid}]}
            for i, (name, qid) in enumerate([("Merkel", "Q567"), ("Obama", "Q76"), ("Paris", "Q90")] * (n // 3))]
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


def test_train_then_link(home, tmp_path):
    data = _labelled(tmp_path / "train.jsonl")
    dev = _labelled(tmp_path / "dev.jsonl", template="Yesterday {name} was seen in town.")  # held out: unseen texts
    res = runner.invoke(app, ["train", "--home", str(home), "--train", str(data), "--dev", str(dev),
                              "--epochs", "30", "--context", "transformer", "--keep", "all", "--no-progress"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    # one optimiser step per epoch (12 documents, one chunk): 30 steps learn the 3 surfaces seen 4 times each
    assert report["averaged_epochs"] == [3, 30] and report["dev_hits_at_1"] == 1.0
    assert (home / "models" / "reranker.safetensors").is_file()
    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps({"id": "d", "text": "Merkel met the press.", "mentions": [{"start": 0, "end": 6}]}))
    res = runner.invoke(app, ["link", str(doc), "--home", str(home)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["mentions"][0]["surface"] == "Merkel" and out["mentions"][0]["entity"] == "Q567"
    # evaluate scores the trained model as training did: the same Hits@1 over the same (held-out) mentions
    scores, records = tmp_path / "scores.json", tmp_path / "records.jsonl"
    res = runner.invoke(app, ["evaluate", "--test", str(dev), "--home", str(home), "--out", str(scores),
                              "--records", str(records)])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary == json.loads(scores.read_text())
    assert summary["mentions"] == 12 and summary["hits_at_1"] == report["dev_hits_at_1"]
    rows = [json.loads(line) for line in records.read_text().splitlines()]
    assert [(r["surface"], r["gold"]) for r in rows[:3]] == [("Merkel", "Q567"), ("Obama", "Q76"), ("Paris", "Q90")]
    assert all(r["gold_rank"] == 1 for r in rows)
    assert summary["micro_f1"] == 2 * summary["precision"] * summary["recall"] / (summary["precision"] + summary["recall"])


def test_train_seed_decides_the_model(home, tmp_path):
    from safetensors.torch import load_file

    data = _labelled(tmp_path / "train.jsonl")

    def weights(seed, name):
        out = tmp_path / name
        res = runner.invoke(app, ["train", "--home", str(home), "--train", str(data), "--dev", str(data),
                                  "--epochs", "3", "--context", "transformer", "--seed", str(seed), "--out", str(out),
                                  "--no-progress"])
        assert res.exit_code == 0, res.output
        return load_file(str(out.with_suffix(".safetensors")))

    first, again, other = weights(0, "a"), weights(0, "b"), weights(1, "c")
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["local.0.weight"], other["local.0.weight"])
    res = runner.invoke(app, ["train", "--home", str(home), "--train", str(data), "--dev", str(data), "--seed", "-1"])
    assert res.exit_code == 2 and "--seed" in res.output


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
    import linker.fronts.server

    seen = {}
    monkeypatch.setattr(linker.pipeline.Linker, "load", classmethod(lambda cls, *a, **kw: seen.update(kw) or "L"))
    monkeypatch.setattr(linker.fronts.server, "serve", lambda lk, **kw: seen.update(served=lk))
    res = runner.invoke(app, ["serve", "--home", str(tmp_path), "--no-joint", "--face-model", str(tmp_path),
                              "--set", "visual.alpha=0.3"])
    assert res.exit_code == 0, res.output
    assert seen == {"face_model": tmp_path, "overrides": {"joint": False, "visual.alpha": 0.3}, "served": "L"}


def test_link_json_lists_in_and_out(home, tmp_path):
    """A JSON list comes back as a list in input order (one document too), a bare object as an object."""
    from linker.features import FEATURES
    from linker.reranker import Reranker, RerankerConfig

    Reranker(RerankerConfig(n_features=len(FEATURES), dim=64, feature_names=FEATURES)).save(home / "models" / "reranker")
    docs = [{"id": "a", "text": "Merkel spoke.", "mentions": [{"start": 0, "end": 6}]},
            {"id": "b", "text": "Obama and Paris Hilton.", "mentions": [{"start": 0, "end": 5}, {"start": 10, "end": 22}]},
            {"id": "c", "text": "Nothing here."}]
    many, one, bare = tmp_path / "many.json", tmp_path / "one.json", tmp_path / "bare.json"
    many.write_text(json.dumps(docs))
    one.write_text(json.dumps(docs[:1]))
    bare.write_text(json.dumps(docs[0]))
    out = [json.loads(runner.invoke(app, ["link", str(p), "--home", str(home)]).stdout) for p in (many, one, bare)]
    assert isinstance(out[0], list) and [d["id"] for d in out[0]] == ["a", "b", "c"]
    assert [m["surface"] for m in out[0][1]["mentions"]] == ["Obama", "Paris Hilton"]
    assert isinstance(out[1], list) and len(out[1]) == 1 and out[1][0] == out[0][0]
    assert isinstance(out[2], dict) and out[2] == out[0][0]
    lines = tmp_path / "many.jsonl"
    res = runner.invoke(app, ["link", str(many), "--home", str(home), "--format", "jsonl", "--out", str(lines)])
    assert res.exit_code == 0, res.output
    assert [json.loads(line) for line in lines.read_text().splitlines()] == out[0]


def test_train_keep_4_plus_3_is_saved_and_linked_with(home, tmp_path):
    data = _labelled(tmp_path / "train.jsonl", n=6)
    model = tmp_path / "m" / "reranker"
    res = runner.invoke(app, ["train", "--home", str(home), "--train", str(data), "--dev", str(data), "--out", str(model),
                              "--epochs", "1", "--context", "transformer", "--keep", "4+3", "--no-progress"])
    assert res.exit_code == 0, res.output
    saved = json.loads(runner.invoke(app, ["config", "--model", str(model)]).stdout)["candidates"]
    assert (saved["keep_prior"], saved["keep_context"]) == (4, 3)
    from linker.pipeline import Linker

    linker = Linker.load(home, model=model)
    assert (linker.generator.config.keep_prior, linker.generator.config.keep_context) == (4, 3)
    full = Linker.load(home, model=model, overrides={"candidates.keep_prior": None})
    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps({"id": "d", "text": "Paris spoke.", "mentions": [{"start": 0, "end": 5}]}))
    from linker.document import read_documents

    [d] = read_documents(doc)
    [[mc]] = linker.generator.generate([d.text], [d.mentions], linker.encoder.encode([d.text]))
    [[all_mc]] = full.generator.generate([d.text], [d.mentions], full.encoder.encode([d.text]))
    ranked = mc.ranked_pool  # the same ranked list either way; 4+3 keeps the 4 best of it, then
    assert ranked == all_mc.ranked_pool and len(ranked) > 7  # the 3 of the rest nearest the context
    sims = dict(zip(all_mc.idxs, all_mc.similarities))
    assert list(mc.idxs[:7]) == list(ranked[:4]) + sorted(ranked[4:], key=lambda i: -sims[i])[:3]
    assert all(s & {"dense", "fuzzy", "coref"} for s in mc.sources[7:])  # after those: only other finds
    assert list(all_mc.idxs[: len(ranked)]) == list(ranked)  # 'all' keeps the ranked list as ranked


def test_a_model_for_another_index_is_one_clear_error(home, tmp_path, monkeypatch, capsys):
    from linker.features import FEATURES
    from linker.reranker import Reranker, RerankerConfig

    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps({"id": "d", "text": "Merkel spoke."}))
    code, err = run_main(monkeypatch, capsys, "link", str(doc), "--home", str(home))  # the bundled (MiniLM) model
    assert code == 2 and "'hashing:64'" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    model = tmp_path / "m32" / "reranker"
    Reranker(RerankerConfig(n_features=len(FEATURES), dim=32, feature_names=FEATURES, text_model="hashing:32")).save(model)
    code, err = run_main(monkeypatch, capsys, "link", str(doc), "--home", str(home), "--model", str(model))
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "expects 32-d embeddings, the text index has 64" in err, err
