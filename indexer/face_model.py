r"""The paper's visual encoder (M3EL §4.2): a 6-layer transformer over 64 patches of a face crop.

A crop is resized to `image_size` × `image_size` RGB, diced into a `grid` × `grid` = 64 patches,
linearly embedded with a learned position embedding, and passed through post-LN transformer
encoder layers (:math:`o = \mathrm{LN}(x + \mathrm{MHA}(x))`, :math:`z = \mathrm{LN}(o + \mathrm{FFN}(o))`,
eq. 7). Mean pooling over the patches gives :math:`m^v`, which is L2-normalised so that the
cosine similarity :math:`s` of eq. 8 is a dot product. Training uses the triplet loss of eq. 8,
:math:`\max(0, \text{margin} - s(e, m) + s(\hat e, m))`, with batch-hard mining over
P identities × K crops per batch, and light augmentation (random resized crop, horizontal flip,
colour jitter) written in torch.

This is the trainable alternative to the dlib face embedding: small enough to train on CPU.
Weights are saved as safetensors plus a JSON config; nothing is pickled.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from kb.errors import ConfigError, InputError, ModelLoadError

log = logging.getLogger(__name__)

__all__ = [
    "FaceTransformerConfig",
    "FaceTransformer",
    "EpochStats",
    "train_face_transformer",
    "embed_crops",
    "save",
    "load",
    "face_crops",
]

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT = "mmel-face-transformer/1"


@dataclass(frozen=True, slots=True)
class FaceTransformerConfig:
    """Architecture. `patches` must be a square number dividing `image_size`² into square patches."""

    image_size: int = 64
    patches: int = 64
    layers: int = 6
    dim: int = 128
    heads: int = 4
    ff_mult: int = 2
    dropout: float = 0.0

    @property
    def grid(self) -> int:
        return math.isqrt(self.patches)

    @property
    def patch_size(self) -> int:
        return self.image_size // self.grid

    def validate(self) -> None:
        g = self.grid
        if g * g != self.patches:
            raise ConfigError(f"patches must be a square number (64 = 8x8), got {self.patches}")
        if self.image_size % g:
            raise ConfigError(f"image_size {self.image_size} is not divisible by the {g}x{g} patch grid")
        if self.dim % self.heads:
            raise ConfigError(f"dim {self.dim} is not divisible by heads {self.heads}")
        if self.layers < 1:
            raise ConfigError(f"layers must be >= 1, got {self.layers}")


class FaceTransformer(nn.Module):
    """Face crop (B, 3, S, S) float in [0, 1] → L2-normalised embedding (B, dim)."""

    def __init__(self, config: FaceTransformerConfig = FaceTransformerConfig()) -> None:
        super().__init__()
        config.validate()
        self.config = config
        p = config.patch_size
        self.patch_embed = nn.Linear(3 * p * p, config.dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, config.patches, config.dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        layer = nn.TransformerEncoderLayer(
            d_model=config.dim,
            nhead=config.heads,
            dim_feedforward=config.ff_mult * config.dim,
            dropout=config.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=False,  # post-LN, as eq. 7
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=config.layers, enable_nested_tensor=False)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) → (B, patches, 3·p·p), row-major over the grid."""
        p = self.config.patch_size
        B = x.shape[0]
        x = x.unfold(2, p, p).unfold(3, p, p)  # B, 3, g, g, p, p
        return x.permute(0, 2, 3, 1, 4, 5).reshape(B, self.config.patches, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - 0.5) / 0.5
        z = self.encoder(self.patch_embed(self.patchify(x)) + self.pos_embed)
        return F.normalize(z.mean(dim=1), dim=-1)


@dataclass(frozen=True, slots=True)
class EpochStats:
    epoch: int
    loss: float
    active: float  # fraction of triplets with a non-zero loss


