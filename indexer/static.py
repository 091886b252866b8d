"""A fast static context encoder distilled from the transformer text encoder (Model2Vec-style).

Each vocabulary token t is passed once through the transformer as `[CLS] t [SEP]`; its
mean-pooled output becomes a static vector v_t. A text is then encoded without running the
transformer:

    enc(x) = normalise( Σ_{t ∈ tokens(x)} w_t v_t ),   w_t = a / (a + p(t)),

with p(t) the token's relative frequency in the KB's entity texts (SIF weighting: frequent
tokens such as "the" or "born" count little). The vectors live in the transformer's own space,
so contexts encoded this way are compared directly with the entity index built by the
transformer; encoding is a tokenizer call and a weighted sum (≈100× faster on a CPU).
Saved as safetensors plus a JSON manifest; no pickle.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
from tqdm import tqdm

from kb.errors import ConfigError, ModelLoadError

log = logging.getLogger(__name__)

STATIC_PREFIX = "static:"
SIF_A = 1e-3


class StaticTextEncoder:
    """Weighted bag of distilled token vectors. `model_id` is `static:<transformer id>`."""

    def __init__(self, tokenizer, vectors: np.ndarray, weights: np.ndarray, base_model_id: str):
        self.tokenizer = tokenizer
        self.vectors = vectors.astype(np.float32, copy=False)
        self.weights = weights.astype(np.float32, copy=False)
        self.base_model_id = base_model_id
        self.model_id = STATIC_PREFIX + base_model_id
        self.dim = int(vectors.shape[1])

    def encode(self, texts: list[str], batch_size: int = 4096, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for lo in tqdm(range(0, len(texts), batch_size), disable=not progress, desc="encode", unit=" batches"):
            ids = self.tokenizer(texts[lo : lo + batch_size], add_special_tokens=False,
                                 truncation=True, max_length=256)["input_ids"]
            lengths = np.fromiter((len(i) for i in ids), np.int64, len(ids))
            flat = np.fromiter((t for i in ids for t in i), np.int64, int(lengths.sum()))
            if not len(flat):
                continue
            weighted = self.vectors[flat] * self.weights[flat, None]
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            nonempty = lengths > 0
            out[lo : lo + len(ids)][nonempty] = np.add.reduceat(weighted, starts[nonempty], axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    @classmethod
    def distill(cls, transformer, corpus: Iterable[str] = (), batch_size: int = 512,
                progress: bool = True) -> StaticTextEncoder:
        """Distill from a `TransformerTextEncoder`; `corpus` gives the token frequencies."""
        import torch

        tok, model = transformer.tokenizer, transformer.model
        vocab = len(tok)
        special = set(tok.all_special_ids)
        vectors = np.zeros((vocab, transformer.dim), np.float32)
        cls_id, sep_id = tok.cls_token_id, tok.sep_token_id
        with torch.inference_mode():
            for lo in tqdm(range(0, vocab, batch_size), disable=not progress, desc="distill", unit=" batches"):
                ids = torch.arange(lo, min(lo + batch_size, vocab))
                seq = torch.stack([torch.full_like(ids, cls_id), ids, torch.full_like(ids, sep_id)], 1)
                hidden = model(input_ids=seq.to(transformer.device),
                               attention_mask=torch.ones_like(seq).to(transformer.device)).last_hidden_state
                vectors[lo : lo + len(ids)] = hidden.mean(1).float().cpu().numpy()
        vectors[list(special)] = 0.0
        counts = np.zeros(vocab, np.float64)
        for lo_texts in _batches(corpus, 4096):
            for ids in tok(lo_texts, add_special_tokens=False, truncation=True, max_length=256)["input_ids"]:
                np.add.at(counts, ids, 1)
        p = counts / counts.sum() if counts.sum() else counts
        weights = (SIF_A / (SIF_A + p)).astype(np.float32)
        return cls(tok, vectors, weights, transformer.model_id)

    def save(self, path: str | os.PathLike) -> None:
        """Write `<path>.safetensors` (float16 vectors, weights) and `<path>.json`."""
        path = Path(path)
        save_file({"vectors": self.vectors.astype(np.float16), "weights": self.weights},
                  str(path.with_suffix(".safetensors")))
        path.with_suffix(".json").write_text(json.dumps({"model_id": self.model_id, "dim": self.dim,
                                                         "base_model_id": self.base_model_id}))

    @classmethod
    def load(cls, path: str | os.PathLike, tokenizer=None) -> StaticTextEncoder:
        path = Path(path)
        try:
            meta = json.loads(path.with_suffix(".json").read_text())
            arrays = load_file(str(path.with_suffix(".safetensors")))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load static encoder {path}: {exc}") from None
        if tokenizer is None:
            from indexer.text import load_tokenizer

            tokenizer = load_tokenizer(meta["base_model_id"])
        return cls(tokenizer, arrays["vectors"], arrays["weights"], meta["base_model_id"])


def _batches(items: Iterable[str], n: int):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch


CONTEXT_FILE = "context"


def build_context_encoder(kb, transformer, kb_dir: str | os.PathLike, progress: bool = True) -> Path:
    """Distill the static context encoder for a KB (token weights from its entity texts) and
    save it as `<kb_dir>/context.{safetensors,json}`."""
    from indexer.dense import entity_text

    enc = StaticTextEncoder.distill(
        transformer, (entity_text(e.name, e.description) for _, e in kb.iter_entities()), progress=progress
    )
    path = Path(kb_dir) / CONTEXT_FILE
    enc.save(path)
    meta = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**meta, "kb_checksum": kb.checksum}))
    return path


def load_context_encoder(model_id: str, kb, kb_dir: str | os.PathLike):
    """The context encoder named `model_id`: `static:<transformer>` is the KB's distilled
    encoder, written by `build_text_index` (`mmel kb index`); anything else is a text encoder
    id. Only reads: a missing or stale distilled encoder is a ModelLoadError."""
    from indexer.text import HASHING_ID, load_text_encoder

    if not model_id.startswith(STATIC_PREFIX):
        return load_text_encoder(model_id)
    base = model_id[len(STATIC_PREFIX):]
    if base.startswith(HASHING_ID):
        raise ConfigError(f"the static context encoder distils a transformer; the index uses {base!r}: "
                          "train with --context transformer")
    path = Path(kb_dir) / CONTEXT_FILE
    meta = json.loads(path.with_suffix(".json").read_text()) if path.with_suffix(".json").is_file() else {}
    if meta.get("base_model_id") != base or meta.get("kb_checksum") != kb.checksum:
        found = f"one for {meta.get('base_model_id')!r} and another KB build" if meta else "none"
        raise ModelLoadError(f"{kb_dir} has no static context encoder distilled from {base!r} for this KB "
                             f"({found}): run `mmel kb index` for this KB (it writes one)")
    return StaticTextEncoder.load(path)
