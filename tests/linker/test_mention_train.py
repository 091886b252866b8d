"""Training the mention scorer: the logistic fit, the common-word table, a tiny end-to-end run."""
from __future__ import annotations

import json

import numpy as np

from kb.build import build_kb
from kb.store import KnowledgeBase
from linker.training.mention_train import Example, common_words, fit_logistic, main, read_examples, train
from linker.mentions import DictionarySpotter, MentionScorer


def test_fit_logistic_recovers_the_sign_and_separates():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] - 2 * x[:, 2] > 0).astype(float)
    w, b = fit_logistic(x, y, l2=1e-4)
    assert w[0] > 0 and w[2] < 0 and abs(w[1]) < abs(w[0]) / 3
    p = 1 / (1 + np.exp(-(x @ w + b)))
    assert ((p > 0.5) == (y == 1)).mean() > 0.97


def test_common_words_ignore_sentence_starts_and_names():
    texts = ["The cat saw the dog. The end.", "Norris met the Queen and the cat", "Then Norris left the cat"]
    common = common_words(texts, min_count=2)
    assert common["the"] == 1.0 and common["cat"] == 1.0
    assert "norris" not in common  # only ever capitalised
    assert "then" not in common  # only seen sentence-initially


def test_train_learns_from_labelled_texts(tmp_path):
    src = tmp_path / "kb.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in [
        {"qid": "Q1", "name": "Chuck Norris"}, {"qid": "Q2", "name": "Portrait Painter"},
        {"qid": "Q3", "name": "Angela Merkel"}]))
    build_kb(tmp_path / "kb.sqlite", entities=src, progress=False)
    kb = KnowledgeBase(tmp_path / "kb.sqlite")
    texts = [("Norris in 1976, a portrait.", (0, 6)), ("Portrait of Norris by a painter.", (12, 18)),
             ("Merkel at a portrait show.", (0, 6)), ("Portrait of Merkel in 2010, portrait", (12, 18))] * 10
    examples = [Example(t, (span,)) for t, span in texts]
    scorer = train(examples, kb, target_recall=1.0)
    assert scorer.config.metrics["recall"] == 1.0
    spotter = DictionarySpotter(kb, scorer)
    assert [m.surface for m in spotter("Portrait of Norris.")] == ["Norris"]


def test_cli_writes_a_loadable_scorer(tmp_path, capsys):
    src = tmp_path / "kbs" / "k" / "kb.jsonl"
    src.parent.mkdir(parents=True)
    src.write_text(json.dumps({"qid": "Q1", "name": "Chuck Norris"}) + "\n")
    build_kb(src.parent / "kb.sqlite", entities=src, progress=False)
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"id": str(i), "text": "Norris in 1976. Chuck Norris.",
                                        "mentions": [{"start": 0, "end": 6, "qid": "Q1"}]}) + "\n" for i in range(5)))
    assert len(read_examples(data)) == 5
    main(["--home", str(tmp_path), "--kb", "k", "--train", str(data), "--out", str(tmp_path / "s.json")])
    scorer = MentionScorer.load(tmp_path / "s.json")
    assert scorer.config.trained_on == (str(data),) and "--train" in scorer.config.command
    assert json.loads(capsys.readouterr().out)["documents"] == 5
