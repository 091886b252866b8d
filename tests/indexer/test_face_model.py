"""The paper's face transformer: shapes, patching, triplet training on a tiny gallery, save/load."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kb.errors import ConfigError, InputError, ModelLoadError
from indexer.face_model import (
    FaceTransformer,
    FaceTransformerConfig,
    embed_crops,
    face_crops,
    load,
    save,
    train_face_transformer,
)

TINY = FaceTransformerConfig(image_size=32, patches=64, layers=2, dim=32, heads=2)


def _gallery(n_ids: int = 4, per: int = 8, size: int = 32, seed: int = 0):
    """Each identity is a random 4x4 colour pattern; its crops add pixel noise."""
    rng = np.random.default_rng(seed)
    crops, labels = [], []
    for k in range(n_ids):
        proto = np.kron(rng.integers(0, 256, size=(4, 4, 3)).astype(float), np.ones((size // 4, size // 4, 1)))
        for _ in range(per):
            crops.append(np.clip(proto + rng.normal(0, 25, size=proto.shape), 0, 255).astype(np.uint8))
            labels.append(f"person{k}")
    return np.stack(crops), np.array(labels)


def _similarities(E: np.ndarray, y: np.ndarray):
    S = E @ E.T
    same = y[:, None] == y[None, :]
    eye = np.eye(len(y), dtype=bool)
    hardest_pos = np.where(same & ~eye, S, np.inf).min(axis=1)
    hardest_neg = np.where(~same, S, -np.inf).max(axis=1)
    return hardest_pos, hardest_neg, S[~same].mean()


def test_default_model_is_the_papers_shape():
    model = FaceTransformer()
    assert model.config.patches == 64 and model.config.layers == 6
    assert len(model.encoder.layers) == 6
    out = model(torch.rand(3, 3, 64, 64))
    assert out.shape == (3, model.config.dim)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(3))


def test_patchify_is_row_major_over_the_grid():
    model = FaceTransformer(TINY)
    x = torch.rand(1, 3, 32, 32)
    patches = model.patchify(x)
    assert patches.shape == (1, 64, 3 * 4 * 4)
    torch.testing.assert_close(patches[0, 0], x[0, :, 0:4, 0:4].reshape(-1))
    torch.testing.assert_close(patches[0, 9], x[0, :, 4:8, 4:8].reshape(-1))  # row 1, column 1


def test_bad_configs_raise():
    with pytest.raises(ConfigError, match="square"):
        FaceTransformer(FaceTransformerConfig(patches=60))
    with pytest.raises(ConfigError, match="divisible by the 8x8"):
        FaceTransformer(FaceTransformerConfig(image_size=60))
    with pytest.raises(ConfigError, match="heads"):
        FaceTransformer(FaceTransformerConfig(dim=30, heads=4))


def test_embed_crops_resizes_and_normalises():
    model = FaceTransformer(TINY)
    crops = np.random.default_rng(0).integers(0, 256, size=(5, 50, 40, 3), dtype=np.uint8)
    E = embed_crops(model, crops, batch_size=2)
    assert E.shape == (5, 32) and E.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-5)
    assert embed_crops(model, crops[:0]).shape == (0, 32)
    with pytest.raises(InputError, match="uint8"):
        embed_crops(model, crops.astype(np.float32))


def test_triplet_training_overfits_a_tiny_gallery():
    X, y = _gallery()
    torch.manual_seed(0)
    pos0, neg0, diff0 = _similarities(embed_crops(FaceTransformer(TINY), X), y)
    model, history = train_face_transformer(
        X, y, TINY, epochs=15, lr=2e-3, seed=0, identities_per_batch=4, crops_per_identity=4
    )
    losses = [h.loss for h in history]
    assert len(losses) == 15
    assert np.mean(losses[-3:]) < 0.5 * losses[0]
    pos, neg, diff = _similarities(embed_crops(model, X), y)
    assert np.all(pos > neg)  # every crop: its least similar same-identity crop beats every other identity
    assert diff < diff0 - 0.2  # different identities were pushed apart
    assert np.all(pos > neg + 0.1) and not np.all(pos0 > neg0 + 0.1)  # untrained model does not separate


def test_training_is_deterministic_and_validates_labels():
    X, y = _gallery(n_ids=3, per=3)
    cfg = FaceTransformerConfig(image_size=32, patches=64, layers=1, dim=16, heads=2)
    m1, h1 = train_face_transformer(X, y, cfg, epochs=2, seed=3, crops_per_identity=2)
    m2, h2 = train_face_transformer(X, y, cfg, epochs=2, seed=3, crops_per_identity=2)
    assert [h.loss for h in h1] == [h.loss for h in h2]
    np.testing.assert_array_equal(embed_crops(m1, X), embed_crops(m2, X))
    with pytest.raises(InputError, match="labels must have shape"):
        train_face_transformer(X, y[:-1], cfg, epochs=1)
    with pytest.raises(InputError, match="at least 2 identities"):
        train_face_transformer(X[:4], np.array(["a", "a", "a", "b"]), cfg, epochs=1)


def test_save_load_round_trip(tmp_path):
    X, _ = _gallery(n_ids=2, per=2)
    torch.manual_seed(1)
    model = FaceTransformer(TINY)
    save(model, tmp_path / "face")
    assert json.loads((tmp_path / "face" / "config.json").read_text())["dim"] == 32
    again = load(tmp_path / "face")
    assert again.config == TINY
    np.testing.assert_array_equal(embed_crops(model, X), embed_crops(again, X))


def test_load_errors_name_the_problem(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        load(tmp_path / "missing")
    save(FaceTransformer(TINY), tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps({**cfg, "dim": 64}))
    with pytest.raises(ModelLoadError, match="does not match"):
        load(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text(json.dumps({**cfg, "format": "other"}))
    with pytest.raises(ModelLoadError, match="format"):
        load(tmp_path / "m")


def test_face_crops_cut_and_resize():
    img = np.zeros((100, 200, 3), dtype=np.uint8)
    img[20:60, 120:160] = (255, 0, 0)  # a red "face"
    crops = face_crops(img, [(120, 20, 160, 60), (0, 0, 10, 10)], size=32, margin=0.0)
    assert crops.shape == (2, 32, 32, 3) and crops.dtype == np.uint8
    assert crops[0, 4:28, 4:28, 0].min() > 200 and crops[0, 4:28, 4:28, 1].max() < 50
    assert crops[1].max() == 0
    with pytest.raises(InputError, match="empty"):
        face_crops(img, [(10, 10, 5, 20)])
    with pytest.raises(InputError, match="outside"):
        face_crops(img, [(300, 300, 310, 310)])
