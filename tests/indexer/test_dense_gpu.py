"""FAISS on the GPU: the standard `index_cpu_to_all_gpus` path for flat and IVF-PQ (skipped
without a faiss build that sees a GPU), and the one-`faiss` install check."""
import numpy as np
import pytest

from indexer import dense
from indexer.dense import DenseIndex, faiss_distributions

needs_faiss_gpu = pytest.mark.skipif(dense._gpu_count() == 0, reason="needs faiss with a visible GPU")


def test_exactly_one_faiss_distribution_installed():
    dists = faiss_distributions()
    assert len(dists) == 1, f"several pip distributions ship `faiss`: {dists}"


def recall_at_10(found, exact):
    """(share of the exact top 10 found, share of queries whose nearest is found)."""
    return (float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)])),
            float(np.mean([e[0] in f for f, e in zip(found, exact)])))


def _data(n=20_000, d=64, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((200, d)).astype(np.float32)
    x = centres[rng.integers(0, 200, n)] + 0.3 * rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, x[:200] + 0.01


@pytest.mark.gpu
@needs_faiss_gpu
def test_flat_on_gpu_is_exact():
    x, q = _data()
    index = DenseIndex.build(x, kind="flat").on_gpu()
    assert index._search_index is not index.index  # searched on the GPU copy
    _, found = index.search(q, 10)
    exact = np.argsort(-(q @ x.T), axis=1)[:, :10]
    assert recall_at_10(found, exact)[0] > 0.999


@pytest.mark.gpu
@needs_faiss_gpu
def test_ivfpq_trained_and_searched_on_gpu(tmp_path):
    x, q = _data()
    index = DenseIndex.build(x, kind="ivfpq").on_gpu()
    assert index._search_index is not index.index
    _, found = index.search(q, 10)
    exact = np.argsort(-(q @ x.T), axis=1)[:, :10]
    assert recall_at_10(found, exact)[1] > 0.9
    index.save(tmp_path, "g")
    again = DenseIndex.load(tmp_path, "g", device="gpu")
    np.testing.assert_array_equal(again.search(q, 10)[1], found)
