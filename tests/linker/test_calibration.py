"""Calibrated confidence: Platt scaling fitted by maximum likelihood, the reliability table, and
the confidence carried by links and saved with a model's config."""
from __future__ import annotations

import math

import numpy as np
import pytest

from linker.calibration import Calibration, decision_score, fit_calibration, reliability


def test_fit_recovers_the_slope_and_bias_of_a_logistic_truth():
    rng = np.random.default_rng(0)
    scores = rng.uniform(0.2, 0.5, 20_000)
    truth = Calibration(slope=40.0, bias=-13.0)
    right = rng.random(len(scores)) < np.array([truth.confidence(s) for s in scores])
    got = fit_calibration(scores, right)
    assert got.slope == pytest.approx(40.0, rel=0.1)
    assert got.bias == pytest.approx(-13.0, rel=0.1)
    # fitted on its own data, the confidence is calibrated
    table = reliability([got.confidence(s) for s in scores], right)
    assert table["ece"] < 0.02
    assert table["count"] == len(scores)


def test_one_kind_of_example_gives_a_flat_smoothed_rate_and_none_is_an_error():
    # Platt's targets: two right links and no wrong one give (2 + 1) / (2 + 2) everywhere
    got = fit_calibration([0.3, 0.4], [True, True])
    assert got.confidence(0.0) == pytest.approx(0.75, abs=1e-6)
    assert got.confidence(0.4) == pytest.approx(0.75, abs=1e-6)
    assert fit_calibration([0.3, 0.4, 0.5], [False] * 3).confidence(0.5) == pytest.approx(0.2, abs=1e-6)
    with pytest.raises(ValueError, match="dev mentions"):
        fit_calibration([float("nan")], [True])


def test_fit_stays_finite_when_scores_separate_right_from_wrong():
    scores = np.linspace(0.1, 0.8, 60)
    got = fit_calibration(scores, scores > 0.45)
    assert math.isfinite(got.slope) and got.slope > 0
    assert got.confidence(0.8) > 0.9 > 0.1 > got.confidence(0.1)


def test_confidence_is_monotone_and_bounded_even_at_extremes():
    cal = Calibration(slope=30.0, bias=-9.0)
    values = [cal.confidence(s) for s in (-1e9, -1.0, 0.2, 0.3, 0.4, 1.0, 1e9, float("inf"), float("-inf"))]
    assert values[:7] == sorted(values[:7])
    assert all(0.0 <= v <= 1.0 for v in values)
    assert cal.confidence(0.3) == pytest.approx(0.5)


def test_reliability_table_by_hand():
    conf = [0.05, 0.15, 0.95, 0.95, 0.92, 0.5]
    right = [False, False, True, True, False, True]
    table = reliability(conf, right, bins=10)
    by_bin = {tuple(r["bin"]): r for r in table["bins"]}
    assert by_bin[(0.9, 1.0)]["count"] == 3
    assert by_bin[(0.9, 1.0)]["accuracy"] == pytest.approx(2 / 3)
    expected = (1 * 0.05 + 1 * 0.15 + 3 * abs(2 / 3 - (0.95 + 0.95 + 0.92) / 3) + 1 * 0.5) / 6
    assert table["ece"] == pytest.approx(expected)
    assert table["accuracy_at_0.9"] == pytest.approx(2 / 3)
    assert table["share_at_0.9"] == pytest.approx(0.5)


def test_config_saves_the_calibration_and_gives_the_nil_threshold_in_its_units(tmp_path):
    from linker.config import LinkerConfig, RerankerConfig

    cfg = LinkerConfig(RerankerConfig(n_features=3, dim=8), nil_threshold=0.3,
                       calibration=Calibration(slope=30.0, bias=-9.0))
    assert cfg.nil_confidence == pytest.approx(0.5)
    back = LinkerConfig.load(cfg.save(tmp_path / "model"))
    assert back == cfg
    assert LinkerConfig(RerankerConfig(n_features=3, dim=8)).nil_confidence is None
    assert cfg.override({"nil_threshold": None}).nil_confidence == 0.0


def test_links_carry_the_confidence_and_nil_is_under_the_threshold_in_its_units(tmp_path):
    from kb.types import Document, TextMention
    from linker.config import LinkerConfig
    from linker.document import link_record
    from linker.pipeline import Linker
    from tiny import build_tiny_linker

    base = build_tiny_linker(tmp_path)
    text = "Barack Obama met Michelle Obama and Obama in Paris."
    spans = [(0, 12), (17, 31), (36, 41), (45, 50)]
    doc = Document("d", text, mentions=tuple(TextMention(s, e, text[s:e]) for s, e in spans))
    scores = sorted(l.score for l in base.link(doc))
    cal = Calibration(slope=20.0, bias=-20.0 * scores[1])
    cfg = LinkerConfig(base.reranker.config, nil_threshold=(scores[1] + scores[2]) / 2, calibration=cal)
    linker = Linker(base.kb, base.index, base.encoder, base.reranker, cfg)
    links = linker.link(doc)
    assert {l.entity is None for l in links} == {True, False}
    for link in links:
        assert link.confidence == pytest.approx(cal.confidence(link.score))
        assert (link.entity is None) == (link.confidence < cfg.nil_confidence)
        assert link_record(link)["confidence"] == round(link.confidence, 4)
    # with a lead weight, NIL and confidence follow the decision score (the top's lead over the runner-up counts)
    led = Linker(base.kb, base.index, base.encoder, base.reranker, cfg.override({"nil_lead": 3.0}))
    for link in led.link(doc):
        d = decision_score(link.candidates[0].score, link.candidates[1].score if len(link.candidates) > 1 else None, 3.0)
        assert link.confidence == pytest.approx(cal.confidence(d))
        assert (link.entity is None) == (d < cfg.nil_threshold)
    assert any(len(l.candidates) > 1 for l in links)  # so the lead changed decision scores
    uncalibrated = Linker(base.kb, base.index, base.encoder, base.reranker, LinkerConfig(base.reranker.config))
    assert all(l.confidence is None and "confidence" not in link_record(l) for l in uncalibrated.link(doc))
