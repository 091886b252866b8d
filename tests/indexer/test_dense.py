import json

import numpy as np
import pytest

from indexer.dense import DenseIndex, build_text_index, choose_kind, load_text_index
from indexer.text import HashingTextEncoder
from kb.errors import ConfigError, IndexMismatchError, KBError

from idx_helpers import ENTITIES, clustered, make_kb


def recall_at_10(found: np.ndarray, exact: np.ndarray) -> tuple[float, float]:
    """(share of the exact top 10 found in the top 10, share of queries whose nearest is in the top 10)."""
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)])
    first = np.mean([e[0] in f for f, e in zip(found, exact)])
    return float(overlap), float(first)


@pytest.fixture(scope="module")
def data():
    x, q = clustered(20_000, 64)
    exact = DenseIndex.build(x, kind="flat").search(q, 10)[1]
    return x, q, exact


def test_flat_is_exact(data):
    x, q, _ = data
    scores, ids = DenseIndex.build(x, kind="flat").search(q, 10)
    brute = np.argsort(-(q @ x.T), axis=1)[:, :10]
    assert (ids[:, 0] == brute[:, 0]).all()
    np.testing.assert_allclose(scores[:, 0], (q @ x.T).max(1), rtol=1e-5)


def test_hnsw_recall(data):
    x, q, exact = data
    found = DenseIndex.build(x, kind="hnsw").search(q, 10)[1]
    overlap, first = recall_at_10(found, exact)
    assert overlap >= 0.98 and first >= 0.98


def test_ivfpq_recall():
    x, q = clustered(12_000, 32, seed=2)  # PQ training dominates: keep it small
    index = DenseIndex.build(x, kind="ivfpq")
    exact = DenseIndex.build(x, kind="flat").search(q, 10)[1]
    # PQ codes reorder near-ties, so the exact top-10 *set* is not kept; the nearest is.
    _, first = recall_at_10(index.search(q, 10)[1], exact)
    assert first >= 0.98
    approx = index.reconstruct([0, 1, 2])
    assert np.linalg.norm(approx - x[:3], axis=1).max() < 0.5  # approximate, but close


def test_auto_kind_by_size():
    assert choose_kind(1000) == "flat" and choose_kind(20_000) == "hnsw"
    assert choose_kind(500_000) == "hnsw"
    assert choose_kind(5_000_000) == "ivfpq"


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_save_load_round_trip_with_ids(tmp_path, kind):
    x, q = clustered(3000, 32, seed=1)
    ids = np.arange(3000) * 5 + 7
    index = DenseIndex.build(x, ids, kind=kind)
    index.save(tmp_path, "t", {"model_id": "m", "kb_checksum": "abc"})
    again = DenseIndex.load(tmp_path, "t", expect={"model_id": "m", "kb_checksum": "abc"})
    assert again.kind == kind and len(again) == 3000
    np.testing.assert_array_equal(again.search(q, 5)[1], index.search(q, 5)[1])
    assert set(again.search(q, 5)[1].ravel()) <= set(ids)
    np.testing.assert_allclose(again.reconstruct([ids[10], ids[20]]), x[[10, 20]], atol=1e-6)
    manifest = json.loads((tmp_path / "t.json").read_text())
    assert manifest["count"] == 3000 and manifest["dim"] == 32 and manifest["kind"] == kind


def test_mismatch_errors(tmp_path):
    x, _ = clustered(500, 16)
    DenseIndex.build(x).save(tmp_path, "t", {"model_id": "m1", "kb_checksum": "abc"})
    with pytest.raises(IndexMismatchError, match="kb_checksum.*'abc'.*'xyz'.*rebuild"):
        DenseIndex.load(tmp_path, "t", expect={"kb_checksum": "xyz"})
    with pytest.raises(IndexMismatchError, match="model_id"):
        DenseIndex.load(tmp_path, "t", expect={"model_id": "m2", "kb_checksum": "abc"})
    with pytest.raises(KBError, match="no other index"):
        DenseIndex.load(tmp_path, "other")


def test_bad_arguments():
    x, _ = clustered(500, 16)
    with pytest.raises(ConfigError, match="unknown index type 'annoy'.*flat"):
        DenseIndex.build(x, kind="annoy")
    with pytest.raises(ConfigError, match="at least 1,000"):
        DenseIndex.build(x, kind="ivfpq")
    with pytest.raises(ConfigError, match="dimension"):
        DenseIndex.build(x).search(np.zeros((1, 8), np.float32), 3)


def test_text_index_build_and_search(tmp_path, small_kb):
    enc = HashingTextEncoder(64)
    manifest = build_text_index(small_kb, enc, tmp_path, progress=False)
    assert manifest["count"] == len(ENTITIES) and manifest["model_id"] == "hashing:64"
    index = load_text_index(small_kb, tmp_path, model_id="hashing:64")
    for i, ent in enumerate(ENTITIES):
        _, ids = index.search(enc.encode([f"{ent.name}: {ent.description}"]), 1)
        assert ids[0, 0] == small_kb.idx_of(ent.id) == i
    vecs = index.reconstruct([0, 1])
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1, rtol=1e-5)
    with pytest.raises(IndexMismatchError, match="model_id"):
        load_text_index(small_kb, tmp_path, model_id="sentence-transformers/all-MiniLM-L6-v2")
    other = make_kb(tmp_path / "other" / "kb.sqlite", ENTITIES[:3])
    with pytest.raises(IndexMismatchError, match="kb_checksum"):
        load_text_index(other, tmp_path)


def test_index_file_not_matching_manifest(tmp_path):
    x, _ = clustered(500, 16)
    DenseIndex.build(x).save(tmp_path, "t", {"model_id": "m"})
    with open(tmp_path / "t.faiss", "ab") as f:  # as if another build replaced only the index
        f.write(b"\0" * 10)
    with pytest.raises(IndexMismatchError, match="does not match its manifest"):
        DenseIndex.load(tmp_path, "t")
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary files left behind


def test_loading_keeps_the_index_on_the_cpu_unless_asked(tmp_path):
    import pytest

    from indexer.dense import DenseIndex, _gpu_count
    from kb.errors import ConfigError

    x = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    DenseIndex.build(x, kind="flat").save(tmp_path, "t")
    loaded = DenseIndex.load(tmp_path, "t")
    assert loaded._search_index is loaded.index  # no silent move to a device
    with pytest.raises(ConfigError, match="cpu or gpu"):
        DenseIndex.load(tmp_path, "t", device="tpu")
    if _gpu_count() == 0:
        with pytest.raises(ConfigError, match="no GPU"):
            DenseIndex.load(tmp_path, "t", device="gpu")


def test_hnsw_search_breadth_per_call():
    """`ef_search` widens or narrows one HNSW search without changing the index: wider finds at
    least as many of the exact neighbours; None is the index's own breadth."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[:100] + 0.3 * rng.standard_normal((100, 32)).astype(np.float32)
    index = DenseIndex.build(x, kind="hnsw")
    exact = DenseIndex.build(x, kind="flat").search(q, 10)[1]

    def recall(ids):
        return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact)])

    narrow, wide = recall(index.search(q, 10, ef_search=10)[1]), recall(index.search(q, 10, ef_search=512)[1])
    assert narrow < wide and wide > 0.95
    assert (index.search(q, 10)[1] == index.search(q, 10, ef_search=None)[1]).all()
