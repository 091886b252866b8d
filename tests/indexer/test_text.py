import numpy as np
import pytest

from indexer.text import HashingTextEncoder, TextEncoder, load_text_encoder
from kb.errors import ModelLoadError


def test_hashing_encoder_unit_rows_and_deterministic():
    enc = HashingTextEncoder(64)
    texts = ["Barack Obama", "barack  obama", "FC Barcelona", ""]
    a, b = enc.encode(texts), HashingTextEncoder(64).encode(texts)
    assert a.shape == (4, 64) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(a, b)
    assert a[0] @ a[1] > 0.99 and a[0] @ a[2] < 0.5
    assert isinstance(enc, TextEncoder)


def test_load_text_encoder_ids():
    assert load_text_encoder("hashing").dim == 64
    assert load_text_encoder("hashing:32").model_id == "hashing:32"
    with pytest.raises(ModelLoadError, match="hashing:abc"):
        load_text_encoder("hashing:abc")


def test_bad_model_path_names_it(tmp_path):
    bad = tmp_path / "no-such-model"
    bad.mkdir()
    with pytest.raises(ModelLoadError, match="no-such-model"):
        load_text_encoder(str(bad))


@pytest.mark.slow
def test_minilm_semantics():
    enc = load_text_encoder(None)
    assert enc.model_id == "sentence-transformers/all-MiniLM-L6-v2" and enc.dim == 384
    v = enc.encode(["Barack Obama", "US president", "football club"] + ["x" * 5000])
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, rtol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    # batching and length sorting do not change results
    single = np.vstack([enc.encode([t]) for t in ["Barack Obama", "football club"]])
    np.testing.assert_allclose(single, v[[0, 2]], atol=1e-4)
