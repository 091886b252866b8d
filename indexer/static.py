r"""A fast static context encoder distilled from the transformer text encoder with Model2Vec.

`model2vec.distill.distill_from_model` passes every vocabulary token once through the
transformer and keeps its mean-pooled output :math:`v_t`, scaled by a SIF weight on a Zipf
estimate of the token's frequency (:math:`w_t = a / (a + p(t))`, :math:`p` from the token's rank in
the vocabulary, :math:`a = 10^{-4}`). A text is then encoded without running the transformer:

.. math::
    \mathrm{enc}(x) = \mathrm{normalise}\Big( \tfrac{1}{|x|} \sum_{t \in \mathrm{tokens}(x)} w_t v_t \Big).

No PCA: the vectors stay in the transformer's own space, where the entity index lives, so contexts
encoded this way are compared directly with entity vectors. Encoding is a tokenizer call and a
mean (≈100× faster than the transformer on a CPU). Measured on the dev contexts (gold entity among
the MiniLM entity index's nearest neighbours of the context, recall@1 / @10 / @30), against the
hand-written distillation it replaces (same token vectors, SIF weights from the KB's entity texts):
WikiMEL 0.196 / 0.293 / 0.338 → 0.231 / 0.346 / 0.396, Richpedia 0.241 / 0.474 / 0.557 → 0.411 /
0.674 / 0.745, and 2–3× faster.

Saved by model2vec (safetensors, tokenizer.json, config.json: no pickle) in `<kb_dir>/context/`,
with our manifest `<kb_dir>/context.json` (base transformer, KB checksum).
"""
from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from kb.errors import ConfigError, ModelLoadError

log = logging.getLogger(__name__)

STATIC_PREFIX = "static:"
DONE = ".complete"  # written last into a distilled encoder's folder
CONTEXT_FILE = "context"
FORMAT = "model2vec"


class StaticTextEncoder:
    """A model2vec `StaticModel` in the `TextEncoder` shape. `model_id` is `static:<transformer id>`."""

    def __init__(self, model, base_model_id: str):
        self.model = model
        self.base_model_id = base_model_id
        self.model_id = STATIC_PREFIX + base_model_id
        self.dim = int(model.dim)

    def encode(self, texts: list[str], batch_size: int = 1024, progress=False) -> np.ndarray:
        """Unit-length float32 vectors (zero for a text without tokens); `progress` as for
        `indexer.text.TextEncoder.encode` (a callable is told once: the encoding is one call)."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        out = np.asarray(self.model.encode(list(texts), batch_size=batch_size, show_progress_bar=progress is True,
                                           use_multiprocessing=False, normalize=False), dtype=np.float32)
        if callable(progress):
            progress(len(texts))
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    @classmethod
    def distill(cls, transformer, progress: bool = True) -> StaticTextEncoder:
        """Distil from a `TransformerTextEncoder` (its model and tokenizer; the model is copied,
        model2vec reshapes the one it is given); `progress`: model2vec's bar over the vocabulary."""
        from model2vec.distill import distill_from_model

        # it looks the model's name up on the Hugging Face Hub (for its language) and warns offline
        logging.getLogger("model2vec.distill.distillation").setLevel(logging.ERROR)
        for chatty in ("model2vec", "skeletoken"):  # INFO per token remapped, per file saved
            if logging.getLogger(chatty).level == logging.NOTSET:
                logging.getLogger(chatty).setLevel(logging.WARNING)
        from indexer.text import hf_progress

        with _model2vec_bars(progress), hf_progress(progress):
            model = distill_from_model(model=copy.deepcopy(transformer.model), tokenizer=transformer.tokenizer,
                                       device=str(transformer.device), pca_dims=None)
        return cls(model, transformer.model_id)

    def save(self, folder: str | os.PathLike) -> None:
        self.model.save_pretrained(str(folder))

    @classmethod
    def load(cls, folder: str | os.PathLike, base_model_id: str) -> StaticTextEncoder:
        from model2vec import StaticModel

        try:
            return cls(StaticModel.from_pretrained(str(folder)), base_model_id)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"cannot load static encoder {folder}: {exc}") from None


@contextlib.contextmanager
def _model2vec_bars(progress: bool):
    """Within: model2vec's distillation shows its tqdm bar only if `progress` (it has no option
    for it, so its module's `tqdm` is swapped for a disabled one)."""
    from model2vec.distill import inference

    if progress or not hasattr(inference, "tqdm"):
        yield
        return
    shown = inference.tqdm
    inference.tqdm = functools.partial(shown, disable=True)
    try:
        yield
    finally:
        inference.tqdm = shown


def cached_context_encoder(transformer, progress: bool = True) -> Path | None:
    """The folder `<cache_dir>/context-<fingerprint>/` holding `transformer`'s distilled encoder,
    distilled into it first when missing; None when the transformer has no `cache_dir`. The
    distillation depends on the transformer only, not on a KB, so every KB indexed with it (and
    every re-index) copies this one. Written whole, then renamed: readers never see half a model."""
    cache_dir = getattr(transformer, "cache_dir", None)
    if not cache_dir:
        return None
    cached = Path(cache_dir) / f"context-{transformer.fingerprint}"
    if not (cached / DONE).is_file():
        part = cached.with_name(f".{cached.name}.{os.getpid()}")
        shutil.rmtree(part, ignore_errors=True)
        StaticTextEncoder.distill(transformer, progress=progress).save(part)
        (part / DONE).touch()
        try:
            os.replace(part, cached)
        except OSError:  # another process cached it first (or a stale half copy is in the way)
            shutil.rmtree(part, ignore_errors=True)
            if not (cached / DONE).is_file():
                raise
    return cached


def build_context_encoder(kb, transformer, kb_dir: str | os.PathLike, progress: bool = True) -> Path:
    """Distil the static context encoder for a KB's transformer (or copy it from the
    transformer's cache, `cached_context_encoder`) into `<kb_dir>/context/` with its manifest
    `<kb_dir>/context.json`."""
    folder = Path(kb_dir) / CONTEXT_FILE
    shutil.rmtree(folder, ignore_errors=True)
    cached = cached_context_encoder(transformer, progress=progress)
    if cached is not None:
        shutil.copytree(cached, folder)
        log.info("static context encoder copied from %s", cached)
    else:
        StaticTextEncoder.distill(transformer, progress=progress).save(folder)
    folder.with_suffix(".json").write_text(json.dumps({
        "format": FORMAT, "model_id": STATIC_PREFIX + transformer.model_id,
        "base_model_id": transformer.model_id, "kb_checksum": kb.checksum,
    }))
    return folder


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
    folder = Path(kb_dir) / CONTEXT_FILE
    meta = json.loads(folder.with_suffix(".json").read_text()) if folder.with_suffix(".json").is_file() else {}
    if meta.get("base_model_id") != base or meta.get("kb_checksum") != kb.checksum or meta.get("format") != FORMAT:
        found = (f"one for {meta.get('base_model_id')!r}, another KB build or an earlier format" if meta else "none")
        raise ModelLoadError(f"{kb_dir} has no static context encoder distilled from {base!r} for this KB "
                             f"({found}): run `mmel kb index` for this KB (it writes one)")
    return StaticTextEncoder.load(folder, base)