def _to_tensor(crops: np.ndarray, size: int) -> torch.Tensor:
    """(N, H, W, 3) uint8 → (N, 3, size, size) float in [0, 1]."""
    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[-1] != 3:
        raise InputError(f"crops must have shape (N, H, W, 3), got {crops.shape}")
    if crops.dtype != np.uint8:
        raise InputError(f"crops must be uint8 RGB, got dtype {crops.dtype}")
    x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float() / 255.0
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random resized crop (80-100 % of the side), horizontal flip, brightness/contrast/saturation jitter."""
    B, _, S, _ = x.shape
    out = torch.empty_like(x)
    u = torch.rand(B, 6, generator=gen)
    for i in range(B):
        side = max(2, int(round(S * (0.8 + 0.2 * u[i, 0].item()))))
        top = int((S - side) * u[i, 1].item())
        left = int((S - side) * u[i, 2].item())
        img = x[i : i + 1, :, top : top + side, left : left + side]
        out[i] = F.interpolate(img, size=(S, S), mode="bilinear", align_corners=False)[0]
    flip = u[:, 3] < 0.5
    out[flip] = out[flip].flip(-1)
    bright = (0.8 + 0.4 * u[:, 4]).view(B, 1, 1, 1)
    contrast = (0.8 + 0.4 * u[:, 5]).view(B, 1, 1, 1)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * contrast + mean * bright
    sat = (0.8 + 0.4 * torch.rand(B, 1, 1, 1, generator=gen))
    grey = out.mean(dim=1, keepdim=True)
    out = grey + (out - grey) * sat
    return out.clamp(0.0, 1.0)


def _batch_hard_triplet(emb: torch.Tensor, labels: torch.Tensor, margin: float) -> tuple[torch.Tensor, float]:
    r"""Eq. 8 with batch-hard mining: for each anchor, the least similar positive and the most
    similar negative, :math:`\max(0, \text{margin} - s(a, p) + s(a, n))` with cosine :math:`s`."""
    sim = emb @ emb.T
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool)
    pos = sim.masked_fill(~same | eye, float("inf")).min(dim=1).values
    neg = sim.masked_fill(same, float("-inf")).max(dim=1).values
    valid = torch.isfinite(pos) & torch.isfinite(neg)
    losses = F.relu(margin - pos[valid] + neg[valid])
    if losses.numel() == 0:
        return emb.sum() * 0.0, 0.0
    return losses.mean(), float((losses > 0).float().mean())


def _identities(labels: np.ndarray, n: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The identity number of each of the `n` crops, and the crop indices of each identity with
    at least 2 crops (InputError unless there are 2 such identities)."""
    if labels.shape != (n,):
        raise InputError(f"labels must have shape ({n},), got {labels.shape}")
    _, y_all = np.unique(labels, return_inverse=True)
    groups = [np.flatnonzero(y_all == k) for k in range(y_all.max() + 1 if len(y_all) else 0)]
    usable = [g for g in groups if len(g) >= 2]
    if len(usable) < 2:
        raise InputError(
            f"need at least 2 identities with 2+ crops each, got {len(usable)} of {len(groups)} identities"
        )
    return y_all, usable


def _pk_batch(rng: np.random.Generator, usable: list[np.ndarray], P: int, K: int) -> np.ndarray:
    """Crop indices of one batch: P distinct identities × K crops each (drawn with replacement for
    an identity with fewer than K crops)."""
    ids = rng.choice(len(usable), size=P, replace=False)
    return np.concatenate([rng.choice(usable[i], size=K, replace=len(usable[i]) < K) for i in ids])


def train_face_transformer(
    crops: np.ndarray,
    labels: np.ndarray,
    config: FaceTransformerConfig = FaceTransformerConfig(),
    epochs: int = 30,
    lr: float = 3e-4,
    seed: int = 0,
    progress: bool = False,
    margin: float = 0.3,
    identities_per_batch: int = 8,
    crops_per_identity: int = 4,
    augment: bool = True,
) -> tuple[FaceTransformer, list[EpochStats]]:
    """Train a `FaceTransformer` with the batch-hard triplet loss; deterministic for a given `seed`.

    Each epoch draws ceil(N / (P·K)) batches of P identities × K crops (with replacement for
    identities with fewer than K crops). Identities need at least 2 crops to form a positive pair.

    Parameters
    ----------
    crops : (N, H, W, 3) uint8 RGB face crops (any size; resized to `config.image_size`).
    labels : (N,) identity labels (ints or strings).
    """
    x_all = _to_tensor(crops, config.image_size)
    y_all, usable = _identities(np.asarray(labels), x_all.shape[0])
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = FaceTransformer(config)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    P = min(identities_per_batch, len(usable))
    K = crops_per_identity
    steps = max(1, math.ceil(len(x_all) / (P * K)))
    total = epochs * steps
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, total // 10)) * 0.5 * (1 + math.cos(math.pi * s / total))
    )
    y_t = torch.from_numpy(y_all)
    history: list[EpochStats] = []
    for epoch in tqdm(range(epochs), desc="face transformer", disable=not progress):
        model.train()
        losses, active = [], []
        for _ in range(steps):
            idx = _pk_batch(rng, usable, P, K)
            xb = x_all[idx]
            if augment:
                xb = _augment(xb, gen)
            loss, frac = _batch_hard_triplet(model(xb), y_t[idx], margin)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            active.append(frac)
        history.append(EpochStats(epoch, float(np.mean(losses)), float(np.mean(active))))
        log.debug("epoch %d loss %.4f active %.2f", epoch, history[-1].loss, history[-1].active)
    model.eval()
    return model, history


