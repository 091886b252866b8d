"""The linker config: saved with the weights, read back exactly, every key and value checked."""
import json
import math

import pytest
from typer.testing import CliRunner

from cli import app
from kb.errors import ConfigError, ModelLoadError
from linker.config import CandidateConfig, LinkerConfig, RerankerConfig, VisualConfig, parse_overrides
from linker.pipeline import DEFAULT_MODEL

RERANKER = RerankerConfig(n_features=3, dim=8, feature_names=("a", "b", "c"), text_model="m")


def test_round_trip_keeps_every_setting(tmp_path):
    config = LinkerConfig(RERANKER, CandidateConfig(keep_prior=4, dense_k=5), nil_threshold=None,
                          visual=VisualConfig(alpha=0.3, threshold=0.5), joint=False, mentions="both",
                          spacy_model="en_core_web_sm", threads=0, batch_size=8, index_device="gpu")
    config.save(tmp_path / "model")
    assert LinkerConfig.load(tmp_path / "model") == config


def test_the_earlier_flat_layout_is_read(tmp_path):
    """Models saved before the linker config keep loading: the reranker's settings with the NIL
    threshold and candidate settings beside them."""
    (tmp_path / "old.json").write_text(json.dumps({
        "n_features": 3, "dim": 8, "feature_names": ["a", "b", "c"], "text_model": "m",
        "nil_threshold": 0.25, "candidates": {"dense_k": 3},
    }))
    config = LinkerConfig.load(tmp_path / "old")
    assert config.reranker == RERANKER and config.nil_threshold == 0.25 and config.candidates.dense_k == 3
    (tmp_path / "never.json").write_text('{"n_features": 3, "dim": 8, "nil_threshold": -Infinity}')
    assert LinkerConfig.load(tmp_path / "never").nil_threshold is None  # "never NIL" as it was written then
    assert LinkerConfig.load(tmp_path / "never").nil_cutoff == -math.inf


def test_overrides_replace_dotted_keys_and_keep_the_rest():
    config = LinkerConfig(RERANKER).override({"visual.alpha": 0.3, "candidates.keep_prior": None, "joint": False})
    assert config.visual.alpha == 0.3 and config.candidates.keep_prior is None and config.joint is False
    assert config.visual.epsilon == VisualConfig().epsilon and config.reranker == RERANKER


@pytest.mark.parametrize("overrides, message", [
    ({"visual.alpha": 1.5}, "visual.alpha must be between 0 and 1, got 1.5"),
    ({"candidates.dense": 5}, "unknown setting 'candidates.dense': valid are candidates.pool"),
    ({"nope.x": 1}, "unknown setting 'nope'"),
    ({"visual": 1}, "unknown setting 'visual'"),
    ({"reranker.dim": 4}, "cannot override 'reranker.dim'"),
    ({"threads": "2"}, "threads must be int, got '2'"),
    ({"joint": 1}, "joint must be bool, got 1"),
    ({"candidates.dense_k": 2.5}, "candidates.dense_k must be int, got 2.5"),
    ({"candidates.fuzzy_k": True}, "candidates.fuzzy_k must be int, got True"),
    ({"mentions": "ner"}, "unknown mention source 'ner' (mentions): choose one of dict, spacy, both"),
    ({"index_device": "tpu"}, "unknown index device 'tpu' (index_device): choose one of cpu, gpu"),
    ({"spacy_model": "en_core_web_sm"}, "spacy model 'en_core_web_sm' needs mentions spacy or both"),
    ({"batch_size": 0}, "batch_size must be between 1 and 65536, got 0"),
    ({"nil_threshold": float("inf")}, "nil_threshold must be between"),
    ({"candidates.suffix_rules": ["ical>y", "ian"]}, "candidates.suffix_rules: bad suffix rule 'ian': use FROM>TO"),
])
def test_bad_overrides_name_the_key_and_what_is_valid(overrides, message):
    with pytest.raises(ConfigError) as err:
        LinkerConfig(RERANKER).override(overrides)
    assert message in str(err.value)


def test_a_bad_file_is_a_clear_error(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({**LinkerConfig(RERANKER).to_dict(), "colour": "red"}))
    with pytest.raises(ConfigError, match=r"m.json: unknown setting 'colour'"):
        LinkerConfig.load(tmp_path / "m")
    (tmp_path / "m.json").write_text("{")
    with pytest.raises(ModelLoadError, match="cannot read linker config"):
        LinkerConfig.load(tmp_path / "m")
    with pytest.raises(ModelLoadError, match="no linker config"):
        LinkerConfig.load(tmp_path / "missing")


def test_parse_overrides_reads_json_values_else_strings():
    assert parse_overrides(["visual.alpha=0.3", "joint=false", "candidates.keep_prior=null",
                            "spacy_model=en_core_web_sm", "x= 2"]) == {
        "visual.alpha": 0.3, "joint": False, "candidates.keep_prior": None, "spacy_model": "en_core_web_sm", "x": 2}
    with pytest.raises(ConfigError, match="bad setting 'alpha': use KEY=VALUE"):
        parse_overrides(["alpha"])


def test_config_command_prints_the_bundled_config_with_overrides(tmp_path):
    res = CliRunner().invoke(app, ["config", "--home", str(tmp_path), "--set", "visual.alpha=0.25",
                                   "--set", "candidates.dense_k=4"])
    assert res.exit_code == 0, res.output
    shown = json.loads(res.stdout)
    bundled = LinkerConfig.load(DEFAULT_MODEL)
    assert shown["visual"]["alpha"] == 0.25 and shown["candidates"]["dense_k"] == 4
    assert shown["nil_threshold"] == bundled.nil_threshold and shown["reranker"]["dim"] == bundled.reranker.dim
    # the bundled model is calibrated: its NIL threshold in confidence units is a probability
    assert shown["calibration"]["slope"] > 0
    assert 0 < shown["nil_confidence"] == bundled.nil_confidence < 1


def test_linker_load_applies_overrides(tmp_path):
    """Overrides reach the linker: a NIL threshold above every score makes every link NIL."""
    from kb.types import Document, TextMention
    from linker.pipeline import Linker
    from tiny import build_tiny_linker

    build_tiny_linker(tmp_path).reranker.save(tmp_path / "models" / "reranker")
    doc = Document("d", "Barack Obama spoke.", mentions=(TextMention(0, 12, "Barack Obama"),))
    assert Linker.load(tmp_path).link(doc)[0].entity is not None
    strict = Linker.load(tmp_path, overrides={"nil_threshold": 1e9, "candidates.dense_k": 0})
    assert strict.config.candidates.dense_k == 0 and strict.generator.config.dense_k == 0
    assert strict.link(doc)[0].entity is None


def test_a_model_trained_on_fewer_features_reads_its_own_columns():
    from linker.features import FEATURES
    from linker.pipeline import feature_columns

    assert feature_columns(FEATURES) is None
    assert feature_columns(FEATURES[:22]) == list(range(22))  # trained before a feature was added
    assert feature_columns(("prior_rank", "prior")) == [1, 0]
    with pytest.raises(ConfigError, match=r"does not compute \(\['shoe_size'\]\)"):
        feature_columns(("prior", "shoe_size"))