@torch.no_grad()
def embed_crops(model: FaceTransformer, crops: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """(N, H, W, 3) uint8 crops → (N, dim) float32 L2-normalised embeddings."""
    model.eval()
    x = _to_tensor(crops, model.config.image_size)
    out = [model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    if not out:
        return np.zeros((0, model.config.dim), dtype=np.float32)
    return torch.cat(out).numpy().astype(np.float32)


def save(model: FaceTransformer, path: str | Path) -> Path:
    """Write `model.safetensors` and `config.json` into the directory `path` (created if needed)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(path / WEIGHTS_FILE), metadata={"format": FORMAT})
    cfg = {"format": FORMAT, **dataclasses.asdict(model.config)}
    (path / CONFIG_FILE).write_text(json.dumps(cfg, indent=2) + "\n")
    return path


def load(path: str | Path) -> FaceTransformer:
    """Load a model written by `save`; raises `ModelLoadError` naming what is missing or wrong."""
    path = Path(path)
    cfg_file, w_file = path / CONFIG_FILE, path / WEIGHTS_FILE
    for f in (cfg_file, w_file):
        if not f.is_file():
            raise ModelLoadError(f"face model file not found: {f} (expected {CONFIG_FILE} and {WEIGHTS_FILE})")
    try:
        cfg = json.loads(cfg_file.read_text())
    except json.JSONDecodeError as e:
        raise ModelLoadError(f"{cfg_file} is not valid JSON: {e}") from e
    fmt = cfg.pop("format", None)
    if fmt != FORMAT:
        raise ModelLoadError(f"{cfg_file} has format {fmt!r}, expected {FORMAT!r}")
    fields = {f.name for f in dataclasses.fields(FaceTransformerConfig)}
    unknown = set(cfg) - fields
    if unknown:
        raise ModelLoadError(f"{cfg_file} has unknown keys {sorted(unknown)}; valid: {sorted(fields)}")
    model = FaceTransformer(FaceTransformerConfig(**cfg))
    try:
        model.load_state_dict(load_file(str(w_file)))
    except (RuntimeError, OSError) as e:
        raise ModelLoadError(f"{w_file} does not match {cfg_file}: {e}") from e
    model.eval()
    return model


def face_crops(
    image: np.ndarray,
    boxes: list[tuple[int, int, int, int]] | np.ndarray,
    size: int = 64,
    margin: float = 0.2,
) -> np.ndarray:
    """Cut square face crops out of an RGB image and resize them to `size` × `size`.

    Each `(left, top, right, bottom)` box is grown by `margin` of its size on every side, made
    square around its centre, clipped to the image, and resized with Pillow (bicubic).

    Returns
    -------
    (len(boxes), size, size, 3) uint8
    """
    from PIL import Image

    img = np.asarray(image)
    if img.ndim != 3 or img.shape[-1] != 3 or img.dtype != np.uint8:
        raise InputError(f"image must be (H, W, 3) uint8 RGB, got shape {img.shape} dtype {img.dtype}")
    H, W = img.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), dtype=np.uint8)
    for k, (l, t, r, b) in enumerate(boxes):
        if r <= l or b <= t:
            raise InputError(f"box {k} {(l, t, r, b)} is empty; boxes are (left, top, right, bottom)")
        cx, cy = (l + r) / 2, (t + b) / 2
        half = max(r - l, b - t) * (1 + 2 * margin) / 2
        L, T = max(0, int(round(cx - half))), max(0, int(round(cy - half)))
        R, B = min(W, int(round(cx + half))), min(H, int(round(cy + half)))
        if R <= L or B <= T:
            raise InputError(f"box {k} {(l, t, r, b)} lies outside the {W}x{H} image")
        crop = Image.fromarray(img[T:B, L:R]).resize((size, size), Image.BICUBIC)
        out[k] = np.asarray(crop)
    return out
